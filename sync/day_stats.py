"""Segment statistics of a store-day: the box's half of the federated segment refit.

The aggregate of the window that closes a UTC day carries ``segment_stats``: the
E-step statistics (:mod:`edge.visits.segment_stats`) of the segment spec in force over
the visits that ended that day in a window whose ``visits.count`` was published,
computed from their stored features, never sent themselves. The visits of a window
whose count was withheld (fewer than k) are left out: counted in the day's figures,
the day's total minus the published window counts would give them back
(:func:`withhold_day_visits` checks the finished message for that). A component is
withheld under the k rules there; :func:`sync.kanon.suppress` and the publish path's
check then treat the memberships as soft counts (``x-soft-count`` in the schema). The
central side reads the section back with ``SegmentStatistics.from_section`` and pools
it (``sync/central/pool.py``).
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import sqlite_utils

from edge.config import SiteConfig
from edge.privacy.small_counts import residual_problem
from edge.visits.features import feature_names
from edge.visits.segment_stats import (
    scaled_features,
    sufficient_statistics,
)
from edge.visits.spec import (
    SegmentSpec,
    SpecError,
    default_spec_path,
    downlinked_spec_path,
    read_spec,
)
from sync.aggregate import Window
from sync.contract import iso_utc
from sync.outbox import PublishedWindow, cover

log = logging.getLogger(__name__)

DAY_S = 86_400


def closes_day(window: Window) -> bool:
    """Whether ``window`` is the last of its UTC day (windows divide the day)."""
    return window.end % DAY_S == 0


def spec_in_force(site: SiteConfig) -> SegmentSpec:
    """The segment spec the visits service classifies with: the downlinked one when
    present, else the site's, else the shipped default (as :class:`SpecHolder` picks).

    Raises:
        SpecError: that file is not a valid spec.
    """
    override = downlinked_spec_path()
    path = override if override.is_file() else Path(site.visits.segment_spec or default_spec_path())
    return read_spec(path)[0]


def day_start(window: Window) -> float:
    """The start of the UTC day that ``window`` closes."""
    return window.end - DAY_S


def day_cover(
    window: Window, own: int | None, k: int, earlier: Sequence[PublishedWindow]
) -> list[PublishedWindow] | None:
    """The day that ``window`` closes, laid out in the windows published
    (:func:`sync.outbox.cover`): the ``earlier`` ones, each with its own length (a
    change of ``sync.window_s`` during the day leaves windows of two lengths), and
    ``window`` itself, whose count ``own`` is published when it is k or more. None
    when they do not tile the day."""
    this = PublishedWindow(window.start, window.seconds,
                           own if own is not None and own >= k else None)
    return cover([*earlier, this], day_start(window), window.end)


def day_features(
    db: sqlite_utils.Database, start: float, features: list[str],
    spans: Sequence[tuple[float, float]] | None = None, *, absent: Collection[str] = (),
) -> tuple[np.ndarray, int]:
    """``(n, D)`` values of ``features`` of the visits that ended in the day from
    ``start`` (only in ``spans``, ``[a, b)`` time spans, when given), and how many
    visits were skipped (a feature missing or not finite).

    Features in ``absent`` are ones the site does not measure (a tag none of its zones
    carries): a visit without them reads 0, as the classifier reads them
    (:meth:`edge.visits.classify.TraitClassifier.vector`); any other missing feature
    means a damaged row, and skips the visit."""
    rows, skipped = [], 0
    for a, b in [(start, start + DAY_S)] if spans is None else spans:
        for (text,) in db.execute(
            "select features from visits where end_t >= ? and end_t < ? order by end_t",
            (a, b),
        ):
            try:
                values = json.loads(text or "{}")
                row = [float(values[name] if name in values or name not in absent
                             else 0.0) for name in features]
            except (ValueError, KeyError, TypeError):
                skipped += 1
                continue
            if all(math.isfinite(v) for v in row):
                rows.append(row)
            else:
                skipped += 1
    return np.asarray(rows, dtype=np.float64).reshape(-1, len(features)), skipped


def segment_stats_section(
    db: sqlite_utils.Database, site: SiteConfig, window: Window, k: int,
    spans: Sequence[tuple[float, float]],
) -> dict[str, Any] | None:
    """The ``segment_stats`` of the day ``window`` closes (withheld at ``k``), over the
    visits that ended in ``spans`` (``[a, b)``: the windows whose ``visits.count`` was
    published), or None when it closes no day, or the spec in force has no segments or
    cannot be read."""
    if not closes_day(window):
        return None
    try:
        spec = spec_in_force(site)
    except SpecError as error:
        log.warning("No segment statistics for the day: %s", error)
        return None
    if spec.segments is None:
        return None
    start = day_start(window)
    measured = set(feature_names(sorted({t for zone in site.floor.zones for t in zone.tags})))
    absent = [name for name in spec.segments.features if name not in measured]
    x, skipped = day_features(db, start, list(spec.segments.features), spans, absent=absent)
    if skipped:
        log.warning("Segment statistics of %s: %d visits without the segment features skipped.",
                    iso_utc(start)[:10], skipped)
    z = scaled_features(spec, spec.segments.features, x)
    return sufficient_statistics(spec, z, k=k).to_section(iso_utc(start)[:10])


def add_segment_stats(
    full: dict[str, Any], db: sqlite_utils.Database, site: SiteConfig, window: Window, k: int,
    earlier: Sequence[PublishedWindow],
) -> None:
    """Put the day's ``segment_stats`` into the exact message ``full`` of ``window`` (the
    input of :func:`sync.kanon.suppress`) when it closes a day, counting the components
    withheld at ``k`` in ``suppressed``.

    Only the visits of windows whose ``visits.count`` is published are summed:
    ``earlier`` are the day's earlier windows whose message is in the outbox, with the
    length and count each was published with (:func:`sync.outbox.published_windows`;
    a count None was withheld, a window left out is unknown, so withheld too), and
    ``window`` itself counts when its own count is k or more. When those windows do not
    tile the day, none is summed (:func:`withhold_day_visits` withholds the section).
    """
    if not closes_day(window):
        return
    windows = day_cover(window, (full.get("visits") or {}).get("count"), k, earlier) or []
    spans = [(w.start, w.end) for w in windows if w.count is not None]
    section = segment_stats_section(db, site, window, k, spans)
    if section is None:
        return
    full["segment_stats"] = section
    hidden = sum(1 for item in section["components"] if item["membership"] is None)
    if hidden:
        full["suppressed"] = {**full.get("suppressed", {}), "segment_stats": hidden}


def withhold_day_visits(
    message: dict[str, Any], window: Window, k: int, earlier: Sequence[PublishedWindow]
) -> None:
    """Null ``segment_stats.visits`` and every component of a suppressed ``message`` when
    they could give away a count below k by subtraction across messages.

    The statistics sum the visits of the day's windows whose ``visits.count`` went out
    (``earlier`` as for :func:`add_segment_stats`, ``window``'s own count from
    ``message``), so their ``visits`` minus those counts must leave 0, or at least k
    (the exclusive-cells rule of :mod:`edge.privacy.small_counts`, applied across
    messages like :func:`sync.aggregate.withhold_period_visits`). A rest comes from
    visits stored after their window was sent (in the day's sums, in no window's count)
    or skipped for a missing feature; 1 to k-1 of them would be a group below k, so the
    section is withheld. So it is when the windows published do not tile the day (two
    overlap): its sums would not be those of the published counts. The components go
    with the total: their memberships add up to it.
    """
    section = message.get("segment_stats")
    if section is None or section["visits"] is None:
        return
    windows = day_cover(window, (message.get("visits") or {}).get("count"), k, earlier)
    if windows is not None and residual_problem(
        [w.count for w in windows if w.count is not None], section["visits"], k,
        any_withheld=False,
    ) is None:
        return
    section["visits"] = None
    for item in section["components"]:
        item["membership"] = item["sum"] = item["sumsq"] = None
    counts = dict(message.get("suppressed") or {})
    counts["segment_stats"] = len(section["components"])
    message["suppressed"] = {key: counts[key] for key in sorted(counts) if counts[key]}
