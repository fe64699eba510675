"""CLEAR-MOT and identity figures from a py-motmetrics accumulator, under our names.

One table for ``edge eval mot`` (image boxes) and ``edge eval floor --tracks`` (floor
positions): each names the figures it reports, in its order, and both read and convert
motmetrics' summary the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from edge.errors import DataFormatError

FrameRange = tuple[int, int]

# Our name: (the motmetrics metric, its conversion to a plain number).
FIGURES: dict[str, tuple[str, Callable[[Any], float | int]]] = {
    "MOTA": ("mota", float),
    # Box matches by IoU: motmetrics reports the mean IoU distance, we the mean IoU.
    "MOTP": ("motp", lambda distance: float(1.0 - distance)),
    # Floor matches by distance in metres: the mean distance itself.
    "MOTP_m": ("motp", float),
    "IDF1": ("idf1", float),
    "IDP": ("idp", float),
    "IDR": ("idr", float),
    "id_switches": ("num_switches", int),
    "false_positives": ("num_false_positives", int),
    "misses": ("num_misses", int),
    "gt_ids": ("num_unique_objects", int),
    "mostly_tracked": ("mostly_tracked", int),
    "mostly_lost": ("mostly_lost", int),
    "frames": ("num_frames", int),
}


def clear_mot_figures(accumulator: Any, names: Sequence[str]) -> dict[str, float | int]:
    """The figures ``names`` (keys of :data:`FIGURES`) of a ``motmetrics.MOTAccumulator``,
    in that order."""
    import motmetrics as mm  # an evaluation extra, not needed on the box

    metrics = list(dict.fromkeys(FIGURES[name][0] for name in names))
    row = mm.metrics.create().compute(accumulator, metrics=metrics, name="run").loc["run"]
    return {name: FIGURES[name][1](row[FIGURES[name][0]]) for name in names}


def ground_truth_rows(gt: np.ndarray, frames: FrameRange | None, *, what: str = "rows"
                      ) -> np.ndarray:
    """The ground-truth rows to score: all of ``gt``, or those of ``frames`` (``(first,
    last)``, both included: e.g. the frames a partial replay covered).

    Raises:
        DataFormatError: no row to score (``what`` names the rows in the message).
    """
    if len(gt) == 0:
        raise DataFormatError(f"the ground truth holds no {what}")
    if frames is not None:
        gt = gt[(gt[:, 0] >= frames[0]) & (gt[:, 0] <= frames[1])]
        if len(gt) == 0:
            raise DataFormatError(
                f"the ground truth has no {what} in frames {frames[0]}-{frames[1]}")
    return gt
