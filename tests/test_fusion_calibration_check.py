"""The calibration check of camera pairs (edge.fusion.pair_check) on synthetic sightings:
two cameras whose calibrations disagree count every person twice, and the health says so.

Field report: "two cameras on one floor counted every person twice", while check-config
passed, the fusion's health read ok and its calibration check said the cameras placed the
same person 1.17 m apart (one camera moved 1.5 m) or 1.46 m (moved 6 m): the distance was
taken over the people still matched across the two, never over those counted twice."""

from __future__ import annotations

import json

import numpy as np
import pytest
import shapely

from edge.cli.replay_commands import calibration_check_line
from edge.config import SiteConfig
from edge.config.fusion import FusionConfig
from edge.fusion.coverage import Coverage
from edge.fusion.pair_check import MIN_OVERLAP_SAMPLES, disagreement_problem
from edge.fusion.store import write_camera_frames
from edge.fusion.tracker import FloorFusion
from edge.runtime.fusion_worker import FusionWorker
from edge.runtime.schema import open_database
from tests.support.live_site import floor_in_centimetres_site
from tests.test_fusion import FPS, sighting, squares

START = 1_800_000_000.0
SECONDS = 40.0


def walkers(t: float, n: int = 8) -> np.ndarray:
    """``n`` (up to 8) people walking to and fro across the middle of a 10 x 10 m floor, 1 m apart
    or more, at 0.4-0.9 m/s (positions at ``t`` seconds)."""
    k = np.arange(n)
    span = 6.0
    walked = (0.4 + 0.07 * k) * t + 0.8 * k
    along = 2.0 + span - np.abs(walked % (2 * span) - span)  # 2..8, back and forth
    return np.c_[along, 1.5 + k]


def two_cameras(shift_m: float, seed: int = 0, missed: float = 0.1) -> list:
    """Both cameras' sightings every 1/FPS s for ``SECONDS``: ``b`` places everyone
    ``shift_m`` further along x and misses a share ``missed`` of them (occlusion)."""
    rng = np.random.default_rng(seed)
    frames = []
    for k in range(int(SECONDS * FPS)):
        t = k / FPS
        truth = walkers(t)
        seen_b = truth[rng.random(len(truth)) >= missed] + [shift_m, 0.0]
        frames.append((t, [sighting("a", t, truth + rng.normal(0, 0.05, truth.shape)),
                           sighting("b", t, seen_b + rng.normal(0, 0.05, seen_b.shape))]))
    return frames


def pair_check(shift_m: float):
    """The calibration check of cameras a and b, both seeing the whole 10 x 10 m floor,
    after ``SECONDS`` of eight people walking, ``b`` placing them ``shift_m`` off."""
    fusion = FloorFusion(FusionConfig(), squares(a=(0, 0, 10, 10), b=(0, 0, 10, 10)),
                         ((0, 0), (10, 10)))
    for k, (t, observations) in enumerate(two_cameras(shift_m)):
        fusion.step(k, t, observations)
    return fusion.calibration_health()[("a", "b")]


def test_a_pair_as_calibrated_agrees_despite_occlusion():
    check = pair_check(0.0)
    assert check.overlap >= MIN_OVERLAP_SAMPLES
    assert check.unmatched_share < 0.2, "b misses one person in ten: about that many unmatched"
    assert not check.disagrees
    assert check.median_m == pytest.approx(0.07, abs=0.05)


def test_a_pair_one_of_which_is_moved_1_5_m_disagrees():
    """The matched distance alone read as a small error; the people counted twice are
    unmatched where both cameras look."""
    check = pair_check(1.5)
    assert check.overlap >= MIN_OVERLAP_SAMPLES
    assert check.unmatched_share > 0.8 and check.disagrees
    problem = disagreement_problem({("a", "b"): check})
    assert problem is not None and "Cameras a and b" in problem and "twice" in problem
    assert "edge calibrate" in problem and len(problem) <= 200  # the page shows 200
    line = calibration_check_line(("a", "b"), check)
    assert line.startswith("Calibration check a-b: FAILED") and "counted twice" in line
    assert "edge calibrate --footprints" in line


def test_a_pair_with_a_footprint_not_known_gives_the_matched_distance_only():
    """Where a camera sees the floor is not known until its frame size is (no
    ``calibration.image_size`` nor ``floor_area``): nor is where both cameras look, so the
    share is not measured (taking the whole floor would count the people only one camera
    can see as unmatched)."""
    fusion = FloorFusion(FusionConfig(), Coverage({"a": shapely.box(0, 0, 10, 10), "b": None}),
                         ((0, 0), (10, 10)))
    for k, (t, observations) in enumerate(two_cameras(0.0)):
        fusion.step(k, t, observations)
    check = fusion.calibration_health()[("a", "b")]
    assert check.unmatched_share is None and check.overlap == 0 and not check.disagrees
    assert check.median_m == pytest.approx(0.07, abs=0.05)
    assert calibration_check_line(("a", "b"), check).endswith(
        f"{check.median_m:.2f} m apart (median of {check.matched}).")


def fused_pair(tmp_path, shift_m: float) -> tuple[SiteConfig, FusionWorker]:
    """A live fusion service that fused both cameras' frames of ``SECONDS`` (the camera
    ``aisle`` placing everyone ``shift_m`` off) and reported its health."""
    site = floor_in_centimetres_site(tmp_path, "two-cams", {"door": FPS, "aisle": FPS})
    db = open_database(tmp_path / "edge.db")
    frames = [type(seen)({"a": "door", "b": "aisle"}[seen.camera_id], seen.frame_index,
                         START + t, seen.xy, seen.covariance, seen.local_id)
              for t, observations in two_cameras(shift_m) for seen in observations]
    write_camera_frames(db, frames)
    now = [START + 1.0]
    worker = FusionWorker(site, db, clock=lambda: now[0])
    worker.start()
    while now[0] < START + SECONDS + 4.0:
        now[0] += 0.5
        worker.fuse_ready()
        worker.flush()
    worker.report_health()
    return site, worker


def fusion_health(tmp_path, shift_m: float) -> tuple[str, str, dict]:
    """The fusion's health row after :func:`fused_pair`."""
    _, worker = fused_pair(tmp_path, shift_m)
    status, message, detail = worker.db.execute(
        "select status, message, detail from health where component = 'fusion'").fetchone()
    return status, message, json.loads(detail)


def test_the_fusion_health_is_ok_for_cameras_that_agree(tmp_path):
    status, message, detail = fusion_health(tmp_path, 0.0)
    assert status == "ok", message
    assert detail["calibration_disagrees"] is False
    assert detail["calibration_pairs"]["aisle-door"]["unmatched_share"] < 0.2


def test_the_fusion_health_is_degraded_naming_a_pair_moved_1_5_m(tmp_path):
    status, message, detail = fusion_health(tmp_path, 1.5)
    assert status == "degraded"
    assert "Cameras aisle and door count people twice" in message
    assert "edge calibrate" in message
    assert detail["calibration_disagrees"] is True
    assert detail["calibration_worst_unmatched_pair"] == "aisle-door"
    assert detail["calibration_worst_unmatched_share"] > 0.8
