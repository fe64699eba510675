"""One live camera: frames -> detections -> tracks -> floor positions -> the database.

Runs as its own process (``edge run camera --camera ID``, one systemd unit per
camera), so a camera that hangs or crashes takes nothing else with it.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import sqlite_utils

from edge.calibration import fit_camera_calibrations
from edge.config import SiteConfig
from edge.config.service import FRAME_IN_FLIGHT_S
from edge.config.site import STORE_TRACKS_ID
from edge.detection import load_detector
from edge.detection.session import worker_detector
from edge.errors import StorageError
from edge.fusion.stage import FusionStage
from edge.fusion.store import write_camera_frames, write_camera_image_size
from edge.paths import state_dir
from edge.pipeline import build_camera_pipeline, tracker_frame_rate
from edge.privacy.settings import record_service_start
from edge.records import FloorTracks
from edge.runtime.disk_guard import DiskGuard
from edge.runtime.frame_reader import FrameReader
from edge.runtime.keeping_up import KeepUp
from edge.runtime.single_instance import InstanceLock
from edge.runtime.systemd_notify import ServiceNotifier
from edge.storage.health import report_health
from edge.storage.trajectories import (
    close_dead_runs,
    close_running_runs,
    finish_run,
    record_frames,
    record_pause,
    resume_run,
    start_run,
    write_track_points,
)
from edge.video import describe_source
from edge.visits.analysis import VisitAnalyzer
from edge.visits.builder import build_visits, ended_runs_to_build

log = logging.getLogger(__name__)

@dataclass(slots=True)
class WorkerStats:
    frames_processed: int = 0
    points_written: int = 0
    raw_points_skipped: int = 0
    fps: float = 0.0
    # Why the last batch of positions was not stored (None once a batch is stored again).
    raw_write_problem: str | None = None


class CameraWorker:
    """The live loop of one camera.

    Args:
        site: the site config.
        camera_id: which camera.
        db: the shared database (WAL).
        stop: set to end the loop cleanly (SIGTERM does this).
        clock: the wall clock of the run's bookkeeping (tests pass their own; frames
            carry the reader's stamps).
    """

    def __init__(
        self,
        site: SiteConfig,
        camera_id: str,
        db: sqlite_utils.Database,
        stop: threading.Event | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.site = site
        self.clock = clock
        self.camera = site.camera(camera_id)
        self.db = db
        self.stop = stop or threading.Event()
        self.service = site.service
        # Several cameras share the cores: each worker takes its share of threads.
        detector = load_detector(worker_detector(site.detector, len(site.cameras)))
        self.model_name = detector.name
        self.pipeline = build_camera_pipeline(
            site, self.camera, fit_camera_calibrations(site)[self.camera.id], detector,
            frame_rate=tracker_frame_rate(self.camera, live=True),
        )
        self.reader = FrameReader(
            self.camera,
            backoff_initial_s=self.service.reconnect_backoff_initial_s,
            backoff_max_s=self.service.reconnect_backoff_max_s,
        )
        # Built here so that a bad segment spec stops the service before it starts.
        self.visits = VisitAnalyzer(site)
        self.disk = DiskGuard(_database_folder(db), site.storage.min_free_disk_mb)
        self.notifier = ServiceNotifier()
        self.stats = WorkerStats()
        self.component = f"camera:{self.camera.id}"
        # Several cameras: this one's sightings go to the fusion service, which keeps the
        # store-wide tracks and builds the visits; one camera: its own tracks are the store's.
        self.fusion = FusionStage(site) if site.fuses_cameras else None
        self._frame_size: tuple[int, int] | None = None  # the last frame's
        self._size_to_store: tuple[int, int] | None = None  # for the fusion service
        self.keep_up = KeepUp(self.reader.stats)
        self.run_id: int | None = None
        self.batch: list[FloorTracks] = []  # processed frames waiting for the next flush
        self._frames_before = 0  # a resumed run's frames, processed before this start
        self._stopped_t: float | None = None  # a resumed run's stop, until the first frame

    def close_interrupted_runs(self) -> list[int]:
        """Close this camera's runs left ``running`` by a worker that died and turn the
        cut-off tracks of every run that ended into visits; returns the runs closed now.

        Only call while holding the camera's lock: then no live worker owns those runs.
        Without this their open tracks never became visits and the runs were never purged.
        """
        closed = close_running_runs(self.db, self.camera.id)
        self._build_ended_runs()
        return closed

    def start(self) -> int:
        """Resume this camera's last run if it ended less than ``fusion.down_hold_s`` ago
        (:meth:`_resume`), else start a new one; either way, build the visits of every
        other run of the camera that ended with people in view. Returns the run's id."""
        close_running_runs(self.db, self.camera.id)  # a killed worker's: resumable too
        try:
            resumed = self._resume()
            self._build_ended_runs(keep=resumed)
            self.run_id = resumed if resumed is not None else start_run(
                self.db, self.camera.id, describe_source(self.camera.source), self.model_name,
                started_at=self.clock(),
            )
        except sqlite3.Error as error:
            raise StorageError(
                f"camera {self.camera.id}: cannot record the start of its run in the database: "
                f"{error}; free disk space or check the database"
            ) from None
        return self.run_id

    def _resume(self) -> int | None:
        """Take up this camera's last run where it stopped (or its worker was killed) on a
        one-camera site, when it can be; returns its id.

        The new tracker numbers its tracks after the run's, and the time the camera did
        not look is recorded as a pause of the run: the visit builder does not count it
        towards anyone having gone, so the people in view at the stop, seen again where
        they were, go on as the same visits (``edge.visits.pauses``). Not resumed: a run
        that failed (what failed may fail again), one of another stream (another view),
        or one that ended more than ``fusion.down_hold_s`` ago (its people may have left
        long ago: their visits end where it stopped). On a multi-camera site the fusion
        service keeps the store's people across restarts.
        """
        if self.fusion is not None:
            return None
        row = self.db.execute(
            "select id, ended_at, source, frames from runs where camera_id = ? "
            "and kind = 'live' order by id desc limit 1", [self.camera.id]).fetchone()
        if (row is None or row[0] not in ended_runs_to_build(self.db, self.camera.id)
                or row[2] != describe_source(self.camera.source)):
            return None
        run_id, stopped_t = int(row[0]), float(row[1])
        away = self.clock() - stopped_t
        if away > self.site.fusion.down_hold_s:
            log.info("Camera %s: run %d stopped %.0f s ago, longer than fusion.down_hold_s: "
                     "its people's visits end there; a new run starts.",
                     self.camera.id, run_id, away)
            return None
        resume_run(self.db, run_id)
        last_id = self.db.execute("select max(track_id) from track_points where run_id = ?",
                                  [run_id]).fetchone()[0]
        self.pipeline.tracker.number_after(int(last_id or 0))
        self._frames_before = int(row[3] or 0)
        self._stopped_t = stopped_t
        record_pause(self.db, run_id, stopped_t, self.clock())
        log.info("Camera %s: resumed run %d, stopped %.1f s ago.", self.camera.id, run_id,
                 max(away, 0.0))
        return run_id

    def _build_ended_runs(self, keep: int | None = None) -> None:
        """Build the visits of this camera's runs that ended without all of them built
        (but run ``keep``, resumed), also on a multi-camera site: a run of the days the
        camera was alone holds its tracks.

        On a one-camera site, also those of the store runs a fusion service left (the
        site had several cameras): no fusion service comes back to resume them, so the
        people it had in view would keep open visits for ever. A store run still
        ``running`` is closed first if its process is gone (killed, or the box rebooted);
        one whose service still runs is left to it. The same for the runs of a camera the
        site no longer has (removed, or renamed): no worker of theirs comes back either."""
        sources = [self.camera.id]
        if self.fusion is None:
            sources += [STORE_TRACKS_ID, *self._cameras_gone()]
            for source in sources[1:]:
                close_dead_runs(self.db, source)
        for source in sources:
            for run_id in ended_runs_to_build(self.db, source):
                if run_id != keep:
                    self._build(run_id)

    def _cameras_gone(self) -> list[str]:
        """The cameras with live runs in the database that the site no longer has."""
        configured = {camera.id for camera in self.site.cameras} | {STORE_TRACKS_ID}
        rows = self.db.execute("select distinct camera_id from runs where kind = 'live' "
                               "order by camera_id").fetchall()
        return [camera_id for (camera_id,) in rows if camera_id not in configured]

    def track(self, floor: FloorTracks) -> None:
        """Keep one processed frame's positions for the next :meth:`flush`."""
        if self._stopped_t is not None and self.run_id is not None:
            # The first frame of a resumed run: the pause ends when the camera looks again
            # (not when the worker started: a stream takes a moment to open), or when
            # fusion.down_hold_s let the people of the stop go.
            stopped, self._stopped_t = self._stopped_t, None
            try:
                record_pause(self.db, self.run_id, stopped,
                             min(floor.timestamp, stopped + self.site.fusion.down_hold_s))
            except sqlite3.Error as error:  # the pause then ends when the worker started
                log.warning("Camera %s: cannot record when it looked again: %s",
                            self.camera.id, error)
        self.batch.append(floor)
        self.stats.frames_processed += 1

    def see_frame_size(self, size: tuple[int, int]) -> None:
        """A frame's size ``(width, height)``. When it is new (the first frame, or a stream
        reopened at another resolution) on a multi-camera site, this worker's fusion stage
        takes it up (which side of the camera's horizon the floor is on), and the next
        flush records it for the fusion service, which maps from it the floor the camera
        sees (:meth:`edge.runtime.fusion_worker.FusionWorker.learn_image_sizes`)."""
        if self.fusion is None or size == self._frame_size:
            return
        self.fusion.learn_image_size(self.camera.id, size)
        self._frame_size = self._size_to_store = size

    def flush(self) -> None:
        """Store the positions kept since the last flush."""
        if self.batch and self.run_id is not None:
            self._flush(self.run_id, self.batch)
        self.batch = []

    def finish(self, status: str) -> None:
        """Store what is left and end the run as ``status``.

        Stopped, only the visits that ended are built: a worker back within
        ``fusion.down_hold_s`` resumes the run with the people in view (a restart must
        not split their visits); one that is not builds theirs then, as last seen. A run
        that failed is not resumed: every visit of it is built now."""
        assert self.run_id is not None
        self.flush()
        if status == "stopped":
            self._build_visits(self.run_id, stored_until=self.clock())
        try:
            finish_run(self.db, self.run_id, self.run_frames, status, ended_at=self.clock())
        except sqlite3.Error as error:  # the next start closes it as interrupted
            log.warning("Camera %s: cannot record the end of run %d: %s",
                        self.camera.id, self.run_id, error)
        if status != "stopped":
            self._build_visits(self.run_id)  # the run is over: every open track is a visit

    @property
    def run_frames(self) -> int:
        """The frames the run has processed (a resumed run's before this start too)."""
        return self._frames_before + self.stats.frames_processed

    def run(self) -> None:
        """Run until ``stop`` is set."""
        self.start()
        self.reader.start()
        self.notifier.ready(f"camera {self.camera.id} started")
        log.info("Camera %s started (%s).", self.camera.id, describe_source(self.camera.source))
        last_flush = last_health = last_visits = time.monotonic()
        window_start, window_frames = time.monotonic(), 0
        status = "failed"
        try:
            while not self.stop.is_set():
                frame = self.reader.next_frame(timeout=0.5)
                now = time.monotonic()
                if frame is not None:
                    self.see_frame_size(frame.size)
                    self.track(self.pipeline.process(frame))
                    window_frames += 1
                else:
                    self._watch_for_stall()
                if self.batch and (now - last_flush >= self.service.flush_interval_s):
                    self.flush()
                    last_flush = now
                if now - last_visits >= self.service.visits_interval_s:
                    # Positions not yet flushed are younger than the flush interval (plus
                    # a frame in flight): everything before that is stored.
                    assert self.run_id is not None
                    self._build_visits(self.run_id, stored_until=self.clock()
                                       - self.service.flush_interval_s - FRAME_IN_FLIGHT_S)
                    last_visits = now
                if now - last_health >= self.service.health_interval_s:
                    self._measure_window(window_frames, now - window_start)
                    window_start, window_frames = now, 0
                    self._report_health()
                    last_health = now
                self.notifier.alive()
            status = "stopped"
        finally:
            self.notifier.stopping()
            self.reader.stop()
            self.finish(status)
            self._write_health("down", f"Camera {self.camera.id} is stopped.")
            log.info("Camera %s stopped after %d frames.", self.camera.id,
                     self.stats.frames_processed)

    def _flush(self, run_id: int, batch: list[FloorTracks]) -> None:
        """Store a batch of positions, or count it as skipped: a full or busy database
        costs raw positions, never the camera (no crash, no restart loop)."""
        frames = self.run_frames  # the run's count, kept current for a kill -9
        if self.disk.raw_writes_allowed():
            try:
                if self.fusion is not None:
                    if self._size_to_store is not None:  # before the frames it is of
                        write_camera_image_size(self.db, self.camera.id, self._size_to_store,
                                                self.clock())
                        self._size_to_store = None
                    write_camera_frames(self.db, [self.fusion.observe(f) for f in batch])
                    record_frames(self.db, run_id, frames)
                    self.stats.points_written += sum(len(floor) for floor in batch)
                else:
                    self.stats.points_written += write_track_points(
                        self.db, run_id, batch, frames=frames
                    )
                self.stats.raw_write_problem = None
                return
            except sqlite3.Error as error:
                problem = f"the database cannot be written ({error})"
        else:
            problem = "the disk is nearly full"
            with contextlib.suppress(sqlite3.Error):  # counted again with the next batch
                record_frames(self.db, run_id, frames)
        skipped = sum(len(floor) for floor in batch)
        self.stats.raw_points_skipped += skipped
        if self.stats.raw_write_problem != problem:
            log.warning("Camera %s: tracked positions are not stored: %s.", self.camera.id, problem)
        self.stats.raw_write_problem = problem

    def _build_visits(self, run_id: int, stored_until: float | None = None) -> None:
        """Turn tracks that ended (gone ``visits.close_after_s``, plus ``stitch_max_gap_s`` for
        a continuation under a new id) into visits and traits
        (on a multi-camera site the fusion service does, from the store-wide tracks).
        ``stored_until``: the running run's positions before it are all stored."""
        if self.fusion is None:
            self._build(run_id, stored_until)

    def _build(self, run_id: int, stored_until: float | None = None) -> None:
        try:
            build_visits(self.db, self.visits, run_id=run_id, stored_until=stored_until)
        except (sqlite3.Error, StorageError) as error:  # busy or full: the next round catches up
            log.warning("Camera %s: visits not built this time: %s", self.camera.id, error)

    def _frame_age(self) -> float | None:
        last = self.reader.stats.last_frame_at
        return None if last is None else time.time() - last

    def _watch_for_stall(self) -> None:
        age = self._frame_age()
        if age is not None and age > self.service.stall_timeout_s and self.reader.stats.connected:
            log.warning("Camera %s sent no frame for %.0f s; restarting its stream.",
                        self.camera.id, age)
            self.reader.reopen()

    def _measure_window(self, frames: int, seconds: float) -> None:
        """Frames a second over the health window just ended, and whether the camera keeps
        up (:class:`~edge.runtime.keeping_up.KeepUp`)."""
        self.stats.fps = frames / seconds
        self.keep_up.measure(frames, seconds, self.reader.stats)

    def _detail(self) -> dict:
        reader = self.reader.stats
        age = self._frame_age()
        frames = max(self.pipeline.times.frames, 1)
        return {
            "fps": round(self.stats.fps, 2),
            "last_frame_age_s": None if age is None else round(age, 1),
            "reconnects": reader.reconnects,
            "frames_processed": self.stats.frames_processed,
            "frames_dropped": reader.frames_dropped,
            "behind_fps": self.keep_up.behind_fps and round(self.keep_up.behind_fps, 2),
            "detect_ms": round(1000 * self.pipeline.times.detect_s / frames, 1),
            "model": self.model_name,
            "raw_points_skipped": self.stats.raw_points_skipped,
            "connected": reader.connected,
            "last_error": reader.last_error,
        }

    def _report_health(self) -> None:
        reader = self.reader.stats
        age = self._frame_age()
        if not reader.connected:
            status, message = "down", f"Camera {self.camera.id} is not sending pictures; retrying."
        elif age is None or age > self.service.stall_timeout_s / 2:
            status, message = "degraded", f"Camera {self.camera.id} is slow to send pictures."
        elif self.stats.raw_write_problem is not None:
            problem = self.stats.raw_write_problem
            status = "degraded"
            message = f"{problem[0].upper()}{problem[1:]}: movement details are not stored."
        elif self.keep_up.behind:
            status = "degraded"
            message = (
                f"Camera {self.camera.id} is falling behind: it analyses {self.stats.fps:.1f} "
                f"pictures a second of the {self.keep_up.behind_fps:.1f} it should. The computer "
                "is too busy (more cameras than it can carry, or another program), so people "
                "may be missed."
            )
        else:
            status, message = "ok", f"Camera {self.camera.id} is working."
        self._write_health(status, message)
        self.notifier.status(f"{message} {self.stats.fps:.1f} frames/s")

    def _write_health(self, status: str, message: str) -> None:
        try:
            report_health(self.db, self.component, status, message, self._detail())
        except sqlite3.Error as error:  # a full disk must not stop the camera
            log.warning("Camera %s: cannot record health: %s", self.camera.id, error)


def _database_folder(db: sqlite_utils.Database) -> Path:
    """Folder of the database file: where raw writes would fill the disk."""
    for _, name, file in db.execute("pragma database_list").fetchall():
        if name == "main" and file:
            return Path(file).parent
    return state_dir()


def run_camera_worker(site: SiteConfig, camera_id: str, db: sqlite_utils.Database) -> None:
    """Entry point of ``edge run camera``: one instance per camera, clean stop on SIGTERM."""
    site.camera(camera_id)  # unknown camera: KeyError before anything starts
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    with InstanceLock(state_dir(), f"camera-{camera_id}"):
        record_service_start(db, site, f"service:camera-{camera_id}")
        CameraWorker(site, camera_id, db, stop).run()
