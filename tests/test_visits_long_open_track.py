"""A track open for hours (an associate at the till all day): the live builder still gives
the visits of one build after the run, and a routine build's work does not grow with the
track's age.

Field report: one associate standing at the till for 2 h made every routine build re-read
and re-analyse 2 h of positions of every track (3.6 s of CPU per build, every few
seconds, on a box that also runs the detector): a build read everything since the start
of the oldest piece it still held.
"""

import json

import numpy as np
import pytest

from edge.runtime.schema import open_database
from edge.storage.trajectories import finish_run, start_run
from edge.visits.analysis import VisitAnalyzer
from edge.visits.builder import build_visits
from tests.support.live_build import T0
from tests.support.live_build import WALK_THROUGH_SITE as SITE

pytestmark = pytest.mark.system

HOURS_2 = 7200.0
Track = tuple[int, np.ndarray, np.ndarray]


def samples(t0: float, t1: float, fps: float) -> np.ndarray:
    return np.arange(t0, t1, 1.0 / fps)


def standing(track: int, t0: float, t1: float, spot: tuple[float, float], fps: float,
             rng: np.random.Generator) -> Track:
    t = samples(t0, t1, fps)
    return track, t, np.asarray(spot) + rng.normal(0.0, 0.05, (len(t), 2))


def shoppers(until: float, rng: np.random.Generator, first_id: int = 100) -> list[Track]:
    """One shopper every 50 s through the door and the shelf (40 s, 2 fps); every 4th with
    a companion 0.6 m beside; every 6th lost by the tracker for 1.5 s and picked up again
    under a new track id (stitching joins them)."""
    out: list[Track] = []
    track = first_id
    for k, start in enumerate(np.arange(30.0, until - 60.0, 50.0)):
        t = samples(start, start + 40.0, 2.0)
        xy = np.column_stack([np.full_like(t, 2.0 + 2 * (k % 3)), np.linspace(-5, 8, len(t))])
        xy += rng.normal(0.0, 0.03, xy.shape)
        people = [xy] + ([xy + [0.6, 0.1]] if k % 4 == 0 else [])
        for path in people:
            if k % 6 == 0:
                lost = (t >= start + 20.0) & (t < start + 21.5)
                head, tail = t < start + 20.0, t >= start + 21.5
                out += [(track, t[head], path[head]), (track + 1, t[tail], path[tail])]
                assert lost.any()
                track += 2
            else:
                out.append((track, t, path))
                track += 1
    return out


def long_pieces(rng: np.random.Generator) -> list[Track]:
    """Pieces held for a long time whose start was decided long before they close.

    * Track 1: an associate at the till for 2 h.
    * Tracks 2 -> 3: someone walks up and is lost for 1.5 s; track 3 takes them up 0.4 m
      on (stitching) and stands there for an hour.
    * Tracks 4 -> 5: track 4 follows P north and jumps onto Q, who steps out 1.2 m west
      (a swap); P comes back as track 5 where they were heading, walks on and stands for
      50 minutes (the swap repair cuts track 4 into track 5).
    """
    walker_t = samples(500.0, 520.0, 5.0)
    walker = np.column_stack([np.full_like(walker_t, 30.0), np.linspace(-5, 5, len(walker_t))])
    held_t = samples(521.5, 4000.0, 5.0)
    held = np.column_stack([np.full_like(held_t, 30.0), np.full_like(held_t, 5.4)])
    held += rng.normal(0.0, 0.03, held.shape)
    t0 = 1000.0

    def p_walk(t: np.ndarray) -> np.ndarray:
        return np.column_stack([np.full_like(t, 35.0), -10 + 1.5 * np.minimum(t - t0, 20.0)])

    def q_walk(t: np.ndarray) -> np.ndarray:
        return np.column_stack([35.0 - 1.2 - 0.5 * (t - t0 - 6), np.full_like(t, -1.0)])

    t4 = samples(t0, t0 + 14.0, 5.0)
    t5 = samples(t0 + 7.6, t0 + 3000.0, 5.0)
    return [standing(1, 0.0, HOURS_2, (23.0, 2.0), 2.0, rng),
            (2, walker_t, walker), (3, held_t, held),
            (4, t4, np.where((t4 > t0 + 6)[:, None], q_walk(t4), p_walk(t4))),
            (5, t5, p_walk(t5))]


def store(db, run: int, tracks: list[Track], after: float, until: float) -> None:
    rows = []
    for track, t, xy in tracks:
        for i in np.flatnonzero((t > after) & (t <= until)):
            rows.append({"run_id": run, "camera_id": "cam", "track_id": track,
                         "frame": int(round(t[i] * 10)), "t": T0 + float(t[i]),
                         "x": float(xy[i, 0]), "y": float(xy[i, 1]), "left": 0.0, "top": 0.0,
                         "width": 1.0, "height": 2.0, "confidence": 0.9})
    if rows:
        db["track_points"].insert_all(rows, batch_size=1000)


def outcome(db) -> dict:
    """Everything a build writes, by track and time (visit and group ids are random)."""
    def rounded(value: float) -> float:
        return round(value - T0, 6)

    visits = sorted((track, rounded(start), rounded(end), json.dumps(
        {k: round(v, 9) for k, v in json.loads(features).items()}, sort_keys=True))
        for track, start, end, features in db.execute(
            "select track_id, start_t, end_t, features from visits"))
    groups: dict[str, list] = {}
    for track, start, group in db.execute(
            "select v.track_id, v.start_t, g.group_id from visits v join visit_groups g "
            "using (visit_id)"):
        groups.setdefault(group, []).append((track, rounded(start)))
    return {
        "visits": visits,
        "staff": sorted((track, rounded(start), rounded(end), reason) for track, start, end, reason
                        in db.execute("select track_id, start_t, end_t, reason from staff_visits")),
        "crossings": sorted((track, line, rounded(t), direction) for track, line, t, direction
                            in db.execute("select track_id, line_id, t, direction "
                                          "from line_crossings")),
        "groups": sorted(sorted(members) for members in groups.values()),
    }


def test_live_builds_with_a_track_open_for_2_hours_give_the_visits_of_one_build():
    """Built every 5 s while the run goes on (as the camera worker does) or once after
    it: the same visits, associates, crossings and groups, though the builder no longer
    reads the held pieces' early positions at every build. The decisions made about a
    held piece's start long ago (a stitch into track 3, a cut into track 5) are kept."""
    rng = np.random.default_rng(5)
    tracks = long_pieces(rng) + shoppers(HOURS_2, rng)

    once_db = open_database(":memory:")
    run = start_run(once_db, "cam", "replay", "model")
    store(once_db, run, tracks, -1.0, HOURS_2)
    finish_run(once_db, run, 0, "done")
    build_visits(once_db, VisitAnalyzer(SITE))
    at_once = outcome(once_db)
    staff = {(track, start): (end, reason) for track, start, end, reason in at_once["staff"]}
    assert staff[(1, 0.0)][1] == "staff-zone"
    held_for_an_hour = (pytest.approx(4000.0, abs=0.3), "long-presence")
    assert staff[(2, 500.0)] == held_for_an_hour   # 2 -> 3 stitched
    assert staff[(4, 1000.0)] == held_for_an_hour  # 4 cut into 5
    assert any(track == 4 and start > 1005 for track, start, *_ in at_once["visits"])  # Q
    assert sum(len(members) == 2 for members in at_once["groups"]) >= 30

    db = open_database(":memory:")
    analyzer = VisitAnalyzer(SITE)
    run = start_run(db, "cam", "live", "model")
    clock, most = 0.0, 0
    while clock < HOURS_2:
        store(db, run, tracks, clock - 1e-9 if clock == 0 else clock, clock + 5.0)
        clock += 5.0
        summary = build_visits(db, analyzer, run_id=run, stored_until=T0 + clock)
        if 2900 < clock < 3900:  # tracks 1, 3 and 5 in view, all three associates by now
            most = max(most, summary.positions_read)
    finish_run(db, run, 0, "done")
    build_visits(db, analyzer, run_id=run)
    assert outcome(db) == at_once
    assert most < 1_000  # tracks 1, 3 and 5 had 30,000 positions stored by then


def vm_steps(db, call):
    """``call()`` and how many SQLite virtual-machine steps it took (in thousands): the
    work of its queries, however they are written."""
    steps = [0]

    def count() -> int:
        steps[0] += 1
        return 0

    db.conn.set_progress_handler(count, 1000)
    try:
        result = call()
    finally:
        db.conn.set_progress_handler(None, 0)
    return result, steps[0]


def test_a_routine_build_does_not_grow_with_the_age_of_the_oldest_open_track():
    """With one associate at the till since the run started and a stream of shoppers, a
    routine build 10 minutes in and one nearly 2 hours in read as many positions and do
    as much database work: what is new and what is in view, not the associate's 2 h."""
    rng = np.random.default_rng(11)
    tracks = [standing(1, 0.0, HOURS_2, (23.0, 2.0), 2.0, rng), *shoppers(HOURS_2, rng)]
    db = open_database(":memory:")
    analyzer = VisitAnalyzer(SITE)
    run = start_run(db, "cam", "live", "model")
    clock = 0.0
    read_rows = [0]
    execute = db.execute

    def counting_execute(sql, params=None):
        cursor = execute(sql, params) if params is not None else execute(sql)
        if "from track_points" not in sql or sql.lstrip().lower().startswith("select max"):
            return cursor
        rows = cursor.fetchall()
        read_rows[0] += len(rows)
        return _Rows(rows)

    def routine_builds(until: float) -> tuple[list[int], list[int], list]:
        """Builds every 60 s up to ``until`` - 30 s (not measured), then every 5 s."""
        nonlocal clock
        rows, steps, reported = [], [], []
        while clock < until:
            step = 60.0 if clock < until - 90 else 5.0
            store(db, run, tracks, clock - 1e-9 if clock == 0 else clock, clock + step)
            clock += step
            read_rows[0] = 0
            db.execute = counting_execute  # type: ignore[method-assign]
            try:
                summary, work = vm_steps(db, lambda until=T0 + clock: build_visits(
                    db, analyzer, run_id=run, stored_until=until))
            finally:
                db.execute = execute  # type: ignore[method-assign]
            if step == 5.0 and clock > until - 60:
                rows.append(read_rows[0])
                steps.append(work)
                reported.append(summary)
        return rows, steps, reported

    early_rows, early_steps, early_reported = routine_builds(600.0)
    late_rows, late_steps, late_reported = routine_builds(HOURS_2 - 120)
    assert max(late_rows) < 2 * max(early_rows), (early_rows, late_rows)
    assert max(late_steps) < 2 * max(early_steps), (early_steps, late_steps)
    assert max(late_rows) < 1_000  # the associate alone has 14,000 positions stored by now
    # BuildSummary.positions_read says the same
    assert [s.positions_read for s in early_reported + late_reported] == early_rows + late_rows


class _Rows(list):
    """Fetched rows that still answer ``fetchall()`` and ``fetchone()`` as a cursor does."""

    def fetchall(self) -> list:
        return list(self)

    def fetchone(self):
        return self[0] if self else None


def test_a_run_whose_held_pieces_were_not_kept_is_read_as_before():
    """A box updated while a run goes on: its last build, by the builder before, kept no
    held pieces (visit_build_open is new). The next build reads the run from its oldest
    held piece, as that builder did, and keeps them for the builds after it."""
    rng = np.random.default_rng(3)
    tracks = [standing(1, 0.0, 1200.0, (23.0, 2.0), 2.0, rng), *shoppers(1200.0, rng)]
    once_db = open_database(":memory:")
    run = start_run(once_db, "cam", "replay", "model")
    store(once_db, run, tracks, -1.0, 1200.0)
    finish_run(once_db, run, 0, "done")
    build_visits(once_db, VisitAnalyzer(SITE))

    db = open_database(":memory:")
    analyzer = VisitAnalyzer(SITE)
    run = start_run(db, "cam", "live", "model")
    clock, reads = 0.0, {}
    while clock < 1200.0:
        store(db, run, tracks, clock - 1e-9 if clock == 0 else clock, clock + 5.0)
        clock += 5.0
        if clock == 600.0:
            db.execute("delete from visit_build_open")
        reads[clock] = build_visits(db, analyzer, run_id=run,
                                    stored_until=T0 + clock).positions_read
    finish_run(db, run, 0, "done")
    build_visits(db, analyzer, run_id=run)
    assert outcome(db) == outcome(once_db)
    assert reads[600.0] > 1_000 > reads[605.0]  # everything since the associate came; then not
