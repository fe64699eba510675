"""The hand-over between the camera workers and the live fusion service through the
database: each camera's frame size (its footprint on the floor) and the camera frames'
row numbers. No shared assets: sites with matrices, sightings made up."""

from __future__ import annotations

import numpy as np
import pytest
import sqlite_utils
import yaml

from edge.config import load_site
from edge.fusion import store
from edge.fusion.store import (
    read_camera_image_sizes,
    read_new_camera_frames,
    write_camera_frames,
    write_camera_image_size,
)
from edge.runtime.fusion_worker import SIZES_EVERY_S, FusionWorker
from edge.runtime.schema import open_database
from tests.test_fusion import sighting
from tests.test_fusion_service import START, people_at, two_camera_site


def side_by_side_site(tmp_path, *, left_sees: float, right_from: float, image_size: bool):
    """Cameras "left" and "right" looking down on a 10 x 10 m floor, 1 px = 1 cm:
    "left" sees x in [0, ``left_sees``], "right" x in [``right_from``, 10]. Calibrated by
    a matrix alone (as point pairs are: no ``calibration.image_size``), unless
    ``image_size``."""
    cameras = []
    for name, dx, width in (("left", 0.0, left_sees), ("right", right_from, 10 - right_from)):
        calibration = {"homography": [[0.01, 0, dx], [0, 0.01, 0], [0, 0, 1]]}
        if image_size:
            calibration["image_size"] = [round(100 * width), 1000]
        cameras.append({"id": name, "source": f"rtsp://{name}.invalid/s", "fps": 5,
                        "calibration": calibration})
    doc = {"site": {"id": "s"}, "cameras": cameras, "floor": {"bounds": [[0, 0], [10, 10]]},
           "web": {"access": "open-lan"}}
    path = tmp_path / "site.yaml"
    path.write_text(yaml.safe_dump(doc))
    return load_site(path)


def fused_tracks(db) -> int:
    return db.execute("select count(distinct track_id) from track_points "
                      "where camera_id = 'store'").fetchone()[0]


def run_fusion(site, db, until: float) -> FusionWorker:
    now = [START + 1.0]
    worker = FusionWorker(site, db, clock=lambda: now[0])
    worker.start()
    while now[0] < START + until:
        now[0] += 0.5
        worker.fuse_ready()
        worker.flush()
    return worker


# ---- frame sizes -----------------------------------------------------------------------

def two_views(tmp_path, size_from: str, *, left_sees: float, right_from: float):
    """:func:`side_by_side_site` and its database, the cameras' frame size known from
    the config's ``image_size`` or, as on a site calibrated by point pairs, only from
    what the camera workers recorded (100 pixels a metre, as the site maps them)."""
    site = side_by_side_site(tmp_path, left_sees=left_sees, right_from=right_from,
                             image_size=size_from == "config")
    db = open_database(tmp_path / "edge.db")
    if size_from == "camera worker":
        for camera, width_m in (("left", left_sees), ("right", 10 - right_from)):
            write_camera_image_size(db, camera, (round(100 * width_m), 1000), START)
    return site, db


@pytest.mark.parametrize("size_from", ["config", "camera worker"])
def test_a_silent_camera_s_person_is_held_not_counted_again(tmp_path, size_from):
    """Reviewer's report: the live fusion service never learnt the cameras' frame sizes.
    On a site calibrated by point pairs (no calibration.image_size) without floor_area,
    every camera then covered the whole floor: a camera rebooting for 20 s lost its
    person after lost_after_s instead of holding them, and they came back as a second
    store track (a second visit). The camera workers now record their frame size."""
    site, db = two_views(tmp_path, size_from, left_sees=6, right_from=4)
    frames = []
    for t in np.arange(0.0, 60.0, 0.2):
        if not 10.0 <= t < 30.0:  # "left", the only camera seeing x = 1, is down 20 s
            frames.append(sighting("left", START + t, [[1.0, 5.0]]))
        frames.append(sighting("right", START + t, np.zeros((0, 2))))
    write_camera_frames(db, frames)
    worker = run_fusion(site, db, 64.0)
    footprints = worker.stage.coverage.footprints
    assert footprints["left"] is not None and footprints["left"].bounds == pytest.approx(
        (0.0, 0.0, 6.0, 10.0), abs=0.01)
    assert fused_tracks(db) == 1


@pytest.mark.parametrize("size_from", ["config", "camera worker"])
def test_a_walk_through_the_aisle_between_two_views_is_one_person(tmp_path, size_from):
    """The same report: a 2 m aisle between two views nobody sees. With every camera
    covering everything, the walker was lost there at once and counted twice."""
    site, db = two_views(tmp_path, size_from, left_sees=4, right_from=6)
    frames = []
    for t in np.arange(0.0, 12.0, 0.2):
        x = 1.0 + 0.8 * t  # 0.8 m/s from x = 1 to x = 10.6
        for name, lo, hi in (("left", 0, 4), ("right", 6, 10)):
            frames.append(sighting(name, START + t,
                                   [[x, 5.0]] if lo <= x <= hi else np.zeros((0, 2))))
    write_camera_frames(db, frames)
    run_fusion(site, db, 18.0)
    assert fused_tracks(db) == 1


def test_a_camera_s_footprint_follows_its_recorded_frame_size(tmp_path):
    """Until a camera's worker records its frame size, the camera covers the whole floor
    (as before); once recorded, its footprint is the frame's, and it follows a change
    (a stream reopened at another resolution)."""
    site = side_by_side_site(tmp_path, left_sees=4, right_from=6, image_size=False)
    db = open_database(tmp_path / "edge.db")
    now = [START]
    worker = FusionWorker(site, db, clock=lambda: now[0])
    worker.start()
    worker.fuse_ready()
    assert worker.stage.coverage.footprints == {"left": None, "right": None}
    now[0] += SIZES_EVERY_S  # the sizes are read every SIZES_EVERY_S
    write_camera_image_size(db, "left", (400, 1000), START)
    write_camera_image_size(db, "gone", (640, 480), START)  # a camera the site no longer has
    assert read_camera_image_sizes(db) == {"left": (400, 1000), "gone": (640, 480)}
    worker.fuse_ready()
    footprints = worker.stage.coverage.footprints
    assert set(footprints) == {"left", "right"} and footprints["right"] is None
    assert footprints["left"].bounds == pytest.approx((0.0, 0.0, 4.0, 10.0), abs=0.01)
    write_camera_image_size(db, "left", (500, 1000), START + 60)
    worker.fuse_ready()
    assert worker.stage.coverage.footprints["left"].bounds == pytest.approx(
        (0.0, 0.0, 4.0, 10.0), abs=0.01)  # not read again yet
    now[0] += SIZES_EVERY_S
    worker.fuse_ready()
    assert worker.stage.coverage.footprints["left"].bounds == pytest.approx(
        (0.0, 0.0, 5.0, 10.0), abs=0.01)


# ---- row numbers -----------------------------------------------------------------------

def fusing_both_cameras(tmp_path) -> tuple[FusionWorker, sqlite_utils.Database, list[float]]:
    """A fusion service that fused 30 s of two cameras flushing every 0.5 s."""
    site = two_camera_site(tmp_path)
    db = open_database(tmp_path / "edge.db")
    now = [START]
    worker = FusionWorker(site, db, clock=lambda: now[0])
    worker.start()
    for k in range(60):
        now[0] = START + 0.5 * (k + 1)
        for camera in ("door", "aisle"):
            write_camera_frames(db, [sighting(camera, t, people_at((t - START) % 10)) for t in
                                     np.arange(now[0] - 1.5, now[0] - 1.0, 0.1)])
        worker.fuse_ready()
        worker.flush()
    return worker, db, now


def test_frames_written_after_a_late_batch_was_deleted_are_all_read(tmp_path):
    """Reviewer's report: camera_frames had no key of its own, so once the fusion deleted
    the newest rows (a stuck worker's late batch, stamped before instant - 5 s), SQLite
    gave their numbers to the next frames, and the fusion (reading the rows after the
    last one it read) skipped them: frames never fused, not even counted late. Before
    any new frame, it read the older rows again as new."""
    worker, db, now = fusing_both_cameras(tmp_path)
    write_camera_frames(db, [sighting("aisle", now[0] - 11 + 0.1 * i, people_at(1.0))
                             for i in range(10)])  # a stuck worker's batch, 11 s old
    worker.fuse_ready()
    worker.flush()  # read, counted late, and deleted with the fused frames
    assert worker.late_frames == {"aisle": 10}
    read = worker.frames_read
    worker.fuse_ready()  # nothing new
    assert (worker.frames_read, worker.late_frames) == (read, {"aisle": 10})
    now[0] += 0.5
    write_camera_frames(db, [sighting("door", now[0] - 2.5 + 0.1 * i, people_at(1.0))
                             for i in range(20)])
    worker.fuse_ready()
    assert worker.frames_read - read == 20
    assert worker.late_frames == {"aisle": 10}


def test_the_upgrade_keeps_the_frames_not_fused_yet_under_their_numbers(tmp_path):
    """The table is made anew with its key; the frames the workers stored while the
    fusion service was down (it fuses them when it is back) are kept, in their order."""
    path = tmp_path / "edge.db"
    old = sqlite_utils.Database(path)
    store.MIGRATIONS.apply(old, stop_before="m003_camera_frames_id")
    write_camera_frames(old, [sighting("door", START + k / 10, people_at(k / 10))
                              for k in range(20)])
    old.close()
    db = open_database(path)
    assert [r[0] for r in db.execute("select id from camera_frames")] == list(range(1, 21))
    frames, last = read_new_camera_frames(db, 0)
    assert last == 20 and [seen.timestamp for seen in frames] == pytest.approx(
        [START + k / 10 for k in range(20)])
    db.execute("delete from camera_frames where id > 15")
    write_camera_frames(db, [sighting("door", START + 5.0, people_at(5.0))])
    frames, last = read_new_camera_frames(db, 20)
    assert last == 21 and [seen.timestamp for seen in frames] == [START + 5.0]
    assert read_new_camera_frames(db, last) == ([], 21)
