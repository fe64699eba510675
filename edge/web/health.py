"""The health panel: each service's last report, and this box's own figures.

Services write free-form ``detail`` JSON into the ``health`` table; only the
figures named here are passed on (renamed to one spelling), so a service that
puts something unexpected in its detail can never leak it through the page.
"""

from __future__ import annotations

import json
import re
import shutil
import time
from pathlib import Path
from typing import Any, Literal

import psutil

from edge.config import SiteConfig
from edge.storage.health import expected_components, is_configured
from edge.web.schemas import ComponentHealth, FigureValue, SystemHealth
from edge.web.text import component_name, duration_text

# Figure shown -> the detail keys services may use for it, first match wins.
KNOWN_FIGURES: dict[str, dict[str, tuple[str, ...]]] = {
    "camera": {
        "fps": ("fps", "frames_per_s"),
        "last_frame_age_s": ("last_frame_age_s", "frame_age_s"),
        "reconnects": ("reconnects", "reconnect_count"),
        "connected": ("connected",),
        "frames_dropped": ("frames_dropped", "dropped_frames"),
        "model": ("model",),
    },
    "wifi": {
        "frames_per_s": ("frames_per_s", "frames_per_second", "fps", "frame_rate"),
        "monitor_mode": ("monitor_mode", "monitor"),
        "channel": ("channel",),
        "frames_dropped": ("frames_dropped", "dropped"),
    },
    "sync": {
        "broker_connected": ("broker_connected", "connected"),
        "outbox_backlog": ("outbox_backlog", "backlog", "pending"),  # sync writes "pending"
        "last_delivered_window": ("last_delivered_window", "last_delivered", "last_delivered_at"),
        "last_delivered_at": ("last_delivered_at",),
    },
    "fusion": {
        "people": ("people",),
        "cameras_live": ("cameras_live_count",),
        "cameras_down": ("cameras_down_count",),
        "calibration_worst_pair": ("calibration_worst_pair",),
        "calibration_worst_median_m": ("calibration_worst_median_m",),
        # the pair whose people where both look are most often seen by one only, and
        # whether a pair is over fusion.calibration_unmatched_warn (counted twice)
        "calibration_worst_unmatched_pair": ("calibration_worst_unmatched_pair",),
        "calibration_worst_unmatched_share": ("calibration_worst_unmatched_share",),
        "calibration_disagrees": ("calibration_disagrees",),
        "people_held": ("people_held",),  # the occupancy card's partial count
        "lag_s": ("lag_s",),  # the occupancy card's live window allows for it
    },
}
MAX_TEXT = 80
MAX_PAIRS = 120  # 16 cameras
PAIR = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}-[a-z0-9][a-z0-9_-]{0,31}")
Kind = Literal["camera", "wifi", "sync", "fusion", "other"]
Status = Literal["ok", "degraded", "down", "silent", "not_started"]
NOT_STARTED = ("No report yet: its service has not started, or stopped at once. If the box "
               "has just started, wait a minute; otherwise ask IT to check it.")


def component_kind(component: str) -> Kind:
    prefix = component.split(":", 1)[0]
    return prefix if prefix in KNOWN_FIGURES else "other"  # type: ignore[return-value]


def _scalar(value: Any) -> FigureValue:
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int | float):
        return value if value == value else None  # NaN reads as unknown
    if isinstance(value, str):
        return value[:MAX_TEXT]
    return None


def component_health(row: tuple, now: float, stale_s: float) -> ComponentHealth:
    """Shape one ``health`` row; a component silent for ``stale_s`` is shown as such."""
    component, status, detail_text, message, updated_at = row
    kind = component_kind(str(component))
    try:
        detail = json.loads(detail_text or "{}")
    except (TypeError, ValueError):
        detail = {}
    if not isinstance(detail, dict):
        detail = {}
    figures: dict[str, FigureValue] = {}
    for shown, keys in KNOWN_FIGURES.get(kind, {}).items():
        for key in keys:
            if key in detail:
                figures[shown] = _scalar(detail[key])
                break
    if kind == "fusion":
        figures.update(_pair_figures(detail.get("calibration_pairs")))
    updated = float(updated_at or 0.0)
    age = max(0.0, now - updated)
    reported_age = figures.get("last_frame_age_s")
    if isinstance(reported_age, int | float) and not isinstance(reported_age, bool):
        # The camera measured the age when it reported; it has grown since.
        figures["last_frame_age_s"] = round(float(reported_age) + age, 1)
    shown_status: Status = status if status in ("ok", "degraded", "down") else "degraded"
    text = str(message or "")[:200]
    if age > stale_s and shown_status != "down":
        shown_status = "silent"
        text = f"No news for {duration_text(age)}: the service may have stopped. {text}".strip()
    return ComponentHealth(
        component=str(component)[:64], kind=kind, name=component_name(kind, str(component))[:80],
        status=shown_status, message=text, updated_at=updated, age_s=round(age, 1),
        figures=figures,
    )


def not_started(component: str) -> ComponentHealth:
    """A component the site config has that has never reported (it has no ``health``
    row): not working, as ``edge status`` counts it."""
    kind = component_kind(component)
    return ComponentHealth(
        component=component[:64], kind=kind, name=component_name(kind, component)[:80],
        status="not_started", message=NOT_STARTED, updated_at=None, age_s=None, figures={},
    )


def site_health(rows: list[tuple], site: SiteConfig, now: float
                ) -> tuple[list[ComponentHealth], list[ComponentHealth]]:
    """The ``health`` rows as the page shows them: the components ``site``'s config runs,
    with each camera (and the counting across cameras) it has that has never reported;
    and apart, the last reports of components it no longer has
    (:func:`edge.storage.health.is_configured`), which the page never counts.

    With no row at all, nothing is added: no service has run on this database (a replay,
    a demo, a box not started yet), and the page says that nothing has reported. On a
    live box the status page's own service reports within seconds, so a camera whose
    worker stopped at start (a missing model) is "not started", never left out.
    """
    shaped = [component_health(row, now, site.web.health_stale_s) for row in rows]
    current = [c for c in shaped if is_configured(site, c.component)]
    gone = [c for c in shaped if not is_configured(site, c.component)]
    seen = {c.component for c in current}
    if shaped:
        # The page answering is the status page's own news: only the counting's components.
        current += [not_started(name) for name in expected_components(site)
                    if name not in seen and name != "web"]
    return sorted(current, key=lambda c: c.component), gone


def _pair_figures(pairs: Any) -> dict[str, FigureValue]:
    """``calibration_<a>-<b>_m``: per camera pair, the median floor distance between the
    two cameras' positions of the same person; ``calibration_<a>-<b>_unmatched``: the
    share of the people where both look that only one saw (only well-formed pairs and
    numbers pass)."""
    figures: dict[str, FigureValue] = {}
    if not isinstance(pairs, dict):
        return figures
    for pair, value in list(pairs.items())[:MAX_PAIRS]:
        if not (isinstance(pair, str) and PAIR.fullmatch(pair) and isinstance(value, dict)):
            continue
        for key, suffix in (("median_m", "m"), ("unmatched_share", "unmatched")):
            number = value.get(key)
            if isinstance(number, int | float) and not isinstance(number, bool) \
                    and number == number:
                figures[f"calibration_{pair}_{suffix}"] = float(number)
    return figures


class SystemProbe:
    """CPU, disk and uptime of this box. ``cpu_percent`` is measured between calls,
    so the first reading after start is primed in the constructor."""

    def __init__(self, db_path: Path, started_at: float | None = None) -> None:
        self.db_path = db_path
        self.started_at = started_at if started_at is not None else time.time()
        psutil.cpu_percent(interval=None)

    def _disk(self) -> tuple[int | None, int | None]:
        folder = self.db_path.parent
        while not folder.exists() and folder != folder.parent:
            folder = folder.parent
        try:
            usage = shutil.disk_usage(folder)
        except OSError:
            return None, None
        return usage.free, usage.total

    def read(self, *, version: str, model: str | None, database_bytes: int | None) -> SystemHealth:
        free, total = self._disk()
        return SystemHealth(
            version=version, model=model, cpu_percent=float(psutil.cpu_percent(interval=None)),
            disk_free_bytes=free, disk_total_bytes=total,
            disk_free_percent=round(100 * free / total, 1) if free is not None and total else None,
            database_bytes=database_bytes, uptime_s=round(time.time() - self.started_at, 1),
        )
