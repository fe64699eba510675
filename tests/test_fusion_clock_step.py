"""The live fusion service when the wall clock steps (NTP at boot on a box without a
real-time clock, the time set by hand): it paces on the clock the camera workers stamp
their frames with, so a step moves both."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edge.clock_steps import CLOCK_STEP_S, ClockStepWatch
from edge.fusion.store import write_camera_frames
from edge.runtime.fusion_worker import MAX_INSTANTS_PER_CALL, FusionWorker
from edge.runtime.schema import open_database
from tests.test_fusion import sighting
from tests.test_fusion_service import (
    START,
    fuse_on,
    people_at,
    started,
    stopped_with_people,
    store_visits,
    two_camera_site,
)


class SteppingClock:
    """A wall clock and a monotonic clock that move on together, until the wall clock
    steps."""

    def __init__(self, wall: float) -> None:
        self.now, self.mono = wall, 0.0

    def wall(self) -> float:
        return self.now

    def monotonic(self) -> float:
        return self.mono

    def run(self, worker: FusionWorker, until: float, frames: list | None = None) -> None:
        """The service's loop on this clock, in half-second turns, until ``until``;
        ``frames`` reach the table once the clock passed their stamps, as the camera
        workers store them."""
        waiting = sorted(frames or [], key=lambda seen: seen.timestamp)
        while self.now < until:
            self.now += 0.5
            self.mono += 0.5
            taken = [seen for seen in waiting if seen.timestamp <= self.now]
            write_camera_frames(worker.db, taken)
            waiting = waiting[len(taken):]
            worker.fuse_ready()
            worker.flush()


def walk(t0: float, t1: float, shift: float = 0.0) -> list:
    """Both cameras' frames every 0.2 s of ``[t0, t1)``, stamped ``shift`` later (on a
    clock that stepped by that much): the three people of ``people_at`` in view."""
    return [sighting(camera, START + shift + t, people_at(t % 10))
            for camera in ("door", "aisle") for t in np.arange(t0, t1, 0.2)]


def stepping_fusion(tmp_path) -> tuple[FusionWorker, SteppingClock]:
    """A fusion service that fused 10 s of both cameras with three people in view, on a
    clock that can step."""
    site = two_camera_site(tmp_path)
    db = open_database(tmp_path / "edge.db")
    write_camera_frames(db, walk(0, 10))
    clock = SteppingClock(START + 1.0)
    worker = FusionWorker(site, db, clock=clock.wall, monotonic=clock.monotonic)
    worker.start()
    clock.run(worker, START + 10)
    assert len(worker.stage.tracker.people) == 3
    return worker, clock


def fusion_health(worker: FusionWorker) -> tuple[str, str, dict]:
    worker.report_health()
    status, message, detail = worker.db.execute(
        "select status, message, detail from health where component = 'fusion'").fetchone()
    return status, message, json.loads(detail)


def run_times(worker: FusionWorker, run_id: int) -> tuple[float, float]:
    return worker.db.execute("select min(t), max(t) from track_points where run_id = ?",
                             [run_id]).fetchone()


def test_the_wall_clock_s_steps_are_told_from_drift():
    wall, mono = [1000.0], [0.0]
    watch = ClockStepWatch(lambda: wall[0], lambda: mono[0])
    assert watch.check() == 0.0  # nothing to compare with yet
    for _ in range(100):  # NTP slewing: far less than a step, however long it goes on
        wall[0] += 1.001
        mono[0] += 1.0
        assert watch.check() == 0.0
    wall[0] += 6 * 3600.0
    assert watch.check() == pytest.approx(6 * 3600.0)
    wall[0] -= 600.0
    mono[0] += 0.2
    assert watch.check() == pytest.approx(-600.2)
    wall[0] += CLOCK_STEP_S / 2
    assert watch.check() == 0.0


def test_a_clock_stepped_forward_skips_the_gap_and_fuses_on_at_the_new_time(tmp_path):
    """Review: the clock set 6 h forward (NTP at boot, no real-time clock) made the next
    call fuse every instant of the 6 h, 108,000 of them, all held in memory until stored
    (48 h: 66 s without a watchdog ping, +540 MB). The run now ends at the old time and
    a new one starts at the new time: nothing of the gap is fused."""
    worker, clock = stepping_fusion(tmp_path)
    db, first = worker.db, worker.run_id
    step = 6 * 3600.0
    clock.now += step
    # frames taken just before the step reach the table after it
    write_camera_frames(db, walk(10, 10.6))
    assert worker.fuse_ready() == 0
    assert worker.batch == []
    assert worker.run_id != first
    ended = db["runs"].get(first)
    assert ended["status"] == "stopped"
    assert ended["ended_at"] == pytest.approx(START + 10, abs=0.6)  # on the old clock
    assert db.execute("select count(*) from visits where run_id = ?", [first]).fetchone()[0] == 3
    clock.run(worker, START + step + 30, walk(10, 30, shift=step))
    start_t, end_t = run_times(worker, worker.run_id)
    assert START + step + 10 <= start_t and end_t <= START + step + 30
    assert 80 <= worker.frames <= 90  # the 20 s since the step, less the wait, at 5 a second
    assert len(worker.stage.tracker.people) == 3
    assert worker.late_frames == {} and worker.step_frames >= 6
    status, message, detail = fusion_health(worker)
    assert status == "degraded" and "The clock was set 6.0 h forward" in message
    assert "fusion.latency_s" not in message
    assert (detail["clock_steps"], detail["clock_step_s"]) == (1, step)


def test_a_clock_stepped_back_fuses_the_frames_stamped_after_it(tmp_path):
    """Review: the clock set 10 min back left the fusion fusing nothing until the clock
    caught up; every new frame was dropped as late (and deleted), and the health blamed
    fusion.latency_s. The frames stamped after the step are fused now, in a new run: a
    run's times only go forward."""
    worker, clock = stepping_fusion(tmp_path)
    db, first = worker.db, worker.run_id
    step = -600.0
    clock.now += step
    # frames taken just before the step reach the table after it, stamped "in the future"
    write_camera_frames(db, walk(10, 10.6))
    clock.run(worker, START + step + 130, walk(10, 130, shift=step))
    assert worker.run_id != first and db["runs"].get(first)["status"] == "stopped"
    assert worker.frames > 500  # the two minutes since, at 5 instants a second
    start_t, end_t = run_times(worker, worker.run_id)
    assert START + step + 10 <= start_t and end_t <= START + step + 130
    assert run_times(worker, first)[1] <= START + 10
    assert len(worker.stage.tracker.people) == 3
    assert worker.late_frames == {} and worker.step_frames >= 6
    status, message, detail = fusion_health(worker)
    assert "The clock was set 10 min back" in message and "fusion.latency_s" not in message
    assert detail["clock_step_s"] == step and detail["cameras_down"] == []


def test_one_call_fuses_a_bounded_number_of_instants(tmp_path):
    """However far behind the fusion is (a clock stepped with no monotonic clock to tell,
    a service stalled), one call fuses at most MAX_INSTANTS_PER_CALL instants: each
    call's are stored before the next, so none runs long or holds much in memory."""
    site = two_camera_site(tmp_path)
    db = open_database(tmp_path / "edge.db")
    write_camera_frames(db, walk(0, 130))
    now = [START + 1.0]
    worker = FusionWorker(site, db, clock=lambda: now[0])
    worker.start()
    now[0] = START + 130  # two minutes to fuse: 600 instants
    calls = []
    while fused := worker.fuse_ready():
        calls.append((fused, len(worker.batch)))
        worker.flush()
    assert calls[0] == (MAX_INSTANTS_PER_CALL, MAX_INSTANTS_PER_CALL)
    assert max(calls) == calls[0] and sum(f for f, _ in calls) == worker.frames > 600 - 20


def test_a_clock_set_back_while_the_service_was_stopped_starts_a_new_run(tmp_path):
    """Reviewer's report: set back while the service was down (a reboot with the
    real-time clock ahead, the time set by hand during an upgrade), the resumed run's
    last instant lay in the new clock's future, and nothing was fused until the clock
    caught up: 10 minutes set back, 10 minutes of no one counted."""
    site = two_camera_site(tmp_path)
    db = open_database(tmp_path / "edge.db")
    first, now = stopped_with_people(site, db, until=9.0)
    step = -600.0
    now[0] = START + 12.0 + step  # back 3 s later, on a clock set 10 minutes back
    # frames stamped on the old clock before the stop, and the cameras going on
    write_camera_frames(db, [sighting(c, START + t, people_at(t % 10))
                             for c in ("door", "aisle") for t in np.arange(9.0, 11.0, 0.2)])
    write_camera_frames(db, walk(11.0, 70.0, shift=step))
    second = started(site, db, now)
    assert second.run_id != first.run_id
    assert {run for run, _, _ in store_visits(db)} == {first.run_id}  # its visits end
    fuse_on(second, now, START + step + 70.0)
    assert second.frames > 200 and second.late_frames == {}
    assert second.step_frames > 0  # the old clock's frames, ahead of the new one: left out
    latest = db.execute("select max(t) from track_points where run_id = ?",
                        [second.run_id]).fetchone()[0]
    assert latest <= START + step + 70.0
    second.report_health()
    status, message = db.execute(
        "select status, message from health where component = 'fusion'").fetchone()
    assert status == "degraded" and "clock was set 10 min back" in message, message
