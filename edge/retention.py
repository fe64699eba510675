"""Retention: raw data is kept only as long as it is needed.

Defaults (``storage`` in the site config): raw floor trajectories 24 h (never
more), visits and line crossings 8 days (the status page compares with the same day a week
earlier), delivered aggregates (Wi-Fi windows and
sync's delivered outbox rows) 30 days, the privacy
audit log 400 days. The purge runs every ``service.purge_interval_s`` (systemd's
``store-edge-purge.timer``, or the ``edge run`` supervisor) as ``edge purge``, and
deletes what would pass its period before the next run, so no row outlives it (visits
and line crossings excepted: they are kept their ``visit_days`` whole, so the day a
week back stays whole all day, and live at most one purge interval longer);
each table is purged in its own transaction so a purge interrupted half-way leaves
every table consistent.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

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


def visit_cutoff(now: float, visit_days: float) -> float:
    """Oldest visit end (and line crossing) kept by a purge at ``now``: ``visit_days`` back
    exactly. Unlike raw positions, visits are not purged ahead of the next run: with the
    default 8 days, taking the hour until the next purge off made every purge after 23:00
    cut into the day a week back, which the status page compares with (so it read "not
    kept in full" every evening). A visit therefore lives at most ``visit_days`` plus one
    purge interval."""
    return now - visit_days * DAY


def visits_kept_since(site: SiteConfig, now: float) -> float:
    """The oldest time from which every visit is surely still in the database at ``now``.

    A purge at time P deletes visits that ended before ``visit_cutoff(P, ...)``, and
    purges happen at or before ``now``, so nothing ending at or after
    ``visit_cutoff(now, ...)`` has been deleted. Earlier hours may be partly gone:
    figures over them are incomplete.
    """
    return visit_cutoff(now, site.storage.visit_days)


def purge(
    db: sqlite_utils.Database,
    config: StorageConfig,
    now: float | None = None,
    *,
    margin_s: float = 0.0,
) -> PurgeResult:
    """Delete what is older than its retention period, as of ``now`` (epoch seconds).

    Args:
        margin_s: seconds until the next purge (the services pass the purge interval):
            what would pass its retention period before then goes now, so raw
            trajectories are never older than ``raw_trajectory_hours``. Visits and line
            crossings are kept ``visit_days`` whole (:func:`visit_cutoff`).
    """
    now = time.time() if now is None else now
    raw_cutoff = cutoff(now, config.raw_trajectory_hours * HOUR, margin_s)
    visits_before = visit_cutoff(now, config.visit_days)
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
