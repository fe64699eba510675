"""Shopping groups: people who came in together and walked together are one buying unit.

A family or a couple is one shopping unit, not four or two visits. Two visits of one
run are *together* when all of these hold (the thresholds are ``visits.group_*``):

1. they started within ``group_entry_window_s`` of each other (they came in together),
   or the later one started within ``group_distance_m`` of the earlier one (a
   companion picked up again beside them: people walking together hide each other
   from the camera, and the tracker's new piece of the one hidden starts mid-floor);
2. they overlapped in time for at least ``group_min_overlap_s``;
3. over their overlap, sampled every ``group_step_s``, they were within
   ``group_distance_m`` of each other at least ``group_together_fraction`` of the time
   (a family that splits up for a while is still a family; a stranger who walks past,
   or enters at the same moment and goes elsewhere, is not).

A group is a connected set of such pairs (a family of four whose first and last member
never stood close still forms one group through the others). A visit together with
no other is a group of one. The rule reads only anonymous floor positions, already
stored for the visits; what it adds at rest is a random group id per visit
(``visit_groups``), nothing about a person. Measured precision and recall are in
docs/visits.md ("Shopping groups").
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from edge.config.visits import VisitConfig
from edge.disjoint_set import DisjointSet
from edge.visits.records import Visit


def together_fraction(a: Visit, b: Visit, step_s: float, distance_m: float) -> tuple[float, float]:
    """The seconds ``a`` and ``b`` overlap and the share of them they spent within
    ``distance_m`` of each other (positions interpolated every ``step_s``)."""
    lo, hi = max(a.start_t, b.start_t), min(a.end_t, b.end_t)
    if hi <= lo:
        return 0.0, 0.0
    t = np.arange(lo, hi + 1e-9, step_s)
    gap = np.column_stack([np.interp(t, a.t, a.xy[:, i]) - np.interp(t, b.t, b.xy[:, i])
                           for i in (0, 1)])
    return hi - lo, float(np.mean(np.hypot(gap[:, 0], gap[:, 1]) <= distance_m))


def _appeared_beside(first: Visit, later: Visit, distance_m: float) -> bool:
    """Whether ``later`` started while ``first`` was there, within ``distance_m`` of it."""
    if not first.start_t <= later.start_t <= first.end_t:
        return False
    at = [np.interp(later.start_t, first.t, first.xy[:, i]) for i in (0, 1)]
    return float(np.hypot(at[0] - later.xy[0, 0], at[1] - later.xy[0, 1])) <= distance_m


def together(a: Visit, b: Visit, config: VisitConfig) -> bool:
    """Whether two visits came in and walked together (rules 1-3 of the module)."""
    first, later = (a, b) if a.start_t <= b.start_t else (b, a)
    if (later.start_t - first.start_t > config.group_entry_window_s
            and not _appeared_beside(first, later, config.group_distance_m)):
        return False
    overlap, share = together_fraction(a, b, config.group_step_s, config.group_distance_m)
    return overlap >= config.group_min_overlap_s and share >= config.group_together_fraction


def find_groups(visits: Sequence[Visit], config: VisitConfig) -> list[int]:
    """The group of each visit, as a label: visits with the same label are one group.

    Only pairs that overlap in time are compared (a sweep over start times).

    Args:
        visits: visits of one run (one camera, or the fused store-wide tracks).
        config: the site's visit thresholds (``group_*``).

    Returns:
        ``labels[i]`` for ``visits[i]``, numbered from 0 by first appearance.
    """
    n = len(visits)
    if n == 0:
        return []
    linked = DisjointSet(n)
    order = sorted(range(n), key=lambda i: visits[i].start_t)
    for pos, i in enumerate(order):
        for j in order[pos + 1:]:
            if visits[j].start_t > visits[i].end_t:
                break
            if together(visits[i], visits[j], config):
                linked.join(j, i)
    return linked.labels()


def group_pairs(labels: Sequence[int], keys: Sequence[int | None]) -> set[tuple[int, int]]:
    """Pairs of distinct ``keys`` (people) put in one group (``None`` keys are skipped):
    what precision and recall of group membership count."""
    members: dict[int, set[int]] = {}
    for label, key in zip(labels, keys, strict=True):
        if key is not None:
            members.setdefault(label, set()).add(key)
    return {(p, q) for people in members.values() for p in people for q in people if p < q}


def pair_scores(truth: set[tuple[int, int]], found: set[tuple[int, int]]) -> dict[str, float]:
    """Precision and recall of found pairs against true ones (1.0 when there are none)."""
    hits = len(truth & found)
    return {
        "true_pairs": len(truth),
        "found_pairs": len(found),
        "matched_pairs": hits,
        "precision": hits / len(found) if found else 1.0,
        "recall": hits / len(truth) if truth else 1.0,
    }
