"""The sync and a wrong wall clock: a step forward closes no window the data has not
reached, and a clock behind the cursor is reported."""

from __future__ import annotations

import json

from edge.runtime.schema import open_database
from edge.storage.health import read_health
from edge.storage.trajectories import start_run
from sync.publisher import SyncService
from tests.support.net import free_port
from tests.support.sync_helpers import add_crossings, sync_site
from tests.test_sync_mqtt import mqtt_section

DAY0 = 1_709_251_200.0
HOUR = 3600.0


def worker_built_until(db, run_id: int, t: float) -> None:
    """What a live camera worker's visit build records: how far it has seen (its present)."""
    with db.atomic():
        db.table("visit_build_runs").upsert(
            {"run_id": run_id, "done_until_t": t, "finished": 0, "built_until_t": t},
            pk="run_id",
        )


def entries(db) -> list[tuple[float, int | None]]:
    rows = db.execute("select window_start, payload from sync_outbox order by window_start")
    return [(start - DAY0, (json.loads(payload)["footfall"] or {}).get("in"))
            for start, payload in rows]


def test_a_clock_stepped_forward_closes_no_window_the_data_has_not_reached(tmp_path):
    """A bogus NTP step (or a wrong real-time clock) of a day: one pass closed 92 empty
    windows up to the false time and moved the cursor there; once the clock was
    corrected, the real visits of those hours were never aggregated nor sent."""
    site = sync_site(window_s=900, settle_s=0, mqtt=mqtt_section(free_port()))
    db = open_database(tmp_path / "edge.db")
    run = start_run(db, "view001", "rtsp://camera", "model")  # a live worker, running
    clock = [DAY0 + HOUR + 300]
    service = SyncService(site, db, clock=lambda: clock[0])
    add_crossings(db, [DAY0 + i * 60 for i in range(60)])  # the first hour: 60 entries
    worker_built_until(db, run, DAY0 + HOUR + 300)
    service.run_pass()
    assert len(entries(db)) == 4
    clock[0] = DAY0 + 25 * HOUR  # the step: the worker has not written past 01:05
    report = service.run_pass()
    assert report.produced == 0 and service.outbox.cursor() == DAY0 + HOUR
    health = next(r for r in read_health(db) if r["component"] == "sync")
    assert health["status"] == "down"  # not connected; the alarm is in the detail
    assert any("no visit source has written data past 2024-03-01T01:05:00Z" in alarm
               for alarm in health["detail"]["alarms"])
    clock[0] = DAY0 + 3 * HOUR + 300  # corrected; people kept coming in
    add_crossings(db, [DAY0 + HOUR + i * 60 for i in range(120)])
    worker_built_until(db, run, DAY0 + 3 * HOUR + 300)
    service.run_pass()
    assert entries(db) == [(w * 900.0, 15) for w in range(12)]
    assert service.storage_problem() is None and "held" not in service._alarms


def test_a_clock_behind_the_cursor_is_reported(tmp_path):
    site = sync_site(window_s=900, settle_s=0, mqtt=mqtt_section(free_port()))
    db = open_database(tmp_path / "edge.db")
    add_crossings(db, [DAY0 + i * 60 for i in range(120)])
    clock = [DAY0 + 2 * HOUR]
    service = SyncService(site, db, clock=lambda: clock[0])
    service.run_pass()
    assert service.outbox.cursor() == DAY0 + 2 * HOUR
    clock[0] = DAY0 + HOUR  # set back an hour
    assert service.run_pass().produced == 0
    health = next(r for r in read_health(db) if r["component"] == "sync")
    assert health["detail"]["clock_behind_cursor_s"] == HOUR
    assert any("the clock is behind the windows already produced (up to "
               "2024-03-01T02:00:00Z)" in alarm for alarm in health["detail"]["alarms"])
    clock[0] = DAY0 + 2 * HOUR + 900  # past the cursor again: production resumes
    assert service.run_pass().produced == 1
    assert "clock" not in service._alarms
