"""Counting lines and zones laid at random over a site, measured against ground truth.

The demo's one entrance line says little about counting elsewhere: a line placed
where people pass each other, or where tracks hand over between ids, behaves
differently. Random layouts (fixed seeds, so figures repeat) put many lines and
zones across the area the camera sees and score them with the same evaluator as
the demo's own layout (:func:`edge.evaluation.visits.evaluate_visits`):

* lines: horizontal and vertical in turn, ``line_length_m`` long, with a random
  inside side, inside the camera's floor area and the area people were annotated
  in, at least ``margin_m`` from its edge (where tracks begin and end, as
  docs/visits.md asks of real lines);
* zones: axis-aligned rectangles ``zone_size_m`` on a side, in the same area.

Crossings are matched per line and direction within a time tolerance; dwell per
(person, zone) as for the demo site.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import sqlite_utils
from shapely.geometry import LineString, MultiPoint, Polygon, box

from edge.config import SiteConfig
from edge.config.floor import LineConfig, ZoneConfig
from edge.evaluation.visits import (
    evaluate_visits,
    latest_run_id,
    match_crossings,
    measure_side,
    read_tracks,
)
from edge.motformat import read_mot

DEFAULT_SEEDS = (1, 2)


@dataclass(frozen=True, slots=True)
class Layout:
    """One random layout: its seed, counting lines and zones."""

    seed: int
    lines: tuple[LineConfig, ...]
    zones: tuple[ZoneConfig, ...]


@dataclass(frozen=True, slots=True)
class LayoutEvaluation:
    """Figures over all layouts (``metrics``) and the per-line, per-seed counts."""

    metrics: dict[str, float | int]
    lines: list[dict[str, object]]


def placement_area(site: SiteConfig, gt_xy: np.ndarray, margin_m: float) -> Polygon:
    """Where random lines and zones may go: inside the first camera's ``floor_area``
    (or the floor bounds) and the hull of the ground-truth positions, shrunk by
    ``margin_m``."""
    floor_area = next((c.floor_area for c in site.cameras if c.floor_area), None)
    (x0, y0), (x1, y1) = site.floor.bounds
    area = Polygon(floor_area) if floor_area else box(x0, y0, x1, y1)
    seen = MultiPoint([tuple(p) for p in np.asarray(gt_xy, float).tolist()]).convex_hull
    shrunk = area.intersection(seen).buffer(-margin_m)
    if shrunk.is_empty or not isinstance(shrunk, Polygon):
        raise ValueError(f"no room for random lines {margin_m} m inside the seen floor area")
    return shrunk


def random_layout(
    area: Polygon,
    seed: int,
    *,
    n_lines: int = 24,
    n_zones: int = 12,
    line_length_m: tuple[float, float] = (2.0, 5.0),
    zone_size_m: tuple[float, float] = (2.0, 5.0),
) -> Layout:
    """``n_lines`` lines and ``n_zones`` rectangles inside ``area``, from ``seed``."""
    rng = np.random.default_rng(seed)
    x0, y0, x1, y1 = area.bounds
    lines: list[LineConfig] = []
    while len(lines) < n_lines:
        centre = rng.uniform((x0, y0), (x1, y1))
        half = rng.uniform(*line_length_m) / 2
        step = np.array([half, 0.0]) if len(lines) % 2 == 0 else np.array([0.0, half])
        start, end = centre - step, centre + step
        if not area.contains(LineString([start, end])):
            continue
        lines.append(LineConfig(
            id=f"line-{len(lines):02d}", kind="entrance",
            start=(round(float(start[0]), 2), round(float(start[1]), 2)),
            end=(round(float(end[0]), 2), round(float(end[1]), 2)),
            inside="left" if rng.random() < 0.5 else "right",
        ))
    zones: list[ZoneConfig] = []
    while len(zones) < n_zones:
        corner = rng.uniform((x0, y0), (x1, y1))
        far = corner + rng.uniform(*zone_size_m, size=2)
        if not area.contains(box(*corner, *far)):
            continue
        (a, b), (c, d) = np.round(corner, 2).tolist(), np.round(far, 2).tolist()
        zones.append(ZoneConfig(id=f"zone-{len(zones):02d}", kind="product",
                                polygon=[(a, b), (c, b), (c, d), (a, d)]))
    return Layout(seed, tuple(lines), tuple(zones))


def with_layout(site: SiteConfig, layout: Layout) -> SiteConfig:
    """The site with its zones and lines replaced by the layout's."""
    floor = site.floor.model_copy(update={"zones": list(layout.zones),
                                          "lines": list(layout.lines)})
    return site.model_copy(update={"floor": floor})


def _extended(line: LineConfig, by_m: float) -> LineConfig:
    start, end = np.asarray(line.start, float), np.asarray(line.end, float)
    step = (end - start) / np.hypot(*(end - start)) * by_m
    return line.model_copy(update={"start": tuple((start - step).tolist()),
                                   "end": tuple((end + step).tolist())})


def evaluate_layouts(
    site: SiteConfig,
    gt_path: str | np.ndarray,
    db: sqlite_utils.Database,
    *,
    run_id: int | None = None,
    seeds: tuple[int, ...] = DEFAULT_SEEDS,
    margin_m: float = 2.0,
    n_lines: int = 24,
    n_zones: int = 12,
    crossing_tolerance_s: float = 2.0,
    line_end_tolerance_m: float = 0.5,
) -> LayoutEvaluation:
    """Crossing recall/precision and zone dwell error of a replay over random layouts.

    A random line's ends lie in open floor, where people walk round them: a person
    passing 0.1 m inside an end and their track 0.1 m outside it is a floor-position
    error, not a counting one. So a true crossing is recalled by a measured crossing
    of the line lengthened by ``line_end_tolerance_m`` at both ends, and a measured
    crossing is correct when it matches a true crossing of the lengthened line (as
    ``crossing_tolerance_s`` does in time).

    Figures are given per seed (``seed<N>.…``) and over all seeds together.

    Raises:
        DataFormatError: as :func:`edge.evaluation.visits.evaluate_visits`.
    """
    if run_id is None:
        run_id = latest_run_id(db)
    rows = gt_path if isinstance(gt_path, np.ndarray) else read_mot(gt_path, min_columns=9)
    fps, gt_tracks, rec_tracks = read_tracks(site, rows, db, run_id)
    gt_xy = np.vstack(list(gt_tracks[1].values()))
    area = placement_area(site, gt_xy, margin_m)
    metrics: dict[str, float | int] = {}
    per_line: list[dict[str, object]] = []
    errors: list[float] = []
    for seed in seeds:
        layout = random_layout(area, seed, n_lines=n_lines, n_zones=n_zones)
        longer = Layout(seed, tuple(_extended(line, line_end_tolerance_m)
                                    for line in layout.lines), ())
        exact, lengthened = with_layout(site, layout), with_layout(site, longer)
        gt = measure_side(exact, *gt_tracks, fps).crossings
        gt_long = measure_side(lengthened, *gt_tracks, fps).crossings
        rec = measure_side(exact, *rec_tracks, fps).crossings
        rec_long = measure_side(lengthened, *rec_tracks, fps).crossings
        rows_of_seed = []
        for line in layout.lines:
            def on(found: list, line_id: str = line.id) -> list:
                return [c for c in found if c[1].line_id == line_id]
            rows_of_seed.append({
                "seed": seed, "line_id": line.id,
                "gt": len(on(gt)), "measured": len(on(rec)),
                "recalled": match_crossings(on(gt), on(rec_long), crossing_tolerance_s),
                "correct": match_crossings(on(gt_long), on(rec), crossing_tolerance_s),
            })
        per_line += rows_of_seed
        metrics.update(_line_figures(f"seed{seed}.", rows_of_seed))
        zones_only = with_layout(site, Layout(seed, (), layout.zones))
        report = evaluate_visits(zones_only, rows, db, run_id=run_id)
        errors += [float(p["rel_error"]) for p in report.pairs  # type: ignore[arg-type]
                   if p["rel_error"] is not None]
        metrics[f"seed{seed}.dwell_median_rel_error"] = report.metrics["dwell_median_rel_error"]
        metrics[f"seed{seed}.dwell_pairs"] = report.metrics["dwell_pairs"]
    metrics.update(_line_figures("", per_line))
    rel = np.asarray(errors, dtype=float)
    metrics["dwell_pairs"] = int(len(rel))
    metrics["dwell_median_rel_error"] = float(np.median(rel)) if len(rel) else float("nan")
    metrics["dwell_p90_rel_error"] = float(np.percentile(rel, 90)) if len(rel) else float("nan")
    return LayoutEvaluation(metrics, per_line)


def _line_figures(prefix: str, rows: list[dict[str, object]]) -> dict[str, float | int]:
    def total(key: str) -> int:
        return sum(int(row[key]) for row in rows)  # type: ignore[call-overload]

    gt, measured = total("gt"), total("measured")
    return {
        f"{prefix}lines": len(rows),
        f"{prefix}lines_crossed": sum(1 for row in rows if row["gt"]),
        f"{prefix}gt_crossings": gt,
        f"{prefix}measured_crossings": measured,
        f"{prefix}crossing_recall": total("recalled") / gt if gt else float("nan"),
        f"{prefix}crossing_precision": total("correct") / measured if measured else float("nan"),
    }
