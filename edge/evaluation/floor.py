"""Floor-position accuracy: stored floor trajectories against ground-truth world
coordinates.

MOTChallenge ground truth of calibrated sequences (PETS09-S2L1) gives, per box,
where the person stood on the ground plane in metres (columns 8 and 9). Each frame,
our tracked boxes are matched one-to-one to the ground-truth boxes by IoU
(Jonker-Volgenant, at least :data:`MIN_IOU`), and for every matched pair the
distance between our floor position (the homography of the box's bottom-centre)
and the true one is measured. The IoU match decides *who* is compared; the
distance measures the whole image-to-floor chain: box, calibration and homography.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import sqlite_utils

from edge.errors import DataFormatError
from edge.evaluation.mot import IOU_THRESHOLD
from edge.motformat import read_mot, read_rows
from edge.storage.trajectories import latest_finished_run, require_run
from edge.tracking.association import assign, box_iou

MIN_IOU = IOU_THRESHOLD


@dataclass(frozen=True, slots=True)
class FloorAccuracy:
    """Distances between our floor positions and the true ones, in metres.

    Attributes:
        matched: track points matched to a ground-truth box.
        unmatched: track points in evaluated frames that matched no ground-truth box.
        median_m, mean_m, p90_m, max_m: statistics of the matched distances.
        run_id: the replay run evaluated.
    """

    matched: int
    unmatched: int
    median_m: float
    mean_m: float
    p90_m: float
    max_m: float
    run_id: int

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)


def has_world_coordinates(gt: np.ndarray) -> np.ndarray:
    """Per ground-truth row, whether it gives a world (floor) position: MOTChallenge
    writes -1 in columns 8 and 9 when it does not (TUD-Campus, most MOT sequences)."""
    return (gt[:, 7] != -1) | (gt[:, 8] != -1)


def require_world_coordinates(gt: np.ndarray, needed_for: str = "floor accuracy") -> None:
    """Check that some row to evaluate (confidence not 0) has world coordinates.

    Raises:
        DataFormatError: none has; ``needed_for`` says what cannot be measured.
    """
    if not np.any(has_world_coordinates(gt[gt[:, 6] != 0])):
        raise DataFormatError(
            f"the ground truth has no world coordinates (columns 8 and 9 are -1); "
            f"{needed_for} needs a calibrated sequence such as PETS09-S2L1"
        )


def floor_rows_as_gt(floor: np.ndarray) -> np.ndarray:
    """Floor ground truth rows ``frame,id,x,y`` as MOTChallenge gt rows with the position
    in the world columns (8-9), as PETS09-S2L1's gt.txt has it: no box, confidence 1."""
    rows = np.full((len(floor), 10), -1.0)
    rows[:, :2] = floor[:, :2]
    rows[:, 6] = 1.0
    rows[:, 7:9] = floor[:, 2:4]
    return rows


def read_floor_truth(path: str | Path) -> np.ndarray:
    """Ground truth with floor positions, as gt rows (:func:`floor_rows_as_gt`): either a
    MOTChallenge gt.txt with world coordinates in columns 8-9 (PETS09-S2L1) or rows
    ``frame,id,x,y`` (WILDTRACK's gt/floor.txt), told apart by their number of columns.

    Raises:
        DataFormatError: as :func:`edge.motformat.read_rows`, or no world coordinates.
    """
    if _first_line(path).count(",") == 3:
        return floor_rows_as_gt(read_rows(path, min_columns=4, keep=4, layout="frame,id,x,y"))
    rows = read_mot(path, min_columns=9)
    require_world_coordinates(rows, "dwell and line-count accuracy")
    return rows


def _first_line(path: str | Path) -> str:
    """The file's first line with something on it ("" if none, or unreadable)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as file:
            return next((line for line in file if line.strip()), "")
    except OSError:
        return ""  # read_mot says what is wrong with the path


def floor_errors(gt: np.ndarray, points: np.ndarray) -> tuple[np.ndarray, int]:
    """Per matched point, the distance to the true floor position.

    Args:
        gt: MOTChallenge ground-truth rows ``(n, 10)``; rows whose confidence is 0
            are dropped, as in :mod:`edge.evaluation.mot`.
        points: ``(m, 7)`` rows ``(gt frame, left, top, width, height, x, y)``.

    Returns:
        ``(distances in metres, number of points that matched nothing)``.
    """
    require_world_coordinates(gt)
    gt = gt[gt[:, 6] != 0]
    gt = gt[has_world_coordinates(gt)]
    distances: list[np.ndarray] = []
    unmatched = 0
    gt_frames = gt[:, 0].astype(np.int64)
    point_frames = points[:, 0].astype(np.int64)
    for frame in np.intersect1d(np.unique(point_frames), np.unique(gt_frames)):
        ours, theirs = points[point_frames == frame], gt[gt_frames == frame]
        ours_xyxy, theirs_xyxy = ours[:, 1:5].copy(), theirs[:, 2:6].copy()
        ours_xyxy[:, 2:] += ours_xyxy[:, :2]
        theirs_xyxy[:, 2:] += theirs_xyxy[:, :2]
        pairs = assign(1.0 - box_iou(ours_xyxy, theirs_xyxy), 1.0 - MIN_IOU)
        unmatched += len(ours) - len(pairs)
        if pairs:
            mine, true = np.array(pairs).T
            distances.append(np.linalg.norm(ours[mine, 5:7] - theirs[true, 7:9], axis=1))
    return (np.concatenate(distances) if distances else np.zeros(0)), unmatched


def read_track_points(
    db: sqlite_utils.Database, run_id: int | None = None, frame_offset: int = 1
) -> tuple[int, np.ndarray]:
    """A run's track points as ``(run id, rows for :func:`floor_errors`)``.

    Args:
        db: the database ``edge replay`` wrote.
        run_id: the run (default: the latest finished one).
        frame_offset: added to our 0-based frame index to get the ground truth's
            frame number (1 for MOTChallenge, whose frames count from 1).
    """
    if run_id is None:
        run_id = latest_finished_run(db)
    else:
        require_run(db, run_id)
    rows = db.execute(
        "select frame, left, top, width, height, x, y from track_points where run_id = ?",
        [run_id],
    ).fetchall()
    points = np.array(rows, dtype=np.float64).reshape(-1, 7)
    points[:, 0] += frame_offset
    return run_id, points


def evaluate_floor(
    gt_path: str | Path | np.ndarray,
    db: sqlite_utils.Database,
    run_id: int | None = None,
    frame_offset: int = 1,
) -> FloorAccuracy:
    """Floor accuracy of a stored replay run against a ground-truth file (or its rows)."""
    gt = gt_path if isinstance(gt_path, np.ndarray) else read_mot(gt_path)
    run_id, points = read_track_points(db, run_id, frame_offset)
    if len(points) == 0:
        raise DataFormatError(f"run {run_id} has no track points to evaluate")
    distances, unmatched = floor_errors(gt, points)
    if len(distances) == 0:
        raise DataFormatError(
            f"no track point of run {run_id} overlaps a ground-truth box; is it the same "
            "recording, with frames aligned?"
        )
    return FloorAccuracy(
        matched=len(distances),
        unmatched=unmatched,
        median_m=float(np.median(distances)),
        mean_m=float(np.mean(distances)),
        p90_m=float(np.percentile(distances, 90)),
        max_m=float(np.max(distances)),
        run_id=run_id,
    )
