"""What a floor plan allows but deserves a word: zones that overlap, a tag repeated.

Neither is an error. Overlapping zones are legitimate (a promo table inside an aisle):
each zone's own dwell counts the time in it, and a kind's or tag's dwell counts the
time in any of its zones once (:func:`edge.visits.features.union_seconds`). A tag
written twice on a zone counts once. ``edge check-config`` prints these warnings so
that an overlap made by mistake (a copied polygon) is seen.
"""

from __future__ import annotations

from shapely.geometry import Polygon

from edge.config.floor import FloorConfig

# Overlaps smaller than this (square metres) are drawing noise on a shared border.
MIN_OVERLAP_M2 = 0.01


def layout_warnings(floor: FloorConfig) -> list[str]:
    """One line per repeated tag and per pair of overlapping zones, key path first."""
    warnings: list[str] = []
    for index, zone in enumerate(floor.zones):
        repeated = sorted({tag for tag in zone.tags if zone.tags.count(tag) > 1})
        if repeated:
            warnings.append(
                f"floor.zones[{index}].tags: {', '.join(map(repr, repeated))} listed more "
                f"than once on zone {zone.id!r}; each tag counts once, list it once")
    shapes = [Polygon(zone.polygon) for zone in floor.zones]
    for i, first in enumerate(floor.zones):
        for j in range(i + 1, len(floor.zones)):
            area = shapes[i].intersection(shapes[j]).area
            if area >= MIN_OVERLAP_M2:
                second = floor.zones[j]
                warnings.append(
                    f"floor.zones[{j}]: zone {second.id!r} overlaps zone {first.id!r} "
                    f"(floor.zones[{i}]) by {area:.3g} m²; time in both counts for each "
                    "zone, and once for their kinds and tags. Fine for a zone inside "
                    "another (a promo table in an aisle); otherwise fix the polygons")
    return warnings
