"""The status page's figures and REST API, on real SQLite files filled by real replays.

Expected values are recomputed here from the tables, independently of
edge/web/queries.py, so a wrong query fails the test.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import re
import sqlite3
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlite_utils
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from edge.config import load_site
from edge.errors import ConfigError
from edge.privacy.overrides import K_KEY, effective_k, put_override
from edge.retention import positions_kept_since
from edge.runtime.schema import open_database
from edge.storage import health
from edge.web import dbread
from edge.web.app import create_app
from edge.web.dashboard import Dashboard, WebDeps
from sync.aggregate import Window, aggregate_window, full_message
from sync.kanon import suppress
from tests.conftest import PETS_SITE
from tests.support.web_support import (
    BASE_URL,
    DAY,
    LONDON,
    NOW,
    at,
    day_bounds,
    expected_day,
    expected_heatmap,
    expected_wifi,
    insert_rows,
    shared_store_db,
    store_site,
    with_web,
)

pytestmark = pytest.mark.system


@pytest.fixture(scope="module")
def site():
    return store_site(load_site(PETS_SITE))


@pytest.fixture(scope="session")
def store_db(tmp_path_factory) -> Path:
    return shared_store_db(tmp_path_factory)


def client(site, db_path: Path, now: float = NOW, **web) -> TestClient:
    settings = with_web(site, **{"cache_s": 0, "access": "open-lan", **web})
    app = create_app(WebDeps(site=settings, db_path=db_path, clock=lambda: now))
    return TestClient(app, raise_server_exceptions=False, base_url=BASE_URL)


def test_summary_figures_match_the_database(site, store_db):
    with client(site, store_db) as web:
        response = web.get("/api/v1/summary", params={"day": DAY.isoformat()})
    assert response.status_code == 200
    s = response.json()
    db = sqlite3.connect(store_db)
    start, end = day_bounds(DAY)
    k = site.privacy.min_publishable_count
    truth = expected_day(db, DAY)

    # Occupancy: a replay DB, so the last instant with data, and when.
    people = truth.people
    assert s["occupancy"] == {**s["occupancy"], "people": people, "as_of": truth.latest,
                              "live": False}
    assert people > 0

    # Footfall by hour against the same weekday last week.
    today, before = truth.hours, truth.hours_last_week
    shown = {h["hour"]: (h["today"], h["last_week"]) for h in s["footfall"]["hours"]}
    for hour in set(today) | set(before):
        assert shown[hour] == (today[hour], before[hour])
    assert s["footfall"]["total"] == sum(today.values()) > 0
    assert s["footfall"]["compare_total"] == sum(before.values()) > 0
    assert today != before  # the comparison is not trivially equal
    crossings = truth.crossings
    assert (s["footfall"]["entrance_in"], s["footfall"]["entrance_out"]) == (
        crossings["in"], crossings["out"])

    # Zone dwell: visitors and median time; groups under k hidden.
    for zone in s["zones"]["zones"]:
        dwells = truth.dwell.get(zone["zone_id"], [])
        if 0 < len(dwells) < k:
            assert zone["suppressed"] and zone["visitors"] is None
        else:
            assert zone["visitors"] == len(dwells)
            if dwells:
                assert zone["typical_dwell_s"] == pytest.approx(statistics.median(dwells), abs=0.05)
    assert sum(1 for z in s["zones"]["zones"] if z["visitors"]) >= 5

    # Trait and segment mix at p >= 0.5.
    assert s["mix"]["total_visits"] == truth.visits
    segments = s["mix"]["segments"]
    assert {i["name"]: i["visits"] for i in segments} == {
        name: (None if 0 < truth.segments.get(name, 0) < k else truth.segments.get(name, 0))
        for name in {i["name"] for i in segments}}
    assert set(truth.segments) <= {i["name"] for i in segments}
    assert set(truth.traits) <= {i["name"] for i in s["mix"]["traits"]}
    # A trait counts out of the visits long enough to judge, as head office's `scored`.
    for item in s["mix"]["traits"]:
        count, scored = truth.traits.get(item["name"], 0), truth.traits_scored.get(item["name"], 0)
        assert item["scored"] == scored
        hidden = 0 < count < k or 0 < scored - count < k
        assert (item["visits"], item["share"]) == (
            (None, None) if hidden else (count, round(count / scored, 4) if scored else None))

    # Wi-Fi: per window the larger sensor's count, arrivals summed over the day; the
    # peak is the most phones present in one window.
    came_in, passing = expected_wifi(db, start, end)
    assert (s["wifi"]["arrived_devices"], s["wifi"]["passers_by"]) == (came_in, passing)
    # The capture rate is head office's (sync.aggregate): the door's in-crossings against
    # the phones passing, on a site that counts at its door; both within the hours the
    # sensor covered (09:00-15:00), as each window pairs its own.
    door_in = db.execute(
        "select count(*) from line_crossings where direction = 'in' and line_id in ({}) "
        "and t >= ? and t < ?".format(",".join("?" * len(site.floor.entrance_line_ids))),
        (*site.floor.entrance_line_ids, at(DAY, dt.time(9)), at(DAY, dt.time(15)))).fetchone()[0]
    assert s["wifi"]["capture_basis"] == "door" and door_in > 0
    assert (s["wifi"]["door_in"], s["wifi"]["covered_text"]) == (door_in, "09:00-15:00")
    assert s["wifi"]["capture_rate"] == pytest.approx(door_in / (door_in + passing), abs=1e-4)
    assert s["wifi"]["in_store_devices"] == db.execute(
        "select max(in_store_devices) from wifi_windows where window_start >= ? and "
        "window_start < ?", (start, end)).fetchone()[0]

    # Health: the silent builder is flagged, figures are the known ones only; the camera
    # removed from the config since is apart, not counted.
    health = {c["component"]: c for c in s["health"]["components"]}
    assert health["visits"]["status"] == "silent"
    assert "camera:view002" not in health
    assert [c["component"] for c in s["health"]["not_configured"]] == ["camera:view002"]
    assert health["sync"]["status"] == "degraded"
    assert health["sync"]["figures"]["outbox_backlog"] == 3
    assert health["wifi:wlan1"]["figures"] == {"frames_per_s": 41.5, "monitor_mode": True}
    assert health["camera:view001"]["figures"]["last_frame_age_s"] == pytest.approx(10.4)
    assert "rtsp_url" not in health["camera:view001"]["figures"]
    assert s["health"]["system"]["model"] == "yolox_nano_416x416"


def test_heatmap_cells_are_aggregates_above_k(site, store_db):
    with client(site, store_db) as web:
        heat = web.get("/api/v1/heatmap", params={"day": DAY.isoformat()}).json()
    db = sqlite3.connect(store_db)
    dwell, people = expected_heatmap(db, site, *day_bounds(DAY))
    k = site.privacy.min_publishable_count
    (x0, y0), _ = site.floor.bounds
    cell = site.floor.heatmap_cell_m
    shown = {(round((c["x"] - x0) / cell), round((c["y"] - y0) / cell)): c["dwell_s"]
             for c in heat["cells"]}
    expected = {key: value for key, value in dwell.items() if len(people[key]) >= k and value > 0}
    assert shown.keys() == expected.keys()
    for key, value in expected.items():
        assert shown[key] == pytest.approx(value, abs=0.02)
    assert heat["hidden_cells"] == sum(1 for key, v in dwell.items() if len(people[key]) < k and v)
    assert heat["hidden_cells"] > 0 and len(heat["cells"]) > 20
    assert max(c["level"] for c in heat["cells"]) == 1.0
    assert [z["id"] for z in heat["zones"]] == [z.id for z in site.floor.zones]


def test_live_occupancy_counts_people_seen_in_the_last_seconds(site, store_db):
    now = at(DAY, dt.time(11, 6))  # a minute into the second replay of the day
    with client(site, store_db, now=now) as web:
        occupancy = web.get("/api/v1/occupancy").json()
    db = sqlite3.connect(store_db)
    people = db.execute(
        "select count(*) from (select distinct run_id, track_id from track_points "
        "where t >= ? and t <= ?)", (now - 5, now + 1)).fetchone()[0]
    assert occupancy["live"] is True and occupancy["people"] == people > 0


def visit_row(visit_id: str, track_id: int, start_t: float) -> dict:
    """A one-minute visit, as the visits table stores it."""
    return {"visit_id": visit_id, "site_id": "s", "camera_id": "c", "run_id": 1,
            "track_id": track_id, "start_t": start_t, "end_t": start_t + 60, "duration_s": 60,
            "path_length_m": 10, "checkout_visited": 0, "features": "{}",
            "zone_sequence": "[]", "spec_version": "t"}


def small_store(tmp_path: Path, site) -> Path:
    """Ten visitors, all in one zone, three of them also in another, and one lone walker."""
    path = tmp_path / "small.db"
    db = open_database(path)
    start = at(DAY, dt.time(12))
    visits, dwell, traits = [], [], []
    for i in range(10):
        visit = f"{i:032x}"
        visits.append(visit_row(visit, i, start + i))
        dwell.append({"visit_id": visit, "zone_id": "deli", "dwell_s": 10.0 + i, "entries": 1})
        if i < 3:
            dwell.append({"visit_id": visit, "zone_id": "premium", "dwell_s": 5.0, "entries": 1})
        traits.append({"visit_id": visit, "trait": "wanderer",
                       "probability": 0.9 if i < 2 else 0.1})
        traits.append({"visit_id": visit, "trait": "showroomer", "probability": 0.8})
    run = db["runs"].insert({"camera_id": "view001", "source": "x", "model": "m",
                             "started_at": start, "ended_at": start, "frames": 9,
                             "status": "done"}).last_pk
    walker = [{"run_id": run, "camera_id": "view001", "track_id": 1, "frame": f, "t": start + f,
               "x": -10 + 0.5 * f, "y": -10.0, "left": 0, "top": 0, "width": 1, "height": 1,
               "confidence": 0.9} for f in range(9)]
    # the walker is one of the ten visits (the builder records its positions as that visit's)
    piece = {"visit_id": visits[0]["visit_id"], "run_id": run, "camera_id": "view001",
             "track_id": 1, "start_t": start, "end_t": start + 8}
    insert_rows(db, {"visits": visits, "visit_zone_dwell": dwell, "visit_traits": traits,
                     "track_points": walker, "visit_pieces": [piece]})
    db.close()
    return path


def test_small_groups_show_as_fewer_than_k(site, tmp_path):
    path = small_store(tmp_path, site)
    with client(site, path, now=at(DAY, dt.time(13))) as web:
        s = web.get("/api/v1/summary").json()
        page = web.get("/").text
    zones = {z["zone_id"]: z for z in s["zones"]["zones"]}
    assert zones["premium"] == {**zones["premium"], "visitors": None, "typical_dwell_s": None,
                                "total_dwell_s": None, "suppressed": True}
    assert zones["deli"]["visitors"] == 10 and zones["deli"]["typical_dwell_s"] == 14.5
    traits = {m["name"]: m for m in s["mix"]["traits"]}
    assert traits["wanderer"]["visits"] is None and traits["wanderer"]["share"] is None
    assert traits["showroomer"]["visits"] == 10 and traits["showroomer"]["share"] == 1.0
    assert traits["indecisive"]["visits"] == 0  # standard traits are listed even at zero
    # A lone walker's path never shows on the heat map: 4 cells with time in them
    # (the fifth holds only the last point, which has no time after it).
    assert s["heatmap"]["cells"] == [] and s["heatmap"]["hidden_cells"] == 4
    premium_row = re.search(r'data-zone="premium">(.*?)</tr>', page, re.S).group(1)
    assert "hidden" in premium_row and ">3<" not in premium_row
    assert "Too few people" in page


def test_counts_that_would_give_a_small_group_away_are_hidden_too(site, tmp_path):
    """Hiding a group of one is not enough when the total and the other groups are
    shown: 27 visits, 6 + 20 in two shopper groups, gives the third away as 1. And
    "24 of 27 looked around and skipped the till" says that 3 paid."""
    path = tmp_path / "subtract.db"
    db = open_database(path)
    start = at(DAY, dt.time(12))
    visits, dwell, traits, segments = [], [], [], []
    for i in range(27):
        visit = f"{i:032x}"
        visits.append(visit_row(visit, i, start + i))
        dwell.append({"visit_id": visit, "zone_id": "deli", "dwell_s": 10.0, "entries": 1})
        if i < 23:  # 4 of 27 never went to the promotions
            dwell.append({"visit_id": visit, "zone_id": "promo-table", "dwell_s": 8.0,
                          "entries": 1})
        traits.append({"visit_id": visit, "trait": "showroomer",
                       "probability": 0.8 if i < 24 else 0.2})
        group = "explorer" if i == 0 else "focused-browser" if i < 7 else "mission-buyer"
        for name in ("explorer", "focused-browser", "mission-buyer"):
            segments.append({"visit_id": visit, "segment": name,
                             "probability": 0.9 if name == group else 0.05})
    with db.atomic():
        db["visits"].insert_all(visits)
        db["visit_zone_dwell"].insert_all(dwell)
        db["visit_traits"].insert_all(traits)
        db["visit_segments"].insert_all(segments)
    db.close()
    with client(site, path, now=at(DAY, dt.time(13))) as web:
        s = web.get("/api/v1/summary").json()
        mix = web.get(f"/api/v1/mix?day={DAY.isoformat()}").json()
    assert mix == {**mix, "total_visits": 27}
    groups = {m["name"]: m["visits"] for m in mix["segments"]}
    assert groups == {"explorer": None, "focused-browser": None, "mission-buyer": 20}
    traits = {m["name"]: m["visits"] for m in mix["traits"]}
    assert traits["showroomer"] is None
    zones = {z["zone_id"]: z["visitors"] for z in s["zones"]["zones"]}
    assert zones["deli"] == 27 and zones["promo-table"] is None


def party_store(path: Path, parties: list[tuple[int, str]]) -> None:
    """Shopping parties of (size, segment) who all left within a minute of noon."""
    db = open_database(path)
    start = at(DAY, dt.time(12))
    visits, segments, groups = [], [], []
    for n, (size, segment) in enumerate(parties):
        for _ in range(size):
            visit = f"{len(visits):032x}"
            visits.append(visit_row(visit, len(visits), start + len(visits)))
            groups.append({"visit_id": visit, "group_id": f"party{n}"})
            segments += [{"visit_id": visit, "segment": name,
                          "probability": 0.9 if name == segment else 0.05}
                         for name in ("browser", "mission", "quick")]
    with db.atomic():
        db["visits"].insert_all(visits)
        db["visit_segments"].insert_all(segments)
        db["visit_groups"].insert_all(groups)
    db.close()


def party_mix(site, path: Path) -> tuple[dict, str]:
    with client(site, path, now=at(DAY, dt.time(13))) as web:
        return (web.get(f"/api/v1/mix?day={DAY.isoformat()}").json(),
                web.get(f"/?day={DAY.isoformat()}").text)


def test_shopper_groups_by_party_hide_small_counts_and_what_gives_them_away(site, tmp_path):
    """Issue 17, on the page: 5 families of three (browsers), 6 people alone (mission),
    one couple (quick): 23 visitors, 12 parties. By party the couple's 1 is hidden, and
    so is the browsers' 5, or 12 - 6 - 5 would give the 1 away; the 6 is shown."""
    party_store(tmp_path / "parties.db", [(3, "browser")] * 5 + [(1, "mission")] * 6
                + [(2, "quick")])
    mix, page = party_mix(site, tmp_path / "parties.db")
    assert (mix["total_visits"], mix["total_units"]) == (23, 12)
    units = {m["name"]: (m["units"], m["units_hidden_reason"]) for m in mix["segments"]}
    assert units == {"browser": (None, "worked_out"), "mission": (6, None),
                     "quick": (None, "few")}
    assert {m["name"]: m["visits"] for m in mix["segments"]} == {
        "browser": 15, "mission": None, "quick": None}
    row = re.search(r'data-segment-party="quick">(.*?)</tr>', page, re.S).group(1)
    assert "hidden: fewer than 5 parties" in row and ">1<" not in row


def test_shopper_groups_add_up_to_the_days_visits_with_no_clear_type_shown(site, tmp_path):
    """A visit whose memberships reach 0.5 in no segment (a short one, with the spec's
    flattening) is in no row: 6 browsers and 7 visits of no clear type read as
    "Browser 6, Mission 0, Quick 0 out of 13" unless the 7 are shown too."""
    party_store(tmp_path / "unclear.db", [(1, "browser")] * 6 + [(1, "no clear type")] * 7)
    mix, page = party_mix(site, tmp_path / "unclear.db")
    assert {m["name"]: m["visits"] for m in mix["segments"]} == {
        "browser": 6, "mission": 0, "quick": 0}
    assert (mix["total_visits"], mix["segments_rest"]) == (13, 7)
    assert (mix["total_units"], mix["units_rest"]) == (13, 7)
    for kind in ("segment", "segment-party"):
        row = re.search(rf'data-{kind}="rest">(.*?)</tr>', page, re.S).group(1)
        assert "No clear type<" in row and ">7<" in row and "54%" in row

    # with a segment hidden, the rest row says it holds the hidden one too (6 + 3 + 7)
    party_store(tmp_path / "hidden.db", [(1, "browser")] * 6 + [(1, "quick")] * 3
                + [(1, "no clear type")] * 7)
    mix, page = party_mix(site, tmp_path / "hidden.db")
    assert {m["name"]: m["visits"] for m in mix["segments"]} == {
        "browser": 6, "mission": 0, "quick": None}
    assert mix["segments_rest"] == 10
    row = re.search(r'data-segment="rest">(.*?)</tr>', page, re.S).group(1)
    assert "No clear type, or in a hidden group above<" in row and ">10<" in row


def test_the_no_clear_type_rows_give_no_companion_away(site, tmp_path):
    """Regression (privacy review): a segment's parties were hidden when 1 to k-1 of its
    visitors came with someone, but the rest rows were not checked: "No clear type: 8
    visits" beside "No clear type: 7 parties" said that 1 of them came with someone. The
    browsers' parties (14 visitors in 8 parties) are hidden now, so the rest of the
    parties holds them too (7 + 8)."""
    party_store(tmp_path / "rest.db", [(3, "browser")] * 3 + [(1, "browser")] * 5
                + [(1, "mission")] * 10 + [(2, "no clear type")] + [(1, "no clear type")] * 6)
    mix, page = party_mix(site, tmp_path / "rest.db")
    assert (mix["total_visits"], mix["total_units"]) == (32, 25)
    assert {m["name"]: (m["visits"], m["units"], m["units_hidden_reason"])
            for m in mix["segments"]} == {"browser": (14, None, "worked_out"),
                                          "mission": (10, 10, None), "quick": (0, 0, None)}
    assert (mix["segments_rest"], mix["units_rest"]) == (8, 15)
    row = re.search(r'data-segment-party="rest">(.*?)</tr>', page, re.S).group(1)
    assert "No clear type, or in a hidden group above<" in row and ">15<" in row


def test_shopper_groups_by_party_are_hidden_with_the_parties_they_add_up_to(site, tmp_path):
    """12 people alone and one couple: "13 parties" would say 1 came with someone, so the
    parties are hidden, and so is every segment's by party (the mission's 6 too, no small
    count): the parties by segment add up to the hidden 13 (7 + 6 here)."""
    party_store(tmp_path / "alone.db", [(1, "browser")] * 6 + [(1, "mission")] * 6
                + [(2, "browser")])
    mix, page = party_mix(site, tmp_path / "alone.db")
    assert (mix["total_visits"], mix["total_units"]) == (14, None)
    assert {m["name"]: (m["units"], m["units_hidden_reason"]) for m in mix["segments"]} == {
        "browser": (None, "worked_out"), "mission": (None, "worked_out"),
        "quick": (None, "worked_out")}
    assert 'data-segment-party=' not in page and 'data-figure="segment-parties-hidden"' in page


def every_get(web: TestClient, day: str) -> list[tuple[str, str]]:
    paths = ["/", "/partials/dashboard", "/metrics", "/healthz", "/api/openapi.json",
             *(f"/api/v1/{p}?day={day}" for p in
               ("summary", "footfall", "heatmap", "zones", "mix", "wifi")),
             "/api/v1/occupancy", "/api/v1/health", "/admin/config", "/admin/debug"]
    headers = {"Authorization": "Bearer it-token-0123456789abcdef"}
    out = []
    for path in paths:
        response = web.get(path, headers=headers)
        assert response.status_code == 200, (path, response.text[:200])
        out.append((path, response.text))
    return out


def test_no_endpoint_returns_an_identifier_or_a_path(site, store_db):
    db = sqlite3.connect(store_db)
    visit_ids = {r[0] for r in db.execute("select visit_id from visits")}
    forbidden = ["hunter2", "aa:bb:cc:dd:ee:ff", "visit_id", "track_id", "run_id", '"t":',
                 "rtsp_url"]
    with client(site, store_db, admin_token="it-token-0123456789abcdef") as web:
        responses = every_get(web, DAY.isoformat())
    for path, body in responses:
        for word in forbidden:
            assert word not in body, (path, word)
        assert not visit_ids & set(re.findall(r"[0-9a-f]{32}", body)), path


@pytest.mark.parametrize("kind", ["missing", "empty", "tables-missing"])
def test_no_data_gives_a_page_that_says_what_to_do(site, tmp_path, kind):
    path = tmp_path / "edge.db"
    if kind == "empty":
        open_database(path).close()
    elif kind == "tables-missing":  # a partial database: only the health table so far
        partial = sqlite_utils.Database(path)
        health.MIGRATIONS.apply(partial)
        partial.close()
    with client(site, path) as web:
        page = web.get("/")
        summary = web.get("/api/v1/summary").json()
    assert page.status_code == 200
    assert 'data-figure="occupancy-empty"' in page.text
    assert 'data-figure="health-empty"' in page.text
    assert "No visitors counted on this day" in page.text
    assert summary["occupancy"]["people"] is None and summary["footfall"]["hours"] == []
    assert summary["data"]["status"] == ("missing" if kind == "missing" else "empty")
    assert ("edge replay" in page.text) == (kind == "missing")
    assert path.exists() == (kind != "missing")  # the page never creates the database


@pytest.mark.parametrize("kind", ["garbage", "foreign-schema"])
def test_a_damaged_database_is_a_clear_503(site, tmp_path, kind):
    path = tmp_path / "edge.db"
    if kind == "garbage":
        path.write_bytes(b"this is not a database" * 200)
    else:
        sqlite3.connect(path).execute("create table visits (something text)")
    with client(site, path) as web:
        api = web.get("/api/v1/summary")
        page = web.get("/")
    assert api.status_code == 503 and "damaged or not an edge database" in api.json()["detail"]
    assert page.status_code == 503 and "Call IT" in page.text and "Traceback" not in page.text


WRITER = """
import sys, time
from edge.runtime.schema import open_database
from edge.storage import health
db = open_database(sys.argv[1])
start = float(sys.argv[2])
print("ready", flush=True)
for frame in range(100000):
    with db.atomic():
        db["track_points"].insert_all(
            {"run_id": None, "camera_id": "view001", "track_id": i, "frame": frame,
             "t": start + frame / 7, "x": -10.0 + i, "y": -10.0, "left": 0, "top": 0,
             "width": 1, "height": 1, "confidence": 0.9} for i in range(4))
        db["health"].upsert({"component": "camera:view001", "status": "ok", "detail": "{}",
                             "message": "ok", "updated_at": time.time()}, pk="component")
"""


def test_reading_while_another_process_writes(site, tmp_path):
    path = tmp_path / "edge.db"
    open_database(path).close()
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(path), str(NOW - 30)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert writer.stdout.readline().strip() == "ready"
        statuses = Counter()
        people = set()
        with client(site, path) as web:
            deadline = time.monotonic() + 3
            while time.monotonic() < deadline:
                response = web.get("/api/v1/summary")
                statuses[response.status_code] += 1
                people.add(response.json()["occupancy"]["people"])
                statuses[web.get("/").status_code] += 1
    finally:
        writer.terminate()
        writer.wait(10)
    assert set(statuses) == {200} and statuses[200] > 10, statuses
    assert people == {4}  # each snapshot is consistent: always the 4 people of one frame


@contextlib.contextmanager
def locked_by_another_program(path: Path) -> Iterator[None]:
    """A new edge database at ``path``, held in an exclusive write transaction by
    another connection until the block ends (then rolled back)."""
    open_database(path).close()
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("pragma locking_mode=exclusive")
    holder.execute("begin exclusive")
    holder.execute("insert into health values ('sync', 'ok', '{}', 'ok', 0)")
    try:
        yield
    finally:
        holder.rollback()
        holder.close()


def test_a_database_locked_by_another_program_is_a_clear_503(site, tmp_path, monkeypatch):
    monkeypatch.setattr(dbread, "READ_BUSY_TIMEOUT_S", 0.2)
    path = tmp_path / "edge.db"
    with locked_by_another_program(path), client(site, path) as web:
        api = web.get("/api/v1/summary")
        page = web.get("/")
    assert api.status_code == 503 and api.headers["retry-after"] == "2"
    assert "try again in a few seconds" in api.json()["detail"]
    assert page.status_code == 503 and "<html" in page.text


def test_waiting_requests_share_one_database_failure(site, tmp_path, monkeypatch):
    """Regression: with the database locked, each of 50 waiting tablets used to wait
    out its own busy timeout in turn; those that waited share the failure instead."""
    monkeypatch.setattr(dbread, "READ_BUSY_TIMEOUT_S", 0.3)
    path = tmp_path / "edge.db"
    start = threading.Barrier(8)
    errors = []

    def ask() -> None:
        start.wait()
        try:
            dashboard.summary()
        except dbread.DatabaseBusy as error:
            errors.append(error)

    with locked_by_another_program(path):
        dashboard = Dashboard(WebDeps(site=with_web(site, cache_s=0), db_path=path))
        threads = [threading.Thread(target=ask) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
    assert len(errors) == 8 and dashboard.attempts <= 3
    assert dashboard.summary().data.status == "empty"  # the lock gone: readable again


def scrape(web: TestClient) -> dict[tuple[str, tuple], float]:
    text = web.get("/metrics").text
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_metrics_give_the_box_health_from_the_summary(site, store_db):
    with client(site, store_db) as web:
        web.get("/api/v1/summary")
        samples = scrape(web)
    assert samples[("edge_database_readable", ())] == 1
    assert samples[("edge_sync_outbox_backlog", (("component", "sync"),))] == 3
    assert samples[("edge_component_status", (("component", "visits"),))] == 0
    assert not any(labels == (("component", "camera:view002"),) for _, labels in samples)
    assert samples[("edge_camera_fps", (("component", "camera:view001"),))] == 7.0
    requests = ("edge_web_requests_total", (("route", "/api/v1/summary"), ("status", "200")))
    assert samples[requests] == 1


# What /metrics may expose: the box's health and the page's traffic, nothing about shoppers.
HEALTH_FAMILIES = {
    "edge_database_readable", "edge_build_info", "edge_component_status",
    "edge_component_report_age_seconds", "edge_fusion_calibration_pair_median_metres",
    "edge_fusion_calibration_pair_unmatched_ratio",
    "edge_camera_fps", "edge_camera_last_frame_age_seconds", "edge_camera_reconnects",
    "edge_wifi_frames_per_second", "edge_sync_outbox_backlog", "edge_sync_broker_connected",
    "edge_wifi_monitor_mode", "edge_cpu_percent", "edge_disk_free_bytes", "edge_database_bytes",
    "edge_web_requests_total", "edge_web_requests_created", "edge_web_request_seconds_bucket",
    "edge_web_request_seconds_count", "edge_web_request_seconds_sum",
    "edge_web_request_seconds_created", "edge_web_auth_failures_total",
    "edge_web_auth_failures_created", "edge_web_rate_limited_total",
    "edge_web_rate_limited_created"}


def test_metrics_carry_no_running_total_a_scraper_could_difference(site, store_db, tmp_path):
    """Regression (privacy review): /metrics served the day's running totals
    (edge_visits_today exact, visitors and median dwell per zone, visits per trait and
    segment); two scrapes either side of one shopper leaving differed by exactly that
    shopper's zones, traits and segment, and Prometheus kept the series off the box.
    Scraped before and after the day's last visit is stored, /metrics must read the same
    apart from the box's own load, and hold only health families."""
    before = tmp_path / "before.db"
    before.write_bytes(store_db.read_bytes())
    with sqlite3.connect(before) as db:
        (visit_id,) = db.execute("select visit_id from visits order by end_t desc, visit_id "
                                 "limit 1").fetchone()
        for table in ("visit_zone_dwell", "visit_traits", "visit_segments",
                      "visit_queue_waits", "visit_groups", "visits"):
            db.execute(f"delete from {table} where visit_id = ?", [visit_id])
    load = ("edge_web_", "edge_cpu_percent", "edge_database_bytes", "edge_disk_free_bytes",
            "edge_component_report_age_seconds")
    scrapes = []
    for path in (before, store_db):
        with client(site, path) as web:
            samples = scrape(web)
        assert {name for name, _ in samples} <= HEALTH_FAMILIES
        scrapes.append({key: value for key, value in samples.items()
                        if not key[0].startswith(load)})
    assert scrapes[0] == scrapes[1]


def test_wifi_windows_from_before_arrivals_were_counted_make_them_unknown(site, tmp_path):
    """Windows written before the arrived_devices column have NULL there: adding up
    the others would give a wrong number of phones that came in, so the page and
    the capture rate say "not known" (the peak and passers-by are still right)."""
    path = tmp_path / "edge.db"
    db = open_database(path)
    start = at(DAY, dt.time(10))
    rows = [{"window_start": start + 900 * i, "window_s": 900, "sensor": "wlan1",
             "frames": 100, "in_store_devices": devices, "arrived_devices": arrived,
             "passers_by": 20, "occupancy_estimate": float(devices), "dwell_buckets": "{}"}
            for i, (devices, arrived) in enumerate([(3, None), (4, 2), (4, 0)])]
    insert_rows(db, {"wifi_windows": rows})
    db.close()
    site = without_door(site)  # so the capture rate counts phones that came in
    with client(site, path, now=at(DAY, dt.time(11))) as web:
        wifi = web.get("/api/v1/wifi").json()
        page = web.get("/").text
    assert (wifi["arrived_devices"], wifi["capture_rate"]) == (None, None)
    assert (wifi["in_store_devices"], wifi["passers_by"]) == (4, 60)
    assert 'data-figure="wifi-came-in-unknown"' in page and "not known for this day" in page
    assert 'data-figure="wifi-peak">4<' in page
    with sqlite3.connect(path) as connection:           # the upgraded windows alone
        connection.execute("delete from wifi_windows where arrived_devices is null")
    with client(site, path, now=at(DAY, dt.time(11))) as web:
        wifi = web.get("/api/v1/wifi").json()
        page = web.get("/").text
    assert (wifi["arrived_devices"], wifi["capture_rate"]) == (2, round(2 / 42, 4))
    assert wifi["capture_basis"] == "phones"
    assert 'data-figure="wifi-came-in">2<' in page and "of phones nearby came in" in page


def without_door(site):
    """The site with no entrance line: a store that counts no door."""
    lines = [line for line in site.floor.lines if line.kind != "entrance"]
    return site.model_copy(update={"floor": site.floor.model_copy(update={"lines": lines})})


def test_the_capture_rate_is_head_offices(site, tmp_path):
    """The page and the MQTT aggregate give one capture rate for the same period: the
    door's in-crossings against the phones passing (the page used to divide the phones
    that came in instead: 1% beside head office's 2% for one day)."""
    path = tmp_path / "edge.db"
    db = open_database(path)
    start = at(DAY, dt.time(10))
    door = site.floor.entrance_line_ids[0]
    insert_rows(db, {
        "wifi_windows": [{"window_start": start, "window_s": 900, "sensor": "wlan1",
                          "frames": 100, "in_store_devices": 6, "arrived_devices": 4,
                          "passers_by": 90, "occupancy_estimate": 5.0, "dwell_buckets": "{}"}],
        "line_crossings": [{"line_id": door, "camera_id": "view001", "run_id": 1,
                            "track_id": i, "t": start + 10 * i, "direction": "in"}
                           for i in range(10)],
    })
    with client(site, path, now=at(DAY, dt.time(11))) as web:
        wifi = web.get("/api/v1/wifi").json()
        page = web.get("/").text
    message = full_message(aggregate_window(db, Window(start, 900), store=site.site.id,
                                            entrance_lines=site.floor.entrance_line_ids))
    assert message["footfall"]["capture_rate"] == round(10 / 100, 3)
    assert (wifi["capture_basis"], wifi["capture_rate"]) == ("door", 0.1)
    assert 'data-figure="wifi-capture-rate">10%<' in page and "of passers-by came in" in page


@pytest.mark.parametrize(
    "path, status, words",
    [
        ("/api/v1/summary?day=not-a-day", 422, "day"),
        ("/api/v1/footfall?day=1066-10-14", 404, "from 2000-01-01 to 2100-12-31 only"),
        ("/api/v1/heatmap?day=2026-02-30", 422, "day"),
        ("/?day=yesterday", 400, "is not a day"),
        ("/?day=9999-12-31", 404, "pick a day between"),
        ("/no/such/page", 404, "no such page"),
        ("/api/v1/nothing", 404, "no such page"),
        ("/api/v1/summary?" + "x=1&" * 600, 414, "too long"),
    ],
)
def test_malformed_requests_get_clear_answers(site, store_db, path, status, words):
    with client(site, store_db) as web:
        response = web.get(path)
    assert response.status_code == status
    assert words in response.text and "Traceback" not in response.text


def test_method_not_allowed_is_json(site, store_db):
    with client(site, store_db) as web:
        response = web.delete("/api/v1/summary")
    assert response.status_code == 405 and response.json() == {
        "detail": "That method is not allowed here."}


def test_pin_access_needs_a_pin(site, store_db):
    # The config refuses it for the web service (edge/config/web.py), as check-config does.
    with pytest.raises(ValueError, match="no web.pin is set"):
        with_web(site, access="pin", pin=None)
    unchecked = site.model_copy(update={"web": site.web.model_copy(
        update={"access": "pin", "pin": None})})
    with pytest.raises(ConfigError, match="no web.pin is set"):
        create_app(WebDeps(site=unchecked, db_path=store_db))


def test_page_shows_the_figures_in_plain_words(site, store_db):
    with client(site, store_db) as web:
        page = web.get("/", params={"day": DAY.isoformat()}).text
        summary = web.get("/api/v1/summary", params={"day": DAY.isoformat()}).json()
    assert f'data-figure="occupancy-people">{summary["occupancy"]["people"]}<' in page
    assert f'data-figure="footfall-total">{summary["footfall"]["total"]}<' in page
    assert "No news" in page and "Needs attention" in page and "Not working" not in page
    assert ("No longer in this store's set-up, so not counted: Camera view002 (last report "
            "60 min ago)") in page
    assert "Link to head office" in page and "3 reports waiting to be sent" in page
    assert "14:00, Tue 10 Mar" in page  # the sync's last delivery, in store time
    assert page.count('class="cell"') == len(summary["heatmap"]["cells"])
    assert page.count('class="zone ') == len(site.floor.zones)
    assert json.loads(json.dumps(summary))  # plain JSON, nothing exotic


def test_a_downlinked_k_hides_on_the_page_what_the_sync_would_not_publish(site, tmp_path):
    """The page and the sync read k through one query (edge.privacy.overrides): a k
    raised by downlink hides the same groups on the page as in the published aggregates."""
    path = tmp_path / "edge.db"
    db = open_database(path)
    put_override(db, K_KEY, "7", NOW, "test-nonce")
    assert effective_k(db, site) == 7 != site.privacy.min_publishable_count
    db.close()
    with client(site, path) as web:
        heat = web.get("/api/v1/heatmap", params={"day": DAY.isoformat()})
    assert heat.status_code == 200 and heat.json()["min_people"] == 7


def test_heatmap_of_a_day_partly_purged_covers_only_the_positions_kept(site, store_db):
    """Raw positions are kept 24 hours, visits for days: the next day at 13:00 the map of
    the day before covers its afternoon only, and says so, instead of showing whatever
    part of the morning the last purge happened to leave beside the whole day's visits."""
    now = at(DAY + dt.timedelta(days=1), dt.time(13))
    kept_since = positions_kept_since(site, now)
    assert at(DAY, dt.time(11, 30)) < kept_since < at(DAY, dt.time(14, 40))
    with client(site, store_db, now=now) as web:
        s = web.get("/api/v1/summary", params={"day": DAY.isoformat()}).json()
        page = web.get("/", params={"day": DAY.isoformat()}).text
    heat = s["heatmap"]
    assert heat["coverage"] == "partial" and heat["covers_from"] == pytest.approx(kept_since)
    db = sqlite3.connect(store_db)
    dwell, people = expected_heatmap(db, site, kept_since, day_bounds(DAY)[1])
    k = site.privacy.min_publishable_count
    assert len(heat["cells"]) == sum(1 for key, v in dwell.items() if len(people[key]) >= k and v)
    assert sum(c["dwell_s"] for c in heat["cells"]) == pytest.approx(
        sum(v for key, v in dwell.items() if len(people[key]) >= k), abs=0.1)
    assert f"covers the day from {heat['covers_from_text']} only" in page
    assert s["footfall"]["day_kept"] and s["footfall"]["total"] > 0  # visits: the whole day

    later = at(DAY + dt.timedelta(days=2), dt.time(13))
    with client(site, store_db, now=later) as web:
        s = web.get("/api/v1/summary", params={"day": DAY.isoformat()}).json()
        page = web.get("/", params={"day": DAY.isoformat()}).text
    assert s["heatmap"]["coverage"] == "not_kept" and s["heatmap"]["cells"] == []
    assert "this day's have been deleted" in page


def test_occupancy_on_a_page_of_another_day_says_which_day(site, store_db):
    """Occupancy is of now, whatever day the page shows: on last week's page "the cameras
    last saw people at 14:41" read as last week's 14:41; it now carries today's date."""
    with client(site, store_db) as web:
        today = web.get("/api/v1/summary").json()["occupancy"]
        last_week = web.get("/api/v1/summary", params={
            "day": (DAY - dt.timedelta(days=7)).isoformat()}).json()["occupancy"]
    assert today["as_of"] == last_week["as_of"] and not today["live"]
    moment = dt.datetime.fromtimestamp(today["as_of"], LONDON)
    assert today["as_of_text"] == moment.strftime("%H:%M:%S")
    assert last_week["as_of_text"] == moment.strftime("%H:%M:%S, %a %d %b %Y")


def test_a_mix_under_two_spec_versions_says_so(site, tmp_path):
    """Regression: after a signed downlink renamed explorer -> browser (1.0.0 -> 1.1.0) at
    midday, the page showed explorer and browser as two segments of the day's visits with
    no version anywhere, and /api/v1/mix carried none. The mix still counts each visit by
    the definitions it was classified under, and now says when they changed and which
    versions scored each segment."""
    path = tmp_path / "renamed.db"
    db = open_database(path)
    visits, segments = [], []
    for i in range(20):  # 10 in the morning under 1.0.0, 10 from 14:00 under 1.1.0
        version, start = (("1.0.0", at(DAY, dt.time(10)) + 60 * i) if i < 10 else
                          ("1.1.0", at(DAY, dt.time(14)) - 60 + 60 * (i - 10)))
        visit = f"{i:032x}"
        visits.append({**visit_row(visit, i, start), "spec_version": version})
        named = "explorer" if version == "1.0.0" else "browser"
        segments += [{"visit_id": visit, "segment": named, "probability": 0.9},
                     {"visit_id": visit, "segment": "quick-look", "probability": 0.1}]
    with db.atomic():
        db["visits"].insert_all(visits)
        db["visit_segments"].insert_all(segments)
    db.close()
    with client(site, path, now=at(DAY, dt.time(16))) as web:
        mix = web.get(f"/api/v1/mix?day={DAY.isoformat()}").json()
        page = web.get(f"/?day={DAY.isoformat()}").text
    assert [(v["version"], v["first_visit_text"]) for v in mix["spec_versions"]] == [
        ("1.0.0", "10:01"), ("1.1.0", "14:00")]
    note = ("Segment definitions changed at 14:00 (version 1.0.0 → 1.1.0): the mix counts "
            "each visit by the definitions it was classified under.")
    assert mix["definitions_note"] == note
    assert {m["name"]: (m["visits"], m["spec_versions"]) for m in mix["segments"]} == {
        "explorer": (10, ["1.0.0"]), "browser": (10, ["1.1.0"]),
        "quick-look": (0, ["1.0.0", "1.1.0"])}
    assert note.replace("→", "&rarr;") in page or note in page
    row = re.search(r'data-segment="explorer">(.*?)</tr>', page, re.S).group(1)
    assert "(version 1.0.0 only)" in row
    row = re.search(r'data-segment="quick-look">(.*?)</tr>', page, re.S).group(1)
    assert "version" not in row


def test_a_mix_under_one_spec_version_has_no_note(site, tmp_path):
    party_store(tmp_path / "parties.db", [(1, "mission")] * 6)
    mix, page = party_mix(site, tmp_path / "parties.db")
    assert [v["version"] for v in mix["spec_versions"]] == ["t"]
    assert mix["definitions_note"] is None and 'data-figure="mix-definitions"' not in page
    assert all(m["spec_versions"] in (["t"], None) for m in mix["segments"])


def judged_day(site, tmp_path: Path, traits: dict[str, list[float | None]]):
    """A day of one-minute visits ending from 12:01, with ``traits``: name -> each visit's
    probability (None: too short to judge). Returns the mix as the page gives it, the
    page, and the published aggregate of the quarter they ended in."""
    path = tmp_path / "edge.db"
    db = open_database(path)
    start = at(DAY, dt.time(12))
    count = len(next(iter(traits.values())))
    ids = [f"{i:032x}" for i in range(count)]
    insert_rows(db, {
        "visits": [visit_row(visit, i, start + i) for i, visit in enumerate(ids)],
        "visit_traits": [{"visit_id": visit, "trait": name, "probability": p}
                         for name, values in traits.items()
                         for visit, p in zip(ids, values, strict=True)],
    })
    with client(site, path, now=at(DAY, dt.time(14))) as web:
        mix = web.get(f"/api/v1/mix?day={DAY.isoformat()}").json()
        page = web.get("/").text
    message = suppress(full_message(aggregate_window(
        db, Window(start, 900), store=site.site.id, entrance_lines=[])),
        site.privacy.min_publishable_count)
    return mix, page, message


def test_a_traits_share_is_of_the_visits_long_enough_to_judge(site, tmp_path):
    """Visits shorter than the spec's trait_evidence.min_duration_s have no traits (NULL).
    The page divided a trait's count by every visit and withheld it against every visit,
    while head office's aggregate divides by ``scored`` and withholds against it: 6 of
    15 (40%) on the page where the aggregate said 6 of 10, and withheld, since the 4
    judged visits without the trait are fewer than k."""
    short = [None] * 5  # too short to judge
    mix, page, message = judged_day(site, tmp_path, {
        "showroomer": [0.8] * 6 + [0.2] * 4 + short,
        "wanderer": [0.9] * 5 + [0.1] * 5 + short,
    })
    assert 10 - 6 < site.privacy.min_publishable_count <= 5  # the showroomers' rest is small
    on_page = {m["name"]: m for m in mix["traits"]}
    sent = {m["name"]: m for m in message["traits"]}
    assert (mix["total_visits"], mix["traits_scored"]) == (15, 10)
    for name in ("showroomer", "wanderer"):
        assert on_page[name]["scored"] == sent[name]["scored"] == 10
        assert on_page[name]["visits"] == sent[name]["visits"]
    assert on_page["showroomer"]["visits"] is None  # 4 judged visits without it
    assert on_page["showroomer"]["hidden_reason"] == "nearly_all"
    assert (on_page["wanderer"]["visits"], on_page["wanderer"]["share"]) == (5, 0.5)
    assert 'data-figure="mix-traits-judged">10<' in page


def test_a_few_visits_too_short_to_judge_are_not_given_away(site, tmp_path):
    """The day's visits minus the visits a trait scored are the visits too short to
    judge: 2 of them, a group below k, could be worked out from the card's "judged on
    18 visits" beside "out of 20 visits". The aggregates withhold such a cell whole."""
    mix, page, message = judged_day(site, tmp_path,
                                    {"wanderer": [0.9] * 9 + [0.1] * 9 + [None] * 2})
    assert 0 < 20 - 18 < site.privacy.min_publishable_count
    assert message["visits"]["count"] == 20 and message["traits"] == []
    wanderer = next(m for m in mix["traits"] if m["name"] == "wanderer")
    assert (wanderer["visits"], wanderer["scored"], wanderer["share"]) == (None, None, None)
    assert wanderer["hidden_reason"] == "worked_out"
    assert mix["traits_scored"] is None and "mix-traits-judged" not in page


def test_traits_of_two_spec_versions_give_no_visits_away(site, tmp_path):
    """A trait only one of the day's spec versions has scores that version's visits:
    "wanderer judged on 20, premium-interest on 18" says 2 visits were classified under
    the other. As in the aggregates, the smaller is withheld with its count."""
    mix, _, message = judged_day(site, tmp_path, {
        "wanderer": [0.9, 0.1] * 10,
        "premium-interest": [None, None] + [0.8, 0.2] * 9,
    })
    on_page = {m["name"]: m for m in mix["traits"]}
    assert (on_page["wanderer"]["scored"], on_page["wanderer"]["visits"]) == (20, 10)
    assert on_page["premium-interest"]["visits"] is None
    assert on_page["premium-interest"]["scored"] is None
    assert on_page["premium-interest"]["hidden_reason"] == "worked_out"
    assert [m["name"] for m in message["traits"]] == ["wanderer"]
