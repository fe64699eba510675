#!/usr/bin/env python3
"""Benchmark: CPU of one routine live visit build while a track has been open for hours.

A live camera worker builds visits every ``service.visits_interval_s`` (5 s here): each
build sees 5 s of new positions. The scene is the scenario store (its ``behind-counter``
is a ``staff`` zone) with a stream of shoppers (:func:`edge.visits.group_scenarios.
group_floor`: couples, families, people alone, one arrival every 5-60 s, a quarter of
them lost by the tracker for a moment) and, in the measured run, one associate standing
at the till the whole time: one track open for as long as the run lasts.

At each checkpoint (the associate's track open for 10, 30, 60 and 120 minutes) the
median CPU time of a few routine builds is measured, and the same builds of the same
shoppers without the associate (the baseline, same run): ``ratio_<minutes>min`` is
their ratio. A build whose cost is bounded by what is new and what is in view keeps
that ratio near 1 however long the associate stays; one that re-reads everything since
the oldest open track grows with it.

    .venv/bin/python scripts/bench_builder.py [--json] [--quick]
"""

from __future__ import annotations

import statistics
import sys
import time

from checkout_venv import bench_parser, enter, print_figures

enter(__file__)

import numpy as np
import sqlite_utils

from edge.runtime.schema import open_database
from edge.storage.trajectories import start_run
from edge.visits.analysis import VisitAnalyzer
from edge.visits.builder import build_visits
from edge.visits.group_scenarios import group_floor
from edge.visits.scenarios import scenario_site

T0 = 1_700_000_000.0
STEP_S = 5.0          # service.visits_interval_s
WARM_STEP_S = 60.0    # builds between checkpoints (not measured)
MEASURED = 6          # routine builds measured at each checkpoint


def till_associate(seconds: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Someone behind the counter for ``seconds``: standing, swaying, stepping to another
    spot now and then, seen at 5 fps with 10 cm of floor noise."""
    t = np.arange(0.0, seconds, 0.2)
    spots = np.column_stack([rng.uniform(20.8, 27.2, 64), rng.uniform(-2.4, -1.0, 64)])
    spot = np.minimum((t // 120).astype(int), len(spots) - 1)
    xy = spots[spot] + rng.normal(0.0, 0.1, (len(t), 2))
    return t, xy


class LiveRun:
    """A live run fed ``STEP_S`` at a time, built as its camera worker builds it."""

    def __init__(self, tracks: list[tuple[int, np.ndarray, np.ndarray]]) -> None:
        self.db: sqlite_utils.Database = open_database(":memory:")
        self.analyzer = VisitAnalyzer(scenario_site())
        self.run = start_run(self.db, "cam", "live", "bench")
        self.tracks = tracks
        self.clock = 0.0

    def advance(self, seconds: float) -> float:
        """Store the next ``seconds`` of positions and build; the build's CPU seconds."""
        until = self.clock + seconds
        rows = []
        for track, t, xy in self.tracks:
            now = np.flatnonzero((t > self.clock) & (t <= until))
            rows += [{"run_id": self.run, "camera_id": "cam", "track_id": track,
                      "frame": int(t[i] * 10), "t": T0 + float(t[i]), "x": float(xy[i, 0]),
                      "y": float(xy[i, 1]), "left": 0.0, "top": 0.0, "width": 1.0,
                      "height": 2.0, "confidence": 0.9} for i in now]
        if rows:
            self.db.table("track_points").insert_all(rows, batch_size=1000)
        self.clock = until
        started = time.process_time()
        build_visits(self.db, self.analyzer, run_id=self.run, stored_until=T0 + until)
        return time.process_time() - started


def measure(tracks: list, checkpoints_s: list[float]) -> list[float]:
    """Median CPU ms of ``MEASURED`` routine builds ending at each checkpoint."""
    live = LiveRun(tracks)
    out = []
    for checkpoint in checkpoints_s:
        start_measuring = checkpoint - MEASURED * STEP_S
        while live.clock + WARM_STEP_S <= start_measuring:
            live.advance(WARM_STEP_S)
        if live.clock < start_measuring:
            live.advance(start_measuring - live.clock)
        out.append(1e3 * statistics.median(live.advance(STEP_S) for _ in range(MEASURED)))
    return out


def main() -> int:
    parser = bench_parser(__doc__, quick="checkpoints at 10 and 30 minutes only")
    args = parser.parse_args()
    minutes = [10, 30] if args.quick else [10, 30, 60, 120]
    checkpoints = [60.0 * m for m in minutes]
    rng = np.random.default_rng(7)
    shoppers = [(s.track_id, s.t, s.xy) for s in group_floor(units=300, seed=3)]
    baseline = measure(shoppers, checkpoints)
    with_long = measure([(9_999, *till_associate(checkpoints[-1] + 60, rng)), *shoppers],
                        checkpoints)
    figures: dict[str, float] = {}
    for m, base, long in zip(minutes, baseline, with_long, strict=True):
        figures[f"build_ms_{m}min"] = round(long, 2)
        figures[f"build_ms_no_long_track_{m}min"] = round(base, 2)
        figures[f"ratio_{m}min"] = round(long / base, 3)
    return print_figures(figures, args.json)


if __name__ == "__main__":
    sys.exit(main())
