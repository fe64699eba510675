"""CLEAR-MOT and identity figures from a py-motmetrics accumulator, under our names.

One table for ``edge eval mot`` (image boxes) and ``edge eval floor --tracks`` (floor
positions): each names the figures it reports, in its order, and both read and convert
motmetrics' summary the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

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
