"""Zone membership and counting-line crossings of floor trajectories, vectorised.

Membership is tested at the person's floor position (the feet). Axis-aligned
rectangles, the common case, take four comparisons per point; other polygons use
an even-odd ray cast over all their edges at once. Both are exact, and cost a few
microseconds for a visit of hundreds of positions.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
from shapely.geometry import Polygon

from edge.config.floor import LineConfig, ZoneConfig
from edge.visits.records import LineCrossing
from edge.visits.trajectory import smooth


class ZoneIndex:
    """The site's zones, for membership tests.

    Attributes:
        ids: zone ids, in site-config order (the columns of :meth:`contains`).
        kinds: each zone's kind.
        tags: each zone's category tags, each once (a tag written twice counts once;
            ``edge check-config`` warns about it).
        neighbours: pairs of zone indices ``(i, j)``, ``i < j``, whose polygons are
            closer than the neighbour distance.
    """

    def __init__(self, zones: Sequence[ZoneConfig], neighbour_distance_m: float = 1.0) -> None:
        self.ids = [zone.id for zone in zones]
        self.kinds = [zone.kind for zone in zones]
        self.tags = [tuple(dict.fromkeys(zone.tags)) for zone in zones]
        shapes = [Polygon(zone.polygon) for zone in zones]
        self.neighbours = frozenset(
            (i, j)
            for i in range(len(shapes))
            for j in range(i + 1, len(shapes))
            if shapes[i].distance(shapes[j]) <= neighbour_distance_m
        )
        self._rect_columns: list[int] = []
        rects: list[tuple[float, float, float, float]] = []
        self._poly_columns: list[int] = []
        edges: list[np.ndarray] = []
        starts: list[int] = []
        for column, zone in enumerate(zones):
            corners = np.asarray(zone.polygon, dtype=np.float64)
            if _is_axis_aligned_rectangle(corners):
                self._rect_columns.append(column)
                rects.append((*corners.min(axis=0), *corners.max(axis=0)))
            else:
                self._poly_columns.append(column)
                starts.append(sum(len(e) for e in edges))
                edges.append(np.hstack([corners, np.roll(corners, -1, axis=0)]))
        self._rects = np.asarray(rects, dtype=np.float64).reshape(-1, 4)
        self._slabs = _RectangleSlabs(self._rects) if 0 < len(rects) <= 64 else None
        edge_array = np.vstack(edges) if edges else np.zeros((0, 4))
        self._x1: np.ndarray
        self._y1: np.ndarray
        self._x2: np.ndarray
        self._y2: np.ndarray
        self._x1, self._y1, self._x2, self._y2 = edge_array.T
        dy = self._y2 - self._y1
        # Horizontal edges never straddle a ray, so their slope is never used.
        self._inv_slope = np.divide(
            self._x2 - self._x1, dy, out=np.zeros_like(dy), where=dy != 0
        )
        self._edge_starts = np.asarray(starts, dtype=np.intp)

    def __len__(self) -> int:
        return len(self.ids)

    def are_neighbours(self, i: int, j: int) -> bool:
        return (min(i, j), max(i, j)) in self.neighbours

    def contains(self, xy: np.ndarray) -> np.ndarray:
        """``(zones, n)`` bool: whether each position lies inside each zone.

        Zones are rows so that each zone's membership over time is contiguous (and
        numpy's inner loops run over the long axis).
        """
        xy = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
        inside = np.zeros((len(self.ids), len(xy)), dtype=bool)
        x = xy[:, 0]
        y = xy[:, 1]
        if self._slabs is not None:
            masks = self._slabs.lookup(x, y)
            touched = int(np.bitwise_or.reduce(masks)) if len(masks) else 0
            for bit, row in enumerate(self._rect_columns):
                if touched >> bit & 1:
                    inside[row] = (masks >> np.uint64(bit)) & np.uint64(1)
        elif self._rect_columns:
            r = self._rects
            inside[self._rect_columns] = (
                (x >= r[:, 0:1]) & (x < r[:, 2:3]) & (y >= r[:, 1:2]) & (y < r[:, 3:4])
            )
        if self._poly_columns:
            y1, y2 = self._y1[:, None], self._y2[:, None]
            straddles = (y1 > y) != (y2 > y)
            crossing_x = self._x1[:, None] + (y - y1) * self._inv_slope[:, None]
            hits = (straddles & (x < crossing_x)).astype(np.int32)
            counts = np.add.reduceat(hits, self._edge_starts, axis=0)
            inside[self._poly_columns] = (counts & 1).astype(bool)
        return inside


    def change_times(
        self, t: np.ndarray, xy: np.ndarray, inside: np.ndarray, steps: int = 12
    ) -> np.ndarray:
        """``(zones, n)`` seconds: when the path, taken as straight between samples,
        crosses each zone's border, for every sample ``i`` whose membership differs
        from sample ``i - 1``'s; ``t[i]`` elsewhere. Exact for rectangles (where the
        segment enters or leaves both slabs); by bisection on the segment, to
        1/2**steps of it, for other polygons.

        Membership is sampled at the camera's frame rate, so a stay dated by samples
        is off by up to a frame at each end: 0.3 s of a 2 s walk through a zone at
        7 frames/s, a 15 % dwell error from sampling alone.
        """
        times = np.broadcast_to(np.asarray(t, dtype=np.float64), inside.shape).copy()
        zone, index = np.nonzero(inside[:, 1:] != inside[:, :-1])
        if len(zone) == 0:
            return times
        index = index + 1
        start, step = xy[index - 1], xy[index] - xy[index - 1]
        was_inside = inside[zone, index - 1]
        rect_of = np.full(len(self.ids), -1)
        rect_of[self._rect_columns] = np.arange(len(self._rect_columns))
        rect = rect_of[zone]
        f = np.empty(len(zone))
        is_rect = rect >= 0
        if is_rect.any():
            f[is_rect] = _rectangle_border(self._rects[rect[is_rect]], start[is_rect],
                                           step[is_rect], was_inside[is_rect])
        other = np.flatnonzero(~is_rect)
        if len(other):
            lo, hi = np.zeros(len(other)), np.ones(len(other))
            for _ in range(steps):
                mid = (lo + hi) / 2
                points = start[other] + mid[:, None] * step[other]
                same = self.contains(points)[zone[other], np.arange(len(other))]
                same = same == was_inside[other]
                lo, hi = np.where(same, mid, lo), np.where(same, hi, mid)
            f[other] = (lo + hi) / 2
        times[zone, index] = t[index - 1] + f * (t[index] - t[index - 1])
        return times


def _rectangle_border(
    rects: np.ndarray, start: np.ndarray, step: np.ndarray, leaving: np.ndarray
) -> np.ndarray:
    """Fraction of each segment ``start -> start + step`` at which it enters (or, where
    ``leaving``, leaves) its rectangle ``(x0, y0, x1, y1)``: the segment is inside
    when within both slabs, so it enters at the later slab entry and leaves at the
    earlier slab exit (Liang-Barsky clipping)."""
    low, high = rects[:, :2], rects[:, 2:]
    with np.errstate(divide="ignore", invalid="ignore"):
        a = (low - start) / step
        b = (high - start) / step
    moving = step != 0
    enter = np.where(moving, np.minimum(a, b), -np.inf).max(axis=1)
    leave = np.where(moving, np.maximum(a, b), np.inf).min(axis=1)
    return np.clip(np.where(leaving, leave, enter), 0.0, 1.0)


class _RectangleSlabs:
    """Axis-aligned rectangles as a grid of slabs between their edges.

    Every rectangle edge cuts the plane; within one cell of the resulting grid a
    point is inside exactly the same rectangles, so membership is two binary
    searches and one table look-up per point, whatever the number of zones
    (up to 64, one bit each). Rectangles are half-open, ``[x0, x1) x [y0, y1)``.
    """

    def __init__(self, rects: np.ndarray) -> None:
        self.xs = np.unique(rects[:, [0, 2]])
        self.ys = np.unique(rects[:, [1, 3]])
        # cell (i, j) spans [xs[i-1], xs[i]) x [ys[j-1], ys[j]); test its lower corner
        cx = np.concatenate(([-np.inf], self.xs))
        cy = np.concatenate(([-np.inf], self.ys))
        table = np.zeros((len(cx), len(cy)), dtype=np.uint64)
        for bit, (x0, y0, x1, y1) in enumerate(rects.tolist()):
            inside = ((cx >= x0) & (cx < x1))[:, None] & ((cy >= y0) & (cy < y1))[None, :]
            table[inside] |= np.uint64(1 << bit)
        self.table = table.ravel()
        self.stride = len(cy)

    def lookup(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """``(n,)`` uint64 masks: bit ``b`` set when the point is in rectangle ``b``."""
        i = np.searchsorted(self.xs, x, side="right")
        j = np.searchsorted(self.ys, y, side="right")
        return self.table.take(i * self.stride + j)


def _is_axis_aligned_rectangle(corners: np.ndarray) -> bool:
    if len(corners) != 4:
        return False
    xs, ys = set(corners[:, 0].tolist()), set(corners[:, 1].tolist())
    if len(xs) != 2 or len(ys) != 2:
        return False
    # every edge must be horizontal or vertical (rules out a bow-tie ordering)
    nxt = np.roll(corners, -1, axis=0)
    return bool(np.all((corners[:, 0] == nxt[:, 0]) ^ (corners[:, 1] == nxt[:, 1])))


class LineCounter:
    """Counts crossings of the site's counting lines, from where a person truly walked.

    The (smoothed) path's stays on each side of a line are runs at least ``margin_m``
    from it; time within ``margin_m`` (the dead band) does not end a stay, so jitter
    on the line counts nothing. A stay shorter than ``settle_s`` between two stays on
    the other side is an excursion and is dropped (the stays around it merge): a track
    that follows someone else across for a moment as two people pass each other (an
    id swap and back) counts nothing, nor does a step over and straight back. A
    track's first and last stays count however short they are, since trackers start
    and lose people near lines. A crossing counts between consecutive stays on
    opposite sides when the path meets the line within its two ends, and is dated
    midway between leaving the band on one side and reaching it on the other.
    """

    def __init__(
        self,
        lines: Sequence[LineConfig],
        margin_m: float = 0.3,
        settle_s: float = 0.0,
        smoothing_s: float = 0.0,
    ) -> None:
        self.ids = [line.id for line in lines]
        self.margin_m = margin_m
        self.settle_s = settle_s
        self.smoothing_s = smoothing_s
        self._start = np.asarray([line.start for line in lines], dtype=np.float64).reshape(-1, 2)
        end = np.asarray([line.end for line in lines], dtype=np.float64).reshape(-1, 2)
        self._direction = end - self._start
        self._length = np.hypot(self._direction[:, 0], self._direction[:, 1])
        # "inside: left" means positive signed distance (y up, looking start -> end)
        self._inside_sign = np.asarray(
            [1.0 if line.inside == "left" else -1.0 for line in lines], dtype=np.float64
        )

    def __len__(self) -> int:
        return len(self.ids)

    def crossings(self, t: np.ndarray, xy: np.ndarray) -> list[LineCrossing]:
        """Every crossing of every line by the trajectory, in time order."""
        found: list[LineCrossing] = []
        if len(t) < 2:
            return found
        xy = smooth(t, xy, self.smoothing_s)
        for k, line_id in enumerate(self.ids):
            rel = xy - self._start[k]
            d = self._direction[k]
            signed = (d[0] * rel[:, 1] - d[1] * rel[:, 0]) / self._length[k]
            runs = self._stays(t, signed)
            for (_, _, a), (side_b, b, _) in zip(runs[:-1], runs[1:], strict=True):
                if not self._within_ends(xy, signed, a, b, k):
                    continue
                inward = side_b == self._inside_sign[k]
                direction: Literal["in", "out"] = "in" if inward else "out"
                found.append(LineCrossing(line_id, self._passage(t, signed, a, b), direction))
        found.sort(key=lambda c: c.t)
        return found

    def _stays(self, t: np.ndarray, signed: np.ndarray) -> list[tuple[float, int, int]]:
        """``(side, first, last)`` sample indices of each stay on a side of the line.

        A stay is a run of samples at least ``margin_m`` from the line on one side
        (samples in the dead band are skipped). A stay shorter than ``settle_s`` between
        two others is an excursion (a track that followed someone else across for a
        moment, or a person who stepped over and straight back): it is dropped and the
        stays around it merge. The first and last stays count whatever their length, as
        a track may begin or end near the line.
        """
        settled = np.flatnonzero(np.abs(signed) >= self.margin_m)
        if len(settled) < 2:
            return []
        sides = np.sign(signed[settled])
        edges = [0, *(np.flatnonzero(sides[1:] != sides[:-1]) + 1).tolist(), len(settled)]
        runs = [(float(sides[lo]), int(settled[lo]), int(settled[hi - 1]))
                for lo, hi in zip(edges[:-1], edges[1:], strict=True)]
        kept = [run for i, run in enumerate(runs)
                if i in (0, len(runs) - 1) or t[run[2]] - t[run[1]] >= self.settle_s]
        stays: list[tuple[float, int, int]] = []
        for side, first, last in kept:
            if stays and stays[-1][0] == side:
                stays[-1] = (side, stays[-1][1], last)
            else:
                stays.append((side, first, last))
        return stays

    def _passage(self, t: np.ndarray, signed: np.ndarray, a: int, b: int) -> float:
        """The crossing's time: midway between when the path leaves the band
        ``margin_m`` wide on the side of sample ``a`` (the last of a stay there) and
        when it reaches the band on the side of sample ``b`` (the first of the next
        stay), each interpolated. For a straight walk this is when the line is
        crossed; a person who stands on the line for a while is dated by the middle
        of their wait, not by the jitter of their position on the line."""
        left = self._at_band(t, signed, a, float(np.sign(signed[a])))
        reached = self._at_band(t, signed, b - 1, float(np.sign(signed[b])))
        return (left + reached) / 2

    def _at_band(self, t: np.ndarray, signed: np.ndarray, i: int, side: float) -> float:
        """When the path between samples ``i`` and ``i + 1`` is ``margin_m`` from the
        line on ``side`` (interpolated)."""
        j = i + 1
        s0, s1 = float(signed[i]), float(signed[j])
        target = side * self.margin_m
        f = 0.0 if s1 == s0 else min(max((target - s0) / (s1 - s0), 0.0), 1.0)
        return float(t[i]) + f * float(t[j] - t[i])

    def _within_ends(
        self, xy: np.ndarray, signed: np.ndarray, a: int, b: int, k: int
    ) -> bool:
        """Whether the path from sample ``a`` to ``b`` last meets line ``k`` between
        its two ends."""
        values = signed[a : b + 1].tolist()
        i = a
        for j in range(len(values) - 1, 0, -1):   # the last sign change before settling
            if (values[j] > 0) != (values[j - 1] > 0) or values[j] == 0 or values[j - 1] == 0:
                i = a + j - 1
                break
        s0, s1 = float(signed[i]), float(signed[i + 1])
        f = 0.0 if s0 == s1 else s0 / (s0 - s1)
        px = float(xy[i, 0]) + f * float(xy[i + 1, 0] - xy[i, 0])
        py = float(xy[i, 1]) + f * float(xy[i + 1, 1] - xy[i, 1])
        (sx, sy), (dx, dy) = self._start[k].tolist(), self._direction[k].tolist()
        along = ((px - sx) * dx + (py - sy) * dy) / (dx * dx + dy * dy)
        return 0.0 <= along <= 1.0
