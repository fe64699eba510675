"""Helpers for the federated refit tests: scenario visits measured and classified by the
visits code, spread over one UTC day, written into real box databases."""

from __future__ import annotations

import sqlite_utils

from edge.config import SiteConfig
from edge.visits.analysis import VisitAnalyzer
from edge.visits.records import VisitResult
from edge.visits.scenarios import scenario_site, scenario_suite
from edge.visits.store import insert_visits
from sync import contract
from sync.aggregate import Window
from sync.outbox import Outbox
from sync.producer import build_message

DAY0 = 1_764_892_800.0  # 2025-12-05T00:00:00Z
DAY_S = 86_400
LAST = Window(DAY0 + DAY_S - 900, 900)  # the day's last window: closing it publishes the day


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


def bunch_visits(db: sqlite_utils.Database, per_window: int, window_s: int = 900,
                 day_start: float = DAY0) -> None:
    """Move the visits that end in the UTC day from ``day_start`` (their times,
    durations kept) so that they end ``per_window`` to a window from the day's start,
    the rest in the last of them: every window with visits then publishes its count at
    any k up to ``per_window``."""
    rows = db.execute("select visit_id, end_t from visits where end_t >= ? and end_t < ? "
                      "order by end_t, visit_id", [day_start, day_start + DAY_S]).fetchall()
    windows = max(1, len(rows) // per_window)
    with db.atomic():
        for i, (visit_id, end_t) in enumerate(rows):
            new = day_start + min(i // per_window, windows - 1) * window_s + 1 + i % per_window
            db.execute("update visits set start_t = start_t + ?, end_t = ? where visit_id = ?",
                       [new - end_t, new, visit_id])


def publish_day(db: sqlite_utils.Database, site: SiteConfig, k: int, window: Window) -> None:
    """Store the messages of the windows of the day before ``window`` (the one closing
    it) in the outbox, as the sync service does before it aggregates ``window``."""
    outbox = Outbox(db)
    day_start = window.end - DAY_S
    for i in range(int(window.start - day_start) // window.seconds):
        start = day_start + i * window.seconds
        message = build_message(db, site, Window(start, window.seconds), k)
        outbox.add(id=message["id"], kind=contract.AGGREGATE_KIND,
                   topic_suffix=contract.AGGREGATES, window_start=start,
                   window_s=window.seconds, payload=contract.canonical_json(message),
                   now=window.start)
