"""The self-contained HTML report: one file, plots embedded as base64 PNG, no request
to anywhere when it is opened."""

from __future__ import annotations

import datetime as dt
import json
import math
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

import jinja2
import sqlite_utils

from edge.config import SiteConfig
from edge.errors import OutputError
from edge.evaluation.accuracy import Accuracy
from edge.outputs import write_text_whole
from edge.report.data import ReportData, collect

TEMPLATES = Path(__file__).resolve().parent / "templates"


@dataclass(frozen=True, slots=True)
class Plot:
    """One embedded picture."""

    id: str
    title: str
    caption: str
    png: str  # base64


def _shown(value: object) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:.4f}".rstrip("0").rstrip(".") if abs(value) < 1000 else f"{value:.1f}"
    return str(value)


def _json_for_script(payload: object) -> str:
    """JSON safe inside ``<script>``: no ``</script>`` or HTML-significant characters."""
    text = json.dumps(payload, allow_nan=False, sort_keys=True)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def load_plots():
    """:mod:`edge.report.plots`, whose matplotlib is an optional extra (the appliance
    itself never draws a plot).

    Raises:
        OutputError: matplotlib is not installed.
    """
    try:
        from edge.report import plots
    except ImportError as error:
        raise OutputError(
            f"the HTML report needs matplotlib ({error.name} is missing): "
            "pip install 'store-edge[report]'"
        ) from None
    return plots


def _plot(plot_id: str, title: str, caption: str, figure) -> Plot:
    return Plot(plot_id, title, caption, load_plots().png_base64(figure))


def render(
    data: ReportData,
    site: SiteConfig,
    accuracy: Accuracy | None = None,
    *,
    generated: dt.datetime | None = None,
) -> str:
    """The report as one HTML document."""
    plots = load_plots()
    labels = {zone.id: zone.label for zone in site.floor.zones}
    floor_plots = [
        _plot("heatmap", "Heat map", "Seconds spent per floor cell by the run's visitors, "
              "with the zones and counting lines. As on the status page: the positions of "
              "built visits only, a person the tracker split into several ids counted once "
              f"({data.heat.visitors} people on the map).", plots.heatmap(data.heat, site.floor)),
        _plot("trajectories", "Movement paths", "Each track's floor path. Per-person data: this "
              "is why the report stays local.", plots.trajectories(data.paths, site.floor)),
    ]
    visit_plots = [
        _plot("zone-dwell", "Dwell per zone", "Per zone, each visit's dwell in seconds.",
              plots.zone_dwell(data.zone_dwell, labels)),
        _plot("footfall", "Footfall", "Entrance-line crossings per time bin and people tracked "
              "per frame.", plots.footfall(data)),
        _plot("mix", "Trait and segment mix", "Visits showing each trait and segment at "
              "probability 0.5 or more.", plots.mix(data.traits, data.segments, data.visits)),
    ]
    wifi_plot = None
    if data.wifi:
        wifi_plot = _plot("wifi", "Wi-Fi estimate", "Occupancy estimate and in-store devices "
                          "per window, from probe requests.", plots.wifi(data))
    accuracy_plot = None
    if accuracy is not None and accuracy.dwell_pairs:
        accuracy_plot = _plot("dwell-accuracy", "Dwell accuracy", "Each point is one "
                              "ground-truth person in one zone.",
                              plots.dwell_accuracy(accuracy.dwell_pairs))
    figures = data.figures()
    labels = figure_labels(figures, site)
    accuracy_figures = accuracy.figures() if accuracy is not None else {}
    tz = ZoneInfo(site.site.timezone)
    moment = (generated or dt.datetime.now(tz)).astimezone(tz)
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True, undefined=jinja2.StrictUndefined
    )
    environment.filters["shown"] = _shown
    payload = {"figures": figures, "accuracy": accuracy_figures,
               "plots": [p.id for p in floor_plots + visit_plots + [wifi_plot, accuracy_plot]
                         if p is not None]}
    return environment.get_template("report.html").render(
        site_name=site.site.name or site.site.id, site_id=site.site.id, run=data.run,
        generated=moment.strftime("%Y-%m-%d %H:%M:%S %Z"), figures=figures, labels=labels,
        floor_plots=floor_plots, visit_plots=visit_plots, wifi_plot=wifi_plot,
        accuracy=accuracy, accuracy_figures=accuracy_figures, accuracy_plot=accuracy_plot,
        payload=_json_for_script(payload),
    )


def figure_labels(figures: dict, site: SiteConfig) -> dict[str, str]:
    """What the report's table shows for each figure: a zone by its name, as the plots
    show it (the key, kept in ``data-figure`` and the JSON, still has the id)."""
    zones = {zone.id: zone.label for zone in site.floor.zones}
    stats = {"visits": "visits", "median_dwell_s": "median dwell (s)"}
    labels = {}
    for name in figures:
        kind, _, rest = name.partition(".")
        zone, _, stat = rest.rpartition(".")
        if kind == "zone" and zone in zones and stat in stats:
            labels[name] = f"{zones[zone]}: {stats[stat]}"
        else:
            labels[name] = name
    return labels


def write_report(
    path: Path,
    db: sqlite_utils.Database,
    site: SiteConfig,
    run_id: int,
    accuracy: Accuracy | None = None,
    *,
    wifi_sensors: list[str] | None = None,
) -> ReportData:
    """Collect, render and write the report of ``run_id``; returns what it showed."""
    data = collect(db, site, run_id, wifi_sensors=wifi_sensors)
    write_text_whole(path, render(data, site, accuracy), "report")
    return data
