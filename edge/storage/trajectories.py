"""Raw floor trajectories: where each tracked person stood, frame by frame.

These rows are the rawest data the box keeps (no image, no appearance, a track id
that means nothing outside the run) and are purged after
``storage.raw_trajectory_hours`` (24 h at most).

A run records the process writing it (pid, start time, boot id): a run left
``running`` by a process that is gone (``kill -9`` of ``edge replay``, a power cut) is
recognised by :func:`close_dead_runs` and closed as ``interrupted``, so that the
retention purge can remove it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import sqlite_utils
from sqlite_utils.migrations import Migrations

from edge.config.site import STORE_TRACKS_ID
from edge.errors import DataFormatError
from edge.processes import ProcessId
from edge.records import FloorTracks, FusedTracks
from edge.storage.database import where

log = logging.getLogger(__name__)

MIGRATIONS = Migrations("edge.trajectories")


@MIGRATIONS()
def m001_runs_and_track_points(db: sqlite_utils.Database) -> None:
    db.table("runs").create(
        {
            "id": int,
            "camera_id": str,
            "source": str,
            "model": str,
            "started_at": float,
            "ended_at": float,
            "frames": int,
            "status": str,
        },
        pk="id",
    )
    db.table("track_points").create(
        {
            "run_id": int,
            "camera_id": str,
            "track_id": int,
            "frame": int,
            "t": float,
            "x": float,
            "y": float,
            "left": float,
            "top": float,
            "width": float,
            "height": float,
            "confidence": float,
        },
        foreign_keys=[("run_id", "runs", "id")],
    )
    db.table("track_points").create_index(["run_id", "track_id", "frame"])
    db.table("track_points").create_index(["t"])


@MIGRATIONS()
def m002_runs_owner(db: sqlite_utils.Database) -> None:
    """Who writes a run: a run whose process is gone is interrupted, not running (runs
    from before this migration have none and are left as they are)."""
    runs = db.table("runs")
    runs.add_column("pid", int)
    runs.add_column("pid_start", int)  # clock ticks since boot: tells a reused pid apart
    runs.add_column("boot_id", str)


@MIGRATIONS()
def m003_runs_kind(db: sqlite_utils.Database) -> None:
    # "live" (a camera or the fusion service) or "replay" (`edge replay`): the status page
    # says how many replays its figures include, so a demo never passes for visitors.
    db.table("runs").add_column("kind", str)
    db.execute("update runs set kind = 'replay' where source like 'asset:%' or model = 'det.txt'")


@MIGRATIONS()
def m004_track_points_run_time(db: sqlite_utils.Database) -> None:
    # A run's positions in a time range (the live visit builder reads the last seconds
    # of its run at every build) and a run's newest position: without it both scanned
    # every position of the run through (run_id, track_id, frame).
    db.table("track_points").create_index(["run_id", "t"])


@MIGRATIONS()
def m005_run_pauses(db: sqlite_utils.Database) -> None:
    # A live run its worker took up again after a stop (edge.runtime.camera_worker): from
    # stopped_t to resumed_t its camera did not look. The visit builder does not count that
    # time towards a person having gone (nobody was seen leaving). Purged with the positions.
    db.table("run_pauses").create(
        {"run_id": int, "stopped_t": float, "resumed_t": float}, pk=("run_id", "stopped_t"))


def start_run(
    db: sqlite_utils.Database, camera_id: str, source: str, model: str, *, kind: str = "live",
    started_at: float | None = None,
) -> int:
    """Record the start of a run (now, or at ``started_at``); ``kind`` is ``live`` or
    ``replay``. A replay first closes the replay runs left ``running`` by a process that
    is gone (a killed ``edge replay``), so none stays ``running`` for ever."""
    if kind == "replay":
        close_dead_runs(db, kind="replay")
    owner = ProcessId.current()
    with db.atomic():
        table = db.table("runs").insert(
            {
                "camera_id": camera_id,
                "source": source,
                "model": model,
                "started_at": time.time() if started_at is None else started_at,
                "ended_at": None,
                "frames": 0,
                "status": "running",
                "pid": owner.pid,
                "pid_start": owner.start,
                "boot_id": owner.boot,
                "kind": kind,
            }
        )
    assert table.last_pk is not None  # set by the insert just made
    return int(table.last_pk)


def require_run(db: sqlite_utils.Database, run_id: int) -> None:
    """Check that the database holds run ``run_id``.

    Raises:
        DataFormatError: it does not; the message lists the runs it has.
    """
    if "runs" in db.table_names():
        if db.execute("select 1 from runs where id = ?", [run_id]).fetchone() is not None:
            return
        known = [row[0] for row in db.execute("select id from runs order by id")]
    else:
        known = []
    raise DataFormatError(f"the database has no run {run_id} (runs: {known or 'none'})")


def latest_finished_run(db: sqlite_utils.Database) -> int:
    """The id of the latest finished replay run (what ``edge report`` and ``edge eval
    floor`` use by default).

    Raises:
        DataFormatError: the database holds none.
    """
    if "runs" not in db.table_names():
        raise DataFormatError("the database holds no replay runs; run `edge replay` first")
    row = db.execute("select max(id) from runs where status = 'done'").fetchone()
    if row is None or row[0] is None:
        raise DataFormatError(
            f"the database holds no finished replay run{_stuck_runs(db)}; run `edge replay` "
            "first")
    return int(row[0])


def _stuck_runs(db: sqlite_utils.Database) -> str:
    """`` (run 3 is still 'running' ...)`` for the replay runs not finished, else ``""``:
    a read-only command does not close them, but says why it finds none."""
    if not {"pid", "kind"} <= set(db["runs"].columns_dict):
        return ""
    rows = db.execute("select id, pid, pid_start, boot_id from runs where status = 'running' "
                      "and kind = 'replay' order by id").fetchall()
    notes = []
    for run_id, pid, start, boot in rows:
        if pid is not None and ProcessId(pid, start, boot).alive():
            notes.append(f"run {run_id} is still running (process {pid})")
        else:
            notes.append(f"run {run_id} was left 'running' by a replay that was killed; the "
                         "next `edge replay` closes it as interrupted")
    return f" ({'; '.join(notes)})" if notes else ""


def finish_run(db: sqlite_utils.Database, run_id: int, frames: int, status: str, *,
               ended_at: float | None = None) -> None:
    """Record the end of a run (now, or at ``ended_at``) as ``status``."""
    with db.atomic():
        db.table("runs").update(
            run_id, {"ended_at": time.time() if ended_at is None else ended_at,
                     "frames": frames, "status": status}
        )


def resume_run(db: sqlite_utils.Database, run_id: int) -> None:
    """Reopen a run that ended (stopped or interrupted): it is ``running`` again, owned
    by this process."""
    owner = ProcessId.current()
    with db.atomic():
        db.table("runs").update(run_id, {"ended_at": None, "status": "running",
                                         "pid": owner.pid, "pid_start": owner.start,
                                         "boot_id": owner.boot})


def record_pause(db: sqlite_utils.Database, run_id: int, stopped_t: float,
                 resumed_t: float) -> None:
    """Record (or move the end of) a pause of run ``run_id``: its camera did not look from
    ``stopped_t`` to ``resumed_t``."""
    with db.atomic():
        db.table("run_pauses").upsert(
            {"run_id": run_id, "stopped_t": stopped_t, "resumed_t": max(resumed_t, stopped_t)},
            pk=("run_id", "stopped_t"))


def read_pauses(db: sqlite_utils.Database, run_id: int) -> list[tuple[float, float]]:
    """Run ``run_id``'s pauses ``(stopped_t, resumed_t)``, in time order."""
    if not db["run_pauses"].exists():
        return []
    return [(float(a), float(b)) for a, b in db.execute(
        "select stopped_t, resumed_t from run_pauses where run_id = ? order by stopped_t",
        [run_id])]


def close_running_runs(db: sqlite_utils.Database, camera_id: str) -> list[int]:
    """Close as ``interrupted`` ``camera_id``'s live runs left ``running`` by a worker that
    died (kill -9, power cut, OOM); returns their ids. Each ends at its last stored
    position (else its start). Only its own worker may call this, at start, when no live
    worker owns those runs. A replay's run (``edge replay`` into the box's database, of
    the camera or of the store) is its own process's: left alone, it may still be
    running (:func:`close_dead_runs` closes it once that process is gone)."""
    runs = [row[0] for row in db.execute(
        "select id from runs where camera_id = ? and status = 'running' and kind = 'live' "
        "order by id", [camera_id]
    ).fetchall()]
    for run_id in runs:
        with db.atomic():
            db.execute(
                "update runs set status = 'interrupted', ended_at = coalesce("
                "(select max(t) from track_points where run_id = ?), started_at) where id = ?",
                [run_id, run_id],
            )
        log.warning("Run %d (camera %s) was interrupted (its worker died); closed it.",
                    run_id, camera_id)
    return runs


def close_dead_runs(db: sqlite_utils.Database, camera_id: str | None = None, *,
                    kind: str | None = None) -> list[int]:
    """Close as ``interrupted`` every run (of ``camera_id``, or all; of ``kind``, or
    every kind) still ``running``
    whose process is gone (killed, crashed, or from an earlier boot); returns their ids.
    Its end is its last stored position (else its start). A camera worker closes its own
    camera's runs at start and turns their cut-off tracks into visits; this catches the
    rest, e.g. a killed ``edge replay``, whose run used to stay ``running`` and escape
    the purge for ever."""
    if not db["runs"].exists() or "pid" not in db["runs"].columns_dict:
        return []
    of_camera, params = ("and camera_id = ? ", [camera_id]) if camera_id is not None else ("", [])
    if kind is not None and "kind" in db["runs"].columns_dict:
        of_camera, params = of_camera + "and kind = ? ", [*params, kind]
    candidates = db.execute(
        "select id, camera_id, pid, pid_start, boot_id from runs "
        f"where status = 'running' and pid is not null {of_camera}order by id", params,
    ).fetchall()
    dead = [
        (run_id, camera)
        for run_id, camera, pid, start, boot in candidates
        if not ProcessId(pid, start, boot).alive()
    ]
    for run_id, camera in dead:
        with db.atomic():
            db.execute(
                "update runs set status = 'interrupted', ended_at = coalesce("
                "(select max(t) from track_points where run_id = ?), started_at) "
                "where id = ? and status = 'running'",
                [run_id, run_id],
            )
        log.warning("Run %d (camera %s) was left running by a process that is gone; "
                    "closed it as interrupted.", run_id, camera)
    return [run_id for run_id, _ in dead]


def _point_row(run_id: int, camera_id: str, track_id: int, frame: int, t: float,
               xy: np.ndarray, box: tuple[float, float, float, float] | None,
               confidence: float | None) -> dict:
    """A ``track_points`` row; ``box`` is ``(x1, y1, x2, y2)`` in pixels, None where there
    is no image box (the store-wide tracks)."""
    left, top, right, bottom = box if box is not None else (None, None, None, None)
    return {
        "run_id": run_id,
        "camera_id": camera_id,
        "track_id": track_id,
        "frame": frame,
        "t": t,
        "x": float(xy[0]),
        "y": float(xy[1]),
        "left": left,
        "top": top,
        "width": None if box is None else box[2] - box[0],
        "height": None if box is None else box[3] - box[1],
        "confidence": confidence,
    }


def track_point_rows(run_id: int, floor: FloorTracks) -> Iterator[dict]:
    tracks = floor.tracks
    for i in range(len(floor)):
        x1, y1, x2, y2 = (float(v) for v in tracks.xyxy[i])
        yield _point_row(run_id, floor.camera_id, int(tracks.tracker_id[i]), floor.frame_index,
                         floor.timestamp, floor.xy[i], (x1, y1, x2, y2),
                         float(tracks.confidence[i]))


def _set_frames(db: sqlite_utils.Database, run_id: int, frames: int) -> None:
    db.execute("update runs set frames = ? where id = ?", [frames, run_id])


def record_frames(db: sqlite_utils.Database, run_id: int, frames: int) -> None:
    """Set the frames processed so far by a running run."""
    with db.atomic():
        _set_frames(db, run_id, frames)


def write_track_points(
    db: sqlite_utils.Database, run_id: int, batch: list[FloorTracks], *, frames: int | None = None
) -> int:
    """Append a batch of frames' tracks in one transaction; return rows written.

    ``frames``, the run's frames processed so far, is stored in the same transaction, so
    a run cut off by kill -9 or a power cut keeps the count of what it stored (it was
    0 until :func:`finish_run`, which such a run never reaches).
    """
    rows = [row for floor in batch for row in track_point_rows(run_id, floor)]
    return _insert_points(db, run_id, rows, frames)


def _insert_points(
    db: sqlite_utils.Database, run_id: int, rows: list[dict], frames: int | None
) -> int:
    if rows or frames is not None:
        with db.atomic():
            if rows:
                db.table("track_points").insert_all(rows, batch_size=1000)
            if frames is not None:
                _set_frames(db, run_id, frames)
    return len(rows)


@dataclass(frozen=True, slots=True)
class Trajectory:
    """One track's floor positions over time, in time order.

    Attributes:
        run_id, camera_id, track_id: where it came from; meaningless outside the box.
        t: ``(n,)`` epoch seconds. xy: ``(n, 2)`` floor metres.
    """

    run_id: int
    camera_id: str
    track_id: int
    t: np.ndarray
    xy: np.ndarray


def read_trajectories(
    db: sqlite_utils.Database, run_id: int | None = None, since: float | None = None
) -> Iterator[Trajectory]:
    """Stored trajectories, optionally of one run or with points after ``since``."""
    condition, params = where(("run_id = ?", run_id), ("t >= ?", since))
    clause = f"where {condition}" if condition else ""
    cursor = db.execute(
        f"select run_id, camera_id, track_id, t, x, y from track_points {clause} "
        "order by run_id, track_id, t",
        params,
    )
    current: tuple | None = None
    points: list[tuple[float, float, float]] = []
    for run, camera, track, t, x, y in cursor:
        key = (run, camera, track)
        if key != current:
            if current is not None:
                yield _trajectory(current, points)
            current, points = key, []
        points.append((t, x, y))
    if current is not None:
        yield _trajectory(current, points)


def _trajectory(key: tuple, points: list[tuple[float, float, float]]) -> Trajectory:
    array = np.array(points, dtype=np.float64)
    return Trajectory(key[0], key[1], key[2], array[:, 0], array[:, 1:3])


def read_track(
    db: sqlite_utils.Database, run_id: int, camera_id: str, track_id: int, start: float,
    end: float,
) -> tuple[np.ndarray, np.ndarray]:
    """One track's stored positions with ``start <= t <= end``, in time order: ``(t, xy)``
    as ``(n,)`` and ``(n, 2)`` arrays.

    Read through the (run_id, track_id, frame) index, the track's own rows; left to
    itself, SQLite takes (run_id, t) for the time range and its order, which reads every
    track's positions over the range.
    """
    rows = db.execute(
        "select t, x, y from track_points indexed by idx_track_points_run_id_track_id_frame "
        "where run_id = ? and camera_id = ? and track_id = ? and t >= ? and t <= ? order by t",
        [run_id, camera_id, track_id, start, end],
    ).fetchall()
    array = np.array(rows, dtype=np.float64).reshape(-1, 3)
    return array[:, 0], array[:, 1:3]


def fused_point_rows(run_id: int, fused: FusedTracks) -> Iterator[dict]:
    """Rows of one instant's store-wide tracks: floor positions only, no box."""
    for i in range(len(fused)):
        yield _point_row(run_id, STORE_TRACKS_ID, int(fused.track_id[i]), fused.frame_index,
                         fused.timestamp, fused.xy[i], None, None)


def write_fused_points(
    db: sqlite_utils.Database, run_id: int, batch: list[FusedTracks], *, frames: int | None = None
) -> int:
    """Append a batch of fused instants in one transaction; return rows written."""
    rows = [row for fused in batch for row in fused_point_rows(run_id, fused)]
    return _insert_points(db, run_id, rows, frames)
