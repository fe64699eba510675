"""The live Wi-Fi counter: a monitor interface in, per-window counts and health out.

Shared by ``edge wifi sniff`` (an engineer at a terminal) and ``edge run wifi`` (the
systemd service), so both run exactly the same capture path.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path

import sqlite_utils

from edge.config import SiteConfig
from edge.config.wifi import WifiConfig
from edge.privacy.settings import record_key_rotation, record_service_start
from edge.storage.health import report_health
from edge.wifi.capture import (
    ARPHRD_IEEE80211_RADIOTAP,
    CaptureError,
    CaptureWatchdog,
    ChannelHopper,
    FrameSource,
    ScapySource,
    WatchdogState,
    check_monitor_interface,
    interface_type,
    run_capture,
)
from edge.wifi.debug_capture import RawPcapTee
from edge.wifi.pipeline import FramePipeline
from edge.wifi.store import write_windows
from edge.wifi.windows import WifiWindow

log = logging.getLogger(__name__)


class FrameRate:
    """Frames per second between two health reports, from the pipeline's frame counter."""

    def __init__(self) -> None:
        self._last: tuple[int, float] | None = None

    def update(self, counters: dict[str, object], now: float) -> float | None:
        frames = counters.get("frames")
        if not isinstance(frames, int):
            return None
        last, self._last = self._last, (frames, now)
        if last is None or now <= last[1]:
            return None
        return round((frames - last[0]) / (now - last[1]), 2)


def health_detail(
    counters: dict[str, object],
    state: WatchdogState,
    channel: int | None,
    frames_per_s: float | None,
) -> dict[str, object]:
    """The pipeline's counters plus the figures the status page shows, spelled as it
    reads them (``edge/web/health.py``: frames_per_s, monitor_mode, channel)."""
    return {
        **counters,
        "frames_per_s": frames_per_s,
        # The watchdog's only "down" is an interface that left monitor mode or vanished.
        "monitor_mode": state.status != "down",
        "channel": channel,
    }


def run_sniffer(
    site: SiteConfig,
    iface: str,
    db: sqlite_utils.Database,
    stop: threading.Event,
    *,
    channels: list[int] | None = None,
    window_sizes: list[int] | None = None,
    on_windows: Callable[[list[WifiWindow]], None] | None = None,
    on_alive: Callable[[], None] | None = None,
    raw_pcap: Path | None = None,
    source_name: str = "service:wifi",
) -> None:
    """Capture on ``iface`` until ``stop`` is set, writing windows and health to ``db``.

    Args:
        raw_pcap: debug mode only (the caller announces it): also keep every raw frame
            in this pcap file.
        source_name: who started the capture, for the privacy audit log.

    Raises:
        CaptureError: the interface is missing, not in monitor mode, or stops delivering.
    """
    check_monitor_interface(iface)
    config = site.wifi or WifiConfig()
    record_service_start(db, site, source_name)

    def key_rotated(previous: str | None, day: str) -> None:
        try:
            record_key_rotation(db, previous, day, f"{source_name} ({iface})")
        except sqlite3.Error as error:   # counting goes on; the journal has the event
            log.error("Wi-Fi key rotated for %s but the audit log could not record it: %s",
                      day, error)

    pipeline = FramePipeline(
        config,
        sensor=f"iface:{iface}",
        timezone=site.site.timezone,
        window_sizes=sorted(set(config.windows_s) | set(window_sizes or [])),
        on_rotate=key_rotated,
    )
    component = f"wifi:{iface}"

    def windows_closed(windows: list[WifiWindow]) -> None:
        # Added to what is stored: after a restart inside a window, this process's part
        # joins the part the previous process wrote at its stop (store.merge_rows).
        write_windows(db, windows)
        if on_windows is not None:
            on_windows(windows)

    rate = FrameRate()

    def health(state, detail) -> None:
        per_s = rate.update(detail, time.monotonic())   # a stepped wall clock would skew it
        figures = health_detail(detail, state, hopper.current, per_s)
        report_health(db, component, state.status, state.message, figures)
        if on_alive is not None and state.status != "down":
            on_alive()

    hopper = ChannelHopper(iface, channels or config.channels, config.hop_interval_s)
    hopper.start()
    watchdog = CaptureWatchdog(
        config.silence_alarm_s, lambda: interface_type(iface) == ARPHRD_IEEE80211_RADIOTAP
    )
    final = "Wi-Fi counting stopped."
    try:
        source: FrameSource = ScapySource(iface)
        if raw_pcap is not None:
            source = RawPcapTee(source, raw_pcap)
        run_capture(source, pipeline, windows_closed, watchdog=watchdog,
                    on_health=health, stop=stop, clock=time.time)
    except CaptureError as error:
        final = str(error)
        raise
    except Exception as error:
        # Not a clean stop: say so where the status page and the journal look.
        final = f"Wi-Fi counting failed: {type(error).__name__}: {error}"
        log.error("%s", final)
        raise
    finally:
        hopper.stop()
        report_health(db, component, "down", final, pipeline.stats.as_dict())
