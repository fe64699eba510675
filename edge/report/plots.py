"""The report's plots, drawn with matplotlib into PNG bytes (embedded as base64).

Figures are built with :class:`matplotlib.figure.Figure` directly, not pyplot, so
no global state or GUI backend is involved.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Polygon as PolygonPatch

from edge.config.floor import FloorConfig
from edge.report.data import Heat, ReportData

ZONE_EDGE = "#333333"
LINE_COLOUR = "#d0009a"
DPI = 100


def png_base64(figure: Figure) -> str:
    """The figure as a base64 PNG string (for a ``data:`` URL)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _floor_axes(figure: Figure, floor: FloorConfig):
    axes = figure.add_subplot()
    (x0, y0), (x1, y1) = floor.bounds
    axes.set_xlim(x0, x1)
    axes.set_ylim(y0, y1)
    axes.set_aspect("equal")
    axes.set_xlabel("x (m)")
    axes.set_ylabel("y (m)")
    return axes


def _draw_plan(axes, floor: FloorConfig) -> None:
    for zone in floor.zones:
        axes.add_patch(PolygonPatch(np.array(zone.polygon), closed=True, fill=False,
                                    edgecolor=ZONE_EDGE, linewidth=1.0))
        cx, cy = np.array(zone.polygon).mean(axis=0)
        axes.text(cx, cy, zone.label, ha="center", va="center", fontsize=7, color=ZONE_EDGE)
    for line in floor.lines:
        (ax, ay), (bx, by) = line.start, line.end
        axes.plot([ax, bx], [ay, by], color=LINE_COLOUR, linewidth=2)
        axes.text(ax, ay, line.id, fontsize=7, color=LINE_COLOUR, va="bottom")


def heatmap(heat: Heat, floor: FloorConfig) -> Figure:
    """Seconds spent per floor cell, with the zones and lines on top."""
    figure = Figure(figsize=(6.4, 6.0))
    axes = _floor_axes(figure, floor)
    rows, cols = heat.dwell_s.shape
    shown = np.ma.masked_equal(heat.dwell_s, 0.0)
    image = axes.imshow(shown, origin="lower", cmap="inferno_r", interpolation="nearest",
                        extent=(heat.x0, heat.x0 + cols * heat.cell_m,
                                heat.y0, heat.y0 + rows * heat.cell_m))
    figure.colorbar(image, ax=axes, label=f"seconds per {heat.cell_m:g} m cell", shrink=0.8)
    _draw_plan(axes, floor)
    axes.set_title("Where people spent time")
    return figure


def trajectories(paths: Sequence[tuple[int, np.ndarray]], floor: FloorConfig) -> Figure:
    """Every track's path on the floor plan (per-person data: local report only)."""
    figure = Figure(figsize=(6.4, 6.0))
    axes = _floor_axes(figure, floor)
    _draw_plan(axes, floor)
    colours = [f"C{i % 10}" for i in range(len(paths))]
    for (track_id, xy), colour in zip(paths, colours, strict=True):
        axes.plot(xy[:, 0], xy[:, 1], color=colour, linewidth=0.9, alpha=0.85)
        axes.plot(xy[-1, 0], xy[-1, 1], marker="o", markersize=3, color=colour)
        axes.text(xy[0, 0], xy[0, 1], str(track_id), fontsize=6, color=colour)
    axes.set_title(f"Movement paths of {len(paths)} tracks (start: id, end: dot)")
    return figure


def zone_dwell(zone_dwell: dict[str, list[float]], labels: dict[str, str]) -> Figure:
    """Per zone, the distribution of visits' dwell seconds (box and points)."""
    figure = Figure(figsize=(7.0, 0.5 + 0.45 * max(len(zone_dwell), 2)))
    axes = figure.add_subplot()
    names = list(zone_dwell)
    if names:
        values = [zone_dwell[name] for name in names]
        axes.boxplot(values, orientation="horizontal", showfliers=False, widths=0.5)
        for row, dwell in enumerate(values, start=1):
            jitter = np.linspace(-0.15, 0.15, len(dwell)) if len(dwell) > 1 else [0.0]
            axes.scatter(dwell, row + np.asarray(jitter), s=9, alpha=0.7, color="C0")
        axes.set_yticks(range(1, len(names) + 1),
                        [f"{labels.get(n, n)} ({len(zone_dwell[n])})" for n in names])
    else:
        axes.text(0.5, 0.5, "no zone was visited", ha="center", va="center",
                  transform=axes.transAxes)
    axes.set_xlabel("dwell per visit (s)")
    axes.set_title("Dwell per zone (visits in brackets)")
    return figure


def _bins(span_s: float) -> float:
    for width in (5, 10, 30, 60, 300, 900, 3600):
        if span_s / width <= 40:
            return float(width)
    return 3600.0


def footfall(data: ReportData) -> Figure:
    """Entrance crossings in and out per time bin, and people tracked per frame."""
    figure = Figure(figsize=(7.0, 3.6))
    axes = figure.add_subplot()
    start = data.run.first_t or 0.0
    t, people = data.people_over_time
    span = max((data.run.last_t or start) - start, 1.0)
    width = _bins(span)
    edges = np.arange(0.0, span + width, width)
    for direction, colour, sign in (("in", "C2", 1), ("out", "C3", -1)):
        times = [c[0] - start for c in data.crossings if c[2] == direction]
        counts, _ = np.histogram(times, bins=edges)
        axes.bar(edges[:-1], sign * counts, width=width, align="edge", color=colour, alpha=0.8,
                 label=f"line crossings {direction} ({len(times)})")
    axes.set_xlabel(f"seconds since the first frame (bins of {width:g} s)")
    axes.set_ylabel("crossings per bin (out below 0)")
    twin = axes.twinx()
    twin.plot(t - start, people, color="C0", linewidth=1, label="people tracked")
    twin.set_ylabel("people tracked")
    lines, names = axes.get_legend_handles_labels()
    more, more_names = twin.get_legend_handles_labels()
    axes.legend(lines + more, names + more_names, fontsize=7, loc="upper left")
    axes.set_title("Footfall over time")
    return figure


def mix(traits: dict[str, tuple[int, float]], segments: dict[str, tuple[int, float]],
        visits: int) -> Figure:
    """Share of visits showing each trait and each segment (p >= 0.5)."""
    figure = Figure(figsize=(7.0, 1.2 + 0.32 * (len(traits) + len(segments))))
    axes = figure.add_subplot()
    names = [f"trait: {n}" for n in traits] + [f"segment: {n}" for n in segments]
    counts = [c for c, _ in traits.values()] + [c for c, _ in segments.values()]
    share = [c / visits if visits else 0.0 for c in counts]
    colours = ["C1"] * len(traits) + ["C4"] * len(segments)
    axes.barh(range(len(names)), share, color=colours)
    for row, (value, count) in enumerate(zip(share, counts, strict=True)):
        axes.text(value, row, f" {count}", va="center", fontsize=7)
    axes.set_yticks(range(len(names)), names, fontsize=8)
    axes.invert_yaxis()
    axes.set_xlim(0, 1.1)
    axes.set_xlabel(f"share of the {visits} visits (probability >= 0.5)")
    axes.set_title("Trait and segment mix")
    return figure


def wifi(data: ReportData) -> Figure:
    """Occupancy estimate and in-store devices per Wi-Fi window, per sensor."""
    figure = Figure(figsize=(7.0, 3.4))
    axes = figure.add_subplot()
    for index, (sensor, rows) in enumerate(data.wifi.items()):
        array = np.array(rows, dtype=np.float64)
        hours = (array[:, 0] - array[0, 0]) / 3600.0
        axes.step(hours, array[:, 3], where="post", color=f"C{index}",
                  label=f"{sensor} occupancy estimate")
        axes.plot(hours, array[:, 1], linestyle=":", color=f"C{index}",
                  label=f"{sensor} in-store devices")
    axes.set_xlabel(f"hours since the first window ({data.wifi_window_s} s windows)")
    axes.set_ylabel("people / devices")
    axes.legend(fontsize=7)
    axes.set_title("Wi-Fi estimate over time")
    return figure


def dwell_accuracy(pairs: list[dict[str, object]]) -> Figure:
    """Measured against true dwell per (person, zone): the diagonal is perfect."""
    figure = Figure(figsize=(4.8, 4.6))
    axes = figure.add_subplot()
    truth = np.array([float(p["gt_s"]) for p in pairs])  # type: ignore[arg-type]
    got = np.array([float(p["measured_s"]) for p in pairs])  # type: ignore[arg-type]
    top = max(float(truth.max()) if len(truth) else 1.0, float(got.max()) if len(got) else 1.0)
    axes.plot([0, top], [0, top], color="#999999", linewidth=1)
    axes.scatter(truth, got, s=14, color="C0")
    axes.set_xlabel("true dwell (s)")
    axes.set_ylabel("measured dwell (s)")
    axes.set_title("Zone dwell per person: measured vs true")
    return figure
