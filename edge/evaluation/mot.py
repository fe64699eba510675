"""Multi-object-tracking metrics: CLEAR-MOT and identity metrics from ``motmetrics``,
HOTA from ``trackeval`` (the official implementation), never hand-written.

Ground-truth rows whose confidence column is 0 are "do not evaluate" marks and are
dropped, as TrackEval does for MOT15 sequences such as PETS09-S2L1.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import sqlite_utils

from edge.errors import DataFormatError
from edge.evaluation.clear_mot import FrameRange, clear_mot_figures, ground_truth_rows
from edge.motformat import mot_array, read_mot
from edge.storage.trajectories import require_run
from edge.tracking.association import box_iou

IOU_THRESHOLD = 0.5
FRAME_OFFSET = 1  # our 0-based frame index + 1 = MOTChallenge frame number


def _boxes(rows: np.ndarray) -> np.ndarray:
    return rows[:, 2:6]


def _by_frame(rows: np.ndarray, frames: np.ndarray) -> list[np.ndarray]:
    order = np.argsort(rows[:, 0], kind="stable")
    rows = rows[order]
    bounds = np.searchsorted(rows[:, 0], np.concatenate([frames, [frames[-1] + 1]]))
    return [rows[bounds[i] : bounds[i + 1]] for i in range(len(frames))]


def _clear_and_identity(gt_frames: list[np.ndarray], ts_frames: list[np.ndarray]) -> dict:
    import motmetrics as mm

    accumulator = mm.MOTAccumulator(auto_id=True)
    for gt, ts in zip(gt_frames, ts_frames, strict=True):
        distances = _iou_distance(_boxes(gt), _boxes(ts))
        accumulator.update(gt[:, 1].astype(int), ts[:, 1].astype(int), distances)
    return clear_mot_figures(accumulator, (
        "MOTA", "MOTP", "IDF1", "IDP", "IDR", "id_switches", "false_positives", "misses",
        "gt_ids", "mostly_tracked", "mostly_lost",
    ))


def _iou_distance(gt_xywh: np.ndarray, ts_xywh: np.ndarray) -> np.ndarray:
    """motmetrics' IoU distance (1 - IoU, NaN = may not match) at :data:`IOU_THRESHOLD`.

    Same definition as ``motmetrics.distances.iou_matrix``, which calls
    ``np.asfarray`` and so fails on NumPy 2.
    """
    a, b = gt_xywh.copy(), ts_xywh.copy()
    a[:, 2:] += a[:, :2]
    b[:, 2:] += b[:, :2]
    distance = 1.0 - box_iou(a, b)
    distance[distance > IOU_THRESHOLD] = np.nan
    return distance


def _hota(gt_frames: list[np.ndarray], ts_frames: list[np.ndarray]) -> dict:
    from trackeval.metrics import HOTA

    gt_ids = np.unique(np.concatenate([g[:, 1] for g in gt_frames])) if gt_frames else np.zeros(0)
    ts_all = [t[:, 1] for t in ts_frames if len(t)]
    ts_ids = np.unique(np.concatenate(ts_all)) if ts_all else np.zeros(0)
    gt_index = {v: i for i, v in enumerate(gt_ids)}
    ts_index = {v: i for i, v in enumerate(ts_ids)}
    similarity = []
    for gt, ts in zip(gt_frames, ts_frames, strict=True):
        a, b = _boxes(gt).copy(), _boxes(ts).copy()
        a[:, 2:] += a[:, :2]
        b[:, 2:] += b[:, :2]
        similarity.append(box_iou(a, b))
    data = {
        "num_timesteps": len(gt_frames),
        "num_gt_ids": len(gt_ids),
        "num_tracker_ids": len(ts_ids),
        "num_gt_dets": int(sum(len(g) for g in gt_frames)),
        "num_tracker_dets": int(sum(len(t) for t in ts_frames)),
        "gt_ids": [np.array([gt_index[v] for v in g[:, 1]], dtype=int) for g in gt_frames],
        "tracker_ids": [np.array([ts_index[v] for v in t[:, 1]], dtype=int) for t in ts_frames],
        "similarity_scores": similarity,
    }
    result = HOTA().eval_sequence(data)
    return {
        "HOTA": float(np.mean(result["HOTA"])),
        "DetA": float(np.mean(result["DetA"])),
        "AssA": float(np.mean(result["AssA"])),
        "LocA": float(np.mean(result["LocA"])),
    }


def evaluate_mot(
    gt: np.ndarray, tracks: np.ndarray, frames: FrameRange | None = None, *,
    hota_only: bool = False,
) -> dict[str, float | int]:
    """HOTA, MOTA, IDF1 and their parts of ``tracks`` against ``gt`` (MOTChallenge rows).

    Frames are those of the ground truth, from its first to its last; tracker rows on
    other frames are ignored.

    Args:
        frames: ``(first, last)``: only these frames of the ground truth (e.g. those
            a partial replay covered).
        hota_only: only HOTA and its parts (about twice as fast: for parameter searches).

    Raises:
        DataFormatError: no ground-truth row to evaluate (in ``frames``).
    """
    gt = gt[gt[:, 6] != 0]
    if len(gt) == 0:
        raise DataFormatError("the ground truth has no rows to evaluate (all marked 0)")
    gt = ground_truth_rows(gt, frames, what="rows to evaluate")
    evaluated = np.arange(int(gt[:, 0].min()), int(gt[:, 0].max()) + 1)
    tracks = tracks[(tracks[:, 0] >= evaluated[0]) & (tracks[:, 0] <= evaluated[-1])]
    gt_frames, ts_frames = _by_frame(gt, evaluated), _by_frame(tracks, evaluated)
    result: dict[str, float | int] = {}
    result.update(_hota(gt_frames, ts_frames))
    if not hota_only:
        result.update(_clear_and_identity(gt_frames, ts_frames))
    result["frames"] = len(evaluated)
    result["tracker_ids"] = int(len(np.unique(tracks[:, 1]))) if len(tracks) else 0
    return result


def evaluate_mot_files(
    gt_path: str | Path, tracks_path: str | Path, frames: FrameRange | None = None
) -> dict[str, float | int]:
    """:func:`evaluate_mot` on two MOTChallenge files."""
    return evaluate_mot(read_mot(gt_path), read_mot(tracks_path), frames)


def coverage_hint(gt: np.ndarray, tracks: np.ndarray) -> str | None:
    """A note when the tracks end before the ground truth (a partial replay, say), whose
    later frames then all count as misses; None otherwise."""
    return frame_coverage_hint(gt[gt[:, 6] != 0][:, 0], tracks[:, 0])


def frame_coverage_hint(gt_frames: np.ndarray, track_frames: np.ndarray) -> str | None:
    """:func:`coverage_hint` on the frame numbers of the ground truth's rows (those
    scored) and of the tracks' rows: MOTChallenge boxes and floor rows alike."""
    if not len(gt_frames) or not len(track_frames):
        return None
    gt_first, gt_last = int(gt_frames.min()), int(gt_frames.max())
    track_first, track_last = int(track_frames.min()), int(track_frames.max())
    if track_last >= gt_last:
        return None
    return (f"the tracks cover frames {track_first}-{track_last}, the ground truth "
            f"{gt_first}-{gt_last}: its frames after {track_last} are scored as misses; to "
            f"score only the frames the tracks cover, add --frames {gt_first}-{track_last}")


# Below this DetA the tracks and the ground truth barely share a box: another scene's
# ground truth (PETS tracks on TUD-Campus's gt score 0.03), or another numbering.
MISMATCH_DETA = 0.05


def scene_hint(gt: np.ndarray, tracks: np.ndarray,
               metrics: dict[str, float | int]) -> str | None:
    """A note when ``tracks`` (MOTChallenge rows) may not be of the recording ``gt``
    annotates: they run past its last frame, or their boxes barely overlap its boxes
    (``metrics["DetA"]`` below :data:`MISMATCH_DETA`); None otherwise."""
    gt = gt[gt[:, 6] != 0]
    if not len(gt) or not len(tracks):
        return None
    gt_last, track_last = int(gt[:, 0].max()), int(tracks[:, 0].max())
    reasons = []
    if track_last > gt_last:
        reasons.append(f"the tracks run to frame {track_last}, past the ground truth's last "
                       f"frame {gt_last}: their frames after it are not scored")
    deta = float(metrics.get("DetA", 1.0))
    if deta < MISMATCH_DETA:
        reasons.append(f"the tracks' boxes barely overlap the ground truth's (DetA {deta:.3f})")
    if not reasons:
        return None
    return "; ".join(reasons) + "; is this the ground truth of this recording?"


def read_run_boxes(db: sqlite_utils.Database, run_id: int) -> np.ndarray:
    """A stored run's image boxes as MOTChallenge rows (frames from 1, columns 8-10 -1).

    Points without a box are left out: a store-wide run fused from several cameras
    (camera ``store``) holds floor positions only.

    Raises:
        DataFormatError: the database has no run ``run_id``.
    """
    require_run(db, run_id)
    rows = np.array(db.execute(
        "select frame, track_id, left, top, width, height, confidence from track_points "
        "where run_id = ? and left is not null and top is not null and width is not null "
        "and height is not null", [run_id]).fetchall(), dtype=np.float64).reshape(-1, 7)
    return mot_array(rows[:, 0], rows[:, 1], rows[:, 2:6], rows[:, 6],
                     frame_offset=FRAME_OFFSET, corners=False)


def require_run_boxes(db: sqlite_utils.Database, run_id: int) -> np.ndarray:
    """:func:`read_run_boxes`, refusing a run that has none.

    Raises:
        DataFormatError: no such run, or a run without boxes (one line naming the runs
            that have some).
    """
    boxes = read_run_boxes(db, run_id)
    if len(boxes):
        return boxes
    camera = db.execute("select camera_id from runs where id = ?", [run_id]).fetchone()[0]
    with_boxes = [row[0] for row in db.execute(
        "select distinct run_id from track_points where left is not null order by run_id")]
    why = ("a store-wide run fused from several cameras holds floor positions only"
           if camera == "store" else "it stored no track point with a box")
    raise DataFormatError(
        f"run {run_id} (camera {camera}) has no image boxes to score: {why}; score one of "
        f"the runs with boxes instead (--run {', '.join(map(str, with_boxes)) or 'none'})"
    )
