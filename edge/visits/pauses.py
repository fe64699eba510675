"""Time a run's camera did not look: the pauses of a resumed run.

A one-camera site's worker that stops (an upgrade, a config change, systemd's
Restart=) and is back within ``fusion.down_hold_s`` takes its run up again
(``edge.runtime.camera_worker``); the people in view when it stopped were not seen
leaving. The builder measures a track's absence in *seen time*, the run's time less its
pauses, so that a track ending at the stop is still "in view" while the worker is away,
and one starting when the camera looks again continues it when stitching says so
(``edge.visits.stitch``: within ``stitch_max_gap_s`` of seen time, within walking reach
of the real time). As a fusion service's people held for a camera that is down, their
clock stops while nobody looks. A run without pauses is measured as before.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np


class Pauses:
    """A run's pauses, as ``(stopped_t, resumed_t)`` spans that do not overlap.

    Example:
        >>> Pauses([(10.0, 25.0)]).elapsed(9.0, 30.0)
        6.0
    """

    def __init__(self, spans: Iterable[tuple[float, float]] = ()) -> None:
        ordered = sorted((float(a), float(b)) for a, b in spans if b > a)
        self.starts = np.array([a for a, _ in ordered], dtype=np.float64)
        self.lengths = np.array([b - a for a, b in ordered], dtype=np.float64)

    def __bool__(self) -> bool:
        return len(self.starts) > 0

    def seen(self, t: float | np.ndarray) -> np.ndarray:
        """``t`` less the paused time before it (same shape)."""
        t = np.asarray(t, dtype=np.float64)
        if not self:
            return t
        return t - np.clip(t[..., None] - self.starts, 0.0, self.lengths).sum(axis=-1)

    def elapsed(self, since: float, until: float) -> float:
        """Seconds of seen time from ``since`` to ``until``."""
        if not self:
            return until - since
        return float(self.seen(until) - self.seen(since))

    def before(self, t: float, seconds: float) -> float:
        """The latest time ``seconds`` of seen time before ``t`` (a pause that ends
        there does not count)."""
        if not self:
            return t - seconds
        target = float(self.seen(t)) - seconds
        seen_starts = self.starts - np.concatenate(([0.0], np.cumsum(self.lengths)[:-1]))
        return target + float(self.lengths[seen_starts <= target].sum())
