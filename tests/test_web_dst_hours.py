"""Visitors by hour on the days the clocks change: one row per real hour.

Found in review (r05_dst): a 24-hour store in Europe/London with one visit every 10
minutes. On the day the clocks go back (25 hours) the "01:00" row read 12 against 6
for every other hour: visits were binned by ``datetime.hour``, which merges the two
real hours the clock reads 01:00. On the day they go forward (23 hours) a "01:00 0" row
stood for an hour that did not exist. The totals were right; the rows were not.
"""

from __future__ import annotations

import datetime as dt
import re
from zoneinfo import ZoneInfo

from fastapi.testclient import TestClient

from edge.config import load_site
from edge.runtime.schema import open_database
from edge.web.app import create_app
from edge.web.dashboard import WebDeps
from edge.web.hours import day_hours
from edge.web.text import minute_text
from tests.conftest import PETS_SITE
from tests.support.web_support import BASE_URL, LONDON, insert_rows, with_web

BACK = dt.date(2026, 10, 25)  # clocks go back at 02:00 BST: 25 hours
FORWARD = dt.date(2026, 3, 29)  # clocks go forward at 01:00 GMT: 23 hours
NORMAL = dt.date(2026, 3, 10)
WEEK = dt.timedelta(days=7)


def midnight(day: dt.date) -> float:
    return dt.datetime.combine(day, dt.time(), LONDON).timestamp()


def every_ten_minutes(day: dt.date) -> list[float]:
    """One visit ending every 10 minutes of real time, all day long."""
    start, end = midnight(day), midnight(day + dt.timedelta(days=1))
    return [start + 600 * (i + 1) - 1 for i in range(int((end - start) // 600))]


def footfall(tmp_path, day: dt.date, *days: dt.date) -> tuple[dict, str]:
    """The page's footfall for ``day``, with a visit every 10 minutes on ``days``."""
    path = tmp_path / "edge.db"
    db = open_database(path)
    ends = [t for d in days for t in every_ten_minutes(d)]
    insert_rows(db, {"visits": [
        {"visit_id": f"{i:032x}", "site_id": "pets09-demo", "camera_id": "store", "run_id": 1,
         "track_id": i, "start_t": end - 300, "end_t": end, "duration_s": 300.0,
         "path_length_m": 1.0, "checkout_visited": 0, "features": "{}",
         "zone_sequence": "[]", "spec_version": "t"} for i, end in enumerate(ends)]})
    db.close()
    site = with_web(load_site(PETS_SITE), cache_s=0, access="open-lan")
    # Kept long enough that last week's whole day is still there the morning after.
    site = site.model_copy(update={"storage": site.storage.model_copy(update={"visit_days": 10})})
    now = midnight(day + dt.timedelta(days=1)) + 3600
    app = create_app(WebDeps(site=site, db_path=path, clock=lambda: now))
    with TestClient(app, base_url=BASE_URL) as web:
        api = web.get("/api/v1/footfall", params={"day": day.isoformat()}).json()
        html = web.get("/partials/dashboard", params={"day": day.isoformat()}).text
    return api, html


def table(html: str) -> list[tuple[str, str, str]]:
    return re.findall(r'<tr data-hour="[^"]+"><td>([^<]*)</td><td>([^<]*)</td><td>([^<]*)</td>',
                      html)


def test_clocks_going_back_show_the_repeated_hour_as_two_rows(tmp_path):
    api, html = footfall(tmp_path, BACK, BACK, BACK - WEEK)
    # Before: 24 rows, "01:00" 12 (both real hours in one).
    assert [(h["label"], h["today"]) for h in api["hours"][:4]] == [
        ("00:00", 6), ("01:00", 6), ("01:00 (2nd)", 6), ("02:00", 6)]
    rows = [(h["label"], h["today"], h["last_week"], h["absent"]) for h in api["hours"]]
    assert len(rows) == 25 and api["total"] == 150 and api["compare_total"] == 144
    assert rows[:4] == [("00:00", 6, 6, None), ("01:00", 6, 6, None),
                        ("01:00 (2nd)", 6, None, "compare_day"), ("02:00", 6, 6, None)]
    assert all(today == 6 for _, today, _, _ in rows)
    assert sum(h["today"] for h in api["hours"]) == api["total"]
    second = api["hours"][2]
    assert second["repeat"] and second["start"] - api["hours"][1]["start"] == 3600
    assert table(html)[2] == ("01:00 (2nd)", "6", "no such hour")
    assert 'data-figure="footfall-clock-change"' in html and "came twice" in html


def test_clocks_going_forward_leave_out_the_hour_that_did_not_exist(tmp_path):
    api, html = footfall(tmp_path, FORWARD, FORWARD)  # last week not counted yet
    labels = [h["label"] for h in api["hours"]]
    assert len(labels) == 23 and "01:00" not in labels and labels[:2] == ["00:00", "02:00"]
    assert all(h["today"] == 6 for h in api["hours"]) and api["total"] == 138
    assert "no 01:00 hour" in html


def test_clocks_going_forward_line_up_with_last_weeks_hours_by_the_clock(tmp_path):
    api, html = footfall(tmp_path, FORWARD, FORWARD, FORWARD - WEEK)
    by_label = {h["label"]: h for h in api["hours"]}
    # Last week's 01:00 keeps its row; this day's side says there was no such hour, not 0.
    assert (by_label["01:00"]["today"], by_label["01:00"]["last_week"]) == (None, 6)
    assert by_label["01:00"]["absent"] == "day" and by_label["01:00"]["start"] is None
    assert [by_label[h]["today"] for h in ("00:00", "02:00", "03:00")] == [6, 6, 6]
    assert sum(h["last_week"] for h in api["hours"]) == api["compare_total"] == 144
    assert ("01:00", "no such hour", "6") in table(html)


def test_a_normal_day_against_a_day_the_clocks_went_back(tmp_path):
    api, html = footfall(tmp_path, BACK + WEEK, BACK + WEEK, BACK)
    rows = [(h["label"], h["today"], h["last_week"]) for h in api["hours"]]
    assert rows[1:3] == [("01:00", 6, 6), ("01:00 (2nd)", None, 6)]
    assert sum(h["last_week"] for h in api["hours"]) == api["compare_total"] == 150
    assert sum(h["today"] or 0 for h in api["hours"]) == api["total"] == 144
    assert 'data-figure="footfall-compare-clock-change"' in html
    assert 'data-figure="footfall-clock-change"' not in html


def test_a_normal_day_is_unchanged(tmp_path):
    api, html = footfall(tmp_path, NORMAL, NORMAL, NORMAL - WEEK)
    assert [(h["hour"], h["label"], h["today"], h["last_week"]) for h in api["hours"]] == [
        (hour, f"{hour:02d}:00", 6, 6) for hour in range(24)]
    assert len(table(html)) == 24 and 'data-hour="9"><td>09:00</td>' in html
    assert (api["total"], api["compare_total"]) == (144, 144)
    # The fields added for the days the clocks change read as ordinary hours.
    assert {(h["repeat"], h["absent"]) for h in api["hours"]} == {(False, None)}
    assert [h["start"] for h in api["hours"]] == [midnight(NORMAL) + 3600 * hour
                                                 for hour in range(24)]
    assert api["clock_change"] is None and api["compare_clock_change"] is None
    assert "clock" not in html.split('id="footfall"')[1].split("</section>")[0]


def test_the_hours_of_a_day_are_its_real_hours():
    for day, count in ((BACK, 25), (FORWARD, 23), (NORMAL, 24)):
        hours = day_hours(day, LONDON)
        assert len(hours) == count
        assert hours[0].start == midnight(day)
        assert hours[-1].end == midnight(day + dt.timedelta(days=1))
        assert all(h.end - h.start == 3600 for h in hours)
    # Lord Howe Island moves its clocks by 30 minutes: its 01:00 hour lasts 90 minutes.
    howe = day_hours(dt.date(2026, 4, 5), ZoneInfo("Australia/Lord_Howe"))
    assert len(howe) == 24 and howe[1].end - howe[1].start == 5400


def test_a_time_in_the_repeated_hour_says_so():
    first = dt.datetime.combine(BACK, dt.time(1, 30), LONDON).timestamp()
    assert minute_text(first, LONDON, today=BACK) == "01:30"
    assert minute_text(first + 3600, LONDON, today=BACK) == "01:30 (2nd)"
    assert minute_text(first + 7200, LONDON, today=BACK) == "02:30"
