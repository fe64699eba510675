import sqlite3

import pytest

from edge.errors import StorageError
from edge.storage import open_database
from edge.storage.health import read_health, report_health


def test_database_is_wal_and_migrations_are_idempotent(tmp_path):
    path = tmp_path / "edge.db"
    db = open_database(path)
    assert db.execute("pragma journal_mode").fetchone()[0] == "wal"
    applied = db.execute("select count(*) from _sqlite_migrations").fetchone()[0]
    db.close()
    again = open_database(path)
    assert again.execute("select count(*) from _sqlite_migrations").fetchone()[0] == applied
    assert {"runs", "track_points", "visits", "wifi_windows", "health"} <= set(again.table_names())


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
