"""Retention: raw data is kept only as long as it is needed.

Defaults (``storage`` in the site config): raw floor trajectories 24 h (never
more), visits and line crossings 7 days, delivered aggregates (Wi-Fi windows and
sync's delivered outbox rows) 30 days. The purge
runs periodically in the sync service and on demand (``edge purge``); each table
is purged in its own transaction so a purge interrupted half-way leaves every
table consistent.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import sqlite_utils

from edge.config.storage import StorageConfig

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


def purge(
    db: sqlite_utils.Database, config: StorageConfig, now: float | None = None
) -> PurgeResult:
    """Delete what is older than its retention period, as of ``now`` (epoch seconds)."""
    now = time.time() if now is None else now
    raw_cutoff = now - config.raw_trajectory_hours * HOUR
    visit_cutoff = now - config.visit_days * DAY
    aggregate_cutoff = now - config.delivered_aggregate_days * DAY
    deleted: dict[str, int] = {}
    deleted["track_points"] = _delete(db, "track_points", "t < ?", [raw_cutoff])
    old_visits = "select visit_id from visits where end_t < ?"
    for child in ("visit_zone_dwell", "visit_traits", "visit_segments"):
        deleted[child] = _delete(db, child, f"visit_id in ({old_visits})", [visit_cutoff])
    deleted["visits"] = _delete(db, "visits", "end_t < ?", [visit_cutoff])
    deleted["line_crossings"] = _delete(db, "line_crossings", "t < ?", [visit_cutoff])
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
    deleted["runs"] = _delete(
        db,
        "runs",
        "ended_at is not null and ended_at < ? "
        "and id not in (select distinct run_id from track_points)",
        [raw_cutoff],
    )
    result = PurgeResult({table: count for table, count in deleted.items() if count})
    if result.total:
        removed = ", ".join(f"{n} {t}" for t, n in result.deleted.items())
        log.info("Retention purge removed %s.", removed)
    return result
