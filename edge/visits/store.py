"""Tables of visits, their zone dwell, traits and segments, and line crossings.

A visit row holds no image, no appearance and no raw position list: only derived
features. ``visit_id`` is random per visit and means nothing outside the box.
"""

from __future__ import annotations

import sqlite_utils
from sqlite_utils.migrations import Migrations

MIGRATIONS = Migrations("edge.visits")


@MIGRATIONS()
def m001_visits(db: sqlite_utils.Database) -> None:
    db["visits"].create(
        {
            "visit_id": str,        # random, per visit
            "site_id": str,
            "camera_id": str,
            "run_id": int,
            "track_id": int,
            "start_t": float,       # epoch seconds
            "end_t": float,
            "duration_s": float,
            "path_length_m": float,
            "checkout_visited": int,
            "features": str,        # JSON: feature name -> number
            "zone_sequence": str,   # JSON: list of zone ids in visiting order
            "spec_version": str,    # segment spec that classified it
        },
        pk="visit_id",
    )
    db["visits"].create_index(["start_t"])
    db["visits"].create_index(["end_t"])
    db["visit_zone_dwell"].create(
        {"visit_id": str, "zone_id": str, "dwell_s": float, "entries": int},
        pk=("visit_id", "zone_id"),
        foreign_keys=[("visit_id", "visits", "visit_id")],
    )
    db["visit_traits"].create(
        {"visit_id": str, "trait": str, "probability": float},
        pk=("visit_id", "trait"),
        foreign_keys=[("visit_id", "visits", "visit_id")],
    )
    db["visit_segments"].create(
        {"visit_id": str, "segment": str, "probability": float},
        pk=("visit_id", "segment"),
        foreign_keys=[("visit_id", "visits", "visit_id")],
    )
    db["line_crossings"].create(
        {
            "line_id": str,
            "camera_id": str,
            "run_id": int,
            "track_id": int,
            "t": float,
            "direction": str,       # "in" or "out"
        }
    )
    db["line_crossings"].create_index(["t"])
