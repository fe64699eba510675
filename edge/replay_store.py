"""Replay every camera of a site together, on one clock, through the fusion stage into
store-wide floor tracks.

Each camera runs its own pipeline (detector or MOTChallenge detections, tracker,
calibration) and hands its frames' floor observations to the fusion stage. The
cameras share one clock: frame ``k`` of a camera (0-based) is at ``k / fps`` seconds
from the start, each camera at its own ``fps``. The fusion fuses one instant per
frame of the fastest camera, with every camera's latest frame at or before it (its
time less its camera's delay, :mod:`edge.fusion.delays`);
fused frame ``j`` (numbered ``j + 1`` in ``--floor-out``, as MOTChallenge frames)
is the fastest camera's frame ``j``. A camera whose recording ends before the others
goes *down* from then on: the people in its area are held, not made to leave.

Stored: one run with camera id ``store`` (:data:`STORE_TRACKS_ID`) whose
``track_points`` are the fused tracks (floor positions only; no box). Visits,
footfall, dwell, occupancy and the aggregates read those.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import sqlite_utils

from edge.calibration import fit_camera_calibrations
from edge.config import SiteConfig
from edge.config.site import STORE_TRACKS_ID
from edge.config.vision import CameraConfig
from edge.detection import Detector, load_detector
from edge.errors import SourceError
from edge.fusion.pair_check import PairHealth
from edge.fusion.stage import FusionStage
from edge.motformat import detections_by_frame, read_mot, write_floor_rows
from edge.outputs import ensure_writable, open_output
from edge.pipeline import CameraPipeline, build_camera_pipeline, tracker_frame_rate
from edge.records import Detections, FloorObservations, Frame, FusedTracks
from edge.replay import StoredFrames
from edge.storage.trajectories import start_run, write_fused_points
from edge.video import VideoSource, describe_source, is_live_source

log = logging.getLogger(__name__)



@dataclass(slots=True)
class CameraStream:
    """One camera's frames on the shared clock, and its pipeline."""

    camera: CameraConfig
    fps: float
    frames: Iterator[tuple[int, object]]  # (frame index, Frame or Detections)
    pipeline: CameraPipeline
    source_name: str
    total: int | None
    video: VideoSource | None = None
    pending: tuple[int, object] | None = None
    done: int = 0
    ended: bool = False

    def next_time(self) -> float | None:
        """Clock time (s) of the next frame, or None at the end."""
        if self.pending is None and not self.ended:
            self.pending = next(self.frames, None)  # type: ignore[arg-type]
            self.ended = self.pending is None
        return None if self.pending is None else self.pending[0] / self.fps


@dataclass(frozen=True, slots=True)
class StoreReplaySummary:
    """What a store replay did."""

    run_id: int
    cameras: tuple[str, ...]
    frames: int
    tracks: int
    track_points: int
    seconds: float
    camera_frames: dict[str, int] = field(default_factory=dict)
    lonely_cameras: tuple[str, ...] = ()
    calibration_health: dict[tuple[str, str], PairHealth] = field(default_factory=dict)

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


def replay_store(
    site: SiteConfig,
    db: sqlite_utils.Database,
    *,
    detections: Mapping[str, Path] | None = None,
    floor_out: Path | None = None,
    start_time: float | None = None,
    max_frames: int | None = None,
    progress=None,
) -> StoreReplaySummary:
    """Replay every camera of ``site`` together into store-wide tracks.

    Args:
        site: a site with two or more cameras.
        db: where the fused tracks are written.
        detections: per camera id, a MOTChallenge ``det.txt`` to use instead of its
            video (frames from 1 on the shared clock, the camera's ``fps`` giving time).
        floor_out: also write the fused tracks as ``frame,track_id,x,y`` rows here.
        start_time: epoch seconds of the clock's start (default: as if the longest
            recording had just ended).
        max_frames: stop after this many fused frames.
        progress: called as ``progress(frames_done, frames_total_or_None)``.

    Raises:
        SourceError: a camera has neither a file source nor detections, or a
            detections id is not a camera of the site.
    """
    detections = dict(detections or {})
    unknown = sorted(set(detections) - {c.id for c in site.cameras})
    if unknown:
        raise SourceError(
            f"--detections names {', '.join(unknown)}, not a camera of the site (cameras: "
            f"{', '.join(c.id for c in site.cameras)})"
        )
    homographies = fit_camera_calibrations(site)
    if floor_out is not None:  # before minutes of work; written in place only on success
        ensure_writable(floor_out, "floor tracks")
    detector: Detector | None = None
    streams: list[CameraStream] = []
    with contextlib.ExitStack() as stack:
        for camera in site.cameras:
            if camera.id not in detections and detector is None:
                detector = load_detector(site.detector)
            stream = _open_stream(site, camera, detections.get(camera.id), detector,
                                  homographies)
            if stream.video is not None:
                stack.enter_context(stream.video)
            streams.append(stream)
        sizes = {s.camera.id: (s.video.info.width, s.video.info.height)
                 for s in streams if s.video is not None}
        stage = FusionStage(site, sizes, homographies)
        lonely = tuple(stage.lonely_cameras())
        for camera_id in lonely:
            log.warning("Camera %s sees no floor that another camera sees: people walking "
                        "out of its view are followed by motion alone.", camera_id)
        fastest = max(s.fps for s in streams)
        totals = [s.total * fastest / s.fps for s in streams if s.total is not None]
        total = int(round(max(totals))) if len(totals) == len(streams) else None
        if max_frames is not None:
            total = min(total, max_frames) if total is not None else max_frames
        if start_time is None:
            start_time = time.time() - (total or 0) / fastest
        sources = ", ".join(f"{s.camera.id}={s.source_name}" for s in streams)
        model = detector.name if detector is not None else "det.txt"
        run_id = start_run(db, STORE_TRACKS_ID, sources, model, kind="replay")
        stored: StoredFrames[FusedTracks] = StoredFrames(
            functools.partial(write_fused_points, db, run_id), total, progress)
        stack.enter_context(stored.closing_run(db, run_id))
        out = open_output(floor_out, "floor tracks")  # put in place before the run is done
        if out is not None:
            stack.enter_context(out)
        track_ids: set[int] = set()
        started = time.perf_counter()
        while max_frames is None or stored.done < max_frames:
            now = stored.done / fastest
            observations = _frames_until(streams, now + 0.5 / fastest, start_time, stage)
            if observations is None:
                break
            fused = stage.step(stored.done, start_time + now, observations)
            track_ids.update(int(i) for i in fused.track_id)
            if out is not None:
                write_floor_rows(out, fused)
            stored.add(fused)
        if stored.done == 0:  # inside the block: the output is dropped, not put in place
            raise SourceError("no camera of the site held a readable frame")
    return StoreReplaySummary(
        run_id=run_id,
        cameras=tuple(s.camera.id for s in streams),
        frames=stored.done,
        tracks=len(track_ids),
        track_points=stored.points,
        seconds=time.perf_counter() - started,
        camera_frames={s.camera.id: s.done for s in streams},
        lonely_cameras=lonely,
        calibration_health=stage.tracker.calibration_health(),
    )


def _frames_until(
    streams: list[CameraStream], until: float, start_time: float, stage: FusionStage
) -> list[FloorObservations] | None:
    """Run every camera's frames up to clock time ``until`` through its pipeline; the
    latest frame's observations of each camera. None once every camera has ended."""
    observations = []
    if all(s.next_time() is None for s in streams):
        return None
    for stream in streams:
        latest = None
        delay = stage.delays.delay(stream.camera.id)  # a frame's stamp less its camera's delay
        while (when := stream.next_time()) is not None and when - delay < until:
            assert stream.pending is not None
            index, item = stream.pending
            stream.pending = None
            timestamp = start_time + when
            if isinstance(item, Frame):
                frame = Frame(item.camera_id, item.index, timestamp, item.image)
                floor = stream.pipeline.process(frame)
            else:
                floor = stream.pipeline.process_detections(item, index, timestamp)  # type: ignore[arg-type]
            stream.done += 1
            latest = floor
        if latest is not None:
            observations.append(stage.observe(latest))
    return observations


def _open_stream(
    site: SiteConfig,
    camera: CameraConfig,
    detections: Path | None,
    detector: Detector | None,
    homographies: Mapping,
) -> CameraStream:
    if detections is not None:
        fps = tracker_frame_rate(camera)
        rows = read_mot(detections)  # errors now, with the file's name, not mid-replay
        per_frame: Iterator[tuple[int, Detections]] = detections_by_frame(detections)
        pipeline = build_camera_pipeline(site, camera, homographies[camera.id], frame_rate=fps)
        return CameraStream(camera, fps, per_frame, pipeline, str(detections),  # type: ignore[arg-type]
                            int(rows[:, 0].max()))
    if is_live_source(camera.source):
        raise SourceError(
            f"camera {camera.id}: its source {describe_source(camera.source)} is a live "
            f"stream, not a recording; give its recording with --detections "
            f"{camera.id}=det.txt, or replay the cameras whose sources are files"
        )
    video = VideoSource(camera.id, camera.source, fps=camera.fps, detect_fps=camera.detect_fps,
                        calibration=camera.calibration)
    fps = tracker_frame_rate(camera, file_fps=video.info.fps, stride=video.stride)
    pipeline = build_camera_pipeline(site, camera, homographies[camera.id], detector,
                                     frame_rate=fps)
    frames = ((i, frame) for i, frame in enumerate(video))
    total = -(-video.info.frame_count // video.stride) if video.info.frame_count else None
    return CameraStream(camera, fps, frames, pipeline, describe_source(camera.source),  # type: ignore[arg-type]
                        total, video)
