"""The hand-over between live camera workers and the fusion service: each camera's
frames with their floor sightings, kept seconds only.

A camera worker appends one row per processed frame (also frames with nobody in
them: the fusion must know a camera looked and saw no one), in batches every
``service.flush_interval_s``, so a frame reaches the table seconds after it was taken.
Each row has an ``id`` that only grows (``AUTOINCREMENT``: the number of a deleted row is
never given again). The fusion service reads the rows in the order they were written
(:func:`read_new_camera_frames`, by ``id``: none is skipped however late it comes, none
read twice) and deletes what it has fused; :func:`delete_camera_frames` also
runs with the retention purge, so a stopped fusion service leaves nothing behind
for longer than the raw-trajectory retention.

A camera worker also records its frame size (``camera_image_sizes``, one row per
camera, :func:`write_camera_image_size`) when it reads its first frame, and again if it
changes: the fusion service maps it through the camera's calibration to learn which
part of the floor the camera sees (its footprint).

The fusion service also keeps its tracker's state after the last instant it stored
(``fusion_state``, one row), so that a service restarted within ``fusion.down_hold_s``
resumes its run with the same people, fusing the frames the cameras stored meanwhile.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import sqlite_utils
from sqlite_utils.migrations import Migrations

from edge.records import FloorObservations

MIGRATIONS = Migrations("edge.fusion")


@MIGRATIONS()
def m001_camera_frames(db: sqlite_utils.Database) -> None:
    # sightings: JSON [[x, y, cov_xx, cov_xy, cov_yy, camera track id, score], ...], floor
    # positions only (no box, no image)
    db.table("camera_frames").create({"camera_id": str, "frame": int, "t": float,
                                      "sightings": str})
    db.table("camera_frames").create_index(["t"])


@MIGRATIONS()
def m002_fusion_state(db: sqlite_utils.Database) -> None:
    # The store-wide tracker's state after the last stored instant of a fusion run
    # (FloorFusion.snapshot, JSON): floor positions and camera-local track ids only,
    # purged with the raw trajectories.
    db.table("fusion_state").create(
        {"run_id": int, "t": float, "done_until_t": float, "frames": int, "state": str},
        pk="run_id",
    )


@MIGRATIONS()
def m003_camera_frames_id(db: sqlite_utils.Database) -> None:
    # A key that only grows: the fusion reads the rows written after the last one it
    # read. Rows were numbered by SQLite's rowid, which gives the numbers of the newest
    # rows again once they are deleted (a late batch, fused and deleted at once): the
    # fusion then skipped the next frames, or read old ones again as late. SQLite cannot
    # add a key to a table: it is made anew, keeping its rows (frames not fused yet, the
    # fusion service may be down) under their numbers, in one transaction (the camera
    # workers' inserts wait for it and name the same columns).
    db.execute("create table camera_frames_keyed (id integer primary key autoincrement, "
               "camera_id text, frame integer, t real, sightings text)")
    db.execute("insert into camera_frames_keyed (id, camera_id, frame, t, sightings) "
               "select rowid, camera_id, frame, t, sightings from camera_frames order by rowid")
    db.execute("drop table camera_frames")
    db.execute("alter table camera_frames_keyed rename to camera_frames")
    db.table("camera_frames").create_index(["t"])


@MIGRATIONS()
def m004_camera_image_sizes(db: sqlite_utils.Database) -> None:
    # Each camera's frame size in pixels, as its worker last read it (``t``: when it
    # stored it), for the fusion service's footprints. No person data.
    db.table("camera_image_sizes").create(
        {"camera_id": str, "width": int, "height": int, "t": float}, pk="camera_id")


@dataclass(frozen=True, slots=True)
class SavedFusion:
    """Where a fusion run stopped: its last fused instant ``t``, the time up to which the
    camera frames were used (``done_until_t``), its instant count and the tracker's
    snapshot."""

    run_id: int
    t: float
    done_until_t: float
    frames: int
    state: dict


def save_fusion_state(db: sqlite_utils.Database, saved: SavedFusion) -> None:
    """Keep ``saved`` as its run's state (one row per run, replaced each time); the
    states of earlier runs go. Call it in the transaction that stores the instants, so
    that the state and the stored positions always agree."""
    with db.atomic():
        db.table("fusion_state").upsert(
            {"run_id": saved.run_id, "t": saved.t, "done_until_t": saved.done_until_t,
             "frames": saved.frames,
             "state": json.dumps(saved.state, separators=(",", ":"))},
            pk="run_id",
        )
        db.execute("delete from fusion_state where run_id != ?", [saved.run_id])


def load_fusion_state(db: sqlite_utils.Database, run_id: int) -> SavedFusion | None:
    """Run ``run_id``'s saved state, if any (None also when it is not valid JSON)."""
    if "fusion_state" not in db.table_names():
        return None
    row = db.execute("select t, done_until_t, frames, state from fusion_state "
                     "where run_id = ?", [run_id]).fetchone()
    if row is None:
        return None
    try:
        state = json.loads(row[3])
    except ValueError:
        return None
    return SavedFusion(run_id, float(row[0]), float(row[1]), int(row[2]), state)


def camera_frame_row(seen: FloorObservations) -> dict:
    cov = seen.covariance
    scores = seen.confidence
    rows = [
        [round(float(x), 3), round(float(y), 3), float(c[0, 0]), float(c[0, 1]), float(c[1, 1]),
         int(local), round(float(score), 3)]
        for (x, y), c, local, score in zip(seen.xy, cov, seen.local_id, scores, strict=True)
    ]
    return {"camera_id": seen.camera_id, "frame": seen.frame_index, "t": seen.timestamp,
            "sightings": json.dumps(rows, separators=(",", ":"))}


def write_camera_frames(db: sqlite_utils.Database, frames: Iterable[FloorObservations]) -> int:
    rows = [camera_frame_row(seen) for seen in frames]
    if rows:
        with db.atomic():
            db.table("camera_frames").insert_all(rows, batch_size=500)
    return len(rows)


def write_camera_image_size(
    db: sqlite_utils.Database, camera_id: str, size: tuple[int, int], t: float
) -> None:
    """Record ``camera_id``'s frame size ``(width, height)``, read at ``t`` (replacing the
    one it had)."""
    width, height = size
    with db.atomic():
        db.table("camera_image_sizes").upsert(
            {"camera_id": camera_id, "width": int(width), "height": int(height), "t": t},
            pk="camera_id")


def read_camera_image_sizes(db: sqlite_utils.Database) -> dict[str, tuple[int, int]]:
    """Each camera's frame size ``(width, height)`` as its worker last recorded it."""
    if "camera_image_sizes" not in db.table_names():
        return {}
    return {str(camera): (int(width), int(height)) for camera, width, height in db.execute(
        "select camera_id, width, height from camera_image_sizes")}


def read_camera_frames(
    db: sqlite_utils.Database, after_t: float, until_t: float
) -> Iterator[FloorObservations]:
    """Frames stamped in ``(after_t, until_t]``, in time order."""
    if "camera_frames" not in db.table_names():
        return
    for camera, frame, t, text in db.execute(
        "select camera_id, frame, t, sightings from camera_frames where t > ? and t <= ? "
        "order by t", [after_t, until_t]
    ):
        yield _observations(camera, frame, t, text)


def read_new_camera_frames(
    db: sqlite_utils.Database, after_row: int, *, after_t: float = float("-inf")
) -> tuple[list[FloorObservations], int]:
    """The frames written after row ``after_row`` (and stamped after ``after_t``), in the
    order they were written, and the last row read (pass it next time).

    Rows are numbered as they are inserted, and a number is never given again (also
    once its row is deleted), so a frame that arrives late is read once, and only once.
    Should the table have been made anew since (its numbers start again below
    ``after_row``), every row is new."""
    if "camera_frames" not in db.table_names():
        return [], after_row
    # the last number given, read before the rows: one written in between is among them
    given = db.execute("select seq from sqlite_sequence where name = 'camera_frames'").fetchone()
    last = int(given[0]) if given else 0
    if last < after_row:
        after_row = 0
    rows = db.execute(
        "select id, camera_id, frame, t, sightings from camera_frames where id > ? "
        "and t > ? order by id", [after_row, after_t]
    ).fetchall()
    frames = [_observations(camera, frame, t, text) for _, camera, frame, t, text in rows]
    return frames, max(last, rows[-1][0]) if rows else last


def _observations(camera: str, frame: int, t: float, text: str) -> FloorObservations:
    data = np.array(json.loads(text), dtype=np.float64)
    data = data.reshape(-1, data.shape[1] if data.ndim == 2 else 7)
    if data.shape[1] == 6:  # written before scores were kept
        data = np.c_[data, np.ones(len(data))]
    cov = np.stack([data[:, 2], data[:, 3], data[:, 3], data[:, 4]], axis=1).reshape(-1, 2, 2)
    return FloorObservations(camera, int(frame), float(t), data[:, :2].copy(), cov,
                             data[:, 5].astype(np.int64), data[:, 6].copy())


def delete_camera_frames(db: sqlite_utils.Database, before_t: float) -> int:
    """Forget every camera frame stamped before ``before_t``; returns rows deleted."""
    if "camera_frames" not in db.table_names():
        return 0
    with db.atomic():
        cursor = db.execute("delete from camera_frames where t < ?", [before_t])
    return cursor.rowcount
