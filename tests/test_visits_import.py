"""``edge visits import``: trajectories from other systems, a stable JSON interface,
and malformed files rejected whole with the line at fault."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

from edge.cli import cli
from edge.errors import DataFormatError
from edge.runtime.schema import open_database
from edge.visits.importer import read_trajectory_csv
from tests.conftest import PETS_GT, PETS_SITE

pytestmark = pytest.mark.system

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
    # the two pairs who walk together (people 9 and 15, 11 and 12) are one party each
    assert db.execute("select count(distinct group_id) from visit_groups").fetchone()[0] == 17
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


def test_excel_byte_order_mark_is_not_part_of_the_first_column(tmp_path):
    """Field report: a CSV saved by Excel ("CSV UTF-8") was rejected with "missing
    column(s) track_id": the invisible BOM was read as part of the first name."""
    path = tmp_path / "excel.csv"
    path.write_bytes(b"\xef\xbb\xbf" + GOOD.replace("\n", "\r\n").encode())
    tracks = {t.track_id: t for t in read_trajectory_csv(path)}
    assert sorted(tracks) == [1, 2] and tracks[1].t.tolist() == [0.0, 0.5]


BOUNDS = ((-22.0, -18.0), (9.0, 16.0))        # the PETS demo site's floor.bounds


@pytest.mark.parametrize(
    "row, message",
    [
        ("1,1.0,1e308,-14", r":5: position x=1e\+308, y=-14 is more than 100 m outside"),
        ("1,1.0,-10,-118.5", r":5: position x=-10, y=-118.5 is more than 100 m outside"),
        ("1,1.0,109.5,0", r"floor\.bounds \[\[-22, -18\], \[9, 16\]\]"),
    ],
)
def test_positions_far_off_the_floor_are_rejected(tmp_path, row, message):
    path = tmp_path / "far.csv"
    path.write_text(GOOD + row + "\n")
    with pytest.raises(DataFormatError, match=message):
        read_trajectory_csv(path, bounds=BOUNDS)
    assert len(read_trajectory_csv(path)) == 2          # without a site, nothing to check


def test_positions_near_the_floor_are_kept(tmp_path):
    path = tmp_path / "near.csv"
    path.write_text(GOOD + "1,1.0,108.9,-117.9\n")      # within 100 m of the bounds
    assert len(read_trajectory_csv(path, bounds=BOUNDS)) == 2


def test_absurd_coordinates_are_an_error_not_infinite_visits(tmp_path):
    """Field report: x=1e308 gave overflow warnings, a null path_length and exit 0; with
    --db it stored inf/Infinity."""
    path = tmp_path / "absurd.csv"
    path.write_text("track_id,t,x,y\n" + "".join(
        f"1,{t},{-10 if t != 5 else 1e308},-14\n" for t in range(10)))
    db_path = tmp_path / "edge.db"
    for extra in (["--json"], ["--db", str(db_path)]):
        result = CliRunner().invoke(cli, ["visits", "import", str(path), "--site",
                                          str(PETS_SITE), *extra])
        assert result.exit_code == 1, result.output
        assert result.output.startswith(f"Error: {path}:7: position x=1e+308")
        assert "RuntimeWarning" not in result.output and "Traceback" not in result.output
    assert not db_path.exists()


@pytest.mark.parametrize("track", ["9223372036854775808", "-9223372036854775809",
                                   "99999999999999999999999"])
def test_track_ids_must_fit_64_bits(tmp_path, track):
    path = tmp_path / "big.csv"
    path.write_text(GOOD + f"{track},1.0,-10,-14\n")
    with pytest.raises(DataFormatError, match=rf":5: track_id {track} does not fit a signed "
                                              "64-bit integer"):
        read_trajectory_csv(path)


def test_huge_track_id_is_an_error_before_the_database(tmp_path, gt_csv):
    """Field report: track_id 99999999999999999999999 with --db crashed with
    OverflowError: Python int too large to convert to SQLite INTEGER."""
    path = tmp_path / "big.csv"
    path.write_text(gt_csv.read_text() + "99999999999999999999999,0.0,-10,-14,gt\n")
    db_path = tmp_path / "edge.db"
    result = CliRunner().invoke(cli, ["visits", "import", str(path), "--site", str(PETS_SITE),
                                      "--db", str(db_path)])
    assert result.exit_code == 1
    lines = len(gt_csv.read_text().splitlines()) + 1
    assert result.output == (f"Error: {path}:{lines}: track_id 99999999999999999999999 does "
                             "not fit a signed 64-bit integer "
                             "(-9223372036854775808..9223372036854775807)\n")
    assert not db_path.exists()
    edge = tmp_path / "edge64.csv"
    edge.write_text(GOOD + "9223372036854775807,1.0,-10,-14\n")
    result = CliRunner().invoke(cli, ["visits", "import", str(edge), "--site", str(PETS_SITE),
                                      "--db", str(db_path)])
    assert result.exit_code == 0, result.output
