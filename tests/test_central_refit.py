"""The federated segment refit end to end (issue 16): scenario visits split across 20
simulated stores (each a real box database and its daily aggregate), stored centrally in
PostgreSQL, pooled there into a new spec (``edge sync refit``), signed, carried over a
real mosquitto to every store's sync service, and hot-reloaded by every box."""

from __future__ import annotations

import json
import time
from datetime import date

import numpy as np
import paho.mqtt.client as paho
import psycopg
import pytest
from click.testing import CliRunner

from edge.cli import cli
from edge.runtime.schema import open_database
from edge.visits.reload import SpecHolder
from edge.visits.scenarios import scenario_site
from edge.visits.segment_stats import scaled_features, sufficient_statistics
from edge.visits.spec import default_spec_path, downlinked_spec_path, read_spec
from sync import contract
from sync.aggregate import Window
from sync.central.pool import refit_from_database
from sync.central.refit import refit_spec
from sync.central.store import CentralStore, screen
from sync.producer import build_message
from sync.publisher import SyncService
from tests.refit_support import (
    DAY0,
    DAY_S,
    LAST,
    bunch_visits,
    day_visits,
    publish_day,
    write_visits,
)
from tests.support.central_support import (  # noqa: F401 (fixture)
    central_db_fixture,
    open_central_store,
)
from tests.support.mqtt_broker import broker_fixture  # noqa: F401 (fixture)

pytestmark = pytest.mark.system

STORES = 20
K = 5
PREFIX = "refit-test"
KEY = "refit-test-downlink-key-0123456789-abcdef"
DAY = "2025-12-05"


def store_site(i: int, **sync):
    site = scenario_site()
    update = {"site": site.site.model_copy(update={"id": f"store-{i:02d}"})}
    if sync:
        update["sync"] = site.sync.model_validate({**site.sync.model_dump(), **sync})
    return site.model_copy(update=update)


def params(spec) -> np.ndarray:
    return np.array([[c.weight, *c.mean, *c.var] for c in spec.segments.components])


@pytest.fixture(name="central")
def central_fixture(central_db):
    """The central store on this test's database, migrated, as an ingest worker has it."""
    with open_central_store(central_db, worker="refit-test") as store:
        yield store


def send_day(central: CentralStore, db, site, window: Window = LAST) -> dict:
    """The store's closing aggregate of the day, screened and committed as the ingest
    worker does (``sync.central.store``), after the day's earlier windows went to the
    outbox (the statistics sum the visits of the windows whose count was published)."""
    publish_day(db, site, K, window)
    message = build_message(db, site, window, K)
    topic = contract.Topics(PREFIX, site.site.id)(contract.AGGREGATES)
    counts = central.write([screen(topic, contract.canonical_json(message))])
    assert counts.stored == 1, counts
    return message


def wait_for(condition, timeout_s: float = 15.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(0.05)


def test_pooled_refit_round_trip_over_the_downlink(
    tmp_path, central_db, central, broker, monkeypatch, capsys
):
    spec = read_spec(default_spec_path())[0]
    visits = day_visits(10, 0)
    boxes = []
    for i in range(STORES):
        site = store_site(i)
        db = open_database(tmp_path / f"{site.site.id}.db")
        write_visits(db, site.site.id, visits[i::STORES])
        bunch_visits(db, 10)  # every window with visits publishes its count
        message = send_day(central, db, site)
        assert message["segment_stats"]["visits"] == len(visits[i::STORES])
        assert not message["suppressed"].get("segment_stats")
        boxes.append((site, db))

    # the central refit from PostgreSQL, by the command the central team runs
    out = tmp_path / "spec-1.1.0.json"
    run = CliRunner().invoke(cli, ["sync", "refit", "--dsn", central_db, "--spec",
                                   str(default_spec_path()), "--day", DAY, "--out", str(out)])
    assert run.exit_code == 0, run.output
    assert f"from {STORES} stores (20 store-days, {len(visits)} visits)" in run.output
    new = read_spec(out)[0]
    assert new.spec_version == "1.1.0"

    # ... matches the refit on all visits in one place within 1 % per parameter
    names = list(spec.segments.features)
    x = np.array([[v.measured.features[n] for n in names] for v in visits])
    central = refit_spec(spec, [sufficient_statistics(spec, scaled_features(spec, names, x))],
                         min_stores=1)
    relative = np.abs(params(new) - params(central.spec)) / np.abs(params(central.spec))
    with capsys.disabled():
        print(f"\npooled (20 stores, via PostgreSQL) vs one place: max relative difference "
              f"{relative.max():.2g}; parameters moved up to "
              f"{np.max(np.abs(params(new) - params(spec))):.2g} (absolute)")
    assert relative.max() < 0.01
    assert not np.allclose(params(new), params(spec), rtol=1e-3)  # the round did move them

    # signed by the central platform's command, carried over mosquitto, hot-reloaded
    document = json.loads(out.read_text())
    listener = paho.Client(paho.CallbackAPIVersion.VERSION2, protocol=paho.MQTTv5)
    listener.connect("127.0.0.1", broker.port)
    listener.loop_start()
    mqtt = {"host": "127.0.0.1", "port": broker.port, "topic_prefix": PREFIX,
            "reconnect_min_s": 1, "reconnect_max_s": 2}
    try:
        for i, (_, db) in enumerate(boxes):
            site = store_site(i, downlink_key=KEY, mqtt=mqtt, settle_s=0)
            store = site.site.id
            monkeypatch.setenv("EDGE_STATE_DIR", str(tmp_path / "state" / store))
            holder = SpecHolder(default_spec_path(), names, [],
                                override_path=downlinked_spec_path())
            assert holder.spec_version == "1.0.2"
            signed = CliRunner().invoke(
                cli, ["sync", "sign-config", "--store", store, "--segment-spec", str(out)],
                env={"EDGE_SYNC_DOWNLINK_KEY": KEY})
            assert signed.exit_code == 0, signed.output
            service = SyncService(site, db)
            service.client.start()
            try:
                wait_for(service.client.subscribed.is_set, what=f"{store} subscribed")
                listener.publish(f"{PREFIX}/{store}/config/set",
                                 signed.output.strip().encode(), qos=1).wait_for_publish(5)
                wait_for(lambda s=service: s.downlinks.qsize() > 0, what=f"{store} downlink")
                service.run_pass()
            finally:
                service.client.stop()
            assert service.last_downlink is not None
            assert service.last_downlink.status == "applied", service.last_downlink.reason
            assert holder.maybe_reload(force=True) and holder.spec_version == "1.1.0"
            assert holder.classifier.spec_version == "1.1.0"
            # the box's next E-step runs the new spec (the next EM iteration)
            again = build_message(db, site, LAST, K)["segment_stats"]
            assert again["spec_version"] == "1.1.0"
            assert read_spec(downlinked_spec_path())[0] == new
            assert document["spec_version"] == "1.1.0"
    finally:
        listener.loop_stop()
        listener.disconnect()


def test_a_refit_that_cannot_be_done_keeps_the_spec_and_says_why(tmp_path, central_db, central):
    spec = read_spec(default_spec_path())[0]
    visits = day_visits(4, 3)
    # day 1: six stores of 80 visits each (complete statistics); day 2: the same six
    # stores with 6 visits each, where k=5 withholds segments
    for i in range(6):
        site = store_site(i)
        db = open_database(tmp_path / f"{site.site.id}.db")
        write_visits(db, site.site.id, visits[i::6])
        bunch_visits(db, 10)
        send_day(central, db, site)
        late = day_visits(1, 10 + i, DAY0 + DAY_S)[:6]
        write_visits(db, site.site.id, late)
        bunch_visits(db, 6, day_start=DAY0 + DAY_S)  # one window of 6, published at k=5
        send_day(central, db, site, Window(LAST.start + DAY_S, 900))

    def refit(*args: str):
        out = tmp_path / "new.json"
        out.unlink(missing_ok=True)
        result = CliRunner().invoke(cli, ["sync", "refit", "--dsn", central_db, "--out",
                                          str(out), *args])
        return result, out

    too_few, out = refit("--spec", str(default_spec_path()), "--day", DAY, "--min-stores", "10")
    assert too_few.exit_code == 1 and not out.exists()
    assert "keeping spec 1.0.2" in too_few.output and "6 stores, at least 10" in too_few.output

    withheld, out = refit("--spec", str(default_spec_path()), "--day", "2025-12-06")
    assert withheld.exit_code == 1 and not out.exists()
    assert "withheld the statistics of segment(s)" in withheld.output
    # a range that includes the withheld day is refused as well (a biased rest is no refit)
    ranged, _ = refit("--spec", str(default_spec_path()), "--day", DAY, "--until", "2025-12-06")
    assert ranged.exit_code == 1 and "withheld" in ranged.output

    done, out = refit("--spec", str(default_spec_path()), "--day", DAY)
    assert done.exit_code == 0 and out.exists(), done.output
    # statistics of 1.0.2 say nothing about 1.1.0: a refit of the new spec waits for them
    current = tmp_path / "spec-1.1.0.json"
    current.write_text(out.read_text())
    stale, _ = refit("--spec", str(current), "--day", DAY)
    assert stale.exit_code == 1
    assert "keeping spec 1.1.0" in stale.output and "other spec versions" in stale.output
    with psycopg.connect(central_db, autocommit=True) as conn:
        result, pooled = refit_from_database(conn, spec, date(2025, 12, 5), date(2025, 12, 5))
    assert result.ok and pooled.store_days == 6 and pooled.other_versions == 0

    bad_day = CliRunner().invoke(cli, ["sync", "refit", "--dsn", central_db, "--spec",
                                       str(default_spec_path()), "--day", "5/12/2025",
                                       "--out", str(tmp_path / "x.json")])
    assert bad_day.exit_code == 2 and "expected YYYY-MM-DD" in bad_day.output
