"""The evaluator is wired to motmetrics/trackeval correctly."""

import numpy as np
import pytest

from edge.errors import DataFormatError
from edge.evaluation.mot import evaluate_mot, evaluate_mot_files
from tests.conftest import SHARED


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
