"""From a track's raw floor positions to visits: split on long gaps, then smooth.

Smoothing is a centred moving average in *time* (the window shrinks symmetrically
at both ends, so a trajectory's first and last positions stay where they were
seen). It works on irregular sampling, as produced by a tracker that loses a
person for a few frames, with one correction: a window with frames missing on one
side holds more positions on the other, and its mean is pulled there (a walker at
1.4 m/s with three frames lost is put 0.3 m behind or ahead). So the mean is moved
along the person's velocity, fitted over twice the window (``SLOPE_WINDOWS``), by the
offset between the window's mean time and its centre. Where samples are regular the
offset is zero and this is the plain mean; on a walk at constant speed it is the walk
itself, whatever the sampling. The slope comes from a wider window than the mean so
that the correction stays steady on noisy tracks (fitted over the mean's own window it
is a local straight line, which is noisier: docs/visits.md has the figures).

A moving average spreads a single wrong position over its whole window: a box that
takes in a neighbour for a frame, or loses the feet behind a shelf, puts one position
a metre or more off, and a 1 s average at 7 frames/s moves seven positions by a
seventh of that. So, first, a position further than ``outlier_m`` from the median of
the positions around it (over the same window) is replaced by that median (a Hampel
filter): the median ignores a few wrong positions, and on a straight walk it is the
walk itself.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from edge.visits.records import Visit


def split_on_gaps(t: np.ndarray, gap_s: float) -> list[slice]:
    """Index ranges of ``t`` separated by gaps longer than ``gap_s`` seconds."""
    if len(t) == 0:
        return []
    breaks = np.flatnonzero(np.diff(t) > gap_s) + 1
    edges = [0, *breaks.tolist(), len(t)]
    return [slice(a, b) for a, b in zip(edges[:-1], edges[1:], strict=True)]


SLOPE_WINDOWS = 2.0  # the velocity that corrects a lopsided window is fitted over this many
# of its widths (chosen on PETS09 and WILDTRACK, random layouts of seeds 1-2, among 1, 2 and 3)
_CHUNK = 512  # positions summed against one reference time (bounds the sums' float error)


def smooth(t: np.ndarray, xy: np.ndarray, window_s: float, *, outlier_m: float = 0.0
           ) -> np.ndarray:
    """Centred moving average of ``xy`` over ``window_s`` seconds, each window's mean moved
    along the local velocity to the window's centre (the module says why); a new array.

    Args:
        t: ``(n,)`` increasing seconds.
        xy: ``(n, 2)`` positions.
        window_s: full window width; 0 returns a copy.
        outlier_m: a position further than this from the median of the positions
            around it (the window's span in samples at the mean sampling rate) is
            replaced by that median first; 0 keeps every position.
    """
    if window_s <= 0 or len(t) < 3:
        return np.array(xy, dtype=np.float64, copy=True)
    t = np.asarray(t, dtype=np.float64)
    xy = np.asarray(xy, dtype=np.float64)
    if outlier_m > 0:
        median = moving_median(xy, max(1, round(window_s / 2.0 * (len(t) - 1)
                                                / max(float(t[-1] - t[0]), 1e-9))))
        far = np.hypot(*(xy - median).T) > outlier_m
        xy = np.where(far[:, None], median, xy)
    half = np.minimum(window_s / 2.0, np.minimum(t - t[0], t[-1] - t))
    lo = np.searchsorted(t, t - half, side="left")
    hi = np.searchsorted(t, t + half, side="right")
    wide = SLOPE_WINDOWS * window_s / 2.0
    slope_lo = np.searchsorted(t, t - wide, side="left")
    slope_hi = np.searchsorted(t, t + wide, side="right")
    mean, mean_dt, _ = _window_fit(t, xy, lo, hi)
    _, _, velocity = _window_fit(t, xy, slope_lo, slope_hi)
    return mean - velocity * mean_dt[:, None]


def _window_fit(t: np.ndarray, xy: np.ndarray, lo: np.ndarray, hi: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Of the positions ``lo[i]:hi[i]`` (non-decreasing bounds): their mean, their mean
    time less ``t[i]``, and the slope of the least-squares line through them (0 where
    their times do not spread: one sample, or one instant). Running sums, in chunks of
    positions each taken against a time of its own, so that a track hours long sums
    small numbers."""
    n_rows = len(t)
    mean, mean_dt, slope = np.empty((n_rows, 2)), np.empty(n_rows), np.empty((n_rows, 2))
    for a in range(0, n_rows, _CHUNK):
        rows = slice(a, min(a + _CHUNK, n_rows))
        first, last = int(lo[rows][0]), int(hi[rows][-1])
        ref = t[a]
        dt = t[first:last] - ref
        part = xy[first:last]
        sums = np.zeros((last - first + 1, 7))  # 1, t, t², x, y, t·x, t·y: running
        np.cumsum(np.column_stack([np.ones_like(dt), dt, dt * dt, part, dt[:, None] * part]),
                  axis=0, out=sums[1:])
        window = sums[hi[rows] - first] - sums[lo[rows] - first]
        n, s1, s2 = window[:, 0], window[:, 1], window[:, 2]
        s_x, s_tx = window[:, 3:5], window[:, 5:7]
        c = t[rows] - ref  # each row's own time: offsets from it
        s_t = s1 - n * c
        s_tt = s2 - 2 * c * s1 + n * c * c
        s_tx = s_tx - c[:, None] * s_x
        det = n * s_tt - s_t * s_t
        flat = det <= 1e-9 * np.maximum(n * s_tt, 1e-300)
        mean[rows] = s_x / n[:, None]
        mean_dt[rows] = s_t / n
        slope[rows] = np.where(flat[:, None], 0.0, (n[:, None] * s_tx - s_t[:, None] * s_x)
                               / np.where(flat, 1.0, det)[:, None])
    return mean, mean_dt, slope


def moving_median(xy: np.ndarray, half: int) -> np.ndarray:
    """Median of each position and the ``half`` positions on either side of it; the
    window shrinks symmetrically at both ends, as the moving average's does."""
    n = len(xy)
    out = np.array(xy, dtype=np.float64, copy=True)
    if n > 2 * half:  # an odd window: the median is its middle element once partitioned
        windows = sliding_window_view(xy, 2 * half + 1, axis=0)
        out[half:n - half] = np.partition(windows, half, axis=-1)[..., half]
    for i in (*range(min(half, n)), *range(max(n - half, half), n)):
        side = min(i, n - 1 - i)
        out[i] = np.sort(xy[i - side:i + side + 1], axis=0)[side]
    return out


def track_segments(
    camera_id: str,
    run_id: int | None,
    track_id: int,
    t: np.ndarray,
    xy: np.ndarray,
    *,
    gap_s: float,
    smoothing_s: float,
    outlier_m: float = 0.0,
) -> list[Visit]:
    """A track's pieces (split where it was gone longer than ``gap_s``), smoothed.

    Fragments are kept here: line crossings are counted on every piece, while only
    pieces of at least the minimum duration become visits.
    """
    t = np.asarray(t, dtype=np.float64)
    xy = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
    return [
        Visit(camera_id, run_id, track_id, t[piece].copy(),
              smooth(t[piece], xy[piece], smoothing_s, outlier_m=outlier_m))
        for piece in split_on_gaps(t, gap_s)
    ]
