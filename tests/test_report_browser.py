"""The HTML report in a real headless Chromium: it renders without a console error,
loads nothing from anywhere, shows every plot, and its table says what the database
holds (recomputed here with SQL). Screenshot: test-artifacts/report/report.png."""

from __future__ import annotations

import sqlite3

import pytest
from selenium.webdriver.common.by import By

from tests.conftest import REPO
from tests.support.browser import chromium, needs_chromium
from tests.support.report_support import FRAMES

ARTIFACTS = REPO / "test-artifacts" / "report"

pytestmark = [pytest.mark.system, needs_chromium]


@pytest.fixture(scope="module")
def page(annotated, tmp_path_factory):
    with chromium(tmp_path_factory.mktemp("chromium-profile")) as driver:
        driver.get(annotated["a.html"].as_uri())
        yield driver


def test_renders_without_console_errors_and_loads_nothing(page):
    assert page.title.startswith("Replay report: PETS09 demo store")
    errors = [entry for entry in page.get_log("browser") if entry["level"] == "SEVERE"]
    assert errors == []
    # Self-contained: the page fetched no resource at all (plots are data: URLs).
    fetched = page.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)")
    assert [name for name in fetched if not name.startswith("data:")] == []


def test_every_plot_is_drawn(page):
    plots = {figure.get_attribute("data-plot"): figure
             for figure in page.find_elements(By.CSS_SELECTOR, "figure[data-plot]")}
    assert set(plots) == {"heatmap", "trajectories", "zone-dwell", "footfall", "mix", "wifi",
                          "dwell-accuracy"}
    for name, figure in plots.items():
        image = figure.find_element(By.TAG_NAME, "img")
        width, height = page.execute_script(
            "const i = arguments[0]; return [i.naturalWidth, i.naturalHeight];", image)
        assert width > 300 and height > 200, name
        assert image.is_displayed()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    full = page.execute_script("return document.documentElement.scrollHeight")
    page.set_window_size(1280, min(int(full) + 100, 8000))
    assert page.save_screenshot(str(ARTIFACTS / "report.png"))
    page.set_window_size(1280, 900)


def test_keep_it_local_is_the_first_thing_shown(page):
    banner = page.find_element(By.ID, "keep-local")
    assert banner.is_displayed() and "keep it local" in banner.text
    assert banner.location["y"] < 60


def shown(page, name: str) -> str:
    return page.find_element(By.CSS_SELECTOR, f'tr[data-figure="{name}"] td').text


def test_the_numbers_shown_are_the_databases(page, annotated):
    db = sqlite3.connect(annotated["edge.db"])
    run = db.execute("select max(id) from runs").fetchone()[0]
    assert shown(page, "run_id") == str(run)
    assert shown(page, "frames") == str(FRAMES)
    points, tracks = db.execute("select count(*), count(distinct track_id) from track_points "
                                "where run_id = ?", (run,)).fetchone()
    assert (shown(page, "track_points"), shown(page, "tracks")) == (str(points), str(tracks))
    visits = db.execute("select count(*) from visits where run_id = ?", (run,)).fetchone()[0]
    assert shown(page, "visits") == str(visits)
    crossings_in = db.execute("select count(*) from line_crossings where run_id = ? and "
                              "direction = 'in'", (run,)).fetchone()[0]
    assert shown(page, "line_crossings_in") == str(crossings_in)
    for zone, count in db.execute("select d.zone_id, count(*) from visit_zone_dwell d join "
                                  "visits v using (visit_id) where v.run_id = ? and "
                                  "d.dwell_s > 0 group by d.zone_id", (run,)):
        assert shown(page, f"zone.{zone}.visits") == str(count)
    sensor, windows = db.execute("select sensor, count(*) from wifi_windows where window_s = 60 "
                                 "group by sensor").fetchone()
    assert shown(page, f"wifi.{sensor}.windows") == str(windows)
    hota = page.find_element(By.CSS_SELECTOR, 'tr[data-accuracy="mot.HOTA"] td').text
    assert 0.3 < float(hota) < 0.9
