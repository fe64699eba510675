"""The status page says what it does not know instead of a figure that reads as measured.

Each test is a field failure a reviewer reproduced on the page (and, for the Wi-Fi
figures, in the MQTT aggregates): a deaf sensor read as "nobody passed", a dead camera
as "nobody in the store", and so on. Real SQLite files, the real app, a fixed clock.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from edge.config.floor import ZoneConfig
from edge.retention import purge
from edge.runtime.schema import open_database
from edge.storage.health import report_health
from edge.web.app import create_app
from edge.web.dashboard import WebDeps
from sync import contract, kanon
from sync.aggregate import Window, aggregate_window, full_message
from tests.support.web_support import BASE_URL, LONDON, insert_rows, with_web

DAY = dt.date(2026, 12, 2)  # a Wednesday, GMT


def at(day: dt.date, hour: int, minute: int = 0) -> float:
    return dt.datetime.combine(day, dt.time(hour, minute), LONDON).timestamp()


def read(site, path: Path, now: float, *urls: str) -> list:
    """The answers of ``urls`` (JSON for the API, text for pages) at ``now``."""
    settings = with_web(site, cache_s=0, access="open-lan")
    app = create_app(WebDeps(site=settings, db_path=path, clock=lambda: now))
    with TestClient(app, base_url=BASE_URL) as web:
        answers = [web.get(url) for url in urls]
    return [a.json() if "/api/" in url else a.text for a, url in zip(answers, urls, strict=True)]


def card(html: str, name: str) -> str:
    """The words of one card of the page."""
    found = re.search(rf'<section class="card[^"]*" id="{name}">(.*?)</section>', html, re.S)
    assert found, name
    return " ".join(re.sub(r"<[^>]+>", " ", found.group(1)).split())


def wifi_row(start: float, *, frames: int, passers: int = 0, devices: int = 0,
             arrived: int = 0, window_s: int = 900) -> dict:
    return {"window_start": start, "window_s": window_s, "sensor": "iface:wlan1",
            "covered_s": float(window_s), "frames": frames, "in_store_frames": 0,
            "excluded_frames": 0, "in_store_devices": devices, "brief_devices": 0,
            "passers_by": passers, "occupancy_estimate": float(devices),
            "dwell_buckets": "{}", "arrived_devices": arrived}


def door_steps(site, times: list[float]) -> list[dict]:
    door = site.floor.entrance_line_ids[0]
    return [{"line_id": door, "camera_id": "view001", "run_id": 1, "track_id": i, "t": t,
             "direction": "in"} for i, t in enumerate(times)]


def test_a_sensor_that_hears_nothing_is_not_known_not_nobody_passing(pets_site, tmp_path):
    """Regression (review r01): an adapter in monitor mode hearing nothing (unplugged
    antenna, dead channel) keeps closing windows of zeros by the clock. The page said
    "0 phones passed", "Capture rate: 100%", and head office got capture_rate 1.0 and
    passers_by 0 for every hour, beside a door that counted 40 people in."""
    path = tmp_path / "edge.db"
    db = open_database(path)
    t9 = at(DAY, 9)
    insert_rows(db, {
        "wifi_windows": [wifi_row(t9 + 900 * i, frames=0) for i in range(12)]
        + [wifi_row(t9 + 60 * i, frames=0, window_s=60) for i in range(180)],
        "line_crossings": door_steps(pets_site, [t9 + 200 * i for i in range(40)]),
    })
    wifi, html = read(pets_site, path, at(DAY, 12, 1), "/api/v1/wifi", "/")
    assert (wifi["passers_by"], wifi["capture_rate"], wifi["in_store_devices"],
            wifi["arrived_devices"]) == (None, None, None, None)
    assert wifi["silent_since"] == t9
    words = card(html, "wifi")
    assert "The Wi-Fi sensor hears nothing since 09:00" in words
    assert "Capture rate" not in words and "0 phones" not in words

    message = full_message(aggregate_window(db, Window(at(DAY, 10), 3600), store="s",
                                            entrance_lines=pets_site.floor.entrance_line_ids))
    assert message["wifi"] is None            # no Wi-Fi figures, never zeros
    assert message["footfall"] == {"in": 18, "out": 0, "capture_rate": None}
    db.close()


def test_windows_heard_count_and_a_sensor_gone_deaf_says_since_when(pets_site, tmp_path):
    """The windows heard before the sensor went deaf still count (and only they); the
    card says since when it hears nothing, and the MQTT window of the deaf hour has no
    Wi-Fi figures while the hour before keeps its own."""
    path = tmp_path / "edge.db"
    db = open_database(path)
    t9 = at(DAY, 9)
    insert_rows(db, {"wifi_windows": [wifi_row(t9 + 900 * i, frames=400, passers=30, devices=4,
                                               arrived=2) for i in range(4)]
                     + [wifi_row(at(DAY, 10) + 900 * i, frames=0) for i in range(6)]})
    wifi, html = read(pets_site, path, at(DAY, 11, 31), "/api/v1/wifi", "/")
    assert (wifi["passers_by"], wifi["arrived_devices"], wifi["in_store_devices"]) == (120, 8, 4)
    assert wifi["silent_since"] == at(DAY, 10)
    assert wifi["latest_occupancy_estimate"] is None   # the latest window heard nothing
    words = card(html, "wifi")
    assert "hears nothing since 10:00" in words and "120 phones passed the store" in words

    before, deaf = (full_message(aggregate_window(
        db, Window(at(DAY, hour), 3600), store="s",
        entrance_lines=pets_site.floor.entrance_line_ids)) for hour in (9, 10))
    assert before["wifi"]["passers_by"] == 120 and deaf["wifi"] is None
    for message in (before, deaf):            # within the contract, as published
        contract.validate("aggregate", kanon.suppress(message, 5))
    db.close()


def positions(start: float, end: float, tracks: range, camera: str = "store") -> list[dict]:
    """Two positions a second of each track in ``[start, end)``."""
    return [{"run_id": 1, "camera_id": camera, "track_id": track, "frame": int(2 * t), "t": t,
             "x": -10.0 + track, "y": -8.0, "left": 0, "top": 0, "width": 1, "height": 1,
             "confidence": 0.9}
            for track in tracks for t in (start + 0.5 * i for i in range(int(2 * (end - start))))]


def with_run(rows: list[dict]) -> dict[str, list[dict]]:
    """``track_points`` rows and the run they belong to."""
    return {"runs": [{"id": 1, "camera_id": "store", "source": "live", "model": "m",
                      "started_at": 0.0, "frames": 0, "status": "running"}],
            "track_points": rows}


def with_cameras(site, *names: str):
    """``site`` with cameras ``names`` (copies of its first), so that their health rows
    count (a row of a camera the site does not have is left out)."""
    return site.model_copy(update={"cameras": [site.cameras[0].model_copy(update={"id": name})
                                               for name in names]})


def report(db, now: float, *rows: tuple[str, str, dict]) -> None:
    for component, status, detail in rows:
        report_health(db, component, status, f"{component} is {status}.", detail)
    db.execute("update health set updated_at = ?", [now])
    db.conn.commit()


def test_a_dead_camera_is_not_nobody_in_the_store(pets_site, tmp_path):
    """Regression (review r06 A): the only camera down since 11:00 (health "down"): the
    card said "No one seen right now", and the door card called 0 visitors against 18 in
    "expected"."""
    path = tmp_path / "edge.db"
    db = open_database(path)
    insert_rows(db, {**with_run(positions(at(DAY, 10, 50), at(DAY, 11), range(4))),
                     "line_crossings": door_steps(pets_site, [at(DAY, 9) + 300 * i
                                                              for i in range(18)])})
    report(db, at(DAY, 15), ("camera:view001", "down", {"connected": False, "fps": 0.0}))
    occupancy, html = read(pets_site, path, at(DAY, 15), "/api/v1/occupancy", "/")
    words = card(html, "occupancy")
    assert "Camera view001 is not working since 10:59: people cannot be counted" in words
    assert "No one seen" not in words and "nobody" not in words
    assert "4 people were in view then" in words
    assert occupancy["cameras"] == "down" and occupancy["cameras_down"] == ["Camera view001"]
    door = card(html, "footfall")
    assert "is expected" not in door and "Camera view001 is not working now" in door
    db.close()


def test_working_cameras_that_see_nobody_say_so_without_a_false_alarm(pets_site, tmp_path):
    """Regression (review r08): a camera reporting ok on a box that has seen nobody yet
    read "No camera data yet. Check that the cameras are working"."""
    path = tmp_path / "edge.db"
    db = open_database(path)
    report(db, at(DAY, 10), ("camera:view001", "ok",
                             {"fps": 7.0, "last_frame_age_s": 0.1, "connected": True}))
    occupancy, html = read(pets_site, path, at(DAY, 10), "/api/v1/occupancy", "/")
    words = card(html, "occupancy")
    assert "Cameras working, nobody in view" in words and "Check" not in words
    assert occupancy["cameras"] == "working"
    insert_rows(db, with_run(positions(at(DAY, 9), at(DAY, 9, 1), range(2), "view001")))
    words = card(read(pets_site, path, at(DAY, 10), "/")[0], "occupancy")
    assert "Cameras working, nobody in view" in words and "2 people were in view then" in words
    assert "check that the cameras" not in words
    db.close()


def test_a_count_without_one_camera_carries_a_caveat(pets_site, tmp_path):
    """Regression (review r06 B): one camera of three down for 20 minutes, the fusion
    holding its people as last seen (degraded): the card said "3 right now", no caveat."""
    path = tmp_path / "edge.db"
    db = open_database(path)
    now = at(DAY, 15)
    three = with_cameras(pets_site, "front", "side", "back")
    insert_rows(db, with_run(positions(now - 60, now, range(3))))
    report(db, now, ("camera:front", "ok", {"connected": True}),
           ("camera:side", "ok", {"connected": True}),
           ("camera:back", "down", {"connected": False, "last_frame_age_s": 1200.0}),
           ("fusion", "degraded", {"cameras_live_count": 2, "cameras_down_count": 1,
                                   "people_held": 1}))
    occupancy, html = read(three, path, now, "/api/v1/occupancy", "/")
    words = card(html, "occupancy")
    assert "Partial count: Camera back is not working since 14:40" in words
    assert "counted where it last saw them" in words
    assert (occupancy["people"], occupancy["cameras"], occupancy["held"]) == (3, "partial", True)
    assert occupancy["down_since"] == pytest.approx(now - 1200, abs=0.5)
    db.close()


def test_the_door_card_calls_a_difference_expected_only_when_it_is(pets_site, tmp_path):
    """Regression (review r06): "so 0 visitors against 18 in is expected" was printed
    whenever the two differed, even with no visitor at all and nobody in view."""
    path = tmp_path / "edge.db"
    db = open_database(path)
    insert_rows(db, {"line_crossings": door_steps(pets_site, [at(DAY, 9) + 300 * i
                                                              for i in range(18)])})
    report(db, at(DAY, 15), ("camera:view001", "ok", {"connected": True}))
    door = card(read(pets_site, path, at(DAY, 15), "/")[0], "footfall")
    assert "is expected" not in door
    assert "no visitor has been counted while the door counted 18 in" in door
    insert_rows(db, with_run(positions(at(DAY, 15) - 3, at(DAY, 15), range(2))))
    report(db, at(DAY, 15), ("camera:view001", "ok", {"connected": True}))
    door = card(read(pets_site, path, at(DAY, 15), "/")[0], "footfall")
    assert "0 visitors against 18 in is expected" in door   # they are still inside
    db.close()


def test_an_mqtt_window_the_sensor_heard_only_in_part_has_no_capture_rate(pets_site, tmp_path):
    """The hour's door count against the passers-by of its last half hour overstated the
    rate (the sensor started at 10:30): the window keeps its Wi-Fi figures of the part
    heard, and its capture rate is not known."""
    db = open_database(tmp_path / "edge.db")
    insert_rows(db, {"wifi_windows": [wifi_row(at(DAY, 10, 30) + 900 * i, frames=300, passers=40)
                                      for i in range(2)],
                     "line_crossings": door_steps(pets_site, [at(DAY, 10) + 120 * i
                                                              for i in range(30)])})
    message = full_message(aggregate_window(db, Window(at(DAY, 10), 3600), store="s",
                                            entrance_lines=pets_site.floor.entrance_line_ids))
    assert message["wifi"]["passers_by"] == 80
    assert message["footfall"] == {"in": 30, "out": 0, "capture_rate": None}
    contract.validate("aggregate", kanon.suppress(message, 5))
    db.close()


def test_a_day_partly_purged_shows_what_is_kept_as_at_least(pets_site, tmp_path):
    """Regression (review r04): the oldest day still partly kept read "34 visitors" while
    its hour rows added up to 31 and its morning hours read "not kept"; the zone and mix
    cards counted the same 34 as the day's. The total, zones, mix and parties now count
    the hours wholly kept, and say from when."""
    today = dt.date(2026, 12, 10)
    path = tmp_path / "edge.db"
    db = open_database(path)
    visits, dwell = [], []
    for back in range(9):
        day = today - dt.timedelta(days=back)
        for i in range(72):                           # one visit ending every 10 min from 08:10
            end, visit = at(day, 8) + 600 * (i + 1), f"{back:02d}{i:030x}"
            visits.append({"visit_id": visit, "site_id": "x", "camera_id": "store", "run_id": 1,
                           "track_id": 100 * back + i, "start_t": end - 900, "end_t": end,
                           "duration_s": 900, "path_length_m": 10, "checkout_visited": 0,
                           "features": "{}", "zone_sequence": '["deli"]', "spec_version": "t"})
            dwell.append({"visit_id": visit, "zone_id": "deli", "dwell_s": 60.0, "entries": 1})
    insert_rows(db, {"visits": visits, "visit_zone_dwell": dwell})
    now = at(today, 13, 30)
    purge(db, pets_site.storage, now, timezone=pets_site.site.timezone,
          margin_s=pets_site.service.purge_interval_s)
    db.close()
    oldest = (today - dt.timedelta(days=8)).isoformat()
    footfall, zones, mix, html = read(
        pets_site, path, now, f"/api/v1/footfall?day={oldest}", f"/api/v1/zones?day={oldest}",
        f"/api/v1/mix?day={oldest}", f"/?day={oldest}")
    shown = sum(h["today"] or 0 for h in footfall["hours"])
    assert footfall["total"] == shown == mix["total_visits"]
    assert [z["visitors"] for z in zones["zones"] if z["zone_id"] == "deli"] == [shown]
    words = card(html, "footfall")
    kept_from = footfall["kept_from_text"]
    assert f"at least {shown} visitors (kept from {kept_from})" in words
    for name in ("zones", "mix"):
        assert f"count the visitors from {kept_from} on only" in card(html, name)


def with_till_queue(site):
    """``site`` with a queue zone beside its checkout: the page's queue card then counts."""
    queue = ZoneConfig(id="till-queue", kind="queue", polygon=[(1, -6), (7.5, -6), (7.5, -4),
                                                               (1, -4)])
    floor = site.floor.model_copy(update={"zones": [*site.floor.zones, queue]})
    return site.model_copy(update={"floor": floor})


def test_conversion_and_queue_of_a_day_partly_purged_count_the_kept_part(pets_site, tmp_path):
    """Regression (review: partly purged day): 8 days on, the purge had deleted the
    morning's visits but not its till periods, which are never purged: conversion read
    90 transactions for 89 visits (101%), and the queue counted waits left of the hours
    the other cards no longer count. Both now count the kept part, the till periods that
    start in it (one straddling its start is left out), and say so as the other cards do."""
    site = with_till_queue(pets_site)
    path = tmp_path / "edge.db"
    db = open_database(path)
    # 10 transactions an hour, in periods 9-13, 13-14:30 (straddling 14:00, where the
    # kept part starts), 14:30-15 and 15-18; 20 visits an hour, every other one queued
    # (1 min in the morning, 2 min from 14:00).
    bounds = [at(DAY, h) for h in range(9, 14)] + [at(DAY, 14, 30)] + [
        at(DAY, h) for h in range(15, 19)]
    insert_rows(db, {"pos_periods": [
        {"period_start": start, "period_s": int(end - start),
         "transactions": round(10 * (end - start) / 3600), "source": "push", "received_at": 0}
        for start, end in zip(bounds, bounds[1:], strict=False)]})
    visits, waits = [], []
    for hour in range(9, 18):
        for i in range(20):
            end, visit = at(DAY, hour) + 30 + 180 * i, f"{hour:02d}{i:030x}"
            visits.append({"visit_id": visit, "site_id": "x", "camera_id": "store", "run_id": 1,
                           "track_id": 100 * hour + i, "start_t": end - 600, "end_t": end,
                           "duration_s": 600, "path_length_m": 10, "checkout_visited": 1,
                           "features": "{}", "zone_sequence": "[]", "spec_version": "t"})
            wait = 60.0 if hour < 14 else 120.0
            if i % 2 == 0:
                waits.append({"visit_id": visit, "queue_zone": "till-queue",
                              "checkout_zone": "checkout", "joined_t": end - 300,
                              "reached_t": end - 300 + wait, "wait_s": wait})
    insert_rows(db, {"visits": visits, "visit_queue_waits": waits})
    evening = at(DAY, 20)
    (before,) = read(site, path, evening, f"/api/v1/summary?day={DAY.isoformat()}")
    now = at(DAY + dt.timedelta(days=8), 13, 30)            # visits kept 8 days: from 13:30
    purge(db, site.storage, now, timezone=site.site.timezone,
          margin_s=site.service.purge_interval_s)
    db.close()
    after, html = read(site, path, now, f"/api/v1/summary?day={DAY.isoformat()}",
                       f"/?day={DAY.isoformat()}")
    assert before["conversion"] == {"periods": 9, "transactions": 90, "visits": 180,
                                    "rate": 0.5, "suppressed": False}
    assert after["footfall"]["kept_from_text"] == "14:00"
    assert after["conversion"] == {"periods": 4, "transactions": 35, "visits": 70,
                                   "rate": 0.5, "suppressed": False}
    assert (before["queue"]["waited"], before["queue"]["wait_p50_s"]) == (90, 60.0)
    queue = after["queue"]
    assert (queue["waited"], queue["wait_p50_s"], queue["wait_p90_s"]) == (40, 120.0, 120.0)
    note = "count the visitors from 14:00 on only"
    assert note in card(html, "queue")
    assert 'data-figure="queue-kept-from"' in html
    assert 'data-figure="conversion-kept-from"' in html
    assert "35 till transactions for 70 visitors in the 4 till periods" in card(html, "mix")
    # A day wholly purged: its queue card says so, not that no one queued.
    (gone,) = read(site, path, now, f"/?day={(DAY - dt.timedelta(days=1)).isoformat()}")
    assert "This day's visits are no longer kept" in card(gone, "queue")


def test_the_wifi_time_on_todays_page_is_a_clock_time(pets_site, tmp_path):
    """Regression (review): "About 4 people in the store by Wi-Fi at 10:15:00, Wed 02 Dec
    2026" on today's page: the time carried its date whatever the day shown."""
    path = tmp_path / "edge.db"
    db = open_database(path)
    insert_rows(db, {"wifi_windows": [wifi_row(at(DAY, 10), frames=100, passers=9, devices=4)]})
    db.close()
    wifi, html = read(pets_site, path, at(DAY, 11), "/api/v1/wifi", "/")
    assert wifi["latest_window_text"] == "10:15:00"
    assert "by Wi-Fi at 10:15:00." in card(html, "wifi")
