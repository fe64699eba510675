"""Health records: each service writes its latest state; the status page and the
MQTT stats read them.

A row is never deleted (it is each service's last word, for IT and the audit): the row
of a camera removed or renamed in the site config stays behind. The status page and
``edge status`` read the rows through :func:`is_configured` and
:func:`expected_components`, so that only what the current config runs counts.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

import sqlite_utils
from sqlite_utils.migrations import Migrations

if TYPE_CHECKING:
    from edge.config.site import SiteConfig

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


def expected_components(site: SiteConfig) -> list[str]:
    """The components that must report on ``site``: each camera, the counting across
    cameras (``fusion``) where its cameras are fused, and the status page (``web``: every
    box runs it). One that has never reported is not working: ``edge status`` and the
    status page say so."""
    expected = [f"camera:{camera.id}" for camera in site.cameras]
    if site.fuses_cameras:
        expected.append("fusion")
    expected.append("web")
    return expected


def is_configured(site: SiteConfig, component: str) -> bool:
    """Whether ``site``'s config still runs ``component``.

    Not a camera the config no longer has (removed or renamed), the fusion of a site
    that no longer fuses cameras (two cameras down to one), a Wi-Fi interface other than
    ``wifi.interface``, nor the sync with ``sync.enabled: false``. Their rows stay in the
    table; readers show them apart and never count them: a camera removed last month
    must not leave the page saying people cannot be counted. Any other component (the
    status page, the visits' builder) is always configured.
    """
    kind, _, name = component.partition(":")
    if kind == "camera":
        return any(camera.id == name for camera in site.cameras)
    if component == "fusion":
        return site.fuses_cameras
    if kind == "wifi":
        return site.wifi is not None and site.wifi.interface == name
    if component == "sync":
        return site.sync.enabled
    return True
