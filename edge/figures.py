"""The store figures, one query each: read by the status page (:mod:`edge.web.queries`)
and by the MQTT aggregates (:mod:`sync.aggregate`), so the page and head office see
the same numbers for the same period (STYLE.md A6).

**Which period a visit belongs to: the one in which it ended** (``visits.end_t``),
when the shopper left. That is when a visit is complete (its time in the store,
zones and traits are known only then, and it is stored only then), so a period's
figures are final once the period is over: the page's bar for 10:00 stops changing
soon after 11:00 and says what the 10:00 aggregate sent to head office says, which
never sends a window again. Till conversion pairs a period's transactions with the
visits that ended in it for the same reason (people pay on their way out). Line
crossings (the door counter) and positions (occupancy) count at the moment they
happen.

Every function takes a ``sqlite3.Connection`` or a ``sqlite_utils.Database`` and a
period ``[start, end)`` in epoch seconds (:func:`wifi_sub_windows`: the rows
:func:`wifi_window_rows` read), and returns exact counts: hiding small
groups (:mod:`edge.privacy.small_counts`, :mod:`sync.kanon`) is the reader's job.
The tables must exist; the page checks which do first.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from edge.config.visits import PARTY_LEAVE_S

# A trait or segment "counts" for a visit at this probability or more.
TRAIT_THRESHOLD = 0.5
# The time that places a visit in a period (see the module docstring).
VISIT_TIME = "end_t"


def visit_period(alias: str = "") -> str:
    """The SQL condition "the visit belongs to ``[?, ?)``", for a query over ``visits``
    (aliased ``alias``); its two parameters are the period's start and end."""
    column = f"{alias}.{VISIT_TIME}" if alias else VISIT_TIME
    return f"{column} >= ? and {column} < ?"


def visit_count(conn: Any, start: float, end: float) -> int:
    """Visits of the period."""
    return int(conn.execute(
        f"select count(*) from visits where {visit_period()}", (start, end)
    ).fetchone()[0])


def visit_times(conn: Any, start: float, end: float) -> list[float]:
    """The time that places each visit of the period in it (its end), for counts per
    hour."""
    return [float(t) for (t,) in conn.execute(
        f"select {VISIT_TIME} from visits where {visit_period()}", (start, end)
    )]


def latest_visit_time(conn: Any) -> float | None:
    """The time of the latest visit (its end), None when there is none."""
    latest = conn.execute(f"select max({VISIT_TIME}) from visits").fetchone()[0]
    return None if latest is None else float(latest)


def earliest_visit_time(conn: Any) -> float | None:
    """The time of the earliest visit still stored (its end), None when there is none."""
    earliest = conn.execute(f"select min({VISIT_TIME}) from visits").fetchone()[0]
    return None if earliest is None else float(earliest)


def entrance_crossings(conn: Any, start: float, end: float, lines: list[str]) -> tuple[int, int]:
    """``(in, out)``: steps across the entrance lines ``lines``
    (:attr:`edge.config.floor.FloorConfig.entrance_line_ids`) in the period."""
    if not lines:
        return (0, 0)
    marks = ",".join("?" * len(lines))
    counts = dict(conn.execute(
        f"select direction, count(*) from line_crossings where t >= ? and t < ? "
        f"and line_id in ({marks}) group by direction",
        (start, end, *lines),
    ).fetchall())
    return (int(counts.get("in", 0)), int(counts.get("out", 0)))


def zone_dwell(conn: Any, start: float, end: float) -> dict[str, list[float]]:
    """Zone id -> the seconds each visit of the period spent there (visits that went
    there only)."""
    per_zone: dict[str, list[float]] = defaultdict(list)
    for zone_id, dwell in conn.execute(
        f"select d.zone_id, d.dwell_s from visit_zone_dwell d join visits v "
        f"on v.visit_id = d.visit_id where {visit_period('v')} and d.dwell_s > 0",
        (start, end),
    ):
        per_zone[str(zone_id)].append(float(dwell))
    return dict(per_zone)


@dataclass(frozen=True, slots=True)
class MixCount:
    """A trait or segment over a period's visits: ``visits`` with probability >=
    :data:`TRAIT_THRESHOLD`, out of ``scored`` visits with a probability for it."""

    name: str
    visits: int
    scored: int
    mean_probability: float


def mix(conn: Any, table: str, column: str, start: float, end: float) -> list[MixCount]:
    """Per trait (``visit_traits``/``trait``) or segment (``visit_segments``/``segment``),
    sorted by name."""
    rows = conn.execute(
        f"select s.{column}, sum(s.probability >= ?), count(*), avg(s.probability) "
        f"from {table} s join visits v on v.visit_id = s.visit_id "
        f"where {visit_period('v')} and s.probability is not null "
        f"group by s.{column} order by s.{column}",
        (TRAIT_THRESHOLD, start, end),
    ).fetchall()
    return [MixCount(str(name), int(hits), int(scored), float(mean))
            for name, hits, scored, mean in rows]


@dataclass(frozen=True, slots=True)
class SpecSpan:
    """One version of the segment spec over a period: when the first and the last of the
    period's visits it classified ended, and which trait and segment names it gave a
    probability to."""

    version: str
    first_t: float
    last_t: float
    names: frozenset[str]


def spec_spans(conn: Any, start: float, end: float) -> list[SpecSpan]:
    """The segment spec versions that classified the period's visits, in the order they
    came in (by their first visit); one item unless the spec changed in the period (a
    downlink, a refit that keeps the names), when each trait or segment cell of
    :func:`mix` counts every visit by the definitions it was classified under."""
    names: dict[str, set[str]] = defaultdict(set)
    for table, column in (("visit_traits", "trait"), ("visit_segments", "segment")):
        for version, name in conn.execute(
            f"select distinct v.spec_version, s.{column} from {table} s join visits v "
            f"on v.visit_id = s.visit_id where {visit_period('v')} "
            f"and s.probability is not null",
            (start, end),
        ):
            names[str(version)].add(str(name))
    rows = conn.execute(
        f"select spec_version, min(end_t), max(end_t) from visits v where {visit_period('v')} "
        f"and spec_version is not null and spec_version != '' group by spec_version "
        f"order by min(end_t), spec_version",
        (start, end),
    ).fetchall()
    return [SpecSpan(str(version), float(first), float(last),
                     frozenset(names.get(str(version), ())))
            for version, first, last in rows]


def latest_position_time(conn: Any, until: float) -> float | None:
    """The time of the latest stored position at or before ``until``."""
    latest = conn.execute("select max(t) from track_points where t <= ?", (until,)).fetchone()[0]
    return None if latest is None else float(latest)


@dataclass(frozen=True)
class Headcount:
    """People seen: customers, and associates counted apart (never in ``customers``)."""

    customers: int
    associates: int


def staff_point_filter(tables: set[str], alias: str) -> str:
    """SQL (``and ...``) keeping only the ``track_points`` rows (as ``alias``) that are no
    associate's: not inside a stored staff visit, nor on an open track the visit builder
    has classified as staff (docs/visits.md, Associates). Empty when neither table
    exists (an older database)."""
    clause = ""
    if "staff_visits" in tables:
        clause += (f" and not exists (select 1 from staff_visits s where s.run_id = {alias}.run_id"
                   f" and s.camera_id = {alias}.camera_id and s.track_id = {alias}.track_id"
                   f" and {alias}.t >= s.start_t and {alias}.t <= s.end_t)")
    if "staff_tracks_open" in tables:
        clause += (f" and not exists (select 1 from staff_tracks_open o where o.run_id = "
                   f"{alias}.run_id and o.camera_id = {alias}.camera_id and o.track_id = "
                   f"{alias}.track_id and {alias}.t >= o.start_t)")
    return clause


def table_names(conn: Any) -> set[str]:
    return {name for (name,) in conn.execute("select name from sqlite_master where type = 'table'")}


def people_seen(
    conn: Any, start: float, end: float, camera_id: str | None = None
) -> Headcount:
    """People (distinct tracks) with a position in ``[start, end]`` (of one camera):
    occupancy, associates apart."""
    camera, params = ("and camera_id = ?", [camera_id]) if camera_id is not None else ("", [])
    every, customers = (int(conn.execute(
        f"select count(*) from (select distinct run_id, camera_id, track_id "
        f"from track_points tp where t >= ? and t <= ? {camera} {keep})",
        [start, end, *params],
    ).fetchone()[0]) for keep in ("", staff_point_filter(table_names(conn), "tp")))
    return Headcount(customers=customers, associates=every - customers)


def people_per_sample(conn: Any, start: float, end: float, sample_s: float) -> list[int]:
    """Customers in the store per sample of ``sample_s`` seconds of ``[start, end)``: the
    distinct tracks seen in each sample with anyone in it (a sample with nobody has no
    entry); associates are left out."""
    return [int(n) for (n,) in conn.execute(
        "select count(*) from (select distinct cast((t - ?) / ? as integer) as sample, "
        "run_id, camera_id, track_id from track_points tp where t >= ? and t < ? "
        f"{staff_point_filter(table_names(conn), 'tp')}) group by sample",
        (start, sample_s, start, end),
    )]


def people_in_last_frames(conn: Any, latest: float, instant_s: float = 1e-3) -> Headcount:
    """People in each camera's last frame with anyone in it, up to ``latest``: the
    occupancy of a replay, or of cameras stopped. The frames looked at are those of the
    minute before ``latest`` (the ``t`` index makes this a short range scan)."""
    customers = associates = 0
    for camera_id, last_t in conn.execute(
        "select camera_id, max(t) from track_points where t >= ? and t <= ? group by camera_id",
        (latest - 60.0, latest),
    ).fetchall():
        seen = people_seen(conn, last_t - instant_s, last_t, camera_id)
        customers += seen.customers
        associates += seen.associates
    return Headcount(customers=customers, associates=associates)


def buying_units(conn: Any, start: float, end: float) -> int:
    """Buying units whose first visit to end ended in ``[start, end)`` (the period rule
    above, for shopping groups: docs/visits.md): each group is counted in one period
    only, the one where its first member left; a visit without a group is a unit."""
    return int(conn.execute(
        "select count(distinct coalesce(g.group_id, v.visit_id)) from visits v "
        f"left join visit_groups g on g.visit_id = v.visit_id where {_unit_period()}",
        [start, end, start],
    ).fetchone()[0])


def _unit_period() -> str:
    """SQL over ``visits v`` left joined to ``visit_groups g``: "the visit is of a buying
    unit of ``[?, ?)``", the period in which the unit's first member to leave left
    (:func:`buying_units`); its three parameters are the period's start, end and start."""
    return (f"{visit_period('v')} and (g.group_id is null or not exists ("
            "select 1 from visit_groups o join visits w on w.visit_id = o.visit_id "
            f"where o.group_id = g.group_id and w.{VISIT_TIME} < ?))")


def unit_segments(conn: Any, start: float, end: float) -> dict[str, int]:
    """The segment mix of the period's buying units (:func:`buying_units`): segment ->
    units, each group classified once (docs/visits.md, Shopping groups).

    A unit's segment memberships are the mean of those of its members that left within
    :data:`~edge.config.visits.PARTY_LEAVE_S` of its first member (they left together),
    whatever the period: a unit counted in a 15-minute window and in the day is the same
    segment in both, so the windows head office adds up give the day the page shows (a
    mean over the members gone by the end of each period classed a family whose parent
    left at 10:59 and children at 11:01 by the parent alone in the 10:45 window, by all
    three in the day). Its segment is the one with the highest mean, when that reaches
    :data:`TRAIT_THRESHOLD` (ties to the first name): the rule of a visit's segment in
    :func:`mix`, so someone alone counts as in the per-visit mix, a family of three once,
    and a unit counts in one segment at most (the counts are exclusive).
    """
    rows = conn.execute(
        "with first_left as (select o.group_id, min(w.{t}) as t from visit_groups o "
        "join visits w on w.visit_id = o.visit_id group by o.group_id) "
        "select coalesce(g.group_id, v.visit_id) as unit, s.segment, avg(s.probability) "
        "from visits v left join visit_groups g on g.visit_id = v.visit_id "
        "left join first_left f on f.group_id = g.group_id "
        "join visit_segments s on s.visit_id = v.visit_id "
        "where s.probability is not null and ("
        f"(g.group_id is null and {visit_period('v')}) or "
        "(f.t >= ? and f.t < ? and v.{t} <= f.t + ?)) "
        "group by unit, s.segment".format(t=VISIT_TIME),
        [start, end, start, end, PARTY_LEAVE_S],
    ).fetchall()
    best: dict[str, tuple[float, str]] = {}
    for unit, segment, p in rows:
        if unit not in best or (-p, segment) < (-best[unit][0], best[unit][1]):
            best[unit] = (float(p), str(segment))
    counts: dict[str, int] = {}
    for p, segment in best.values():
        if p >= TRAIT_THRESHOLD:
            counts[segment] = counts.get(segment, 0) + 1
    return counts


@dataclass(frozen=True, slots=True)
class WifiSubWindow:
    """One Wi-Fi window length's sub-window as the store counts it: several sensors in
    one store hear the same phones, so each figure is the largest any sensor gave.

    ``in_store_devices`` are the phones present during the sub-window (a phone staying
    an hour is in four 15-minute ones); ``arrived_devices`` those in the store for the
    first time, which add up over a day: None when a sensor's row predates the column
    (its arrivals are unknown, and the largest of the others may be too small).

    ``heard`` is False when no sensor heard a single frame in it (``frames`` 0 in every
    row: an adapter unplugged, deaf or on a dead channel still closes its windows by the
    clock). Its zeros are then not a measurement: nobody knows how many phones passed,
    so readers leave it out (:func:`wifi_heard`) instead of counting 0 passers-by. A row
    without a frame count (NULL) counts as heard."""

    start: float
    seconds: int
    in_store_devices: int
    arrived_devices: int | None
    passers_by: int
    occupancy_estimate: float | None
    heard: bool = True

    @property
    def end(self) -> float:
        return self.start + self.seconds


# The columns of ``wifi_windows`` that :func:`wifi_sub_windows` reads, in its order.
WIFI_ROW_COLUMNS = ("window_start, window_s, in_store_devices, passers_by, occupancy_estimate, "
                    "arrived_devices, frames")


def wifi_window_rows(conn: Any, start: float, end: float, *, ending_inside: bool) -> list[Any]:
    """The rows of ``wifi_windows`` starting in ``[start, end)``, for
    :func:`wifi_sub_windows`; with ``ending_inside``, only those also ending by ``end``."""
    last = "window_start + window_s <= ?" if ending_inside else "window_start < ?"
    rows: list[Any] = conn.execute(
        f"select {WIFI_ROW_COLUMNS} from wifi_windows where window_start >= ? and {last}",
        (start, end),
    ).fetchall()
    return rows


def wifi_row_heard(row: Any) -> bool:
    """Whether a sensor heard anything in a row of ``wifi_windows`` read with
    :data:`WIFI_ROW_COLUMNS` (a row without a frame count counts as heard)."""
    return len(row) < 7 or row[6] is None or int(row[6]) > 0


def wifi_sub_windows(rows: list[Any]) -> tuple[int, list[WifiSubWindow]]:
    """The longest window length among ``rows`` of ``wifi_windows`` (the columns
    :data:`WIFI_ROW_COLUMNS`), so
    that 1-minute and 15-minute windows are not both added up, and its sub-windows in
    the rows' order."""
    longest = max(int(row[1]) for row in rows)
    heard: dict[float, list[Any]] = defaultdict(list)
    for row in rows:
        if int(row[1]) == longest:
            heard[row[0]].append(row)
    return longest, [
        WifiSubWindow(
            start=float(start),
            seconds=longest,
            in_store_devices=max(int(row[2] or 0) for row in sensors),
            arrived_devices=(None if any(row[5] is None for row in sensors)
                             else max(int(row[5]) for row in sensors)),
            passers_by=max(int(row[3] or 0) for row in sensors),
            occupancy_estimate=max((row[4] for row in sensors if row[4] is not None),
                                   default=None),
            heard=any(wifi_row_heard(row) for row in sensors),
        )
        for start, sensors in heard.items()
    ]


def wifi_heard(subs: list[WifiSubWindow]) -> list[WifiSubWindow]:
    """The sub-windows of ``subs`` that some sensor heard anything in
    (:attr:`WifiSubWindow.heard`): the only ones whose counts are measurements."""
    return [sub for sub in subs if sub.heard]


def wifi_arrivals(subs: list[WifiSubWindow]) -> int | None:
    """Phones that came in over ``subs``: the sum of their arrivals (each phone arrives
    once, unlike ``in_store_devices``, which counts it in every sub-window it is in);
    None if any sub-window's arrivals are unknown (written before they were counted)."""
    arrivals = [sub.arrived_devices for sub in subs]
    if any(count is None for count in arrivals):
        return None
    return sum(count for count in arrivals if count is not None)


def capture_rate(came_in: int, passers_by: int) -> float | None:
    """The share of passers-by who came in: ``came_in / (came_in + passers_by)``, with
    ``came_in`` the door's in-crossings (head office's ``footfall.capture_rate``, and
    the page's when the site counts at its door) or, for a store that counts no door,
    the phones that came in; None when both are 0."""
    total = came_in + passers_by
    return came_in / total if total > 0 else None
