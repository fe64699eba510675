"""Shopping groups in the scenario store: couples and families who walk together, and
strangers who come in at the same moment or pass close, on one clock. Labelled tracks
to measure the group rule (:mod:`edge.visits.groups`); see :mod:`edge.visits.scenarios`
for the store and the shoppers' behaviour.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from edge.visits.analysis import VisitAnalyzer
from edge.visits.groups import find_groups, group_pairs, pair_scores
from edge.visits.scenarios import CATEGORIES, generate_scenario

UNIT_KINDS = ("couple", "family", "solo", "strangers")
FACTORS = {"purchase": ("buy", "showroom"), "style": ("mission", "wander"),
           "decision": ("decisive", "indecisive"), "price": ("bargain", "premium", "none"),
           "category": (*CATEGORIES, "none")}


@dataclass(frozen=True, slots=True)
class GroupScenario:
    """One synthetic shopper's track, on the floor's shared clock.

    Attributes:
        track_id: its number in the suite.
        t: ``(n,)`` seconds since the floor opened. xy: ``(n, 2)`` noisy floor metres.
        group: the true group (buying unit) number; a solo shopper's is their own.
        person: the shopper; a quarter of them are lost by the tracker for 1-3 s once
            and come back as a new track (a new ``track_id``, the same ``person``).
        kind: the unit it came with: ``couple``, ``family`` (3-4 people who may split up
            for a while), ``solo`` or ``strangers`` (two unrelated shoppers through the
            door within 4 s of each other, who share the entrance aisle; half of them
            are after the same things and stop at the same shelves, each on their own).
    """

    track_id: int
    t: np.ndarray = field(repr=False)
    xy: np.ndarray = field(repr=False)
    group: int
    kind: str
    person: int


def _factors(rng: np.random.Generator) -> dict[str, str]:
    return {name: str(rng.choice(values)) for name, values in FACTORS.items()}


def _follow(t: np.ndarray, xy: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray,
                                                                              np.ndarray]:
    """A companion of the shopper ``(t, xy)``: a little behind and beside, with their own
    noise and dropouts; now and then off on their own for 10-35% of the visit."""
    lag = float(rng.uniform(0.2, 1.2))
    side = rng.normal(0.0, 1.0, 2)
    side *= float(rng.uniform(0.4, 0.9)) / max(float(np.hypot(*side)), 1e-6)
    fps = float(rng.choice([5.0, 7.0, 10.0]))
    own_t = np.arange(t[0] + lag, t[-1] + lag, 1.0 / fps)
    path = np.column_stack([np.interp(own_t - lag, t, xy[:, i]) for i in (0, 1)]) + side
    if rng.random() < 0.4:  # off to another shelf for a while, then back
        span = own_t[-1] - own_t[0]
        away = float(rng.uniform(0.10, 0.35)) * span
        start = own_t[0] + float(rng.uniform(0.2, 0.8)) * (span - away)
        ramp = np.clip(np.minimum(own_t - start, start + away - own_t) / 3.0, 0.0, 1.0)
        direction = rng.normal(0.0, 1.0, 2)
        direction *= float(rng.uniform(4.0, 9.0)) / max(float(np.hypot(*direction)), 1e-6)
        path += ramp[:, None] * direction
    keep = np.ones(len(own_t), dtype=bool)
    for gone in rng.uniform(own_t[0], own_t[-1], int(rng.integers(0, 6))):
        keep &= (own_t < gone) | (own_t > gone + rng.uniform(0.3, 2.0))
    keep[[0, -1]] = True
    noise = float(rng.uniform(0.05, 0.25))
    return own_t[keep], path[keep] + rng.normal(0.0, noise, (int(keep.sum()), 2))


def group_floor(units: int = 160, seed: int = 0) -> list[GroupScenario]:
    """A day of ``units`` arrivals (a unit every 5-60 s), their kinds in turn from
    :data:`UNIT_KINDS`: couples, families of 3-4, solo shoppers and pairs of strangers."""
    rng = np.random.default_rng(seed)
    tracks: list[GroupScenario] = []
    arrival = 0.0
    for unit in range(units):
        kind = UNIT_KINDS[unit % len(UNIT_KINDS)]
        arrival += float(rng.uniform(5.0, 60.0))
        factors = _factors(rng)
        lead = generate_scenario(0, factors, int(rng.integers(2**31)))
        shoppers = [(lead.t, lead.xy, unit)]
        if kind in ("couple", "family"):
            size = 2 if kind == "couple" else int(rng.integers(3, 5))
            shoppers += [(*_follow(lead.t, lead.xy, rng), unit) for _ in range(size - 1)]
        elif kind == "strangers":
            # half of them after the same things: the same aisles and shelves for a while
            same = rng.random() < 0.5
            other = generate_scenario(0, factors if same else _factors(rng),
                                      int(rng.integers(2**31)))
            shoppers.append((other.t + float(rng.uniform(0.0, 4.0)), other.xy, units + unit))
        for t, xy, group in shoppers:
            person = len(tracks) + 1
            for piece in _pieces(t, rng):
                tracks.append(GroupScenario(len(tracks) + 1, t[piece] + arrival, xy[piece],
                                            group, kind, person))
    return tracks


def _pieces(t: np.ndarray, rng: np.random.Generator) -> list[slice]:
    """One piece, or (a quarter of the time) two: lost for 1-3 s somewhere in the middle
    (hidden behind a companion or a passer-by) and picked up again as a new track."""
    if rng.random() >= 0.25:
        return [slice(None)]
    lost = t[0] + float(rng.uniform(0.2, 0.8)) * (t[-1] - t[0])
    gone = lost + float(rng.uniform(1.0, 3.0))
    first, second = int(np.searchsorted(t, lost)), int(np.searchsorted(t, gone))
    if first < 2 or second > len(t) - 2:
        return [slice(None)]
    return [slice(0, first), slice(second, None)]


def score_groups(analyzer: VisitAnalyzer, scenarios: Sequence[GroupScenario]) -> dict[str, float]:
    """Precision and recall of group membership (pairs of people) by the site's rule:
    a pair is found when tracks of the two people are in one measured group.

    Args:
        analyzer: a :class:`VisitAnalyzer` of :func:`edge.visits.scenarios.scenario_site`.
        scenarios: labelled tracks on one clock (e.g. :func:`group_floor`).

    Returns:
        :func:`edge.visits.groups.pair_scores` plus ``visits``, ``groups`` (measured
        groups of visits), ``true_groups``, ``tracks`` and ``people``.
    """
    pieces = [piece for s in scenarios
              for piece in analyzer.pieces("scenario", None, s.track_id, s.t, s.xy)]
    visits = [result.measured.visit for result in analyzer.analyze_pieces(pieces).visits]
    person = {s.track_id: s.person for s in scenarios}
    truth_labels = [s.group for s in scenarios]
    truth = group_pairs(truth_labels, [s.person for s in scenarios])
    labels = find_groups(visits, analyzer.config)
    found = group_pairs(labels, [person[v.track_id] for v in visits])
    return {**pair_scores(truth, found), "visits": len(visits), "groups": len(set(labels)),
            "true_groups": len(set(truth_labels)), "tracks": len(scenarios),
            "people": len(set(person.values()))}
