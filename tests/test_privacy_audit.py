"""The leak audit: after a full run on the shared recordings (tests/support/privacy_run.py), no
address, SSID, image, frame or embedding is anywhere the box wrote or sent; and the
audit is proven able to fail by planting each kind of leak in a copy of the run."""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.privacy.audit import LeakAudit, build_needles
from edge.privacy.needles import capture_identifiers
from edge.wifi.anonymize import parse_mac
from tests.conftest import PETS_VIDEO, skip_module_without_shared
from tests.support.mqtt_broker import Broker
from tests.support.privacy_run import (
    CAPTURES,
    CLOCK,
    MAX_FRAMES,
    RAISED_K,
    Capture,
    audit_run,
    shared_full_run,
    wait_for,
    write_site,
)
from tests.test_wifi_brno import lab_pcs

# One worker runs them all: the full run and the audit's needles are built once, and no
# worker waits on the other's lock while it builds them.
pytestmark = [pytest.mark.system, pytest.mark.xdist_group("privacy_run")]
skip_module_without_shared()

BRNO_DAY = CAPTURES[2]


@pytest.fixture(scope="session")
def run_folder(tmp_path_factory) -> Path:
    return shared_full_run(tmp_path_factory)


@pytest.fixture(scope="session")
def audit() -> LeakAudit:
    """Every address and SSID of every shared capture (and the site's excluded devices),
    image signatures, and pixel runs of the replayed frames."""
    needles = build_needles(CAPTURES, video=PETS_VIDEO, max_frames=MAX_FRAMES,
                            extra_addresses=[parse_mac(a) for a in lab_pcs()])
    return LeakAudit(needles)


@pytest.fixture(scope="session")
def clean_report(run_folder, audit):
    run_audit = audit.fresh()
    audit_run(run_audit, run_folder)
    return run_audit.report


@pytest.fixture(scope="session")
def a_phone() -> bytes:
    """A real address of the Brno capture (a phone, not a lab PC)."""
    pcs = {parse_mac(a) for a in lab_pcs()}
    found = capture_identifiers([BRNO_DAY])
    return sorted(a for a in found.addresses if a not in pcs and len(set(a)) == 6)[0]


def query(db: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(db) as connection:
        return connection.execute(sql).fetchall()


def test_the_full_run_did_real_work(run_folder):
    """The audit below is only worth something if the run produced everything it scans."""
    db = run_folder / "state" / "edge.db"
    run = json.loads((run_folder / "run.json").read_text())
    assert query(db, "select count(*) from track_points")[0][0] > 300
    assert query(db, "select count(*) from visits")[0][0] >= 3
    assert query(db, "select count(*) from visit_traits")[0][0] > 0
    assert query(db, "select count(*) from wifi_windows")[0][0] > 1000
    assert query(db, "select count(distinct sensor) from wifi_windows")[0][0] == len(CAPTURES)
    # One hourly window per hour back to the visits' horizon: storage.visit_days (8 days),
    # kept whole by the purge (edge.retention.visit_cutoff).
    assert run["sync"] == {"delivered": 8 * 24, "refused": 0, "downlink": "applied"}
    assert {"aggregates", "stats", "config/state", "available"} <= set(run["topics"])
    assert set(run["pages"].values()) == {200} and len(run["pages"]) >= 30
    # Real figures went out: Wi-Fi counts and visits of the replayed day.
    aggregates = [json.loads(p.read_bytes()) for p in (run_folder / "mqtt").glob("*.payload")
                  if b'"kind":"aggregate' in p.read_bytes()]
    assert sum(1 for a in aggregates if a.get("wifi")) >= 10
    # The audit log: settings at service start, and the downlinked k with its old value.
    changes = query(db, "select setting, old, new, source from privacy_audit")
    assert ("privacy.min_publishable_count", "5", str(RAISED_K)) in [c[:3] for c in changes]
    assert any(source.startswith("downlink ") for *_, source in changes)
    assert "privacy.min_publishable_count: 5 -> 6" in (run_folder / "logs" /
                                                        "audit-log.log").read_text()


def test_the_full_run_leaves_no_identifier_anywhere(clean_report):
    report = clean_report
    print("\nLeak audit of the full run:", report.summary())
    assert report.needles["address"] > 15_000 and report.needles["address-hash"] > 100_000
    assert report.needles["ssid"] > 100 and report.needles["frame-pixels"] > 500
    assert report.stats.sources > 200 and report.stats.bytes > 1_000_000
    assert report.stats.database_values > 20_000 and report.stats.json_documents > 150
    assert report.clean, "\n".join(str(finding) for finding in report.findings[:20])


# -- planted leaks ----------------------------------------------------------------------


def _db_insert(db: Path, sql: str, params: tuple) -> None:
    with sqlite3.connect(db) as connection:
        connection.execute(sql, params)
        connection.commit()
        connection.execute("pragma wal_checkpoint(truncate)")


def plant_mac_in_db_row(root: Path, phone: bytes) -> str:
    shouted = "-".join(f"{b:02X}" for b in phone)            # upper case, dashes
    _db_insert(root / "state" / "edge.db",
               "insert into health (component, status, detail, message, updated_at) "
               "values ('wifi:mon9', 'ok', '{}', ?, 0)", (f"strongest device {shouted}",))
    return "address"


def plant_mac_hash_in_db_row(root: Path, phone: bytes) -> str:
    digest = hashlib.sha256(phone).hexdigest()
    _db_insert(root / "state" / "edge.db",
               "update wifi_windows set sensor = ? where rowid = (select min(rowid) from "
               "wifi_windows)", (f"dev:{digest}",))
    return "address-hash"


def plant_ssid_in_log_line(root: Path, phone: bytes) -> str:
    wireshark = [path for path in CAPTURES if path.name == "wpa-Induction.pcap"]
    ssid = sorted(s for s in capture_identifiers(wireshark).ssids if len(s) >= 5)[0]
    with (root / "logs" / "in-process.log").open("ab") as log:
        log.write(b"DEBUG edge.wifi.parser: probe request for " + ssid + b"\n")
    return "ssid"


def _first_frame() -> np.ndarray:
    capture = cv2.VideoCapture(str(PETS_VIDEO))
    ok, frame = capture.read()
    capture.release()
    assert ok
    return frame


def plant_jpeg_in_state_dir(root: Path, phone: bytes) -> str:
    (root / "state" / "snapshots").mkdir()
    (root / "state" / "snapshots" / "view001.jpg").write_bytes(
        cv2.imencode(".jpg", _first_frame())[1].tobytes())
    return "image"


def plant_png_blob_in_db(root: Path, phone: bytes) -> str:
    crop = _first_frame()[200:300, 300:360]
    _db_insert(root / "state" / "edge.db", "create table crops (visit_id text, image blob)", ())
    _db_insert(root / "state" / "edge.db", "insert into crops values ('v1', ?)",
               (cv2.imencode(".png", crop)[1].tobytes(),))
    return "image"


def plant_raw_frame_in_state_dir(root: Path, phone: bytes) -> str:
    (root / "state" / "frame-000000.raw").write_bytes(_first_frame().tobytes())
    return "frame-pixels"


def plant_embedding_in_db(root: Path, phone: bytes) -> str:
    vector = np.random.default_rng(1).normal(size=256).round(5).tolist()
    _db_insert(root / "state" / "edge.db",
               "update visits set features = ? where rowid = (select min(rowid) from visits)",
               (json.dumps({"duration_s": 12.0, "appearance": vector}),))
    return "embedding"


def plant_mac_in_mqtt_payload(root: Path, phone: bytes) -> str:
    """Through the product's own path: a service puts an address in its health message,
    the sync service publishes its stats to a real broker, the capture keeps the payload."""
    from edge.config import load_site
    from edge.runtime.schema import open_database
    from edge.storage.health import report_health
    from sync.publisher import SyncService

    broker = Broker(root / "broker2").start()
    capture = Capture(broker.port)
    site = load_site(write_site(root / "site2.yaml", broker.port))
    stop = threading.Event()
    db_path = root / "state" / "edge.db"

    def serve() -> None:
        db = open_database(db_path)
        report_health(db, "wifi:mon0", "ok", f"loudest phone {phone.hex(':')}")
        SyncService(site, db, clock=lambda: CLOCK + 3600).run(stop)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        wait_for(lambda: any(t.endswith("/stats") for t, _ in capture.messages), 30,
                 "a stats message")
    finally:
        stop.set()
        thread.join(15)
        capture.close()
        broker.stop()
        shutil.rmtree(root / "broker2")
    # Only the new traffic goes into the run's captured payloads.
    topics = json.loads((root / "mqtt" / "topics.json").read_text())
    for index, (topic, payload) in enumerate(capture.messages):
        name = f"planted-{index:03d}.payload"
        (root / "mqtt" / name).write_bytes(payload)
        topics[name] = topic
    (root / "mqtt" / "topics.json").write_text(json.dumps(topics))
    # The database now holds the health row too: it is a finding of its own there.
    return "address"


PLANTS = [plant_mac_in_db_row, plant_mac_hash_in_db_row, plant_ssid_in_log_line,
          plant_jpeg_in_state_dir, plant_png_blob_in_db, plant_raw_frame_in_state_dir,
          plant_embedding_in_db, plant_mac_in_mqtt_payload]
WHERE = {
    "plant_mac_in_db_row": ["state/edge.db"],
    "plant_mac_hash_in_db_row": ["state/edge.db"],
    "plant_ssid_in_log_line": ["logs/in-process.log"],
    "plant_jpeg_in_state_dir": ["state/snapshots/view001.jpg"],
    "plant_png_blob_in_db": ["state/edge.db"],
    "plant_raw_frame_in_state_dir": ["state/frame-000000.raw"],
    "plant_embedding_in_db": ["state/edge.db"],
    "plant_mac_in_mqtt_payload": ["mqtt privacy-audit/pets09-demo/stats", "state/edge.db"],
}


@pytest.mark.parametrize("plant", PLANTS, ids=[p.__name__.removeprefix("plant_") for p in PLANTS])
def test_a_planted_leak_is_caught(plant, run_folder, audit, clean_report, a_phone, tmp_path):
    """A copy of the clean run with one leak planted: the audit fails, naming only it."""
    copy = tmp_path / "run"
    shutil.copytree(run_folder, copy, ignore=shutil.ignore_patterns("*.lock"))
    kind = plant(copy, a_phone)
    planted = audit.fresh()
    audit_run(planted, copy)
    findings = planted.report.findings
    assert not planted.report.clean
    assert kind in {finding.kind for finding in findings}
    places = WHERE[plant.__name__]
    assert all(any(finding.source.startswith(place) for place in places)
               for finding in findings), [str(f) for f in findings[:10]]
    for place in places:
        assert any(finding.source.startswith(place) for finding in findings), place
    # Findings name what was found, never the identifier itself.
    assert a_phone.hex(":") not in " ".join(str(finding) for finding in findings).lower()
