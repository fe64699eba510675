"""One camera's per-frame pipeline: frame -> detections -> tracks -> floor positions."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import shapely

from edge.calibration import Homography
from edge.detection import Detector
from edge.records import Detections, FloorTracks, Frame, Tracks
from edge.tracking import ByteTracker


@dataclass(slots=True)
class StageTimes:
    """Cumulative seconds and counts per stage, for health and benchmarks.

    Attributes:
        detect_s: seconds in the detector (pre-processing, network, decoding, NMS).
        track_s: seconds in the area filter, the tracker and the floor mapping.
        frames: frames processed.
        outside_area: detections dropped because their feet were outside the
            camera's ``floor_area``.
    """

    detect_s: float = 0.0
    track_s: float = 0.0
    frames: int = 0
    outside_area: int = 0


def feet(xyxy: np.ndarray) -> np.ndarray:
    """``(n, 2)`` bottom-centre of each xyxy box: where the person stands."""
    xyxy = np.asarray(xyxy, dtype=np.float64).reshape(-1, 4)
    return np.stack([(xyxy[:, 0] + xyxy[:, 2]) / 2.0, xyxy[:, 3]], axis=1)


class CameraPipeline:
    """Runs the detector and tracker of one camera and places tracks on the floor.

    Args:
        camera_id: the camera's id in the site config.
        detector: the person detector, or None to feed precomputed detections.
        tracker: this camera's tracker (one per camera: ids are per camera).
        homography: the camera's image-to-floor mapping.
        floor_area: optional floor polygon (metres); detections whose feet map
            outside are dropped before tracking.
    """

    def __init__(
        self,
        camera_id: str,
        detector: Detector | None,
        tracker: ByteTracker,
        homography: Homography,
        floor_area: Sequence[tuple[float, float]] | None = None,
    ) -> None:
        self.camera_id = camera_id
        self.detector = detector
        self.tracker = tracker
        self.homography = homography
        self.floor_area = shapely.Polygon(floor_area) if floor_area else None
        if self.floor_area is not None:
            shapely.prepare(self.floor_area)
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
        found = detections
        detections = self._inside_area(detections)
        tracks: Tracks = self.tracker.update(detections, timestamp)
        floor = FloorTracks(
            camera_id=self.camera_id,
            frame_index=frame_index,
            timestamp=timestamp,
            tracks=tracks,
            xy=self.homography.image_to_floor(tracks.anchors),
            detections=found,
        )
        self.times.track_s += time.perf_counter() - started
        self.times.frames += 1
        return floor

    def _inside_area(self, detections: Detections) -> Detections:
        if self.floor_area is None or len(detections) == 0:
            return detections
        xy = self.homography.image_to_floor(feet(detections.xyxy))
        inside = shapely.contains_xy(self.floor_area, xy[:, 0], xy[:, 1])
        if inside.all():
            return detections
        self.times.outside_area += int((~inside).sum())
        return detections.filter(inside)
