"""The report's accuracy section: a run against ground truth, through the project's
own evaluators (:mod:`edge.evaluation.mot`, :mod:`edge.evaluation.floor`,
:mod:`edge.evaluation.visits`); nothing is re-implemented here.

A partial replay (``--max-frames``) is measured against the ground truth of the
frames it covered, not against the whole recording (:func:`covered_frames`,
:func:`ground_truth_of_frames`; ``edge eval visits`` does the same).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import sqlite_utils

from edge.config import SiteConfig
from edge.errors import DataFormatError
from edge.evaluation.floor import evaluate_floor, has_world_coordinates
from edge.evaluation.mot import FRAME_OFFSET, evaluate_mot, read_run_boxes, scene_hint
from edge.evaluation.visits import evaluate_visits
from edge.motformat import read_mot
from edge.storage.trajectories import require_run


@dataclass(frozen=True, slots=True)
class Accuracy:
    """Figures of one run against ground truth.

    Attributes:
        gt_name: the ground-truth file's name (shown, not its full path).
        last_frame: the last ground-truth frame evaluated.
        mot: HOTA, IDF1, MOTA, ID switches... (``edge eval mot``).
        floor: floor-position error in metres (``edge eval floor``), or None.
        visits: dwell error and line-count accuracy (``edge eval visits``), or None.
        notes: why a section is missing, in plain words.
        dwell_pairs: per (gt person, zone): true and measured dwell seconds.
    """

    gt_name: str
    last_frame: int
    mot: dict[str, float | int]
    floor: dict[str, float | int] | None
    visits: dict[str, float | int] | None
    notes: list[str] = field(default_factory=list)
    dwell_pairs: list[dict[str, object]] = field(default_factory=list)

    def figures(self) -> dict[str, float | int | None]:
        """Flat ``section.name -> number`` for the report's table and JSON."""
        out: dict[str, float | int | None] = {}
        for section, values in (("mot", self.mot), ("floor", self.floor),
                                ("visits", self.visits)):
            for key, value in (values or {}).items():
                finite = not (isinstance(value, float) and not np.isfinite(value))
                out[f"{section}.{key}"] = value if finite else None
        return out


def read_ground_truth(path: Path) -> np.ndarray:
    """Ground truth rows, checked now so a wrong file fails before a long replay.

    Raises:
        DataFormatError: not a MOTChallenge file (one line saying where and why).
    """
    rows = read_mot(path)
    if not np.any(rows[:, 6] != 0):
        raise DataFormatError(f"{path}: every row is marked 'do not evaluate' (column 7 is 0)")
    return rows


def covered_frames(db: sqlite_utils.Database, run_id: int) -> int:
    """The last ground-truth frame a run covered: its frame count, or the frame of its
    last track point when that is later (a replay limited by ``detect_fps``).

    Raises:
        DataFormatError: the database has no run ``run_id``.
    """
    require_run(db, run_id)
    frames = db.execute("select frames from runs where id = ?", [run_id]).fetchone()[0]
    last = db.execute("select max(frame) from track_points where run_id = ?",
                      [run_id]).fetchone()[0]
    return max(int(frames or 0), int(last) + FRAME_OFFSET if last is not None else 0)


def ground_truth_of_frames(
    gt: np.ndarray, last_frame: int, gt_name: str, *, replayed: bool = True
) -> np.ndarray:
    """The ground-truth rows of frames 1 to ``last_frame``.

    Args:
        replayed: the frames were replayed (else: they are the ones a replay about to
            start will cover); only changes the message.

    Raises:
        DataFormatError: none of those rows is to be evaluated: the ground truth is of
            another recording, or only of later frames.
    """
    cut = gt[gt[:, 0] <= last_frame]
    if not np.any(cut[:, 6] != 0):
        frames = (f"the replayed frames 1-{last_frame}" if replayed
                  else f"frames 1-{last_frame}, the ones the replay will cover")
        raise DataFormatError(
            f"{gt_name} has no rows in {frames}; is it the ground truth of this recording?"
        )
    return cut


def coverage_note(gt: np.ndarray, last_frame: int) -> str | None:
    """What a partial replay's figures are measured on, or None for the whole recording."""
    gt_last = int(gt[:, 0].max())
    if last_frame >= gt_last:
        return None
    return (f"the replay covered ground-truth frames 1-{last_frame} of {gt_last}; figures "
            "are for those frames")


def evaluate_run(
    db: sqlite_utils.Database, site: SiteConfig, run_id: int, gt: np.ndarray, gt_name: str
) -> Accuracy:
    """MOT metrics, floor error, dwell error and line counts of ``run_id`` against ``gt``."""
    last_frame = covered_frames(db, run_id)
    cut = ground_truth_of_frames(gt, last_frame, gt_name)
    tracks = read_run_boxes(db, run_id)
    notes: list[str] = []
    mot = evaluate_mot(cut, tracks)
    floor = visits = None
    pairs: list[dict[str, object]] = []
    if not np.any(has_world_coordinates(cut)):
        notes.append(f"{gt_name} has no world coordinates (columns 8-9), so floor, dwell and "
                     "line-count accuracy cannot be measured")
    else:
        try:
            floor = evaluate_floor(cut, db, run_id, FRAME_OFFSET).as_dict()
        except DataFormatError as error:
            notes.append(f"floor accuracy: {error}")
        try:
            result = evaluate_visits(site, cut, db, run_id=run_id)
            visits, pairs = result.metrics, result.pairs
        except DataFormatError as error:
            notes.append(f"visit accuracy: {error}")
    for note in (coverage_note(gt, last_frame), scene_hint(gt, tracks, mot)):
        if note is not None:
            notes.append(note)
    return Accuracy(gt_name, last_frame, mot, floor, visits, notes, pairs)
