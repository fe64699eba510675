"""The heat map's "k people per square" counts people, not the tracker's pieces of them.

Field review (r07): one shopper alone, standing two minutes at the premium table, lost
by the tracker six times (occlusion) and picked up under a new track id each time. The
visits builder stitched the six pieces into one visit and the page said 1 visitor and
hid every zone, yet the heat map showed the square at (-7, -8) with 119 s: it counted 6
track ids there, at or above k = 5.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from edge.config import load_site
from edge.runtime.schema import open_database
from edge.visits.analysis import VisitAnalyzer
from edge.visits.builder import build_visits
from edge.web.app import create_app
from edge.web.dashboard import WebDeps
from tests.conftest import PETS_SITE
from tests.support.heat_support import HZ, T0, shopper_in_pieces
from tests.support.web_support import with_web


@pytest.fixture(scope="module")
def site():
    return with_web(load_site(PETS_SITE), access="open-lan", cache_s=0)


def store(tmp_path: Path, site, shoppers: int) -> Path:
    """``shoppers`` shoppers one after another at the premium table, each in 6 pieces,
    built into visits by the real builder."""
    path = tmp_path / "edge.db"
    db = open_database(path)
    db["runs"].insert({"id": 1, "camera_id": "view001", "source": "live", "model": "m",
                       "started_at": T0, "ended_at": T0 + 3600, "status": "done",
                       "kind": "live"}, alter=True)
    rows = []
    for n in range(shoppers):
        rows += shopper_in_pieces(1, 1 + 10 * n, T0 + 300 * n, (-6.5, -7.5))
    db["track_points"].insert_all(rows)
    build_visits(db, VisitAnalyzer(site))
    db.close()
    return path


def heat(site, path: Path) -> tuple[dict, dict]:
    app = create_app(WebDeps(site=site, db_path=path, clock=lambda: T0 + 7200))
    with TestClient(app, base_url="http://localhost") as web:
        return web.get("/api/v1/heatmap").json(), web.get("/api/v1/footfall").json()


def test_one_shopper_split_by_the_tracker_shows_no_square(site, tmp_path):
    path = store(tmp_path, site, shoppers=1)
    hm, ff = heat(site, path)
    assert ff["total"] == 1
    assert hm["cells"] == [] and hm["max_dwell_s"] == 0
    assert hm["hidden_cells"] > 0
    conn = sqlite3.connect(path)
    assert conn.execute("select count(*) from visits").fetchone()[0] == 1
    # the builder records the six track pieces the one visit is made of
    assert conn.execute("select count(distinct track_id) from visit_pieces").fetchone()[0] == 6


def test_four_shoppers_in_24_pieces_are_four_people(site, tmp_path):
    """Fewer than k people, many more than k track ids: still blank."""
    hm, ff = heat(site, store(tmp_path, site, shoppers=4))
    assert ff["total"] == 4 and hm["min_people"] == 5
    assert hm["cells"] == []


def test_k_shoppers_in_pieces_show_their_square(site, tmp_path):
    hm, ff = heat(site, store(tmp_path, site, shoppers=5))
    assert ff["total"] == 5
    assert hm["cells"], "five people stood at the table: its squares show"
    # each point stands for the gap to its piece's next point: 1/7 s, 139 per piece
    total = sum(c["dwell_s"] for c in hm["cells"])
    assert total <= 5 * 6 * 139 / HZ + 0.1


def test_no_square_while_the_day_has_fewer_than_k_visits(site, tmp_path):
    """Five people in one square but a k of 6 (a downlinked override, or the config):
    the day's visits are below k, so nothing is drawn."""
    path = store(tmp_path, site, shoppers=5)
    strict = site.model_copy(update={"privacy": site.privacy.model_copy(
        update={"min_publishable_count": 6})})
    hm, ff = heat(strict, path)
    assert ff["total"] == 5 and hm["cells"] == []


def test_open_tracks_wait_until_built(site, tmp_path):
    """Positions of a track not built into a visit yet (still in view) count for no one:
    whether it continues someone already counted is not known yet."""
    path = store(tmp_path, site, shoppers=5)
    built, _ = heat(site, path)
    db = open_database(path)
    db["runs"].insert({"id": 2, "camera_id": "view001", "source": "live", "model": "m",
                       "started_at": T0 + 4000, "status": "running", "kind": "live"},
                      alter=True)
    db["track_points"].insert_all(shopper_in_pieces(2, 500, T0 + 4000, (-6.5, -7.5), pieces=1))
    db.close()
    assert heat(site, path)[0]["cells"] == built["cells"]
