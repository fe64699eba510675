"""Zone presence with entry/exit hysteresis.

A person standing on a zone border flickers in and out from frame to frame. A stay
therefore starts only after the person has been inside continuously for
``enter_after_s``, and ends only after they have been outside continuously for
``leave_after_s`` (shorter excursions are bridged). Once confirmed, a stay is dated
from the first moment inside to the first moment outside, so dwell is not cut
short by the confirmation delay (the same idea as supervision's
``minimum_crossing_threshold`` and Frigate's zone ``inertia``). Given the times at
which the path crosses each zone's border between samples, stays are dated by those
rather than by the samples around them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from edge.visits.records import ZoneStay


def zone_stays(
    t: np.ndarray,
    inside: np.ndarray,
    zone_ids: Sequence[str],
    *,
    enter_after_s: float,
    leave_after_s: float,
    change_t: np.ndarray | None = None,
) -> list[ZoneStay]:
    """Stays of one trajectory in every zone, ordered by entry time.

    Args:
        t: ``(n,)`` increasing seconds.
        inside: ``(zones, n)`` bool membership of each position in each zone.
        zone_ids: the zone of each row.
        enter_after_s: seconds inside before a stay starts.
        leave_after_s: seconds outside before a stay ends.
        change_t: ``(zones, n)`` when each change of membership happened (between
            sample ``i - 1`` and ``i`` for a change at ``i``), as
            :meth:`edge.visits.geometry.ZoneIndex.change_times` gives; default ``t[i]``.
    """
    stays: list[ZoneStay] = []
    touched = np.flatnonzero(inside.any(axis=1))
    if len(touched) == 0:
        return stays
    member = inside[touched]
    # every zone's run boundaries at once: (row, index) where membership changes
    rows, cols = np.nonzero(member[:, 1:] != member[:, :-1])
    split = np.searchsorted(rows, np.arange(1, len(touched)))
    times = t.tolist()
    first = member[:, 0].tolist()
    for k, changes in enumerate(np.split(cols + 1, split)):
        zone_id = zone_ids[int(touched[k])]
        at = changes.tolist()
        when = (t[at] if change_t is None else change_t[touched[k], at]).tolist()
        for enter_t, leave_t in _intervals(times, first[k], when,
                                           enter_after_s, leave_after_s):
            stays.append(ZoneStay(zone_id, enter_t, leave_t))
    stays.sort(key=lambda stay: (stay.enter_t, stay.zone_id))
    return stays


def _intervals(
    t: list[float], first: bool, changes: list[float], enter_after_s: float,
    leave_after_s: float,
) -> list[tuple[float, float]]:
    """Stays of one zone from its membership runs.

    Args:
        t: all times. first: membership of the first position.
        changes: when membership flips (each starts a new run), in order.
    """
    run_t = [t[0], *changes]
    run_end = [*run_t[1:], t[-1]]
    intervals: list[tuple[float, float]] = []
    entered: float | None = None
    value = not first
    for begin, end in zip(run_t, run_end, strict=True):
        value = not value
        if entered is None:
            if value and end - begin >= enter_after_s:
                entered = begin
        elif not value and end - begin >= leave_after_s:
            intervals.append((entered, begin))
            entered = None
    if entered is not None:
        # A visit that ends during an unconfirmed excursion left the zone when it stepped out.
        intervals.append((entered, run_t[-1] if not value else t[-1]))
    return intervals
