"""The status page's figures agree with each other, or say why not (issue 18 #12).

One store day built row by row, as the services write it, with the numbers a store
reported: 21 visitors beside a door count of 17 in and 13 out, 11 visitors in Fitness
and none "drawn to fitness", an entrance nearly everyone crossed, 7 people in the
cameras' last frame, and the whole day from a replay of a recording.
"""

from __future__ import annotations

import datetime as dt
import re

import pytest
from fastapi.testclient import TestClient

from edge.config import load_site
from edge.runtime.schema import open_database
from edge.storage.trajectories import start_run
from edge.web.app import create_app
from edge.web.dashboard import WebDeps
from tests.conftest import PETS_SITE
from tests.support.web_support import BASE_URL, DAY, NOW, at, insert_rows, with_web

pytestmark = pytest.mark.system

TOKEN = "it-admin-token-0123456789"
VISITS = 21


@pytest.fixture(scope="module")
def site():
    return load_site(PETS_SITE)


def fill(path, *, kind: str = "replay") -> None:
    db = open_database(path)
    run = start_run(db, "store", "asset:pets09_s2l1_view001", "yolox_nano_416x416", kind=kind)
    visits, dwell, traits, crossings = [], [], [], []
    for i in range(VISITS):
        visit_id = f"v{i:02d}"
        start = at(DAY, dt.time(14, 0)) + 60 * i
        visits.append({
            "visit_id": visit_id, "site_id": "pets09-demo", "camera_id": "store", "run_id": run,
            "track_id": i, "start_t": start, "end_t": start + 40, "duration_s": 40.0,
            "path_length_m": 12.0, "checkout_visited": 0, "features": "{}",
            "zone_sequence": "[]", "spec_version": "1.0.0"})
        zones = ["entrance"] * (i < 19) + ["fitness"] * (i < 11) + ["kids-corner"] * (i < 2)
        dwell += [{"visit_id": visit_id, "zone_id": z, "dwell_s": 4.0, "entries": 1}
                  for z in zones]
        # Walking through Fitness for a few seconds is not being drawn to it.
        traits.append({"visit_id": visit_id, "trait": "affinity_fitness", "probability": 0.2})
        traits.append({"visit_id": visit_id, "trait": "wanderer",
                       "probability": 0.9 if i < 8 else 0.1})
    for i, direction in enumerate(["in"] * 17 + ["out"] * 13):
        crossings.append({"line_id": "front-door", "camera_id": "store", "run_id": run,
                          "track_id": i, "t": at(DAY, dt.time(14, 0)) + 30 * i,
                          "direction": direction})
    last = NOW - 600  # the recording ended ten minutes ago
    points = [{"run_id": run, "camera_id": "store", "track_id": i, "frame": 100, "t": last,
               "x": -10.0 + i, "y": -8.0, "left": 0, "top": 0, "width": 1, "height": 1,
               "confidence": 0.9} for i in range(7)]
    insert_rows(db, {"visits": visits, "visit_zone_dwell": dwell, "visit_traits": traits,
                     "line_crossings": crossings, "track_points": points})
    db.close()


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    path = tmp_path_factory.mktemp("field") / "edge.db"
    fill(path)
    return path


def client(site, path) -> TestClient:
    settings = with_web(site, cache_s=0, access="open-lan", admin_token=TOKEN)
    app = create_app(WebDeps(site=settings, db_path=path, clock=lambda: NOW))
    return TestClient(app, raise_server_exceptions=False, base_url=BASE_URL)


def page(site, path) -> str:
    with client(site, path) as web:
        return web.get("/", params={"day": DAY.isoformat()}).text


def test_the_last_moment_seen_is_not_shown_as_people_now(site, store):
    """Regression: a big "7 people" beside "No one has been seen since"."""
    html = page(site, store)
    assert 'class="big" data-figure="occupancy-people"' not in html
    assert 'data-figure="occupancy-now">No one seen right now<' in html
    assert '<strong data-figure="occupancy-people">7</strong> people were in view then' in html


def test_door_counter_and_visitors_are_reconciled_in_words(site, store):
    """Regression: 21 visitors beside a door count of 17 in / 13 out, unexplained."""
    html = page(site, store)
    assert 'data-figure="footfall-total">21<' in html
    words = re.search(r'data-figure="door-vs-visitors">(.*?)</p>', html, re.S).group(1)
    assert "4 more in than out: still inside, or left another way" in words
    assert "counted once they have left, whether or not they crossed that line" in words
    assert "21 visitors against 17 in is expected" in words


def test_drawn_to_an_area_is_told_apart_from_visiting_it(site, store):
    """Regression: "Drawn to fitness 0 (0%)" while 11 visitors were in Fitness."""
    html = page(site, store)
    assert re.search(r'data-zone="fitness"><td>Fitness</td>\s*<td>11</td>', html)
    assert re.search(r'data-trait="affinity_fitness"><td>Drawn to fitness</td>\s*<td>0</td>', html)
    assert "walking through an area does not count" in html


def test_hidden_figures_say_why(site, store):
    """Regression: the busiest area showed "hidden" with no word why."""
    html = page(site, store)
    assert re.search(r'data-zone="entrance">.*?data-reason="nearly_all">hidden: almost everyone '
                     r'went here<', html, re.S)
    assert re.search(r'data-zone="kids-corner">.*?data-reason="few">hidden: fewer than 5 '
                     r'visitors<', html, re.S)
    assert "A busy area such as the entrance is often hidden for that reason" in html
    # 8 wanderers is shown; the 13 others are no small group.
    assert re.search(r'data-trait="wanderer"><td>[^<]*</td>\s*<td>8</td>', html)
    with client(site, store) as web:
        zones = web.get("/api/v1/zones", params={"day": DAY.isoformat()}).json()["zones"]
    reasons = {z["zone_id"]: z["hidden_reason"] for z in zones}
    assert reasons["entrance"] == "nearly_all" and reasons["kids-corner"] == "few"
    assert reasons["fitness"] is None


def test_it_detail_is_on_the_admin_view_only(site, store):
    """Regression: the model name, spec version and bytes kept were on the associates'
    page; they are IT's (GET /admin/debug)."""
    html = page(site, store)
    for detail in ("yolox", "software version", "figures kept", "1.0.0"):
        assert detail not in html, detail
    with client(site, store) as web:
        debug = web.get("/admin/debug", headers={"Authorization": f"Bearer {TOKEN}"}).json()
    assert debug["model"] == "yolox_nano_416x416" and debug["spec_version"] == "1.0.0"
    assert debug["version"] and debug["database_bytes"] > 0


def test_figures_say_how_many_replays_they_include(site, store, tmp_path):
    """Regression: replays added up silently in the same database as live visitors."""
    html = page(site, store)
    notice = re.search(r'data-figure="replays">(.*?)</p>', html, re.S).group(1)
    assert notice.startswith("These figures include 1 replay of a recording")
    with client(site, store) as web:
        assert web.get("/api/v1/summary", params={"day": DAY.isoformat()}).json()["replays"] == 1
    live = tmp_path / "live.db"
    fill(live, kind="live")
    assert 'data-figure="replays"' not in page(site, live)


def test_parties_and_associates_are_shown_apart(site, tmp_path):
    """Issue 17: the 21 visitors came as 6 couples and 9 people alone (15 parties); two of
    the 7 people in the cameras' last frame were associates (stored staff visits), who
    are counted apart, not as people in the store."""
    path = tmp_path / "edge.db"
    fill(path)
    db = open_database(path)
    last = NOW - 600
    with db.atomic():
        db["visit_groups"].insert_all(
            {"visit_id": f"v{i:02d}", "group_id": f"g{i // 2}" if i < 12 else f"g{i}"}
            for i in range(VISITS))
        db["staff_visits"].insert_all(
            {"visit_id": f"s{i}", "site_id": "pets09-demo", "camera_id": "store", "run_id": 1,
             "track_id": i, "start_t": last - 3600, "end_t": last, "duration_s": 3600.0,
             "reason": "long-presence"} for i in (5, 6))
    db.close()
    html = page(site, path)
    assert 'data-figure="footfall-total">21<' in html
    assert 'data-figure="footfall-groups">They came as <strong>15</strong> shopping parties' in html
    assert '<strong data-figure="occupancy-people">5</strong> people were in view then' in html
    assert '(and <span data-figure="occupancy-associates">2</span> associates, not counted)' in html
    with client(site, path) as web:
        api = web.get("/api/v1/footfall", params={"day": DAY.isoformat()}).json()
        assert (api["total"], api["groups"]) == (21, 15)
        assert web.get("/api/v1/occupancy").json()["associates"] == 2
