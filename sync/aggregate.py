"""Aggregate one time window of the local database into a :class:`WindowAggregate`.

A window ``[start, start + seconds)`` is aligned to multiples of its length from
the epoch, so windows tile the UTC day. Its visits are those that ended in it, and
every figure the status page shows too comes from the same query of
:mod:`edge.figures` (one rule for which period a visit belongs to). The aggregate
still holds exact small counts: it never leaves the process as is; :mod:`sync.kanon`
turns it into the k-anonymous message that is stored and published. Since schema 1.5 the
message names the store's time zone: windows stay aligned to UTC, and the central side
puts each in the store's local day.
"""

from __future__ import annotations

import json
import logging
import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import sqlite_utils

from edge import figures
from edge.config.floor import FloorConfig
from edge.pos.store import TillPeriod, read_periods
from edge.privacy.small_counts import residual_problem
from edge.visits.queue import has_queue, queue_counts, read_waits, wait_summary, waiting_visits
from sync import contract
from sync.contract import AGGREGATE_KIND, AGGREGATE_SCHEMA_VERSION, aggregate_id, iso_utc
from sync.outbox import PublishedWindow, cover

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Window:
    """A time window: ``[start, start + seconds)`` in epoch seconds."""

    start: float
    seconds: int

    def __post_init__(self) -> None:
        if self.seconds < 1 or self.start != int(self.start):
            raise ValueError(f"expected a whole-second start and seconds >= 1, got {self}")

    @property
    def end(self) -> float:
        return self.start + self.seconds


def window_from(cursor: float, window_s: int) -> Window:
    """The window starting at ``cursor`` and ending at the next multiple of ``window_s``.

    When ``cursor`` is aligned that is a full window; after a change of window
    length one shorter window bridges to the new alignment.
    """
    cursor = float(math.floor(cursor))
    end = (math.floor(cursor / window_s) + 1) * window_s
    return Window(cursor, int(end - cursor))


def aligned_start(t: float, window_s: int) -> float:
    return float(math.floor(t / window_s) * window_s)


@dataclass(frozen=True, slots=True)
class ZoneDwell:
    zone: str
    visits: int
    mean_s: float
    p50_s: float
    p90_s: float


@dataclass(frozen=True, slots=True)
class Transition:
    src: str
    dst: str
    visits: int


@dataclass(frozen=True, slots=True)
class Mix:
    """A trait or segment: ``visits`` with probability >= 0.5, out of ``scored`` visits;
    for a segment, ``units``: buying units classified in it (:func:`edge.figures.unit_segments`),
    None for a trait."""

    name: str
    visits: int
    scored: int
    mean_probability: float
    units: int | None = None


@dataclass(frozen=True, slots=True)
class WifiEstimate:
    """The window's Wi-Fi figures over the sub-windows heard; ``whole``: those cover the
    whole window (else the capture rate, pairing the window's door count with them, is
    not known)."""

    in_store_devices: int
    passers_by: int
    occupancy_estimate: float | None
    whole: bool = True


@dataclass(frozen=True, slots=True)
class QueueFigures:
    """Checkout queue of a window: visits that waited (ended in the window), their wait
    percentiles, and people in the queue zones per sample."""

    waits: int
    p50_s: float | None
    p90_s: float | None
    length_mean: float | None  # None: the window's raw positions are purged
    length_max: int | None


@dataclass(frozen=True, slots=True)
class ConversionPeriod(TillPeriod):
    """A till period ending in the window: its transactions and the visits that ended
    in it."""

    visits: int


@dataclass(frozen=True, slots=True)
class WindowAggregate:
    """Exact (not yet k-anonymous) aggregates of one store window. Never published as is.

    ``footfall`` is None when the site has no entrance line, ``occupancy`` when it
    has no camera, ``wifi`` when no Wi-Fi window falls in the window.
    """

    store: str
    window: Window
    footfall: tuple[int, int] | None  # (in, out)
    occupancy: tuple[float, int, float] | None  # (mean, max, sample_s)
    visit_count: int
    mean_duration_s: float | None
    mean_path_m: float | None
    checkout: int
    dwell: tuple[ZoneDwell, ...]
    transitions: tuple[Transition, ...]
    traits: tuple[Mix, ...]
    segments: tuple[Mix, ...]
    spec_versions: tuple[str, ...]
    wifi: WifiEstimate | None
    skipped_records: int = 0  # malformed rows counted and skipped
    queue: QueueFigures | None = None  # None: the site has no queue and checkout zones
    conversion: tuple[ConversionPeriod, ...] = ()
    groups: int | None = None  # buying units (edge.figures.buying_units)
    timezone: str = "UTC"  # the store's IANA zone (site.timezone): whose local day it is in

    @property
    def id(self) -> str:
        return aggregate_id(self.store, self.window.start, self.window.seconds)


def aggregate_window(
    db: sqlite_utils.Database,
    window: Window,
    *,
    store: str,
    entrance_lines: list[str] | None,
    has_cameras: bool = True,
    occupancy_sample_s: float = 1.0,
    floor: FloorConfig | None = None,
    positions_since: float | None = None,
    timezone: str = "UTC",
) -> WindowAggregate:
    """Compute the exact aggregates of ``window`` from the local tables.

    Args:
        db: the box's database (track_points, visits..., line_crossings, wifi_windows).
        window: which window.
        store: the store id.
        entrance_lines: ids of the lines whose crossings are footfall; None = no footfall.
        has_cameras: whether occupancy is measured at all.
        occupancy_sample_s: occupancy counts distinct tracks per sample of this length.
        floor: the site's floor; with queue and checkout zones, the window has queue figures.
        positions_since: raw positions before this time may be purged
            (:func:`edge.retention.positions_kept_since`): a window that starts earlier has
            no occupancy and no queue lengths (None, "not known"), never zeros.
        timezone: the store's IANA time zone (``site.timezone``), sent with the window so
            that the central side puts it in the store's local day.
    """
    span = (window.start, window.end)
    positions = has_cameras and (positions_since is None or window.start >= positions_since)
    visits = db.execute(
        "select visit_id, duration_s, path_length_m, checkout_visited, zone_sequence, spec_version "
        f"from visits where {figures.visit_period()}",
        span,
    ).fetchall()
    durations = [row[1] for row in visits if row[1] is not None]
    paths = [row[2] for row in visits if row[2] is not None]
    transitions, skipped = _transitions(row[4] for row in visits)
    return WindowAggregate(
        store=store,
        window=window,
        footfall=_footfall(db, span, entrance_lines) if entrance_lines is not None else None,
        occupancy=_occupancy(db, window, occupancy_sample_s) if positions else None,
        visit_count=len(visits),
        mean_duration_s=float(np.mean(durations)) if durations else None,
        mean_path_m=float(np.mean(paths)) if paths else None,
        checkout=sum(1 for row in visits if row[3]),
        dwell=_dwell(db, span),
        transitions=transitions,
        traits=_mix(db, "visit_traits", "trait", span),
        segments=_segments(db, span),
        spec_versions=tuple(sorted({row[5] for row in visits if row[5]})),
        wifi=_wifi(db, window),
        skipped_records=skipped,
        queue=(_queue(db, window, floor, occupancy_sample_s, positions)
               if floor and has_queue(floor) else None),
        conversion=_conversion(db, window),
        groups=figures.buying_units(db.conn, *span),
        timezone=timezone,
    )


def _queue(
    db: sqlite_utils.Database, window: Window, floor: FloorConfig, sample_s: float,
    positions: bool,
) -> QueueFigures:
    """Waits from the window's visits; lengths from its raw positions, when still stored."""
    waits = read_waits(db, window.start, window.end)
    summary = wait_summary(waits, waiting_visits(db, window.start, window.end))
    if not positions:
        return QueueFigures(summary.people, summary.p50_s, summary.p90_s, None, None)
    counts = queue_counts(db, floor, window.start, window.end, sample_s)
    return QueueFigures(summary.people, summary.p50_s, summary.p90_s,
                        float(np.mean(counts)), int(max(counts)))


def _conversion(db: sqlite_utils.Database, window: Window) -> tuple[ConversionPeriod, ...]:
    """Till periods that end in ``(start, end]`` of the window, stored by then."""
    if not db["pos_periods"].exists():
        return ()
    cells = []
    for period in read_periods(db, window.start - 86_400, window.end):
        if not window.start < period.end <= window.end:
            continue
        cells.append(ConversionPeriod(period.start, period.seconds, period.transactions,
                                      figures.visit_count(db, period.start, period.end)))
    return tuple(cells)


def _footfall(
    db: sqlite_utils.Database, span: tuple[float, float], lines: list[str]
) -> tuple[int, int]:
    return figures.entrance_crossings(db, *span, lines)


def _occupancy(
    db: sqlite_utils.Database, window: Window, sample_s: float
) -> tuple[float, int, float]:
    # Each sample counts the distinct tracks seen in it; samples with nobody (no rows) count 0.
    counts = figures.people_per_sample(db, window.start, window.end, sample_s)
    samples = math.ceil(window.seconds / sample_s)
    return (sum(counts) / samples, max(counts, default=0), sample_s)


def _dwell(db: sqlite_utils.Database, span: tuple[float, float]) -> tuple[ZoneDwell, ...]:
    per_zone = figures.zone_dwell(db, *span)
    cells = []
    for zone in sorted(per_zone):
        values = np.asarray(per_zone[zone])
        p50, p90 = np.percentile(values, [50, 90])
        cells.append(ZoneDwell(zone, len(values), float(values.mean()), float(p50), float(p90)))
    return tuple(cells)


def _transitions(sequences: Any) -> tuple[tuple[Transition, ...], int]:
    """Count, per (from, to) zone pair, the visits that went directly from one to the other."""
    counts: dict[tuple[str, str], int] = defaultdict(int)
    skipped = 0
    for text in sequences:
        try:
            zones = json.loads(text) if text else []
            if not isinstance(zones, list) or not all(isinstance(z, str) for z in zones):
                raise ValueError("not a list of zone ids")
        except ValueError as error:
            skipped += 1
            log.warning("Skipping a visit with a malformed zone_sequence (%s).", error)
            continue
        pairs = {(a, b) for a, b in zip(zones, zones[1:], strict=False) if a != b}
        for pair in pairs:
            counts[pair] += 1
    cells = tuple(Transition(a, b, n) for (a, b), n in sorted(counts.items()))
    return cells, skipped


def _mix(
    db: sqlite_utils.Database, table: str, column: str, span: tuple[float, float]
) -> tuple[Mix, ...]:
    return tuple(
        Mix(cell.name, cell.visits, cell.scored, cell.mean_probability)
        for cell in figures.mix(db, table, column, *span)
    )


def _segments(db: sqlite_utils.Database, span: tuple[float, float]) -> tuple[Mix, ...]:
    """The segment mix by visits and by buying units (each group classified once)."""
    units = figures.unit_segments(db.conn, *span)
    return tuple(replace(cell, units=units.get(cell.name, 0))
                 for cell in _mix(db, "visit_segments", "segment", span))


def _wifi(db: sqlite_utils.Database, window: Window) -> WifiEstimate | None:
    """Wi-Fi windows inside the window, at the longest length available.

    Several sensors hear the same phones, so per sub-window the largest sensor's
    figures count; over sub-windows, in-store devices is the peak, passers-by the
    sum (a passer-by is in range briefly) and occupancy the mean. A sub-window in which
    no sensor heard a single frame is unknown, not zero (:attr:`edge.figures.WifiSubWindow.heard`):
    it counts in no figure, and a window with no sub-window heard has no Wi-Fi figures
    (None, sent as ``wifi: null``, so its capture rate is null too), never zeros. One
    heard only in part (the sensor started, stopped or went deaf inside it) has figures
    of that part and no capture rate (:attr:`WifiEstimate.whole`).
    """
    rows = figures.wifi_window_rows(db.conn, window.start, window.end, ending_inside=True)
    if not rows:
        return None
    subs = figures.wifi_heard(figures.wifi_sub_windows(rows)[1])
    if not subs:
        return None
    occupancies = [sub.occupancy_estimate for sub in subs if sub.occupancy_estimate is not None]
    return WifiEstimate(
        in_store_devices=max(sub.in_store_devices for sub in subs),
        passers_by=sum(sub.passers_by for sub in subs),
        occupancy_estimate=float(np.mean(occupancies)) if occupancies else None,
        whole=sum(sub.seconds for sub in subs) >= window.seconds,
    )


def full_message(agg: WindowAggregate) -> dict[str, Any]:
    """The message of ``agg`` with exact counts: input to :func:`sync.kanon.suppress`,
    never stored or published itself."""
    footfall = None
    if agg.footfall is not None:
        count_in, count_out = agg.footfall
        # The window's door count against passers-by of part of it would overstate the
        # rate: a window the sensor heard only in part has none (null, "not known").
        rate = (None if agg.wifi is None or not agg.wifi.whole
                else figures.capture_rate(count_in, agg.wifi.passers_by))
        footfall = {"in": count_in, "out": count_out,
                    "capture_rate": None if rate is None else round(rate, 3)}
    occupancy = None
    if agg.occupancy is not None:
        mean, peak, sample_s = agg.occupancy
        occupancy = {"mean": round(mean, 2), "max": peak, "sample_s": sample_s}
    wifi = None
    if agg.wifi is not None:
        estimate = agg.wifi.occupancy_estimate
        wifi = {
            "in_store_devices": agg.wifi.in_store_devices,
            "passers_by": agg.wifi.passers_by,
            "occupancy_estimate": round(estimate, 2) if estimate is not None else None,
        }
    return {
        "schema_version": AGGREGATE_SCHEMA_VERSION,
        "id": agg.id,
        "kind": AGGREGATE_KIND,
        "store": agg.store,
        "window": {"start": iso_utc(agg.window.start), "seconds": agg.window.seconds},
        "k": None,  # set by sync.kanon.suppress
        "timezone": agg.timezone,
        "footfall": footfall,
        "occupancy": occupancy,
        "visits": {
            "count": agg.visit_count,
            "mean_duration_s": _round(agg.mean_duration_s, 1),
            "mean_path_m": _round(agg.mean_path_m, 1),
            "checkout": agg.checkout,
            "groups": agg.groups,
        },
        "dwell": [
            {
                "zone": d.zone,
                "visits": d.visits,
                "mean_s": round(d.mean_s, 1),
                "p50_s": round(d.p50_s, 1),
                "p90_s": round(d.p90_s, 1),
            }
            for d in agg.dwell
        ],
        "transitions": [{"from": t.src, "to": t.dst, "visits": t.visits} for t in agg.transitions],
        "traits": [_mix_cell(m) for m in agg.traits],
        "segments": [_mix_cell(m) for m in agg.segments],
        "spec_versions": list(agg.spec_versions),
        "wifi": wifi,
        "queue": None if agg.queue is None else {
            "waits": agg.queue.waits,
            "wait_p50_s": _round(agg.queue.p50_s, 1),
            "wait_p90_s": _round(agg.queue.p90_s, 1),
            "length_mean": _round(agg.queue.length_mean, 2),
            "length_max": agg.queue.length_max,
        },
        "conversion": [
            {
                "period_start": iso_utc(c.start),
                "period_s": c.seconds,
                "transactions": c.transactions,
                "visits": c.visits,
                "rate": round(c.transactions / c.visits, 3) if c.visits else None,
            }
            for c in agg.conversion
        ],
        "suppressed": {},
    }


def withhold_period_visits(
    message: dict[str, Any], window: Window, k: int, earlier: Sequence[PublishedWindow],
) -> None:
    """Null a till period's ``visits`` (and its rate) in a suppressed ``message`` when it
    would give away a withheld window count of earlier messages.

    A period spanning several windows counts the visits of all of them; each window's
    ``visits.count`` was published, or withheld below k. The period's count minus the
    published ones must then leave 0 with nothing withheld, or at least k (the
    exclusive-cells rule of :mod:`edge.privacy.small_counts`). The earlier windows are
    the ones whose messages are in the outbox (``earlier``: from
    :func:`sync.outbox.published_windows`), with the length and the count each was
    published with, not the database's now nor the current window length: a visit
    stored after its window was sent is in the period's count and in no published one,
    and after a change of ``sync.window_s`` the window that starts a period may be a
    quarter of an hour, not an hour. A stretch of the period no known message covers
    counts as withheld, and a period that is not a whole number of the windows
    published (:func:`sync.outbox.cover`) cannot be checked, so its visits are withheld.
    """
    cells = message.get("conversion") or []
    this_window = PublishedWindow(window.start, window.seconds,
                                  (message.get("visits") or {}).get("count"))
    hidden = 0
    for cell in cells:
        if cell["visits"] is None:
            continue
        start = contract.parse_iso_utc(cell["period_start"])
        windows = cover([*earlier, this_window], start, start + cell["period_s"])
        problem = windows is None
        if windows is not None:
            shown = [w.count for w in windows if w.count is not None]
            problem = residual_problem(shown, cell["visits"], k,
                                       any_withheld=len(shown) < len(windows)) is not None
        if problem:
            cell["visits"] = None
            cell["rate"] = None
            hidden += 1
    if hidden:
        counts = dict(message.get("suppressed") or {})
        counts["conversion"] = counts.get("conversion", 0) + hidden
        message["suppressed"] = {key: counts[key] for key in sorted(counts) if counts[key]}


def _mix_cell(mix: Mix) -> dict[str, Any]:
    cell: dict[str, Any] = {
        "name": mix.name,
        "visits": mix.visits,
        "scored": mix.scored,
        "mean_probability": round(mix.mean_probability, 3),
    }
    if mix.units is not None:
        cell["units"] = mix.units
    return cell


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def earliest_data_time(db: sqlite_utils.Database) -> float | None:
    """The earliest timestamp of anything a window aggregates, or None for an empty box."""
    times = [
        db.execute(sql).fetchone()[0]
        for sql in (
            "select min(t) from track_points",
            "select min(end_t) from visits",
            "select min(t) from line_crossings",
            "select min(window_start) from wifi_windows",
        )
    ]
    present = [t for t in times if t is not None]
    return min(present) if present else None
