"""A labelled suite of synthetic floor trajectories, one behaviour mix per visit.

Each visit is generated from known factors (buys or showrooms, on a mission or
wandering, decisive or indecisive, bargain/premium/neither, a favourite category
or none) and walks a small test store along its aisles, stopping in zones. The
factors are the labels, so the suite measures whether traits recover behaviour,
and it is the default training set of ``scripts/train_traits.py``.

The test store (:data:`SCENARIO_SITE_YAML`), 30 x 24 m: an entrance at the front
with a counting line, a checkout to its right, and three rows of 4 x 4 m product
zones either side of a main aisle. Zones side by side (1 m apart) are neighbours.
A queue zone right of the checkout is where :func:`queue_scenarios` wait (the trait
suite never enters it). Two ``staff`` zones, a back office behind the main aisle (with
a ``staff`` door line in front of it) and the space behind the counter, are where
:mod:`edge.visits.staff_scenarios` (associates) come from; customers never enter
them.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from edge.config import SiteConfig, parse_site

SCENARIO_SITE_YAML = """\
site: {id: scenario-store, name: Scenario test store}
floor:
  bounds: [[-2, -3], [31, 25]]
  zones:
    - {id: entrance, kind: entrance, polygon: [[12, 0], [18, 0], [18, 3], [12, 3]]}
    - {id: checkout, kind: checkout, polygon: [[20, 0], [28, 0], [28, 3.5], [20, 3.5]]}
    - {id: till-queue, kind: queue, polygon: [[28.5, 0], [30.5, 0], [30.5, 3.5], [28.5, 3.5]]}
    - {id: promo, kind: product, tags: [promo], polygon: [[1, 6], [5, 6], [5, 10], [1, 10]]}
    - {id: clearance, kind: product, tags: [clearance],
           polygon: [[6, 6], [10, 6], [10, 10], [6, 10]]}
    - {id: kids, kind: product, tags: [kids], polygon: [[1, 12], [5, 12], [5, 16], [1, 16]]}
    - {id: general-1, kind: product, polygon: [[6, 12], [10, 12], [10, 16], [6, 16]]}
    - {id: formal-wear, kind: product, tags: [formal-wear],
           polygon: [[1, 18], [5, 18], [5, 22], [1, 22]]}
    - {id: general-2, kind: product, polygon: [[6, 18], [10, 18], [10, 22], [6, 22]]}
    - {id: ready-to-eat, kind: product, tags: [ready-to-eat],
           polygon: [[20, 6], [24, 6], [24, 10], [20, 10]]}
    - {id: general-3, kind: product, polygon: [[25, 6], [29, 6], [29, 10], [25, 10]]}
    - {id: fitness, kind: product, tags: [fitness],
           polygon: [[20, 12], [24, 12], [24, 16], [20, 16]]}
    - {id: general-4, kind: product, polygon: [[25, 12], [29, 12], [29, 16], [25, 16]]}
    - {id: premium, kind: product, tags: [premium],
           polygon: [[20, 18], [24, 18], [24, 22], [20, 22]]}
    - {id: general-5, kind: product, polygon: [[25, 18], [29, 18], [29, 22], [25, 22]]}
    - {id: back-office, kind: staff, polygon: [[11, 22.5], [19, 22.5], [19, 24.8], [11, 24.8]]}
    - {id: behind-counter, kind: staff,
           polygon: [[20, -2.8], [28, -2.8], [28, -0.6], [20, -0.6]]}
  lines:
    - {id: door, kind: entrance, start: [12, 2], end: [18, 2], inside: left}
    - {id: staff-door, kind: staff, start: [13, 21.5], end: [17, 21.5], inside: right}
"""

MAIN_AISLE_X = 15.0
FRONT_AISLE_Y = 4.75
CATEGORIES = ("kids", "fitness", "ready-to-eat", "formal-wear")
PRICE_ZONES = {"bargain": ("promo", "clearance"), "premium": ("premium",)}
# Each target's side-by-side neighbour, for back-and-forth between the two.
PARTNER = {
    "promo": "clearance", "clearance": "promo", "kids": "general-1",
    "formal-wear": "general-2", "ready-to-eat": "general-3", "fitness": "general-4",
    "premium": "general-5", "general-1": "kids", "general-2": "formal-wear",
    "general-3": "ready-to-eat", "general-4": "fitness", "general-5": "premium",
}
GENERAL = ("general-1", "general-2", "general-3", "general-4", "general-5")


def scenario_site() -> SiteConfig:
    """The test store as a site config."""
    return parse_site(SCENARIO_SITE_YAML, source="scenario-site")


@dataclass(frozen=True, slots=True)
class Scenario:
    """One synthetic visit and the behaviour it was generated from.

    Attributes:
        track_id: its number in the suite.
        t: ``(n,)`` seconds. xy: ``(n, 2)`` floor metres, with position noise.
        factors: the behaviour drawn (purchase, style, decision, price, category).
        labels: trait name -> 1 (the named pole) or 0 (the opposite); traits the
            behaviour does not define are absent (e.g. bargain_hunter when the
            visit shopped neither promotions nor premium).
    """

    track_id: int
    t: np.ndarray = field(repr=False)
    xy: np.ndarray = field(repr=False)
    factors: dict[str, str]
    labels: dict[str, int]


def _labels(factors: dict[str, str]) -> dict[str, int]:
    labels = {
        "showroomer": int(factors["purchase"] == "showroom"),
        "wanderer": int(factors["style"] == "wander"),
        "indecisive": int(factors["decision"] == "indecisive"),
    }
    if factors["price"] != "none":
        labels["bargain_hunter"] = int(factors["price"] == "bargain")
    for category in CATEGORIES:
        labels[f"affinity_{category}"] = int(factors["category"] == category)
    return labels


class _Walker:
    """Builds a timeline of positions: walks along polylines, stops with sway."""

    def __init__(self, rng: np.random.Generator, start: tuple[float, float]) -> None:
        self.rng = rng
        self.speed = float(rng.uniform(0.9, 1.4))
        self.times = [0.0]
        self.points = [np.asarray(start, dtype=np.float64)]

    @property
    def here(self) -> np.ndarray:
        return self.points[-1]

    def walk(self, *targets: tuple[float, float]) -> None:
        for target in targets:
            goal = np.asarray(target, dtype=np.float64)
            distance = float(np.hypot(*(goal - self.here)))
            if distance < 1e-6:
                continue
            speed = self.speed * float(self.rng.uniform(0.85, 1.15))
            self.times.append(self.times[-1] + distance / speed)
            self.points.append(goal)

    def stop(self, seconds: float) -> None:
        """Stand and browse: small slow moves around the spot for ``seconds``."""
        centre = self.here.copy()
        elapsed = 0.0
        while elapsed < seconds:
            step = min(float(self.rng.uniform(1.5, 4.0)), seconds - elapsed)
            elapsed += step
            self.times.append(self.times[-1] + step)
            self.points.append(centre + self.rng.normal(0.0, 0.12, 2))

    def sample(self, fps: float, noise_m: float, dropouts: int) -> tuple[np.ndarray, np.ndarray]:
        """Positions at ``fps`` with Gaussian noise, missing ``dropouts`` short spells
        (as a tracker loses a person behind a shelf for a moment)."""
        knots = np.asarray(self.times)
        path = np.asarray(self.points)
        t = np.arange(0.0, knots[-1], 1.0 / fps)
        keep = np.ones(len(t), dtype=bool)
        for start in self.rng.uniform(0.0, knots[-1], dropouts):
            keep &= (t < start) | (t > start + self.rng.uniform(0.3, 2.0))
        keep[[0, -1]] = True
        t = t[keep]
        xy = np.column_stack([np.interp(t, knots, path[:, 0]), np.interp(t, knots, path[:, 1])])
        return t, xy + self.rng.normal(0.0, noise_m, xy.shape)


class _Store:
    """Zone rectangles and aisle routing of the test store."""

    def __init__(self, site: SiteConfig) -> None:
        self.rect = {
            z.id: (*np.min(z.polygon, axis=0), *np.max(z.polygon, axis=0)) for z in site.floor.zones
        }

    def aisle_of(self, zone: str) -> float:
        y0 = self.rect[zone][1]
        return FRONT_AISLE_Y if zone == "checkout" else (11.0 if y0 < 17 else 17.0)

    def access(self, zone: str) -> tuple[float, float]:
        x0, _, x1, _ = self.rect[zone]
        return ((x0 + x1) / 2, self.aisle_of(zone))

    def spot(self, zone: str, rng: np.random.Generator) -> tuple[float, float]:
        x0, y0, x1, y1 = self.rect[zone]
        return (float(rng.uniform(x0 + 0.8, x1 - 0.8)), float(rng.uniform(y0 + 0.8, y1 - 0.8)))

    def route(self, here: np.ndarray, aisle_y: float, goal: tuple[float, float]) -> list:
        """Aisle waypoints from the aisle point ``here`` (on ``aisle_y``) to ``goal``."""
        if abs(goal[1] - aisle_y) < 1e-6:
            return [goal]
        return [(MAIN_AISLE_X, aisle_y), (MAIN_AISLE_X, goal[1]), goal]


def _plan(factors: dict[str, str], rng: np.random.Generator) -> list[tuple[str, float]]:
    """The zones to stop in, in order, with stop seconds."""
    targets: list[str] = []
    if factors["category"] != "none":
        targets.append(factors["category"])
    if factors["price"] != "none":
        targets.append(str(rng.choice(PRICE_ZONES[factors["price"]])))
    if not targets:
        targets.append(str(rng.choice(GENERAL)))
    main = set(targets)
    if factors["style"] == "wander":
        others = [z for z in GENERAL if z not in main]
        size = min(len(others), int(rng.integers(4, 6)))
        extra = rng.choice(others, size=size, replace=False).tolist()
        targets += extra
        rng.shuffle(targets)
    elif len(targets) == 1 and rng.random() < 0.5:
        targets.append(str(rng.choice([z for z in GENERAL if z not in main])))
    if factors["style"] == "wander" and rng.random() < 0.3:
        # wanderers come back to a place now and then, without comparing back and forth
        targets.append(targets[0])
    plan = [
        (zone, float(rng.uniform(8, 40)) if zone in main else float(rng.uniform(2, 12)))
        for zone in targets
    ]
    if factors["decision"] == "indecisive":
        anchor = next(z for z, _ in plan if z in main)
        at = next(i for i, (z, _) in enumerate(plan) if z == anchor)
        if anchor in GENERAL:
            # a general zone's neighbour is a category: compare promotions instead, which
            # leaves the (undefined) price label alone and the category labels true
            anchor = "promo"
            plan.insert(at + 1, (anchor, float(rng.uniform(10, 25))))
            at += 1
        partner = PARTNER[anchor]
        switches = int(rng.integers(2, 4))
        comparing = [
            (partner if k % 2 == 0 else anchor, float(rng.uniform(10, 25)))
            for k in range(switches)
        ]
        plan[at + 1 : at + 1] = comparing
    return plan


def generate_scenario(track_id: int, factors: dict[str, str], seed: int) -> Scenario:
    """One visit with the given behaviour factors, reproducible from ``seed``."""
    rng = np.random.default_rng(seed)
    store = _Store(_SITE)
    walker = _Walker(rng, (MAIN_AISLE_X + rng.uniform(-1.5, 1.5), -1.5))
    walker.walk((MAIN_AISLE_X + rng.uniform(-0.5, 0.5), FRONT_AISLE_Y))
    aisle = FRONT_AISLE_Y
    wander = factors["style"] == "wander"
    for zone, seconds in _plan(factors, rng):
        access = store.access(zone)
        legs = store.route(walker.here, aisle, access)
        if wander:  # meander: detours up and down the main aisle and along others
            detour = (MAIN_AISLE_X + rng.uniform(-3, 3), float(rng.choice([FRONT_AISLE_Y, 11, 17])))
            legs = [(MAIN_AISLE_X, aisle), (MAIN_AISLE_X, detour[1]), detour,
                    (MAIN_AISLE_X, detour[1]), *store.route(np.asarray(detour), detour[1], access)]
        walker.walk(*legs)
        walker.walk(store.spot(zone, rng))
        walker.stop(seconds)
        walker.walk(access)
        aisle = access[1]
    if factors["purchase"] == "buy":
        access = store.access("checkout")
        walker.walk(*store.route(walker.here, aisle, access))
        walker.walk(store.spot("checkout", rng))
        walker.stop(float(rng.uniform(20, 60)))
        walker.walk(access)
        aisle = access[1]
    walker.walk(*store.route(walker.here, aisle, (MAIN_AISLE_X, FRONT_AISLE_Y)))
    walker.walk((MAIN_AISLE_X + rng.uniform(-1.5, 1.5), -1.5))
    t, xy = walker.sample(fps=float(rng.choice([5.0, 7.0, 10.0])),
                          noise_m=float(rng.uniform(0.05, 0.25)), dropouts=int(rng.integers(0, 6)))
    return Scenario(track_id, t, xy, dict(factors), _labels(factors))


def scenario_suite(repeats: int = 2, seed: int = 0) -> Iterator[Scenario]:
    """Every combination of the behaviour factors, ``repeats`` times (240 visits at 2)."""
    grid = itertools.product(
        ("buy", "showroom"), ("mission", "wander"), ("decisive", "indecisive"),
        ("bargain", "premium", "none"), (*CATEGORIES, "none"),
    )
    track_id = 0
    for combination in grid:
        factors = dict(zip(("purchase", "style", "decision", "price", "category"), combination,
                           strict=True))
        for _ in range(repeats):
            track_id += 1
            yield generate_scenario(track_id, factors, seed * 1_000_003 + track_id)


_SITE = scenario_site()


def score_scenarios(analyzer, scenarios) -> dict[str, dict[str, float]]:
    """Confusion of each labelled trait at ``p >= 0.5`` over the scenarios.

    Args:
        analyzer: a :class:`edge.visits.analysis.VisitAnalyzer` of :func:`scenario_site`.
        scenarios: the labelled visits.

    Returns:
        trait -> ``{"tp", "fp", "fn", "tn", "n", "agreement"}``.
    """
    table: dict[str, dict[str, float]] = {}
    for scenario in scenarios:
        outcome = analyzer.analyze_track("scenario", None, scenario.track_id, scenario.t,
                                         scenario.xy)
        if len(outcome.visits) != 1:
            raise ValueError(f"scenario {scenario.track_id} gave {len(outcome.visits)} visits")
        traits = outcome.visits[0].scores.traits
        for trait, label in scenario.labels.items():
            p = traits[trait]
            said = p is not None and p >= 0.5     # unknown (too short) is not said
            cell = ("tp" if said else "fn") if label else ("fp" if said else "tn")
            row = table.setdefault(trait, dict.fromkeys(("tp", "fp", "fn", "tn"), 0))
            row[cell] += 1
    for row in table.values():
        row["n"] = row["tp"] + row["fp"] + row["fn"] + row["tn"]
        row["agreement"] = (row["tp"] + row["tn"]) / row["n"]
    return table


# --- checkout queue scenarios ------------------------------------------------------------

QUEUE_ZONE = "till-queue"
TRUTH_FPS = 100.0  # the noiseless path is sampled this finely to date the true wait


@dataclass(frozen=True, slots=True)
class QueueScenario:
    """One visit that queues for the tills, and its true wait.

    Attributes:
        track_id: its number in the suite.
        t: ``(n,)`` seconds. xy: ``(n, 2)`` noisy floor metres, with dropouts.
        wait_s: seconds from first stepping into the queue zone to first stepping into
            the checkout zone, on the noiseless path; None when the visit left the
            queue for the shelves (abandoned) and never reached a till.
    """

    track_id: int
    t: np.ndarray = field(repr=False)
    xy: np.ndarray = field(repr=False)
    wait_s: float | None


def _first_inside(t: np.ndarray, xy: np.ndarray, rect: tuple) -> float:
    x0, y0, x1, y1 = rect
    inside = (xy[:, 0] >= x0) & (xy[:, 0] <= x1) & (xy[:, 1] >= y0) & (xy[:, 1] <= y1)
    return float(t[np.argmax(inside)]) if inside.any() else float("nan")


def generate_queue_scenario(track_id: int, seed: int, *, abandon: bool = False) -> QueueScenario:
    """A shopper who browses one zone, joins the queue at its far end, shuffles forward
    for a drawn wait (20 s to 6 min), pays at the checkout and leaves; or, with
    ``abandon``, gives up half-way and goes back to the shelves and out."""
    rng = np.random.default_rng(seed)
    store = _Store(_SITE)
    walker = _Walker(rng, (MAIN_AISLE_X + rng.uniform(-1.5, 1.5), -1.5))
    walker.walk((MAIN_AISLE_X + rng.uniform(-0.5, 0.5), FRONT_AISLE_Y))
    zone = str(rng.choice(GENERAL))
    access = store.access(zone)
    walker.walk(*store.route(walker.here, FRONT_AISLE_Y, access))
    walker.walk(store.spot(zone, rng))
    walker.stop(float(rng.uniform(5, 30)))
    walker.walk(access, *store.route(np.asarray(access), access[1], (MAIN_AISLE_X, FRONT_AISLE_Y)))
    # The queue runs from the back (x ~ 30.2) to its head (x ~ 28.8), by the checkout.
    lane_y = float(rng.uniform(1.2, 2.3))
    walker.walk((29.5, FRONT_AISLE_Y), (30.2, lane_y))
    wait = float(rng.uniform(20, 360))
    steps = int(rng.integers(2, 6))
    xs = np.linspace(30.2, 28.8, steps + 1)[1:]
    for x in xs:
        walker.stop(wait / (steps + 1))
        walker.walk((float(x), lane_y + float(rng.normal(0, 0.1))))
    walker.stop(wait / (steps + 1))
    if abandon:
        walker.walk((29.5, FRONT_AISLE_Y))
        zone = str(rng.choice([z for z in GENERAL if z not in ("general-3", "general-4")]))
        access = store.access(zone)
        walker.walk(*store.route(walker.here, FRONT_AISLE_Y, access))
        walker.walk(store.spot(zone, rng))
        walker.stop(float(rng.uniform(5, 20)))
        walker.walk(access)
        aisle = access[1]
    else:
        walker.walk((float(rng.uniform(25.5, 27.2)), float(rng.uniform(1.0, 2.5))))
        walker.stop(float(rng.uniform(20, 60)))
        walker.walk((24.0, FRONT_AISLE_Y))
        aisle = FRONT_AISLE_Y
    walker.walk(*store.route(walker.here, aisle, (MAIN_AISLE_X, FRONT_AISLE_Y)))
    walker.walk((MAIN_AISLE_X + rng.uniform(-1.5, 1.5), -1.5))
    knots, path = np.asarray(walker.times), np.asarray(walker.points)
    dense_t = np.arange(0.0, knots[-1], 1.0 / TRUTH_FPS)
    dense = np.column_stack([np.interp(dense_t, knots, path[:, 0]),
                             np.interp(dense_t, knots, path[:, 1])])
    truth = None
    if not abandon:
        truth = (_first_inside(dense_t, dense, store.rect["checkout"])
                 - _first_inside(dense_t, dense, store.rect[QUEUE_ZONE]))
    t, xy = walker.sample(fps=float(rng.choice([5.0, 7.0, 10.0])),
                          noise_m=float(rng.uniform(0.05, 0.25)), dropouts=int(rng.integers(0, 6)))
    return QueueScenario(track_id, t, xy, truth)


def queue_scenarios(count: int = 48, seed: int = 0) -> Iterator[QueueScenario]:
    """``count`` queueing visits with known waits; every eighth abandons the queue."""
    for track_id in range(1, count + 1):
        yield generate_queue_scenario(10_000 + track_id, seed * 1_000_003 + 50_000 + track_id,
                                      abandon=track_id % 8 == 0)


def score_queue_scenarios(analyzer, scenarios) -> dict[str, float]:
    """Measured against true waits: median and p90 absolute error (seconds), and how many
    scenarios gave the wrong number of waits (one per queueing visit, none when abandoned).

    Args:
        analyzer: a :class:`edge.visits.analysis.VisitAnalyzer` of :func:`scenario_site`.
        scenarios: :class:`QueueScenario` visits.
    """
    errors: list[float] = []
    wrong = n = 0
    for scenario in scenarios:
        n += 1
        outcome = analyzer.analyze_track("scenario", None, scenario.track_id, scenario.t,
                                         scenario.xy)
        waits = [w for v in outcome.visits for w in v.measured.queue_waits]
        expected = 0 if scenario.wait_s is None else 1
        if len(waits) != expected:
            wrong += 1
            continue
        if scenario.wait_s is not None:
            errors.append(abs(waits[0].wait_s - scenario.wait_s))
    err = np.asarray(errors, dtype=float)
    return {
        "scenarios": n,
        "waits": len(errors),
        "wrong_count": wrong,
        "median_abs_error_s": float(np.median(err)) if len(err) else float("nan"),
        "p90_abs_error_s": float(np.percentile(err, 90)) if len(err) else float("nan"),
        "max_abs_error_s": float(err.max()) if len(err) else float("nan"),
    }

