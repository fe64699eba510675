"""The stores' segment statistics, read back from the central database for a refit.

Each store sends its day's ``segment_stats`` in the aggregate of the window that closes
the day (aggregate schema 1.2, :mod:`sync.day_stats`); ingestion stores it in
``windows.payload`` like every other cell. :func:`store_statistics` sums a store's days
of a range into one :class:`SegmentStatistics` per store (all sums, so pooling days and
stores is still exactly EM on all their visits); :func:`refit_from_database` hands them
to the M-step (:func:`sync.central.refit.refit_spec`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

import psycopg

from edge.visits.segment_stats import SegmentStatistics
from edge.visits.spec import SegmentSpec
from sync.central.refit import RefitResult, refit_spec

log = logging.getLogger(__name__)

_DAY_SECTIONS = """
SELECT store, payload -> 'segment_stats'
FROM windows
WHERE window_start >= %s AND window_start < %s
  AND jsonb_typeof(payload -> 'segment_stats') = 'object'
ORDER BY store, window_start
"""


@dataclass(frozen=True, slots=True)
class PooledDays:
    """What a range of days held for one spec version.

    Attributes:
        stores: one statistics per store, its days summed (a component is ``None`` when
            any of its days withheld it).
        store_days: store-days pooled.
        other_versions: store-days skipped, computed under another spec version.
        unreadable: store-days skipped, their section not statistics.
    """

    stores: list[SegmentStatistics]
    store_days: int
    other_versions: int
    unreadable: int


def store_statistics(
    conn: psycopg.Connection, first: date, last: date, spec: SegmentSpec
) -> PooledDays:
    """The statistics under ``spec``'s version that stores sent for the UTC days
    ``first`` to ``last`` (inclusive), summed per store."""
    start = datetime(first.year, first.month, first.day, tzinfo=UTC)
    end = datetime(last.year, last.month, last.day, tzinfo=UTC) + timedelta(days=1)
    per_store: dict[str, SegmentStatistics] = {}
    days = other = unreadable = 0
    features = tuple(spec.segments.features) if spec.segments is not None else ()
    for store, section in conn.execute(_DAY_SECTIONS, [start, end]):
        try:
            stats = SegmentStatistics.from_section(_as_dict(section))
        except ValueError as error:
            log.warning("Store %s: segment statistics skipped: %s", store, error)
            unreadable += 1
            continue
        if stats.spec_version != spec.spec_version or stats.features != features:
            other += 1
            continue
        days += 1
        per_store[store] = per_store[store].plus(stats) if store in per_store else stats
    return PooledDays([per_store[s] for s in sorted(per_store)], days, other, unreadable)


def _as_dict(section: Any) -> dict[str, Any]:
    if not isinstance(section, dict):
        raise ValueError(f"expected an object, got {type(section).__name__}")
    return section


def refit_from_database(
    conn: psycopg.Connection,
    spec: SegmentSpec,
    first: date,
    last: date,
    *,
    min_stores: int = 5,
    temperature: float | None = None,
) -> tuple[RefitResult, PooledDays]:
    """One federated EM round over the stores' statistics of ``first``..``last`` under
    ``spec``: a new spec, or the refusal that keeps ``spec`` (and why)."""
    pooled = store_statistics(conn, first, last, spec)
    result = refit_spec(spec, pooled.stores, min_stores=min_stores, temperature=temperature)
    if not result.ok and pooled.other_versions and not pooled.stores:
        reason = (f"{result.refused}; {pooled.other_versions} store-days sent statistics "
                  f"for other spec versions than {spec.spec_version}")
        result = replace(result, refused=reason)
    return result, pooled
