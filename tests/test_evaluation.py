"""The evaluator is wired to motmetrics/trackeval correctly."""

import json
import shutil
import sqlite3

import numpy as np
import pytest
from click.testing import CliRunner

from edge.cli import cli
from edge.errors import DataFormatError
from edge.evaluation.mot import evaluate_mot, evaluate_mot_files
from edge.motformat import read_mot
from edge.runtime.schema import open_database
from edge.storage.trajectories import finish_run, start_run
from tests.conftest import PETS_GT, SHARED

pytestmark = pytest.mark.system


def test_matches_motmetrics_reference_figures():
    """py-motmetrics' own TUD-Campus test data: IDF1 0.557659, MOTA 0.526462 at IoU 0.5."""
    folder = SHARED / "mot" / "motmetrics-TUD-Campus"
    metrics = evaluate_mot_files(folder / "gt.txt", folder / "test.txt")
    assert metrics["IDF1"] == pytest.approx(0.557659, abs=1e-6)
    assert metrics["MOTA"] == pytest.approx(0.526462, abs=1e-6)
    assert metrics["false_positives"] == 13
    assert metrics["misses"] == 150
    assert metrics["id_switches"] == 7
    assert 0.0 < metrics["HOTA"] < metrics["IDF1"]


def test_perfect_tracks_score_one():
    gt = np.loadtxt(SHARED / "mot" / "TUD-Campus" / "gt" / "gt.txt", delimiter=",")
    metrics = evaluate_mot(gt, gt.copy())
    assert metrics["HOTA"] == pytest.approx(1.0)
    assert metrics["IDF1"] == pytest.approx(1.0)
    assert metrics["MOTA"] == pytest.approx(1.0)


def test_swapped_ids_are_counted():
    gt = np.array([[f, i, 10 + 100 * i, 10, 40, 80, 1, -1, -1, -1]
                   for f in (1, 2, 3, 4) for i in (1, 2)], float)
    tracks = gt.copy()
    tracks[(tracks[:, 0] >= 3), 1] = 3 - tracks[(tracks[:, 0] >= 3), 1]  # ids swap at frame 3
    metrics = evaluate_mot(gt, tracks)
    assert metrics["id_switches"] == 2
    assert metrics["IDF1"] < 1.0


def test_bad_ground_truth_format(tmp_path):
    bad = tmp_path / "gt.txt"
    bad.write_text("1,2,3\n")
    with pytest.raises(DataFormatError, match="gt.txt:1: expected at least 7"):
        evaluate_mot_files(bad, bad)


def partial_tracks(tmp_path, last_frame: int):
    """Perfect tracks of a partial replay: the PETS ground truth (its rows to evaluate)
    up to ``last_frame``."""
    gt = read_mot(PETS_GT)
    path = tmp_path / "tracks.txt"
    np.savetxt(path, gt[(gt[:, 0] <= last_frame) & (gt[:, 6] != 0)], delimiter=",", fmt="%.6f")
    return path


def test_eval_mot_says_when_the_tracks_end_before_the_ground_truth(tmp_path):
    """Field report: after `edge replay --max-frames 150 --mot-out`, `edge eval mot`
    scored against all 795 frames (HOTA 0.17) without a word, while the report, which
    restricts to the frames replayed, said 0.57."""
    tracks = partial_tracks(tmp_path, 150)
    args = ["eval", "mot", "--gt", str(PETS_GT), "--tracks", str(tracks), "--json"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    whole = json.loads(result.stdout)                       # stdout stays one JSON object
    assert whole["frames"] == 795 and whole["HOTA"] < 0.5  # the default scoring is unchanged
    assert result.stderr == (
        "Note: the tracks cover frames 1-150, the ground truth 1-795: its frames after 150 "
        "are scored as misses; to score only the frames the tracks cover, add "
        "--frames 1-150.\n")
    restricted = CliRunner().invoke(cli, [*args, "--frames", "1-150"])
    assert restricted.exit_code == 0 and restricted.stderr == ""
    figures = json.loads(restricted.stdout)
    assert figures["frames"] == 150 and figures["HOTA"] == pytest.approx(1.0)
    assert figures == evaluate_mot(read_mot(PETS_GT), read_mot(tracks), (1, 150))


def test_eval_mot_is_silent_when_the_tracks_reach_the_end(tmp_path):
    tracks = partial_tracks(tmp_path, 795)
    result = CliRunner().invoke(cli, ["eval", "mot", "--gt", str(PETS_GT), "--tracks",
                                      str(tracks)])
    assert result.exit_code == 0 and result.stderr == ""


@pytest.mark.parametrize("value, message", [
    ("150", "expected FIRST-LAST frame numbers such as 1-150"),
    ("0-150", "expected 1 <= FIRST <= LAST"),
    ("200-100", "expected 1 <= FIRST <= LAST"),
    ("a-b", "expected FIRST-LAST"),
])
def test_eval_mot_frames_must_be_a_range(tmp_path, value, message):
    tracks = partial_tracks(tmp_path, 150)
    result = CliRunner().invoke(cli, ["eval", "mot", "--gt", str(PETS_GT), "--tracks",
                                      str(tracks), "--frames", value])
    assert result.exit_code == 2 and message in result.output


def test_eval_mot_frames_without_ground_truth(tmp_path):
    tracks = partial_tracks(tmp_path, 150)
    result = CliRunner().invoke(cli, ["eval", "mot", "--gt", str(PETS_GT), "--tracks",
                                      str(tracks), "--frames", "900-1000"])
    assert result.exit_code == 1
    assert result.output == "Error: the ground truth has no rows to evaluate in frames 900-1000\n"


def test_eval_mot_scores_a_run_stored_in_the_database(det_db):
    """Issue 18 #14: `edge eval mot` could only score a --mot-out file, not a replay
    already in the database. --db/--run reads the run's boxes from track_points."""
    db = sqlite3.connect(det_db)
    run = db.execute("select max(id) from runs").fetchone()[0]
    rows = np.array(db.execute(
        "select frame + 1, track_id, left, top, width, height, confidence, -1, -1, -1 "
        "from track_points where run_id = ?", (run,)).fetchall(), dtype=np.float64)
    result = CliRunner().invoke(cli, ["eval", "mot", "--gt", str(PETS_GT), "--db", str(det_db),
                                      "--run", str(run), "--json"])
    assert result.exit_code == 0, result.output
    figures = json.loads(result.stdout)
    assert figures == evaluate_mot(read_mot(PETS_GT), rows)
    assert figures["frames"] == 795 and figures["HOTA"] > 0.3
    latest = CliRunner().invoke(cli, ["eval", "mot", "--gt", str(PETS_GT), "--db", str(det_db),
                                      "--json"])  # default: the latest finished run
    assert latest.exit_code == 0 and json.loads(latest.stdout) == figures


def test_eval_mot_refuses_a_store_wide_run_without_boxes(det_db, tmp_path):
    """A store-wide run fused from several cameras stores floor positions only (camera
    'store', NULL boxes): one line saying so, and which runs have boxes."""
    path = tmp_path / "edge.db"
    shutil.copy(det_db, path)
    db = open_database(path)
    camera_run = db.execute("select max(id) from runs").fetchone()[0]
    store_run = start_run(db, "store", "fusion", "fusion")
    db["track_points"].insert_all(
        {"run_id": store_run, "camera_id": "store", "track_id": 1, "frame": frame,
         "t": 1.0e9 + frame, "x": 1.0, "y": 2.0, "left": None, "top": None, "width": None,
         "height": None, "confidence": None} for frame in range(10))
    finish_run(db, store_run, 10, "done")
    for args in (["--run", str(store_run)], []):  # asked for, or the latest
        result = CliRunner().invoke(cli, ["eval", "mot", "--gt", str(PETS_GT), "--db",
                                          str(path), *args])
        assert result.exit_code == 1
        assert result.output == (
            f"Error: run {store_run} (camera store) has no image boxes to score: a store-wide "
            "run fused from several cameras holds floor positions only; score one of the "
            f"runs with boxes instead (--run {camera_run})\n")


@pytest.mark.parametrize("args", [["--db", "x.db"], ["--run", "1"]])
def test_eval_mot_tracks_file_or_database_not_both(tmp_path, args):
    tracks = partial_tracks(tmp_path, 10)
    result = CliRunner().invoke(cli, ["eval", "mot", "--gt", str(PETS_GT), "--tracks",
                                      str(tracks), *args])
    assert result.exit_code == 2 and "--tracks scores a file: drop --db and --run" in result.output


def _floor_rows(path, frames):
    rows = [(f, person, 0.1 * f, 2.0 * person) for f in frames for person in (1, 2)]
    np.savetxt(path, np.array(rows), fmt=["%d", "%d", "%.3f", "%.3f"], delimiter=",")
    return path


def test_eval_floor_tracks_of_a_partial_replay_says_so_and_takes_frames(tmp_path):
    """Finding 7: the floor tracks of a partial replay were scored against every
    ground-truth frame (IDF1 0.212 where the full run has 0.926), with no note and no
    --frames, as eval mot has."""
    gt = _floor_rows(tmp_path / "gt.txt", range(1, 101))
    tracks = _floor_rows(tmp_path / "tracks.txt", range(1, 51))
    runner = CliRunner()
    result = runner.invoke(cli, ["eval", "floor", "--gt", str(gt), "--tracks", str(tracks),
                                 "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["IDF1"] < 0.7
    assert ("Note: the tracks cover frames 1-50, the ground truth 1-100: its frames after 50 "
            "are scored as misses; to score only the frames the tracks cover, add --frames "
            "1-50.") in result.stderr
    result = runner.invoke(cli, ["eval", "floor", "--gt", str(gt), "--tracks", str(tracks),
                                 "--frames", "1-50", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["IDF1"] == 1.0 and "Note" not in result.stderr
    result = runner.invoke(cli, ["eval", "floor", "--gt", str(gt), "--frames", "1-50"])
    assert result.exit_code == 2 and "--frames goes with --tracks" in result.stderr


def test_eval_mot_asks_whether_the_ground_truth_is_of_this_recording(tmp_path):
    """Finding 8: TUD-Campus's ground truth scored against PETS tracks printed HOTA
    0.027 and said nothing of the tracks running to frame 795, past the gt's 71."""
    tud = SHARED / "mot" / "TUD-Campus" / "gt" / "gt.txt"
    tracks = partial_tracks(tmp_path, 795)
    result = CliRunner().invoke(cli, ["eval", "mot", "--gt", str(tud), "--tracks", str(tracks),
                                      "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["DetA"] < 0.05
    assert result.stderr.startswith("Note: the tracks run to frame 795, past the ground truth's "
                                    "last frame 71: their frames after it are not scored; the "
                                    "tracks' boxes barely overlap the ground truth's (DetA ")
    assert result.stderr.endswith("; is this the ground truth of this recording?\n")
    assert result.stderr.count("\n") == 1


def test_report_asks_whether_the_ground_truth_is_of_this_recording(det_db, tmp_path):
    """Finding 8, the same note in `edge report --gt`."""
    tud = SHARED / "mot" / "TUD-Campus" / "gt" / "gt.txt"
    result = CliRunner().invoke(cli, ["report", "--db", str(det_db), "--gt", str(tud),
                                      "--out", str(tmp_path / "r.html")])
    assert result.exit_code == 0, result.output
    assert "is this the ground truth of this recording?" in result.stdout
    assert "past the ground truth's last frame 71" in result.stdout
