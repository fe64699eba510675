"""Shopping groups at rest: each customer visit's group, decided as the visit is stored.

Whether two visits were together depends only on their common time (the rule of
:mod:`edge.visits.groups`), which is complete once the first of them has ended. So a
visit's group is decided in the transaction that stores it: it is compared with the
other visits closing in the same build and with the stored visits of its run that it
overlaps (their positions are read back from ``track_points``, kept for hours). A
visit that meets a stored group joins it; one that joins two groups merges them. A
companion still in view is compared when it closes (then it joins), and an associate
walking beside a shopper never joins (associates' visits are not stored as visits).

The figure, buying units in a period (each group counted once), is
:func:`edge.figures.buying_units`.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Sequence

import numpy as np
import sqlite_utils

from edge.config.visits import VisitConfig
from edge.visits.groups import find_groups
from edge.visits.records import Visit, VisitResult
from edge.visits.trajectory import smooth


def _stored_overlapping(
    db: sqlite_utils.Database, config: VisitConfig, run_id: int | None, new: Sequence[Visit],
    skip: set[str],
) -> tuple[list[Visit], list[str], list[str]]:
    """Stored visits of the run overlapping any new one: the visits (positions from
    ``track_points``, smoothed as the builder does), their ids and their group ids."""
    if run_id is None:
        return [], [], []
    start, end = min(v.start_t for v in new), max(v.end_t for v in new)
    rows = db.execute(
        "select v.visit_id, v.camera_id, v.track_id, v.start_t, v.end_t, g.group_id "
        "from visits v join visit_groups g using (visit_id) "
        "where v.run_id = ? and v.start_t <= ? and v.end_t >= ? order by v.start_t",
        [run_id, end, start],
    ).fetchall()
    visits: list[Visit] = []
    ids: list[str] = []
    groups: list[str] = []
    for visit_id, camera, track, start_t, end_t, group_id in rows:
        if visit_id in skip:
            continue
        points = np.array(db.execute(
            "select t, x, y from track_points where run_id = ? and camera_id = ? and "
            "track_id = ? and t >= ? and t <= ? order by t",
            [run_id, camera, track, start_t, end_t]).fetchall(), dtype=np.float64)
        if len(points) < 2:  # raw positions already purged: it keeps its group
            continue
        t = points[:, 0]
        keep = np.concatenate(([True], np.diff(t) > 0))
        t, xy = t[keep], points[keep, 1:]
        visits.append(Visit(camera, run_id, track, t, smooth(t, xy, config.smoothing_s)))
        ids.append(visit_id)
        groups.append(group_id)
    return visits, ids, groups


def insert_groups(
    db: sqlite_utils.Database, config: VisitConfig, results: Sequence[VisitResult]
) -> int:
    """Give each new customer visit its group (call inside ``db.atomic()``, after the
    visits are inserted); return how many stored groups were merged into others."""
    if not results:
        return 0
    by_run: dict[int | None, list[VisitResult]] = {}
    for result in results:
        by_run.setdefault(result.measured.visit.run_id, []).append(result)
    merged = 0
    for run_id, batch in by_run.items():
        new = [r.measured.visit for r in batch]
        old, old_ids, old_groups = _stored_overlapping(db, config, run_id, new,
                                                       {r.visit_id for r in batch})
        labels = find_groups([*new, *old], config)
        chosen: dict[int, str] = {}
        for label, group_id in zip(labels[len(new):], old_groups, strict=True):
            if label in chosen and chosen[label] != group_id:
                merged += db.execute("update visit_groups set group_id = ? where group_id = ?",
                                     [chosen[label], group_id]).rowcount
            chosen.setdefault(label, group_id)
        rows = [{"visit_id": r.visit_id,
                 "group_id": chosen.setdefault(label, str(uuid.uuid4()))}
                for r, label in zip(batch, labels[:len(new)], strict=True)]
        db.table("visit_groups").insert_all(rows)
    return merged


def unit_segments(
    conn: sqlite3.Connection, start: float, end: float, *, by: str = "end_t"
) -> dict[str, int]:
    """The segment mix of buying units: each group classified once.

    A group's segment memberships are the mean of its members' (those whose visit
    ``by`` — ``start_t`` or ``end_t`` — falls in ``[start, end)``); its segment is the
    one with the highest mean (ties to the first name), so every unit counts in exactly
    one segment and a family of four counts once, not four times. Traits stay
    per person: they describe how each one walked and stopped.
    """
    if by not in ("start_t", "end_t"):
        raise ValueError(f"by must be start_t or end_t, got {by!r}")
    rows = conn.execute(
        "select coalesce(g.group_id, v.visit_id) as unit, s.segment, avg(s.probability) "
        "from visit_segments s join visits v on v.visit_id = s.visit_id "
        "left join visit_groups g on g.visit_id = v.visit_id "
        f"where v.{by} >= ? and v.{by} < ? group by unit, s.segment",
        [start, end],
    ).fetchall()
    best: dict[str, tuple[float, str]] = {}
    for unit, segment, p in rows:
        if unit not in best or (-p, segment) < (-best[unit][0], best[unit][1]):
            best[unit] = (float(p), str(segment))
    counts: dict[str, int] = {}
    for _, segment in best.values():
        counts[segment] = counts.get(segment, 0) + 1
    return counts
