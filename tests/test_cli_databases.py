"""Commands that only read stored data refuse a database that is not there, instead of
creating an empty one from a mistyped ``--db``; commands that produce data create it."""

import sqlite3

import pytest
from click.testing import CliRunner

from edge.cli import cli
from edge.runtime.schema import open_database
from edge.storage.trajectories import finish_run, start_run
from tests.conftest import PETS_DET, PETS_GT, PETS_SITE

pytestmark = pytest.mark.system

SITE = ["--site", str(PETS_SITE)]

READERS = {
    "visits build": (["visits", "build", *SITE], "run `edge replay` first"),
    "visits build --run": (["visits", "build", *SITE, "--run", "1"], "run `edge replay` first"),
    "wifi calibrate": (["wifi", "calibrate", *SITE], "edge wifi replay CAPTURE --db DB"),
    "web serve": (["web", "serve", *SITE], "leave out --db"),
    "report": (["report", *SITE, "--out", "{tmp}/r.html"], "run `edge replay` first"),
    "eval floor": (["eval", "floor", "--gt", str(PETS_GT)], "run `edge replay` first"),
    "eval visits": (["eval", "visits", *SITE, "--gt", str(PETS_GT)], "run `edge replay` first"),
    "sync status": (["sync", "status", *SITE], "no service has written to it yet"),
    "sync payload-size": (["sync", "payload-size", *SITE], "no service has written to it yet"),
    "privacy audit-log": (["privacy", "audit-log", *SITE], "no service has started on it yet"),
    "privacy debug-modes": (["privacy", "debug-modes", *SITE], "no service has started on it"),
}


@pytest.mark.parametrize("name", list(READERS))
def test_readers_refuse_a_database_that_is_not_there(tmp_path, name):
    """Field report: `edge visits build --db typo.db` printed "Built 0 visits" and exited
    0; `edge web serve --db nodir/sub/edge.db` made the folders and an empty database."""
    args, hint = READERS[name]
    missing = tmp_path / "nodir" / "sub" / "typo.db"
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    result = CliRunner().invoke(cli, [*args, "--db", str(missing)])
    assert result.exit_code == 1, result.output
    assert result.output.startswith(f"Error: database {missing} does not exist; "), result.output
    assert hint in result.output and result.output.count("\n") == 1, result.output
    assert not (tmp_path / "nodir").exists()


def test_debug_modes_without_any_database_is_not_an_error(tmp_path):
    """The default database not being there means nothing ran: no debug mode is on, and
    no database is created just to say so."""
    result = CliRunner().invoke(cli, ["privacy", "debug-modes", *SITE])
    assert result.exit_code == 0 and result.output == "No debug mode is on.\n"
    assert not any((tmp_path / "state").rglob("*.db"))


def test_producers_still_create_their_database(tmp_path):
    csv = tmp_path / "t.csv"
    csv.write_text("track_id,t,x,y\n" + "".join(f"1,{t},-10,{-14 + t * 0.5}\n" for t in range(9)))
    db_path = tmp_path / "new" / "edge.db"
    result = CliRunner().invoke(cli, ["visits", "import", str(csv), *SITE, "--db", str(db_path)])
    assert result.exit_code == 0, result.output
    assert db_path.is_file()


def test_building_a_run_that_does_not_exist_is_an_error(tmp_path):
    """Field report: `edge visits build --run 9` printed "Built 0 visits from 0 run(s)"
    and exited 0. Now it says which runs there are, as `edge report` does."""
    db_path = tmp_path / "edge.db"
    db = open_database(db_path)
    finish_run(db, start_run(db, "view001", "test", "test"), 0, "done")
    db.close()
    for args in (["visits", "build", *SITE, "--run", "9"],
                 ["visits", "build", *SITE, "--run", "9", "--rebuild"],
                 ["report", *SITE, "--run", "9", "--out", str(tmp_path / "r.html")],
                 ["eval", "visits", *SITE, "--gt", str(PETS_GT), "--run", "9"],
                 ["eval", "floor", "--gt", str(PETS_GT), "--run", "9"]):
        result = CliRunner().invoke(cli, [*args, "--db", str(db_path)])
        assert result.exit_code == 1, (args, result.output)
        assert result.output == "Error: the database has no run 9 (runs: [1])\n", args


REPLAY = ["replay", *SITE, "--detections", str(PETS_DET), "--start-time", "2024-03-01T10:00:00Z"]


@pytest.fixture
def replayed(tmp_path):
    """A database with a real replay whose aggregation windows are closed."""
    path = tmp_path / "edge.db"
    result = CliRunner().invoke(cli, [*REPLAY, "--db", str(path)])
    assert result.exit_code == 0, result.output
    return path


@pytest.fixture
def full_disk(monkeypatch):
    """Every database opened from now on cannot grow: sqlite's own "database or disk is
    full" (SQLITE_FULL), met by the commands' real writes, as on a full disk."""
    from edge.storage import database

    class FullConnection(database._ImmediateConnection):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            pages = super().execute("PRAGMA page_count").fetchone()[0]
            super().execute(f"PRAGMA max_page_count={pages}")

    monkeypatch.setattr(database, "_ImmediateConnection", FullConnection)


def corrupt_pages(path, tables=("track_points", "visits", "visit_traits")):
    """Overwrite the data pages of ``tables`` (not the schema: the database still opens)."""
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # every page in the file itself
    size = conn.execute("PRAGMA page_size").fetchone()[0]
    pages = [row[0] for row in conn.execute(
        f"SELECT pageno FROM dbstat WHERE pagetype = 'leaf' AND name IN "
        f"({', '.join('?' * len(tables))})", tables)]
    conn.close()
    with open(path, "r+b") as file:
        for page in pages:
            file.seek((page - 1) * size + 8)  # keep the page header's first bytes
            file.write(b"\x55" * (size - 16))


def error_line(output: str) -> str:
    """The one line a failed command ends with; no traceback before it."""
    assert "Traceback" not in output, output
    errors = [line for line in output.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1 and output.endswith(errors[0] + "\n"), output
    return errors[0]


@pytest.mark.parametrize("args", [REPLAY, ["sync", "publish-once", *SITE, "--timeout", "1"]],
                         ids=["replay", "sync publish-once"])
def test_a_full_disk_is_one_error_line(replayed, full_disk, args):
    """Regression (issue 18): `edge replay` on a full disk ended in a sqlite traceback;
    `edge sync publish-once` printed "0 delivered" and exited 0."""
    result = CliRunner().invoke(cli, [*args, "--db", str(replayed)])
    assert result.exit_code == 1
    line = error_line(result.output)
    assert "disk is full" in line or "database or its disk is full" in line, line
    assert "0 delivered" not in result.output


@pytest.mark.parametrize("args", [
    [*REPLAY, "--max-frames", "50"], ["sync", "payload-size", *SITE],
    ["report", *SITE, "--out", "{tmp}/r.html"],
], ids=["replay", "sync payload-size", "report"])
def test_a_corrupt_database_is_one_error_line(replayed, tmp_path, args):
    """Regression (issue 18): a database with corrupt pages gave sqlite tracebacks."""
    corrupt_pages(replayed)
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    result = CliRunner().invoke(cli, [*args, "--db", str(replayed)])
    assert result.exit_code == 1
    assert error_line(result.output) == (
        f"Error: the database {replayed} is corrupt (database disk image is malformed); move "
        "it aside (the services start a new one) and restore a backup if its data is needed")
