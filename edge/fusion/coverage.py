"""Where each camera sees the floor: its footprint, and which cameras are live.

A camera's footprint is the part of the floor its image covers: the image rectangle
mapped through the homography, cut where the floor recedes past ``max_range_m``
from the camera's nearest floor point (towards the horizon a pixel covers metres),
and cut to its ``floor_area`` when one is set. The fusion asks, for a person no
camera saw this instant, whether a *live* camera should have: if so they are
probably gone; if not (between views, or in the area of a camera that is down),
they are kept, unseen, for longer.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import shapely

from edge.fusion.observe import below_horizon, floor_side_sign, homography_jacobian

GRID = 41  # image samples per side to outline a footprint


def footprint(
    matrix: np.ndarray,
    image_size: tuple[int, int],
    *,
    max_range_m: float,
    area: shapely.Polygon | None = None,
) -> shapely.Geometry:
    """The floor a camera sees: a polygon, or several pieces where ``area`` is not convex;
    empty when no pixel maps onto the floor or ``area`` misses the view (the camera then
    covers nothing; None in :class:`Coverage` is a footprint not known yet)."""
    width, height = image_size
    us, vs = np.meshgrid(np.linspace(0, width, GRID), np.linspace(0, height, GRID))
    pixels = np.c_[us.ravel(), vs.ravel()]
    xy, _, w = homography_jacobian(matrix, pixels)
    sign = floor_side_sign(matrix, image_size)
    on_floor = below_horizon(w, sign) & np.all(np.isfinite(xy), axis=1)
    if not on_floor.any():
        return shapely.Polygon()
    nearest = homography_jacobian(matrix, np.array([[width / 2.0, height - 1.0]]))[0][0]
    near = on_floor & (np.linalg.norm(xy - nearest, axis=1) <= max_range_m)
    points = xy[near] if near.sum() >= 3 else xy[on_floor]
    seen = shapely.MultiPoint(points).convex_hull
    if area is not None:
        seen = seen.intersection(area)
    # Regression: an area outside the view gave None, which counts as seeing everywhere.
    return seen if seen.area > 0 else shapely.Polygon()


class Coverage:
    """Which live cameras cover a floor position.

    Args:
        footprints: per camera id, its footprint, or None when unknown (a camera whose
            image size is not known yet is taken to cover every position); an empty one
            covers none.
    """

    def __init__(self, footprints: Mapping[str, shapely.Geometry | None]) -> None:
        self.footprints = dict(footprints)
        for polygon in self.footprints.values():
            if polygon is not None:
                shapely.prepare(polygon)
        # per camera: (its footprint, the margin, the footprint shrunk by it)
        self._inner: dict[str, tuple[shapely.Polygon, float, shapely.Geometry]] = {}

    def set_footprint(self, camera: str, polygon: shapely.Geometry | None) -> None:
        if polygon is not None:
            shapely.prepare(polygon)
        self.footprints[camera] = polygon

    def covering(self, xy: np.ndarray, cameras: set[str]) -> np.ndarray:
        """``(n,)`` how many of ``cameras`` cover each ``(n, 2)`` position."""
        xy = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
        count = np.zeros(len(xy), dtype=np.int64)
        for camera in cameras:
            polygon = self.footprints.get(camera)
            if polygon is None:
                count += 1
            elif len(xy):
                count += shapely.contains_xy(polygon, xy[:, 0], xy[:, 1])
        return count

    def well_inside(self, xy: np.ndarray, camera: str, margin_m: float) -> np.ndarray | None:
        """``(n,)`` whether each ``(n, 2)`` position lies inside ``camera``'s footprint, at
        least ``margin_m`` from its edge; None when the footprint is not known."""
        polygon = self.footprints.get(camera)
        if polygon is None:
            return None
        xy = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
        cached = self._inner.get(camera)
        if cached is None or cached[0] is not polygon or cached[1] != margin_m:
            inner = polygon.buffer(-margin_m)
            shapely.prepare(inner)
            cached = self._inner[camera] = (polygon, margin_m, inner)
        return shapely.contains_xy(cached[2], xy[:, 0], xy[:, 1])

    def near(self, xy: np.ndarray, cameras: set[str], margin_m: float) -> np.ndarray:
        """``(n,)`` whether each ``(n, 2)`` position lies within ``margin_m`` of one of
        ``cameras``' footprints (an unknown footprint is everywhere)."""
        xy = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
        close = np.zeros(len(xy), dtype=bool)
        for camera in cameras:
            polygon = self.footprints.get(camera)
            if polygon is None:
                return np.ones(len(xy), dtype=bool)
            if len(xy):
                close |= shapely.dwithin(polygon, shapely.points(xy), margin_m)
        return close

    def overlaps(self) -> dict[tuple[str, str], float]:
        """Square metres of floor each pair of cameras both see (known footprints)."""
        known = sorted((k, v) for k, v in self.footprints.items() if v is not None)
        shared = {}
        for i, (a, pa) in enumerate(known):
            for b, pb in known[i + 1:]:
                shared[(a, b)] = float(pa.intersection(pb).area)
        return shared
