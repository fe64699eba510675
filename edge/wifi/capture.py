"""Live capture of probe requests on a monitor-mode interface.

The live path is deliberately thin: a :class:`FrameSource` yields ``(bytes,
timestamp)`` and :func:`run_capture` hands every frame to the same
:class:`~edge.wifi.pipeline.FramePipeline` that pcap replay uses, so the tests that
replay the shared captures test live frame handling too. What is live-only:

- :func:`check_monitor_interface`: the interface exists, is up and delivers
  radiotap (link type 803), else a clear error saying how to set it up;
- :class:`ScapySource`: scapy's ``L2listen`` with the kernel BPF filter
  ``type mgt subtype probe-req`` (beacons never reach Python), raw bytes only;
- :class:`ChannelHopper`: ``iw dev IFACE set channel N`` over the configured list;
- :class:`CaptureWatchdog`: flags an interface that went quiet or left monitor mode
  (adapters do, silently).
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from edge.clock_steps import CLOCK_STEP_S  # the same rule as the fusion service's
from edge.errors import SourceError
from edge.wifi.pcapfile import LINKTYPE_RADIOTAP
from edge.wifi.pipeline import FramePipeline
from edge.wifi.windows import WifiWindow

log = logging.getLogger(__name__)

BPF_PROBE_REQUESTS = "type mgt subtype probe-req"
ARPHRD_IEEE80211_RADIOTAP = 803
SYSFS_NET = Path("/sys/class/net")

SETUP_HINT = (
    "put a Wi-Fi adapter that supports monitor mode into monitor mode, e.g. "
    "`sudo iw dev wlan0 interface add mon0 type monitor && sudo ip link set mon0 up` "
    "(stop NetworkManager/wpa_supplicant from managing it), then run "
    "`edge wifi sniff --iface mon0`; `iw dev` lists interfaces and their types"
)


class CaptureError(SourceError):
    """A live capture interface is missing, not in monitor mode, or not readable."""


def interface_type(iface: str, sysfs: Path = SYSFS_NET) -> int | None:
    """The ARPHRD link type of ``iface`` (803 = monitor mode with radiotap), or None."""
    try:
        return int((sysfs / iface / "type").read_text().strip())
    except (OSError, ValueError):
        return None


def check_monitor_interface(iface: str, sysfs: Path = SYSFS_NET) -> None:
    """Raise a :class:`CaptureError` that says how to fix it unless ``iface`` is a
    monitor-mode interface that is up."""
    if not iface or "/" in iface or iface in (".", ".."):
        raise CaptureError(f"{iface!r} is not a network interface name; {SETUP_HINT}")
    if not (sysfs / iface).exists():
        known = sorted(p.name for p in sysfs.iterdir()) if sysfs.is_dir() else []
        raise CaptureError(
            f"no network interface {iface!r} (this machine has: {', '.join(known) or 'none'}); "
            f"{SETUP_HINT}"
        )
    kind = interface_type(iface, sysfs)
    if kind != ARPHRD_IEEE80211_RADIOTAP:
        raise CaptureError(
            f"interface {iface!r} is not in monitor mode (link type {kind}, expected "
            f"{ARPHRD_IEEE80211_RADIOTAP} = 802.11 radiotap); {SETUP_HINT}"
        )
    try:
        state = (sysfs / iface / "operstate").read_text().strip()
    except OSError:
        state = "unknown"
    flags = (sysfs / iface / "flags")
    up = state in ("up", "unknown")
    with contextlib.suppress(OSError, ValueError):
        up = up and bool(int(flags.read_text(), 16) & 0x1)
    if not up:
        raise CaptureError(f"interface {iface!r} is down; run `sudo ip link set {iface} up`")


class FrameSource:
    """Yields ``(frame bytes, capture time)`` or ``None`` when nothing came for a while."""

    def frames(self) -> Iterator[tuple[bytes, float] | None]:
        raise NotImplementedError

    def close(self) -> None:
        """Release the interface."""


class ScapySource(FrameSource):
    """Raw radiotap frames from scapy's ``L2listen`` socket, kernel-filtered."""

    def __init__(self, iface: str, *, timeout_s: float = 1.0) -> None:
        import select

        from scapy.error import Scapy_Exception

        try:
            from scapy.arch.linux import L2ListenSocket
        except ImportError:
            raise CaptureError("live capture needs Linux (PF_PACKET sockets)") from None
        self._select = select.select
        self.timeout_s = timeout_s
        self.kernel_filter = True
        try:
            try:
                self._socket = L2ListenSocket(iface=iface, filter=BPF_PROBE_REQUESTS)
            except (ImportError, Scapy_Exception) as error:
                if "libpcap" not in str(error):
                    raise CaptureError(
                        f"cannot set the probe-request filter on {iface!r} ({error}); this "
                        f"usually means the interface is not really in monitor mode; {SETUP_HINT}"
                    ) from None
                # No libpcap to compile BPF: take every frame, the parser drops the rest.
                log.warning("libpcap missing (apt-get install libpcap0.8): no kernel filter, "
                            "every frame reaches Python")
                self.kernel_filter = False
                self._socket = L2ListenSocket(iface=iface)
        except PermissionError:
            raise CaptureError(
                "live capture needs CAP_NET_RAW: run as root or grant it, e.g. "
                "`sudo setcap cap_net_raw,cap_net_admin+eip $(readlink -f .venv/bin/python)`"
            ) from None
        except OSError as error:
            raise CaptureError(f"cannot open {iface!r} for capture: {error.strerror}") from None

    def frames(self) -> Iterator[tuple[bytes, float] | None]:
        sock = self._socket
        while True:
            ready, _, _ = self._select([sock], [], [], self.timeout_s)
            if not ready:
                yield None
                continue
            _cls, data, timestamp = sock.recv_raw()
            if data is None:
                continue
            yield data, float(timestamp) if timestamp is not None else time.time()

    def close(self) -> None:
        self._socket.close()


class ChannelHopper:
    """Cycles the interface over ``channels`` with ``iw`` in a daemon thread.

    With one channel it sets it once and stays (probemon's advice: hopping loses more
    than it gains when one busy channel sees most probes).
    """

    def __init__(
        self,
        iface: str,
        channels: list[int],
        interval_s: float,
        *,
        run: Callable[[list[str]], subprocess.CompletedProcess] | None = None,
    ) -> None:
        self.iface = iface
        self.channels = list(channels)
        self.interval_s = interval_s
        self._uses_iw = run is None
        self._run = run or _run_iw
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.failures = 0
        self.current: int | None = None

    def set_channel(self, channel: int) -> bool:
        result = self._run(["iw", "dev", self.iface, "set", "channel", str(channel)])
        if result.returncode != 0:
            self.failures += 1
            if self.failures == 1:
                log.warning("iw could not set %s to channel %d: %s", self.iface, channel,
                            (result.stderr or "").strip()[:200])
            return False
        self.current = channel
        return True

    def start(self) -> None:
        if self._uses_iw and shutil.which("iw") is None:
            raise CaptureError("the `iw` tool is missing: sudo apt-get install iw")
        self.set_channel(self.channels[0])
        if len(self.channels) > 1:
            self._thread = threading.Thread(target=self._loop, name="wifi-hop", daemon=True)
            self._thread.start()

    def _loop(self) -> None:
        index = 0
        while not self._stop.wait(self.interval_s):
            index = (index + 1) % len(self.channels)
            self.set_channel(self.channels[index])

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)


def _run_iw(args: list[str]) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(args, capture_output=True, text=True, timeout=5, check=False)
    except (OSError, subprocess.TimeoutExpired) as error:
        return subprocess.CompletedProcess(args, 1, "", str(error))


@dataclass(slots=True)
class WatchdogState:
    status: str      # "ok", "degraded" or "down"
    message: str


class CaptureWatchdog:
    """Notices an interface that stopped delivering frames or left monitor mode.

    Args:
        silence_s: no frame for this long -> degraded.
        monitor_check: returns True while the interface is still in monitor mode.
        clock: seconds, monotonic (injectable): a wall clock stepped back would hide
            silence, one stepped forward would invent it.
    """

    def __init__(
        self,
        silence_s: float,
        monitor_check: Callable[[], bool],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.silence_s = silence_s
        self._monitor_check = monitor_check
        self._clock = clock
        self.started = clock()
        self.last_frame: float | None = None

    def frame_seen(self, when: float | None = None) -> None:
        self.last_frame = self._clock() if when is None else when

    def check(self) -> WatchdogState:
        now = self._clock()
        if not self._monitor_check():
            return WatchdogState("down", "the interface left monitor mode or disappeared; "
                                 + SETUP_HINT)
        since = now - (self.last_frame if self.last_frame is not None else self.started)
        if since >= self.silence_s:
            return WatchdogState("degraded", f"no probe request for {since:.0f} s: check the "
                                 "adapter, its channel and that nothing else manages it")
        return WatchdogState("ok", "receiving probe requests")


def run_capture(
    source: FrameSource,
    pipeline: FramePipeline,
    on_windows: Callable[[list[WifiWindow]], None],
    *,
    watchdog: CaptureWatchdog | None = None,
    on_health: Callable[[WatchdogState, dict[str, object]], None] | None = None,
    stop: threading.Event | None = None,
    clock: Callable[[], float] = time.time,
    monotonic: Callable[[], float] = time.monotonic,
    health_every_s: float = 10.0,
) -> None:
    """Feed every frame of ``source`` into ``pipeline`` until ``stop`` is set (or the
    source ends), closing windows by the clock when the air is quiet.

    Periodic work (closing windows, health, hence the systemd watchdog's ping) runs on
    ``monotonic`` time, so a wall clock stepped back cannot hold it off. A wall-clock
    step (``clock`` moving more than ``CLOCK_STEP_S`` away from ``monotonic``) ends the
    open windows at the old time and restarts them at the new one: no window claims
    time nobody listened to.

    A "down" watchdog state ends the capture with a :class:`CaptureError` (systemd
    restarts the service, which re-checks the interface), and so does an interface
    that fails under the socket (unplugged, driver reset).
    """
    stop = stop or threading.Event()
    pipeline.start(clock())
    last_tick = last_health = float("-inf")
    last_wall, last_mono = clock(), monotonic()
    try:
        for item in _frames(source):
            now, mono = clock(), monotonic()
            # Checked before the frame is counted: its time stamp is on the new clock.
            stepped = (now - last_wall) - (mono - last_mono)
            last_wall, last_mono = now, mono
            if abs(stepped) > CLOCK_STEP_S:
                log.warning("the wall clock stepped %+.0f s: Wi-Fi windows end at the old time "
                            "and start again at the new one", stepped)
                closed = pipeline.clock_stepped(now - stepped, now)
                if closed:
                    on_windows(closed)
            if item is not None:
                data, timestamp = item
                closed = pipeline.feed(data, timestamp, LINKTYPE_RADIOTAP)
                if closed:
                    on_windows(closed)
                if watchdog is not None:
                    watchdog.frame_seen()
            if mono - last_tick >= 1.0:
                last_tick = mono
                closed = pipeline.tick(now)
                if closed:
                    on_windows(closed)
            if watchdog is not None and mono - last_health >= health_every_s:
                last_health = mono
                state = watchdog.check()
                if on_health is not None:
                    on_health(state, pipeline.stats.as_dict())
                if state.status == "down":
                    raise CaptureError(state.message)
            if stop.is_set():
                break
    finally:
        source.close()
        closed = pipeline.finish()
        if closed:
            on_windows(closed)


def _frames(source: FrameSource) -> Iterator[tuple[bytes, float] | None]:
    """``source.frames()``, with an interface that fails under the socket (``OSError``:
    ENETDOWN when unplugged, ENODEV, ENXIO...) as a :class:`CaptureError` that says so."""
    frames = source.frames()
    while True:
        try:
            item = next(frames)
        except StopIteration:
            return
        except OSError as error:
            raise CaptureError(
                f"Wi-Fi capture failed: reading frames raised {error.strerror or error} "
                f"(errno {error.errno}); the interface was most likely unplugged, reset or "
                f"taken down: check it with `iw dev` and `ip link` ({SETUP_HINT})"
            ) from error
        yield item
