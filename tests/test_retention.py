"""Retention purge, with a clock the test controls."""

import json

import pytest

from edge.config.storage import StorageConfig
from edge.retention import DAY, HOUR, purge

pytestmark = pytest.mark.system


def fill(db, now):
    db["runs"].insert({"id": 1, "camera_id": "c", "source": "s", "model": "m",
                       "started_at": now - 3 * DAY, "ended_at": now - 2 * DAY, "frames": 1,
                       "status": "done"})
    db["runs"].insert({"id": 2, "camera_id": "c", "source": "s", "model": "m",
                       "started_at": now - HOUR, "ended_at": None, "frames": 1,
                       "status": "running"})
    for age_h in (30, 25, 23, 1):
        db["track_points"].insert({"run_id": 2, "camera_id": "c", "track_id": 1, "frame": 0,
                                   "t": now - age_h * HOUR, "x": 0, "y": 0, "left": 0, "top": 0,
                                   "width": 1, "height": 1, "confidence": 0.9})
    # Visits are kept 8 days: a week back for the status page's comparison, that day whole.
    for age_d, visit_id in ((9, "old"), (7, "recent")):
        db["visits"].insert({"visit_id": visit_id, "site_id": "s", "camera_id": "c", "run_id": 2,
                             "track_id": 1, "start_t": now - age_d * DAY - 60,
                             "end_t": now - age_d * DAY, "duration_s": 60, "path_length_m": 5,
                             "checkout_visited": 0, "features": json.dumps({}),
                             "zone_sequence": "[]", "spec_version": "1"})
        db["visit_traits"].insert({"visit_id": visit_id, "trait": "wanderer", "probability": 0.7})
        db["visit_zone_dwell"].insert({"visit_id": visit_id, "zone_id": "z", "dwell_s": 3,
                                       "entries": 1})
        db["line_crossings"].insert({"line_id": "door", "camera_id": "c", "run_id": 2,
                                     "track_id": 1, "t": now - age_d * DAY, "direction": "in"})


def test_purge_keeps_raw_trajectories_at_most_24_hours(memory_db):
    now = 1_800_000_000.0
    fill(memory_db, now)
    result = purge(memory_db, StorageConfig(), now=now, timezone="UTC")
    rows = memory_db.execute("select t from track_points")
    ages = sorted(round((now - t) / HOUR) for (t,) in rows)
    assert ages == [1, 23]
    assert [r["visit_id"] for r in memory_db["visits"].rows] == ["recent"]
    assert [r["visit_id"] for r in memory_db["visit_traits"].rows] == ["recent"]
    assert [r["visit_id"] for r in memory_db["visit_zone_dwell"].rows] == ["recent"]
    assert memory_db["line_crossings"].count == 1
    assert [r["id"] for r in memory_db["runs"].rows] == [2]  # the old run has no points left
    assert result.deleted["track_points"] == 2 and result.deleted["visits"] == 1


def test_shorter_retention_and_idempotence(memory_db):
    now = 1_800_000_000.0
    fill(memory_db, now)
    config = StorageConfig(raw_trajectory_hours=2, visit_days=1)
    purge(memory_db, config, now=now, timezone="UTC")
    assert memory_db["track_points"].count == 1
    assert memory_db["visits"].count == 0
    assert purge(memory_db, config, now=now, timezone="UTC").total == 0


def test_raw_retention_cannot_exceed_24_hours():
    import pytest
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="less than or equal to 24"):
        StorageConfig(raw_trajectory_hours=48)


def _points(db, times):
    if not db.execute("select 1 from runs where id = 2").fetchone():
        db["runs"].insert({"id": 2, "camera_id": "c", "source": "s", "model": "m",
                           "started_at": 0, "ended_at": None, "frames": 1, "status": "running"})
    db["track_points"].insert_all(
        {"run_id": 2, "camera_id": "c", "track_id": i, "frame": 0, "t": t, "x": 0, "y": 0,
         "left": 0, "top": 0, "width": 1, "height": 1, "confidence": 0.9}
        for i, t in enumerate(times))


def oldest_age_h(db, now):
    (oldest,) = db.execute("select min(t) from track_points").fetchone()
    return (now - oldest) / HOUR


def test_hourly_purges_never_let_raw_trajectories_pass_24_hours(memory_db):
    """Three days of a camera writing every minute, the purge every hour (a clock the
    test moves): at every minute the oldest raw point is at most 24 h old. Without the
    margin the same schedule lets points reach 25 h."""
    start = 1_800_000_000.0
    for margin, ceiling in ((HOUR, 24.0), (0.0, 25.0)):
        memory_db.execute("delete from track_points")
        worst = 0.0
        for minute in range(3 * 24 * 60):
            now = start + minute * 60
            _points(memory_db, [now])
            if minute % 60 == 0:
                purge(memory_db, StorageConfig(), now=now, timezone="UTC",
                      margin_s=margin)
            worst = max(worst, oldest_age_h(memory_db, now))
        assert worst <= ceiling and worst > ceiling - 0.05, (margin, worst)
        assert oldest_age_h(memory_db, now) >= 22.9       # a useful day is kept


def test_the_margin_never_deletes_the_recent_half(memory_db):
    now = 1_800_000_000.0
    _points(memory_db, [now - 0.4 * HOUR, now - 0.6 * HOUR])
    purge(memory_db, StorageConfig(raw_trajectory_hours=1), now=now, timezone="UTC",
          margin_s=HOUR)
    assert memory_db["track_points"].count == 1


def test_the_privacy_audit_log_is_kept_400_days(memory_db):
    from edge.privacy.store import record_change

    now = 1_800_000_000.0
    record_change(memory_db, "wifi.rssi_gate_dbm", -70, -65, "test", at=now - 401 * DAY)
    record_change(memory_db, "wifi.rssi_gate_dbm", -65, -60, "test", at=now - 399 * DAY)
    purged = purge(memory_db, StorageConfig(), now=now, timezone="UTC")
    assert purged.deleted["privacy_audit"] == 1
    assert memory_db["privacy_audit"].count == 1


@pytest.mark.parametrize("old, said", [(1, "1 row deleted"), (2, "2 rows deleted")])
def test_edge_purge_deletes_what_would_pass_24_hours_before_the_next_run(
    tmp_path, monkeypatch, old, said
):
    """`edge purge` (the hourly systemd timer, and `edge run`'s periodic job), on a site
    whose status page PIN is a credential, as the installer writes it: the timer's unit
    loads no credentials, and the purge needs none (it exited 78 every hour)."""
    import time

    from click.testing import CliRunner

    from edge.cli import cli
    from edge.runtime.schema import open_database
    from tests.conftest import PETS_SITE

    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    monkeypatch.delenv("EDGE_WEB_PIN", raising=False)
    site = tmp_path / "site.yaml"
    text = PETS_SITE.read_text().replace("  access: open-lan\n",
                                         "  access: pin\n  pin: ${EDGE_WEB_PIN}\n")
    assert "${EDGE_WEB_PIN}" in text
    site.write_text(text + f"\nstorage: {{db_path: {tmp_path / 'edge.db'}}}\n")
    db = open_database(tmp_path / "edge.db")
    now = time.time()
    _points(db, [now - (23.5 + 0.1 * i) * HOUR for i in range(old)] + [now - 22 * HOUR])
    db.close()
    result = CliRunner().invoke(cli, ["purge", "--config", str(site)])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [f"track_points: {said}"]
    db = open_database(tmp_path / "edge.db")
    assert round(oldest_age_h(db, now)) == 22
def test_delivered_outbox_rows_are_purged_but_never_the_backlog(memory_db):
    """The outbox is sync's table: delivered rows go after ``delivered_aggregate_days``;
    pending rows (the store-and-forward backlog) are never purged, however old."""
    now = 1_800_000_000.0
    rows = [
        ("old-delivered", "delivered", 40, 39),
        ("recent-delivered", "delivered", 20, 19),
        ("old-pending", "pending", 40, None),
        ("old-refused", "refused", 40, None),
        ("recent-refused", "refused", 2, None),
    ]
    for id, status, created_days, delivered_days in rows:
        memory_db["sync_outbox"].insert({
            "id": id, "kind": "aggregate", "topic_suffix": "aggregates",
            "window_start": now - created_days * DAY, "window_s": 900, "payload": "{}", "bytes": 2,
            "created_at": now - created_days * DAY, "status": status, "attempts": 1,
            "next_attempt_at": now, "last_error": None,
            "delivered_at": None if delivered_days is None else now - delivered_days * DAY,
        })
    result = purge(memory_db, StorageConfig(), now=now, timezone="UTC")
    kept = sorted(r["id"] for r in memory_db["sync_outbox"].rows)
    assert kept == ["old-pending", "recent-delivered", "recent-refused"]
    assert result.deleted["sync_outbox"] == 2
    assert purge(memory_db, StorageConfig(delivered_aggregate_days=10), now=now,
                 timezone="UTC").deleted == {"sync_outbox": 1}


def test_a_killed_replay_leaves_no_run_running_for_ever(tmp_path):
    """Field failure (issue 18): a killed `edge replay` left its run `running` for ever
    (5 of 20 runs on one box), so `edge purge` never removed it. A run records its
    process; a run whose process is gone is closed as `interrupted`, then purged."""
    import signal
    import sqlite3
    import subprocess
    import sys
    import time

    from edge.config import load_site
    from edge.runtime.schema import open_database
    from edge.storage.trajectories import close_dead_runs
    from tests.conftest import PETS_SITE

    db_path = tmp_path / "edge.db"
    replay = subprocess.Popen(
        [sys.executable, "-m", "edge", "replay", "--config", str(PETS_SITE), "--db",
         str(db_path), "--quiet"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )

    def runs() -> list[tuple]:
        try:
            with sqlite3.connect(db_path, timeout=10) as conn:
                return conn.execute("select id, status from runs").fetchall()
        except sqlite3.OperationalError:  # not created yet
            return []

    try:
        deadline = time.monotonic() + 120
        while not runs():
            assert replay.poll() is None, replay.stderr.read()
            assert time.monotonic() < deadline, "the replay never started its run"
            time.sleep(0.1)
        assert close_dead_runs(open_database(db_path)) == []  # alive: left alone
    finally:
        replay.send_signal(signal.SIGKILL)
        replay.wait(10)
    (run_id, status), = runs()
    assert status == "running"
    db = open_database(db_path)
    storage = load_site(PETS_SITE).storage
    now = time.time()
    # recent: kept, but closed
    assert purge(db, storage, now, timezone="UTC").deleted.get("runs") is None
    assert runs() == [(run_id, "interrupted")]
    assert purge(db, storage, now + 2 * 86_400, timezone="UTC").deleted["runs"] == 1
    assert runs() == []



@pytest.mark.parametrize("month, start", [("forward", (2026, 3, 22)), ("back", (2026, 10, 18))])
def test_visits_are_kept_calendar_days_of_the_store_across_the_clock_changes(
    memory_db, month, start
):
    """Regression (review: DST compare): ``visit_days`` counted 86,400-s days while the
    status page compares with the same weekday a calendar week back; in the week after
    the clocks went back (a 25-hour day) every purge from 23:00 deleted the first hour of
    last week's day. Hourly purges for three weeks around a clock change in London, a
    visit ending every 10 minutes: each lives ``visit_days`` calendar days (8 x 24 h, an
    hour more or less across the change) plus at most one purge interval, the cutoff
    never goes back (the page's "kept since" is the same rule), and the day a week back
    is whole at every purge."""
    import datetime as dt
    from zoneinfo import ZoneInfo

    from edge.retention import visit_cutoff

    london = ZoneInfo("Europe/London")
    first = dt.datetime(*start, tzinfo=london).timestamp()
    memory_db["visits"].insert_all(
        {"visit_id": f"v{i}", "site_id": "s", "camera_id": "c", "run_id": 1, "track_id": i,
         "start_t": end - 60, "end_t": end, "duration_s": 60, "path_length_m": 1,
         "checkout_visited": 0, "features": "{}", "zone_sequence": "[]", "spec_version": "1"}
        for i, end in enumerate(first - 9 * DAY + 600 * j for j in range(30 * 144)))
    purge(memory_db, StorageConfig(), now=first - HOUR + 17, timezone="Europe/London",
          margin_s=HOUR)
    lived: list[float] = []
    previous = visit_cutoff(first - HOUR + 17, 8, london)
    for hour in range(21 * 24):
        now = first + hour * HOUR + 17
        left = {row[0] for row in memory_db.execute("select end_t from visits")}
        purge(memory_db, StorageConfig(), now=now, timezone="Europe/London", margin_s=HOUR)
        gone = left - {row[0] for row in memory_db.execute("select end_t from visits")}
        lived += [(now - end) / HOUR for end in gone]
        cutoff = visit_cutoff(now, 8, london)
        assert cutoff >= previous
        previous = cutoff
        week_back = dt.datetime.fromtimestamp(now, london).date() - dt.timedelta(days=7)
        assert cutoff <= dt.datetime.combine(week_back, dt.time(), london).timestamp()
    longest = 8 * 24 + (1 if month == "back" else 0) + 1          # and one purge interval
    shortest = 8 * 24 - (1 if month == "forward" else 0)
    assert shortest <= min(lived) and max(lived) <= longest, (min(lived), max(lived))
    assert max(lived) > longest - 0.2 if month == "back" else min(lived) < shortest + 0.2
