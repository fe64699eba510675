"""Frames to windows: the one path shared by pcap replay and live capture.

``FramePipeline.feed(bytes, timestamp, linktype)`` is all a frame source calls, so
what replay tests exercise is exactly what runs on a live interface. Per frame:
parse and anonymize (:mod:`edge.wifi.parser`), chain pseudonyms into devices
(:mod:`edge.wifi.devices`), count into every configured window size
(:mod:`edge.wifi.windows`). At each key rotation (local midnight) device state is
dropped, so no device links across days.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections import Counter
from collections.abc import Callable, Generator
from dataclasses import dataclass, field, fields
from pathlib import Path
from zoneinfo import ZoneInfo

from edge.config.wifi import WifiConfig
from edge.wifi.anonymize import Anonymizer, random_key
from edge.wifi.devices import DeviceEstimator
from edge.wifi.parser import EXCLUDED, STRONG, MalformedFrame, ProbeParser, clear_caches
from edge.wifi.pcapfile import CaptureFile
from edge.wifi.windows import WifiWindow, WindowCounter

log = logging.getLogger(__name__)


@dataclass(slots=True)
class PipelineStats:
    """Counts of what went through, and what was skipped and why (no identifiers)."""

    frames: int = 0
    probe_requests: int = 0
    in_store_frames: int = 0
    weak_frames: int = 0
    excluded_frames: int = 0
    other_frames: int = 0                   # beacons, data... (no BPF filter on files)
    truncated_ies: int = 0
    skipped: Counter[str] = field(default_factory=Counter)   # reason -> frames
    key_rotations: int = 0
    clock_steps: int = 0                    # live: wall-clock steps (windows restarted)

    def as_dict(self) -> dict[str, object]:
        """Every count by name, in field order (``skipped`` as a plain dict)."""
        counts = {f.name: getattr(self, f.name) for f in fields(self)}
        return {**counts, "skipped": dict(self.skipped)}


@dataclass(frozen=True, slots=True)
class DeviceTally:
    """Estimated devices above the RSSI gate, split as the windows split them.

    Attributes:
        in_store: heard over at least ``min_dwell_s`` (what a window's
            ``in_store_devices`` counts; each is one of the windows' ``arrived_devices``,
            unless the estimator forgot it and it came back as a new device).
        brief: heard for less: one burst, most often a randomized address the
            estimator could not chain to its phone (a window's ``brief_devices``).
    """

    in_store: int = 0
    brief: int = 0

    @property
    def total(self) -> int:
        return self.in_store + self.brief

    def __add__(self, other: DeviceTally) -> DeviceTally:
        return DeviceTally(self.in_store + other.in_store, self.brief + other.brief)


class FramePipeline:
    """Radiotap frames in, closed :class:`WifiWindow` objects out.

    Args:
        config: the site's ``wifi`` section.
        sensor: name stored with each window (interface or capture file name).
        timezone: the site's time zone (midnight key rotation, window labels).
        window_sizes: window lengths to produce (default: ``config.windows_s``).
        key_factory, clock: injectable for tests (see :class:`Anonymizer`).
        on_rotate: called ``(previous day or None, new day)`` after each key draw (the
            live service writes it to the privacy audit log; no key material).
    """

    def __init__(
        self,
        config: WifiConfig,
        *,
        sensor: str,
        timezone: str = "UTC",
        window_sizes: list[int] | None = None,
        key_factory: Callable[[int], bytes | bytearray] = random_key,
        clock: Callable[[], float] = time.time,
        on_rotate: Callable[[str | None, str], None] | None = None,
    ) -> None:
        self.config = config
        self.on_rotate = on_rotate
        self._day: str | None = None
        self._last_expiry = float("-inf")
        self.sensor = sensor
        self.timezone = ZoneInfo(timezone)
        self.anonymizer = Anonymizer(
            bits=config.pseudonym_bits,
            exclude=config.excluded_bytes(),
            timezone=self.timezone,
            key_factory=key_factory,
            clock=clock,
        )
        self.parser = ProbeParser(self.anonymizer, config.rssi_gate_dbm)
        self.devices = DeviceEstimator(
            link_window_s=config.link_window_s,
            forget_after_s=config.forget_after_s,
            seq_gap_max=config.seq_gap_max,
            trust_la_bit=config.trust_la_bit,
        )
        self.counters = [
            WindowCounter(size, sensor, config)
            for size in sorted(set(window_sizes or config.windows_s))
        ]
        self.stats = PipelineStats()
        self._generation = 0
        self.min_dwell_s = config.min_dwell_s
        # Today's devices (bounded with the day): id -> [first seen, last frame], as
        # the window counters see them, so the totals agree with the windows.
        self._device_spans: dict[int, list[float]] = {}
        self._before_today = DeviceTally()

    def feed(self, frame: bytes, timestamp: float, linktype: int) -> list[WifiWindow]:
        """Process one captured frame; returns the windows it closed."""
        stats = self.stats
        stats.frames += 1
        try:
            probe = self.parser.parse(frame, timestamp, linktype)
        except MalformedFrame as error:
            stats.skipped[error.reason] += 1
            return []
        if probe is None:
            stats.other_frames += 1
            return []
        stats.probe_requests += 1
        if self.anonymizer.generation != self._generation:
            self._rotated()
        device_id = first_seen = None
        if probe.status == STRONG:
            stats.in_store_frames += 1
            device = self.devices.observe(probe)
            device_id, first_seen = device.id, device.first_seen
            span = self._device_spans.get(device_id)
            if span is None:
                self._device_spans[device_id] = [first_seen, probe.timestamp]
            else:
                span[0], span[1] = min(span[0], first_seen), max(span[1], probe.timestamp)
            if self.devices.last_merge is not None:
                absorbed, kept = self.devices.last_merge
                old = self._device_spans.pop(absorbed, None)
                if old is not None:
                    into = self._device_spans.setdefault(kept, old)
                    into[0], into[1] = min(into[0], old[0]), max(into[1], old[1])
                for counter in self.counters:
                    counter.merge(absorbed, kept)
        elif probe.status == EXCLUDED:
            stats.excluded_frames += 1
        else:
            stats.weak_frames += 1
        closed: list[WifiWindow] = []
        for counter in self.counters:
            closed.extend(counter.add(probe, device_id, first_seen))
        return closed

    def _rotated(self) -> None:
        if self._generation:
            self.stats.key_rotations += 1
            log.info("Wi-Fi key rotated for %s; device state dropped", self.anonymizer.day)
        self._generation = self.anonymizer.generation
        self.devices.reset()
        self._before_today = self._before_today + self._tally_today()
        self._device_spans = {}
        clear_caches()
        previous, self._day = self._day, self.anonymizer.day
        if self.on_rotate is not None and self._day is not None:
            self.on_rotate(previous, self._day)

    def tick(self, now: float) -> list[WifiWindow]:
        """Live capture, once a second or so: rotate at midnight, forget devices gone for
        ``forget_after_s`` even when no frame comes, close quiet windows."""
        self.anonymizer.advance(now)
        if self.anonymizer.generation != self._generation:
            self._rotated()
        if now - self._last_expiry >= 60.0:
            self._last_expiry = now
            self.devices.expire(now)
        closed: list[WifiWindow] = []
        for counter in self.counters:
            counter.extend_coverage(now)
            closed.extend(counter.advance(now - counter.lateness_s))
        return closed

    def clock_stepped(self, before: float, after: float) -> list[WifiWindow]:
        """Live capture: the wall clock stepped from ``before`` to ``after`` (NTP, a stale
        hardware clock). Ends the open windows at ``before`` and listens again from
        ``after``, so no window claims the time stepped over; returns the windows ended."""
        self.stats.clock_steps += 1
        closed: list[WifiWindow] = []
        for counter in self.counters:
            closed.extend(counter.clock_stepped(before, after))
        return closed

    def start(self, now: float) -> None:
        """Live capture: the sensor listens from ``now`` (empty windows still count)."""
        for counter in self.counters:
            counter.start_coverage(now)

    def finish(self) -> list[WifiWindow]:
        """End of input: emit the partial windows and wipe the key."""
        closed: list[WifiWindow] = []
        for counter in self.counters:
            closed.extend(counter.finish())
        self.anonymizer.wipe()
        self.devices.reset()
        clear_caches()
        return closed

    def _tally_today(self) -> DeviceTally:
        in_store = sum(1 for first, last in self._device_spans.values()
                       if last - first >= self.min_dwell_s)
        return DeviceTally(in_store, len(self._device_spans) - in_store)

    @property
    def device_tally(self) -> DeviceTally:
        """Estimated devices above the RSSI gate since start, counted per day; no identity."""
        return self._before_today + self._tally_today()

    @property
    def devices_seen(self) -> int:
        """Estimated devices (all dwell) since start, counted per day; no identity."""
        return self.device_tally.total

    @property
    def truncated_ies(self) -> int:
        return self.parser.truncated_ies


def capture_sensor_name(path: str | Path) -> str:
    """``pcap:`` + a short hash of the file name: tells captures apart in wifi_windows
    without storing a name (names of test captures can hold SSIDs or device names)."""
    digest = hashlib.blake2b(Path(path).name.encode(), digest_size=4).hexdigest()
    return f"pcap:{digest}"


@dataclass(slots=True)
class ReplayResult:
    windows: list[WifiWindow]
    stats: PipelineStats
    read_notes: list[str]
    devices: DeviceTally
    seconds: float
    ended_early: bool = False  # a truncated or corrupt record ended the read before the end

    @property
    def devices_seen(self) -> int:
        """Every estimated device above the gate, brief ones included."""
        return self.devices.total


def replay_capture(
    path: str | Path,
    config: WifiConfig,
    *,
    timezone: str = "UTC",
    window_sizes: list[int] | None = None,
    sensor: str | None = None,
    key_factory: Callable[[int], bytes | bytearray] = random_key,
    progress: Callable[[int, int], None] | None = None,
) -> Generator[WifiWindow, None, ReplayResult]:
    """Replay a pcap/pcapng file, yielding windows as they close (partial ones last).

    The generator's return value (``StopIteration.value``) is a :class:`ReplayResult`;
    :func:`replay_to_list` is the convenient form.

    Raises:
        DataFormatError: the file is missing or not a capture. Damage inside the file
            ends the replay early with a note instead.
    """
    started = time.perf_counter()
    with CaptureFile(path) as capture:
        pipeline = FramePipeline(
            config, sensor=sensor or capture_sensor_name(path), timezone=timezone,
            window_sizes=window_sizes, key_factory=key_factory,
        )
        windows: list[WifiWindow] = []
        feed = pipeline.feed
        for count, frame in enumerate(capture, 1):
            closed = feed(frame.data, frame.timestamp, frame.linktype)
            if closed:
                windows.extend(closed)
                yield from closed
            if progress is not None and count % 2048 == 0:
                progress(capture.position, capture.size)
        closed = pipeline.finish()
        windows.extend(closed)
        yield from closed
        if progress is not None:
            progress(capture.size, capture.size)
        read = capture.stats
        pipeline.stats.truncated_ies = pipeline.truncated_ies
        notes = read.skip_notes() + read.notes
        if read.no_timestamp:
            notes.append(f"{read.no_timestamp} pcapng simple packet blocks skipped (no time stamp)")
    return ReplayResult(windows, pipeline.stats, notes, pipeline.device_tally,
                        time.perf_counter() - started,
                        ended_early=bool(read.truncated or read.corrupt))


def replay_to_list(path: str | Path, config: WifiConfig, **kwargs: object) -> ReplayResult:
    """Run :func:`replay_capture` to the end and return its :class:`ReplayResult`."""
    generator = replay_capture(path, config, **kwargs)  # type: ignore[arg-type]
    while True:
        try:
            next(generator)
        except StopIteration as stop:
            return stop.value
