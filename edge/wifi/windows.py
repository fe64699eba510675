"""Per-window Wi-Fi figures: the only thing of Wi-Fi the box keeps or sends.

A window (1 or 15 minutes, aligned to the clock) ends as a :class:`WifiWindow` of
counts: frames, in-store devices (seen above the RSSI gate long enough to be more
than a passing burst), arrivals (in-store devices counted in store for the first
time), passers-by, dwell buckets and the occupancy estimate. Device ids are
in-memory integers that never reach a window: per-window state dies with the window,
and the ids already counted as arrivals are kept only while the device estimator
may still hand them out (see :class:`WindowCounter`).

A device present for an hour is in store in four 15-minute windows but arrives in
one: ``in_store_devices`` answers "how many phones were here during the window",
``arrived_devices`` "how many came in during it", and only the latter adds up over
a day.

Passers-by never have a pseudonym: they are counted as *bursts*, runs of weak
frames with one IE fingerprint less than ``burst_gap_s`` apart (a phone sends one
burst per scan, on each channel in quick succession). Only the fingerprint and the
time of its last weak frame are held, for a few seconds.
"""

from __future__ import annotations

import json
import math
from dataclasses import KW_ONLY, dataclass, field, fields
from datetime import UTC, datetime, tzinfo
from typing import Any

from edge.config.wifi import WifiConfig
from edge.wifi.devices import EXPIRY_INTERVAL_S
from edge.wifi.parser import EXCLUDED, STRONG, Probe

DWELL_BUCKETS: tuple[tuple[str, float], ...] = (
    ("<5m", 300.0),
    ("5-15m", 900.0),
    ("15-30m", 1800.0),
    ("30-60m", 3600.0),
    ("60m+", math.inf),
)


# Longer than this without a frame is a clock jump (or a damaged time stamp), not quiet.
MAX_QUIET_S = 2 * 86400.0
# A frame this much older than the open window is a clock step back (or follows a
# damaged, later time stamp), not a late frame: the windows start again at its time.
MAX_LATE_S = 60.0


def dwell_bucket(seconds: float) -> str:
    for label, upper in DWELL_BUCKETS:
        if seconds < upper:
            return label
    return DWELL_BUCKETS[-1][0]


@dataclass(frozen=True, slots=True)
class WifiWindow:
    """Counts for one window of one sensor. No identifier of any kind."""

    start: float                  # epoch seconds, aligned to window_s
    window_s: int
    sensor: str
    covered_s: float              # seconds of the window the capture actually covered
    frames: int                   # probe requests received (all strengths)
    in_store_frames: int          # of those, above the RSSI gate and not excluded
    excluded_frames: int          # from the site's own (excluded) devices
    in_store_devices: int         # present during the window (dwell >= min so far)
    arrived_devices: int          # of those, in store for the first time (adds up over a day)
    brief_devices: int            # above the gate but a single burst (dwell < min)
    passers_by: int               # weak bursts (see module doc)
    occupancy_estimate: float     # people, from in_store_devices x people_per_device
    dwell_buckets: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.window_s <= 0:
            raise ValueError(f"window_s must be positive, got {self.window_s}")
        if not 0 <= self.covered_s <= self.window_s:
            raise ValueError(f"covered_s must be within 0..{self.window_s}, got {self.covered_s}")
        counts = (self.frames, self.in_store_frames, self.excluded_frames,
                  self.in_store_devices, self.brief_devices, self.passers_by)
        if min(counts) < 0:
            raise ValueError(f"counts cannot be negative, got {counts}")
        if not 0 <= self.arrived_devices <= self.in_store_devices:
            raise ValueError(f"arrived_devices must be within 0..in_store_devices "
                             f"({self.in_store_devices}), got {self.arrived_devices}")
        if sum(self.dwell_buckets.values()) != self.in_store_devices:
            raise ValueError("dwell buckets must add up to in_store_devices")

    def iso_start(self, tz: tzinfo = UTC) -> str:
        return datetime.fromtimestamp(self.start, tz).isoformat()

    def _fields(self, **overrides: Any) -> dict[str, Any]:
        """Every field by name, in order, ``start`` named ``window_start``; ``overrides``
        replace values in place."""
        values = {("window_start" if f.name == "start" else f.name): getattr(self, f.name)
                  for f in fields(self)}
        return {**values, **overrides}

    def as_json(self, tz: tzinfo = UTC) -> dict[str, Any]:
        """The stable JSON form scripts read (``edge wifi replay --json``)."""
        return self._fields(window_start=self.iso_start(tz), covered_s=round(self.covered_s, 3))

    def as_row(self) -> dict[str, Any]:
        """A ``wifi_windows`` row."""
        return self._fields(dwell_buckets=json.dumps(self.dwell_buckets, sort_keys=True))


@dataclass(eq=False)
class WindowCounter:
    """Accumulates one window size; emits each window once it is over.

    Attributes:
        window_s: window length; windows start at multiples of it (epoch seconds).
        config: the sensor's settings: ``min_dwell_s`` (a device counts as in store
            once it has been seen this long), ``people_per_device`` (the calibration
            factor: occupancy = devices x factor) and ``forget_after_s`` (the device
            estimator's: after that long unheard, a device that comes back gets a new
            id, a new visit).
        burst_gap_s: weak frames of one fingerprint closer than this are one burst.
        lateness_s: frames may arrive this much out of order; a window closes only
            when a frame this far past its end arrives (or the clock says so).

    Arrivals: a device arrives in the first window in which it is in store, whether
    or not it sent a frame in the window where its dwell reached ``min_dwell_s``
    (in store needs a frame in the window). The ids already counted are remembered
    with their last frame time and dropped once the estimator can no longer return
    them: ids are never reused, and the estimator forgets a device unheard for
    ``forget_after_s``, checking every ``EXPIRY_INTERVAL_S`` of frame time, so an
    id unheard for ``forget_after_s + EXPIRY_INTERVAL_S + lateness_s`` never comes
    back (memory is bounded by the devices of the last half hour or so, not by the
    day). A merge hands the absorbed id's "already counted" to the kept one, so a
    device is not counted again after it; two ids counted in earlier windows and
    merged later stay counted twice (those windows are closed).
    """

    window_s: int
    sensor: str
    config: WifiConfig = field(default_factory=WifiConfig)
    _: KW_ONLY
    burst_gap_s: float = 2.0
    lateness_s: float = 2.0

    def __post_init__(self) -> None:
        self._start: float | None = None
        self._covered_from = math.inf
        self._covered_to = -math.inf
        self._reset_counts()
        self._weak_last: dict[int, float] = {}   # fingerprint -> last weak frame time
        # device id -> its last frame time, for devices already counted as arrived
        self._arrived: dict[int, float] = {}
        self.time_jumps = 0

    def _reset_counts(self) -> None:
        self._frames = 0
        self._in_store_frames = 0
        self._excluded = 0
        self._passers_by = 0
        # device id -> [first seen (ever, today), last frame time in this window]
        self._devices: dict[int, list[float]] = {}

    def _align(self, t: float) -> float:
        return math.floor(t / self.window_s) * self.window_s

    def add(
        self, probe: Probe, device_id: int | None, first_seen: float | None
    ) -> list[WifiWindow]:
        """Count one probe; returns the windows it closed (possibly several, if quiet)."""
        t = probe.timestamp
        if self._start is not None and (t - self._start > MAX_QUIET_S
                                        or t < self._start - MAX_LATE_S):
            # A clock jump or a corrupt time stamp, not a quiet day nor a late frame: end
            # the window and start again at the new time instead of emitting thousands of
            # empty ones, or counting every later frame in the window of a future one.
            closed = self.restart()
            self.time_jumps += 1
        else:
            closed = []
        self._covered_from = min(self._covered_from, t)
        self._covered_to = max(self._covered_to, t)
        if self._start is not None:
            closed += self.advance(t - self.lateness_s)
        else:
            self._start = self._align(t)
        self._frames += 1
        if probe.status == STRONG:
            self._in_store_frames += 1
            if device_id is not None and first_seen is not None:
                seen = self._devices.get(device_id)
                if seen is None:
                    self._devices[device_id] = [first_seen, t]
                else:
                    seen[0] = min(seen[0], first_seen)
                    seen[1] = max(seen[1], t)
        elif probe.status == EXCLUDED:
            self._excluded += 1
        else:
            last = self._weak_last.get(probe.fingerprint)
            if last is None or t - last > self.burst_gap_s:
                self._passers_by += 1
            if last is None or t > last:
                self._weak_last[probe.fingerprint] = t
        return closed

    def merge(self, absorbed: int, kept: int) -> None:
        """The estimator found that two device ids are one device."""
        counted = self._arrived.pop(absorbed, None)
        if counted is not None:
            self._arrived[kept] = max(counted, self._arrived.get(kept, counted))
        old = self._devices.pop(absorbed, None)
        if old is None:
            return
        seen = self._devices.setdefault(kept, old)
        seen[0] = min(seen[0], old[0])
        seen[1] = max(seen[1], old[1])

    def advance(self, now: float) -> list[WifiWindow]:
        """Close every window that ended at or before ``now``."""
        closed = []
        while self._start is not None and now >= self._start + self.window_s:
            closed.append(self._close())
            self._start += self.window_s
            self._reset_counts()
            self._weak_last = {f: t for f, t in self._weak_last.items()
                               if now - t <= self.burst_gap_s}
        return closed

    def start_coverage(self, t: float) -> None:
        """Mark the capture as running from ``t`` (live capture: windows with no frames)."""
        if self._start is None:
            self._start = self._align(t)
        self._covered_from = min(self._covered_from, t)
        self._covered_to = max(self._covered_to, t)

    def extend_coverage(self, t: float) -> None:
        self._covered_to = max(self._covered_to, t)

    def finish(self) -> list[WifiWindow]:
        """Emit the open (partial) window, if any frame or coverage reached it."""
        if self._start is None:
            return []
        window = self._close()
        self._start = None
        self._covered_from, self._covered_to = math.inf, -math.inf
        self._reset_counts()
        return [window]

    def restart(self) -> list[WifiWindow]:
        """The time line broke (a clock step, a damaged time stamp): emit the open window
        as covered up to now, and count what comes next from its own time. The weak
        bursts' times go too: one from the other side of a jump would hide or split a
        burst until the clock caught up with it."""
        self._weak_last = {}
        return self.finish()

    def clock_stepped(self, before: float, after: float) -> list[WifiWindow]:
        """Live capture: the wall clock jumped from ``before`` to ``after``. The open
        window is emitted as covered up to ``before`` and coverage starts again at
        ``after``: the time stepped over was not listened to and no window claims it."""
        self._covered_to = min(self._covered_to, before)
        closed = self.restart()
        self.start_coverage(after)
        return closed

    def _forget_arrivals(self, now: float) -> None:
        """Drop counted ids the estimator can no longer return (see the class doc)."""
        horizon = now - (self.config.forget_after_s + EXPIRY_INTERVAL_S + self.lateness_s)
        if any(last < horizon for last in self._arrived.values()):
            self._arrived = {i: last for i, last in self._arrived.items() if last >= horizon}

    @property
    def remembered_arrivals(self) -> int:
        """How many device ids are held to avoid counting an arrival twice."""
        return len(self._arrived)

    def _close(self) -> WifiWindow:
        assert self._start is not None
        start, end = self._start, self._start + self.window_s
        covered = min(end, self._covered_to) - max(start, self._covered_from)
        buckets = {label: 0 for label, _ in DWELL_BUCKETS}
        in_store = arrived = brief = 0
        for device_id, (first_seen, last) in self._devices.items():
            dwell = last - first_seen
            if dwell >= self.config.min_dwell_s:
                in_store += 1
                buckets[dwell_bucket(dwell)] += 1
                previous = self._arrived.get(device_id)
                if previous is None:
                    arrived += 1
                self._arrived[device_id] = last if previous is None else max(previous, last)
            else:
                brief += 1
        self._forget_arrivals(end)
        return WifiWindow(
            start=start,
            window_s=self.window_s,
            sensor=self.sensor,
            covered_s=float(min(max(covered, 0.0), self.window_s)),
            frames=self._frames,
            in_store_frames=self._in_store_frames,
            excluded_frames=self._excluded,
            in_store_devices=in_store,
            arrived_devices=arrived,
            brief_devices=brief,
            passers_by=self._passers_by,
            occupancy_estimate=round(in_store * self.config.people_per_device, 2),
            dwell_buckets=buckets,
        )
