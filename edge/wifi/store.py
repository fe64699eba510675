"""Per-window Wi-Fi estimates. Only counts are stored: no address, no pseudonym."""

from __future__ import annotations

import sqlite_utils
from sqlite_utils.migrations import Migrations

MIGRATIONS = Migrations("edge.wifi")


@MIGRATIONS()
def m001_wifi_windows(db: sqlite_utils.Database) -> None:
    db["wifi_windows"].create(
        {
            "window_start": float,      # epoch seconds
            "window_s": int,            # 60 or 900
            "sensor": str,              # interface name or pcap file name
            "frames": int,
            "in_store_devices": int,
            "passers_by": int,
            "occupancy_estimate": float,
            "dwell_buckets": str,       # JSON: bucket label -> device count
        },
        pk=("window_start", "window_s", "sensor"),
    )
