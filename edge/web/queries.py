"""The aggregate SQL behind the status page.

Every function reads one day (store time) or one instant and returns counts,
sums and medians; none returns a row about one visit, track or device. The figures
the MQTT aggregates publish too (footfall, entrance crossings, occupancy, zone dwell,
the trait and segment mix, conversion) come from :mod:`edge.figures`, with its one
rule for which period a visit belongs to: the one in which it ended. Groups of
fewer than ``k`` visits (``privacy.min_publishable_count``) are hidden, and so are
counts that would let one be worked out by subtraction from the day's total
(:mod:`edge.privacy.small_counts`, the rules the MQTT aggregates follow too). A
table that does not exist yet (a service not installed, an older database) reads
as empty.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
import statistics
from collections.abc import Iterable
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from edge import figures
from edge.config.floor import FloorConfig, ZoneConfig
from edge.pos.store import read_periods
from edge.privacy.small_counts import withheld, withheld_apart, withheld_differences
from edge.visits.queue import has_queue, people_in_queue, read_waits, wait_summary, waiting_visits
from edge.web.heatcells import CellFigures, HeatCellCache, cells_from_scratch
from edge.web.hours import (
    LocalHour,
    clock_change,
    count_by_hour,
    day_hours,
    first_hour_from,
    hour_label,
)
from edge.web.schemas import (
    CompareMissing,
    ComponentHealth,
    Conversion,
    Footfall,
    HeatCell,
    Heatmap,
    HeatmapCoverage,
    HiddenReason,
    HourCount,
    Mix,
    MixItem,
    Occupancy,
    Queue,
    SpecVersionUse,
    Wifi,
    ZoneDwell,
    ZoneDwellList,
    ZoneShape,
)
from edge.web.text import STANDARD_TRAITS, clock_text, minute_text, plain, trait_label

# Replay/stale data: people whose last point lies within this of their camera's
# last frame count as "in the store" at that instant.
INSTANT_S = 1e-3
CLOCK_SKEW_S = 1.0
USUAL_HOURS = (9, 18)
# An hour of a day, by what the clock read: (hour 0-23, the second time after clocks went back).
HourKey = tuple[int, bool]


@dataclass(frozen=True, slots=True)
class DayWindow:
    """One calendar day in store time, as epoch seconds ``[start, end)``."""

    day: dt.date
    start: float
    end: float

    @classmethod
    def of(cls, day: dt.date, tz: ZoneInfo) -> DayWindow:
        start = dt.datetime.combine(day, dt.time(), tz)
        end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), tz)
        return cls(day, start.timestamp(), end.timestamp())


def local_day(t: float, tz: ZoneInfo) -> dt.date:
    return dt.datetime.fromtimestamp(t, tz).date()


def occupancy(
    conn: sqlite3.Connection, tables: set[str], now: float, window_s: float, tz: ZoneInfo,
    shown_day: dt.date | None = None,
) -> Occupancy:
    """People in the store now (live), else at the most recent instant with data.

    Live: distinct tracks seen in the last ``window_s`` seconds. Otherwise (a
    replay, or cameras stopped) each camera's last frame with anyone in it is
    counted, and the answer says when that was. On a multi-camera site the stored
    tracks are the fusion's store-wide ones (camera id ``store``): each person once.
    Associates are counted apart (:func:`edge.figures.people_seen`). Its time reads as
    a clock time alone only on ``shown_day`` (default: today), the day the page shows:
    on a page of another day it carries its date.
    """
    empty = Occupancy(people=None, as_of=None, as_of_text=None, live=False, window_s=window_s)
    if "track_points" not in tables:
        return empty
    # Points stamped after "now" (a camera clock slightly ahead) count as now.
    latest = figures.latest_position_time(conn, now + CLOCK_SKEW_S)
    if latest is None:
        return empty
    today = shown_day or local_day(now, tz)
    if now - latest <= window_s:
        seen = figures.people_seen(conn, now - window_s, now + CLOCK_SKEW_S)
        return Occupancy(people=seen.customers, as_of=now,
                         as_of_text=clock_text(now, tz, today=today), live=True,
                         window_s=window_s, associates=seen.associates)
    seen = figures.people_in_last_frames(conn, latest, INSTANT_S)
    return Occupancy(people=seen.customers, as_of=latest,
                     as_of_text=clock_text(latest, tz, today=today), live=False,
                     window_s=window_s, associates=seen.associates)


# Health statuses of a camera (or of the counting across cameras) that count as not working.
NOT_WORKING = ("down", "silent", "not_started")


def with_cameras(
    occ: Occupancy, components: list[ComponentHealth], tz: ZoneInfo, day: dt.date,
) -> Occupancy:
    """``occ`` with the cameras' state now, from their health reports (the rows of the
    page's health section), so the card tells "nobody in view" from "cannot count".

    ``components`` are those the site config runs (:func:`edge.web.health.site_health`):
    a camera removed or renamed leaves a row that is not among them. A camera down,
    silent for ``web.health_stale_s`` or never reported (``not_started``: its service
    stopped at start) is not working; so is the counting across cameras (``fusion``)
    when down or never reported. None working: people cannot be counted; some, or the
    fusion holding people where a camera without pictures last saw them (its
    ``people_held``; not any ``degraded``: a camera delay it corrects or a few late
    frames leave the count whole): the count is partial. With no camera report at all
    (no service has ever reported: a replay, a box not started) the state is unknown
    and the card says what it said before.
    """
    cameras = [c for c in components if c.kind == "camera"]
    fusion = [c for c in components if c.kind == "fusion"]
    if not cameras and not fusion:
        return occ
    down = [c for c in cameras + fusion if c.status in NOT_WORKING]
    working = [c for c in cameras if c.status not in NOT_WORKING]
    held = any(_number(c.figures.get("people_held")) > 0 for c in fusion)
    state = ("down" if down and (not working or any(c.kind == "fusion" for c in down))
             else "partial" if down or held else "working")
    since = [c.updated_at + c.age_s - float(age) for c in down
             if c.updated_at is not None and c.age_s is not None
             and isinstance(age := c.figures.get("last_frame_age_s"), int | float)
             and not isinstance(age, bool)]
    down_since = min(since) if since else (occ.as_of if state == "down" and not occ.live
                                           else None)
    return occ.model_copy(update={
        "cameras": state, "cameras_down": [c.name for c in down], "held": held,
        "down_since": down_since,
        "down_since_text": None if down_since is None else minute_text(down_since, tz, today=day),
    })


def fusion_lag_s(components: list[ComponentHealth], most: float) -> float:
    """How far behind the clock the counting across cameras stores its positions, as it
    reports (``lag_s``), at most ``most`` (the site config's bound); 0 without it. The
    live figures look back that much further: a late camera's pictures are waited for."""
    lags = [_number(c.figures.get("lag_s")) for c in components if c.kind == "fusion"]
    return min(max(lags, default=0.0), most)


def _number(value: object) -> float:
    """A health figure as a number (0 when it is none: missing, text, NaN, negative)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        return 0.0
    return float(value)


def _visit_hours(conn: sqlite3.Connection, hours: list[LocalHour]) -> dict[HourKey, int]:
    """Visits that ended in each real hour of ``hours`` (one store-time day)."""
    if not hours:
        return {}
    return count_by_hour(figures.visit_times(conn, hours[0].start, hours[-1].end), hours)


def associates_on_floor(conn: sqlite3.Connection, tables: set[str], window: DayWindow) -> int:
    """The most associates' visits (``staff_visits``) on the floor at one moment of the
    day. Pieces of one associate's track never overlap in time, so a track split by the
    tracker counts once, where a count of pieces would count it twice."""
    if "staff_visits" not in tables:
        return 0
    events: list[tuple[float, int]] = []
    for start_t, end_t in conn.execute(
        "select start_t, end_t from staff_visits where start_t < ? and end_t >= ?",
        (window.end, window.start),
    ):
        events += [(float(start_t), 1), (float(end_t), -1)]
    here = most = 0
    for _, step in sorted(events, key=lambda e: (e[0], e[1])):  # leaves before arrivals
        here += step
        most = max(most, here)
    return most


def footfall(
    conn: sqlite3.Connection, tables: set[str], day: dt.date, tz: ZoneInfo,
    entrance_lines: list[str], *, now: float, kept_since: float, visit_days: float,
) -> Footfall:
    """Visits per hour (by the hour they ended in) on ``day`` and on the same weekday a
    week before, and the day's entrance crossings.

    Only what was measured is a number. An hour of ``day`` that has not begun by
    ``now`` is null, not 0. So is an hour (of either day) that starts before
    ``kept_since``: the retention purge may already have deleted its visits
    (``storage.visit_days``), and a 0 there would read as an empty hour; the compared
    day's total is then null too, and ``day_kept`` says whether the day shown is whole.
    The compared day is null as well when the box recorded its first visit after it
    ended: it was not counting yet (``compare_missing`` says which).
    """
    compare = day - dt.timedelta(days=7)
    shown_day, compare_day = DayWindow.of(day, tz), DayWindow.of(compare, tz)
    shown_hours, compare_hours = day_hours(day, tz), day_hours(compare, tz)
    today: dict[HourKey, int] = {}
    before: dict[HourKey, int] = {}
    latest_day = earliest = None
    if "visits" in tables:
        today = _visit_hours(conn, shown_hours)
        before = _visit_hours(conn, compare_hours)
        latest = figures.latest_visit_time(conn)
        latest_day = local_day(latest, tz) if latest is not None else None
        earliest = figures.earliest_visit_time(conn)
    missing: CompareMissing | None = None
    if compare_day.start < kept_since:
        missing = "not_kept"
    elif earliest is None or earliest >= compare_day.end:
        missing = "not_counted"
    hours = _hour_rows(shown_hours, compare_hours, today, before, now=now,
                       kept_since=kept_since, counted=missing != "not_counted")
    entrance_in = entrance_out = 0
    if "line_crossings" in tables:
        entrance_in, entrance_out = figures.entrance_crossings(
            conn, shown_day.start, shown_day.end, entrance_lines)
    # A day partly purged: its total counts what the hours shown count, "at least" that.
    whole = kept_part(shown_day, kept_since, tz)
    partial = shown_day.start < whole.start < whole.end
    total = (figures.visit_count(conn, whole.start, whole.end) if partial and "visits" in tables
             else sum(today.values()))
    return Footfall(
        day=day, compare_day=compare, total=total,
        kept_from=whole.start if partial else None,
        kept_from_text=minute_text(whole.start, tz, today=day) if partial else None,
        compare_total=None if missing else sum(before.values()), compare_missing=missing,
        day_kept=shown_day.start >= kept_since, visit_days=visit_days,
        hours=hours, clock_change=clock_change(shown_hours),
        compare_clock_change=clock_change(compare_hours),
        entrance_in=entrance_in, entrance_out=entrance_out,
        latest_day_with_visits=latest_day,
        associates=associates_on_floor(conn, tables, shown_day),
    )


def kept_part(window: DayWindow, kept_since: float, tz: ZoneInfo) -> DayWindow:
    """The part of ``window`` whose visits are all still kept: from the first hour that
    begins at or after ``kept_since`` (the hours :func:`footfall` shows), so the day's
    figures over it add up with the hours shown. ``window`` itself when all of it is kept;
    empty (start = end) when none of it is."""
    if kept_since <= window.start:
        return window
    start = first_hour_from(day_hours(window.day, tz), kept_since, window.end)
    return DayWindow(window.day, start, window.end)


def _hour_rows(
    shown: list[LocalHour], compared: list[LocalHour], today: dict[HourKey, int],
    before: dict[HourKey, int], *, now: float, kept_since: float, counted: bool,
) -> list[HourCount]:
    """The chart's rows: the hours of the day shown and of the compared day lined up by
    the clock's hour (``01:00`` with ``01:00``; the second ``01:00`` of a day the clocks
    went back with the other day's second one), from the first to the last hour with
    visits on either day, at least the shop's usual hours.

    An hour only one of the two days had (the clocks went back, or forward, on the
    other) reads null there with ``absent``, never 0. An hour the day shown skipped
    (the clocks went forward) is a row only to carry the compared day's count of it;
    while that is not kept (or the box was not counting), the row is left out.
    """
    on_day = {h.key: h for h in shown}
    on_compared = {h.key: h for h in compared}
    keys = sorted(set(on_day) | set(on_compared))
    busy = [key for key in keys if today.get(key) or before.get(key)]
    if not busy:
        return []
    # At least a shop's usual day, so a quiet morning still reads as a day.
    first, last = min(busy[0][0], USUAL_HOURS[0]), max(busy[-1][0], USUAL_HOURS[1])
    rows: list[HourCount] = []
    for key in keys:
        if not first <= key[0] <= last:
            continue
        hour, compared_hour = on_day.get(key), on_compared.get(key)
        # Begun, and none of its visits purged; the week before: kept and counting.
        shown_now = hour is not None and kept_since <= hour.start <= now
        kept = compared_hour is not None and compared_hour.start >= kept_since and counted
        if hour is None and not kept:
            continue
        rows.append(HourCount(
            hour=key[0], repeat=key[1], label=hour_label(*key),
            start=None if hour is None else hour.start,
            today=today.get(key, 0) if shown_now else None,
            last_week=before.get(key, 0) if kept else None,
            absent="day" if hour is None else "compare_day" if compared_hour is None else None,
        ))
    return rows


def with_groups(
    conn: sqlite3.Connection, tables: set[str], footfall: Footfall, window: DayWindow, k: int
) -> Footfall:
    """``footfall`` with the day's buying units (:func:`edge.figures.buying_units`),
    under the k rules the aggregates' ``visits.groups`` follows: hidden below k, and when
    fewer than k of the day's visitors came with someone."""
    if "visit_groups" not in tables or not footfall.total:
        return footfall
    units = figures.buying_units(conn, window.start, window.end)
    if withheld({"groups": units}, k, total=footfall.total):
        return footfall.model_copy(update={"groups_hidden_reason": hidden_reason(
            units, footfall.total, k)})
    return footfall.model_copy(update={"groups": units})


def hidden_reason(count: int, total: int, k: int) -> HiddenReason:
    """Why a withheld count is withheld (:func:`edge.privacy.small_counts.withheld`)."""
    if count < k:
        return "few"
    if 0 < total - count < k:
        return "nearly_all"
    return "worked_out"


def zone_name(zone: ZoneConfig) -> str:
    return zone.name or plain(zone.id)


def zone_shapes(floor: FloorConfig) -> list[ZoneShape]:
    return [
        ZoneShape(id=z.id, name=zone_name(z), kind=z.kind, polygon=[(x, y) for x, y in z.polygon])
        for z in floor.zones
    ]


def heatmap(
    conn: sqlite3.Connection, tables: set[str], window: DayWindow, floor: FloorConfig, k: int,
    *, kept_since: float, kept_hours: float, tz: ZoneInfo, cache: HeatCellCache | None = None,
) -> Heatmap:
    """Dwell time per grid cell of the floor, from the day's raw trajectories.

    Time and people per cell come from the positions of the day's built visits
    (:mod:`edge.web.heatcells`): people are visits, a shopper the tracker split into
    several track ids is one. A cell crossed by fewer than ``k`` people is left blank,
    and so is every cell while the day has fewer than ``k`` visits, so no single path
    can be read off the map. Associates, fragments and tracks not built yet are in no
    visit, so none of their points count.

    Raw positions are kept ``kept_hours`` (:func:`edge.retention.positions_kept_since`
    gives ``kept_since``), while the day's visits are kept for days: a map of a day that
    began before ``kept_since`` covers only the time from then (``covers_from``), not
    whatever part of the earlier hours the last purge happened to leave.

    ``cache`` (the page's) keeps what each built visit put in each cell: a refresh reads
    only the positions of visits built since, with the same figures.
    """
    start = max(window.start, kept_since)
    coverage: HeatmapCoverage = ("whole_day" if start <= window.start else
                                 "partial" if start < window.end else "not_kept")
    covers_from = start if coverage == "partial" else None
    (x0, y0), _ = floor.bounds
    cell = floor.heatmap_cell_m
    per_cell: dict[tuple[int, int], CellFigures] = {}
    if {"track_points", "visit_pieces"} <= tables and start < window.end:
        per_cell = (cells_from_scratch(conn, start, window.end, floor) if cache is None
                    else cache.cells(conn, start, window.end, floor))
    enough = _day_visits(conn, tables, window) >= k  # else no cell can hold k people
    shown = [(cx, cy, f.dwell_s) for (cx, cy), f in per_cell.items()
             if enough and f.people >= k and f.dwell_s > 0]
    hidden = sum(1 for f in per_cell.values() if f.dwell_s > 0) - len(shown)
    top = max((dwell for _, _, dwell in shown), default=0.0)
    cells = [
        HeatCell(x=round(x0 + cx * cell, 6), y=round(y0 + cy * cell, 6), dwell_s=round(dwell, 2),
                 level=round(dwell / top, 4) if top else 0.0)
        for cx, cy, dwell in sorted(shown)
    ]
    return Heatmap(day=window.day, bounds=floor.bounds, cell_m=cell, min_people=k, cells=cells,
                   hidden_cells=hidden, max_dwell_s=round(top, 2), zones=zone_shapes(floor),
                   kept_hours=kept_hours, coverage=coverage, covers_from=covers_from,
                   covers_from_text=None if covers_from is None else clock_text(
                       covers_from, tz, today=window.day))


def _day_visits(conn: sqlite3.Connection, tables: set[str], window: DayWindow) -> int:
    if "visits" not in tables:
        return 0
    return figures.visit_count(conn, window.start, window.end)


def zone_dwell(
    conn: sqlite3.Connection, tables: set[str], window: DayWindow, floor: FloorConfig, k: int
) -> ZoneDwellList:
    """Visitors and typical time per zone; a zone whose visitors, or the day's visitors
    who did not go there, number 1 to k-1 is hidden."""
    per_zone: dict[str, list[float]] = {}
    if {"visits", "visit_zone_dwell"} <= tables:
        per_zone = figures.zone_dwell(conn, window.start, window.end)
    known = {z.id: z for z in floor.zones}
    order = [z.id for z in floor.zones] + sorted(set(per_zone) - set(known))
    total = _day_visits(conn, tables, window)
    hidden = withheld({zone_id: len(per_zone.get(zone_id, [])) for zone_id in order}, k,
                      total=total)
    zones = []
    for zone_id in order:
        dwells = per_zone.get(zone_id, [])
        zone = known.get(zone_id)
        name, kind = (zone_name(zone), zone.kind) if zone else (plain(zone_id), "other")
        hide = zone_id in hidden
        zones.append(ZoneDwell(
            zone_id=zone_id, name=name, kind=kind, suppressed=hide,
            hidden_reason=hidden_reason(len(dwells), total, k) if hide else None,
            visitors=None if hide else len(dwells),
            typical_dwell_s=None if hide or not dwells else round(statistics.median(dwells), 1),
            total_dwell_s=None if hide else round(sum(dwells), 1),
        ))
    return ZoneDwellList(day=window.day, min_count=k, zones=zones)


def _mix_items(
    conn: sqlite3.Connection, table: str, column: str, window: DayWindow, total: int, k: int,
    always: tuple[str, ...], label, *, exclusive: bool, spans: list[figures.SpecSpan],
) -> list[MixItem]:
    """The mix's rows, under the rules the aggregates' ``traits[]``/``segments[]`` follow
    (sync.kanon): a trait counts out of the visits it ``scored`` (those long enough to
    judge), hidden below k and when the scored visits without it are 1 to k-1; segments
    score every visit and are exclusive, so they are withheld against the day's visits."""
    names = set(always)
    counts: dict[str, int] = {}
    scored: dict[str, int] = {}
    for cell in figures.mix(conn, table, column, window.start, window.end):
        names.add(cell.name)
        counts[cell.name] = cell.visits
        scored[cell.name] = cell.scored

    def order(name: str) -> tuple:  # the standard names first, in their order; then A-Z
        return (name not in always, always.index(name) if name in always else 0, name)

    def out_of(name: str) -> int:
        return total if exclusive else scored.get(name, 0)

    # A trait's scored is part of the day's visits: the rest, visits too short to judge,
    # may not be 1 to k-1 either, and the trait's count goes with it (the aggregates drop
    # such a cell).
    unjudged = {name for name in names
                if not exclusive and withheld({name: scored.get(name, 0)}, k, total=total)
                and scored.get(name, 0) < total}
    if not exclusive:  # traits of two spec versions: their scored equal or k apart
        unjudged |= withheld_apart({name: scored[name] for name in scored
                                    if name not in unjudged}, k)
    if exclusive:
        hidden = withheld({name: counts.get(name, 0) for name in names}, k, total=total,
                          exclusive=True)
    else:
        hidden = unjudged | {name for name in names
                             if withheld({name: counts.get(name, 0)}, k, total=out_of(name))}
    items = []
    for name in sorted(names, key=order):
        count = counts.get(name, 0)
        hide = name in hidden
        items.append(MixItem(
            name=name, label=label(name), suppressed=hide,
            hidden_reason=("worked_out" if name in unjudged else
                           hidden_reason(count, out_of(name), k)) if hide else None,
            visits=None if hide else count,
            scored=None if name in unjudged else scored.get(name, 0),
            share=None if hide or not out_of(name) else round(count / out_of(name), 4),
            spec_versions=None if hide else [
                span.version for span in spans if name in span.names],
        ))
    return items


def definitions_note(spans: list[figures.SpecSpan], tz: ZoneInfo, day: dt.date) -> str | None:
    """What the page says when the day's visits were classified under several spec
    versions: when each change came (the first visit under the new version) and how the
    mix counts; ``None`` under one version."""
    if len(spans) < 2:
        return None
    changes = " and ".join(
        f"at {minute_text(new.first_t, tz, today=day)} (version {old.version} → {new.version})"
        for old, new in zip(spans, spans[1:], strict=False))
    return (f"Segment definitions changed {changes}: the mix counts each visit by the "
            "definitions it was classified under.")


def mix(conn: sqlite3.Connection, tables: set[str], window: DayWindow, k: int,
        tz: ZoneInfo) -> Mix:
    """How many of the day's visits show each trait and segment (at p >= 0.5).

    Traits overlap; segments do not (a visit's memberships sum to 1, so at most one
    reaches 0.5, and none does for a visit with no clear type), so a hidden segment also
    hides the next smallest until the rest of the day's visits is not a small group.
    That rest (``segments_rest``: no clear type, or a hidden segment) is shown, so the
    rows add up to the day's visits.

    When the segment spec changed during the day, each visit counts by the definitions it
    was classified under; ``spec_versions`` and ``definitions_note`` say so, and each
    item lists the versions that scored it."""
    total = _day_visits(conn, tables, window)
    traits: list[MixItem] = []
    segments: list[MixItem] = []
    spans = (figures.spec_spans(conn, window.start, window.end)
             if {"visits", "visit_traits", "visit_segments"} <= tables else [])
    if {"visits", "visit_traits"} <= tables:
        traits = _mix_items(conn, "visit_traits", "trait", window, total, k,
                            STANDARD_TRAITS, trait_label, exclusive=False, spans=spans)
    total_units = None
    if {"visits", "visit_segments"} <= tables:
        segments = _mix_items(conn, "visit_segments", "segment", window, total, k, (), plain,
                              exclusive=True, spans=spans)
        if "visit_groups" in tables and total:
            segments, total_units = _with_units(conn, segments, window, total, k)
    return Mix(day=window.day, total_visits=total, min_count=k, traits=traits, segments=segments,
               traits_scored=None if any(item.scored is None for item in traits)
               else max((item.scored or 0 for item in traits), default=None),
               total_units=total_units,
               segments_rest=total - sum(item.visits or 0 for item in segments)
               if segments else None,
               units_rest=None if total_units is None else
               total_units - sum(item.units or 0 for item in segments),
               spec_versions=[SpecVersionUse(
                   version=span.version, first_visit_t=span.first_t,
                   first_visit_text=minute_text(span.first_t, tz, today=window.day),
                   last_visit_t=span.last_t) for span in spans],
               definitions_note=definitions_note(spans, tz, window.day))


def _with_units(
    conn: sqlite3.Connection, segments: list[MixItem], window: DayWindow, total: int, k: int
) -> tuple[list[MixItem], int | None]:
    """``segments`` with their shopping parties (:func:`edge.figures.unit_segments`), and
    the day's parties, under the rules the aggregates' ``segments[].units`` follow: all
    hidden when the day's parties are (:func:`with_groups`: their sum would give them
    back); else hidden below k, when the segment's visitors not counted as its parties
    are 1 to k-1, so that what the parties shown leave of the day's is 0 or >= k, and
    so that the rest rows (no clear type, or hidden) do not give away 1 to k-1 people
    who came with someone: "No clear type: 8 visits, 7 parties" says 1 did."""
    units_total = figures.buying_units(conn, window.start, window.end)
    if withheld({"groups": units_total}, k, total=total):
        return [item.model_copy(update={"units_hidden_reason": "worked_out"})
                for item in segments], None
    units = figures.unit_segments(conn, window.start, window.end)
    counts = {item.name: units.get(item.name, 0) for item in segments}
    # Withheld first when the segment's visitors not counted as its parties are 1 to k-1
    # (sync.kanon does the same, in the same order), then the rules of exclusive cells.
    cells: dict[str, float | None] = {
        item.name: None if item.visits is not None
        and withheld({item.name: counts[item.name]}, k, total=item.visits) else counts[item.name]
        for item in segments}
    hidden = withheld(cells, k, total=units_total, exclusive=True)
    # The people who came with someone (visits - parties) are exclusive cells too.
    hidden |= withheld_differences(
        {item.name: item.visits - counts[item.name] for item in segments
         if item.visits is not None and item.name not in hidden}, k, total=total - units_total)
    return [item.model_copy(update=(
        {"units_hidden_reason": hidden_reason(counts[item.name], units_total, k)}
        if item.name in hidden else
        {"units": counts[item.name], "units_share": round(counts[item.name] / units_total, 4)}))
        for item in segments], units_total


def wifi(
    conn: sqlite3.Connection, tables: set[str], window: DayWindow, tz: ZoneInfo,
    door_lines: list[str] | None = None,
) -> Wifi:
    """Passers-by and phones that came in on one day, from the Wi-Fi windows.

    Uses the longest window length the sensor wrote that day (so 1-minute and
    15-minute windows are not both added up), and the largest count over sensors
    for each window (sensors in one store hear the same phones). Phones that came in
    are the day's arrivals (a phone is counted once however many windows it stays
    in); the peak is the most present in one window. Arrivals are unknown (None) if any
    window of the day was written before they were counted.

    A window in which no sensor heard a single frame (:attr:`edge.figures.WifiSubWindow.heard`)
    is unknown, not zero: the figures count only the windows heard, and are None when
    none was; ``silent_since`` is when the sensor's latest run of such windows began.

    The capture rate (:func:`edge.figures.capture_rate`) is head office's: the door's
    in-crossings on the entrance lines ``door_lines`` against the passers-by, when the
    site counts at its door; else, with no door line (None or empty), the phones that
    came in. The door is counted only within the windows heard (``covered``), as each
    MQTT window pairs its own crossings with its own passers-by: a day the sensor
    covered from 15:00 divides the door's count from 15:00, not the whole day's.
    """
    empty = Wifi(day=window.day, windows=0, window_s=None, passers_by=None,
                 arrived_devices=None, in_store_devices=None, capture_rate=None,
                 capture_basis=None,
                 latest_occupancy_estimate=None, latest_window_text=None)
    if "wifi_windows" not in tables:
        return empty
    rows = figures.wifi_window_rows(conn, window.start, window.end, ending_inside=False)
    if not rows:
        return empty
    length, subs = figures.wifi_sub_windows(rows)
    subs = sorted(subs, key=lambda sub: sub.start)
    heard = figures.wifi_heard(subs)
    silent_since = None
    for sub in reversed(subs):
        if sub.heard:
            break
        silent_since = sub.start
    silent = {"silent_since": silent_since, "silent_since_text": None if silent_since is None
              else minute_text(silent_since, tz, today=window.day)}
    if not heard:
        return empty.model_copy(update={"windows": len(subs), "window_s": length, **silent})
    arrived = figures.wifi_arrivals(heard)
    passing = sum(sub.passers_by for sub in heard)
    covered = _spans((sub.start, sub.end) for sub in heard)
    door_in = None
    if door_lines:
        door_in = sum(figures.entrance_crossings(conn, start, end, door_lines)[0]
                      for start, end in covered) if "line_crossings" in tables else 0
    came_in = door_in if door_in is not None else arrived
    rate = None if came_in is None else figures.capture_rate(came_in, passing)
    latest_end = max(float(r[0]) + int(r[1]) for r in rows)
    estimates = [float(r[4]) for r in rows if float(r[0]) + int(r[1]) == latest_end
                 and r[4] is not None and figures.wifi_row_heard(r)]
    return Wifi(
        day=window.day, windows=len(subs), window_s=length, passers_by=passing,
        arrived_devices=arrived,
        in_store_devices=max(sub.in_store_devices for sub in heard),
        capture_rate=None if rate is None else round(rate, 4),
        capture_basis=None if came_in is None else "door" if door_in is not None else "phones",
        latest_occupancy_estimate=round(max(estimates), 1) if estimates else None,
        latest_window_text=clock_text(latest_end, tz, today=window.day),
        door_in=door_in,
        covered_text=", ".join(f"{minute_text(start, tz, today=window.day)}-"
                               f"{minute_text(end, tz, today=window.day)}"
                               for start, end in covered),
        **silent,
    )


def _spans(spans: Iterable[tuple[float, float]]) -> list[tuple[float, float]]:
    """``(start, end)`` spans merged where they touch or overlap, in order."""
    merged: list[tuple[float, float]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


RECENT_WAITS_S = 3600.0


def queue(
    conn: sqlite3.Connection, tables: set[str], now: float, window: DayWindow,
    floor: FloorConfig, k: int, live_window_s: float,
) -> Queue:
    """The checkout queue: people in it now (live only, like occupancy, shown as counted)
    and the waits of the visits that ended in ``window`` (hidden below k, like zone dwell,
    the k rules counting against the visits of ``window``). The page passes the day's
    kept part (:func:`kept_part`): a day partly purged counts the hours wholly kept, as
    its other visit figures do."""
    if not has_queue(floor):
        return Queue(configured=False, waiting_now=None, waited=None, wait_p50_s=None,
                     wait_p90_s=None, recent_wait_s=None, suppressed=False)
    waiting_now = None
    if "track_points" in tables:
        latest = conn.execute("select max(t) from track_points where t <= ?",
                              (now + CLOCK_SKEW_S,)).fetchone()[0]
        if latest is not None and now - latest <= live_window_s:
            waiting_now = people_in_queue(conn, floor, now - live_window_s, now + CLOCK_SKEW_S)
    waits: list[float] = []
    people = 0
    recent = None
    if {"visits", "visit_queue_waits"} <= tables:
        waits = read_waits(conn, window.start, window.end)
        people = waiting_visits(conn, window.start, window.end)
        last_hour = (now - RECENT_WAITS_S, now + CLOCK_SKEW_S)
        if waiting_visits(conn, *last_hour) >= k:
            recent = wait_summary(read_waits(conn, *last_hour), 0).p50_s
    total = _day_visits(conn, tables, window)
    hide = bool(withheld({"waited": people}, k, total=total, zero_is_small=True))
    summary = wait_summary(waits, people)
    return Queue(
        configured=True, waiting_now=waiting_now,
        waited=None if hide else people,
        wait_p50_s=None if hide or summary.p50_s is None else round(summary.p50_s, 1),
        wait_p90_s=None if hide or summary.p90_s is None else round(summary.p90_s, 1),
        recent_wait_s=None if recent is None else round(recent, 1),
        suppressed=hide and people > 0,
        hidden_reason=hidden_reason(people, total, k) if hide and people > 0 else None,
    )


def conversion(
    conn: sqlite3.Connection, tables: set[str], window: DayWindow, k: int
) -> Conversion:
    """Transactions of the till periods lying wholly in ``window`` against the visits
    that ended in them. The page passes the day's kept part (:func:`kept_part`): till
    periods are never purged, their visits are, so on a day partly purged a period that
    starts before the kept part (straddling its start too) is left out, not divided by
    the visits left of it."""
    if "pos_periods" not in tables:
        return Conversion(periods=0, transactions=None, visits=None, rate=None, suppressed=False)
    periods = read_periods(conn, window.start, window.end)
    transactions = sum(p.transactions for p in periods)
    visits = 0
    if "visits" in tables:
        for p in periods:
            visits += figures.visit_count(conn, p.start, p.end)
    hidden = withheld({"transactions": transactions, "visits": visits}, k, zero_is_small=True)
    shown_t = None if "transactions" in hidden else transactions
    shown_v = None if "visits" in hidden else visits
    return Conversion(
        periods=len(periods), transactions=shown_t, visits=shown_v,
        rate=round(shown_t / shown_v, 3) if shown_t is not None and shown_v else None,
        suppressed=bool(periods) and bool(hidden),
    )


def health_rows(conn: sqlite3.Connection, tables: set[str]) -> list[tuple]:
    """``(component, status, detail JSON, message, updated_at)`` of every service."""
    if "health" not in tables:
        return []
    return conn.execute(
        "select component, status, detail, message, updated_at from health order by component"
    ).fetchall()


def debug_modes(conn: sqlite3.Connection, tables: set[str]) -> list[tuple[str, str, float]]:
    """``(name, detail, started_at)`` of every debug mode on now (edge.privacy.store)."""
    if "debug_modes" not in tables:
        return []
    return conn.execute(
        "select name, detail, started_at from debug_modes order by started_at"
    ).fetchall()


def replays(conn: sqlite3.Connection, tables: set[str], window: DayWindow) -> int:
    """How many replays (runs of kind ``replay``) wrote visits or positions on the day."""
    if "runs" not in tables:
        return 0
    columns = {row[1] for row in conn.execute("pragma table_info(runs)")}
    if "kind" not in columns:
        return 0
    checks = [f"exists (select 1 from {table} x where x.run_id = r.id and x.{column} >= :start "
              f"and x.{column} < :end)"
              for table, column in (("visits", figures.VISIT_TIME), ("track_points", "t"))
              if table in tables]
    if not checks:
        return 0
    return int(conn.execute(
        f"select count(*) from runs r where r.kind = 'replay' and ({' or '.join(checks)})",
        {"start": window.start, "end": window.end},
    ).fetchone()[0])


def spec_version(conn: sqlite3.Connection, tables: set[str]) -> str | None:
    """The shopper-type definitions version of the latest visit (IT detail)."""
    if "visits" not in tables:
        return None
    row = conn.execute("select spec_version from visits order by end_t desc limit 1").fetchone()
    return str(row[0]) if row and row[0] is not None else None


def latest_model(conn: sqlite3.Connection, tables: set[str]) -> str | None:
    if "runs" not in tables:
        return None
    row = conn.execute("select model from runs order by id desc limit 1").fetchone()
    return row[0] if row else None


def has_any_data(conn: sqlite3.Connection, tables: set[str]) -> bool:
    for table in ("track_points", "visits", "wifi_windows", "health"):
        if table in tables and conn.execute(f"select 1 from {table} limit 1").fetchone():
            return True
    return False
