"""Commands that only read stored data refuse a database that is not there, instead of
creating an empty one from a mistyped ``--db``; commands that produce data create it."""

import pytest
from click.testing import CliRunner

from edge.cli import cli
from edge.storage import open_database
from edge.storage.trajectories import finish_run, start_run
from tests.conftest import PETS_GT, PETS_SITE

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
