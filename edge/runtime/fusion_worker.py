"""The live fusion service of a multi-camera site: the camera workers' floor sightings
-> store-wide tracks -> visits.

Camera workers stay separate processes and hand each processed frame's sightings over
through the ``camera_frames`` table (:mod:`edge.fusion.store`), in batches every
``service.flush_interval_s``. This service fuses one instant every
``1 / fusion.rate_fps`` seconds of camera time, ``service.flush_interval_s +
fusion.latency_s`` behind the clock so that every camera's frames of that instant have
arrived (a frame that comes later still is counted as late, per camera, in the health
report), with each camera's latest frame at or before the instant: cameras may run at different
frame rates and their clocks may disagree by a few hundred milliseconds. A frame's time is its
stamp less its camera's delay (:mod:`edge.fusion.delays`), and the fusion waits that much longer
for a late camera. The fused
tracks are stored as the ``store`` run's ``track_points``, which the visits, the
status page and the aggregates read, so every person is counted once.

A step of the wall clock (:mod:`edge.clock_steps`: NTP at boot on a box without a
real-time clock, the time set by hand) ends the run at the old time and starts a new
one on the new clock (:meth:`FusionWorker._clock_stepped`), so that a run's times only
go forward and no instant of the step is fused.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable

import sqlite_utils

from edge.clock_steps import CLOCK_STEP_S, ClockStepWatch
from edge.config import SiteConfig
from edge.config.site import STORE_TRACKS_ID
from edge.errors import StorageError
from edge.fusion.pair_check import disagreement_problem
from edge.fusion.stage import FusionStage
from edge.fusion.store import (
    SavedFusion,
    delete_camera_frames,
    load_fusion_state,
    read_camera_image_sizes,
    read_new_camera_frames,
    save_fusion_state,
)
from edge.records import FloorObservations, FusedTracks
from edge.storage.health import report_health
from edge.storage.trajectories import (
    close_running_runs,
    finish_run,
    resume_run,
    start_run,
    write_fused_points,
)
from edge.visits.analysis import VisitAnalyzer
from edge.visits.builder import build_visits, ended_runs_to_build

log = logging.getLogger(__name__)

KEEP_FUSED_FRAMES_S = 5.0  # camera frames kept this long after they were fused
# The tracker's state is saved at most this often (of fusion time), and at the end: a
# service resumed from it fuses again the instants since, from the camera frames still
# kept (hence shorter than KEEP_FUSED_FRAMES_S). Each save writes every person's state.
SAVE_STATE_EVERY_S = 2.0
# At most this many instants are fused by one call of fuse_ready (10 s of fusion time at
# the default 5 a second): a fusion that is behind catches up call by call, each call's
# instants stored before the next, so that no call holds off the watchdog's ping for long
# nor keeps an unbounded batch in memory.
MAX_INSTANTS_PER_CALL = 50
# The frame sizes the camera workers recorded are read this often (monotonic seconds):
# they change when a camera is set up anew, not from one instant to the next.
SIZES_EVERY_S = 5.0
CLOCK_STEP_SHOWN_S = 600.0  # the health names a clock step this long (monotonic seconds)
# After a step back, a frame stamped this far after the clock was taken before the step.
AHEAD_S = 1.0


class FusionWorker:
    """The live fusion loop.

    Args:
        site: a site with two or more cameras.
        db: the shared database.
        clock: the wall clock (tests pass their own).
        monotonic: a clock that no step of the wall clock moves, to tell the steps by
            (default: ``time.monotonic`` with the default wall clock; a test's clock
            steps only when the test passes a monotonic clock too).
    """

    def __init__(
        self,
        site: SiteConfig,
        db: sqlite_utils.Database,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] | None = None,
    ) -> None:
        self.site = site
        self.db = db
        self.clock = clock
        self._step_watch = ClockStepWatch(
            clock, monotonic or (time.monotonic if clock is time.time else clock))
        self.config = site.fusion
        self.step_s = 1.0 / self.config.rate_fps
        # A camera worker stores a frame up to a flush interval after taking it.
        self.wait_s = site.service.flush_interval_s + self.config.latency_s
        self.stage = FusionStage(site)
        # per camera, the frame size its worker recorded, as the stage has taken it up
        self.image_sizes: dict[str, tuple[int, int]] = {}
        self._sizes_read_at = float("-inf")
        self.visits = VisitAnalyzer(site)  # a bad segment spec stops the service at start
        self.run_id: int | None = None
        self.instant: float | None = None  # the last fused instant
        self.last_row = 0  # the last camera_frames row read
        self.done_until = 0.0  # frames stamped up to this were fused, or predate the service
        self.frames_read = 0
        self.late_frames: dict[str, int] = {}  # per camera: came after their instant was fused
        self.frames = 0
        self.pending: list[FloorObservations] = []
        self.batch: list[FusedTracks] = []
        self.last_people = 0
        self._late_reported: dict[str, int] = {}
        self._read_after = float("-inf")  # the first read skips frames stamped before
        self._state_saved_t = float("-inf")  # the instant of the last state saved
        self.clock_steps = 0  # of the wall clock, since the service started
        self.last_step: tuple[float, float, float] | None = None  # (seconds, when, monotonic)
        self.step_frames = 0  # taken before a step of the clock, read after it: left out
        self._before_step: float | None = None  # frames stamped up to this predate the step

    def start(self) -> None:
        """Resume the last store run if it ended less than ``fusion.down_hold_s`` ago
        (a restart: the same people go on under the same track ids, and the camera
        frames stored meanwhile are fused), else start a new one. Either way, build the
        visits of every other store run that ended with people in view (interrupted, by
        a kill or ``edge purge``, or stopped)."""
        close_running_runs(self.db, STORE_TRACKS_ID)  # a killed service's: resumable too
        resumed = self._resume()
        for run_id in ended_runs_to_build(self.db, STORE_TRACKS_ID):
            if run_id != resumed:
                self._build_visits(run_id)
        if resumed is None:
            names = ", ".join(c.id for c in self.site.cameras)
            self.run_id = start_run(self.db, STORE_TRACKS_ID, f"fusion of {names}", "fusion")
            self.done_until = self.clock() - self.wait_s
            self._read_after = self.done_until

    def _resume(self) -> int | None:
        """Take up the last store run where it stopped, when it can be; returns its id."""
        # the service's own runs: an `edge replay` of the site into this database
        # (kind 'replay') is not this service's to resume, nor in the way of its own
        row = self.db.execute(
            "select id, status from runs where camera_id = ? and kind = 'live' "
            "order by id desc limit 1",
            [STORE_TRACKS_ID]).fetchone() if self.db["runs"].exists() else None
        if row is None or row[1] not in ("stopped", "interrupted"):
            return None  # none, or it failed: a state that made it fail is not taken up
        run_id = int(row[0])
        finished = self.db.execute(
            "select 1 from visit_build_runs where run_id = ? and finished", [run_id]
        ).fetchone() if self.db["visit_build_runs"].exists() else None
        saved = load_fusion_state(self.db, run_id)
        if finished or saved is None:
            return None
        now = self.clock()
        away = now - self.wait_s - saved.t
        if away < -CLOCK_STEP_S:
            self._stepped_while_stopped(now, away, run_id)
            return None
        if away > self.config.down_hold_s:
            log.info("Fusion: run %d stopped %.0f s ago, longer than fusion.down_hold_s: "
                     "its people's visits end there; a new run starts.", run_id, away)
            return None
        try:
            self.stage.restore(saved.state)
        except ValueError as error:
            log.warning("Fusion: run %d cannot be resumed (%s); a new run starts.",
                        run_id, error)
            return None
        resume_run(self.db, run_id)
        # The instants fused after the state was saved are fused again.
        with self.db.atomic():
            self.db.execute("delete from track_points where run_id = ? and t > ?",
                            [run_id, saved.t])
        self.run_id, self.frames = run_id, saved.frames
        self._state_saved_t = saved.t
        self.instant, self.done_until = saved.t, saved.done_until_t
        self._read_after = saved.done_until_t
        log.info("Fusion: resumed run %d, stopped %.1f s ago, with %d people.", run_id,
                 max(away, 0.0), len(self.stage.tracker.people))
        return run_id

    def _stepped_while_stopped(self, now: float, away: float, run_id: int) -> None:
        """The clock reads ``-away`` seconds before run ``run_id``'s last saved instant:
        it was set back while the service was stopped. Resumed, the run would fuse
        nothing until the clock caught up (an hour set back: an hour of no one counted).
        Its people's visits end there and a new run starts, as after a step seen live;
        frames stamped on the old clock, ahead of the new one, are left out."""
        log.warning("Fusion: the clock reads %.0f s before run %d's last instant (set back "
                    "while the service was stopped): its visits end there; a new run starts.",
                    -away, run_id)
        latest = self.db.execute("select max(t) from camera_frames").fetchone()[0]
        self._note_step(away, now, None if latest is None else float(latest))

    def _note_step(self, stepped: float, now: float, before: float | None) -> None:
        """Count a step of ``stepped`` seconds seen at ``now``, for the health; frames
        stamped up to ``before`` (on the old clock) are left out from then on."""
        self.clock_steps += 1
        self.last_step = (stepped, now, self._step_watch.monotonic())
        self._before_step = before

    def learn_image_sizes(self) -> None:
        """Take up each camera's frame size as its worker recorded it, when new or changed:
        the stage maps its footprint (the floor it sees) from it. Until then a camera's
        footprint is its ``calibration.image_size``'s, else its ``floor_area``, else the
        whole floor: with point-pair calibration and no ``floor_area``, every camera then
        "covers" everyone, so a silent camera's people were lost after ``lost_after_s``
        instead of held, and a walk between two views split in two."""
        for camera, size in read_camera_image_sizes(self.db).items():
            if camera in self.stage.matrices and self.image_sizes.get(camera) != size:
                self.stage.learn_image_size(camera, size)
                self.image_sizes[camera] = size
                log.info("Fusion: camera %s's frames are %d x %d pixels.", camera, *size)

    def fuse_ready(self) -> int:
        """Fuse the instants whose frames have all arrived, at most
        ``MAX_INSTANTS_PER_CALL`` (as many: more may be ready); returns instants fused."""
        mono = self._step_watch.monotonic()
        if mono - self._sizes_read_at >= SIZES_EVERY_S:  # a table read: not every turn
            self._sizes_read_at = mono
            self.learn_image_sizes()
        now = self.clock()
        stepped = self._step_watch.check(now)
        if stepped:
            self._clock_stepped(now, stepped)
        # frames are picked by when they were taken: a camera whose pictures arrive late
        # (its learnt delay) is waited for that much longer
        camera_time = self.stage.camera_time
        watermark = now - self.lag_s()
        # At the first read, what predates this service (or was fused before its
        # restart) is not even decoded: a fusion back after hours finds hours of frames.
        since, self._read_after = self._read_after, float("-inf")
        first_read = since > float("-inf")
        frames, self.last_row = read_new_camera_frames(self.db, self.last_row, after_t=since)
        self.frames_read += len(frames)
        for seen in frames:
            if seen.camera_id not in self.stage.matrices:
                continue  # a camera taken out of the config: its last frames go unfused
            if self._taken_before_step(seen, now):
                self.step_frames += 1
            elif camera_time(seen) > self.done_until:
                self.pending.append(seen)
            # At the first read, a frame taken by done_until (a late camera's frame is
            # stamped after: its delay) was fused before the restart, or predates the
            # service: it is not late.
            elif self.instant is not None and not first_read:
                self.late_frames[seen.camera_id] = self.late_frames.get(seen.camera_id, 0) + 1
        self.pending.sort(key=camera_time)  # batches of cameras interleave
        if self.instant is None:
            if not self.pending:
                return 0
            self.instant = camera_time(self.pending[0]) - self.step_s
        fused = 0
        while fused < MAX_INSTANTS_PER_CALL and self.instant + self.step_s <= watermark:
            self.instant += self.step_s
            edge = self.instant + self.step_s / 2
            due = [seen for seen in self.pending if camera_time(seen) <= edge]
            self.pending = [seen for seen in self.pending if camera_time(seen) > edge]
            self.done_until = edge
            latest: dict[str, FloorObservations] = {}
            for seen in due:  # in time order: the latest frame of each camera wins
                latest[seen.camera_id] = seen
            result = self.stage.step(self.frames, self.instant, latest.values())
            self.batch.append(result)
            self.frames += 1
            fused += 1
            self.last_people = len(result)
        return fused

    def lag_s(self) -> float:
        """How far behind the clock the instants are fused: the cameras' frames are
        waited for (``service.flush_interval_s + fusion.latency_s``), a late camera's
        that much longer (its delay)."""
        return self.wait_s + self.stage.delays.longest()

    def _clock_stepped(self, now: float, stepped: float) -> None:
        """The wall clock stepped by ``stepped`` seconds and now reads ``now``.

        The run ends at the old time and a new one starts on the new clock: a run's
        times only go forward (the visit builder reads its positions in time order),
        and no instant of a step forward is fused (it would fuse every instant of the
        hours NTP moves a clock without a real-time clock at boot, in one call). The
        people in view then are counted as leaving and coming back: a visit across the
        step would be as much longer (or shorter) than it was. Each camera's delay is
        kept (the streams', not the clock's). Frames taken before the step and read after
        it are left out (``step_frames``): their times are on the old clock."""
        log.warning("Fusion: the wall clock stepped %+.1f s; the store run %s ends at the "
                    "old time and a new run starts on the new clock.", stepped, self.run_id)
        self._note_step(stepped, now, now - stepped)  # the old clock's reading now
        self.step_frames += len(self.pending)
        self.pending = []
        if self.run_id is not None:
            self.flush(forget_frames=False)  # after a step back, new frames stamp earlier
            ended = self.run_id
            try:
                finish_run(self.db, ended, self.frames, "stopped", ended_at=now - stepped)
            except sqlite3.Error as error:
                log.warning("Fusion: cannot record the end of run %d: %s", ended, error)
            self._build_visits(ended)  # all of them: nothing resumes it
            names = ", ".join(c.id for c in self.site.cameras)
            self.run_id = start_run(self.db, STORE_TRACKS_ID, f"fusion of {names}", "fusion",
                                    started_at=now)
        self.stage.tracker.reset()
        self.stage.delays.shift(stepped)
        self.instant, self.frames = None, 0
        self.done_until = now - self.wait_s
        self._state_saved_t = float("-inf")

    def _taken_before_step(self, seen: FloorObservations, now: float) -> bool:
        """Whether ``seen`` was stamped on the clock before its last step: up to the old
        clock's reading at the step, and, after a step back, after the clock now."""
        before = self._before_step
        if before is None or seen.timestamp > before:
            return False
        assert self.last_step is not None
        return self.last_step[0] > 0 or seen.timestamp > now + AHEAD_S

    def flush(self, *, save_state: bool = False, forget_frames: bool = True) -> None:
        """Store the fused instants and forget the camera frames they came from (unless
        not ``forget_frames``); save the tracker's state every ``SAVE_STATE_EVERY_S`` (or
        now: ``save_state``)."""
        if self.run_id is None:
            return
        save = self.instant is not None and (
            save_state or self.instant - self._state_saved_t >= SAVE_STATE_EVERY_S)
        try:
            with self.db.atomic():  # a state saved is never ahead of the stored instants
                write_fused_points(self.db, self.run_id, self.batch, frames=self.frames)
                if save and self.instant is not None:
                    save_fusion_state(self.db, SavedFusion(
                        self.run_id, self.instant, self.done_until, self.frames,
                        self.stage.snapshot()))
                    self._state_saved_t = self.instant
            self.batch = []
            if self.instant is not None and forget_frames:
                delete_camera_frames(self.db, self.instant - KEEP_FUSED_FRAMES_S)
        except sqlite3.Error as error:  # a full or busy disk costs positions, not the service
            log.warning("Fusion: store-wide positions not stored this time: %s", error)
            self.batch = []

    def _build_visits(self, run_id: int, stored_until: float | None = None) -> None:
        """Visits of the store-wide tracks that ended; ``stored_until``: the running
        run's instants before it are all stored."""
        try:
            build_visits(self.db, self.visits, run_id=run_id, stored_until=stored_until)
        except (sqlite3.Error, StorageError) as error:
            log.warning("Fusion: visits not built this time: %s", error)

    def report_health(self) -> None:
        now = self.clock()
        lag = self.lag_s()
        # the cameras' frames are fused that far behind: a camera is live at that time
        live = sorted(self.stage.tracker.live_cameras(now - lag))
        down = sorted({c.id for c in self.site.cameras} - set(live))
        health = self.stage.tracker.calibration_health()
        checks = {f"{a}-{b}": check for (a, b), check in health.items()}
        pairs = {name: {
            "median_m": None if check.median_m is None else round(check.median_m, 3),
            "sightings": check.matched, "overlap_people": check.overlap,
            "unmatched_share": (None if check.unmatched_share is None
                                else round(check.unmatched_share, 3)),
            "disagrees": check.disagrees} for name, check in checks.items()}
        worst = max(((c.median_m, name) for name, c in checks.items()
                     if c.median_m is not None), default=None)
        # a pair that disagrees first (enough people sampled), then the highest share
        unmatched = max(((c.disagrees, c.unmatched_share, name) for name, c in checks.items()
                         if c.unmatched_share is not None), default=None)
        detail = {"people": self.last_people, "cameras_live": live, "cameras_down": down,
                  "cameras_live_count": len(live), "cameras_down_count": len(down),
                  "fused_frames": self.frames, "late_frames": dict(self.late_frames),
                  "calibration_pairs": pairs,
                  "calibration_worst_pair": worst[1] if worst else None,
                  "calibration_worst_median_m": round(worst[0], 3) if worst else None,
                  "calibration_worst_unmatched_pair": unmatched[2] if unmatched else None,
                  "calibration_worst_unmatched_share": (round(unmatched[1], 3)
                                                        if unmatched else None),
                  "calibration_disagrees": any(c.disagrees for c in checks.values()),
                  "people_held": self.stage.tracker.held_count(), "lag_s": round(lag, 2),
                  "clock_steps": self.clock_steps, "clock_step_frames": self.step_frames,
                  "clock_step_s": round(self.last_step[0], 1) if self.last_step else None,
                  "clock_step_at": self.last_step[1] if self.last_step else None,
                  **self.stage.delays.health_detail()}
        late = sorted(camera for camera, _ in self.late_frames.items()
                      - self._late_reported.items())
        self._late_reported = dict(self.late_frames)
        silent = [camera for camera in down if camera not in late]
        problems = []
        if silent:
            problems.append(f"Cameras {', '.join(silent)} send no pictures: the people in "
                            "their areas are kept as last seen until they are back.")
        if late:
            problems.append(f"Pictures of cameras {', '.join(late)} arrive more than "
                            f"{self.wait_s:g} s late and are left out: raise fusion.latency_s.")
        problems.extend(self.stage.delays.health_problems())
        disagreement = disagreement_problem(health)
        if disagreement is not None:
            problems.append(disagreement)
        if (self.last_step is not None
                and self._step_watch.monotonic() - self.last_step[2] < CLOCK_STEP_SHOWN_S):
            problems.append(_clock_step_problem(self.last_step[0], self.step_frames))
        if problems:
            status = "degraded"
            message = " ".join(problems)
        else:
            status = "ok"
            message = f"All {len(live)} cameras are combined into one count of people."
        self._write_health(status, message, detail)

    def _write_health(self, status: str, message: str, detail: dict | None = None) -> None:
        try:
            report_health(self.db, "fusion", status, message, detail)
        except sqlite3.Error as error:
            log.warning("Fusion: cannot record health: %s", error)

    def run(self, stop: threading.Event, on_alive: Callable[[], None] | None = None) -> None:
        """Fuse until ``stop`` is set; then store what is left and close the run."""
        self.start()
        assert self.run_id is not None
        service = self.site.service
        last_visits = last_health = time.monotonic()
        status = "failed"
        behind = False
        try:
            while not stop.wait(0.0 if behind else self.step_s):
                # Stored at once: the instants are already lag_s() old, and the page
                # counts people seen in the last web.live_window_s (5 s) before that.
                fused = self.fuse_ready()
                if fused:
                    self.flush()
                behind = fused >= MAX_INSTANTS_PER_CALL  # catching up: no wait
                now = time.monotonic()
                if now - last_visits >= service.visits_interval_s:
                    self._build_visits(self.run_id, stored_until=self.instant)
                    last_visits = now
                if now - last_health >= service.health_interval_s:
                    self.report_health()
                    last_health = now
                if on_alive is not None:
                    on_alive()
            status = "stopped"
        finally:
            self.finish(status)

    def finish(self, status: str = "stopped") -> None:
        """Store what is left and end the run as ``status``.

        Stopped, only the visits that ended are built: a service back within
        ``fusion.down_hold_s`` resumes the run with the people in view (a restart must
        not split their visits); one that is not builds theirs then, as last seen. A run
        that failed is never resumed: every visit of it is built now."""
        assert self.run_id is not None
        self.flush(save_state=True)
        self._build_visits(self.run_id, stored_until=self.instant)
        try:
            finish_run(self.db, self.run_id, self.frames, status)
        except sqlite3.Error as error:
            log.warning("Fusion: cannot record the end of run %d: %s", self.run_id, error)
        if status != "stopped":  # nothing resumes it, nor builds it later (ended_runs_to_build)
            self._build_visits(self.run_id)
        # A stopped fusion is down, not its last "ok", on the page and in edge status.
        self._write_health("down", "The fusion service is stopped: people are not "
                           "counted across cameras until it is back.")


def _clock_step_problem(stepped: float, frames_left_out: int) -> str:
    """The health's sentence about a step of the wall clock by ``stepped`` seconds."""
    size = abs(stepped)
    amount = (f"{size:.0f} s" if size < 120 else f"{size / 60:.0f} min" if size < 7200
              else f"{size / 3600:.1f} h")
    return (f"The clock was set {amount} {'forward' if stepped > 0 else 'back'}: the people "
            "in view then are counted as leaving and coming back, and the pictures taken "
            f"before it and not yet combined ({frames_left_out}) are left out. Check that the "
            "box keeps its time (NTP, its real-time clock).")
