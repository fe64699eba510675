"""The evaluator is wired to motmetrics/trackeval correctly."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

from edge.cli import cli
from edge.errors import DataFormatError
from edge.evaluation.mot import evaluate_mot, evaluate_mot_files
from edge.motformat import read_mot
from tests.conftest import PETS_GT, SHARED


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
