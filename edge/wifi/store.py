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


# A row's key: one window of one sensor.
KEY = ("window_start", "window_s", "sensor")
WindowKey = tuple[float, int, str]
# Counts of frames and of weak bursts: the parts of a window heard apart add up.
_ADDED = ("frames", "in_store_frames", "excluded_frames", "passers_by")


def window_key(window: WifiWindow) -> WindowKey:
    return (float(window.start), window.window_s, window.sensor)


def merge_rows(earlier: dict[str, Any], later: dict[str, Any]) -> dict[str, Any]:
    """One row for a window that was counted in two parts (``earlier`` stored first).

    Parts come from two processes of the live service (a restart inside the window),
    or from one counter whose time line broke inside it (a clock stepped back, a
    damaged time stamp): each part is what was heard while it counted, so

    - frames, in-store and excluded frames, passer-by bursts and the time covered add
      up (covered at most ``window_s``; a burst cut by the restart counts twice);
    - devices cannot be matched across the parts: each process draws its own key
      (never stored, docs/wifi.md), so one phone has unrelated pseudonyms on the two
      sides. Adding them would count every phone that stayed through the restart
      twice; the row keeps the larger part's ``in_store_devices`` and
      ``brief_devices`` instead (the rule for two sensors hearing the same phones,
      :func:`edge.figures.wifi_sub_windows`): exact when the same phones were heard
      on both sides, a lower bound otherwise (the truth lies between it and the sum);
    - arrivals: the earlier part's, plus the later part's only for the phones it
      heard beyond the earlier part's count (at most the arrivals it counted): a
      restarted process takes every phone for a newcomer;
    - the dwell buckets and the occupancy estimate are the part's whose device count
      is kept (the earlier one on a tie: a restarted process's dwells start at the
      restart).

    ``arrived_devices`` is None (unknown) if either part's is.
    """
    devices_before, devices_after = int(earlier["in_store_devices"]), int(later["in_store_devices"])
    kept = later if devices_after > devices_before else earlier
    arrived: int | None = None
    if earlier["arrived_devices"] is not None and later["arrived_devices"] is not None:
        beyond = max(0, devices_after - devices_before)
        arrived = int(earlier["arrived_devices"]) + min(int(later["arrived_devices"]), beyond)
    window_s = int(earlier["window_s"])
    return {
        **earlier,
        **{name: int(earlier[name] or 0) + int(later[name] or 0) for name in _ADDED},
        "covered_s": min(float(window_s), float(earlier["covered_s"]) + float(later["covered_s"])),
        "in_store_devices": int(kept["in_store_devices"]),
        "brief_devices": max(int(earlier["brief_devices"] or 0), int(later["brief_devices"] or 0)),
        "arrived_devices": arrived,
        "occupancy_estimate": kept["occupancy_estimate"],
        "dwell_buckets": kept["dwell_buckets"],
    }


def _folded(windows: Iterable[WifiWindow]) -> dict[WindowKey, dict[str, Any]]:
    """The windows' rows by key, the parts of one window merged in the order given."""
    rows: dict[WindowKey, dict[str, Any]] = {}
    for window in windows:
        row, key = window.as_row(), window_key(window)
        rows[key] = row if key not in rows else merge_rows(rows[key], row)
    return rows


def _stored(db: sqlite_utils.Database, key: WindowKey) -> dict[str, Any] | None:
    cursor = db.execute(
        "select * from wifi_windows where window_start = ? and window_s = ? and sensor = ?", key)
    row = cursor.fetchone()
    return None if row is None else dict(zip([c[0] for c in cursor.description], row,
                                             strict=True))


def write_windows(db: sqlite_utils.Database, windows: Iterable[WifiWindow]) -> int:
    """Add windows to what is stored for the same window and sensor (:func:`merge_rows`).

    The live service writes this way: after a restart inside a window, the new
    process's part of it joins the part the earlier process stored at its stop,
    instead of replacing it. Returns the number of rows written.

    Raises:
        StorageError: the database cannot be written (read-only, disk full...).
    """
    return _upsert(db, _folded(windows), merge=True)


def replace_windows(db: sqlite_utils.Database, windows: Iterable[WifiWindow]) -> int:
    """Replace the stored rows of these windows (a capture replayed again replaces what
    its earlier replay stored instead of counting it twice); parts of one window among
    ``windows`` are merged (:func:`merge_rows`). Returns the number of rows written.

    Raises:
        StorageError: the database cannot be written (read-only, disk full...).
    """
    return _upsert(db, _folded(windows), merge=False)


def _upsert(db: sqlite_utils.Database, rows: dict[WindowKey, dict[str, Any]], *,
            merge: bool) -> int:
    """Store ``rows`` in one transaction, each merged into the stored row of its window
    (``merge``) or replacing it; returns the number of rows written."""
    if not rows:
        return 0
    try:
        with db.atomic():
            written = [
                row if not merge or (stored := _stored(db, key)) is None
                else merge_rows(stored, row)
                for key, row in rows.items()
            ]
            db.table("wifi_windows").upsert_all(written, pk=KEY)
    except sqlite3.Error as error:
        raise StorageError(f"cannot write Wi-Fi windows: {error}") from None
    return len(rows)


class ReplayWriter:
    """Writes one replay's windows as they come: a row an earlier replay of the capture
    left is replaced, a window this replay already wrote part of (its time line broke
    inside it, e.g. one damaged time stamp) is merged into. Holds the keys written,
    bounded by the capture's windows."""

    def __init__(self, db: sqlite_utils.Database) -> None:
        self.db = db
        self._written: set[WindowKey] = set()
        self.rows = 0

    def write(self, windows: Iterable[WifiWindow]) -> int:
        """Write ``windows``; returns the number of rows written."""
        again: list[WifiWindow] = []
        first: list[WifiWindow] = []
        for window in windows:
            (again if window_key(window) in self._written else first).append(window)
        written = replace_windows(self.db, first) + write_windows(self.db, again)
        self._written.update(window_key(window) for window in first)
        self.rows = len(self._written)
        return written


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
