"""A busy day's page stays cheap: the heat map is kept per built visit, and the "now"
figures are not computed through the day's summary.

Field review (r03, r10): on a day of 3.0 M positions one summary took 11.7 s (the heat
map 16.5 s on its own), and /api/v1/occupancy 11.4 s and /api/v1/health 11.1 s: every
request rebuilt the whole summary, heat map included, once the 2 s cache had expired,
so with tablets refreshing every 15 s the box computed the heat map nearly all the time.
"""

from __future__ import annotations

import sqlite3
from zoneinfo import ZoneInfo

from fastapi.testclient import TestClient

from edge.runtime.schema import open_database
from edge.visits.analysis import VisitAnalyzer
from edge.visits.builder import build_visits
from edge.web.app import create_app
from edge.web.dashboard import WebDeps
from edge.web.heatcells import HeatCellCache, cells_from_scratch
from edge.web.queries import DayWindow
from tests.support.heat_support import DAY, T0, shopper_in_pieces
from tests.test_web_heatmap_people import site, store  # noqa: F401


def test_kept_heat_map_equals_the_one_from_scratch(site, tmp_path):  # noqa: F811
    """Read, then more visits built, then read again with the start cut mid-visit (the
    retention purge's edge): the kept figures are the from-scratch ones, and the second
    read computes only the new visits' pieces and the one cut."""
    path = store(tmp_path, site, shoppers=5)
    cache = HeatCellCache()
    window = DayWindow.of(DAY, ZoneInfo(site.site.timezone))
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    assert cache.cells(conn, window.start, window.end, site.floor) == cells_from_scratch(
        conn, window.start, window.end, site.floor)
    assert cache.computed == 30
    conn.close()

    db = open_database(path)
    db["runs"].insert({"id": 2, "camera_id": "view001", "source": "live", "model": "m",
                       "started_at": T0 + 4000, "ended_at": T0 + 6000, "status": "done",
                       "kind": "live"}, alter=True)
    rows = []
    for n in range(3):
        rows += shopper_in_pieces(2, 100 + 10 * n, T0 + 4000 + 300 * n, (1.0, 2.0))
    db["track_points"].insert_all(rows)
    build_visits(db, VisitAnalyzer(site))
    db.close()

    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    start = T0 + 300 + 30.0  # inside the second shopper's first piece
    for begin in (window.start, start):
        cache.computed = 0
        kept = cache.cells(conn, begin, window.end, site.floor)
        assert kept == cells_from_scratch(conn, begin, window.end, site.floor)
        assert cache.computed == (18 if begin == window.start else 1)


def test_now_endpoints_do_not_compute_the_days_summary(site, tmp_path):  # noqa: F811
    path = store(tmp_path, site, shoppers=5)
    app = create_app(WebDeps(site=site, db_path=path, clock=lambda: T0 + 7200))
    with TestClient(app, base_url="http://localhost") as web:
        dashboard = app.state.web.dashboard
        occupancy = web.get("/api/v1/occupancy")
        health = web.get("/api/v1/health")
        metrics = web.get("/metrics")
        assert occupancy.status_code == health.status_code == metrics.status_code == 200
        assert dashboard.computed == 0, "a figure of now computed the whole day's summary"
        summary = web.get("/api/v1/summary").json()
    # the same figures as the summary's
    assert occupancy.json() == summary["occupancy"]
    assert health.json()["components"] == summary["health"]["components"]
