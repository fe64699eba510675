"""Recorded cameras fed to the live fusion service as camera workers would feed it, one
of them late: a stream whose pictures reach the box ``shift`` seconds after they were
taken has its frames stamped that much later (frames are stamped when read).

Each camera's MOTChallenge detections go through its own pipeline (tracker,
calibration) and the fusion's observation step, stamped ``start + k / fps`` (+ the
camera's shift), into ``camera_frames``; :class:`edge.runtime.fusion_worker.FusionWorker`
then fuses them on a clock of its own, at the recording's frame rate, so that every
fused instant is one frame of the ground truth.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import sqlite_utils

from edge.calibration import fit_camera_calibrations
from edge.config import SiteConfig
from edge.config.site import STORE_TRACKS_ID
from edge.fusion.stage import FusionStage
from edge.fusion.store import write_camera_frames
from edge.motformat import detections_by_frame
from edge.pipeline import build_camera_pipeline, tracker_frame_rate
from edge.records import FloorObservations
from edge.runtime.fusion_worker import FusionWorker

START = 1_800_000_000.0


def camera_frames(site: SiteConfig, detections: Mapping[str, Path],
                  shift: Mapping[str, float]) -> list[FloorObservations]:
    """Every camera's frames as its worker stores them, camera ``c``'s stamped
    ``shift[c]`` late; in stamp order."""
    homographies = fit_camera_calibrations(site)
    stage = FusionStage(site, homographies=homographies)
    frames = []
    for camera in site.cameras:
        fps = tracker_frame_rate(camera)
        pipeline = build_camera_pipeline(site, camera, homographies[camera.id], frame_rate=fps)
        for index, found in detections_by_frame(detections[camera.id]):
            stamp = START + index / fps + shift.get(camera.id, 0.0)
            frames.append(stage.observe(pipeline.process_detections(found, index, stamp)))
    return sorted(frames, key=lambda seen: seen.timestamp)


def fuse_live(site: SiteConfig, db: sqlite_utils.Database,
              frames: list[FloorObservations]) -> FusionWorker:
    """The fusion service over ``frames``: its clock runs in half-second steps from the
    first stamp until every frame is fused; the run is finished."""
    write_camera_frames(db, frames)
    last = max(seen.timestamp for seen in frames)
    now = [min(seen.timestamp for seen in frames)]
    worker = FusionWorker(site, db, clock=lambda: now[0])
    worker.start()
    while now[0] < last + worker.wait_s + 10.0:
        now[0] += 0.5
        worker.fuse_ready()
        worker.flush()
    worker.finish()
    return worker


def fused_rows(db: sqlite_utils.Database, run_id: int, fps: float) -> np.ndarray:
    """The run's store-wide positions as ``frame,id,x,y`` rows (frames from 1: frame
    ``k`` at ``START + (k - 1) / fps``), instants off the frame times left out."""
    rows = np.array(db.execute(
        "select t, track_id, x, y from track_points where camera_id = ? and run_id = ?",
        [STORE_TRACKS_ID, run_id]).fetchall(), dtype=np.float64).reshape(-1, 4)
    position = (rows[:, 0] - START) * fps
    frame = np.round(position)
    on_frame = np.abs(position - frame) < 0.25  # instants start at a corrected stamp
    return np.c_[frame[on_frame] + 1, rows[on_frame, 1:]]
