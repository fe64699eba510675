"""Windows: clock-aligned, emitted even when empty, honest about coverage; dwell buckets;
passers-by counted as bursts; the stored row and the JSON form."""

from __future__ import annotations

import json

import pytest

from edge.config.wifi import WifiConfig
from edge.wifi.parser import EXCLUDED, STRONG, WEAK, Probe
from edge.wifi.windows import WifiWindow, WindowCounter, dwell_bucket

T0 = 1_710_500_400.0        # 2024-03-15T11:00:00Z, a multiple of 900


def strong(t: float) -> Probe:
    return Probe(t, -50, 2412, 0, STRONG, 7, True, 1)


def weak(t: float, fingerprint: int = 5) -> Probe:
    return Probe(t, -85, 2412, 0, WEAK, None, True, fingerprint)


def test_windows_are_aligned_and_quiet_ones_still_come_out():
    counter = WindowCounter(60, "test", lateness_s=0)
    assert counter.add(strong(T0 + 10), 1, T0 + 10) == []
    closed = counter.add(strong(T0 + 200), 1, T0 + 10)     # three minutes later
    assert [w.start for w in closed] == [T0, T0 + 60, T0 + 120]
    assert [w.frames for w in closed] == [1, 0, 0]
    assert closed[0].covered_s == 50 and closed[1].covered_s == 60
    last = counter.finish()[0]
    assert last.start == T0 + 180 and last.covered_s == 20 and last.frames == 1


def test_in_store_needs_dwell_and_buckets_add_up():
    counter = WindowCounter(900, "test", WifiConfig(min_dwell_s=60, people_per_device=0.5),
                            lateness_s=0)
    counter.add(strong(T0 + 1), 1, T0 - 2000)     # seen since 33 min ago -> 30-60m
    counter.add(strong(T0 + 5), 2, T0 + 5)        # one burst only -> brief
    counter.add(strong(T0 + 10), 3, T0 + 10)
    counter.add(strong(T0 + 400), 3, T0 + 10)     # 390 s -> 5-15m
    window = counter.finish()[0]
    assert window.in_store_devices == 2 and window.brief_devices == 1
    assert window.dwell_buckets == {"<5m": 0, "5-15m": 1, "15-30m": 0, "30-60m": 1, "60m+": 0}
    assert window.occupancy_estimate == 1.0


def test_passers_by_are_bursts_of_weak_frames():
    counter = WindowCounter(900, "test", burst_gap_s=2.0)
    for t in (0.0, 0.3, 0.9, 1.5):           # one scan on three channels
        counter.add(weak(T0 + t), None, None)
    counter.add(weak(T0 + 40.0), None, None)  # the next scan
    counter.add(weak(T0 + 40.1, fingerprint=9), None, None)   # another model, same moment
    counter.add(Probe(T0 + 41, -50, 2412, 0, EXCLUDED, None, False, 3), None, None)
    window = counter.finish()[0]
    assert window.passers_by == 3 and window.excluded_frames == 1 and window.frames == 7
    assert window.in_store_devices == 0


def test_merge_of_two_ids_counts_one_device():
    counter = WindowCounter(900, "test", WifiConfig(min_dwell_s=60))
    counter.add(strong(T0 + 1), 1, T0 + 1)
    counter.add(strong(T0 + 100), 2, T0 + 100)
    counter.merge(2, 1)
    window = counter.finish()[0]
    assert window.in_store_devices == 1 and window.brief_devices == 0


def _quarters(frames: list[tuple[float, int, float]], **options: float) -> list[WifiWindow]:
    """Windows of 15 minutes from ``(time after T0, device id, first seen)`` frames."""
    counter = WindowCounter(900, "test", WifiConfig(min_dwell_s=60), lateness_s=0, **options)
    windows: list[WifiWindow] = []
    for t, device, first_seen in frames:
        windows += counter.add(strong(T0 + t), device, T0 + first_seen)
    return windows + counter.finish()


def test_a_phone_in_the_store_for_an_hour_arrives_once():
    """Regression: the page summed in_store_devices over a day's windows, counting a
    phone that stayed an hour four times ("81 phones came in" for 16 on the Brno
    capture). It is present in four windows and arrives in the first."""
    windows = _quarters([(t, 7, 0.0) for t in range(0, 3600, 30)])
    assert [w.in_store_devices for w in windows] == [1, 1, 1, 1]
    assert [w.arrived_devices for w in windows] == [1, 0, 0, 0]


def test_a_phone_arrives_in_the_next_window_where_it_is_in_store():
    """Its dwell reaches min_dwell_s in a window where it sends nothing: it is counted
    once, in the next window that holds a frame of it, and not again after that."""
    windows = _quarters([(880.0, 7, 880.0),          # one burst: brief
                         (1850.0, 7, 880.0),         # 970 s later, after a silent window
                         (2800.0, 7, 880.0), (3700.0, 7, 880.0)])
    assert [w.brief_devices for w in windows] == [1, 0, 0, 0, 0]
    assert [w.in_store_devices for w in windows] == [0, 0, 1, 1, 1]
    assert [w.arrived_devices for w in windows] == [0, 0, 1, 0, 0]


def test_a_phone_back_after_a_silent_window_is_not_a_new_arrival():
    windows = _quarters([(0.0, 7, 0.0), (100.0, 7, 0.0), (2000.0, 7, 0.0)])
    assert [w.in_store_devices for w in windows] == [1, 0, 1]
    assert [w.arrived_devices for w in windows] == [1, 0, 0]


@pytest.mark.parametrize("absorbed, kept", [(1, 2), (2, 1)])
def test_a_merge_does_not_count_a_device_twice(absorbed, kept):
    """The estimator learns in the second window that ids 1 and 2 are one phone: id 1
    arrived in the first window, so the merged device has arrived, whichever id is kept."""
    counter = WindowCounter(900, "test", WifiConfig(min_dwell_s=60), lateness_s=0)
    counter.add(strong(T0 + 10), 1, T0 + 10)
    counter.add(strong(T0 + 200), 1, T0 + 10)
    counter.add(strong(T0 + 950), 2, T0 + 950)
    counter.add(strong(T0 + 1100), 2, T0 + 950)
    counter.merge(absorbed, kept)
    counter.add(strong(T0 + 1200), kept, T0 + 10)
    windows = counter.finish()
    assert [w.in_store_devices for w in windows] == [1]
    assert [w.arrived_devices for w in windows] == [0]


def test_arrival_memory_stays_bounded():
    """100,000 phones over five days, one coming in every 4 s and heard again 120 s
    later: the ids kept to avoid counting an arrival twice are only those the
    estimator may still return (unheard for less than forget_after_s and a margin)."""
    counter = WindowCounter(900, "test", WifiConfig(min_dwell_s=60, forget_after_s=1800),
                            lateness_s=0)
    windows: list[WifiWindow] = []
    largest = 0
    phones, again = 100_000, 30          # the phone that came in 30 steps (120 s) ago
    for step in range(phones + again):
        t = T0 + 4.0 * step
        if step < phones:
            windows += counter.add(strong(t), step, t)
        if step >= again:
            windows += counter.add(strong(t), step - again, t - 120.0)
        largest = max(largest, counter.remembered_arrivals)
    windows += counter.finish()
    assert sum(w.arrived_devices for w in windows) == phones
    assert largest <= (1800 + 60 + 900) / 4 + 1


def test_late_frames_within_tolerance_stay_in_their_window():
    counter = WindowCounter(60, "test", lateness_s=2.0)
    counter.add(strong(T0 + 59.5), 1, T0)
    assert counter.add(strong(T0 + 60.5), 1, T0) == []
    closed = counter.add(strong(T0 + 59.9), 1, T0)        # reordered by a second sniffer
    assert closed == []
    closed = counter.add(strong(T0 + 63.0), 1, T0)
    assert closed[0].in_store_frames == 3


def test_record_checks_itself():
    good = dict(start=T0, window_s=900, sensor="s", covered_s=900.0, frames=1,
                in_store_frames=1, excluded_frames=0, in_store_devices=1, arrived_devices=1,
                brief_devices=0, passers_by=0, occupancy_estimate=1.0,
                dwell_buckets={"<5m": 1, "5-15m": 0, "15-30m": 0, "30-60m": 0, "60m+": 0})
    WifiWindow(**good)
    for change, message in [
        ({"covered_s": 901.0}, "covered_s"),
        ({"frames": -1}, "negative"),
        ({"in_store_devices": 2, "arrived_devices": 2}, "dwell buckets"),
        ({"arrived_devices": 2}, "arrived_devices"),
        ({"arrived_devices": -1}, "arrived_devices"),
        ({"window_s": 0}, "window_s"),
    ]:
        with pytest.raises(ValueError, match=message):
            WifiWindow(**{**good, **change})


def test_json_and_row_forms_hold_only_counts():
    counter = WindowCounter(900, "pcap:x.pcap")
    counter.add(strong(T0 + 1), 1, T0 - 100)
    window = counter.finish()[0]
    as_json = window.as_json()
    assert as_json["window_start"] == "2024-03-15T11:00:00+00:00"
    assert {"window_start", "frames", "in_store_devices", "arrived_devices", "passers_by",
            "occupancy_estimate"} <= set(as_json)
    json.dumps(as_json)
    row = window.as_row()
    assert row["window_start"] == T0 and json.loads(row["dwell_buckets"])["<5m"] == 1
    assert row["arrived_devices"] == as_json["arrived_devices"] == 1
    assert all(isinstance(v, (int, float, str)) for v in row.values())


@pytest.mark.parametrize("seconds, label", [(0, "<5m"), (299, "<5m"), (300, "5-15m"),
                                            (1799, "15-30m"), (3600, "60m+"), (86400, "60m+")])
def test_dwell_buckets(seconds, label):
    assert dwell_bucket(seconds) == label


def test_a_clock_jump_does_not_flood_empty_windows():
    counter = WindowCounter(60, "test")
    counter.add(strong(T0), 1, T0)
    closed = counter.add(strong(T0 + 40 * 365 * 86400), 1, T0)     # a damaged time stamp
    assert len(closed) == 1 and counter.time_jumps == 1
    assert len(counter.finish()) == 1


def test_windows_recover_from_a_time_stamp_far_in_the_future():
    """Regression (review, r1_future_timestamp): after one frame stamped 2090, only forward
    jumps were noticed, so every later frame was counted in the 2090 window. A jump back
    ends that window and the frames after it are counted in their own windows."""
    future = 3_800_000_000.0
    day2 = T0 + 86400
    counter = WindowCounter(60, "test", lateness_s=0)
    counter.add(strong(T0 + 5), 1, T0 + 5)
    counter.add(weak(T0 + 6), None, None)
    closed = counter.add(strong(future), 1, T0 + 5)              # a damaged time stamp
    closed += counter.add(weak(day2 + 10), None, None)           # the next real frame
    closed += counter.add(strong(day2 + 20), 2, day2 + 20)
    closed += counter.add(strong(day2 + 70), 2, day2 + 20)
    closed += counter.finish()
    assert [(w.start, w.frames, w.passers_by) for w in closed] == [
        (T0, 2, 1), (future - future % 60, 1, 0), (day2, 2, 1), (day2 + 60, 1, 0)]
    assert counter.time_jumps == 2
    assert closed[1].covered_s == 0 and closed[2].covered_s == 50
