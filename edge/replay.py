"""Replay a recorded video (or a MOTChallenge det.txt) through one camera's pipeline
into the local database."""

from __future__ import annotations

import contextlib
import functools
import logging
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Generic, TypeVar

import sqlite_utils

from edge.annotate import Annotator
from edge.annotated_video import AnnotatedVideo
from edge.calibration import fit_camera_calibrations
from edge.config import SiteConfig
from edge.detection import load_detector
from edge.errors import SourceError
from edge.motformat import detections_by_frame, read_mot, write_floor_rows, write_mot
from edge.outputs import ensure_writable, open_output
from edge.pipeline import build_camera_pipeline, tracker_frame_rate
from edge.records import FloorTracks
from edge.storage.trajectories import finish_run, start_run, write_track_points
from edge.video import VideoSource, describe_source, is_live_source

WRITE_BATCH_FRAMES = 50
FRAME_COUNT_SLACK = 2  # container headers may miscount by a frame or two

R = TypeVar("R")
log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ReplaySummary:
    """What a replay did."""

    run_id: int
    camera_id: str
    frames: int
    tracks: int
    track_points: int
    seconds: float
    read_failures: int
    detect_ms_per_frame: float
    track_ms_per_frame: float
    expected_frames: int | None = None
    outside_area: int = 0
    annotated_frames: int = 0
    tracker_fps: float = 0.0  # frames per second fed to the tracker (after detect_fps)

    @property
    def ended_early(self) -> bool:
        """The file held fewer frames than its header announced (truncated or damaged)."""
        return (
            self.expected_frames is not None
            and self.frames + FRAME_COUNT_SLACK < self.expected_frames
        )

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


Progress = Callable[[int, int | None], None]


@dataclass
class StoredFrames(Generic[R]):
    """A replay's processed frames, stored :data:`WRITE_BATCH_FRAMES` at a time.

    Attributes:
        write: stores a batch and returns the rows written, called as
            ``write(batch, frames=done)`` (:func:`write_track_points` or
            ``write_fused_points`` with the database and run id bound), so that the
            run's frame count is stored with each batch.
        total: the frames expected (None when unknown), for ``progress``.
        progress: called as ``progress(frames_done, total)`` after every frame.
    """

    write: Callable[..., int]
    total: int | None
    progress: Progress | None
    done: int = 0    # frames added
    stored: int = 0  # frames whose rows are stored
    points: int = 0  # rows stored
    _batch: list[R] = field(default_factory=list, init=False, repr=False)

    def add(self, frame: R) -> None:
        """Count ``frame``; store the batch when it is full."""
        self._batch.append(frame)
        self.done += 1
        if len(self._batch) >= WRITE_BATCH_FRAMES:
            self.flush()
        if self.progress is not None:
            self.progress(self.done, self.total)

    def flush(self) -> None:
        """Store what is batched (and the frame count, even when nothing is)."""
        self.points += self.write(self._batch, frames=self.done)
        self.stored = self.done
        self._batch = []

    def flush_after_failure(self) -> None:
        """Store what is batched if the database still can (the run stopped: Ctrl-C,
        SIGTERM, a bad frame), so what was processed is kept; ``stored`` says how much
        was."""
        try:
            self.flush()
        except (sqlite3.Error, OSError) as error:
            log.warning("The last %d frames' positions could not be stored: %s",
                        self.done - self.stored, error)

    @contextlib.contextmanager
    def closing_run(self, db: sqlite_utils.Database, run_id: int) -> Iterator[None]:
        """Close run ``run_id`` when the block ends: ``done`` once every frame is stored,
        else ``failed`` (an error, an output that could not be put in place, Ctrl-C or
        SIGTERM: a live service never takes a failed replay run up) with what could
        still be stored. Enter it before the outputs, so that it sees their failures."""
        status = "failed"
        try:
            yield
            self.flush()
            status = "done"
        except BaseException:
            self.flush_after_failure()
            raise
        finally:
            finish_run(db, run_id, self.stored, status)


def replay(
    site: SiteConfig,
    db: sqlite_utils.Database,
    *,
    camera_id: str | None = None,
    video: str | None = None,
    detections: Path | None = None,
    mot_out: Path | None = None,
    floor_out: Path | None = None,
    start_time: float | None = None,
    progress: Progress | None = None,
    max_frames: int | None = None,
    annotate: Path | None = None,
    pixelate_people: bool = True,
) -> ReplaySummary:
    """Run one camera's recording through detection, tracking and calibration.

    Args:
        site: the site config; gives the camera's calibration, detector and tracker.
        db: where the floor trajectories are written.
        camera_id: which camera (default: the first in the site config).
        video: a recording to use instead of the camera's configured source.
        detections: a MOTChallenge ``det.txt`` to track instead of running the detector.
        mot_out: also write the tracks in MOTChallenge format here.
        floor_out: also write the floor tracks as ``frame,track_id,x,y`` rows here.
        start_time: epoch seconds of the first frame. Default: the recording as if it
            had just ended, so that no position is stamped in the future.
        progress: called as ``progress(frames_done, frames_total_or_None)``.
        max_frames: stop after this many frames (benchmarks, quick looks).
        annotate: also write the recording, annotated (boxes, ids, zones, lines, each
            person's zone and dwell), as an mp4 here. Needs video frames, so not with
            ``detections``.
        pixelate_people: pixelate every detected person in the annotated video. Only
            an engineer's debug mode turns this off (see :mod:`edge.debug_modes`).

    A file that ends before its header says (truncated, damaged) is processed as far
    as it can be read; the summary's ``ended_early`` says so.
    """
    called_at = time.time()  # "now" for the time stamps: before minutes of set-up on a busy box
    if not site.cameras:
        raise SourceError("the site config has no cameras to replay")
    camera = site.camera(camera_id) if camera_id else site.cameras[0]
    homography = fit_camera_calibrations(site)[camera.id]
    if annotate is not None and detections is not None:
        raise SourceError(
            "an annotated video needs the recording's frames; replay the video instead of "
            "a det.txt (drop --detections)"
        )
    # Outputs checked before minutes of work, not after; written to temporary files and
    # put in place only when the replay succeeds, so a bad input keeps the earlier files.
    for path, what in ((annotate, "annotated video"), (mot_out, "tracks"),
                       (floor_out, "floor tracks")):
        if path is not None:
            ensure_writable(path, what)

    if detections is not None:
        fps = tracker_frame_rate(camera)
        detector = None
        per_frame = list(detections_by_frame(detections))
        first = called_at - len(per_frame) / fps if start_time is None else start_time
        frames: Iterator[tuple[int, float, object]] = (
            (index, first + index / fps, dets) for index, dets in per_frame
        )
        source_name, model_name, total, source = str(detections), "det.txt", None, None
    else:
        source = VideoSource(
            camera.id,
            video or camera.source,
            fps=camera.fps,
            start_time=start_time,
            detect_fps=camera.detect_fps,
            calibration=camera.calibration,
        )
        fps = tracker_frame_rate(camera, file_fps=source.info.fps, stride=source.stride)
        detector = load_detector(site.detector)
        frames = ((f.index, f.timestamp, f) for f in source)
        source_name, model_name = describe_source(video or camera.source), detector.name
        total = source.info.frame_count
    video_out = None
    if annotate is not None and source is not None:
        annotator = Annotator(site.floor, homography, pixelate_people=pixelate_people)
        video_out = AnnotatedVideo(annotate, annotator, source.info.fps / source.stride)

    pipeline = build_camera_pipeline(site, camera, homography, detector, frame_rate=fps)
    run_id = start_run(db, camera.id, source_name, model_name, kind="replay")
    stored: StoredFrames[FloorTracks] = StoredFrames(
        functools.partial(write_track_points, db, run_id), total, progress)
    track_ids: set[int] = set()
    started = time.perf_counter()
    with contextlib.ExitStack() as stack:
        stack.enter_context(stored.closing_run(db, run_id))
        tracks_out = open_output(mot_out)
        if tracks_out is not None:
            stack.enter_context(tracks_out)
        floor_rows = open_output(floor_out, "floor tracks")
        if floor_rows is not None:
            stack.enter_context(floor_rows)
        if source is not None:
            stack.enter_context(source)
        if video_out is not None:
            stack.enter_context(video_out)
        for index, timestamp, item in frames:
            if max_frames is not None and stored.done >= max_frames:
                break
            if detector is None:
                floor = pipeline.process_detections(item, index, timestamp)  # type: ignore[arg-type]
            else:
                floor = pipeline.process(item)  # type: ignore[arg-type]
                if video_out is not None:
                    video_out.write(item, floor)  # type: ignore[arg-type]
            track_ids.update(int(i) for i in floor.tracks.tracker_id)
            if tracks_out is not None:
                write_mot(tracks_out, floor)
            if floor_rows is not None:
                write_floor_rows(floor_rows, floor)
            stored.add(floor)
        if stored.done == 0:  # inside the block: the outputs are dropped, not put in place
            raise SourceError(f"camera {camera.id}: {source_name} holds no readable frames")
    done = stored.done
    seconds = time.perf_counter() - started
    return ReplaySummary(
        run_id=run_id,
        camera_id=camera.id,
        frames=done,
        tracks=len(track_ids),
        track_points=stored.points,
        seconds=seconds,
        read_failures=source.read_failures if source is not None else 0,
        detect_ms_per_frame=1000 * pipeline.times.detect_s / max(done, 1),
        track_ms_per_frame=1000 * pipeline.times.track_s / max(done, 1),
        expected_frames=_expected_frames(source, max_frames),
        outside_area=pipeline.times.outside_area,
        annotated_frames=video_out.frames if video_out is not None else 0,
        tracker_fps=fps,
    )


def frames_to_cover(
    site: SiteConfig,
    *,
    camera_id: str | None = None,
    video: str | None = None,
    detections: Path | None = None,
    max_frames: int | None = None,
) -> int | None:
    """The last frame (numbered from 1, as in MOTChallenge files) that :func:`replay`
    with these arguments can reach, found without replaying: from the file's frame
    count (or det.txt's last frame), ``max_frames`` and the ``detect_fps`` stride.
    None when it cannot be known (a live stream without ``max_frames``).

    Raises:
        SourceError, DataFormatError: the recording or det.txt cannot be read (as the
            replay itself would fail).
    """
    if not site.cameras:
        raise SourceError("the site config has no cameras to replay")
    camera = site.camera(camera_id) if camera_id else site.cameras[0]
    stride, last = 1, None
    if detections is not None:
        last = int(read_mot(detections)[:, 0].max())
    elif not is_live_source(video or camera.source):
        with VideoSource(camera.id, video or camera.source, fps=camera.fps,
                         detect_fps=camera.detect_fps) as source:
            stride, last = source.stride, source.info.frame_count
    if max_frames is not None:
        # processed frame k is the source's frame k * stride, numbered k * stride + 1
        reach = max(max_frames, (max_frames - 1) * stride + 1)
        last = reach if last is None else min(last, reach)
    return last


def _expected_frames(source: VideoSource | None, max_frames: int | None) -> int | None:
    """Frames the file's header announces, after frame-rate limiting, up to
    ``max_frames`` (a truncated file read with ``--max-frames`` still says so)."""
    if source is None or source.info.frame_count is None:
        return None
    announced = -(-source.info.frame_count // source.stride)
    return announced if max_frames is None else min(announced, max_frames)
