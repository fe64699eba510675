"""Checkout queues: waits from a ``queue`` zone to a ``checkout`` zone, and queue length.

A wait starts when a visit's stay in a zone of kind ``queue`` starts and ends when
its next stay in a zone of kind ``checkout`` starts (both dated by the zone
hysteresis of :mod:`edge.visits.presence`, from the first moment inside). A visit
that leaves the queue for a shopping zone (kind ``product``, ``service`` or
``staff``) before reaching a till has abandoned it: no wait. A visit may wait more
than once (it came back with something forgotten).

The page and the aggregates read the same functions here (:func:`read_waits`,
:func:`wait_summary`, :func:`queue_counts`), so the figure shown and the figure
published cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from shapely import contains_xy
from shapely.geometry import Polygon
from shapely.ops import unary_union

from edge.config.floor import FloorConfig
from edge.figures import staff_point_filter, table_names, visit_period
from edge.visits.records import QueueWait, ZoneStay

# Leaving the queue for one of these abandons it (transit zones do not: a queue often
# runs along a passage).
ABANDON_KINDS = frozenset({"product", "service", "staff"})


def queue_waits(stays: Sequence[ZoneStay], kinds: Mapping[str, str]) -> tuple[QueueWait, ...]:
    """The waits of one visit, from its zone stays (in order of entry).

    Args:
        stays: the visit's stays, ordered by entry time.
        kinds: zone id -> zone kind.
    """
    waits: list[QueueWait] = []
    joined: ZoneStay | None = None
    for stay in stays:
        kind = kinds.get(stay.zone_id)
        if kind == "queue":
            if joined is None:
                joined = stay
        elif kind == "checkout":
            if joined is not None and stay.enter_t >= joined.enter_t:
                waits.append(QueueWait(joined.zone_id, stay.zone_id, joined.enter_t,
                                       stay.enter_t))
            joined = None
        elif kind in ABANDON_KINDS and joined is not None and stay.enter_t >= joined.leave_t:
            joined = None
    return tuple(waits)


def has_queue(floor: FloorConfig) -> bool:
    """Whether queue figures mean anything on this floor: a queue and a checkout zone."""
    kinds = {zone.kind for zone in floor.zones}
    return {"queue", "checkout"} <= kinds


@dataclass(frozen=True, slots=True)
class WaitSummary:
    """Waits of a period: how many people, median and 90th percentile (seconds)."""

    people: int
    p50_s: float | None
    p90_s: float | None


def read_waits(conn: Any, start: float, end: float) -> list[float]:
    """Wait seconds of the visits of ``[start, end)`` (those that ended in it: the one
    rule of :mod:`edge.figures`, for the status page and the aggregates alike).

    ``conn`` is a ``sqlite3.Connection`` or a ``sqlite_utils.Database``.
    """
    return [
        float(row[0])
        for row in conn.execute(
            f"select w.wait_s from visit_queue_waits w join visits v on v.visit_id = w.visit_id "
            f"where {visit_period('v')} and w.wait_s >= 0",
            (start, end),
        )
    ]


def waiting_visits(conn: Any, start: float, end: float) -> int:
    """Visits (people) with at least one wait: the count the k rules apply to."""
    row = conn.execute(
        f"select count(distinct w.visit_id) from visit_queue_waits w join visits v "
        f"on v.visit_id = w.visit_id where {visit_period('v')}",
        (start, end),
    ).fetchone()
    return int(row[0] or 0)


def wait_summary(waits: Sequence[float], people: int) -> WaitSummary:
    """Median and p90 of ``waits`` (numpy's linear percentiles), for ``people`` visits."""
    if not waits:
        return WaitSummary(people, None, None)
    p50, p90 = np.percentile(np.asarray(waits, dtype=float), [50, 90])
    return WaitSummary(people, float(p50), float(p90))


def queue_area(floor: FloorConfig) -> Polygon | None:
    """The union of the floor's queue zones, or None without one."""
    shapes = [Polygon(zone.polygon) for zone in floor.zones if zone.kind == "queue"]
    return unary_union(shapes) if shapes else None  # type: ignore[no-any-return]


def queue_counts(
    conn: Any, floor: FloorConfig, start: float, end: float, sample_s: float
) -> list[int]:
    """People in the queue zones in each ``sample_s`` sample of ``[start, end)``: distinct
    tracks with a position inside a queue zone in the sample (empty samples count 0).
    Associates are left out, as from occupancy (:func:`edge.figures.staff_point_filter`):
    one behind the till is not waiting."""
    area = queue_area(floor)
    samples = max(1, int(np.ceil((end - start) / sample_s)))
    if area is None:
        return [0] * samples
    rows = conn.execute(
        "select t, run_id, camera_id, track_id, x, y from track_points tp where t >= ? and t < ?"
        f"{staff_point_filter(table_names(conn), 'tp')}",
        (start, end),
    ).fetchall()
    counts = [0] * samples
    if not rows:
        return counts
    t = np.asarray([r[0] for r in rows], dtype=float)
    xy = np.asarray([(r[4], r[5]) for r in rows], dtype=float)
    inside = contains_xy(area, xy[:, 0], xy[:, 1])
    seen: set[tuple[int, Any, Any, Any]] = set()
    for index in np.flatnonzero(inside).tolist():
        row = rows[index]
        sample = min(samples - 1, int((t[index] - start) // sample_s))
        seen.add((sample, row[1], row[2], row[3]))
    for sample, *_ in seen:
        counts[sample] += 1
    return counts


def people_in_queue(conn: Any, floor: FloorConfig, start: float, end: float) -> int:
    """People whose latest position in ``[start, end]`` is inside a queue zone (live);
    associates left out, as in :func:`queue_counts`."""
    area = queue_area(floor)
    if area is None:
        return 0
    rows = conn.execute(
        "select p.x, p.y from track_points p join ("
        " select run_id, camera_id, track_id, max(t) as last from track_points"
        " where t >= ? and t <= ? group by run_id, camera_id, track_id) l"
        " on p.run_id = l.run_id and p.camera_id = l.camera_id and p.track_id = l.track_id"
        " and p.t = l.last"
        f"{staff_point_filter(table_names(conn), 'p')}",
        (start, end),
    ).fetchall()
    if not rows:
        return 0
    xy = np.asarray(rows, dtype=float)
    return int(np.count_nonzero(contains_xy(area, xy[:, 0], xy[:, 1])))
