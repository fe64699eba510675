"""The privacy audit log and the record of debug modes that are on, in the box's database.

``privacy_audit`` keeps one row per change of a privacy-relevant setting (RSSI gate,
retention, k, pseudonym length...), per Wi-Fi key rotation (the event only: never
key material) and per debug mode turned on or off. IT reads it with ``edge privacy
audit-log`` or ``GET /admin/privacy-audit``. Rows are never updated; they go after
``AUDIT_KEEP_DAYS``.

``debug_modes`` holds the debug modes running now (one row per process that turned
one on, deleted when it turns it off); the status page shows each with a banner.
"""

from __future__ import annotations

import json
import time
from typing import Any

import sqlite_utils
from sqlite_utils.migrations import Migrations

MIGRATIONS = Migrations("edge.privacy")
AUDIT_KEEP_DAYS = 400      # a year of history for a yearly DPIA review, and some slack


@MIGRATIONS()
def m001_privacy_audit(db: sqlite_utils.Database) -> None:
    db.table("privacy_audit").create(
        {
            "id": int,
            "at": float,          # epoch seconds
            "setting": str,       # "wifi.rssi_gate_dbm", "wifi.key_rotation", "debug_mode.no-blur"
            "old": str,           # JSON value before (null: first record)
            "new": str,           # JSON value after
            "source": str,        # "service:sync", "downlink <nonce>", "edge replay (pid 12)"...
        },
        pk="id",
    )
    db.table("privacy_audit").create_index(["setting", "id"])
    db.table("debug_modes").create(
        {
            "id": int,
            "name": str,          # e.g. "no-blur", "debug-raw-pcap"
            "detail": str,        # what it writes where, in plain words
            "pid": int,
            "host": str,
            "started_at": float,
        },
        pk="id",
    )


def _encode(value: Any) -> str | None:
    return None if value is None else json.dumps(value, sort_keys=True)


def record_change(
    db: sqlite_utils.Database,
    setting: str,
    old: Any,
    new: Any,
    source: str,
    at: float | None = None,
) -> None:
    """Append one row to the audit log (inside the caller's transaction if there is one)."""
    with db.atomic():
        db.execute(
            "insert into privacy_audit (at, setting, old, new, source) values (?, ?, ?, ?, ?)",
            [time.time() if at is None else at, setting, _encode(old), _encode(new), source],
        )


def last_value(db: sqlite_utils.Database, setting: str) -> tuple[bool, Any]:
    """``(recorded?, value)`` of the latest row of ``setting``."""
    row = db.execute(
        "select new from privacy_audit where setting = ? order by id desc limit 1", [setting]
    ).fetchone()
    if row is None:
        return False, None
    return True, None if row[0] is None else json.loads(row[0])


def read_audit_log(
    db: sqlite_utils.Database, *, since: float | None = None, limit: int | None = None
) -> list[dict[str, Any]]:
    """Audit rows, newest first, values decoded."""
    sql = "select id, at, setting, old, new, source from privacy_audit"
    params: list[Any] = []
    if since is not None:
        sql += " where at >= ?"
        params.append(since)
    sql += " order by id desc"
    if limit is not None:
        sql += " limit ?"
        params.append(limit)
    rows = []
    for id_, at, setting, old, new, source in db.execute(sql, params).fetchall():
        rows.append({"id": id_, "at": at, "setting": setting,
                     "old": None if old is None else json.loads(old),
                     "new": None if new is None else json.loads(new), "source": source})
    return rows


def purge_audit_log(db: sqlite_utils.Database, now: float) -> int:
    with db.atomic():
        return db.execute("delete from privacy_audit where at < ?",
                          [now - AUDIT_KEEP_DAYS * 86_400]).rowcount


# -- debug modes ----------------------------------------------------------------------


def insert_debug_mode(db: sqlite_utils.Database, name: str, detail: str, pid: int, host: str,
                      at: float) -> int:
    """Record a debug mode as on, with its audit row, in one transaction; returns its id."""
    with db.atomic():
        cursor = db.execute(
            "insert into debug_modes (name, detail, pid, host, started_at) values (?, ?, ?, ?, ?)",
            [name, detail, pid, host, at],
        )
        record_change(db, f"debug_mode.{name}", "off", "on",
                      f"pid {pid} on {host}: {detail}", at)
        assert cursor.lastrowid is not None  # set by the insert just made
        return int(cursor.lastrowid)


def delete_debug_mode(db: sqlite_utils.Database, mode_id: int, at: float,
                      reason: str = "stopped") -> bool:
    """Record a debug mode as off (and audit it); False if it was not recorded as on."""
    with db.atomic():
        row = db.execute("select name, pid, host from debug_modes where id = ?",
                         [mode_id]).fetchone()
        if row is None:
            return False
        db.execute("delete from debug_modes where id = ?", [mode_id])
        name, pid, host = row
        record_change(db, f"debug_mode.{name}", "on", "off", f"pid {pid} on {host}: {reason}", at)
        return True


def active_debug_modes(db: sqlite_utils.Database) -> list[dict[str, Any]]:
    return [dict(zip(("id", "name", "detail", "pid", "host", "started_at"), row, strict=True))
            for row in db.execute("select id, name, detail, pid, host, started_at "
                                  "from debug_modes order by started_at").fetchall()]
