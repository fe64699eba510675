"""Retention: raw data is kept only as long as it is needed.

Defaults (``storage`` in the site config): raw floor trajectories 24 h (never
more), visits and line crossings 8 days (the status page compares with the same day a week
earlier), delivered aggregates (Wi-Fi windows and
sync's delivered outbox rows) 30 days, the privacy
audit log 400 days. The purge runs every ``service.purge_interval_s`` (systemd's
``store-edge-purge.timer``, or the ``edge run`` supervisor) as ``edge purge``, and
deletes what would pass its period before the next run, so no row outlives it (visits
and line crossings excepted: they are kept their ``visit_days`` whole, counted in calendar
days of the store's time zone, so the day a week back stays whole all day, and live at
most one purge interval longer);
each table is purged in its own transaction so a purge interrupted half-way leaves
every table consistent.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import time
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

import sqlite_utils

from edge.config import SiteConfig
from edge.config.storage import StorageConfig
from edge.privacy.store import purge_audit_log
from edge.storage.trajectories import close_dead_runs
from edge.visits.store import VISIT_CHILD_TABLES

log = logging.getLogger(__name__)

HOUR = 3600.0
DAY = 24 * HOUR


@dataclass(frozen=True, slots=True)
class PurgeResult:
    """Rows deleted per table."""

    deleted: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.deleted.values())


def _delete(db: sqlite_utils.Database, table: str, where: str, params: list) -> int:
    if not db[table].exists():
        return 0
    with db.atomic():
        return db.execute(f"delete from [{table}] where {where}", params).rowcount


def cutoff(now: float, keep_s: float, margin_s: float) -> float:
    """Oldest time kept: ``keep_s`` back, less the time until the next purge, so nothing
    outlives its period between two purges; never less than half the period is kept
    (the visits builder reads recent raw points)."""
    return now - max(keep_s - margin_s, keep_s / 2)


def positions_kept_since(site: SiteConfig, now: float) -> float:
    """The oldest time from which every raw position (``track_points``) is surely still
    in the database at ``now`` (as :func:`visits_kept_since`, for raw trajectories):
    occupancy and queue lengths of earlier hours can no longer be computed."""
    return cutoff(now, site.storage.raw_trajectory_hours * 3600, site.service.purge_interval_s)


def visit_cutoff(now: float, visit_days: float, tz: ZoneInfo) -> float:
    """Oldest visit end (and line crossing) kept by a purge at ``now``: ``visit_days``
    calendar days back in store time (``tz``), the same clock time that many days before.

    Calendar days, not 86,400-second ones: the status page compares with the same weekday
    a calendar week back, and a week holding the 25-hour day the clocks go back on is a
    week and an hour long; 8 x 86,400 s then cut into the day a week back from 23:00 every
    day of the following week, and the purge deleted its first hour. Nor are visits purged
    ahead of the next run as raw positions are: taking the hour until the next purge off
    cut into that day after 23:00 every evening. A visit therefore lives at most
    ``visit_days`` calendar days (an hour more across the night the clocks go back, an
    hour less across the one they go forward) plus one purge interval.
    """
    return _first_moment_at(_clock_reached(now, tz) - dt.timedelta(days=visit_days), tz)


def _clock_reached(now: float, tz: ZoneInfo) -> dt.datetime:
    """The latest time (naive) the clock of ``tz`` has read by ``now``: what it reads,
    except while it reads an hour the second time (the clocks went back), when it has
    already been to that hour's end. So :func:`visit_cutoff` never goes back: a purge at
    the second 01:30 deletes nothing that one at the first 01:50 kept.
    """
    local = dt.datetime.fromtimestamp(now, tz)
    if not local.fold:
        return local.replace(tzinfo=None)
    # The second time through: the repeat ends at the first moment the clock reads a
    # time it has not read before, at most the clocks' step back after ``now``.
    back = now - local.replace(fold=0).timestamp()
    low, high = math.floor(now), math.ceil(now + back)
    while high - low > 1:
        middle = (low + high) // 2
        if dt.datetime.fromtimestamp(middle, tz).fold:
            low = middle
        else:
            high = middle
    return dt.datetime.fromtimestamp(high, tz).replace(tzinfo=None)


def _first_moment_at(wall: dt.datetime, tz: ZoneInfo) -> float:
    """The first moment (epoch seconds) the clock of ``tz`` reads ``wall`` (naive) or later.

    A clock time that came twice (the clocks went back) is its first time; one the
    clocks skipped (they went forward) is the moment they went forward. So the result
    never goes back as ``wall`` goes on, and a purge never deletes what an earlier one
    said was kept.
    """
    before = wall.replace(tzinfo=tz, fold=0).timestamp()  # at the offset before a change
    after = wall.replace(tzinfo=tz, fold=1).timestamp()  # at the offset after it
    if after >= before:  # an ordinary clock time (the same moment), or one that came twice
        return before
    # Skipped: the clocks went forward between ``after`` and ``before``. Time zone changes
    # fall on whole seconds: find that second.
    low, high = math.floor(after), math.ceil(before)
    while high - low > 1:
        middle = (low + high) // 2
        if dt.datetime.fromtimestamp(middle, tz).replace(tzinfo=None) >= wall:
            high = middle
        else:
            low = middle
    return float(high)


def visits_kept_since(site: SiteConfig, now: float) -> float:
    """The oldest time from which every visit is surely still in the database at ``now``.

    A purge at time P deletes visits that ended before ``visit_cutoff(P, ...)``, and
    purges happen at or before ``now``, so nothing ending at or after
    ``visit_cutoff(now, ...)`` has been deleted. Earlier hours may be partly gone:
    figures over them are incomplete.
    """
    return visit_cutoff(now, site.storage.visit_days, ZoneInfo(site.site.timezone))


def purge(
    db: sqlite_utils.Database,
    config: StorageConfig,
    now: float | None = None,
    *,
    timezone: str,
    margin_s: float = 0.0,
) -> PurgeResult:
    """Delete what is older than its retention period, as of ``now`` (epoch seconds).

    Args:
        timezone: the store's time zone (``site.timezone``): visits and line crossings
            are kept ``visit_days`` calendar days of it (:func:`visit_cutoff`), as the
            status page counts them kept (:func:`visits_kept_since`).
        margin_s: seconds until the next purge (the services pass the purge interval):
            what would pass its retention period before then goes now, so raw
            trajectories are never older than ``raw_trajectory_hours``.
    """
    now = time.time() if now is None else now
    raw_cutoff = cutoff(now, config.raw_trajectory_hours * HOUR, margin_s)
    visits_before = visit_cutoff(now, config.visit_days, ZoneInfo(timezone))
    aggregate_cutoff = cutoff(now, config.delivered_aggregate_days * DAY, margin_s)
    deleted: dict[str, int] = {}
    deleted["track_points"] = _delete(db, "track_points", "t < ?", [raw_cutoff])
    # cameras' hand-over to the fusion: fused within seconds; whatever a stopped fusion
    # service left goes with the raw trajectories
    deleted["camera_frames"] = _delete(db, "camera_frames", "t < ?", [raw_cutoff])
    deleted["fusion_state"] = _delete(db, "fusion_state", "t < ?", [raw_cutoff])
    deleted["run_pauses"] = _delete(db, "run_pauses", "resumed_t < ?", [raw_cutoff])
    old_visits = "select visit_id from visits where end_t < ?"
    for child in VISIT_CHILD_TABLES:
        deleted[child] = _delete(db, child, f"visit_id in ({old_visits})", [visits_before])
    deleted["visits"] = _delete(db, "visits", "end_t < ?", [visits_before])
    deleted["staff_visits"] = _delete(db, "staff_visits", "end_t < ?", [visits_before])
    deleted["line_crossings"] = _delete(db, "line_crossings", "t < ?", [visits_before])
    deleted["wifi_windows"] = _delete(
        db, "wifi_windows", "window_start + window_s < ?", [aggregate_cutoff]
    )
    # Sync's outbox: delivered (and refused, never-sent) aggregates after the same period.
    # Pending rows are never purged here: they are the store-and-forward backlog, bounded
    # by sync.outbox_max_pending. The sync service also purges delivered rows hourly.
    deleted["sync_outbox"] = _delete(
        db,
        "sync_outbox",
        "(status = 'delivered' and coalesce(delivered_at, created_at) < ?) "
        "or (status = 'refused' and created_at < ?)",
        [aggregate_cutoff, aggregate_cutoff],
    )
    close_dead_runs(db)  # a killed replay's run, left "running", becomes purgeable
    deleted["runs"] = _delete(
        db,
        "runs",
        "ended_at is not null and ended_at < ? "
        "and id not in (select distinct run_id from track_points)",
        [raw_cutoff],
    )
    if db["privacy_audit"].exists():
        deleted["privacy_audit"] = purge_audit_log(db, now)
    result = PurgeResult({table: count for table, count in deleted.items() if count})
    if result.total:
        removed = ", ".join(f"{n} {t}" for t, n in result.deleted.items())
        log.info("Retention purge removed %s.", removed)
    return result
