"""The busy-day part of ``scripts/bench_web.py --busy N``: a store day of N raw positions
(7 a second, 10-minute visits, 08:00-20:00, three associates all day; every third visit
stitched from two track ids), built once into a database file and reused, then the cost
of what a refresh asks for, in-process, each as a ratio to the day's summary with its
heat map computed from scratch, measured in the same run (the review's r03/r10 setup,
with the visits built)."""

from __future__ import annotations

import datetime as dt
import sqlite3
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np

from edge.config import SiteConfig
from edge.runtime.schema import open_database
from edge.web import queries
from edge.web.dashboard import Dashboard, WebDeps
from edge.web.dbread import table_names
from edge.web.queries import DayWindow

DAY = dt.date(2026, 12, 2)
HZ, VISIT_S = 7.0, 600.0


def at(hour: int, minute: int = 0) -> float:
    return dt.datetime.combine(DAY, dt.time(hour, minute), ZoneInfo("Europe/London")).timestamp()


def build(path: Path, positions: int) -> None:
    """The busy day (skipped when ``path`` exists: building 3 M positions takes minutes)."""
    if path.exists():
        return
    db = open_database(path)
    db.table("runs").insert({"id": 1, "camera_id": "store", "source": "live", "model": "m",
                       "started_at": at(8), "status": "running", "kind": "live"}, alter=True)
    db.close()
    conn = sqlite3.connect(path)
    rng = np.random.default_rng(1)
    per_track = int(HZ * VISIT_S)
    rows: list[tuple] = []
    visits, pieces = [], []
    for visit in range(positions // per_track):
        t = rng.uniform(at(8), at(20) - VISIT_S) + np.arange(per_track) / HZ
        x = np.clip(np.cumsum(rng.normal(0, 0.05, per_track)) + rng.uniform(-15, 5), -17, 7)
        y = np.clip(np.cumsum(rng.normal(0, 0.05, per_track)) + rng.uniform(-12, 3), -12, 4)
        track = np.full(per_track, visit)
        if visit % 3 == 0:
            track[per_track // 2:] = 100_000 + visit   # lost once, picked up as a new id
        rows += [(1, "store", int(track[i]), i, float(t[i]), float(x[i]), float(y[i]))
                 for i in range(per_track)]
        vid = f"{visit:032x}"
        visits.append((vid, "bench", "store", 1, visit, float(t[0]), float(t[-1]),
                       float(t[-1] - t[0]), 0.0, 0, "{}", "[]", "bench"))
        for tid in np.unique(track):
            mine = t[track == tid]
            pieces.append((vid, 1, "store", int(tid), float(mine[0]), float(mine[-1])))
        if len(rows) > 500_000:
            conn.executemany("insert into track_points (run_id, camera_id, track_id, frame, t, "
                             "x, y) values (?,?,?,?,?,?,?)", rows)
            rows = []
    conn.executemany("insert into track_points (run_id, camera_id, track_id, frame, t, x, y) "
                     "values (?,?,?,?,?,?,?)", rows)
    conn.executemany("insert into visits (visit_id, site_id, camera_id, run_id, track_id, "
                     "start_t, end_t, duration_s, path_length_m, checkout_visited, features, "
                     "zone_sequence, spec_version) values (?,?,?,?,?,?,?,?,?,?,?,?,?)", visits)
    conn.executemany("insert into visit_pieces (visit_id, run_id, camera_id, track_id, start_t, "
                     "end_t) values (?,?,?,?,?,?)", pieces)
    conn.executemany("insert into staff_visits (visit_id, camera_id, run_id, track_id, start_t, "
                     "end_t) values (?,?,?,?,?,?)",
                     [(f"s{i}", "store", 1, 10**6 + i, at(8), at(20)) for i in range(3)])
    conn.commit()
    conn.close()


def _timed(action: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        action()
        times.append(time.perf_counter() - began)
    return statistics.median(times)


def measure(site: SiteConfig, path: Path, repeat: int = 3) -> dict[str, float]:
    """Seconds of each, and each as a ratio to the from-scratch summary."""
    deps = WebDeps(site=site, db_path=path, clock=lambda: at(20, 5))
    figures: dict[str, float] = {}
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        figures["positions"] = conn.execute("select count(*) from track_points").fetchone()[0]
        figures["visits"] = conn.execute("select count(*) from visits").fetchone()[0]
        tables = table_names(conn)
        window = DayWindow.of(DAY, ZoneInfo(site.site.timezone))
        figures["heatmap_from_scratch_s"] = _timed(lambda: queries.heatmap(
            conn, tables, window, site.floor, 5, kept_since=0, kept_hours=24,
            tz=ZoneInfo(site.site.timezone)), 1)

    def from_scratch() -> None:  # the baseline: a fresh page, nothing kept
        Dashboard(deps).summary()
    figures["summary_from_scratch_s"] = _timed(from_scratch, 1)
    dashboard = Dashboard(deps)
    dashboard.summary()                       # the first refresh after the page starts

    def refresh() -> None:
        dashboard._cache.clear()              # cache_s expired: the figures are read again
        dashboard.summary()
    figures["summary_refresh_s"] = _timed(refresh, repeat)

    def now_figure(name: str) -> Callable[[], object]:
        def read() -> object:
            dashboard._now.clear()
            return dashboard.occupancy() if name == "occupancy" else dashboard.health()
        return read
    figures["occupancy_s"] = _timed(now_figure("occupancy"), repeat)
    figures["health_s"] = _timed(now_figure("health"), repeat)
    base = figures["summary_from_scratch_s"]
    for name in ("heatmap_from_scratch", "summary_refresh", "occupancy", "health"):
        figures[f"{name}_ratio_to_from_scratch"] = round(figures[f"{name}_s"] / base, 4)
    return {name: round(value, 4) for name, value in figures.items()}
