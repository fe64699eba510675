"""The status page in a real headless Chromium, served by uvicorn, on a database
filled by replays of the shared PETS recording.

The figures the browser shows are checked against the database with SQL written
here. Screenshots go to test-artifacts/web/ (git-ignored).
"""

from __future__ import annotations

import datetime as dt
import sqlite3
import statistics
from pathlib import Path

import pytest
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from edge.config import load_site
from edge.runtime.schema import open_database
from edge.web.app import create_app
from edge.web.dashboard import WebDeps
from tests.conftest import PETS_SITE, REPO
from tests.support import web_support
from tests.support.browser import chromium, needs_chromium
from tests.support.web_support import (
    DAY,
    LONDON,
    NOW,
    at,
    served,
    shared_store_db,
    store_site,
    with_web,
)

ARTIFACTS = REPO / "test-artifacts" / "web"
PIN = "2468"

pytestmark = [pytest.mark.system, needs_chromium]


@pytest.fixture(scope="module")
def site():
    return store_site(load_site(PETS_SITE))


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with chromium(tmp_path_factory.mktemp("chromium-profile")) as driver:
        yield driver


def screenshot(driver, name: str, height: int | None = None) -> Path:
    """A full-page picture: the window is stretched to the page's height first."""
    width = driver.get_window_size()["width"]
    full = height or driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(width, min(int(full) + 120, 6000))
    path = ARTIFACTS / f"{name}.png"
    assert driver.save_screenshot(str(path)) and path.stat().st_size > 5_000
    driver.set_window_size(width, 900)
    return path


def figure(driver, name: str) -> str:
    """The figure's text. The page swaps its figures in every few seconds, so an element
    found may be replaced before its text is read: then read the new one."""
    for _ in range(5):
        try:
            return driver.find_element(By.CSS_SELECTOR, f'[data-figure="{name}"]').text.strip()
        except StaleElementReferenceException:
            continue
    raise AssertionError(f"figure {name!r} kept being replaced while read")


def severe_console_messages(driver) -> list[str]:
    return [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def table_rows(driver, key: str) -> dict[str, list[str]]:
    """``data-KEY`` value -> the row's cell texts, for each ``tr[data-KEY]``."""
    return {row.get_attribute(f"data-{key}"): [c.text for c in row.find_elements(By.TAG_NAME, "td")]
            for row in driver.find_elements(By.CSS_SELECTOR, f"tr[data-{key}]")}


def sign_in(driver, base: str, pin: str) -> None:
    field = driver.find_element(By.ID, "pin")
    field.clear()
    field.send_keys(pin)
    driver.find_element(By.CSS_SELECTOR, "form.login button").click()


def test_page_shows_the_database_figures(site, browser, tmp_path_factory):
    browser.get_log("browser")  # start from an empty console
    db_path = shared_store_db(tmp_path_factory)
    app = create_app(WebDeps(
        site=with_web(site, access="pin", pin=PIN, cache_s=0), db_path=db_path,
        clock=lambda: NOW))
    with served(app) as base:
        browser.get(f"{base}/?day={DAY.isoformat()}")
        assert "/login" in browser.current_url
        sign_in(browser, base, "9999")
        assert "That PIN is not right" in figure(browser, "login-message")
        screenshot(browser, "login-wrong-pin")
        sign_in(browser, base, PIN)
        WebDriverWait(browser, 10).until(lambda d: "/login" not in d.current_url)
        browser.get_log("browser")  # the wrong PIN's 401 is expected; nothing else may fail
        assert browser.find_element(By.ID, "dashboard").is_displayed()
        screenshot(browser, "dashboard-desktop")
        shown = {name: figure(browser, name) for name in (
            "occupancy-people", "occupancy-as-of", "footfall-total", "footfall-compare-total",
            "entrance-in", "entrance-out", "mix-total", "wifi-passers-by", "wifi-came-in",
            "wifi-capture-rate")}
        hour_rows = {int(key): cells for key, cells in table_rows(browser, "hour").items()}
        zone_rows = table_rows(browser, "zone")
        trait_rows = table_rows(browser, "trait")
        cells = browser.find_elements(By.CSS_SELECTOR, "svg.floor rect.cell")
        zones = browser.find_elements(By.CSS_SELECTOR, "svg.floor polygon.zone")
        floor_box = browser.find_element(By.CSS_SELECTOR, "svg.floor").rect
        badges = {li.get_attribute("data-component"): li.find_element(By.CLASS_NAME, "badge").text
                  for li in browser.find_elements(By.CSS_SELECTOR, "ul.health li")}
        # Tablet, portrait: the same page must still read in one column.
        browser.set_window_size(800, 1280)
        browser.refresh()
        assert browser.execute_script(
            "return document.documentElement.scrollWidth <= window.innerWidth")
        screenshot(browser, "dashboard-tablet")
        browser.set_window_size(1280, 900)
        assert severe_console_messages(browser) == []  # no script error, no CSP violation

    db = sqlite3.connect(db_path)
    start, end = web_support.day_bounds(DAY)
    k = site.privacy.min_publishable_count
    truth = web_support.expected_day(db, DAY)

    assert shown["occupancy-people"] == str(truth.people)
    as_of = dt.datetime.fromtimestamp(truth.latest, LONDON).strftime("%H:%M:%S")
    assert shown["occupancy-as-of"] == as_of

    today, week_ago = truth.hours, truth.hours_last_week
    assert shown["footfall-total"] == str(sum(today.values()))
    assert shown["footfall-compare-total"] == str(sum(week_ago.values()))
    now_hour = dt.datetime.fromtimestamp(NOW, LONDON).hour
    for hour, (label, visitors, last_week) in hour_rows.items():
        # An hour still to come is blank, never 0 (test_web_footfall_hours).
        today_cell = str(today[hour]) if hour <= now_hour else ""
        expected = (f"{hour:02d}:00", today_cell, str(week_ago[hour]))
        assert (label, visitors, last_week) == expected
    assert any(hour > now_hour for hour in hour_rows)
    assert set(today) | set(week_ago) <= set(hour_rows)
    directions = truth.crossings
    assert shown["entrance-in"] == str(directions["in"])
    assert shown["entrance-out"] == str(directions["out"])

    assert set(zone_rows) == {z.id for z in site.floor.zones}
    total = truth.visits
    for zone_id, cells_text in zone_rows.items():
        values = truth.dwell.get(zone_id, [])
        if 0 < len(values) < k:  # a small group
            assert cells_text[1] == f"hidden: fewer than {k} visitors"
        elif 0 < total - len(values) < k:  # its rest is a small group
            assert cells_text[1] == "hidden: almost everyone went here"
        else:
            assert cells_text[1] == str(len(values))
            if values:
                median = statistics.median(values)
                words = f"{median:.0f} s" if median < 90 else f"{median / 60:.0f} min"
                assert cells_text[2] == words

    assert shown["mix-total"] == str(total)
    for trait, count in truth.traits.items():
        row = trait_rows[trait]
        scored = truth.traits_scored[trait]  # a trait's share is of the visits it judged
        share = f"{100 * count / scored:.0f}%"
        hidden = count < k or 0 < scored - count < k
        if hidden:
            assert row[1].startswith("hidden: "), row
        else:
            assert row[1:] == [str(count), share]

    came_in, passing = web_support.expected_wifi(db, start, end)
    assert (shown["wifi-came-in"], shown["wifi-passers-by"]) == (str(came_in), str(passing))
    # the capture rate head office gets: people in at the door against phones passing
    assert shown["wifi-capture-rate"] == (
        f"{100 * directions['in'] / (directions['in'] + passing):.0f}%")

    heat, crossers = web_support.expected_heatmap(db, site, start, end)
    assert len(cells) == sum(1 for key, v in heat.items() if v > 0 and len(crossers[key]) >= k) > 20
    assert len(zones) == len(site.floor.zones)
    assert floor_box["width"] > 400 and floor_box["height"] > 300
    assert badges == {"camera:view001": "Working", "visits": "No news",
                      "sync": "Needs attention", "wifi:wlan1": "Working"}


def test_page_refreshes_itself_when_new_data_arrives(site, browser, tmp_path):
    path = tmp_path / "live.db"
    db = open_database(path)
    clock = [at(DAY, dt.time(12))]

    def frame(people: int, t: float) -> None:
        with db.atomic():
            db["track_points"].insert_all(
                {"run_id": None, "camera_id": "view001", "track_id": i, "frame": int(t * 7),
                 "t": t, "x": -10.0 + i, "y": -8.0, "left": 0, "top": 0, "width": 1,
                 "height": 1, "confidence": 0.9} for i in range(people))

    frame(2, clock[0] - 1)
    app = create_app(WebDeps(site=with_web(site, access="open-lan", refresh_s=2, cache_s=0),
                             db_path=path, clock=lambda: clock[0]))
    with served(app) as base:
        browser.get(base + "/")
        assert figure(browser, "occupancy-people") == "2"
        browser.execute_script("window.notReloaded = true;")
        clock[0] += 10
        frame(5, clock[0] - 1)
        WebDriverWait(browser, 15, poll_frequency=0.3).until(
            lambda d: figure(d, "occupancy-people") == "5")
        assert browser.execute_script("return window.notReloaded === true")  # swapped, not reloaded
        assert browser.find_element(By.ID, "dashboard").get_attribute("data-refreshed")
        # The database is damaged: the page passes on what the box says, not that it is
        # unreachable.
        db.close()
        for leftover in (path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
            leftover.unlink(missing_ok=True)
        path.write_bytes(b"not a database " * 1000)
        WebDriverWait(browser, 15, poll_frequency=0.3).until(
            lambda d: d.find_element(By.ID, "refresh-note").is_displayed())
        note = browser.find_element(By.ID, "refresh-note").text
        assert "damaged" in note and "out of date" in note and "Cannot reach" not in note, note
        # The box goes away: the page says so instead of failing silently.
    WebDriverWait(browser, 15, poll_frequency=0.3).until(
        lambda d: "Cannot reach the box" in d.find_element(By.ID, "refresh-note").text)
    screenshot(browser, "dashboard-box-unreachable")


@pytest.mark.parametrize("kind", ["missing", "empty"])
def test_empty_states_say_what_to_do(site, browser, tmp_path, kind):
    path = tmp_path / "edge.db"
    if kind == "empty":
        open_database(path).close()
    app = create_app(WebDeps(site=with_web(site, access="open-lan"), db_path=path,
                             clock=lambda: NOW))
    with served(app) as base:
        browser.get_log("browser")
        browser.get(base + "/")
        messages = {name: figure(browser, name) for name in (
            "data-state", "occupancy-empty", "footfall-empty", "heatmap-empty", "mix-empty",
            "wifi-empty", "health-empty")}
        screenshot(browser, f"dashboard-{kind}-database")
        assert severe_console_messages(browser) == []
    assert ("edge replay" in messages["data-state"]) == (kind == "missing")
    assert "Check that the cameras are working" in messages["occupancy-empty"]
    assert "Wi-Fi sensor" in messages["wifi-empty"]
    assert "ask IT" in messages["health-empty"]


def test_heat_map_labels_are_readable_on_a_phone(site, browser, tmp_path_factory):
    """Regression (issue 18 #12): on a phone the area names on the heat map were about
    6 px high: they were drawn in the map's own units, which shrink with the screen.
    Measured in a 390 px wide viewport: every label shown is at least 11 px, and the
    names are listed under the map."""
    store_db = shared_store_db(tmp_path_factory)
    app = create_app(WebDeps(site=with_web(site, access="open-lan"), db_path=store_db,
                             clock=lambda: NOW))
    with served(app) as base:
        browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
            "width": 390, "height": 844, "deviceScaleFactor": 1, "mobile": True})
        try:
            browser.get(base + "/?day=" + DAY.isoformat())
            assert browser.execute_script("return window.innerWidth") == 390
            sizes = browser.execute_script("""
                return [...document.querySelectorAll('svg.floor text, svg.floor-labels text')]
                  .filter(e => e.getBoundingClientRect().width > 0)
                  .map(e => [e.textContent,
                             parseFloat(getComputedStyle(e).fontSize) * e.getScreenCTM().a]);""")
            legend = figure(browser, "zone-legend")
            screenshot(browser, "dashboard-phone")
        finally:
            browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    assert len(sizes) == len(site.floor.zones)
    assert all(size >= 11 for _, size in sizes), sizes
    for zone in site.floor.zones:
        assert (zone.name or zone.id) in legend
