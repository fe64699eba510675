"""The floor plan with every camera's footprint: where each camera sees the floor, where
two or more see it together, and where none does.

For engineers laying out a multi-camera store (``edge calibrate --footprints``): a
person walking from one footprint into another keeps their id through the overlap;
between footprints that do not touch, only the motion model carries them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import cv2
import numpy as np
import shapely

from edge.config.floor import FloorConfig

PLAN_WIDTH_PX = 1000
MARGIN_PX = 30
COLOURS = [(230, 159, 0), (86, 180, 233), (0, 158, 115), (240, 228, 66), (0, 114, 178),
           (213, 94, 0), (204, 121, 167), (120, 120, 120)]  # Okabe-Ito, BGR-agnostic


@dataclass(frozen=True, slots=True)
class CoverageReport:
    """Square metres each camera sees, each pair sees together, and the floor no camera
    sees (inside the floor plan's bounds)."""

    seen_m2: dict[str, float]
    shared_m2: dict[tuple[str, str], float]
    unseen_m2: float
    lonely: list[str]


def coverage_report(
    footprints: Mapping[str, shapely.Polygon | None], floor: FloorConfig
) -> CoverageReport:
    plan = shapely.box(*floor.bounds[0], *floor.bounds[1])
    known = {c: p.intersection(plan) for c, p in footprints.items() if p is not None}
    shared = {}
    names = sorted(known)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            shared[(a, b)] = float(known[a].intersection(known[b]).area)
    union = shapely.union_all(list(known.values())) if known else shapely.Polygon()
    lonely = [c for c in names if len(names) > 1
              and not any(area > 0 for pair, area in shared.items() if c in pair)]
    return CoverageReport(
        seen_m2={c: float(p.area) for c, p in known.items()},
        shared_m2=shared,
        unseen_m2=max(0.0, float(plan.area - union.intersection(plan).area)),
        lonely=lonely,
    )


def draw_footprints(
    footprints: Mapping[str, shapely.Polygon | None], floor: FloorConfig
) -> np.ndarray:
    """A BGR picture of the floor plan: zones in grey, each camera's footprint in its
    colour (overlaps blend), camera ids at their footprints' centres, a 1 m scale."""
    (x0, y0), (x1, y1) = floor.bounds
    scale = (PLAN_WIDTH_PX - 2 * MARGIN_PX) / max(x1 - x0, 1e-6)
    height = int((y1 - y0) * scale + 2 * MARGIN_PX)
    canvas: np.ndarray = np.full((height, PLAN_WIDTH_PX, 3), 255, np.uint8)

    def pixels(polygon: shapely.Polygon | shapely.Point) -> np.ndarray:
        xy = np.asarray(polygon.coords if isinstance(polygon, shapely.Point)
                        else polygon.exterior.coords)
        return np.stack([MARGIN_PX + (xy[:, 0] - x0) * scale,
                         height - MARGIN_PX - (xy[:, 1] - y0) * scale], axis=1).astype(np.int32)

    plan = shapely.box(x0, y0, x1, y1)
    labels = []
    for zone in floor.zones:
        cv2.polylines(canvas, [pixels(shapely.Polygon(zone.polygon))], True, (170, 170, 170), 1)
    for index, (camera, polygon) in enumerate(sorted(footprints.items())):
        if polygon is None:
            continue
        shape = polygon.intersection(plan)
        if not isinstance(shape, shapely.Polygon) or shape.is_empty:
            continue
        layer = canvas.copy()
        colour = COLOURS[index % len(COLOURS)]
        cv2.fillPoly(layer, [pixels(shape)], colour)
        canvas = cv2.addWeighted(layer, 0.35, canvas, 0.65, 0)
        cv2.polylines(canvas, [pixels(shape)], True, colour, 2)
        labels.append((camera, pixels(shape.centroid)[0]))
    for camera, centre in labels:  # on top of every footprint
        cv2.putText(canvas, camera, (int(centre[0]) - 20, int(centre[1])),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 2, cv2.LINE_AA)
    cv2.rectangle(canvas, (MARGIN_PX, height - MARGIN_PX),
                  (PLAN_WIDTH_PX - MARGIN_PX, MARGIN_PX), (0, 0, 0), 1)
    bar = int(scale)
    cv2.line(canvas, (MARGIN_PX, height - 10), (MARGIN_PX + bar, height - 10), (0, 0, 0), 2)
    cv2.putText(canvas, "1 m", (MARGIN_PX + bar + 5, height - 6), cv2.FONT_HERSHEY_SIMPLEX,
                0.4, (0, 0, 0), 1, cv2.LINE_AA)
    return canvas
