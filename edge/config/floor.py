"""Config of the store floor: its extent, zones and counting lines, in metres."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator
from shapely.geometry import Polygon
from shapely.validation import explain_validity

from edge.config.base import StrictModel

Point = tuple[float, float]

ZoneKind = Literal["entrance", "checkout", "product", "queue", "service", "passage", "staff"]


class ZoneConfig(StrictModel):
    """A floor area whose presence and dwell are measured."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,47}$")
    name: str | None = Field(None, description="Shown on the status page; defaults to the id.")
    kind: ZoneKind = Field(description="What the area is for; traits read kinds (e.g. checkout).")
    tags: list[str] = Field(
        default_factory=list,
        description="Merchandise categories, e.g. promo, premium, kids, fitness, ready-to-eat.",
    )
    polygon: list[Point] = Field(description="Corners in floor metres, in order, not closed.")

    @field_validator("tags")
    @classmethod
    def _tags_are_slugs(cls, tags: list[str]) -> list[str]:
        for tag in tags:
            if not tag or not all(c.isalnum() or c in "-_" for c in tag) or tag != tag.lower():
                raise ValueError(f"tag {tag!r} must be lower-case letters, digits, - or _")
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
    inside: Literal["left", "right"] = Field(
        description="Which side of the line, looking from start to end, is the store's inside."
    )
    kind: Literal["entrance", "other"] = "entrance"

    @model_validator(mode="after")
    def _has_length(self) -> LineConfig:
        if self.start == self.end:
            raise ValueError("a line's start and end must differ")
        return self


class FloorConfig(StrictModel):
    """The floor plan all cameras are calibrated into."""

    bounds: tuple[Point, Point] = Field(
        description="[[x_min, y_min], [x_max, y_max]] of the floor area shown and gridded, metres."
    )
    heatmap_cell_m: float = Field(
        0.5, gt=0, le=10, description="Dwell heat-map cell size (metres)."
    )
    zones: list[ZoneConfig] = Field(default_factory=list)
    lines: list[LineConfig] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_ids_and_bounds(self) -> FloorConfig:
        (x0, y0), (x1, y1) = self.bounds
        if not (x1 > x0 and y1 > y0):
            raise ValueError("bounds must be [[x_min, y_min], [x_max, y_max]] with max > min")
        ids = [z.id for z in self.zones] + [line.id for line in self.lines]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ValueError(f"zone/line ids must be unique; repeated: {', '.join(duplicates)}")
        return self
