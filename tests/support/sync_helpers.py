"""Helpers for the sync tests: a site config with a sync section, and real rows in the
tables the sync aggregates (filled directly, as the vision, visits and Wi-Fi services would)."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import sqlite_utils
import yaml

from edge.config import SiteConfig, parse_site
from tests.conftest import PETS_SITE

STORE = "pets09-demo"
ENTRANCE = "front-door"
_ids = itertools.count(1)


def site_text(**sync: Any) -> str:
    return PETS_SITE.read_text() + "\n" + yaml.safe_dump({"sync": sync})


def sync_site(**sync: Any) -> SiteConfig:
    """The PETS demo site with a ``sync:`` section (values as in YAML)."""
    return parse_site(site_text(**sync), base_dir=PETS_SITE.parent)


def write_site(path: Path, **sync: Any) -> Path:
    """Write a site file (for ``edge`` subprocesses); the camera source stays the shared asset."""
    path.write_text(site_text(**sync))
    return path


def add_crossings(
    db: sqlite_utils.Database, times: list[float], direction: str = "in", line: str = ENTRANCE
) -> None:
    with db.atomic():
        db["line_crossings"].insert_all(
            {
                "line_id": line,
                "camera_id": "view001",
                "run_id": 1,
                "track_id": next(_ids),
                "t": t,
                "direction": direction,
            }
            for t in times
        )


def add_visit(
    db: sqlite_utils.Database,
    end_t: float,
    *,
    duration_s: float = 60.0,
    zones: dict[str, float] | None = None,
    sequence: list[str] | None = None,
    traits: dict[str, float] | None = None,
    segments: dict[str, float] | None = None,
    checkout: bool = False,
    spec_version: str = "test-1",
) -> str:
    """One visit with its zone dwell, traits and segments; returns its id."""
    visit_id = f"v{next(_ids)}"
    zones = zones or {}
    with db.atomic():
        db["visits"].insert(
            {
                "visit_id": visit_id,
                "site_id": STORE,
                "camera_id": "view001",
                "run_id": 1,
                "track_id": next(_ids),
                "start_t": end_t - duration_s,
                "end_t": end_t,
                "duration_s": duration_s,
                "path_length_m": duration_s / 10,
                "checkout_visited": int(checkout),
                "features": "{}",
                "zone_sequence": json.dumps(sequence if sequence is not None else list(zones)),
                "spec_version": spec_version,
            }
        )
        for zone, dwell in zones.items():
            db["visit_zone_dwell"].insert(
                {"visit_id": visit_id, "zone_id": zone, "dwell_s": dwell, "entries": 1}
            )
        for trait, p in (traits or {}).items():
            db["visit_traits"].insert({"visit_id": visit_id, "trait": trait, "probability": p})
        for segment, p in (segments or {}).items():
            db["visit_segments"].insert(
                {"visit_id": visit_id, "segment": segment, "probability": p}
            )
    return visit_id


def add_track(
    db: sqlite_utils.Database, track_id: int, times: list[float], run_id: int = 1
) -> None:
    with db.atomic():
        if (
            not db["runs"].exists()
            or db.execute("select 1 from runs where id = ?", [run_id]).fetchone() is None
        ):
            db["runs"].insert(
                {
                    "id": run_id,
                    "camera_id": "view001",
                    "source": "test",
                    "model": "none",
                    "started_at": 0.0,
                    "ended_at": None,
                    "frames": 0,
                    "status": "running",
                }
            )
        db["track_points"].insert_all(
            {
                "run_id": run_id,
                "camera_id": "view001",
                "track_id": track_id,
                "frame": i,
                "t": t,
                "x": 0.0,
                "y": 0.0,
                "left": 0.0,
                "top": 0.0,
                "width": 1.0,
                "height": 2.0,
                "confidence": 0.9,
            }
            for i, t in enumerate(times)
        )


def add_wifi(
    db: sqlite_utils.Database,
    start: float,
    window_s: int,
    devices: int,
    passers: int,
    occupancy: float | None = None,
    sensor: str = "wlan1",
) -> None:
    with db.atomic():
        db["wifi_windows"].insert(
            {
                "window_start": start,
                "window_s": window_s,
                "sensor": sensor,
                "frames": 100,
                "in_store_devices": devices,
                "passers_by": passers,
                "occupancy_estimate": occupancy,
                "dwell_buckets": "{}",
            }
        )
