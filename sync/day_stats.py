"""Segment statistics of a store-day: the box's half of the federated segment refit.

The aggregate of the window that closes a UTC day carries ``segment_stats``: the
E-step statistics (:mod:`edge.visits.segment_stats`) of the segment spec in force over
the visits that ended that day, computed from their stored features, never sent
themselves. A component is withheld under the k rules there; :func:`sync.kanon.suppress`
and the publish path's check then treat the memberships as soft counts
(``x-soft-count`` in the schema). The central side reads the section back with
``SegmentStatistics.from_section`` and pools it (``sync/central/pool.py``).
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any

import numpy as np
import sqlite_utils

from edge.config import SiteConfig
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


def day_features(
    db: sqlite_utils.Database, start: float, features: list[str]
) -> tuple[np.ndarray, int]:
    """``(n, D)`` values of ``features`` of the visits that ended in the day from
    ``start``, and how many visits were skipped (a feature missing or not finite)."""
    rows, skipped = [], 0
    for (text,) in db.execute(
        "select features from visits where end_t >= ? and end_t < ? order by end_t",
        (start, start + DAY_S),
    ):
        try:
            values = json.loads(text or "{}")
            row = [float(values[name]) for name in features]
        except (ValueError, KeyError, TypeError):
            skipped += 1
            continue
        if all(math.isfinite(v) for v in row):
            rows.append(row)
        else:
            skipped += 1
    return np.asarray(rows, dtype=np.float64).reshape(-1, len(features)), skipped


def segment_stats_section(
    db: sqlite_utils.Database, site: SiteConfig, window: Window, k: int
) -> dict[str, Any] | None:
    """The ``segment_stats`` of the day ``window`` closes (withheld at ``k``), or None
    when it closes no day, or the spec in force has no segments or cannot be read."""
    if not closes_day(window):
        return None
    try:
        spec = spec_in_force(site)
    except SpecError as error:
        log.warning("No segment statistics for the day: %s", error)
        return None
    if spec.segments is None:
        return None
    start = window.end - DAY_S
    x, skipped = day_features(db, start, list(spec.segments.features))
    if skipped:
        log.warning("Segment statistics of %s: %d visits without the segment features skipped.",
                    iso_utc(start)[:10], skipped)
    z = scaled_features(spec, spec.segments.features, x)
    return sufficient_statistics(spec, z, k=k).to_section(iso_utc(start)[:10])


def add_segment_stats(
    full: dict[str, Any], db: sqlite_utils.Database, site: SiteConfig, window: Window, k: int
) -> None:
    """Put the day's ``segment_stats`` into the exact message ``full`` of ``window`` (the
    input of :func:`sync.kanon.suppress`) when it closes a day, counting the components
    withheld at ``k`` in ``suppressed``."""
    section = segment_stats_section(db, site, window, k)
    if section is None:
        return
    full["segment_stats"] = section
    hidden = sum(1 for item in section["components"] if item["membership"] is None)
    if hidden:
        full["suppressed"] = {**full.get("suppressed", {}), "segment_stats": hidden}
