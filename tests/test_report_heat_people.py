"""The replay report's heat map counts people as the status page does, not track ids.

The status page's heat map was fixed to count people as stitched visits
(tests/test_web_heatmap_people.py, review r07), while the engineers' report kept its own
query over every track point: a shopper the tracker lost and picked up six times was six
tracks' worth of positions, and positions no visit was built from (a track still open)
counted too, so the report and the page told two stories about one replay. Both now
count with edge.web.heatcells.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edge.config import load_site
from edge.report.data import collect
from edge.runtime.schema import open_database
from edge.visits.analysis import VisitAnalyzer
from edge.visits.builder import build_visits
from edge.web.heatcells import cells_from_scratch
from tests.conftest import PETS_SITE
from tests.support.heat_support import HZ, T0, shopper_in_pieces

PIECES = 6
PER_PIECE_S = (20 * HZ - 1) / HZ  # each point holds until its piece's next: 139 gaps of 1/7 s


@pytest.fixture(scope="module")
def site():
    return load_site(PETS_SITE)


def replay_db(tmp_path: Path, site, shoppers: int) -> Path:
    """A replay run: ``shoppers`` people one after another, each in 6 track pieces, built
    into visits by the real builder; then a track still open (not built into a visit)."""
    path = tmp_path / "edge.db"
    db = open_database(path)
    db["runs"].insert({"id": 1, "camera_id": "view001", "source": "asset:pets09_s2l1_view001",
                       "model": "m", "started_at": T0, "ended_at": T0 + 3600, "frames": 100,
                       "status": "done", "kind": "replay"}, alter=True)
    rows = []
    for n in range(shoppers):
        rows += shopper_in_pieces(1, 1 + 10 * n, T0 + 300 * n, (-6.5, -7.5))
    db["track_points"].insert_all(rows)
    build_visits(db, VisitAnalyzer(site))
    # Written after the build: someone still in view, in no visit yet.
    db["track_points"].insert_all(
        {**row, "track_id": 999} for row in shopper_in_pieces(1, 999, T0 + 2000, (-6.5, -7.5))
        if row["track_id"] == 999)
    db.conn.commit()
    db.close()
    return path


def report_heat(path: Path, site):
    db = open_database(path)
    try:
        return collect(db, site, 1)
    finally:
        db.close()


def test_one_person_in_six_track_pieces_is_one_person_on_the_report_heat_map(site, tmp_path):
    data = report_heat(replay_db(tmp_path, site, shoppers=1), site)
    figures = data.figures()
    assert figures["tracks"] == PIECES + 1 and figures["visits"] == 1
    # The six pieces' time, and none of the track not built into a visit (it counted).
    assert figures["heatmap_total_s"] == pytest.approx(PIECES * PER_PIECE_S, abs=0.01)
    assert figures["heatmap_people"] == 1
    assert figures["heatmap_most_people_in_a_cell"] == 1
    assert data.heat.people.max() == 1


def test_two_people_in_twelve_pieces_are_two(site, tmp_path):
    figures = report_heat(replay_db(tmp_path, site, shoppers=2), site).figures()
    assert figures["tracks"] == 2 * PIECES + 1 and figures["visits"] == 2
    assert figures["heatmap_people"] == 2 and figures["heatmap_most_people_in_a_cell"] == 2


def test_the_report_and_the_status_page_agree_on_a_replay(site, tmp_path):
    path = replay_db(tmp_path, site, shoppers=2)
    heat = report_heat(path, site).heat
    db = open_database(path)
    try:
        page = cells_from_scratch(db.conn, T0 - 3600, T0 + 86400, site.floor)
    finally:
        db.close()
    cells = [(int(cx), int(cy)) for cy, cx in zip(*np.nonzero(heat.dwell_s), strict=True)]
    assert sorted(cells) == sorted(cell for cell, f in page.items() if f.dwell_s > 0)
    for cx, cy in cells:
        assert heat.people[cy, cx] == page[(cx, cy)].people
        assert heat.dwell_s[cy, cx] == pytest.approx(page[(cx, cy)].dwell_s)
