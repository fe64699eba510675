"""From a track's raw floor positions to visits: split on long gaps, then smooth.

Smoothing is a centred moving average in *time* (the window shrinks symmetrically
at both ends, so a trajectory's first and last positions stay where they were
seen). It works on irregular sampling, as produced by a tracker that loses a
person for a few frames.
"""

from __future__ import annotations

import numpy as np

from edge.visits.records import Visit


def split_on_gaps(t: np.ndarray, gap_s: float) -> list[slice]:
    """Index ranges of ``t`` separated by gaps longer than ``gap_s`` seconds."""
    if len(t) == 0:
        return []
    breaks = np.flatnonzero(np.diff(t) > gap_s) + 1
    edges = [0, *breaks.tolist(), len(t)]
    return [slice(a, b) for a, b in zip(edges[:-1], edges[1:], strict=True)]


def smooth(t: np.ndarray, xy: np.ndarray, window_s: float) -> np.ndarray:
    """Centred moving average of ``xy`` over ``window_s`` seconds; a new array.

    Args:
        t: ``(n,)`` increasing seconds.
        xy: ``(n, 2)`` positions.
        window_s: full window width; 0 returns a copy.
    """
    if window_s <= 0 or len(t) < 3:
        return np.array(xy, dtype=np.float64, copy=True)
    half = np.minimum(window_s / 2.0, np.minimum(t - t[0], t[-1] - t))
    lo = np.searchsorted(t, t - half, side="left")
    hi = np.searchsorted(t, t + half, side="right")
    sums = np.zeros((len(t) + 1, 2), dtype=np.float64)
    np.cumsum(xy, axis=0, out=sums[1:])
    return (sums[hi] - sums[lo]) / (hi - lo)[:, None]


def track_segments(
    camera_id: str,
    run_id: int | None,
    track_id: int,
    t: np.ndarray,
    xy: np.ndarray,
    *,
    gap_s: float,
    smoothing_s: float,
) -> list[Visit]:
    """A track's pieces (split where it was gone longer than ``gap_s``), smoothed.

    Fragments are kept here: line crossings are counted on every piece, while only
    pieces of at least the minimum duration become visits.
    """
    t = np.asarray(t, dtype=np.float64)
    xy = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
    return [
        Visit(camera_id, run_id, track_id, t[piece].copy(),
              smooth(t[piece], xy[piece], smoothing_s))
        for piece in split_on_gaps(t, gap_s)
    ]
