"""Store-wide floor tracks against floor ground truth: identity and occupancy.

Both files hold rows ``frame,id,x,y`` (metres). Each frame, our people are matched to
the true ones by floor distance, at most ``gate_m`` apart (py-motmetrics, Hungarian),
and the usual CLEAR-MOT and identity figures follow: IDF1 (the share of sightings
given the right identity), MOTA, identity switches. The occupancy error is what a
store reads first: per frame with anyone present, ``|people reported - people
present| / people present``, averaged over frames.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edge.evaluation.clear_mot import FrameRange, clear_mot_figures, ground_truth_rows
from edge.motformat import read_rows

DEFAULT_GATE_M = 1.0


def read_floor_rows(path: str | Path) -> np.ndarray:
    """Rows ``frame,id,x,y`` (no header) as an ``(n, 4)`` array, with precise errors. An
    empty file is no one tracked, not an error."""
    return read_rows(path, min_columns=4, keep=4, layout="frame,id,x,y", allow_empty=True)


def evaluate_floor_tracks(
    gt: np.ndarray, tracks: np.ndarray, gate_m: float = DEFAULT_GATE_M,
    frames: FrameRange | None = None,
) -> dict[str, float | int]:
    """IDF1, MOTA, identity switches and occupancy error of ``tracks`` against ``gt``
    over every ground-truth frame (rows ``frame,id,x,y``), or those of ``frames``
    (``(first, last)``, both included: e.g. the frames a partial replay covered)."""
    import motmetrics as mm  # an evaluation extra, not needed on the box

    gt = ground_truth_rows(gt, frames)
    accumulator = mm.MOTAccumulator(auto_id=False)
    scored = np.unique(gt[:, 0].astype(np.int64))
    gt_frames = gt[:, 0].astype(np.int64)
    our_frames = tracks[:, 0].astype(np.int64)
    occupancy_errors = []
    for frame in scored:
        truth = gt[gt_frames == frame]
        ours = tracks[our_frames == frame]
        distances = mm.distances.norm2squared_matrix(truth[:, 2:4], ours[:, 2:4],
                                                     max_d2=gate_m**2)
        accumulator.update(truth[:, 1].astype(np.int64), ours[:, 1].astype(np.int64),
                           np.sqrt(distances), frameid=int(frame))
        occupancy_errors.append(abs(len(ours) - len(truth)) / len(truth))
    figures = clear_mot_figures(accumulator, (
        "IDF1", "IDP", "IDR", "MOTA", "MOTP_m", "id_switches", "false_positives", "misses",
        "gt_ids", "frames",
    ))
    frames_evaluated = figures.pop("frames")  # reported after tracker_ids
    reported = np.array([np.sum(our_frames == f) for f in scored])
    present = np.array([np.sum(gt_frames == f) for f in scored])
    return {
        **figures,
        "tracker_ids": int(len(np.unique(tracks[np.isin(our_frames, scored), 1]))),
        "frames": frames_evaluated,
        "occupancy_error": float(np.mean(occupancy_errors)),
        "people_reported_per_frame": float(reported.mean()),
        "people_present_per_frame": float(present.mean()),
        "gate_m": float(gate_m),
    }
