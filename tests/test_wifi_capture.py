"""Live capture without a monitor-mode card: the interface checks against a sysfs-like
tree, the watchdog on an injected clock, channel hopping through an injected ``iw``,
and the capture loop fed by a source that plays a shared capture in "real time"."""

from __future__ import annotations

import datetime as dt
import errno
import os
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from edge import figures
from edge.config.wifi import WifiConfig
from edge.runtime.schema import open_database
from edge.web import queries
from edge.wifi.capture import (
    CaptureError,
    CaptureWatchdog,
    ChannelHopper,
    FrameSource,
    ScapySource,
    check_monitor_interface,
    run_capture,
)
from edge.wifi.pcapfile import CaptureFile
from edge.wifi.pipeline import FramePipeline, replay_to_list
from edge.wifi.store import read_windows, write_windows
from tests.conftest import SINGLE_PHONES
from tests.test_wifi_brno import DAY, lab_pcs

pytestmark = pytest.mark.system

IPHONE = SINGLE_PHONES / "iPhone12-M_anonymized.pcap"


def fake_interface(root: Path, name: str, kind: int, state: str = "up", flags: str = "0x1003"):
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "type").write_text(f"{kind}\n")
    (folder / "operstate").write_text(f"{state}\n")
    (folder / "flags").write_text(f"{flags}\n")


def test_interface_checks_say_how_to_fix(tmp_path):
    fake_interface(tmp_path, "mon0", 803)
    fake_interface(tmp_path, "wlan0", 1)
    fake_interface(tmp_path, "mon1", 803, state="down", flags="0x1002")
    check_monitor_interface("mon0", tmp_path)
    with pytest.raises(CaptureError, match=r"no network interface 'mon9' \(this machine has: "
                                           r"mon0, mon1, wlan0\).*type monitor"):
        check_monitor_interface("mon9", tmp_path)
    with pytest.raises(CaptureError, match="'wlan0' is not in monitor mode .link type 1"):
        check_monitor_interface("wlan0", tmp_path)
    with pytest.raises(CaptureError, match="'mon1' is down; run `sudo ip link set mon1 up`"):
        check_monitor_interface("mon1", tmp_path)
    with pytest.raises(CaptureError, match="not a network interface name"):
        check_monitor_interface("../etc", tmp_path)


def test_watchdog_notices_silence_and_leaving_monitor_mode():
    now = [1000.0]
    monitor = [True]
    watchdog = CaptureWatchdog(300, lambda: monitor[0], clock=lambda: now[0])
    assert watchdog.check().status == "ok"
    now[0] += 299
    assert watchdog.check().status == "ok"
    now[0] += 2
    state = watchdog.check()
    assert state.status == "degraded" and "no probe request for 301 s" in state.message
    watchdog.frame_seen(now[0])
    assert watchdog.check().status == "ok"
    monitor[0] = False
    state = watchdog.check()
    assert state.status == "down" and "left monitor mode" in state.message


def test_channel_hopper_cycles_through_iw():
    calls: list[list[str]] = []
    done = threading.Event()

    def iw(args: list[str]) -> subprocess.CompletedProcess:
        calls.append(args)
        if len(calls) >= 5:
            done.set()
        return subprocess.CompletedProcess(args, 0, "", "")

    hopper = ChannelHopper("mon0", [1, 6, 11], 0.01, run=iw)
    hopper.start()
    assert done.wait(5)
    hopper.stop()
    assert calls[0] == ["iw", "dev", "mon0", "set", "channel", "1"]
    assert [c[-1] for c in calls[:5]] == ["1", "6", "11", "1", "6"]


def test_channel_hopper_counts_failures_without_stopping():
    hopper = ChannelHopper("mon0", [6], 1.0,
                           run=lambda a: subprocess.CompletedProcess(a, 1, "", "busy"))
    hopper.start()
    assert hopper.failures == 1 and hopper.current is None


class PcapAsLive(FrameSource):
    """Plays a capture as an interface would deliver it, with quiet gaps (None) where
    the air is silent; the clock follows the frames."""

    def __init__(self, path: Path, clock: list[float]) -> None:
        self.path, self.clock, self.closed = path, clock, False

    def frames(self):
        with CaptureFile(self.path) as capture:
            for frame in capture:
                while frame.timestamp - self.clock[0] > 1.0:   # a second with nothing
                    self.clock[0] += 1.0
                    yield None
                self.clock[0] = max(self.clock[0], frame.timestamp)
                yield frame.data, frame.timestamp
        for _ in range(120):                                   # two quiet minutes after
            self.clock[0] += 1.0
            yield None

    def close(self) -> None:
        self.closed = True


def test_live_loop_gives_the_same_windows_as_replay():
    config = WifiConfig(trust_la_bit=False)
    with CaptureFile(IPHONE) as capture:
        first = next(iter(capture)).timestamp
    clock = [first - 5.0]
    pipeline = FramePipeline(config, sensor="iface:test", window_sizes=[60, 900],
                             clock=lambda: clock[0])
    windows = []
    health = []
    source = PcapAsLive(IPHONE, clock)
    watchdog = CaptureWatchdog(30, lambda: True, clock=lambda: clock[0])
    run_capture(source, pipeline, windows.extend, watchdog=watchdog,
                on_health=lambda state, detail: health.append(state.status),
                clock=lambda: clock[0], monotonic=lambda: clock[0], health_every_s=10)
    assert source.closed
    replayed = replay_to_list(IPHONE, config, window_sizes=[60, 900])
    live = [(w.start, w.window_s, w.frames, w.in_store_devices, w.passers_by) for w in windows
            if w.frames]
    replay = [(w.start, w.window_s, w.frames, w.in_store_devices, w.passers_by)
              for w in replayed.windows if w.frames]
    assert sorted(live) == sorted(replay)
    assert "ok" in health and "degraded" in health        # the quiet tail was noticed
    assert any(w.frames == 0 for w in windows)             # quiet minutes still reported


def test_interface_leaving_monitor_mode_stops_the_capture():
    clock = [1_700_000_000.0]

    class Silent(FrameSource):
        def frames(self):
            while True:
                clock[0] += 1.0
                yield None

    pipeline = FramePipeline(WifiConfig(), sensor="iface:test", clock=lambda: clock[0])
    watchdog = CaptureWatchdog(300, lambda: clock[0] < 1_700_000_030, clock=lambda: clock[0])
    with pytest.raises(CaptureError, match="left monitor mode"):
        run_capture(Silent(), pipeline, lambda w: None, watchdog=watchdog,
                    clock=lambda: clock[0], monotonic=lambda: clock[0], health_every_s=5)


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0,
                    reason="a raw PF_PACKET socket needs CAP_NET_RAW")
def test_a_real_socket_feeds_the_same_loop():
    """Loopback is no monitor interface, but its socket is real: what arrives (Ethernet,
    not radiotap) is counted and skipped, the loop closes cleanly."""
    source = ScapySource("lo", timeout_s=0.2)
    pipeline = FramePipeline(WifiConfig(), sensor="iface:lo")
    stop = threading.Event()

    def traffic() -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            for _ in range(20):
                udp.sendto(b"not a probe request", ("127.0.0.1", 9))
                time.sleep(0.05)
        stop.set()

    sender = threading.Thread(target=traffic)
    sender.start()
    windows: list = []
    run_capture(source, pipeline, windows.extend, stop=stop)
    sender.join()
    stats = pipeline.stats
    assert stats.frames >= 20 and stats.probe_requests == 0
    assert sum(stats.skipped.values()) + stats.other_frames == stats.frames


class SteppedClock(FrameSource):
    """One strong probe request per ``period_s`` of real time for ``count`` frames, stamped
    by a wall clock that NTP steps by ``step_s`` after ``step_after`` frames."""

    def __init__(self, count: int, step_after: int, step_s: float, period_s: float = 0.0):
        with CaptureFile(IPHONE) as capture:
            self.data = [frame.data for frame in capture]
        self.count, self.step_after = count, step_after
        self.step_s, self.period_s = step_s, period_s
        self.t0 = 1_718_000_100.0 - time.monotonic()            # 2024-06-10T06:15:00Z
        self.stepped = False

    def wall(self) -> float:
        return self.t0 + time.monotonic() + (self.step_s if self.stepped else 0.0)

    def frames(self):
        for index in range(self.count):
            self.stepped = index >= self.step_after
            time.sleep(self.period_s)
            yield self.data[index % len(self.data)], self.wall()


def test_a_clock_stepped_back_does_not_stop_health_and_the_systemd_watchdog():
    """Regression (review, r2_clock_step_back): ticks and health were due when the wall
    clock had moved on by their period, so after NTP stepped it back 10 minutes neither
    ran for 10 minutes, and systemd (WatchdogSec=60, pinged from health) killed the
    service. They now run on monotonic time."""
    source = SteppedClock(count=60, step_after=20, step_s=-600.0, period_s=0.01)
    pipeline = FramePipeline(WifiConfig(trust_la_bit=False), sensor="iface:test",
                             window_sizes=[60], clock=source.wall)
    health: list[bool] = []
    watchdog = CaptureWatchdog(300, lambda: True)
    run_capture(source, pipeline, lambda windows: None, watchdog=watchdog,
                on_health=lambda state, detail: health.append(source.stepped),
                clock=source.wall, health_every_s=0.05)
    assert health.count(True) >= 3               # still reporting after the step
    assert pipeline.stats.clock_steps == 1


def test_a_clock_stepped_forward_claims_no_coverage_for_the_time_skipped():
    """Regression (review, r2b_clock_step_forward): after NTP stepped the clock an hour
    forward, the hour nobody listened to was written as four 15-minute windows covered
    for 900 s with no frame: a real zero as far as the page and head office knew."""
    source = SteppedClock(count=200, step_after=100, step_s=3600.0)
    pipeline = FramePipeline(WifiConfig(trust_la_bit=False), sensor="iface:test",
                             window_sizes=[900], clock=source.wall)
    windows: list = []
    run_capture(source, pipeline, windows.extend, clock=source.wall)
    assert [w.frames for w in windows] == [100, 100]       # before and after the step
    assert [w.start for w in windows] == [1_718_000_100.0, 1_718_000_100.0 + 3600]
    assert all(w.covered_s < 5 for w in windows)          # the frames came within a second


class Unplugged(FrameSource):
    """Delivers a few frames, then fails as a socket on a vanished interface does."""

    def __init__(self) -> None:
        with CaptureFile(IPHONE) as capture:
            self.data = [f.data for f, _ in zip(capture, range(30), strict=False)]
        self.closed = False

    def frames(self):
        for data in self.data:
            yield data, time.time()
        raise OSError(errno.ENETDOWN, "Network is down")

    def close(self) -> None:
        self.closed = True


def test_an_interface_that_vanishes_is_a_capture_error_that_says_so():
    """Regression (review, r5_interface_vanishes): an unplugged adapter surfaced as a bare
    OSError (Errno 100) instead of the CaptureError the service turns into its health
    message and exit; the windows counted until then are still written."""
    source = Unplugged()
    pipeline = FramePipeline(WifiConfig(), sensor="iface:test")
    windows: list = []
    with pytest.raises(CaptureError, match=r"reading frames raised Network is down \(errno "
                                           r"100\); the interface was most likely unplugged"):
        run_capture(source, pipeline, windows.extend)
    assert source.closed and sum(w.frames for w in windows if w.window_s == 900) == 30


class Slice(FrameSource):
    """Part of a capture played as an interface delivers it, the clock following."""

    def __init__(self, frames: list[tuple[float, bytes]], clock: list[float]) -> None:
        self.items, self.clock = frames, clock

    def frames(self) -> Iterator[tuple[bytes, float] | None]:
        for timestamp, data in self.items:
            while timestamp - self.clock[0] > 1.0:
                self.clock[0] += 1.0
                yield None
            self.clock[0] = max(self.clock[0], timestamp)
            yield data, timestamp


def service_process(db, frames: list[tuple[float, bytes]], config: WifiConfig) -> None:
    """One process of the live service: its own pipeline (its own key), windows written
    as the service writes them, and the open windows written at its stop."""
    clock = [frames[0][0] - 1.0]
    pipeline = FramePipeline(config, sensor="iface:mon0", timezone="Europe/Prague",
                             window_sizes=[60, 900], clock=lambda: clock[0])
    run_capture(Slice(frames, clock), pipeline, lambda windows: write_windows(db, windows),
                clock=lambda: clock[0], monotonic=lambda: clock[0])


def test_a_service_restarted_mid_window_keeps_the_frames_of_both_processes(tmp_path):
    """Regression (review): the Wi-Fi service restarted 471 s into the 14:15 window of
    the Brno capture; the restarted process's row replaced the one its predecessor
    stored at its stop, so the window held 191 frames instead of 365 (and its five
    phones, all new to the new process, as five arrivals). The parts now add up, and
    the phones heard on both sides are not counted twice."""
    config = WifiConfig(exclude_addresses=lab_pcs())
    restarted = 1_710_508_500.0                       # 2024-03-15 14:15 CET
    with CaptureFile(DAY) as capture:
        frames = [(f.timestamp, f.data) for f in capture]
    split = next(i for i, (t, _) in enumerate(frames) if t >= restarted + 470.7)
    db = open_database(tmp_path / "edge.db")
    service_process(db, frames[:split], config)
    service_process(db, frames[split:], config)
    whole = {(w.start, w.window_s): w for w in
             replay_to_list(DAY, config, timezone="Europe/Prague", window_sizes=[60, 900]).windows}
    stored = {(r["window_start"], r["window_s"]): r for r in read_windows(db)}
    row, truth = stored[(restarted, 900)], whole[(restarted, 900)]
    assert (row["frames"], truth.frames) == (365, 365)
    assert set(stored) == set(whole)
    for key, truth_of_key in whole.items():
        counted = stored[key]
        assert (counted["frames"], counted["in_store_frames"], counted["excluded_frames"]) == (
            truth_of_key.frames, truth_of_key.in_store_frames, truth_of_key.excluded_frames), key
        assert abs(counted["passers_by"] - truth_of_key.passers_by) <= 1, key  # a cut burst
    # No phone counted twice: at most what one process heard all along, at least each part.
    assert row["in_store_devices"] <= truth.in_store_devices
    assert row["arrived_devices"] <= truth.arrived_devices
    # The page and head office read that row: the day's passers-by and the window's
    # largest count agree with the uninterrupted count (to the cut burst).
    day = queries.DayWindow.of(dt.date(2024, 3, 15), ZoneInfo("Europe/Prague"))
    page = queries.wifi(db.conn, {"wifi_windows"}, day, ZoneInfo("Europe/Prague"))
    assert abs(page.passers_by - sum(w.passers_by for w in whole.values()
                                     if w.window_s == 900)) <= 1
    rows = figures.wifi_window_rows(db.conn, restarted, restarted + 900, ending_inside=True)
    [sub] = figures.wifi_sub_windows(rows)[1]
    assert sub.in_store_devices == row["in_store_devices"]
    assert abs(sub.passers_by - truth.passers_by) <= 1
