"""Shopping groups at rest: each customer visit's group, decided as the visit is stored.

Whether two visits were together depends only on their common time (the rule of
:mod:`edge.visits.groups`), which is complete once the first of them has ended. So a
visit's group is decided in the transaction that stores it: it is compared with the
other visits closing in the same build and with the stored visits of its run that it
overlaps (their positions are read back from ``track_points``, kept for hours). A
visit that meets a stored group joins it; one that joins two groups merges them. A
companion still in view is compared when it closes (then it joins), and an associate
walking beside a shopper never joins (associates' visits are not stored as visits).

The figures, buying units in a period (each group counted once) and their segment mix
(each group classified once), are :func:`edge.figures.buying_units` and
:func:`edge.figures.unit_segments`.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

import numpy as np
import sqlite_utils

from edge.config.visits import VisitConfig
from edge.storage.trajectories import read_track
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
        t, xy = read_track(db, run_id, camera, track, start_t, end_t)
        if len(t) < 2:  # raw positions already purged: it keeps its group
            continue
        keep = np.concatenate(([True], np.diff(t) > 0))
        t, xy = t[keep], xy[keep]
        visits.append(Visit(camera, run_id, track, t,
                            smooth(t, xy, config.smoothing_s, outlier_m=config.outlier_m)))
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

