"""Associates (staff) in the scenario store, beside its customers: labelled tracks to
measure the staff rule (``edge.visits.staff``) and what leaving associates out does to
footfall and dwell. See :mod:`edge.visits.scenarios` for the store and the customers."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from edge.visits.scenarios import (
    _SITE,
    FRONT_AISLE_Y,
    MAIN_AISLE_X,
    QUEUE_ZONE,
    _Store,
    _Walker,
    scenario_suite,
)

BACK_OFFICE_DOOR = (MAIN_AISLE_X, 21.0)   # in front of the staff door, on the floor side
COUNTER_GAP = (19.0, -1.7)                # where the counter opens onto the shop floor
STAFF_ROLES = ("restock", "restock-floor", "help", "till")


@dataclass(frozen=True, slots=True)
class StaffScenario:
    """One synthetic track labelled associate or customer.

    Attributes:
        track_id: its number in the suite.
        t: ``(n,)`` seconds. xy: ``(n, 2)`` noisy floor metres, with dropouts.
        staff: True for an associate's track.
        role: ``restock`` (from the back office, shelf to shelf for 20-60 min, back
            now and then), ``restock-floor`` (the same picked up on the floor, 16-40 min,
            never seen in a staff zone), ``help`` (from the back office or the counter to
            meet a shopper, walks them to a shelf, back to a staff zone), ``till``
            (behind the counter 10-60 min) or ``customer`` / ``helped`` (the shopper
            walked to a shelf by an associate).
    """

    track_id: int
    t: np.ndarray = field(repr=False)
    xy: np.ndarray = field(repr=False)
    staff: bool
    role: str


def _to_floor(walker: _Walker, store: _Store, start: str) -> float:
    """Walk from a staff zone onto the floor's aisle network; return the aisle's y."""
    if start == "back-office":
        walker.walk(BACK_OFFICE_DOOR, (MAIN_AISLE_X, 17.0))
        return 17.0
    walker.walk(COUNTER_GAP, (19.0, FRONT_AISLE_Y))
    return FRONT_AISLE_Y


def _to_staff_zone(walker: _Walker, store: _Store, aisle: float, zone: str,
                   rng: np.random.Generator) -> None:
    if zone == "back-office":
        walker.walk(*store.route(walker.here, aisle, (MAIN_AISLE_X, 17.0)), BACK_OFFICE_DOOR)
    else:
        walker.walk(*store.route(walker.here, aisle, (19.0, FRONT_AISLE_Y)), COUNTER_GAP)
    walker.walk(store.spot(zone, rng))


def _finish(walker: _Walker, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    return walker.sample(fps=float(rng.choice([5.0, 7.0, 10.0])),
                         noise_m=float(rng.uniform(0.05, 0.25)), dropouts=int(rng.integers(0, 6)))


def generate_staff_scenario(track_id: int, role: str, seed: int) -> list[StaffScenario]:
    """One associate's track (``role`` in :data:`STAFF_ROLES`); ``help`` also gives the
    helped shopper's track (a customer who walks beside the associate for a while)."""
    rng = np.random.default_rng(seed)
    store = _Store(_SITE)
    products = [z for z in store.rect if z not in (
        "entrance", "checkout", QUEUE_ZONE, "back-office", "behind-counter")]
    if role in ("restock", "restock-floor"):
        on_floor = role == "restock-floor"
        start = "back-office"
        if on_floor:
            zone = str(rng.choice(products))
            walker = _Walker(rng, store.spot(zone, rng))
            walker.walk(store.access(zone))
            aisle = store.access(zone)[1]
        else:
            walker = _Walker(rng, store.spot(start, rng))
            walker.stop(float(rng.uniform(10, 60)))
            aisle = _to_floor(walker, store, start)
        goal = float(rng.uniform(960, 2400) if on_floor else rng.uniform(1200, 3600))
        while walker.times[-1] < goal:
            zone = str(rng.choice(products))
            access = store.access(zone)
            walker.walk(*store.route(walker.here, aisle, access), store.spot(zone, rng))
            walker.stop(float(rng.uniform(15, 90)))
            walker.walk(access)
            aisle = access[1]
            if not on_floor and rng.random() < 0.1:   # fetch stock
                _to_staff_zone(walker, store, aisle, start, rng)
                walker.stop(float(rng.uniform(20, 120)))
                aisle = _to_floor(walker, store, start)
        if not on_floor:
            _to_staff_zone(walker, store, aisle, start, rng)
            walker.stop(float(rng.uniform(10, 30)))
        t, xy = _finish(walker, rng)
        return [StaffScenario(track_id, t, xy, True, role)]
    if role == "till":
        walker = _Walker(rng, store.spot("behind-counter", rng))
        end = float(rng.uniform(600, 3600))
        while walker.times[-1] < end:
            walker.stop(float(rng.uniform(30, 240)))
            walker.walk(store.spot("behind-counter", rng))
        t, xy = _finish(walker, rng)
        return [StaffScenario(track_id, t, xy, True, role)]
    if role != "help":
        raise ValueError(f"unknown staff role {role!r} (roles: {', '.join(STAFF_ROLES)})")
    start = str(rng.choice(["back-office", "behind-counter"]))
    meet = (MAIN_AISLE_X + float(rng.uniform(-1.0, 1.0)), FRONT_AISLE_Y)
    zone = str(rng.choice(products))
    access, spot = store.access(zone), store.spot(zone, rng)
    staff = _Walker(rng, store.spot(start, rng))
    staff.stop(float(rng.uniform(5, 60)))
    aisle = _to_floor(staff, store, start)
    staff.walk(*store.route(staff.here, aisle, meet))
    shopper = _Walker(rng, (MAIN_AISLE_X + rng.uniform(-1.5, 1.5), -1.5))
    shopper.walk(meet)
    side = np.array([0.6, 0.0])
    together = [*store.route(np.asarray(meet), FRONT_AISLE_Y, access), spot]
    staff.walk(*together)
    shopper.walk(*[tuple(np.asarray(p) + side) for p in together])
    talk = float(rng.uniform(30, 120))
    staff.stop(talk)
    shopper.stop(talk + float(rng.uniform(10, 60)))
    staff.walk(access)
    _to_staff_zone(staff, store, access[1], start, rng)
    staff.stop(float(rng.uniform(10, 60)))
    shopper.walk(access)
    aisle = access[1]
    if rng.random() < 0.5:
        shopper.walk(*store.route(shopper.here, aisle, store.access("checkout")),
                     store.spot("checkout", rng))
        shopper.stop(float(rng.uniform(20, 60)))
        shopper.walk(store.access("checkout"))
        aisle = FRONT_AISLE_Y
    shopper.walk(*store.route(shopper.here, aisle, (MAIN_AISLE_X, FRONT_AISLE_Y)))
    shopper.walk((MAIN_AISLE_X + rng.uniform(-1.5, 1.5), -1.5))
    t, xy = _finish(staff, rng)
    st, sxy = _finish(shopper, rng)
    return [StaffScenario(track_id, t, xy, True, role),
            StaffScenario(track_id + 1, st, sxy, False, "helped")]


def staff_scenarios(per_role: int = 10, seed: int = 0) -> Iterator[StaffScenario]:
    """``per_role`` associates of each role (every ``help`` with its helped shopper)."""
    track_id = 20_000
    for role in STAFF_ROLES:
        for _ in range(per_role):
            track_id += 2
            yield from generate_staff_scenario(track_id, role, seed * 1_000_003 + track_id)


def mixed_floor(per_role: int = 10, seed: int = 0) -> list[StaffScenario]:
    """The customer suite (:func:`scenario_suite`) plus :func:`staff_scenarios`: the
    customers and helped shoppers labelled customer, the associates staff."""
    customers = [StaffScenario(s.track_id, s.t, s.xy, False, "customer")
                 for s in scenario_suite(seed=seed)]
    return customers + list(staff_scenarios(per_role, seed))


def score_staff(analyzer, scenarios) -> dict[str, float]:
    """Staff precision and recall per visit, and customer footfall and dwell with the
    associates left out against the customers alone (and with them counted in).

    Args:
        analyzer: a :class:`edge.visits.analysis.VisitAnalyzer` of :func:`scenario_site`.
        scenarios: :class:`StaffScenario` tracks (e.g. :func:`mixed_floor`).

    Returns:
        ``tp, fp, fn, tn, precision, recall``; ``footfall_truth`` (customers' visits
        measured alone), ``footfall`` (visits left after exclusion), ``footfall_error``
        and ``dwell_error`` (relative; dwell summed over customer zones), and the
        same two errors without exclusion (``*_error_unfiltered``); ``reasons``
        counts of the rule that fired, as ``reason_<name>``.
    """
    cells = dict.fromkeys(("tp", "fp", "fn", "tn"), 0)
    reasons: dict[str, int] = {}
    truth_visits = kept_visits = all_visits = 0
    truth_dwell = kept_dwell = all_dwell = 0.0
    for scenario in scenarios:
        outcome = analyzer.analyze_track("scenario", None, scenario.track_id, scenario.t,
                                         scenario.xy)
        for item in outcome.staff:
            reasons[item.reason] = reasons.get(item.reason, 0) + 1
        said = bool(outcome.staff)
        cells[("tp" if said else "fn") if scenario.staff
              else ("fp" if said else "tn")] += 1
        kept = sum(sum(v.measured.zone_dwell.values()) for v in outcome.visits)
        every = kept + sum(sum(s.measured.zone_dwell.values()) for s in outcome.staff)
        kept_visits += len(outcome.visits)
        kept_dwell += kept
        all_visits += len(outcome.visits) + len(outcome.staff)
        all_dwell += every
        if not scenario.staff:
            truth_visits += len(outcome.visits) + len(outcome.staff)
            truth_dwell += every
    tp, fp, fn = cells["tp"], cells["fp"], cells["fn"]
    result: dict[str, float] = dict(cells)
    result.update(
        precision=tp / (tp + fp) if tp + fp else float("nan"),
        recall=tp / (tp + fn) if tp + fn else float("nan"),
        footfall_truth=truth_visits,
        footfall=kept_visits,
        footfall_error=abs(kept_visits - truth_visits) / truth_visits,
        dwell_error=abs(kept_dwell - truth_dwell) / truth_dwell,
        footfall_error_unfiltered=abs(all_visits - truth_visits) / truth_visits,
        dwell_error_unfiltered=abs(all_dwell - truth_dwell) / truth_dwell,
    )
    result.update({f"reason_{name}": count for name, count in sorted(reasons.items())})
    return result
