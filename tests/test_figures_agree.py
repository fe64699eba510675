"""The status page and the MQTT aggregates read one query per figure (edge/figures.py):
on the same database and the same period they give the same numbers.

Regression: the page placed a visit in the hour (and day) it started, the aggregates
in the window it ended, so a 25-minute visit from 10:50 to 11:15 was a 10:00 visitor
on the page and an 11:00 one in the message sent to head office.
"""

from __future__ import annotations

import datetime as dt
import re
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient

from edge.runtime.schema import open_database
from edge.web.app import create_app
from edge.web.dashboard import WebDeps
from sync.aggregate import Window, aggregate_window, full_message
from tests.support.web_support import with_web

LONDON = ZoneInfo("Europe/London")
DAY = dt.date(2026, 3, 10)  # GMT: the store's day is the UTC day the windows tile
HOUR = 3600


def at(day: dt.date, hour: int, minute: int = 0) -> float:
    return dt.datetime.combine(day, dt.time(hour, minute), LONDON).timestamp()


def fill(path) -> None:
    """40 visits of 25 minutes from 10:40 on, one every 90 s: most end in a later hour
    than they started. One visit crosses into the day from the evening before, one out
    of it into the next day. Door steps on the entrance line and on a line that is not
    one. The first 24 visitors came as 8 families of three, the rest alone."""
    db = open_database(path)
    spans = [(at(DAY, 10, 40) + 90 * i, at(DAY, 10, 40) + 90 * i + 25 * 60) for i in range(40)]
    spans += [(at(DAY, 0, 0) - 600, at(DAY, 0, 0) + 600),
              (at(DAY, 23, 55), at(DAY, 23, 55) + 600)]
    visits, dwell, traits, segments = [], [], [], []
    for i, (start, end) in enumerate(spans):
        visit = f"{i:032x}"
        visits.append({"visit_id": visit, "site_id": "pets09-demo", "camera_id": "view001",
                       "run_id": 1, "track_id": i, "start_t": start, "end_t": end,
                       "duration_s": end - start, "path_length_m": 12.0,
                       "checkout_visited": 0, "features": "{}",
                       "zone_sequence": '["deli"]', "spec_version": "t"})
        dwell.append({"visit_id": visit, "zone_id": "deli", "dwell_s": 10.0 + i, "entries": 1})
        if i % 3 == 0:
            dwell.append({"visit_id": visit, "zone_id": "premium", "dwell_s": 4.0 + i,
                          "entries": 1})
        traits += [{"visit_id": visit, "trait": "wanderer", "probability": 0.9 if i < 20 else 0.2},
                   {"visit_id": visit, "trait": "showroomer", "probability": 0.3 + 0.5 * (i % 2)}]
        segments.append({"visit_id": visit, "segment": "browser" if i < 25 else "quick_trip",
                         "probability": 0.7})
    steps = [{"line_id": line, "camera_id": "view001", "run_id": 1, "track_id": i,
              "t": at(DAY, 9) + 700 * i, "direction": "in" if i % 3 else "out"}
             for i, line in enumerate(["front-door"] * 30 + ["not-an-entrance"] * 5)]
    with db.atomic():
        db["visits"].insert_all(visits)
        db["visit_zone_dwell"].insert_all(dwell)
        db["visit_traits"].insert_all(traits)
        db["visit_segments"].insert_all(segments)
        db["line_crossings"].insert_all(steps)
        db["visit_groups"].insert_all({"visit_id": v["visit_id"], "group_id":
                                       f"family{i // 3}" if i < 24 else f"alone{i}"}
                                      for i, v in enumerate(visits))
    db.close()


@pytest.fixture
def store(tmp_path, pets_site):
    path = tmp_path / "edge.db"
    fill(path)
    site = with_web(pets_site, cache_s=0, access="open-lan")
    with page_client(site, path, at(DAY, 23, 59)) as client:
        page = client.get("/api/v1/summary", params={"day": DAY.isoformat()}).json()
        html = client.get("/", params={"day": DAY.isoformat()}).text
    db = open_database(path)
    yield site, {**page, "html": html}, db
    db.close()


def page_client(site, path, now: float) -> TestClient:
    """The status page of ``site`` over the database at ``path``, its clock at ``now``."""
    app = create_app(WebDeps(site=site, db_path=path, clock=lambda: now))
    return TestClient(app, base_url="http://localhost")


def aggregate(db, site, start: float, seconds: int):
    return aggregate_window(db, Window(start, seconds), store=site.site.id,
                            entrance_lines=site.floor.entrance_line_ids, floor=site.floor)


def test_visitors_per_hour_on_the_page_are_the_hourly_aggregates(store):
    site, page, db = store
    shown = {h["hour"]: h["today"] for h in page["footfall"]["hours"]}
    per_hour = {h: aggregate(db, site, at(DAY, 0) + h * HOUR, HOUR).visit_count
                for h in range(24)}
    assert {h: shown.get(h, 0) for h in range(24)} == per_hour
    assert per_hour[11] > 0 and per_hour[12] > 0  # the visits started at 10:40-11:39
    day = aggregate(db, site, at(DAY, 0), 24 * HOUR)
    assert page["footfall"]["total"] == page["mix"]["total_visits"] == day.visit_count == 41


def test_the_days_figures_on_the_page_are_the_aggregate_of_the_day(store):
    site, page, db = store
    day = aggregate(db, site, at(DAY, 0), 24 * HOUR)
    assert (page["footfall"]["entrance_in"], page["footfall"]["entrance_out"]) == day.footfall
    assert day.footfall == (20, 10)  # the other line's steps are not footfall

    zones = {z["zone_id"]: z for z in page["zones"]["zones"] if z["visitors"]}
    assert {z: zones[z]["visitors"] for z in zones} == {d.zone: d.visits for d in day.dwell}
    for cell in day.dwell:
        assert zones[cell.zone]["typical_dwell_s"] == round(cell.p50_s, 1)
    assert set(zones) == {"deli", "premium"}

    for items, cells in ((page["mix"]["traits"], day.traits),
                         (page["mix"]["segments"], day.segments)):
        shown = {i["name"]: i["visits"] for i in items if i["visits"]}  # standard ones at 0 too
        assert shown == {c.name: c.visits for c in cells}
    assert {c.name: c.visits for c in day.traits} == {"showroomer": 20, "wanderer": 20}


def test_the_shopper_types_by_shopping_party_on_the_page_are_the_aggregate_of_the_day(store):
    """Issue 17: a group's visit is classified once. The page's "Shopper groups" by
    shopping party and the aggregate's segments[].units of the same day agree, and a
    family of three counts once in them (three times by visits)."""
    site, page, db = store
    day = aggregate(db, site, at(DAY, 0), 24 * HOUR)
    shown = {i["name"]: i["units"] for i in page["mix"]["segments"]}
    assert shown == {c.name: c.units for c in day.segments}
    assert shown == {"browser": 8 + 1, "quick_trip": 16}      # 8 families and visitor 24
    assert {c.name: c.visits for c in day.segments} == {"browser": 25, "quick_trip": 16}
    assert page["mix"]["total_units"] == day.groups == page["footfall"]["groups"] == 25
    rows = re.findall(r'<tr data-segment-party="(\w+)"><td>[^<]*</td>\s*<td>(\d+)</td>',
                      page["html"])
    assert dict(rows) == {"browser": "9", "quick_trip": "16"}


def test_the_days_capture_rate_on_the_page_is_the_sum_of_the_windows(tmp_path, pets_site):
    """Regression (review r02): the sensor counted 15:00-18:00 only (and heard nothing
    13:00-14:00) while the door counted all day. The page divided the whole day's door
    count by the passers-by of the hours covered (20 %), head office's windows each their
    own hour's (7.7 %). The page now counts the door within the windows heard, and its
    day is the sum of the hourly windows that have a rate."""
    path = tmp_path / "edge.db"
    db = open_database(path)
    door = pets_site.floor.entrance_line_ids[0]
    steps = [{"line_id": door, "camera_id": "view001", "run_id": 1, "track_id": i,
              "t": at(DAY, 9) + 360 * i + 1, "direction": "in"} for i in range(90)]
    windows = [{"window_start": at(DAY, hour) + 900 * q, "window_s": 900, "sensor": "wlan1",
                "covered_s": 900.0, "frames": 0 if hour == 13 else 500,
                "in_store_devices": 0 if hour == 13 else 10,
                "passers_by": 0 if hour == 13 else 30 + hour, "occupancy_estimate": 5.0,
                "dwell_buckets": "{}", "arrived_devices": 0 if hour == 13 else 3}
               for hour in (13, 15, 16, 17) for q in range(4)]
    with db.atomic():
        db["line_crossings"].insert_all(steps)
        db["wifi_windows"].insert_all(windows)
    site = with_web(pets_site, cache_s=0, access="open-lan")
    with page_client(site, path, at(DAY, 18, 30)) as client:
        wifi = client.get("/api/v1/wifi").json()
        html = client.get("/").text
    came_in = passers = 0
    for hour in range(24):
        message = full_message(aggregate(db, site, at(DAY, hour), HOUR))
        if message["footfall"]["capture_rate"] is not None:
            came_in += message["footfall"]["in"]
            passers += message["wifi"]["passers_by"]
    assert (came_in, passers) == (30, 4 * (45 + 46 + 47))
    assert wifi["capture_rate"] == round(came_in / (came_in + passers), 4)   # was 0.2
    assert (wifi["door_in"], wifi["passers_by"]) == (came_in, passers)
    assert 'data-figure="wifi-covered-hours">15:00-18:00<' in html
    db.close()


def test_a_party_leaving_across_windows_is_one_segment_on_the_page_and_in_the_windows(
        tmp_path, pets_site):
    """Regression (review r09): five families of three; in each the parent leaves at
    10:59:55 (explorer 0.7), a child 8 s later, in the next 15-minute window, and the
    other child two minutes later (both quick-look 0.8). A party was classed by its
    members gone by the end of the period: by the parent alone in the 10:45 window
    (explorer), by all three in the day (quick-look), so head office's sum of the day's
    windows said 5 explorer parties where the page said 5 quick-look ones. Now a party is
    classed by the members who left within PARTY_LEAVE_S of the first, in every period:
    parent and first child, quick-look (0.55) on the page and in the windows alike. Ten
    people alone make the counts publishable."""
    from edge.config.visits import PARTY_LEAVE_S

    assert 8 < PARTY_LEAVE_S < 120
    path = tmp_path / "edge.db"
    db = open_database(path)
    visits, segments, groups = [], [], []

    def visit(i: int, end: float, explorer: float, group: str) -> None:
        vid = f"{i:032x}"
        visits.append({"visit_id": vid, "site_id": "pets09-demo", "camera_id": "view001",
                       "run_id": 1, "track_id": i, "start_t": end - 600, "end_t": end,
                       "duration_s": 600, "path_length_m": 5.0, "checkout_visited": 0,
                       "features": "{}", "zone_sequence": "[]", "spec_version": "t"})
        segments.extend([{"visit_id": vid, "segment": "explorer", "probability": explorer},
                         {"visit_id": vid, "segment": "quick-look",
                          "probability": round(1 - explorer, 3)}])
        groups.append({"visit_id": vid, "group_id": group})

    for f in range(5):
        parent_left = at(DAY, 10 + f, 59) + 55
        visit(3 * f, parent_left, 0.7, f"family{f}")
        visit(3 * f + 1, parent_left + 8, 0.2, f"family{f}")
        visit(3 * f + 2, parent_left + 120, 0.2, f"family{f}")
    for i in range(15, 25):
        visit(i, at(DAY, 16) + 600 * i, 0.9 if i % 2 else 0.1, f"alone{i}")
    with db.atomic():
        db["visits"].insert_all(visits)
        db["visit_segments"].insert_all(segments)
        db["visit_groups"].insert_all(groups)
    site = with_web(pets_site, cache_s=0, access="open-lan")
    with page_client(site, path, at(DAY, 23, 30)) as client:
        mix = client.get("/api/v1/mix", params={"day": DAY.isoformat()}).json()
    page = {i["name"]: i["units"] for i in mix["segments"] if i["name"] in
            ("explorer", "quick-look")}
    windows: dict[str, int] = {}
    for w in range(96):
        for cell in aggregate(db, site, at(DAY, 0) + 900 * w, 900).segments:
            windows[cell.name] = windows.get(cell.name, 0) + (cell.units or 0)
    assert page == windows == {"explorer": 5, "quick-look": 5 + 5}
    db.close()
