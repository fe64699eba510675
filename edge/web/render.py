"""Geometry for the page's SVG drawings: the floor heat map and the hourly bars.

Pure functions from figures to shapes; the templates only place them. The floor
is drawn with x to the right and y up (as on a floor plan), so SVG's downward y
is flipped here.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

from shapely.geometry import Polygon

from edge.web.schemas import Footfall, Heatmap, Summary

# Light yellow -> orange -> dark red: readable on a tablet in a bright shop.
PALETTE = ((255, 237, 160), (254, 178, 76), (240, 59, 32), (128, 0, 38))


def heat_colour(level: float) -> str:
    """Hex colour of a cell whose dwell is ``level`` (0-1) of the busiest cell."""
    level = min(1.0, max(0.0, level))
    span = level * (len(PALETTE) - 1)
    i = min(int(span), len(PALETTE) - 2)
    f = span - i
    rgb = (round(a + (b - a) * f) for a, b in zip(PALETTE[i], PALETTE[i + 1], strict=True))
    return "#" + "".join(f"{c:02x}" for c in rgb)


@dataclass(frozen=True, slots=True)
class Rect:
    x: float
    y: float
    w: float
    h: float
    fill: str
    title: str


@dataclass(frozen=True, slots=True)
class ZoneDrawing:
    """A zone's outline (SVG units) and where its label goes.

    Labels are not drawn in the map's own units, which shrink with the screen (about
    6 px on a phone): they sit on an overlay without a viewBox, placed in percent of
    the map and sized in CSS pixels. ``key`` is the short label narrow screens show,
    with the names listed under the map.
    """

    points: str
    left_pct: float
    top_pct: float
    name: str
    kind: str
    key: str


@dataclass(frozen=True, slots=True)
class FloorDrawing:
    view_box: str
    width: float
    height: float
    font: float
    stroke: float
    cells: list[Rect]
    zones: list[ZoneDrawing]


def floor_drawing(heatmap: Heatmap, duration_text) -> FloorDrawing:
    """Cells and zone outlines in SVG user units (= metres, y flipped)."""
    (x0, y0), (x1, y1) = heatmap.bounds
    width, height = x1 - x0, y1 - y0
    size = heatmap.cell_m

    def sx(x: float) -> float:
        return round(x - x0, 3)

    def sy(y: float) -> float:
        return round(y1 - y, 3)

    cells = [
        Rect(sx(c.x), sy(c.y + size), size, size, heat_colour(c.level),
             f"{duration_text(c.dwell_s)} spent here")
        for c in heatmap.cells
    ]
    font = round(max(width, height) / 40, 3)
    zones = []
    for number, zone in enumerate(heatmap.zones, start=1):
        centre = Polygon(zone.polygon).representative_point()
        zones.append(ZoneDrawing(
            points=" ".join(f"{sx(x)},{sy(y)}" for x, y in zone.polygon),
            left_pct=round(100 * sx(centre.x) / width, 2) if width else 50.0,
            top_pct=round(100 * sy(centre.y) / height, 2) if height else 50.0,
            name=zone.name, kind=zone.kind, key=str(number),
        ))
    return FloorDrawing(f"0 0 {round(width, 3)} {round(height, 3)}", width, height,
                        font, round(font / 6, 3), cells, zones)


@dataclass(frozen=True, slots=True)
class Bar:
    x: float
    y: float
    w: float
    h: float
    value: int
    kind: str


@dataclass(frozen=True, slots=True)
class BarChart:
    view_box: str
    bars: list[Bar]
    labels: list[tuple[float, str]]
    top: int
    baseline: float


def footfall_chart(footfall: Footfall) -> BarChart:
    """Two bars per hour (the day shown, and a week before), scaled to the largest."""
    slot, bar, plot_h, label_h = 30.0, 12.0, 120.0, 18.0
    values = [v for h in footfall.hours for v in (h.today, h.last_week) if v is not None]
    top = max([*values, 1])
    bars: list[Bar] = []
    labels: list[tuple[float, str]] = []
    for i, hour in enumerate(footfall.hours):
        left = i * slot + 3
        for offset, value, kind in ((0.0, hour.last_week, "last-week"), (bar, hour.today, "today")):
            if value is None:  # not begun yet, or no longer kept: no bar, not a zero one
                continue
            h = plot_h * value / top
            bars.append(Bar(round(left + offset, 2), round(plot_h - h, 2), bar, round(h, 2),
                            value, kind))
        # The repeated hour of a day the clocks went back reads "01" twice, as the clock did;
        # the table under the chart names it "01:00 (2nd)".
        labels.append((left + bar, hour.label[:2]))
    width = max(len(footfall.hours), 1) * slot
    return BarChart(f"0 0 {width:.0f} {plot_h + label_h:.0f}", bars, labels, top, plot_h)


class FragmentCache:
    """Rendered forms (HTML, JSON) of a summary, reused while the summary is cached.

    Keyed by the summary object and a name: new figures render anew. Holds a few
    summaries' worth at most.
    """

    def __init__(self, size: int = 32) -> None:
        self._items: OrderedDict[tuple[int, str], tuple[Summary, str]] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def get(self, summary: Summary, name: str) -> str | None:
        with self._lock:
            hit = self._items.get((id(summary), name))
            return hit[1] if hit is not None and hit[0] is summary else None

    def put(self, summary: Summary, name: str, rendered: str) -> None:
        with self._lock:
            self._items[(id(summary), name)] = (summary, rendered)
            while len(self._items) > self._size:
                self._items.popitem(last=False)
