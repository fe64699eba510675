"""Helpers for the federated refit tests: scenario visits measured and classified by the
visits code, spread over one UTC day, written into real box databases."""

from __future__ import annotations

import sqlite_utils

from edge.visits.analysis import VisitAnalyzer
from edge.visits.records import VisitResult
from edge.visits.scenarios import scenario_site, scenario_suite
from edge.visits.store import insert_visits

DAY0 = 1_764_892_800.0  # 2025-12-05T00:00:00Z
DAY_S = 86_400


def day_visits(repeats: int, seed: int, day_start: float = DAY0) -> list[VisitResult]:
    """The first visit of each scenario track of ``scenario_suite(repeats, seed)``, its
    track shifted to end within the UTC day from ``day_start`` (classified with the spec
    in force, as the visits service would)."""
    analyzer = VisitAnalyzer(scenario_site())
    out = []
    for i, s in enumerate(scenario_suite(repeats, seed)):
        shift = day_start + 60 + (i * 613) % (DAY_S - 4000)
        outcome = analyzer.analyze_track("refit", 1, s.track_id, s.t + shift, s.xy)
        out.extend(outcome.visits[:1])
    return out


def write_visits(db: sqlite_utils.Database, store: str, visits: list[VisitResult]) -> None:
    with db.atomic():
        insert_visits(db, store, visits)
