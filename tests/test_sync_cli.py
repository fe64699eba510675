"""``edge sync`` commands: one-line errors, status, signing, sizes."""

from __future__ import annotations

import json
import time

import pytest
from click.testing import CliRunner

from edge.cli import cli
from edge.runtime.schema import open_database
from sync.downlink import DownlinkContext, handle_config_set
from tests.support.net import free_port
from tests.support.sync_helpers import STORE, add_crossings, write_site

pytestmark = pytest.mark.system

KEY = "cli-test-downlink-key-0123456789-abcdefgh"


def invoke(*args: str, env: dict | None = None):
    return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)


def recent_data(path, hours: float = 1.0) -> None:
    db = open_database(path)
    # End a whole window early, so every window is past its settle time whatever the clock.
    start = (time.time() // 900) * 900 - hours * 3600 - 900
    add_crossings(db, [start + i * 60 for i in range(int(hours * 60))])
    db.close()


def test_publish_once_to_an_unreachable_broker_is_one_line_and_keeps_the_data(tmp_path):
    site = write_site(tmp_path / "site.yaml", mqtt={"host": "127.0.0.1", "port": free_port()})
    db_path = tmp_path / "edge.db"
    recent_data(db_path)
    result = invoke(
        "sync", "publish-once", "--site", str(site), "--db", str(db_path), "--timeout", "1"
    )
    assert result.exit_code == 1
    last = result.output.strip().splitlines()[-1]
    assert (
        last.startswith("Error: ")
        and "aggregates still pending after 1 s: broker 127.0.0.1" in last
    )
    assert "unreachable" in last
    status = json.loads(
        invoke("sync", "status", "--site", str(site), "--db", str(db_path), "--json").output
    )
    assert (
        status["pending"] >= 4 and status["delivered"] == 0 and status["min_publishable_count"] == 5
    )


def test_bad_ca_path_is_a_config_error_naming_the_line(tmp_path):
    site = write_site(tmp_path / "site.yaml", mqtt={"tls": {"ca_file": "certs/missing-ca.pem"}})
    result = invoke("sync", "publish-once", "--site", str(site), "--db", str(tmp_path / "edge.db"))
    assert result.exit_code == 1
    assert "Error: invalid site config" in result.output
    line = next(i for i, text in enumerate(site.read_text().splitlines(), 1) if "ca_file" in text)
    assert f"site.yaml:{line} sync.mqtt.tls.ca_file" in result.output
    assert f"TLS file {tmp_path}/certs/missing-ca.pem does not exist" in result.output


def test_sync_disabled_refuses_to_run(tmp_path):
    site = write_site(tmp_path / "site.yaml", enabled=False)
    result = invoke("sync", "run", "--site", str(site), "--db", str(tmp_path / "edge.db"))
    assert result.exit_code == 1 and "sync.enabled is false" in result.output


def test_sign_config_output_is_accepted_by_the_box(memory_db, tmp_path):
    spec = tmp_path / "spec.json"
    from tests.test_sync_downlink import shipped_spec

    spec.write_text(json.dumps(shipped_spec("2024.3")))
    result = invoke(
        "sync",
        "sign-config",
        "--store",
        STORE,
        "--k",
        "6",
        "--segment-spec",
        str(spec),
        env={"EDGE_SYNC_DOWNLINK_KEY": KEY},
    )
    assert result.exit_code == 0, result.output
    outcome = handle_config_set(
        result.output.strip().encode(), DownlinkContext(memory_db, STORE, KEY, 300, time.time())
    )
    assert outcome.status == "applied" and outcome.changed == (
        "min_publishable_count",
        "segment_spec",
    )
    missing = invoke(
        "sync", "sign-config", "--store", STORE, "--k", "6", env={"EDGE_SYNC_DOWNLINK_KEY": ""}
    )
    assert missing.exit_code == 1 and "EDGE_SYNC_DOWNLINK_KEY" in missing.output


def test_sign_config_can_clear_a_downlinked_spec(memory_db, tmp_path):
    """A box goes back to its own spec on a signed ``segment_spec: null``; the central
    team could not sign one (sign-config had no way to say null)."""
    from tests.test_sync_downlink import shipped_spec

    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps(shipped_spec("2024.3")))
    env = {"EDGE_SYNC_DOWNLINK_KEY": KEY}
    now = time.time()
    for options in (["--segment-spec", str(spec)], ["--clear-segment-spec"]):
        result = invoke("sync", "sign-config", "--store", STORE, *options, env=env)
        assert result.exit_code == 0, result.output
        now += 1
        outcome = handle_config_set(result.output.strip().encode(),
                                    DownlinkContext(memory_db, STORE, KEY, 300, now))
        assert (outcome.status, outcome.changed) == ("applied", ("segment_spec",)), outcome
    assert json.loads(json.loads(result.output)["body"])["set"] == {"segment_spec": None}
    both = invoke("sync", "sign-config", "--store", STORE, "--segment-spec", str(spec),
                  "--clear-segment-spec", env=env)
    assert both.exit_code == 2 and "not both" in both.output


def test_payload_size_of_a_day(tmp_path):
    site = write_site(tmp_path / "site.yaml")
    db_path = tmp_path / "edge.db"
    recent_data(db_path, hours=2)
    result = invoke("sync", "payload-size", "--site", str(site), "--db", str(db_path))
    assert result.exit_code == 0, result.output
    assert (
        result.output.startswith("96 windows of 900 s: ")
        and "bytes with MQTT framing per store-day" in result.output
    )
    open_database(tmp_path / "empty.db").close()
    empty = invoke("sync", "payload-size", "--site", str(site), "--db", str(tmp_path / "empty.db"))
    assert empty.exit_code == 1 and "holds no data" in empty.output


@pytest.mark.parametrize(
    "options, env_key, message",
    [
        (["--k", "1"], KEY, "min_publishable_count"),
        (["--k", "0"], KEY, "min_publishable_count"),
        (["--k", "1001"], KEY, "min_publishable_count"),
        (["--window", "7"], KEY, "window_s"),
        (["--window", "7000"], KEY, "window_s must divide a day"),
        (["--store", "Bad Store!", "--k", "6"], KEY, "store"),
        (["--k", "6"], "12345", "at least 32 characters"),
        (["--segment-spec", "BAD_SPEC", "--k", "6"], KEY, "segment_spec"),
    ],
)
def test_sign_config_refuses_what_the_box_would_refuse(tmp_path, options, env_key, message):
    """Field failure: --k 1, --k 0, --window 7, --store 'Bad Store!' and a 5-character key
    were all signed (exit 0), for the box to refuse."""
    bad_spec = tmp_path / "spec.json"
    bad_spec.write_text(json.dumps({"spec_version": 3}))
    options = [str(bad_spec) if o == "BAD_SPEC" else o for o in options]
    if "--store" not in options:
        options = ["--store", STORE, *options]
    result = CliRunner().invoke(
        cli, ["sync", "sign-config", *options], env={"EDGE_SYNC_DOWNLINK_KEY": env_key}
    )
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and message in lines[0], lines
    assert len(lines[0]) < 300


def test_publish_once_after_an_acl_refusal_reports_the_brokers_reason(tmp_path):
    from tests.support.mqtt_broker import Broker

    acl = f"user {STORE}\ntopic readwrite store-edge/{STORE}/available\n"
    broker = Broker(tmp_path / "broker", users={STORE: "pw"}, acl=acl).start()
    try:
        site = write_site(
            tmp_path / "site.yaml",
            retry_initial_s=60,
            mqtt={"host": "127.0.0.1", "port": broker.port, "username": STORE, "password": "pw"},
        )
        db_path = tmp_path / "edge.db"
        recent_data(db_path)
        result = invoke(
            "sync", "publish-once", "--site", str(site), "--db", str(db_path), "--timeout", "3"
        )
    finally:
        broker.stop()
    assert result.exit_code == 1
    last = result.output.strip().splitlines()[-1]
    assert last.startswith("Error: ") and "Not authorized" in last, last
