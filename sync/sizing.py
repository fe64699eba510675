"""How many bytes a store sends per day: payloads and MQTT framing, window by window.

:func:`tile_day` fills a day with copies of a short recording (e.g. the PETS demo
replay, ~2 minutes) so every window of the day is as busy as the recording:
an upper-end estimate for a store that never closes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import sqlite_utils

from edge.config import SiteConfig
from sync import contract
from sync.aggregate import Window
from sync.producer import build_message

# MQTT 5 PUBLISH, QoS 1: fixed header (1 + up to 4 length bytes), topic length (2),
# packet id (2), properties length (1); then the broker's PUBACK (4) back.
PUBLISH_OVERHEAD_BYTES = 1 + 4 + 2 + 2 + 1
PUBACK_BYTES = 4


@dataclass(frozen=True, slots=True)
class DaySize:
    windows: int
    payload_bytes: int
    wire_bytes: int
    largest_payload_bytes: int

    @property
    def mean_payload_bytes(self) -> float:
        return self.payload_bytes / self.windows if self.windows else 0.0


def bytes_per_day(
    db: sqlite_utils.Database,
    site: SiteConfig,
    day_start: float,
    *,
    window_s: int | None = None,
    k: int | None = None,
) -> DaySize:
    """Sizes of the aggregates of the day starting at ``day_start`` (epoch s, midnight UTC)."""
    window_s = window_s or site.sync.window_s
    k = k or site.privacy.min_publishable_count
    topic = contract.Topics(site.sync.mqtt.topic_prefix, site.site.id)(contract.AGGREGATES)
    sizes = []
    for index in range(86_400 // window_s):
        message = build_message(db, site, Window(day_start + index * window_s, window_s), k)
        sizes.append(len(contract.canonical_json(message)))
    framing = len(topic.encode()) + PUBLISH_OVERHEAD_BYTES + PUBACK_BYTES
    return DaySize(len(sizes), sum(sizes), sum(sizes) + framing * len(sizes), max(sizes))


# Columns shifted per copy: (time columns, id columns made unique per copy).
_TABLES = {
    "track_points": ("t", "track_id"),
    "line_crossings": ("t", "track_id"),
    "visits": ("start_t, end_t", "track_id"),
}
_VISIT_CHILDREN = ("visit_zone_dwell", "visit_traits", "visit_segments")


def tile_day(
    src_path: str,
    dst: sqlite_utils.Database,
    day_start: float,
    window_s: int,
    copies_per_window: int | None = None,
) -> int:
    """Copy the recording in the database at ``src_path`` into ``dst`` as many times as
    fit in each window of the day, or ``copies_per_window`` times (shifted in time, with
    fresh track and visit ids). Returns the number of copies made."""
    dst.execute("attach database ? as src", [str(src_path)])
    try:
        first, last = dst.execute(
            "select min(a), max(b) from (select min(t) a, max(t) b from src.track_points union all "
            "select min(start_t), max(end_t) from src.visits union all "
            "select min(t), max(t) from src.line_crossings)"
        ).fetchone()
        if first is None:
            return 0
        length = max(1.0, last - first + 1.0)
        per_window = max(1, math.floor(window_s / length))
        if copies_per_window is not None:
            per_window = min(per_window, copies_per_window)
        copies = 0
        with dst.atomic():
            dst.execute("insert or ignore into runs select * from src.runs")
            for index in range(86_400 // window_s):
                for slot in range(per_window):
                    _copy(dst, day_start + index * window_s + slot * length - first, copies)
                    copies += 1
        return copies
    finally:
        dst.execute("detach database src")


def _copy(dst: sqlite_utils.Database, shift: float, copy: int) -> None:
    offset = (copy + 1) * 1_000_000
    for table, (times, track) in _TABLES.items():
        columns = [c.name for c in dst[table].columns]
        shifted = {name: f"{name} + {shift!r}" for name in times.split(", ")}
        shifted[track] = f"{track} + {offset}"
        if table == "visits":
            shifted["visit_id"] = f"visit_id || '-{copy}'"
        select = ", ".join(shifted.get(name, name) for name in columns)
        dst.execute(f"insert into {table} ({', '.join(columns)}) select {select} from src.{table}")
    for child in _VISIT_CHILDREN:
        columns = [c.name for c in dst[child].columns]
        select = ", ".join(f"visit_id || '-{copy}'" if c == "visit_id" else c for c in columns)
        dst.execute(f"insert into {child} ({', '.join(columns)}) select {select} from src.{child}")
