"""Health records: each service writes its latest state; the status page and the
MQTT stats read them."""

from __future__ import annotations

import json
import time
from typing import Any

import sqlite_utils
from sqlite_utils.migrations import Migrations

MIGRATIONS = Migrations("edge.health")


@MIGRATIONS()
def m001_health(db: sqlite_utils.Database) -> None:
    db.table("health").create(
        {
            "component": str,   # e.g. "camera:view001", "wifi:wlan1", "sync", "web"
            "status": str,      # "ok", "degraded" or "down"
            "detail": str,      # JSON object of figures (fps, last frame age, backlog...)
            "message": str,     # one plain sentence for people
            "updated_at": float,
        },
        pk="component",
    )


def report_health(
    db: sqlite_utils.Database,
    component: str,
    status: str,
    message: str,
    detail: dict[str, Any] | None = None,
) -> None:
    """Record the current state of ``component`` (replacing the previous one)."""
    if status not in ("ok", "degraded", "down"):
        raise ValueError(f"status must be ok, degraded or down, got {status!r}")
    with db.atomic():
        db.table("health").upsert(
            {
                "component": component,
                "status": status,
                "detail": json.dumps(detail or {}),
                "message": message,
                "updated_at": time.time(),
            },
            pk="component",
        )


def read_health(db: sqlite_utils.Database) -> list[dict[str, Any]]:
    rows = []
    for row in db["health"].rows_where(order_by="component"):
        rows.append({**row, "detail": json.loads(row["detail"] or "{}")})
    return rows
