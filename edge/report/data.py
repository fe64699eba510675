"""What the report shows, read from the database of one replay run.

Each figure is read with one SQL query over the stored tables (track_points,
visits and their dwell, traits and segments, line_crossings, wifi_windows), so a
test can recompute it independently. The heat map is the status page's
(:mod:`edge.web.heatcells`): time and people per floor cell from the positions of the
run's built visits, a person the tracker split into several track ids counted once, so
the report and the page agree on a replay. Trajectories are the only per-person data
and stay in the local report.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np
import sqlite_utils

from edge.config import SiteConfig
from edge.errors import DataFormatError
from edge.figures import TRAIT_THRESHOLD
from edge.storage.trajectories import read_trajectories, require_run
from edge.web.heatcells import run_cells


@dataclass(frozen=True, slots=True)
class RunInfo:
    """One replay run, as the ``runs`` table holds it."""

    id: int
    camera_id: str
    source: str
    model: str
    frames: int
    status: str
    first_t: float | None
    last_t: float | None


@dataclass(frozen=True, slots=True)
class Heat:
    """Seconds spent per floor cell, ``dwell_s[row, col]`` with row = y, col = x, and the
    people (visits) who spent them, ``people[row, col]``; ``visitors`` is the people with
    any time on the map."""

    x0: float
    y0: float
    cell_m: float
    dwell_s: np.ndarray
    people: np.ndarray
    visitors: int


@dataclass(frozen=True, slots=True)
class ReportData:
    """Everything the report draws and prints for one run."""

    run: RunInfo
    track_points: int
    tracks: int
    heat: Heat
    paths: list[tuple[int, np.ndarray]]  # (track id, (n, 2) floor metres)
    zone_dwell: dict[str, list[float]]   # zone id -> per-visit dwell seconds (> 0)
    visits: int
    median_visit_s: float | None
    crossings: list[tuple[float, str, str]]  # (t, line id, direction)
    people_over_time: tuple[np.ndarray, np.ndarray]  # (t, distinct tracks per frame)
    traits: dict[str, tuple[int, float]]    # trait -> (visits at p >= 0.5, mean p)
    segments: dict[str, tuple[int, float]]
    # sensor -> (window start, in-store devices, probe frames, occupancy estimate)
    wifi: dict[str, list[tuple[float, int, int, float]]] = field(default_factory=dict)
    wifi_window_s: int | None = None

    def figures(self) -> dict[str, float | int | None]:
        """The headline numbers, name -> value (the report's table and JSON)."""
        ins = sum(1 for _, _, d in self.crossings if d == "in")
        figures: dict[str, float | int | None] = {
            "run_id": self.run.id,
            "frames": self.run.frames,
            "track_points": self.track_points,
            "tracks": self.tracks,
            "visits": self.visits,
            "median_visit_s": _round(self.median_visit_s),
            "line_crossings_in": ins,
            "line_crossings_out": len(self.crossings) - ins,
            "heatmap_cells": int(np.count_nonzero(self.heat.dwell_s)),
            "heatmap_total_s": _round(float(self.heat.dwell_s.sum())),
            "heatmap_people": self.heat.visitors,
            "heatmap_most_people_in_a_cell": int(self.heat.people.max(initial=0)),
        }
        for zone, dwell in self.zone_dwell.items():
            figures[f"zone.{zone}.visits"] = len(dwell)
            figures[f"zone.{zone}.median_dwell_s"] = _round(float(np.median(dwell)))
        for kind, mix in (("trait", self.traits), ("segment", self.segments)):
            for name, (count, _) in mix.items():
                figures[f"{kind}.{name}.visits"] = count
        for sensor, rows in self.wifi.items():
            figures[f"wifi.{sensor}.windows"] = len(rows)
            figures[f"wifi.{sensor}.max_occupancy_estimate"] = _round(max(r[3] for r in rows))
        return figures


def _round(value: float | None, digits: int = 2) -> float | None:
    return None if value is None else round(float(value), digits)


def read_run(db: sqlite_utils.Database, run_id: int) -> RunInfo:
    """The run's row, with the time span of its track points."""
    if "runs" not in db.table_names():
        raise DataFormatError("the database holds no replay runs; run `edge replay` first")
    require_run(db, run_id)
    row = db.execute(
        "select id, camera_id, source, model, frames, status from runs where id = ?", [run_id]
    ).fetchone()
    first, last = db.execute(
        "select min(t), max(t) from track_points where run_id = ?", [run_id]
    ).fetchone()
    return RunInfo(int(row[0]), row[1], row[2], row[3], int(row[4] or 0), row[5], first, last)


def read_heat(db: sqlite_utils.Database, site: SiteConfig, run_id: int) -> Heat:
    """Dwell seconds and people per floor cell of one run, by the status page's rule
    (:func:`edge.web.heatcells.run_cells`): the positions of the run's built visits,
    each person once however many track pieces; associates, fragments too short to be a
    visit and tracks not built into a visit count for no one."""
    (x0, y0), (x1, y1) = site.floor.bounds
    cell = site.floor.heatmap_cell_m
    cols, rows = int(np.ceil((x1 - x0) / cell)), int(np.ceil((y1 - y0) / cell))
    grid = np.zeros((rows, cols))
    people = np.zeros((rows, cols), dtype=np.int64)
    found = (run_cells(db.conn, run_id, site.floor) if "visit_pieces" in db.table_names()
             else None)
    for (cx, cy), figures in (found.cells.items() if found else ()):
        if 0 <= cy < rows and 0 <= cx < cols and figures.dwell_s > 0:
            grid[cy, cx] = figures.dwell_s
            people[cy, cx] = figures.people
    return Heat(x0, y0, cell, grid, people, found.people if found else 0)


def _mix(db: sqlite_utils.Database, table: str, column: str, run_id: int) -> dict:
    if table not in db.table_names():
        return {}
    return {
        name: (int(count or 0), float(mean))
        for name, count, mean in db.execute(
            f"select m.{column}, sum(m.probability >= ?), avg(m.probability) from {table} m "
            f"join visits v on v.visit_id = m.visit_id where v.run_id = ? "
            f"group by m.{column} order by m.{column}",
            [TRAIT_THRESHOLD, run_id],
        )
    }


def read_wifi(
    db: sqlite_utils.Database, sensors: list[str] | None = None
) -> tuple[dict[str, list[tuple[float, int, int, float]]], int | None]:
    """Stored Wi-Fi windows per sensor, of one window length.

    The 15-minute windows when there are enough of them to draw a curve (8), else the
    shortest length stored.
    """
    if "wifi_windows" not in db.table_names():
        return {}, None
    lengths = dict(db.execute("select window_s, count(*) from wifi_windows group by window_s"))
    if not lengths:
        return {}, None
    window_s = 900 if lengths.get(900, 0) >= 8 else min(lengths)
    out: dict[str, list[tuple[float, int, int, float]]] = defaultdict(list)
    for start, sensor, devices, frames, occupancy in db.execute(
        "select window_start, sensor, in_store_devices, frames, occupancy_estimate "
        "from wifi_windows where window_s = ? order by sensor, window_start", [window_s]
    ):
        if sensors is None or sensor in sensors:
            out[sensor].append((float(start), int(devices), int(frames), float(occupancy)))
    return dict(out), (window_s if out else None)


def collect(
    db: sqlite_utils.Database,
    site: SiteConfig,
    run_id: int,
    *,
    wifi_sensors: list[str] | None = None,
) -> ReportData:
    """Read everything the report needs about ``run_id``.

    Args:
        db: the replay's database.
        site: the site (floor plan, zones, lines).
        run_id: the run to report.
        wifi_sensors: only these Wi-Fi sensors (default: every stored one).
    """
    run = read_run(db, run_id)
    points, tracks = db.execute(
        "select count(*), count(distinct track_id) from track_points where run_id = ?", [run_id]
    ).fetchone()
    paths = [(t.track_id, t.xy) for t in read_trajectories(db, run_id=run_id)]
    tables = set(db.table_names())
    zone_dwell: dict[str, list[float]] = {}
    visits, median_visit = 0, None
    crossings: list[tuple[float, str, str]] = []
    if {"visits", "visit_zone_dwell"} <= tables:
        for zone, dwell in db.execute(
            "select d.zone_id, d.dwell_s from visit_zone_dwell d join visits v "
            "on v.visit_id = d.visit_id where v.run_id = ? and d.dwell_s > 0 order by d.rowid",
            [run_id],
        ):
            zone_dwell.setdefault(zone, []).append(float(dwell))
        order = [z.id for z in site.floor.zones]
        zone_dwell = dict(sorted(zone_dwell.items(),
                                 key=lambda kv: (kv[0] not in order, order.index(kv[0])
                                                 if kv[0] in order else 0, kv[0])))
        durations = [r[0] for r in db.execute(
            "select duration_s from visits where run_id = ?", [run_id])]
        visits = len(durations)
        median_visit = float(np.median(durations)) if durations else None
    if "line_crossings" in tables:
        crossings = [(float(t), line, direction) for t, line, direction in db.execute(
            "select t, line_id, direction from line_crossings where run_id = ? order by t",
            [run_id])]
    per_frame = np.array(db.execute(
        "select t, count(distinct track_id) from track_points where run_id = ? "
        "group by frame order by frame", [run_id]).fetchall(), dtype=np.float64).reshape(-1, 2)
    wifi, window_s = read_wifi(db, wifi_sensors)
    return ReportData(
        run=run,
        track_points=int(points),
        tracks=int(tracks),
        heat=read_heat(db, site, run_id),
        paths=paths,
        zone_dwell=zone_dwell,
        visits=visits,
        median_visit_s=median_visit,
        crossings=crossings,
        people_over_time=(per_frame[:, 0], per_frame[:, 1]),
        traits=_mix(db, "visit_traits", "trait", run_id),
        segments=_mix(db, "visit_segments", "segment", run_id),
        wifi=wifi,
        wifi_window_s=window_s,
    )
