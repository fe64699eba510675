"""Devices to people: the fitted factor, camera people per window from real track rows,
manual count files, and the ``wifi`` section of the site config."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from edge import figures
from edge.config import parse_site
from edge.errors import ConfigError, DataFormatError
from edge.web import queries
from edge.wifi.calibration import (
    CalibrationDataError,
    camera_people,
    fit_people_per_device,
    manual_counts,
    pearson,
    wifi_devices,
)
from edge.wifi.store import write_windows
from edge.wifi.windows import DWELL_BUCKETS, WifiWindow
from sync.aggregate import Window, aggregate_window

T0 = 1_710_500_400.0


def test_fit_recovers_a_known_factor():
    devices = [0, 2, 4, 6, 8, 10]
    people = [0, 1.4, 2.8, 4.2, 5.6, 7.0]
    fit = fit_people_per_device(devices, people)
    assert fit.people_per_device == 0.7 and fit.windows == 6
    assert fit.pearson_r == pytest.approx(1.0) and fit.mean_abs_error == pytest.approx(0, abs=1e-9)


def test_fit_refuses_too_little_data():
    with pytest.raises(CalibrationDataError, match="need at least 4 windows"):
        fit_people_per_device([1, 2], [1, 2])
    with pytest.raises(CalibrationDataError, match="no in-store device"):
        fit_people_per_device([0, 0, 0, 0], [1, 2, 3, 4])


def test_pearson_is_undefined_for_constant_series():
    assert pearson([1, 1, 1], [1, 2, 3]) is None
    assert pearson([1, 2, 3], [2, 4, 6]) == pytest.approx(1.0)


def stored(start: float, window_s: int, sensor: str, devices: int) -> WifiWindow:
    buckets = {label: 0 for label, _ in DWELL_BUCKETS} | {"5-15m": devices}
    return WifiWindow(start=start, window_s=window_s, sensor=sensor, covered_s=window_s,
                      frames=10 * devices, in_store_frames=10 * devices, excluded_frames=0,
                      in_store_devices=devices, arrived_devices=0, brief_devices=0,
                      passers_by=devices, occupancy_estimate=float(devices),
                      dwell_buckets=buckets)


def test_calibrate_counts_the_devices_the_page_and_the_aggregates_count(memory_db):
    """Regression (review): ``edge wifi calibrate`` added the sensors' devices up per
    window, where the status page and the aggregates take the largest sensor
    (edge.figures.wifi_sub_windows): with two sensors hearing the same phones, the
    factor came out about half of what it should be. Each window's devices for the fit
    are now the figure the page and head office see for it."""
    devices = {"iface:front": [3, 5, 0, 7], "iface:back": [4, 2, 1, 7]}
    write_windows(memory_db, [stored(T0 + 900 * i, 900, sensor, n)
                              for sensor, counts in devices.items()
                              for i, n in enumerate(counts)])
    write_windows(memory_db, [stored(T0 + 60 * i, 60, "iface:front", 9) for i in range(30)])
    fitted = wifi_devices(memory_db, 900)
    assert fitted == {T0: 4, T0 + 900: 5, T0 + 1800: 1, T0 + 2700: 7}
    rows = figures.wifi_window_rows(memory_db.conn, T0, T0 + 3600, ending_inside=True)
    length, subs = figures.wifi_sub_windows(rows)
    assert length == 900 and fitted == {sub.start: sub.in_store_devices for sub in subs}
    for start, count in fitted.items():        # each window's aggregate sent to head office
        sent = aggregate_window(memory_db, Window(start, 900), store="shop", entrance_lines=[])
        assert sent.wifi is not None and sent.wifi.in_store_devices == count
    utc = ZoneInfo("UTC")
    page = queries.wifi(memory_db.conn, {"wifi_windows"},
                        queries.DayWindow.of(dt.date(2024, 3, 15), utc), utc)
    assert page.in_store_devices == max(fitted.values())
    assert wifi_devices(memory_db, 900, "iface:back") == {
        T0 + 900 * i: n for i, n in enumerate(devices["iface:back"])}
    assert wifi_devices(memory_db, 60)[T0] == 9 and wifi_devices(memory_db, 300) == {}


def test_camera_people_from_track_points(memory_db):
    from edge.storage.trajectories import start_run

    run = start_run(memory_db, "view001", "test", "yolox")
    rows = []
    # Two people for the whole first window, one for half of the second.
    for second in range(0, 900):
        for track in (1, 2):
            rows.append((run, track, T0 + second))
    for second in range(900, 1350):
        rows.append((run, 3, T0 + second))
    memory_db["track_points"].insert_all(
        {"run_id": r, "camera_id": "view001", "track_id": t, "frame": 0, "t": when,
         "x": 0.0, "y": 0.0, "left": 0.0, "top": 0.0, "width": 1.0, "height": 1.0,
         "confidence": 0.9} for r, t, when in rows)
    people = camera_people(memory_db, 900, [T0, T0 + 900, T0 + 3600])
    assert people[T0] == pytest.approx(2.0, abs=0.01)
    assert people[T0 + 900] == pytest.approx(1.0, abs=0.01)    # the run ended mid-window
    assert T0 + 3600 not in people                              # no camera ran then


def test_manual_counts_file(tmp_path):
    path = tmp_path / "counts.csv"
    path.write_text("window_start,people\n2024-03-15T12:00:00+01:00,5\n1710502200,3.5\n")
    assert manual_counts(path) == {T0: 5.0, 1710502200.0: 3.5}
    for content, message in [
        ("when,people\n1,2\n", "expected a CSV header"),
        ("window_start,people\n2024-03-15T12:00:00,5\n", ":2: window_start .* needs a time zone"),
        ("window_start,people\nyesterday,5\n", "is not ISO 8601"),
        ("window_start,people\n1,-2\n", "people cannot be -2"),
        ("window_start,people\n1,many\n", "is not a number"),
    ]:
        path.write_text(content)
        with pytest.raises(DataFormatError, match=message):
            manual_counts(path)
    with pytest.raises(DataFormatError, match="does not exist"):
        manual_counts(tmp_path / "nope.csv")


SITE = "site: {id: shop}\nfloor: {bounds: [[0, 0], [10, 8]]}\nweb: {access: open-lan}\n"


def test_wifi_section_defaults_and_normalisation():
    assert parse_site(SITE).wifi is None
    site = parse_site(
        SITE + "wifi:\n  exclude_addresses: [DC-FB-48-DD-C6-0B]\n  windows_s: [900, 60]\n")
    assert site.wifi.exclude_addresses == ["dc:fb:48:dd:c6:0b"]
    assert site.wifi.windows_s == [60, 900] and site.wifi.channels == [1, 6, 11]
    assert site.wifi.rssi_gate_dbm == -70 and site.wifi.pseudonym_bits == 20


@pytest.mark.parametrize("section", [
    "wifi: {windows_s: [60, 300]}\nsync: {window_s: 900}",
    "wifi: {windows_s: [60, 900]}\nsync: {window_s: 1800}",
    "wifi: {windows_s: [60, 600]}\nsync: {enabled: false}",    # nothing aggregated
])
def test_wifi_windows_that_fit_the_sync_window_are_accepted(section):
    assert parse_site(SITE + section + "\n").wifi is not None


@pytest.mark.parametrize(
    "section, message",
    [
        ("wifi: {rssi_gate_dbm: 10}", "rssi_gate_dbm"),
        ("wifi: {windows_s: [7]}", "must divide a day"),
        ("wifi: {channels: [15]}", "not Wi-Fi channel numbers"),
        ("wifi: {pseudonym_bits: 128}", "pseudonym_bits"),
        ("wifi: {link_window_s: 900, forget_after_s: 600}", "forget_after_s"),
        ("wifi: {rssi_gate: -70}", "rssi_gate"),
        # Regression (review, r9_page_vs_mqtt): accepted, then the aggregates never sent
        # the 600 s windows across a 900 s boundary (981 passers-by sent, 1351 on the page).
        ("wifi: {windows_s: [60, 600]}\nsync: {window_s: 900}",
         r"wifi\.windows_s: every Wi-Fi window length must divide sync\.window_s \(900 s\).* "
         r"600 s does not: use e\.g\. \[60, 900\], or change sync\.window_s"),
        ("wifi: {windows_s: [60, 900]}\nsync: {window_s: 600}", r"\(600 s\).* 900 s does not"),
    ],
)
def test_wifi_section_errors_name_the_line(section, message):
    with pytest.raises(ConfigError, match=message) as caught:
        parse_site(SITE + section + "\n")
    assert ":4" in str(caught.value)
