"""The status page says what it does not know instead of a figure that reads as measured.

Each test is a field failure a reviewer reproduced on the page (and, for the Wi-Fi
figures, in the MQTT aggregates): a deaf sensor read as "nobody passed", a dead camera
as "nobody in the store", and so on. Real SQLite files, the real app, a fixed clock.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

from fastapi.testclient import TestClient

from edge.runtime.schema import open_database
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
