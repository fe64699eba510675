"""``edge visits import``: trajectories from other systems, a stable JSON interface,
and malformed files rejected whole with the line at fault."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

from edge.cli import cli
from edge.errors import DataFormatError
from edge.storage import open_database
from edge.visits.importer import read_trajectory_csv
from tests.conftest import PETS_GT, PETS_SITE

GOOD = "track_id,t,x,y\n1,0.0,-10,-14\n2,0.0,-5,-14\n1,0.5,-10,-13.5\n"


@pytest.fixture
def gt_csv(tmp_path):
    """PETS ground truth as a trajectory file (world metres, t = frame / 7 fps)."""
    rows = np.loadtxt(PETS_GT, delimiter=",")
    rows = rows[np.lexsort((rows[:, 0], rows[:, 1]))]
    path = tmp_path / "pets.csv"
    lines = ["track_id,t,x,y,source"] + [
        f"{int(r[1])},{(r[0] - 1) / 7:.4f},{r[7]},{r[8]},gt" for r in rows
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_reads_interleaved_tracks_and_ignores_extra_columns(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("x,y,t,track_id,extra\n-10,-14,0,1,a\n-5,-14,0,2,b\n-10,-13.5,0.5,1,c\n")
    tracks = {t.track_id: t for t in read_trajectory_csv(path)}
    assert sorted(tracks) == [1, 2]
    assert tracks[1].t.tolist() == [0.0, 0.5]
    assert tracks[1].xy.tolist() == [[-10, -14], [-10, -13.5]]


@pytest.mark.parametrize(
    "text, message",
    [
        ("track_id,t,x\n1,0,0\n", r":1: missing column\(s\) y"),
        ("id,time,x,y\n1,0,0,0\n", r"missing column\(s\) track_id, t"),
        (GOOD + "1,abc,0,0\n", r":5: t must be a number, got 'abc'"),
        (GOOD + "1,1.0,nan,0\n", r":5: x must be a finite number, got 'nan'"),
        (GOOD + "1,1.0,0,inf\n", r":5: y must be a finite number"),
        (GOOD + "1,0.2,0,0\n", r":5: time goes backwards \(or repeats\) in track 1"),
        (GOOD + "2,0.0,0,0\n", r":5: time goes backwards \(or repeats\) in track 2"),
        (GOOD + "1.5,2,0,0\n", r":5: track_id must be an integer"),
        (GOOD + "1,2\n", r":5: expected at least 4 values"),
        ("track_id,t,x,y\n", r"no trajectory rows"),
        ("", r"empty file"),
    ],
)
def test_malformed_files_are_clear_errors(tmp_path, text, message):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(DataFormatError, match=message):
        read_trajectory_csv(path)


def test_binary_and_missing_files(tmp_path):
    path = tmp_path / "bin.csv"
    path.write_bytes(b"\xff\xfe\x00\x01garbage")
    with pytest.raises(DataFormatError, match="not a text CSV"):
        read_trajectory_csv(path)
    with pytest.raises(DataFormatError, match="does not exist"):
        read_trajectory_csv(tmp_path / "nope.csv")


def test_import_json_interface_on_pets_ground_truth(gt_csv):
    """The interface scripts depend on: one JSON object per visit with track_id,
    features, traits (showroomer, wanderer, indecisive, bargain_hunter, affinity_<tag>)
    and segments, all probabilities in [0, 1]."""
    result = CliRunner().invoke(
        cli, ["visits", "import", str(gt_csv), "--site", str(PETS_SITE), "--json"]
    )
    assert result.exit_code == 0, result.output
    visits = [json.loads(line) for line in result.output.splitlines()]
    assert sorted(v["track_id"] for v in visits) == list(range(1, 20))   # 19 gt people
    for visit in visits:
        assert {"track_id", "features", "traits", "segments", "zone_dwell"} <= set(visit)
        assert all(isinstance(v, (int, float)) for v in visit["features"].values())
        assert {"showroomer", "wanderer", "indecisive", "bargain_hunter", "affinity_kids",
                "affinity_fitness", "affinity_ready-to-eat", "affinity_formal-wear"} <= set(
                    visit["traits"])
        assert all(0.0 <= p <= 1.0 for p in visit["traits"].values())
        assert sum(visit["segments"].values()) == pytest.approx(1.0)
        assert visit["features"]["duration_s"] >= 3.0
    checkout = {v["track_id"] for v in visits if v["features"]["checkout_visited"]}
    assert {11, 12, 13} <= checkout                 # the three who walked to the far right
    crossings = sum(len(v["line_crossings"]) for v in visits)
    assert crossings == sum(v["features"]["crossings_in"] + v["features"]["crossings_out"]
                            for v in visits) > 0


def test_import_writes_the_database_atomically(gt_csv, tmp_path):
    db_path = tmp_path / "edge.db"
    runner = CliRunner()
    result = runner.invoke(cli, ["visits", "import", str(gt_csv), "--site", str(PETS_SITE),
                                 "--db", str(db_path)])
    assert result.exit_code == 0, result.output
    assert "Imported 19 tracks" in result.output
    db = open_database(db_path)
    assert db["visits"].count == 19
    ids = [r["visit_id"] for r in db["visits"].rows]
    assert len(set(ids)) == 19 and all(len(i) == 36 for i in ids)     # uuid4, not track ids
    assert db["visit_traits"].count == 19 * 8
    assert db.execute("select count(*) from line_crossings where camera_id = 'import'"
                      ).fetchone()[0] > 0
    bad = tmp_path / "bad.csv"
    bad.write_text(gt_csv.read_text() + "3,0.0,1,1,gt\n")      # time goes backwards at the end
    result = runner.invoke(cli, ["visits", "import", str(bad), "--site", str(PETS_SITE),
                                 "--db", str(db_path)])
    assert result.exit_code == 1
    assert "Error:" in result.output and "time goes backwards" in result.output
    assert open_database(db_path)["visits"].count == 19        # nothing of it written


def test_bad_spec_is_a_one_line_error(tmp_path, gt_csv):
    spec = tmp_path / "spec.yaml"
    spec.write_text("spec_format: 1\nspec_version: banana\nname: x\ntraits: {}\n")
    result = CliRunner().invoke(cli, ["visits", "import", str(gt_csv), "--site", str(PETS_SITE),
                                      "--spec", str(spec), "--json"])
    assert result.exit_code == 1
    assert "Error: invalid segment spec" in result.output
    assert "spec_version: String should match pattern" in result.output
    assert "Traceback" not in result.output
