"""Config of the store floor: its extent, zones and counting lines, in metres."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator, model_validator
from shapely.geometry import LineString, Polygon, box
from shapely.validation import explain_validity

from edge.config.base import StrictModel, key_problems

Point = tuple[float, float]

# A zone tag: also part of feature names (dwell_tag_<tag>_s, share_tag_<tag>), so the
# feature vocabulary (edge.visits.features) reads tags with this same pattern.
TAG_PATTERN = r"[a-z0-9][a-z0-9_-]*"

ZoneKind = Literal["entrance", "checkout", "product", "queue", "service", "passage", "staff"]


class ZoneConfig(StrictModel):
    """A floor area whose presence and dwell are measured."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,47}$")
    name: str | None = None
    """Shown on the status page; defaults to the id."""
    kind: ZoneKind
    """What the area is for; traits read kinds (e.g. checkout)."""
    tags: list[str] = Field(default_factory=list)
    """Merchandise categories, e.g. promo, premium, kids, fitness, ready-to-eat."""
    polygon: list[Point]
    """Corners in floor metres, in order, not closed."""

    @field_validator("tags")
    @classmethod
    def _tags_are_slugs(cls, tags: list[str]) -> list[str]:
        for tag in tags:
            if not re.fullmatch(TAG_PATTERN, tag):
                raise ValueError(f"tag {tag!r} must be ASCII lower-case letters, digits, - or "
                                 "_, starting with a letter or digit")
        return tags

    @field_validator("polygon")
    @classmethod
    def _simple_polygon(cls, polygon: list[Point]) -> list[Point]:
        if len(polygon) < 3:
            raise ValueError(f"a zone polygon needs at least 3 corners, got {len(polygon)}")
        shape = Polygon(polygon)
        if not shape.is_valid:
            raise ValueError(f"zone polygon is not a simple polygon: {explain_validity(shape)}")
        if shape.area <= 0:
            raise ValueError("zone polygon has no area")
        return polygon

    @property
    def label(self) -> str:
        return self.name or self.id


class LineConfig(StrictModel):
    """A counting line, e.g. across the entrance. Crossing it towards the ``inside``
    side counts as 'in'."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,47}$")
    start: Point
    end: Point
    inside: Literal["left", "right"]
    """Which side of the line, looking from start to end, is the store's inside."""
    kind: Literal["entrance", "other", "staff"] = "entrance"
    """entrance: the customers' door (door counter); staff: a door only associates use (a visit
    crossing it is an associate's); other: counted only."""

    @model_validator(mode="after")
    def _has_length(self) -> LineConfig:
        if self.start == self.end:
            raise ValueError("a line's start and end must differ")
        return self


class FloorConfig(StrictModel):
    """The floor plan all cameras are calibrated into."""

    bounds: tuple[Point, Point]
    """[[x_min, y_min], [x_max, y_max]] of the floor area shown and gridded, metres."""
    heatmap_cell_m: float = Field(0.5, gt=0, le=10)
    """Dwell heat-map cell size (metres)."""
    zones: list[ZoneConfig] = Field(default_factory=list)
    lines: list[LineConfig] = Field(default_factory=list)

    @property
    def entrance_line_ids(self) -> list[str]:
        """Ids of the entrance lines (``kind: entrance``): their crossings are footfall."""
        return [line.id for line in self.lines if line.kind == "entrance"]

    @model_validator(mode="after")
    def _ordered_bounds(self) -> FloorConfig:
        (x0, y0), (x1, y1) = self.bounds
        if not (x1 > x0 and y1 > y0):
            raise key_problems("FloorConfig", [(
                ("bounds",), "bounds must be [[x_min, y_min], [x_max, y_max]] with max > min",
                [list(corner) for corner in self.bounds],
            )])
        return self

    @model_validator(mode="after")
    def _unique_ids(self) -> FloorConfig:
        keys = [("zones", i, z.id) for i, z in enumerate(self.zones)]
        keys += [("lines", i, line.id) for i, line in enumerate(self.lines)]
        first: dict[str, str] = {}
        for section, index, item_id in keys:
            if item_id in first:
                raise key_problems("FloorConfig", [(
                    (section, index, "id"),
                    f"id {item_id!r} is already used by floor.{first[item_id]}; zone and line "
                    "ids must be unique",
                    item_id,
                )])
            first[item_id] = f"{section}[{index}]"
        return self

    @model_validator(mode="after")
    def _inside_bounds(self) -> FloorConfig:
        # A zone or line off the floor plan can never be entered or crossed: its
        # figures would stay empty without a word (usually a sign error or swapped axes).
        (x0, y0), (x1, y1) = self.bounds
        floor = box(x0, y0, x1, y1)
        shown = f"floor.bounds [[{x0:g}, {y0:g}], [{x1:g}, {y1:g}]]"
        for index, zone in enumerate(self.zones):
            if Polygon(zone.polygon).intersection(floor).area <= 0:
                raise key_problems("FloorConfig", [(
                    ("zones", index, "polygon"),
                    f"zone {zone.id!r} lies entirely outside {shown}; move the zone or widen "
                    "the bounds",
                    [list(point) for point in zone.polygon],
                )])
        for index, line in enumerate(self.lines):
            if LineString([line.start, line.end]).intersection(floor).length <= 0:
                raise key_problems("FloorConfig", [(
                    ("lines", index),
                    f"line {line.id!r} lies entirely outside {shown}; move the line or widen "
                    "the bounds",
                    {},  # a whole line: its id and ends are in the message
                )])
        return self
