"""One camera's pipeline on real calibration: the floor-area filter and floor mapping."""

from __future__ import annotations

import time

import numpy as np
import pytest

from edge.calibration import fit_camera_calibrations
from edge.config.vision import DEFAULT_FPS, TrackerConfig
from edge.pipeline import CameraPipeline, tracker_frame_rate
from edge.records import Detections, box_anchors
from edge.replay import replay
from edge.runtime.camera_worker import CameraWorker
from edge.tracking import ByteTracker
from tests.conftest import PETS_DET

pytestmark = pytest.mark.system


def test_floor_area_drops_people_outside_and_maps_the_rest(pets_site):
    """Two people on the plaza and a sign post on the far pavement (pixels from the
    PETS recording): only the plaza people are tracked, at their floor positions."""
    camera = pets_site.cameras[0]
    homography = fit_camera_calibrations(pets_site)[camera.id]
    pipeline = CameraPipeline(
        camera.id, None, ByteTracker(TrackerConfig(minimum_track_age_s=0.0), 7.0),
        homography, camera.floor_area,
    )
    boxes = np.array(
        [
            [380.0, 160.0, 411.0, 249.0],  # plaza
            [180.0, 460.0, 222.0, 565.0],  # plaza, near the camera
            [30.0, 111.0, 48.0, 140.0],  # the sign post beyond the road
        ],
        np.float32,
    )
    floor = pipeline.process_detections(
        Detections(boxes, np.array([0.9, 0.9, 0.9], np.float32)), 0, 0.0
    )
    assert len(floor) == 2
    assert pipeline.times.outside_area == 1
    expected = homography.image_to_floor(box_anchors(boxes[:2]))
    order = np.argsort(floor.tracks.xyxy[:, 1])
    np.testing.assert_allclose(floor.xy[order], expected, atol=1e-6)
    x, y = floor.xy[:, 0], floor.xy[:, 1]
    assert ((x > -21) & (x < 7) & (y > -17.5) & (y < 8)).all()


def test_no_floor_area_keeps_everyone(pets_site):
    camera = pets_site.cameras[0]
    homography = fit_camera_calibrations(pets_site)[camera.id]
    pipeline = CameraPipeline(
        camera.id, None, ByteTracker(TrackerConfig(minimum_track_age_s=0.0), 7.0),
        homography, None,
    )
    boxes = np.array([[30.0, 111.0, 48.0, 140.0]], np.float32)
    floor = pipeline.process_detections(Detections(boxes, np.array([0.9], np.float32)), 0, 0.0)
    assert len(floor) == 1 and pipeline.times.outside_area == 0


def test_a_replay_by_default_ends_before_it_started(pets_site, memory_db):
    """No position of a replay lies in the future: the recording is placed so that it
    ends when the replay starts (795 frames at 7 frames/s: 113 s before)."""
    started = time.time()
    summary = replay(pets_site, memory_db, detections=PETS_DET)
    first, last = memory_db.execute("select min(t), max(t) from track_points").fetchone()
    assert summary.frames == 795
    assert last <= started
    assert first >= started - 795 / 7 - 1
    assert last - first > 100  # the people of the last frames are there, just in the past


def without_frame_rates(site):
    """The site with its first camera declaring no frame rate at all."""
    camera = site.cameras[0].model_copy(update={"fps": None, "detect_fps": None})
    return site.model_copy(update={"cameras": [camera, *site.cameras[1:]]})


def test_a_camera_without_a_frame_rate_gets_one_default_in_replay_and_live(pets_site, memory_db):
    """Regression: a det.txt of a camera without ``fps`` was replayed at 7 frames/s while
    the live worker tracked the same camera at 10."""
    site = without_frame_rates(pets_site)
    summary = replay(site, memory_db, detections=PETS_DET, start_time=0.0, max_frames=40)
    times = [t for (t,) in memory_db.execute("select distinct t from track_points order by t")]
    assert np.diff(times).min() == pytest.approx(1 / DEFAULT_FPS)
    assert summary.tracker_fps == DEFAULT_FPS
    worker = CameraWorker(site, site.cameras[0].id, memory_db)
    assert worker.pipeline.tracker.frame_rate == DEFAULT_FPS
    assert tracker_frame_rate(site.cameras[0]) == DEFAULT_FPS  # the store replay's det.txt


def test_a_replayed_video_feeds_its_tracker_the_rate_after_detect_fps(pets_site, memory_db):
    """Regression: the one-camera replay fed the tracker the file's 7 frames/s when
    ``detect_fps`` kept every other frame (the store replay and the live worker used
    3.5), so tracks were confirmed and dropped twice as late."""
    camera = pets_site.cameras[0].model_copy(update={"detect_fps": 3.5})
    site = pets_site.model_copy(update={"cameras": [camera, *pets_site.cameras[1:]]})
    summary = replay(site, memory_db, max_frames=1)
    assert summary.tracker_fps == 3.5 == camera.detection_rate
