"""One camera's per-frame pipeline: frame -> detections -> tracks -> floor positions.

:func:`build_camera_pipeline` is the one place a camera's pipeline is put together,
for the live camera worker and both replays alike, with the one rule for the frame
rate its tracker is fed (:func:`tracker_frame_rate`).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import shapely

from edge.calibration import Homography
from edge.config import SiteConfig
from edge.config.vision import DEFAULT_FPS, CameraConfig
from edge.detection import Detector
from edge.feet import FootPoints
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


class CameraPipeline:
    """Runs the detector and tracker of one camera and places tracks on the floor.

    Args:
        camera_id: the camera's id in the site config.
        detector: the person detector, or None to feed precomputed detections.
        tracker: this camera's tracker (one per camera: ids are per camera).
        homography: the camera's image-to-floor mapping.
        floor_area: optional floor polygon (metres); detections whose feet map
            outside are dropped before tracking.
        feet: where each track stands in the image (:class:`edge.feet.FootPoints`);
            default: the bottom-centre of its box.
    """

    def __init__(
        self,
        camera_id: str,
        detector: Detector | None,
        tracker: ByteTracker,
        homography: Homography,
        floor_area: Sequence[tuple[float, float]] | None = None,
        *,
        feet: FootPoints | None = None,
    ) -> None:
        self.camera_id = camera_id
        self.feet = feet
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
            xy=self.homography.image_to_floor(
                tracks.anchors if self.feet is None else self.feet.anchors(tracks, timestamp)),
            detections=found,
        )
        self.times.track_s += time.perf_counter() - started
        self.times.frames += 1
        return floor

    def _inside_area(self, detections: Detections) -> Detections:
        if self.floor_area is None or len(detections) == 0:
            return detections
        xy = self.homography.image_to_floor(detections.anchors)
        inside = shapely.contains_xy(self.floor_area, xy[:, 0], xy[:, 1])
        if inside.all():
            return detections
        self.times.outside_area += int((~inside).sum())
        return detections.filter(inside)


def tracker_frame_rate(
    camera: CameraConfig, *, file_fps: float | None = None, stride: int = 1, live: bool = False
) -> float:
    """Frames per second that reach ``camera``'s tracker.

    Args:
        camera: the camera's config (its ``fps``, which overrides a file's own rate, and
            ``detect_fps``).
        file_fps: the rate a recording declares; None for a det.txt, which has none.
        stride: a recording is read every ``stride`` frames (``detect_fps``).
        live: a live stream, throttled to ``detect_fps`` as it comes.

    A recording: its rate (the camera's ``fps``, else the file's, else
    :data:`~edge.config.vision.DEFAULT_FPS`) divided by ``stride``. A live stream:
    the camera's :attr:`~edge.config.vision.CameraConfig.detection_rate`, else
    ``DEFAULT_FPS``.
    """
    if live:
        return camera.detection_rate or DEFAULT_FPS
    return (camera.fps or file_fps or DEFAULT_FPS) / stride


def build_camera_pipeline(
    site: SiteConfig,
    camera: CameraConfig,
    homography: Homography,
    detector: Detector | None = None,
    *,
    frame_rate: float,
) -> CameraPipeline:
    """The pipeline of ``camera``: its own tracker (``site.tracker``, fed ``frame_rate``
    frames per second, from :func:`tracker_frame_rate`), its calibration, its
    ``floor_area`` (people off the store floor are not tracked) and where each track
    stands (``site.feet``). ``detector`` None: the pipeline is fed detections (a det.txt)."""
    return CameraPipeline(camera.id, detector, ByteTracker(site.tracker, frame_rate),
                          homography, camera.floor_area,
                          feet=FootPoints(site.feet, homography))
