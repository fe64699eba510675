"""The store-and-forward outbox: deterministic ids, atomic cursor, bounds, full disk, restarts."""

from __future__ import annotations

import json
import logging
import sqlite3

import pytest

from edge.errors import StorageError
from edge.runtime.schema import open_database
from edge.storage.health import read_health
from sync import contract
from sync.outbox import Outbox, PublishedWindow, cover, published_windows
from sync.producer import produce
from sync.publisher import SyncService
from sync.settings import effective_settings
from tests.support.sync_helpers import STORE, add_crossings, sync_site

DAY0 = 1_709_251_200.0  # 2024-03-01T00:00:00Z, a midnight


def fill(db, windows: int, window_s: int = 900, per_window: int = 6) -> None:
    add_crossings(db, [DAY0 + w * window_s + i for w in range(windows) for i in range(per_window)])


def run_produce(db, site, now):
    return produce(
        db,
        site,
        Outbox(db, max_pending=site.sync.outbox_max_pending),
        effective_settings(db, site),
        now,
    )


def ids(db):
    return [row[0] for row in db.execute("select id from sync_outbox order by window_start")]


def test_closed_windows_become_rows_with_deterministic_ids(tmp_path):
    site = sync_site(window_s=900, settle_s=120)
    db = open_database(tmp_path / "edge.db")
    fill(db, 4)
    # 119 s after 01:00 the window 00:45-01:00 has not settled (settle_s = 120); at 120 s it has.
    produced = run_produce(db, site, DAY0 + 3600 + 119)
    assert [w.start for w in produced.windows] == [DAY0, DAY0 + 900, DAY0 + 1800]
    assert ids(db) == [f"{STORE}/20240301T0{h}Z/900/aggregate" for h in ("00000", "01500", "03000")]
    run_produce(db, site, DAY0 + 3600 + 120)
    assert len(ids(db)) == 4
    # Each row is the published bytes: schema-valid, k-anonymous, footfall exact.
    rows = list(db["sync_outbox"].rows)
    for row in rows:
        message = json.loads(row["payload"])
        contract.validate("aggregate", message)
        assert message["id"] == row["id"] and message["footfall"]["in"] == 6
        assert row["bytes"] == len(row["payload"].encode()) and row["status"] == "pending"
    # Empty windows after the data are produced too: zero is information, a gap is not.
    run_produce(db, site, DAY0 + 2 * 3600 + 120)
    assert len(ids(db)) == 8
    assert json.loads(db["sync_outbox"].get(ids(db)[-1])["payload"])["footfall"]["in"] is None


def test_same_window_gives_same_id_and_bytes_and_is_stored_once(tmp_path):
    site = sync_site(window_s=900, settle_s=0)
    db = open_database(tmp_path / "edge.db")
    fill(db, 2)
    outbox = Outbox(db)
    run_produce(db, site, DAY0 + 1800)
    first = {row["id"]: row["payload"] for row in db["sync_outbox"].rows}
    # A crash between aggregation and commit: the window is aggregated again, same id, same bytes.
    db.execute("delete from sync_state where key = 'cursor'")
    run_produce(db, site, DAY0 + 1800)
    assert {row["id"]: row["payload"] for row in db["sync_outbox"].rows} == first
    assert outbox.summary().pending == 2


def test_outbox_and_cursor_survive_a_restart(tmp_path):
    site = sync_site(window_s=900, settle_s=0)
    path = tmp_path / "edge.db"
    db = open_database(path)
    fill(db, 3)
    run_produce(db, site, DAY0 + 1800)
    outbox = Outbox(db)
    outbox.mark_delivered([ids(db)[0]], DAY0 + 1800)
    db.close()
    again = open_database(path)
    summary = Outbox(again).summary()
    assert (summary.pending, summary.delivered) == (1, 1)
    assert Outbox(again).cursor() == DAY0 + 1800
    run_produce(again, site, DAY0 + 2700)
    assert len(ids(again)) == 3


def test_retries_back_off_exponentially_up_to_the_maximum(memory_db):
    outbox = Outbox(memory_db, retry_initial_s=5, retry_max_s=60)
    outbox.add(
        id="a",
        kind="aggregate",
        topic_suffix="aggregates",
        window_start=DAY0,
        window_s=900,
        payload=b"{}",
        now=0.0,
    )
    delays = [outbox.mark_failed("a", "no PUBACK", 100.0) - 100.0 for _ in range(6)]
    assert 4.0 <= delays[0] <= 5.0 and 8.0 <= delays[1] <= 10.0 and 16.0 <= delays[2] <= 20.0
    assert all(48.0 <= d <= 60.0 for d in delays[4:])
    assert outbox.due(100.0, 10) == []
    assert [row.id for row in outbox.due(200.0, 10)] == ["a"]
    assert memory_db["sync_outbox"].get("a")["attempts"] == 6


def test_a_full_outbox_evicts_the_oldest_with_an_alarm(tmp_path, caplog):
    site = sync_site(
        window_s=60, settle_s=0, outbox_max_pending=10, mqtt={"host": "127.0.0.1", "port": 9}
    )  # no broker: nothing is delivered
    db = open_database(tmp_path / "edge.db")
    fill(db, 15, window_s=60)
    service = SyncService(site, db, clock=lambda: DAY0 + 15 * 60)
    with caplog.at_level(logging.ERROR, logger="sync"):
        service.run_pass()
    summary = service.outbox.summary()
    assert (summary.pending, summary.evicted_total) == (10, 5)
    assert summary.oldest_pending_start == DAY0 + 5 * 60  # the 5 oldest went
    assert "outbox full (10 undelivered): dropped the 5 oldest" in caplog.text
    (health,) = [h for h in read_health(db) if h["component"] == "sync"]
    # Not connected outranks the alarm in the status; the alarm is in the detail.
    assert health["status"] == "down"
    assert any("dropped the 5 oldest" in alarm for alarm in health["detail"]["alarms"])
    assert health["detail"]["evicted_total"] == 5


def test_full_disk_writes_nothing_half_and_recovers(tmp_path, caplog):
    site = sync_site(window_s=60, settle_s=0, mqtt={"host": "127.0.0.1", "port": 9})
    path = tmp_path / "edge.db"
    db = open_database(path)
    fill(db, 30, window_s=60)
    service = SyncService(site, db, clock=lambda: DAY0 + 10 * 60)
    service.run_pass()
    assert len(ids(db)) == 10
    before = [tuple(row) for row in db.execute("select * from sync_outbox order by id")]
    # The disk is full: SQLite may not grow the file by a single page.
    pages = db.execute("pragma page_count").fetchone()[0]
    db.execute(f"pragma max_page_count = {pages}")
    service.clock = lambda: DAY0 + 30 * 60
    with caplog.at_level(logging.ERROR, logger="sync"):
        service.run_pass()
        with pytest.raises(StorageError, match="database or its disk is full"):
            run_produce(db, site, DAY0 + 30 * 60)
    assert (
        "the database or its disk is full" in caplog.text and "Nothing was written" in caplog.text
    )
    after = [tuple(row) for row in db.execute("select * from sync_outbox order by id")]
    assert after[: len(before)] == before  # what was stored is intact
    assert Outbox(db).cursor() == DAY0 + len(after) * 60  # cursor matches the rows exactly
    assert db.execute("pragma integrity_check").fetchone()[0] == "ok"
    # Space comes back: every window is produced, none twice, none missing.
    db.execute("pragma max_page_count = 1073741823")
    service.run_pass()
    starts = [
        row[0] for row in db.execute("select window_start from sync_outbox order by window_start")
    ]
    assert starts == [DAY0 + 60 * i for i in range(30)]
    other = sqlite3.connect(path)
    assert other.execute("select count(*) from sync_outbox").fetchone()[0] == 30


def test_a_new_window_length_bridges_to_its_alignment(memory_db):
    from sync.settings import OverrideChanges, apply_changes

    site = sync_site(window_s=900, settle_s=0)
    fill(memory_db, 8)
    run_produce(memory_db, site, DAY0 + 900)  # 00:00-00:15 stored
    apply_changes(memory_db, OverrideChanges(window_s=1800), nonce="n" * 16, issued_at=0, now=0)
    run_produce(memory_db, site, DAY0 + 7200)
    windows = [
        tuple(r)
        for r in memory_db.execute(
            "select window_start - ?, window_s from sync_outbox order by window_start", [DAY0]
        )
    ]
    # 00:15-00:30 bridges (900 s), then whole half-hours aligned to midnight.
    assert windows == [(0, 900), (900, 900), (1800, 1800), (3600, 1800), (5400, 1800)]


def test_published_windows_keep_their_own_length_across_a_change(memory_db):
    """The windows read back for the cross-message k rules carry the length each was
    published with: after a change to 1800 s, the quarter of 00:00 is not the half-hour
    from 00:00 (privacy review: matched by start only, it was)."""
    from sync.settings import OverrideChanges, apply_changes

    site = sync_site(window_s=900, settle_s=0)
    fill(memory_db, 8)
    run_produce(memory_db, site, DAY0 + 900)
    apply_changes(memory_db, OverrideChanges(window_s=1800), nonce="n" * 16, issued_at=0, now=0)
    run_produce(memory_db, site, DAY0 + 3600)
    found = [(w.start - DAY0, w.seconds, w.count)
             for w in published_windows(memory_db, DAY0, DAY0 + 3600, 5)]
    assert found == [(0, 900, None), (900, 900, None), (1800, 1800, None)]
    assert published_windows(memory_db, DAY0 + 1000, DAY0 + 1800, 5) == [
        PublishedWindow(DAY0 + 900, 900, None)]           # overlapping the span is enough


def quarter(start_min: int, minutes: int = 15, count: int | None = 6) -> PublishedWindow:
    return PublishedWindow(DAY0 + 60 * start_min, 60 * minutes, count)


@pytest.mark.parametrize(
    "windows, span_min, expected",
    [
        # Windows of two lengths tile the span.
        ([quarter(0), quarter(15, count=None), quarter(30, 30)], (0, 60),
         [quarter(0), quarter(15, count=None), quarter(30, 30)]),
        # A stretch with no known message reads as one withheld window.
        ([quarter(0), quarter(45)], (0, 60), [quarter(0), quarter(15, 30, None), quarter(45)]),
        ([], (0, 60), [quarter(0, 60, None)]),
        # Windows outside the span are no part of it.
        ([quarter(0), quarter(15), quarter(60)], (15, 30), [quarter(15)]),
        # A window crossing the span's start or end: no sum of window counts.
        ([quarter(0, 60)], (0, 30), None),
        ([quarter(0), quarter(15, 60)], (0, 60), None),
        ([quarter(30, 60)], (60, 120), None),
        # Two windows over the same time.
        ([quarter(0), quarter(0, 30)], (0, 60), None),
    ],
)
def test_cover_lays_a_span_out_in_the_windows_published(windows, span_min, expected):
    assert cover(windows, DAY0 + 60 * span_min[0], DAY0 + 60 * span_min[1]) == expected


def test_after_an_outage_past_the_visit_retention_production_resumes_where_all_are_kept(
        tmp_path, caplog):
    """Windows whose visits a purge may already have deleted in part are skipped: the
    first window produced starts at or after the oldest time every visit is kept (the
    next purge counted), so no window goes out with part of its visits."""
    from edge.retention import visits_kept_since

    site = sync_site(window_s=900)
    db = open_database(tmp_path / "edge.db")
    fill(db, 4)
    now = DAY0 + site.storage.visit_days * 86_400 + 1800 + 17  # 8 days and 30 min on
    with caplog.at_level(logging.WARNING, logger="sync.producer"):
        produced = run_produce(db, site, now)
    first = produced.windows[0].start
    assert visits_kept_since(site, now) <= first < visits_kept_since(site, now) + 900
    assert "older than the 8-day visit retention" in caplog.text


def test_windows_sent_again_are_not_evicted_for_good(memory_db):
    """Reviewer's report: `edge sync resend` made delivered windows the oldest pending
    rows, so the next window stored while the broker was away evicted (deleted) them,
    though as delivered rows the box kept them storage.delivered_aggregate_days. A full
    outbox now puts them back to delivered: they can be sent again later."""
    outbox = Outbox(memory_db, max_pending=3)

    def add(i: int) -> None:
        outbox.add(id=f"w{i}", kind="aggregate", topic_suffix="aggregates",
                   window_start=DAY0 + 60 * i, window_s=60, payload=b"{}", now=0)

    for i in range(3):
        add(i)
    outbox.mark_delivered(["w0", "w1", "w2"], now=1)
    assert outbox.resend(DAY0, DAY0 + 180) == 3
    add(3)  # the next window, the broker still away: one too many pending
    rows = dict(memory_db.execute("select id, status from sync_outbox").fetchall())
    assert rows == {"w0": "delivered", "w1": "pending", "w2": "pending", "w3": "pending"}
    assert outbox.summary().evicted_total == 0
    outbox.mark_delivered(["w1"], now=2)  # a resent window delivered is an ordinary one
    assert memory_db.execute("select resent_at from sync_outbox where id = 'w1'").fetchone() \
        == (None,)
