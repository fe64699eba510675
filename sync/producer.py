"""Turn closed windows into k-anonymous, schema-valid outbox rows.

A window is closed once ``settle_s`` has passed after its end (visits ending in it
are closed and stored by then). Windows are produced in order from a cursor kept
in the database, including windows with no data (a zero is information; a gap is
not). The cursor moves in the same transaction as the row is stored.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

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
from sync.day_stats import add_segment_stats, day_windows, withhold_day_visits
from sync.outbox import Eviction, Outbox, published_visit_counts
from sync.settings import SyncSettings

log = logging.getLogger(__name__)

MAX_WINDOWS_PER_PASS = 96  # a day of 15-min windows; a long backlog is caught up pass by pass


@dataclass(frozen=True, slots=True)
class Produced:
    """What one production pass stored."""

    windows: tuple[Window, ...]
    evictions: tuple[Eviction, ...]


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
    day = published_visit_counts(db, day_windows(window)[:-1])
    add_segment_stats(full, db, site, window, k, day)
    message = kanon.suppress(full, k)
    earlier = sorted({start for period in aggregate.conversion if period.window_starts
                      for start in period.window_starts[:-1]})
    withhold_period_visits(message, aggregate, k, published_visit_counts(db, earlier))
    withhold_day_visits(message, window, k, day)
    contract.validate("aggregate", message)
    kanon.assert_k_anonymous(message, k)
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
    stored_until = visits_stored_until(db, site.visits, sources,
                                       given_up_before=now - give_up_s)
    windows: list[Window] = []
    evictions: list[Eviction] = []
    while len(windows) < limit:
        window = window_from(cursor, settings.window_s)
        if window.end + site.sync.settle_s > now:
            break
        if window.end > stored_until and window.end + give_up_s > now:
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
    return Produced(tuple(windows), tuple(evictions))
