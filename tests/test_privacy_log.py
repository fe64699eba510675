"""The privacy audit log: a row per change of a privacy setting when a service starts,
none when nothing changed, no duplicates when services start together; shown to IT by
`edge privacy audit-log` and `GET /admin/privacy-audit` (IT token only)."""

from __future__ import annotations

import contextlib
import json
import signal
import sqlite3
import subprocess
import sys
import threading
import time

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from edge.cli import cli
from edge.config import load_site, parse_site
from edge.privacy.settings import privacy_settings, record_service_start
from edge.privacy.store import read_audit_log
from edge.runtime.schema import open_database
from edge.web.app import create_app
from edge.web.dashboard import WebDeps
from tests.conftest import PETS_SITE
from tests.support.net import free_port
from tests.support.web_support import BASE_URL, with_web

pytestmark = pytest.mark.system

TOKEN = "it-token-0123456789abcdef"


def site_with(extra: str = ""):
    return parse_site(PETS_SITE.read_text() + extra, base_dir=PETS_SITE.parent)


def test_a_start_records_what_changed_and_nothing_else(memory_db):
    site = site_with()
    first = record_service_start(memory_db, site, "service:camera-view001", now=100.0)
    assert first == list(privacy_settings(site))
    assert record_service_start(memory_db, site, "service:sync", now=200.0) == []
    gated = site_with("wifi:\n  rssi_gate_dbm: -60\n  exclude_addresses: [dc:fb:48:dd:c6:0b]\n"
                      "storage:\n  raw_trajectory_hours: 12\n")
    changed = record_service_start(memory_db, gated, "service:wifi", now=300.0)
    assert sorted(changed) == ["storage.raw_trajectory_hours", "wifi.enabled",
                               "wifi.excluded_devices", "wifi.rssi_gate_dbm"]
    latest = {r["setting"]: r for r in read_audit_log(memory_db) if r["at"] == 300.0}
    assert (latest["wifi.rssi_gate_dbm"]["old"], latest["wifi.rssi_gate_dbm"]["new"]) == (-70, -60)
    assert latest["storage.raw_trajectory_hours"]["old"] == 24.0
    assert latest["wifi.excluded_devices"]["new"] == 1         # a count, never the address
    assert "dc:fb" not in json.dumps(read_audit_log(memory_db))


def test_services_starting_together_record_each_change_once(tmp_path):
    path = tmp_path / "edge.db"
    open_database(path).close()
    site = site_with()
    barrier = threading.Barrier(4)
    errors = []

    def start(name: str) -> None:
        try:
            db = open_database(path)
            barrier.wait()
            record_service_start(db, site, name)
        except Exception as error:   # surfaced below
            errors.append(error)

    threads = [threading.Thread(target=start, args=(f"service:{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    with sqlite3.connect(path) as connection:
        rows = connection.execute("select setting, count(*) from privacy_audit group by setting")
        assert {count for _, count in rows} == {1}


def test_the_sync_service_records_its_settings_when_it_starts(tmp_path):
    site = tmp_path / "site.yaml"
    db_path = tmp_path / "edge.db"
    site.write_text(PETS_SITE.read_text() + f"\nstorage: {{db_path: {db_path}}}\n"
                    f"sync:\n  mqtt: {{host: 127.0.0.1, port: {free_port()}}}\n")
    process = subprocess.Popen([sys.executable, "-m", "edge", "run", "sync", "--config", str(site)],
                               env={**__import__("os").environ, "EDGE_STATE_DIR": str(tmp_path)},
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        rows = []
        while time.monotonic() < deadline and not rows:
            time.sleep(0.2)
            if db_path.exists():   # read only: the service is creating its tables meanwhile
                try:
                    connection = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
                    with contextlib.closing(connection):
                        rows = connection.execute("select source from privacy_audit").fetchall()
                except sqlite3.Error:
                    rows = []
        assert {source for (source,) in rows} == {"service:sync"} and len(rows) >= 8
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(20)


@pytest.fixture
def logged_db(tmp_path):
    db = open_database(tmp_path / "edge.db")
    record_service_start(db, site_with(), "service:sync", now=1_710_000_000.0)
    return tmp_path / "edge.db"


def test_it_reads_the_log_with_the_cli(logged_db):
    result = CliRunner().invoke(cli, ["privacy", "audit-log", "--db", str(logged_db)])
    assert result.exit_code == 0
    assert "privacy.min_publishable_count: - -> 5  (service:sync)" in result.output
    rows = CliRunner().invoke(cli, ["privacy", "audit-log", "--db", str(logged_db), "--json",
                                    "--limit", "3"]).output.splitlines()
    assert len(rows) == 3 and json.loads(rows[0])["source"] == "service:sync"


def test_it_reads_the_log_on_the_web_with_its_token_only(logged_db):
    site = with_web(load_site(PETS_SITE), access="open-lan", admin_token=TOKEN)
    with TestClient(create_app(WebDeps(site=site, db_path=logged_db)),
                    base_url=BASE_URL) as web:
        assert web.get("/admin/privacy-audit").status_code == 401
        wrong = web.get("/admin/privacy-audit", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code in (401, 403)
        answer = web.get("/admin/privacy-audit?limit=2",
                         headers={"Authorization": f"Bearer {TOKEN}"})
    assert answer.status_code == 200
    body = answer.json()
    assert len(body["rows"]) == 2 and body["debug_modes_on"] == []
    assert body["rows"][0]["id"] > body["rows"][1]["id"]            # newest first
