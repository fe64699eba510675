"""Visitors by hour shows only what was measured.

Found on the live demo page (2026-12-06): at 04:00 the table listed 0 visitors for
every hour up to 18:00, hours that had not come yet; and "same day last week" read
0 for every hour the retention purge had already deleted. With visits kept 7 days,
by mid-afternoon the purge has deleted the morning of the day a week earlier, so
its hours showed 0 and the comparison said the morning was up from nothing.
"""

from __future__ import annotations

import datetime as dt
import re

import pytest
from fastapi.testclient import TestClient

from edge.config import load_site
from edge.retention import purge
from edge.runtime.schema import open_database
from edge.storage.trajectories import start_run
from edge.web.app import create_app
from edge.web.dashboard import WebDeps
from edge.web.hours import day_hours
from tests.conftest import PETS_SITE
from tests.support.web_support import BASE_URL, DAY, LONDON, NOW, at, insert_rows, with_web

TODAY = [dt.time(9, 30), dt.time(14, 10), dt.time(14, 50)]  # NOW is 15:00 on DAY
LAST_WEEK = [dt.time(10, 15), dt.time(17, 30)]
WEEK_AGO = DAY - dt.timedelta(days=7)


def site_keeping(days: float | None):
    site = with_web(load_site(PETS_SITE), cache_s=0, access="open-lan")
    if days is None:
        return site
    storage = site.storage.model_copy(update={"visit_days": days})
    return site.model_copy(update={"storage": storage})


def store_purged_at_now(path, site) -> None:
    """The day's and last week's visits, then the purge as the services run it."""
    db = open_database(path)
    run = start_run(db, "store", "asset:pets09_s2l1_view001", "yolox_nano_416x416")
    ends = [at(DAY, t) for t in TODAY] + [at(WEEK_AGO, t) for t in LAST_WEEK]
    insert_rows(db, {"visits": [
        {"visit_id": f"v{i}", "site_id": "pets09-demo", "camera_id": "store", "run_id": run,
         "track_id": i, "start_t": end - 60, "end_t": end, "duration_s": 60.0,
         "path_length_m": 12.0, "checkout_visited": 0, "features": "{}",
         "zone_sequence": "[]", "spec_version": "1.0.0"} for i, end in enumerate(ends)]})
    purge(db, site.storage, NOW, timezone=site.site.timezone,
          margin_s=site.service.purge_interval_s)
    db.close()


def page(site, tmp_path) -> tuple[dict, str]:
    path = tmp_path / "edge.db"
    store_purged_at_now(path, site)
    app = create_app(WebDeps(site=site, db_path=path, clock=lambda: NOW))
    with TestClient(app, base_url=BASE_URL) as web:
        api = web.get("/api/v1/footfall").json()
        html = web.get("/partials/dashboard").text
    return api, html


def rows(html: str) -> dict[int, tuple[str, str]]:
    found = re.findall(r'<tr data-hour="(\d+)"><td>[^<]*</td><td>([^<]*)</td><td>([^<]*)</td>',
                       html)
    return {int(hour): (today, last_week) for hour, today, last_week in found}


def test_hours_still_to_come_are_blank_not_zero(tmp_path):
    api, html = page(site_keeping(None), tmp_path)
    today = {h["hour"]: h["today"] for h in api["hours"]}
    assert today[9] == 1 and today[14] == 2 and today[10] == 0
    assert today[15] == 0  # begun at 15:00 exactly: nobody has left yet, a real 0
    assert [today[h] for h in (16, 17, 18)] == [None, None, None]
    assert api["total"] == 3
    shown = rows(html)
    assert shown[14][0] == "2" and shown[10][0] == "0"
    assert [shown[h][0] for h in (16, 17, 18)] == ["", "", ""]
    assert 'data-figure="footfall-later-hours"' in html
    # The chart draws no bar for an hour to come (nor a zero-height one).
    today_bars = re.findall(r'<rect class="bar today"', html)
    assert len(today_bars) == len([h for h in today.values() if h is not None])


def test_default_retention_keeps_the_whole_day_compared_with(tmp_path):
    api, html = page(site_keeping(None), tmp_path)
    assert api["visit_days"] == 8
    last_week = {h["hour"]: h["last_week"] for h in api["hours"]}
    assert last_week[10] == 1 and last_week[17] == 1 and last_week[9] == 0
    assert api["compare_total"] == 2
    assert 'data-figure="footfall-compare-total">2<' in html


def test_last_weeks_purged_hours_say_not_kept(tmp_path):
    """Kept 7 days, purged hourly: at 15:00 the purge has deleted last week's visits up
    to 15:00 (visits are kept their days whole, not purged ahead of the next run), so
    those hours are unknown."""
    api, html = page(site_keeping(7), tmp_path)
    last_week = {h["hour"]: h["last_week"] for h in api["hours"]}
    assert last_week[10] is None  # its visit was there, and the purge deleted it
    assert all(last_week[h] is None for h in range(9, 15))
    assert last_week[15] == 0 and last_week[17] == 1  # kept: real figures
    assert api["compare_total"] is None
    assert api["total"] == 3  # today's figures are whole
    shown = rows(html)
    assert shown[10][1] == "not kept" and shown[17][1] == "1"
    assert "not kept in full (visits are kept 7 days)" in html
    assert 'data-figure="footfall-compare-total"' not in html


def test_a_day_older_than_the_retention_says_so(tmp_path):
    """Eight days back with visits kept 7: the purge has deleted that day's visits, so
    its hours are "not kept", not 0."""
    site = site_keeping(7)
    path = tmp_path / "edge.db"
    store_purged_at_now(path, site)
    app = create_app(WebDeps(site=site, db_path=path, clock=lambda: NOW))
    with TestClient(app, base_url=BASE_URL) as web:
        for day, whole in ((WEEK_AGO, False), (DAY - dt.timedelta(days=8), False),
                           (DAY - dt.timedelta(days=1), True)):
            api = web.get("/api/v1/footfall", params={"day": day.isoformat()}).json()
            assert api["day_kept"] is whole, day
        week_ago = web.get("/api/v1/footfall", params={"day": WEEK_AGO.isoformat()}).json()
        shown = {h["hour"]: h["today"] for h in week_ago["hours"]}
        assert all(shown[h] is None for h in range(9, 15)) and shown[17] == 1
        html = web.get("/partials/dashboard", params={"day": WEEK_AGO.isoformat()}).text
        assert rows(html)[10][0] == "not kept" and rows(html)[17][0] == "1"
        assert 'data-figure="footfall-day-not-kept"' in html
        gone = web.get("/partials/dashboard",
                       params={"day": (DAY - dt.timedelta(days=8)).isoformat()}).text
        assert "This day's visits are no longer kept: visits are deleted after 7 days." in gone
        for card in ("zones-empty", "mix-empty"):  # not "no visits": they were deleted
            found = re.search(rf'data-figure="{card}">([^<]*)<', gone)
            assert found and "no longer kept" in found.group(1), card


def test_a_box_that_was_not_counting_last_week_says_so(tmp_path):
    """A box installed this week showed "same day last week: 0" and a 0 for every hour:
    read as an empty day, it made every day look like growth from nothing."""
    site = site_keeping(None)
    path = tmp_path / "edge.db"
    db = open_database(path)
    run = start_run(db, "store", "asset:pets09_s2l1_view001", "yolox_nano_416x416")
    ends = [at(DAY - dt.timedelta(days=2), dt.time(12)), at(DAY, dt.time(10, 30))]
    insert_rows(db, {"visits": [
        {"visit_id": f"v{i}", "site_id": "pets09-demo", "camera_id": "store", "run_id": run,
         "track_id": i, "start_t": end - 60, "end_t": end, "duration_s": 60.0,
         "path_length_m": 12.0, "checkout_visited": 0, "features": "{}",
         "zone_sequence": "[]", "spec_version": "1.0.0"} for i, end in enumerate(ends)]})
    db.close()
    app = create_app(WebDeps(site=site, db_path=path, clock=lambda: NOW))
    with TestClient(app, base_url=BASE_URL) as web:
        api = web.get("/api/v1/footfall").json()
        html = web.get("/partials/dashboard").text
        # A day whose week-before is two days ago, when the box was already counting.
        later = web.get("/api/v1/footfall",
                        params={"day": (DAY + dt.timedelta(days=5)).isoformat()}).json()
    assert api["compare_missing"] == "not_counted" and api["compare_total"] is None
    assert all(h["last_week"] is None for h in api["hours"])
    assert api["total"] == 1
    assert "no figures (this box was not counting yet)" in html
    assert {last_week for _, last_week in rows(html).values()} == {""}
    assert later["compare_missing"] is None and later["compare_total"] == 1


def test_people_now_and_the_door_counter_are_reconciled_in_words(tmp_path):
    """Seen on the live demo: "People in the store: 7" beside "Door counter: 11 in, 9
    out (2 more in than out: still inside...)", two answers to one question."""
    site = site_keeping(None)
    path = tmp_path / "edge.db"
    db = open_database(path)
    run = start_run(db, "store", "asset:pets09_s2l1_view001", "yolox_nano_416x416")
    ends = [at(DAY, dt.time(14, 10)), at(DAY, dt.time(14, 20))]
    insert_rows(db, {
        "visits": [{"visit_id": f"v{i}", "site_id": "pets09-demo", "camera_id": "store",
                    "run_id": run, "track_id": i, "start_t": end - 60, "end_t": end,
                    "duration_s": 60.0, "path_length_m": 12.0, "checkout_visited": 0,
                    "features": "{}", "zone_sequence": "[]", "spec_version": "1.0.0"}
                   for i, end in enumerate(ends)],
        "line_crossings": [{"line_id": "front-door", "camera_id": "store", "run_id": run,
                            "track_id": i, "t": at(DAY, dt.time(14)) + 60 * i,
                            "direction": direction}
                           for i, direction in enumerate(["in"] * 5 + ["out"] * 4)],
        "track_points": [{"run_id": run, "camera_id": "store", "track_id": 10 + i,
                          "frame": 1, "t": NOW - 1, "x": -10.0 + i, "y": -8.0, "left": 0,
                          "top": 0, "width": 1, "height": 1, "confidence": 0.9}
                         for i in range(3)]})
    db.close()
    app = create_app(WebDeps(site=site, db_path=path, clock=lambda: NOW))
    with TestClient(app, base_url=BASE_URL) as web:
        html = web.get("/partials/dashboard").text
        summary = web.get("/api/v1/summary").json()
    assert summary["occupancy"]["live"] and summary["occupancy"]["people"] == 3
    words = re.search(r'data-figure="door-vs-people-now">(.*?)</span>', html, re.S)
    assert words is not None, html
    assert words.group(1) == (
        "The cameras see 3 people now, more than the door counter's 1 inside: people who "
        "were already in when the day's count began, or came in another way.")


@pytest.mark.parametrize("hour, minute", [(22, 59), (23, 1)])
def test_last_week_is_whole_all_evening_with_the_default_retention(tmp_path, hour, minute):
    """Regression (review r11): with the default 8 days and the hourly purge, "same day
    last week" read "not kept in full" every evening from 23:00: the purge took the hour
    until its next run off the 8 days, so it cut into the day a week back (the page
    rightly said so, though that day's visits were all there). Visits are now kept their
    8 days whole, so the purge at 23:01 leaves last week's day alone."""
    site = site_keeping(None)
    path = tmp_path / "edge.db"
    db = open_database(path)
    run = start_run(db, "store", "asset:pets09_s2l1_view001", "yolox_nano_416x416")
    ends = [at(day, dt.time(9)) + 600 * i for day in (WEEK_AGO, DAY) for i in range(60)]
    ends.append(at(WEEK_AGO, dt.time(0, 0)) + 30)            # 30 s after last week's midnight
    insert_rows(db, {"visits": [
        {"visit_id": f"v{i}", "site_id": "pets09-demo", "camera_id": "store", "run_id": run,
         "track_id": i, "start_t": end - 20, "end_t": end, "duration_s": 20.0,
         "path_length_m": 1.0, "checkout_visited": 0, "features": "{}",
         "zone_sequence": "[]", "spec_version": "1.0.0"} for i, end in enumerate(ends)]})
    now = at(DAY, dt.time(hour, minute))
    purge(db, site.storage, now, timezone=site.site.timezone,
          margin_s=site.service.purge_interval_s)
    db.close()
    app = create_app(WebDeps(site=site, db_path=path, clock=lambda: now))
    with TestClient(app, base_url=BASE_URL) as web:
        api = web.get("/api/v1/footfall").json()
    assert (api["compare_total"], api["compare_missing"]) == (61, None)


@pytest.mark.parametrize("today", [
    dt.date(2026, 10, 26),  # the Monday after the clocks went back (Sun 25 Oct, 25 hours)
    dt.date(2026, 11, 1),   # a week on: the day compared with is the 25-hour day itself
    dt.date(2026, 4, 4),    # the Saturday after they went forward (Sun 29 Mar, 23 hours)
])
def test_last_week_is_whole_all_evening_in_the_week_after_the_clocks_change(tmp_path, today):
    """Regression (review: DST compare): visits were kept 8 x 86,400 s, but the page
    compares with the same weekday a calendar week back; a week holding the 25-hour day
    is a week and an hour, so from 23:00 every day of the following week the purge
    deleted the first hour of last week's day and the page read "not kept in full".
    Visits are now kept 8 calendar days of the store's time zone."""
    site = site_keeping(None)
    compared = today - dt.timedelta(days=7)
    path = tmp_path / "edge.db"
    db = open_database(path)
    run = start_run(db, "store", "asset:pets09_s2l1_view001", "yolox_nano_416x416")
    ends = [t + 1200 for t in (h.start for h in day_hours(compared, LONDON))]  # hh:20
    insert_rows(db, {"visits": [
        {"visit_id": f"v{i}", "site_id": "pets09-demo", "camera_id": "store", "run_id": run,
         "track_id": i, "start_t": end - 20, "end_t": end, "duration_s": 20.0,
         "path_length_m": 1.0, "checkout_visited": 0, "features": "{}",
         "zone_sequence": "[]", "spec_version": "1.0.0"} for i, end in enumerate(ends)]})
    answers = []
    for hour, minute in ((22, 30), (23, 30), (23, 59)):
        now = at(today, dt.time(hour, minute))
        purge(db, site.storage, now, timezone=site.site.timezone,
              margin_s=site.service.purge_interval_s)
        app = create_app(WebDeps(site=site, db_path=path, clock=lambda now=now: now))
        with TestClient(app, base_url=BASE_URL) as web:
            api = web.get("/api/v1/footfall").json()
        first = api["hours"][0]
        answers.append((api["compare_total"], api["compare_missing"], first["label"],
                        first["last_week"]))
    db.close()
    assert answers == [(len(ends), None, "00:00", 1)] * 3
