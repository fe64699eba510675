"""Features of a visit: named numbers about its path, stops, zones and lines.

The names form the vocabulary that segment specs and trained classifiers refer to;
:data:`BASE_FEATURES` documents each one. Zone dwell is also summed per zone kind
(``dwell_kind_<kind>_s``) and per category tag (``dwell_tag_<tag>_s`` and
``share_tag_<tag>``, the fraction of the visit spent there). Zones may overlap (a promo
table inside an aisle), so a kind's or tag's dwell is the time spent in at least one of
its zones, the union of their stays, not the sum: a share never exceeds 1, and a tag
written twice on a zone counts once.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import get_args

import numpy as np

from edge.config.floor import TAG_PATTERN, FloorConfig, ZoneKind
from edge.config.visits import VisitConfig
from edge.visits.geometry import LineCounter, ZoneIndex
from edge.visits.presence import zone_stays
from edge.visits.queue import queue_waits
from edge.visits.records import LineCrossing, Visit, VisitFeatures, ZoneStay

ZONE_KINDS: tuple[str, ...] = get_args(ZoneKind)
# Zones people pass through on the way: they count for dwell, not as places visited.
TRANSIT_KINDS = frozenset({"entrance", "passage"})

BASE_FEATURES: dict[str, str] = {
    "duration_s": "Seconds from first to last sighting.",
    "path_length_m": "Metres walked (smoothed path; steps faster than glitch_speed_mps left out).",
    "mean_speed_mps": "Path length / duration.",
    "max_speed_mps": "Fastest speed, measured over the speed window.",
    "stops": "Number of stops: slower than stop_speed_mps for at least stop_min_s.",
    "stop_time_s": "Total seconds stopped.",
    "mean_stop_s": "Mean stop length (0 without stops).",
    "max_stop_s": "Longest stop (0 without stops).",
    "time_to_first_stop_s": "Seconds from arrival to the first stop (the duration if none).",
    "product_stops": "Stops made inside product zones.",
    "zone_entries": "Stays in destination zones (not entrance/passage), counting re-entries.",
    "distinct_zones": "Different destination zones visited.",
    "revisits": "Re-entries into a destination zone already visited.",
    "back_and_forth": "Switches A -> B -> A between neighbouring destination zones.",
    "directness": "Displacement from first to last position / path length.",
    "leg_directness": "Displacement / path length of the walks between stops, path-weighted.",
    "checkout_visited": "1 if the visit had a stay in a checkout zone, else 0.",
    "product_dwell_share": "Fraction of the visit spent in product zones.",
    "crossings_in": "Counting lines crossed towards the inside.",
    "crossings_out": "Counting lines crossed towards the outside.",
}

_TAG = TAG_PATTERN  # the site config's own rule for a tag
_FAMILIES = (
    re.compile(r"dwell_kind_(?P<kind>[a-z]+)_s"),
    re.compile(rf"dwell_tag_(?P<tag>{_TAG})_s"),
    re.compile(rf"share_tag_(?P<tag>{_TAG})"),
)


def kind_feature(kind: str) -> str:
    return f"dwell_kind_{kind}_s"


def tag_features(tag: str) -> tuple[str, str]:
    return f"dwell_tag_{tag}_s", f"share_tag_{tag}"


def feature_names(tags: Iterable[str] = ()) -> list[str]:
    """All feature names of a site whose zones carry ``tags``, in a fixed order."""
    names = list(BASE_FEATURES) + [kind_feature(kind) for kind in ZONE_KINDS]
    for tag in sorted(set(tags)):
        names.extend(tag_features(tag))
    return names


def unknown_feature_reason(name: str, tags: Iterable[str]) -> str | None:
    """Why ``name`` is not a feature when the known category tags are ``tags``;
    ``None`` if it is one."""
    if name in BASE_FEATURES:
        return None
    for family in _FAMILIES:
        match = family.fullmatch(name)
        if match is None:
            continue
        groups = match.groupdict()
        if "kind" in groups and groups["kind"] not in ZONE_KINDS:
            return f"no zone kind {groups['kind']!r} (kinds: {', '.join(ZONE_KINDS)})"
        if "tag" in groups and groups["tag"] not in set(tags):
            return f"tag {groups['tag']!r} is not in the spec's tags ({', '.join(sorted(tags))})"
        return None
    return "not a feature name (see docs/visits.md for the list)"


def union_seconds(stays: list[ZoneStay]) -> float:
    """Seconds covered by at least one of ``stays`` (ordered by entry time).

    Stays that do not overlap add their own lengths in order, exactly the sum they
    were before zones could overlap (features of such layouts are unchanged to the
    bit); overlapping ones (zones inside zones, or a zone's stay bridged by hysteresis
    across a short visit to another) count their common time once.
    """
    total = 0.0
    start = end = 0.0
    open_ = False
    for stay in stays:
        if open_ and stay.enter_t < end:
            end = max(end, stay.leave_t)
            continue
        if open_:
            total += end - start
        start, end, open_ = stay.enter_t, stay.leave_t, True
    if open_:
        total += end - start
    return total


class FeatureExtractor:
    """Measures visits against one site's zones and lines.

    Args:
        floor: the site's floor plan (zones, lines).
        config: visit thresholds (hysteresis, stop speed...).
    """

    def __init__(self, floor: FloorConfig, config: VisitConfig) -> None:
        self.config = config
        self.zones = ZoneIndex(floor.zones, config.neighbour_distance_m)
        self.lines = LineCounter(
            floor.lines, config.line_margin_m, config.line_settle_s, config.line_smoothing_s
        )
        self.tags = sorted({tag for zone in floor.zones for tag in zone.tags})
        self.names = feature_names(self.tags)
        kinds = self.zones.kinds
        self._product = np.asarray([k == "product" for k in kinds], dtype=bool)
        # feature -> the zone columns whose stays it covers (sets: a repeated tag counts once)
        groups: dict[str, set[int]] = {}
        for column, kind in enumerate(kinds):
            groups.setdefault(kind_feature(kind), set()).add(column)
            for tag in self.zones.tags[column]:
                groups.setdefault(tag_features(tag)[0], set()).add(column)
        self._dwell_groups = [(name, frozenset(columns)) for name, columns in groups.items()]
        self._column = {zone_id: i for i, zone_id in enumerate(self.zones.ids)}
        self._checkout = {z for z, k in zip(self.zones.ids, kinds, strict=True) if k == "checkout"}
        self._destination = [k not in TRANSIT_KINDS for k in kinds]
        self._kinds = dict(zip(self.zones.ids, kinds, strict=True))

    def crossings(self, visit: Visit) -> list[LineCrossing]:
        """Counting-line crossings of a visit (or of a fragment too short to be one)."""
        return self.lines.crossings(visit.t, visit.xy)

    def measure(self, visit: Visit, crossings: list[LineCrossing] | None = None) -> VisitFeatures:
        """All features of ``visit``, its zone stays and its line crossings."""
        cfg = self.config
        t, xy = visit.t, visit.xy
        duration = float(t[-1] - t[0])
        walked = self._walked(t, xy)
        step = np.hypot(*np.diff(walked, axis=0).T) if len(t) > 1 else np.zeros(0)
        cumulative = np.concatenate(([0.0], np.cumsum(step)))
        path = float(cumulative[-1])
        speed = self._speeds(t, walked)
        stops = self._stops(t, speed)
        inside = self.zones.contains(xy)
        stays = zone_stays(
            t, inside, self.zones.ids,
            enter_after_s=cfg.zone_enter_after_s, leave_after_s=cfg.zone_leave_after_s,
            change_t=self.zones.change_times(t, xy, inside),
        )
        if crossings is None:
            crossings = self.crossings(visit)

        f = dict.fromkeys(self.names, 0.0)
        f["duration_s"] = duration
        f["path_length_m"] = path
        f["mean_speed_mps"] = path / duration if duration > 0 else 0.0
        f["max_speed_mps"] = float(speed.max()) if len(speed) else 0.0
        lengths = [float(t[b] - t[a]) for a, b in stops]
        f["stops"] = float(len(stops))
        f["stop_time_s"] = float(sum(lengths))
        f["mean_stop_s"] = f["stop_time_s"] / len(stops) if stops else 0.0
        f["max_stop_s"] = max(lengths, default=0.0)
        f["time_to_first_stop_s"] = float(t[stops[0][0]] - t[0]) if stops else duration
        if self._product.any():
            f["product_stops"] = float(
                np.count_nonzero(inside[self._product][:, [(a + b) // 2 for a, b in stops]]
                                 .any(axis=0)) if stops else 0
            )

        sequence = [
            column for column in (self._column[s.zone_id] for s in stays)
            if self._destination[column]
        ]
        stay_columns = [self._column[stay.zone_id] for stay in stays]
        for name, columns in self._dwell_groups:
            f[name] = union_seconds(
                [stay for stay, column in zip(stays, stay_columns, strict=True)
                 if column in columns])
        for tag in self.tags:
            f[f"share_tag_{tag}"] = f[f"dwell_tag_{tag}_s"] / duration if duration > 0 else 0.0
        f["zone_entries"] = float(len(sequence))
        f["distinct_zones"] = float(len(set(sequence)))
        f["revisits"] = f["zone_entries"] - f["distinct_zones"]
        f["back_and_forth"] = float(
            sum(
                1
                for a, b, c in zip(sequence, sequence[1:], sequence[2:], strict=False)
                if a == c and a != b and self.zones.are_neighbours(a, b)
            )
        )
        displacement = float(np.hypot(*(walked[-1] - walked[0])))
        f["directness"] = displacement / path if path > 1e-9 else 0.0
        f["leg_directness"] = self._leg_directness(walked, cumulative, stops, f["directness"])
        f["checkout_visited"] = float(any(s.zone_id in self._checkout for s in stays))
        f["product_dwell_share"] = (
            f[kind_feature("product")] / duration if duration > 0 else 0.0
        )
        f["crossings_in"] = float(sum(c.direction == "in" for c in crossings))
        f["crossings_out"] = float(sum(c.direction == "out" for c in crossings))
        return VisitFeatures(visit, f, tuple(stays), tuple(crossings),
                             queue_waits(stays, self._kinds))

    def _walked(self, t: np.ndarray, xy: np.ndarray) -> np.ndarray:
        """The path walked: ``xy`` without its glitches. Each step faster than
        ``glitch_speed_mps`` (a position jump no one walks) is taken out, and the positions
        after it move back by it, so it adds neither path nor speed. ``xy`` itself (the
        same array) when there is none, so visits without glitches measure as before."""
        if len(t) < 2:
            return xy
        moves = np.diff(xy, axis=0)
        glitch = np.hypot(*moves.T) > self.config.glitch_speed_mps * np.diff(t)
        if not glitch.any():
            return xy
        jumps = np.where(glitch[:, None], moves, 0.0)
        return xy - np.concatenate((np.zeros((1, 2)), np.cumsum(jumps, axis=0)))

    def _speeds(self, t: np.ndarray, xy: np.ndarray) -> np.ndarray:
        """Speed at each position, over a baseline of ``speed_window_s`` around it."""
        if len(t) < 2:
            return np.zeros(len(t))
        # Half the window in samples, at the visit's mean sampling rate: a lag instead of a
        # search per position (the exact time span is still the divisor below).
        n = len(t)
        lag = max(1, round(self.config.speed_window_s / 2.0 * (n - 1) / max(t[-1] - t[0], 1e-9)))
        index = np.arange(n)
        lo = np.maximum(index - lag, 0)
        hi = np.minimum(index + lag, n - 1)
        x, y = xy[:, 0].copy(), xy[:, 1].copy()  # contiguous: take() is fastest on these
        span = t.take(hi) - t.take(lo)
        moved = np.hypot(x.take(hi) - x.take(lo), y.take(hi) - y.take(lo))
        span[span <= 0] = np.inf  # a lone position has no speed
        return moved / span

    def _stops(self, t: np.ndarray, speed: np.ndarray) -> list[tuple[int, int]]:
        """``(first, last)`` indices of each run of slow positions lasting a stop."""
        slow = speed < self.config.stop_speed_mps
        if not slow.any():
            return []
        edges = np.diff(np.concatenate(([0], slow.astype(np.int8), [0])))
        firsts = np.flatnonzero(edges == 1)
        lasts = np.flatnonzero(edges == -1) - 1
        keep = (t[lasts] - t[firsts]) >= self.config.stop_min_s
        return list(zip(firsts[keep].tolist(), lasts[keep].tolist(), strict=True))

    @staticmethod
    def _leg_directness(
        xy: np.ndarray, cumulative: np.ndarray, stops: list[tuple[int, int]], fallback: float
    ) -> float:
        """Displacement / path length of the walks between stops (walks under 1 m,
        shuffling on the spot, are left out), path-weighted; ``fallback`` if none."""
        starts = np.array([0, *(last for _, last in stops)], dtype=np.intp)
        ends = np.array([*(first for first, _ in stops), len(xy) - 1], dtype=np.intp)
        walked = cumulative[ends] - cumulative[starts]
        keep = walked >= 1.0
        if not keep.any():
            return fallback
        moved = np.hypot(*(xy[ends[keep]] - xy[starts[keep]]).T)
        return float(moved.sum() / walked[keep].sum())
