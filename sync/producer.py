"""Turn closed windows into k-anonymous, schema-valid outbox rows.

A window is closed once ``settle_s`` has passed after its end (visits ending in it
are closed and stored by then). Windows are produced in order from a cursor kept
in the database, including windows with no data (a zero is information; a gap is
not). The cursor moves in the same transaction as the row is stored.

While a live visit source runs (a camera worker, or the fusion service), the wall clock
alone never closes a window: the box's own data must show that time has reached it
(:func:`latest_data_time`, which a running source moves on even when nobody is seen),
give or take the time a source may be waited for. A clock stepped forward (a bogus NTP
answer, a wrong real-time clock) would otherwise close empty windows up to the false
time and move the cursor there for good, and the real visits of that span would never
be sent (a window's id is deterministic: sending it again with other content is a
conflict at the central side).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

import sqlite_utils

from edge.config import SiteConfig
from edge.config.site import STORE_TRACKS_ID
from edge.retention import positions_kept_since, visits_kept_since
from edge.visits.builder import visits_stored_until
from sync import contract, kanon
from sync.aggregate import (
    Window,
    aggregate_window,
    aligned_start,
    earliest_data_time,
    full_message,
    window_from,
    withhold_period_visits,
)
from sync.contract import parse_iso_utc
from sync.day_stats import add_segment_stats, closes_day, day_start, withhold_day_visits
from sync.outbox import Eviction, Outbox, published_windows
from sync.settings import SyncSettings

log = logging.getLogger(__name__)

MAX_WINDOWS_PER_PASS = 96  # a day of 15-min windows; a long backlog is caught up pass by pass
# A cursor this far past the clock says the clock was ahead, or was set back (health).
CLOCK_MARGIN_S = 60.0


@dataclass(frozen=True, slots=True)
class Produced:
    """What one production pass stored."""

    windows: tuple[Window, ...]
    evictions: tuple[Eviction, ...]
    # The latest time the data showed when windows were held back because the clock is
    # further ahead than any data source (None: the clock was trusted).
    held_at: float | None = None
    # How far the cursor is past the clock, when over CLOCK_MARGIN_S (else 0).
    cursor_ahead_s: float = 0.0


def latest_data_time(db: sqlite_utils.Database) -> float | None:
    """The latest time the box's data sources have shown they reached: the newest
    position, visit end, line crossing and Wi-Fi window end, and the present of every
    visit build (a camera worker or the fusion service moves it on even when nobody is
    seen). None for a box without data."""
    queries = {
        "track_points": "select max(t) from track_points",
        "visits": "select max(end_t) from visits",
        "line_crossings": "select max(t) from line_crossings",
        "wifi_windows": "select max(window_start + window_s) from wifi_windows",
        "visit_build_runs": "select max(built_until_t) from visit_build_runs",
    }
    times = [db.execute(sql).fetchone()[0] for table, sql in queries.items()
             if db[table].exists()]
    present = [float(t) for t in times if t is not None]
    return max(present) if present else None


def live_source_running(db: sqlite_utils.Database, sources: list[str]) -> bool:
    """Whether a live run of one of ``sources`` says it is running: its data then shows
    how far time has reached (a replayed or stopped box has only the wall clock)."""
    if not sources or not db["runs"].exists():
        return False
    marks = ", ".join("?" for _ in sources)
    return db.execute(f"select 1 from runs where kind = 'live' and status = 'running' "
                      f"and camera_id in ({marks}) limit 1", sources).fetchone() is not None


def build_message(db: sqlite_utils.Database, site: SiteConfig, window: Window, k: int,
                  now: float | None = None) -> dict:
    """The publishable message of one window: aggregated, suppressed at ``k``, validated.
    With ``now``, a window older than the raw positions kept then has no occupancy or
    queue lengths (null: purged, not "nobody")."""
    entrance = site.floor.entrance_line_ids
    aggregate = aggregate_window(
        db,
        window,
        store=site.site.id,
        entrance_lines=entrance or None,
        has_cameras=bool(site.cameras),
        occupancy_sample_s=site.sync.occupancy_sample_s,
        floor=site.floor,
        positions_since=None if now is None else positions_kept_since(site, now),
        timezone=site.site.timezone,
    )
    if aggregate.skipped_records:
        log.warning(
            "Window %s: %d malformed records skipped.", aggregate.id, aggregate.skipped_records
        )
    full = full_message(aggregate)
    # What the earlier messages of the day, and of the till periods, said about each
    # window: read back from the outbox with the length each was published with.
    day = (published_windows(db, day_start(window), window.start, k) if closes_day(window)
           else [])
    add_segment_stats(full, db, site, window, k, day)
    message = kanon.suppress(full, k)
    withhold_across_messages(db, message, window, k)
    contract.validate("aggregate", message)
    kanon.assert_k_anonymous(message, k)
    return message


def withhold_across_messages(
    db: sqlite_utils.Database, message: dict[str, Any], window: Window, k: int
) -> None:
    """The rules across messages on a suppressed ``message`` of ``window``: its till
    periods' visits and the day's segment statistics against the counts the earlier
    messages in the outbox hold (:func:`sync.outbox.published_windows`)."""
    periods = [parse_iso_utc(cell["period_start"]) for cell in message.get("conversion") or []]
    first = min(periods, default=window.start)
    withhold_period_visits(message, window, k, published_windows(db, first, window.start, k))
    day = (published_windows(db, day_start(window), window.start, k) if closes_day(window)
           else [])
    withhold_day_visits(message, window, k, day)


def tighten(db: sqlite_utils.Database, message: dict[str, Any], k: int) -> dict[str, Any]:
    """A stored ``message`` under the k rules in force now (k raised by the central
    platform since it was stored, or a rule an update made stricter), the rules across
    messages included: an earlier window withheld now, which the stored message's day
    statistics or till periods were checked against as published, would otherwise come
    back by subtraction."""
    window = Window(parse_iso_utc(message["window"]["start"]), message["window"]["seconds"])
    message = kanon.suppress(message, k)
    withhold_across_messages(db, message, window, k)
    return message


def produce(
    db: sqlite_utils.Database,
    site: SiteConfig,
    outbox: Outbox,
    settings: SyncSettings,
    now: float,
    *,
    limit: int = MAX_WINDOWS_PER_PASS,
) -> Produced:
    """Store every closed window after the cursor (at most ``limit``) in the outbox.

    Raises:
        StorageError: the outbox cannot be written (disk full...). Windows stored before
            the failure stay stored; the failed one is retried on the next pass.
    """
    cursor = outbox.cursor()
    if cursor is not None and cursor > now + CLOCK_MARGIN_S:
        log.warning("The clock (%s) is behind the windows already produced (up to %s); "
                    "waiting for it to pass them.", contract.iso_utc(now),
                    contract.iso_utc(cursor))
        return Produced((), (), cursor_ahead_s=cursor - now)
    if cursor is None:
        first = earliest_data_time(db)
        if first is None:
            return Produced((), ())
        cursor = aligned_start(first, settings.window_s)
    # Windows older than the visit retention cannot be aggregated truthfully any more (their
    # data may be purged, in part): after a long outage the box resumes at the first window
    # whose visits are all still stored, instead of sending zeros or part of them.
    horizon = float(math.ceil(visits_kept_since(site, now) / settings.window_s)
                    * settings.window_s)
    if cursor < horizon:
        log.warning(
            "Skipping windows from %s to %s: older than the %g-day visit retention.",
            contract.iso_utc(cursor),
            contract.iso_utc(horizon),
            site.storage.visit_days,
        )
        cursor = horizon
    # A window also waits for the visits a camera worker or the fusion service has not
    # stored yet (it fell behind, or is restarting: a fusion back within
    # fusion.down_hold_s resumes its run), for fusion.down_hold_s at most.
    give_up_s = site.sync.settle_s + site.fusion.down_hold_s
    sources = ([STORE_TRACKS_ID] if site.fuses_cameras
               else [camera.id for camera in site.cameras])
    # While a source runs, the clock is trusted as far as the data shows time has passed,
    # plus that wait: a clock further ahead (stepped forward, or every source stuck)
    # closes nothing more until the data catches up or the clock is corrected.
    reached = latest_data_time(db) if live_source_running(db, sources) else None
    clock = now if reached is None else min(now, reached + give_up_s)
    held_at = reached if clock < now else None
    stored_until = visits_stored_until(db, site.visits, sources,
                                       given_up_before=clock - give_up_s)
    windows: list[Window] = []
    evictions: list[Eviction] = []
    while len(windows) < limit:
        window = window_from(cursor, settings.window_s)
        if window.end + site.sync.settle_s > clock:
            break
        if window.end > stored_until and window.end + give_up_s > clock:
            log.debug("Window %s waits for visits not stored yet (stored until %s).",
                     contract.iso_utc(window.start), contract.iso_utc(stored_until))
            break
        message = build_message(db, site, window, settings.k, now)
        eviction = outbox.add(
            id=message["id"],
            kind=message["kind"],
            topic_suffix=contract.AGGREGATES,
            window_start=window.start,
            window_s=window.seconds,
            payload=contract.canonical_json(message),
            now=now,
            next_cursor=window.end,
        )
        if eviction is not None:
            evictions.append(eviction)
        windows.append(window)
        cursor = window.end
    return Produced(tuple(windows), tuple(evictions), held_at=held_at)
