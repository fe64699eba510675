"""The stored Wi-Fi windows: a live service restarted inside a window adds its part to
the row the earlier process stored (frames add up, devices are not counted twice), and
a replay run again replaces its rows. The restart through the live loop, and what the
page and the aggregates then read, is in ``test_wifi_capture.py``."""

from __future__ import annotations

import json

import pytest

from edge.wifi.store import ReplayWriter, merge_rows, read_windows, write_windows
from edge.wifi.windows import WifiWindow

T0 = 1_710_500_400.0        # 2024-03-15T11:00:00Z, a multiple of 900


def window(start: float = T0, *, frames: int, devices: int, arrived: int, passers: int = 0,
           covered: float = 450.0, short: int = 0) -> WifiWindow:
    """A 15-minute window of ``devices`` in store, ``short`` of them under 5 minutes."""
    return WifiWindow(
        start=start, window_s=900, sensor="iface:mon0", covered_s=covered, frames=frames,
        in_store_frames=frames, excluded_frames=0, in_store_devices=devices,
        arrived_devices=arrived, brief_devices=1, passers_by=passers,
        occupancy_estimate=devices * 0.5,
        dwell_buckets={"<5m": short, "5-15m": devices - short, "15-30m": 0, "30-60m": 0,
                       "60m+": 0})


def test_a_restart_inside_a_window_adds_to_the_stored_row(memory_db):
    before = window(frames=174, devices=6, arrived=1, passers=34, covered=455.0, short=1)
    after = window(frames=191, devices=5, arrived=5, passers=31, covered=430.0, short=5)
    write_windows(memory_db, [before])
    write_windows(memory_db, [after])
    [row] = read_windows(memory_db)
    assert (row["frames"], row["in_store_frames"], row["passers_by"]) == (365, 365, 65)
    assert row["covered_s"] == 885.0
    # The restarted process took its five phones for newcomers: they are not added.
    assert (row["in_store_devices"], row["arrived_devices"], row["brief_devices"]) == (6, 1, 1)
    assert row["dwell_buckets"]["<5m"] == 1 and row["occupancy_estimate"] == 3.0


@pytest.mark.parametrize("before, after, expected", [
    ((4, 2), (7, 7), (7, 5)),       # three more phones after the restart: they arrived
    ((4, 2), (7, 1), (7, 3)),       # ...but never more than the later part counted
    ((4, 0), (4, 4), (4, 0)),       # the same phones
    ((0, 0), (3, 3), (3, 3)),
])
def test_merged_devices_and_arrivals(before, after, expected):
    earlier = window(frames=10, devices=before[0], arrived=before[1]).as_row()
    later = window(frames=10, devices=after[0], arrived=after[1], covered=900.0).as_row()
    merged = merge_rows(earlier, later)
    assert (merged["in_store_devices"], merged["arrived_devices"]) == expected
    assert merged["covered_s"] == 900.0             # never more than the window
    assert sum(json.loads(merged["dwell_buckets"]).values()) == merged["in_store_devices"]
    assert merge_rows(earlier, {**later, "arrived_devices": None})["arrived_devices"] is None


def test_a_replay_run_again_replaces_its_rows_and_keeps_both_parts_of_a_broken_window(memory_db):
    """A damaged time stamp inside a window splits it in two parts: both are kept (the
    second one replaced the first); replaying the capture again stores the same rows."""
    first = window(frames=3, devices=1, arrived=1, covered=100.0)
    jump = window(T0 + 86400 * 365, frames=1, devices=0, arrived=0, covered=0.0)
    second = window(frames=4, devices=1, arrived=0, covered=200.0)
    for _ in range(2):
        writer = ReplayWriter(memory_db)
        writer.write([first, jump])
        writer.write([second])
        assert writer.rows == 2
        rows = {r["window_start"]: r for r in read_windows(memory_db)}
        assert (rows[T0]["frames"], rows[T0]["covered_s"], rows[T0]["arrived_devices"]) == (
            7, 300.0, 1)
