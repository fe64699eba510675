import sqlite3
import threading
import time

import pytest

from edge.errors import StorageError
from edge.runtime.schema import open_database
from edge.storage.health import read_health, report_health
from edge.visits.store import VISIT_CHILD_TABLES


def test_database_is_wal_and_migrations_are_idempotent(tmp_path):
    path = tmp_path / "edge.db"
    db = open_database(path)
    assert db.execute("pragma journal_mode").fetchone()[0] == "wal"
    applied = db.execute("select count(*) from _sqlite_migrations").fetchone()[0]
    db.close()
    again = open_database(path)
    assert again.execute("select count(*) from _sqlite_migrations").fetchone()[0] == applied
    assert {"runs", "track_points", "visits", "wifi_windows", "health"} <= set(again.table_names())


def test_switching_a_new_file_to_wal_waits_for_a_writer(tmp_path):
    """Regression: a service switching the fresh file to WAL while another held its
    write lock was told "database is locked" at once (SQLite's deadlock rule skips the
    busy timeout there) and died at first boot; now it waits for the lock."""
    path = tmp_path / "edge.db"
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("create table first_boot (x)")  # rollback-journal mode, as created
    other.execute("begin immediate")
    other.execute("insert into first_boot values (1)")
    threading.Timer(0.5, lambda: other.execute("commit")).start()
    started = time.monotonic()
    db = open_database(path)
    assert time.monotonic() - started >= 0.4  # it waited for the commit
    assert db.execute("pragma journal_mode").fetchone()[0] == "wal"
    assert db.execute("select x from first_boot").fetchall() == [(1,)]
    other.close()


def test_unwritable_location_is_a_storage_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(StorageError, match="cannot open the database"):
        open_database(blocker / "sub" / "edge.db")


def test_a_second_connection_reads_while_one_writes(tmp_path):
    path = tmp_path / "edge.db"
    writer = open_database(path)
    reader = sqlite3.connect(path)
    with writer.atomic():
        report_health(writer, "camera:a", "ok", "Camera a is running.")
        # uncommitted: the reader still sees the old state, without blocking
        assert reader.execute("select count(*) from health").fetchone()[0] == 0
    assert reader.execute("select count(*) from health").fetchone()[0] == 1
    assert read_health(writer)[0]["message"] == "Camera a is running."


def test_a_batch_of_positions_keeps_the_runs_frame_count_current(tmp_path):
    """Regression: a run cut off by kill -9 kept frames=0 (the count was written only when
    the run finished); each batch now stores it with its positions, in one transaction."""
    import numpy as np

    from edge.records import FloorTracks, Tracks
    from edge.storage.trajectories import start_run, write_track_points

    db = open_database(tmp_path / "edge.db")
    run_id = start_run(db, "cam", "test", "model")
    person = Tracks(np.array([1]), np.array([[10, 10, 30, 60]], np.float32),
                    np.array([0.9], np.float32))
    batch = [FloorTracks("cam", frame, float(frame), person, np.array([[1.0, 2.0]]))
             for frame in range(3)]
    assert write_track_points(db, run_id, batch, frames=3) == 3
    other = sqlite3.connect(tmp_path / "edge.db")  # what a later process reads
    assert other.execute("select frames, status from runs").fetchone() == (3, "running")
    empty = [FloorTracks("cam", 3, 3.0, Tracks.empty(), np.zeros((0, 2)))]
    assert write_track_points(db, run_id, empty, frames=4) == 0  # nobody seen: still counted
    assert other.execute("select frames from runs").fetchone() == (4,)
    assert write_track_points(db, run_id, empty) == 0  # no count given: left alone
    assert other.execute("select frames from runs").fetchone() == (4,)


def test_a_read_then_write_transaction_waits_for_another_writer(tmp_path):
    """Every ``db.atomic()`` takes the write lock when it begins (one mechanism:
    the connection's BEGIN IMMEDIATE). A deferred one would read a snapshot while the
    other service wrote, then fail at once with "database is locked" when it wrote."""
    path = tmp_path / "edge.db"
    mine = open_database(path)
    holding, done = threading.Event(), threading.Event()

    def other_service():
        theirs = open_database(path)
        with theirs.atomic():
            report_health(theirs, "sync", "ok", "Sync is running.")
            holding.set()
            time.sleep(0.4)
        done.set()

    thread = threading.Thread(target=other_service)
    thread.start()
    assert holding.wait(5)
    with mine.atomic():
        seen = mine.execute("select count(*) from health").fetchone()[0]
        time.sleep(0.6)  # the other service commits meanwhile
        report_health(mine, "camera:a", "ok", "Camera a is running.")
    thread.join()
    assert done.is_set() and seen == 1  # it waited, then read the other's row
    assert {row["component"] for row in read_health(mine)} == {"sync", "camera:a"}


def test_every_table_of_a_visits_rows_is_purged_with_it():
    """A table whose rows belong to a visit (a foreign key to visits) is deleted with
    its visit by rebuilds, purges and the retention sweep: all of them read
    VISIT_CHILD_TABLES, so a table left out would keep a purged visit's rows for ever."""
    db = open_database(":memory:")
    children = {table for table in db.table_names()
                if any(fk.other_table == "visits" for fk in db.table(table).foreign_keys)}
    assert children == set(VISIT_CHILD_TABLES)
