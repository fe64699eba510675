"""The tracker alone on PETS09-S2L1's public detections may not fall below its
committed baseline (like norfair's tests/metrics.txt), nor below supervision's
ByteTrack on the same detections."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edge.evaluation.mot import evaluate_mot
from edge.motformat import detections_by_frame, read_mot
from edge.tracking import ByteTracker
from tests.conftest import PETS_DET, PETS_GT

BASELINE = json.loads((Path(__file__).parent / "data" / "tracker_baseline.json").read_text())
FPS = 7.0
SLACK = 1e-3  # rounding of the committed figures


@pytest.fixture(scope="module")
def metrics(pets_site_module):
    tracker = ByteTracker(pets_site_module.tracker, FPS)
    rows = []
    for index, detections in detections_by_frame(PETS_DET):
        tracks = tracker.update(detections, index / FPS)
        for track_id, (x1, y1, x2, y2), score in zip(
            tracks.tracker_id, tracks.xyxy, tracks.confidence, strict=True
        ):
            rows.append([index + 1, track_id, x1, y1, x2 - x1, y2 - y1, score, -1, -1, -1])
    return evaluate_mot(read_mot(PETS_GT), np.array(rows, dtype=np.float64))


@pytest.fixture(scope="module")
def pets_site_module():
    from edge.config import load_site
    from tests.conftest import PETS_SITE

    return load_site(PETS_SITE)


@pytest.mark.parametrize("name", ["HOTA", "IDF1", "MOTA"])
def test_not_below_the_committed_baseline(metrics, name):
    assert metrics[name] >= BASELINE[name] - SLACK, (
        f"{name} fell to {metrics[name]:.4f} from the committed {BASELINE[name]}"
    )


def test_id_switches_not_above_the_baseline(metrics):
    assert metrics["id_switches"] <= BASELINE["id_switches"]


def test_at_least_supervision_bytetrack(metrics):
    assert metrics["HOTA"] >= BASELINE["supervision_bytetrack"]["HOTA"]
    assert metrics["IDF1"] >= BASELINE["supervision_bytetrack"]["IDF1"]
