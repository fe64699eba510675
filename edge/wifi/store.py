"""Per-window Wi-Fi estimates. Only counts are stored: no address, no pseudonym,
no SSID, no IE byte (the privacy audit greps this table for all of them)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from typing import Any

import sqlite_utils
from sqlite_utils.migrations import Migrations

from edge.errors import StorageError
from edge.storage.database import where
from edge.wifi.windows import WifiWindow

MIGRATIONS = Migrations("edge.wifi")


@MIGRATIONS()
def m001_wifi_windows(db: sqlite_utils.Database) -> None:
    db.table("wifi_windows").create(
        {
            "window_start": float,      # epoch seconds, a multiple of window_s
            "window_s": int,            # 60 or 900 (site config wifi.windows_s)
            "sensor": str,              # "iface:<name>" or "pcap:<file name>"
            "covered_s": float,         # seconds of the window the capture covered
            "frames": int,              # probe requests, all strengths
            "in_store_frames": int,     # above the RSSI gate, not excluded
            "excluded_frames": int,     # from the site's own devices
            "in_store_devices": int,
            "brief_devices": int,       # above the gate, shorter than min_dwell_s
            "passers_by": int,          # weak-signal bursts
            "occupancy_estimate": float,
            "dwell_buckets": str,       # JSON: bucket label -> in-store device count
        },
        pk=("window_start", "window_s", "sensor"),
    )
    db.table("wifi_windows").create_index(["window_s", "window_start"])


@MIGRATIONS()
def m002_arrived_devices(db: sqlite_utils.Database) -> None:
    """Devices in store for the first time in the window: unlike ``in_store_devices``
    (present during the window), they add up over a day. Windows written before this
    migration have NULL: their arrivals are unknown, not zero."""
    db.table("wifi_windows").add_column("arrived_devices", int)


def write_windows(db: sqlite_utils.Database, windows: Iterable[WifiWindow]) -> int:
    """Upsert windows (a replayed capture replaces its own earlier rows). Returns the count.

    Raises:
        StorageError: the database cannot be written (read-only, disk full...).
    """
    rows = [window.as_row() for window in windows]
    if not rows:
        return 0
    try:
        with db.atomic():
            db.table("wifi_windows").upsert_all(rows, pk=("window_start", "window_s", "sensor"))
    except sqlite3.Error as error:
        raise StorageError(f"cannot write Wi-Fi windows: {error}") from None
    return len(rows)


def read_windows(
    db: sqlite_utils.Database,
    *,
    window_s: int | None = None,
    sensor: str | None = None,
    since: float | None = None,
) -> list[dict[str, Any]]:
    """Stored windows, oldest first, with ``dwell_buckets`` decoded."""
    condition, params = where(
        ("window_s = ?", window_s), ("sensor = ?", sensor), ("window_start >= ?", since)
    )
    rows = db["wifi_windows"].rows_where(
        condition, params, order_by="window_start, window_s, sensor"
    )
    return [{**row, "dwell_buckets": json.loads(row["dwell_buckets"] or "{}")} for row in rows]
