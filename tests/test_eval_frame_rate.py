"""The visit evaluation times a run by the rate its replay numbered frames at.

It used to read the camera's ``fps`` from the site and fall back to 7 frames/s when
the site left it out, while the replay took the file's own rate (or 10): a 25
frames/s recording was measured as if it lasted 3.6 times longer, so every rule in
seconds (line settling, stitching gaps, the shortest visit) was applied wrongly.
"""

from __future__ import annotations

import numpy as np

from edge.config import load_site
from edge.evaluation.visits import evaluate_visits, read_tracks
from edge.runtime.schema import open_database
from edge.storage.trajectories import finish_run, start_run
from tests.conftest import PETS_SITE

FPS = 25.0


def site_without_fps():
    site = load_site(PETS_SITE)
    cameras = [c.model_copy(update={"fps": None}) for c in site.cameras]
    return site.model_copy(update={"cameras": cameras})


def walk_through_the_door(db, camera_id: str) -> np.ndarray:
    """One person walking north through the demo's front door (y = -11.5) at 1.2 m/s,
    stored as a replay at 25 frames/s would store them; returns the same walk as gt rows."""
    frames = np.arange(0, 200)
    y = -15.0 + 1.2 * frames / FPS
    run = start_run(db, camera_id, "walk.mp4", "m")
    db["track_points"].insert_all(
        {"run_id": run, "camera_id": camera_id, "track_id": 1, "frame": int(f),
         "t": 1_000.0 + f / FPS, "x": -9.0, "y": float(yy), "left": 0, "top": 0, "width": 1,
         "height": 1, "confidence": 0.9} for f, yy in zip(frames, y, strict=True))
    finish_run(db, run, len(frames), "done")
    gt = np.full((len(frames), 10), -1.0)
    gt[:, 0], gt[:, 1], gt[:, 6], gt[:, 7], gt[:, 8] = frames + 1, 7, 1, -9.0, y
    return gt


def test_a_camera_without_fps_is_timed_by_its_run():
    site, db = site_without_fps(), open_database(":memory:")
    gt = walk_through_the_door(db, site.cameras[0].id)
    fps, _, _ = read_tracks(site, gt, db, 1)
    assert fps == FPS
    report = evaluate_visits(site, gt, db, run_id=1)
    assert report.metrics["entrance_gt_crossings"] == 1
    assert report.metrics["entrance_crossing_recall"] == 1.0
