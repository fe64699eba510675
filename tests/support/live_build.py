"""Synthetic floor tracks stored and built into visits as a live camera's would be."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import sqlite_utils

from edge.config import SiteConfig, parse_site
from edge.runtime.schema import open_database
from edge.storage.trajectories import finish_run, start_run
from edge.visits.analysis import VisitAnalyzer
from edge.visits.builder import build_visits

T0 = 1_700_000_000.0
FPS = 5.0

# A store people walk into through a door (y = -2) and past a kids' shelf; an associates'
# till to the side.
WALK_THROUGH_SITE = parse_site("""
site: {id: test-store}
floor:
  bounds: [[-10, -12], [40, 30]]
  zones:
    - {id: shelf, kind: product, tags: [kids], polygon: [[0, 0], [10, 0], [10, 10], [0, 10]]}
    - {id: till, kind: staff, polygon: [[20, 0], [26, 0], [26, 4], [20, 4]]}
  lines:
    - {id: door, start: [-5, -2], end: [15, -2], inside: left}
visits: {close_after_s: 10, min_duration_s: 3}
web: {access: open-lan}
""")


def add_points(db: sqlite_utils.Database, run: int, track_id: int, t: np.ndarray,
               xy: np.ndarray) -> None:
    """Store one track's positions ``xy`` at ``t`` seconds after ``T0`` (camera ``cam``)."""
    db["track_points"].insert_all(
        {"run_id": run, "camera_id": "cam", "track_id": track_id, "frame": int(round(ti * FPS)),
         "t": T0 + float(ti), "x": float(p[0]), "y": float(p[1]), "left": 0.0, "top": 0.0,
         "width": 1.0, "height": 2.0, "confidence": 0.9}
        for ti, p in zip(t, xy, strict=True))


def build_live(site: SiteConfig, scene: Iterable[tuple[int, np.ndarray, np.ndarray]],
               step_s: float, until: float) -> sqlite_utils.Database:
    """Feed ``scene`` (track id, seconds after ``T0``, positions) to a live run's builder
    every ``step_s`` seconds up to ``until``, then finish the run and build once more."""
    scene = list(scene)
    db = open_database(":memory:")
    analyzer = VisitAnalyzer(site)
    run = start_run(db, "cam", "live", "model")
    clock = -0.001
    while clock < until:
        clock += step_s
        for track, t, xy in scene:
            now = (t > clock - step_s) & (t <= clock)
            if now.any():
                add_points(db, run, track, t[now], xy[now])
        build_visits(db, analyzer)
    finish_run(db, run, 0, "done")
    build_visits(db, analyzer)
    return db
