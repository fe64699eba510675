"""Issue 14 on a scene the settings were not tuned on: random counting lines and zones
on WILDTRACK's seven cameras fused into store-wide tracks (degraded boxes, default
settings), against the ground-truth floor positions."""

from __future__ import annotations

import numpy as np
import pytest

from edge.config.site import STORE_TRACKS_ID
from edge.evaluation.layouts import evaluate_layouts
from edge.evaluation.multicam import WILDTRACK_FPS
from edge.evaluation.visits import read_tracks
from edge.evaluation.wildtrack_layouts import (
    replay_wildtrack,
    wildtrack_floor_gt,
    wildtrack_site_config,
)
from edge.runtime.schema import open_database
from edge.storage.trajectories import finish_run, start_run
from tests.conftest import SHARED

pytestmark = [pytest.mark.system, pytest.mark.xdist_group("wildtrack_layouts")]  # one replay

WILDTRACK = SHARED / "multicam" / "wildtrack-train"

# Measured 2026-12-06 (see the test's docstring) less a small margin.
MIN_RECALL = 0.92
MIN_PRECISION = 0.94
MAX_DWELL_ERROR = 0.10


@pytest.fixture(scope="module")
def fused(tmp_path_factory):
    folder = tmp_path_factory.mktemp("wildtrack")
    return replay_wildtrack(WILDTRACK, folder, open_database(folder / "store.db"))


@pytest.mark.parametrize("seeds", [(1, 2), (3, 4, 5, 6)])
def test_random_lines_and_zones_hold_on_wildtrack_fused(fused, seeds):
    """Measured 2026-12-06 (Degradation() seed 0; crossing recall / precision / dwell
    median relative error; gt / measured crossings; dwell pairs):

    - seeds 1-2: 48 lines, 1094 / 1063 crossings: 0.946 / 0.967; 601 pairs: 0.081
    - seeds 3-6: 96 lines, 2180 / 2099 crossings: 0.935 / 0.961; 1078 pairs: 0.071

    (1070 and 2106 crossings, precision 0.962 and 0.959, before the fusion's speed
    limit ``max_speed_mps``, docs/fusion.md.)

    About 2 % of the gt crossings lie on the ground truth's own jumps (> 1.5 m in
    0.5 s), which no track follows. Without the fusion every person would be counted
    by each of the 2-7 cameras that see them: precision under 0.5
    (:func:`test_the_bounds_fail_when_people_are_counted_twice`)."""
    m = fused.layouts(seeds).metrics
    assert m["lines"] == 24 * len(seeds) and m["lines_crossed"] >= 0.9 * m["lines"]
    assert m["gt_crossings"] >= 500 * len(seeds) / 2, m
    assert m["crossing_recall"] >= MIN_RECALL, m
    assert m["crossing_precision"] >= MIN_PRECISION, m
    assert m["dwell_median_rel_error"] <= MAX_DWELL_ERROR, m


def _store_run_of_gt(db, copies: int) -> int:
    """The ground truth itself as a store run's tracks, each person ``copies`` times
    (as if each of several cameras reported them as its own person)."""
    gt = wildtrack_floor_gt(WILDTRACK)
    run = start_run(db, STORE_TRACKS_ID, "gt", "gt", kind="replay")
    db["track_points"].insert_all(
        {"run_id": run, "camera_id": STORE_TRACKS_ID, "track_id": copy * 10_000 + int(r[1]),
         "frame": int(r[0]) - 1, "t": (r[0] - 1) / WILDTRACK_FPS, "x": r[7] + 0.05 * copy,
         "y": r[8], "left": None, "top": None, "width": None, "height": None,
         "confidence": None}
        for copy in range(copies) for r in gt
    )
    finish_run(db, run, int(gt[:, 0].max()), "done")
    return run


def test_the_bounds_fail_when_people_are_counted_twice():
    """The ground truth as tracks scores (almost) perfectly; each person reported twice
    (a fusion that merges no one, with only two cameras) is far below the bounds.

    Almost: a run's tracks are stitched as the visit builder joins them, the truth is
    not, and 19 of WILDTRACK's 289 ids end where another id starts within 2.5 s: on
    seed 1 their joined paths miss 1 of the 646 true crossings. Twice: precision 0.59
    (not 0.5: a true crossing of a line lengthened by the 0.5 m tolerance makes a count
    right), dwell error 1.0."""
    site, gt = wildtrack_site_config(WILDTRACK), wildtrack_floor_gt(WILDTRACK)
    db = open_database(":memory:")
    perfect = evaluate_layouts(site, gt, db, run_id=_store_run_of_gt(db, 1), seeds=(1,)).metrics
    assert perfect["crossing_recall"] >= 0.995 and perfect["crossing_precision"] >= 0.995
    assert perfect["dwell_median_rel_error"] == 0.0
    twice = evaluate_layouts(site, gt, db, run_id=_store_run_of_gt(db, 2), seeds=(1,)).metrics
    assert twice["crossing_recall"] >= MIN_RECALL
    assert twice["crossing_precision"] < 0.65 < MIN_PRECISION
    assert twice["dwell_median_rel_error"] > MAX_DWELL_ERROR


def test_a_camera_s_ground_truth_is_the_people_it_sees():
    every = wildtrack_floor_gt(WILDTRACK)
    seen = wildtrack_floor_gt(WILDTRACK, "cvlab4")
    assert 0 < len(seen) < len(every) and set(seen[:, 1]) < set(every[:, 1])
    pairs = {(f, i) for f, i in every[:, :2].tolist()}
    assert all((f, i) in pairs for f, i in seen[:, :2].tolist())
    assert np.isin(seen[:, 7:9], every[:, 7:9]).all()


def test_a_store_run_is_timed_by_its_cameras():
    """A store run's frames are the fastest camera's: 2 frames/s here, not the 7 of a
    camera without fps (line settling, stitching gaps and dwell are in seconds)."""
    db = open_database(":memory:")
    run = _store_run_of_gt(db, 1)
    fps, _, _ = read_tracks(wildtrack_site_config(WILDTRACK), wildtrack_floor_gt(WILDTRACK),
                            db, run)
    assert fps == WILDTRACK_FPS
