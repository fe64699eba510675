"""One camera's per-frame pipeline: frame -> detections -> tracks -> floor positions."""

from __future__ import annotations

import time
from dataclasses import dataclass

from edge.calibration import Homography
from edge.detection import Detector
from edge.records import Detections, FloorTracks, Frame, Tracks
from edge.tracking import ByteTracker


@dataclass(slots=True)
class StageTimes:
    """Cumulative seconds spent per stage, for health and benchmarks."""

    detect_s: float = 0.0
    track_s: float = 0.0
    frames: int = 0


class CameraPipeline:
    """Runs the detector and tracker of one camera and places tracks on the floor."""

    def __init__(
        self,
        camera_id: str,
        detector: Detector | None,
        tracker: ByteTracker,
        homography: Homography,
    ) -> None:
        self.camera_id = camera_id
        self.detector = detector
        self.tracker = tracker
        self.homography = homography
        self.times = StageTimes()

    def process(self, frame: Frame) -> FloorTracks:
        """Detect, track and place the people of one frame."""
        if self.detector is None:
            raise RuntimeError("this pipeline has no detector; use process_detections()")
        started = time.perf_counter()
        detections = self.detector.detect(frame.image)
        self.times.detect_s += time.perf_counter() - started
        return self.process_detections(detections, frame.index, frame.timestamp)

    def process_detections(
        self, detections: Detections, frame_index: int, timestamp: float
    ) -> FloorTracks:
        """Track and place precomputed detections (e.g. from a MOTChallenge det.txt)."""
        started = time.perf_counter()
        tracks: Tracks = self.tracker.update(detections, timestamp)
        floor = FloorTracks(
            camera_id=self.camera_id,
            frame_index=frame_index,
            timestamp=timestamp,
            tracks=tracks,
            xy=self.homography.image_to_floor(tracks.anchors),
        )
        self.times.track_s += time.perf_counter() - started
        self.times.frames += 1
        return floor
