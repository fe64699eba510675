"""Config of the cameras, the detector and the tracker."""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Annotated

import numpy as np
from pydantic import Field, ValidationInfo, field_validator, model_validator
from shapely.geometry import Polygon
from shapely.validation import explain_validity

from edge.config.base import StrictModel, checks_service

Point = tuple[float, float]

# Sources that are not a file on this box: network streams, USB cameras, manifest assets.
NOT_FILE_PREFIXES = ("asset:", "usb:", "/dev/")
USB_PREFIXES = ("usb:", "/dev/video")
# The camera source calibration/site.example.yaml ships: a service must not run with it.
SKELETON_SOURCE = "rtsp://camera-1.local:554/stream1"
# Largest detector input side: 4096 x 4096 is 97 times the default model's pixels and
# 192 MiB of input tensor alone; a typo of [320000, 640000] asked for 23.8 GiB.
MAX_INPUT_SIDE = 4096


def is_file_source(source: str) -> bool:
    """Whether a camera ``source`` is a local video file path (not a URL, device or asset)."""
    return "://" not in source and not source.startswith(NOT_FILE_PREFIXES)


def usb_device_index(source: str) -> int | None:
    """The device number of ``usb:N`` or ``/dev/videoN``; None if ``source`` is another
    kind of source or no device number (``usb:-1``, ``usb:front``)."""
    if not source.startswith(USB_PREFIXES):
        return None
    index = source.removeprefix("usb:").removeprefix("/dev/video")
    return int(index) if index.isascii() and index.isdigit() else None


# The frame rate assumed when neither the camera's ``fps`` nor its source gives one (a
# det.txt, a file whose header has none, a live stream): the one fallback of
# edge.video and edge.pipeline.tracker_frame_rate.
DEFAULT_FPS = 10.0


def detection_stride(fps: float, detect_fps: float | None) -> int:
    """Every how many frames the detector runs: whole frames, so a ``detect_fps`` that
    does not divide ``fps`` gets the next lower rate (``fps / stride``)."""
    if not detect_fps or detect_fps >= fps:
        return 1
    return max(1, math.ceil(fps / detect_fps - 1e-9))


class CalibrationConfig(StrictModel):
    """Image-to-floor calibration of one camera: matched point pairs, or the matrix.

    Either ``image_points`` with ``floor_points`` (the homography is fitted with
    ``cv2.findHomography`` when the site is loaded, and its reprojection error is
    reported by ``edge check-config``), or ``homography``: a 3x3 matrix mapping pixels
    to floor metres, as other calibration tools export it.
    """

    image_points: list[Point] | None = Field(None, title="Image points")
    """Pixel positions (x right, y down) of floor marks."""
    floor_points: list[Point] | None = Field(None, title="Floor points")
    """The same marks on the floor plan, in metres."""
    homography: tuple[tuple[float, float, float], tuple[float, float, float],
                      tuple[float, float, float]] | None = Field(
        None, title="Image-to-floor matrix",
    )
    """3x3 matrix taking a pixel (u, v, 1) to floor metres (x, y, 1) up to scale; instead of point
    pairs."""
    image_size: tuple[Annotated[int, Field(ge=16, le=16384)],
                      Annotated[int, Field(ge=16, le=16384)]] | None = Field(
        None, title="Frame size (width, height)",
    )
    """The camera's frame size in pixels: with it, the camera's footprint on the floor is known
    before its first frame (multi-camera sites)."""
    max_reprojection_error_m: float = Field(0.5, gt=0, title="Largest accepted fit error")
    """Refuse the calibration if any point reprojects further than this (metres)."""

    @model_validator(mode="after")
    def _pairs_or_matrix(self) -> CalibrationConfig:
        if self.homography is not None:
            if self.image_points is not None or self.floor_points is not None:
                raise ValueError(
                    "give either image_points and floor_points, or homography, not both"
                )
            _check_matrix(self.homography, self.image_size)
            return self
        if self.image_points is None or self.floor_points is None:
            raise ValueError(
                "give image_points and floor_points (matched marks), or homography (a 3x3 "
                "pixel-to-metre matrix)"
            )
        if len(self.image_points) != len(self.floor_points):
            raise ValueError(
                f"image_points has {len(self.image_points)} points but floor_points has "
                f"{len(self.floor_points)}; list the same marks in both"
            )
        if len(self.image_points) < 4:
            raise ValueError(
                f"a homography needs at least 4 point pairs, got {len(self.image_points)}"
            )
        return self


def _check_matrix(rows: tuple, image_size: tuple[int, int] | None) -> None:
    """Refuse a matrix no camera can have: not finite, singular, or (with the frame size
    known) one that maps no pixel of the frame onto the floor in front of the camera."""
    matrix = np.array(rows, dtype=np.float64)
    if not np.all(np.isfinite(matrix)):
        raise ValueError("the homography holds NaN or infinite numbers")
    singular = np.linalg.svd(matrix, compute_uv=False)
    if singular[0] == 0 or singular[-1] / singular[0] < 1e-12:
        raise ValueError(
            "the homography is singular (it squashes the image onto a line or a point); "
            "export the camera's image-to-floor matrix again"
        )
    if image_size is not None:
        width, height = image_size
        us, vs = np.meshgrid(np.linspace(0, width - 1, 9), np.linspace(0, height - 1, 9))
        w = np.c_[us.ravel(), vs.ravel(), np.ones(us.size)] @ matrix[2]
        bottom = float(np.array([width / 2.0, height - 1.0, 1.0]) @ matrix[2])
        if abs(bottom) < 1e-15 or not np.any(w * np.sign(bottom) > 0):
            raise ValueError(
                "the homography maps the bottom of the frame onto the horizon or behind the "
                "camera: is it the image-to-floor matrix (not floor-to-image), for this frame "
                "size?"
            )


class CameraConfig(StrictModel):
    """One camera: where its frames come from and how they map to the floor."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,31}$", title="Camera id")
    source: str = Field(title="Video source")
    """A file path (relative to the site file), `asset:NAME` from the model manifest, an rtsp://
    URL, or a USB device (`usb:0` or /dev/videoN)."""
    fps: float | None = Field(None, gt=0, le=120, title="Source frame rate")
    """Override a file's declared frame rate when it is wrong."""
    detect_fps: float | None = Field(None, gt=0, le=60, title="Detection frame rate")
    """Run the detector at most this often per second; None = every frame. Frames are skipped whole,
    so the rate used is fps / N, the next at or below this (fps 10: 10, 5, 3.33, 2.5...);
    check-config says which when it differs."""
    loop: bool = False
    """Loop a file source forever (demos)."""
    calibration: CalibrationConfig
    stream_delay_s: float = Field(0.0, ge=0, le=10, title="Stream delay")
    """How long after it was taken a frame of this camera reaches the box (seconds; RTSP buffering
    adds 0.2-2 s): frames are stamped when read, so on a site with several cameras the fusion
    takes this off the camera's frame times. It is the starting value; the fusion learns the real
    delay from the people this camera sees with others (fusion.learn_camera_delays), relative to
    the earliest camera."""
    floor_area: list[Point] | None = Field(None, title="Tracked floor area")
    """Polygon corners in floor metres, in order, not closed: only people whose feet map inside are
    tracked (leave out the street seen through the shop window, a staff-only corridor, a poster).
    None = everywhere the camera sees."""

    @property
    def detection_rate(self) -> float | None:
        """Frames per second the detector really runs at, when ``fps`` is known:
        ``fps / N``, the next whole-frame rate at or below ``detect_fps``."""
        if self.fps is None:
            return self.detect_fps
        return self.fps / detection_stride(self.fps, self.detect_fps)

    @field_validator("floor_area")
    @classmethod
    def _simple_area(cls, polygon: list[Point] | None) -> list[Point] | None:
        if polygon is None:
            return None
        if len(polygon) < 3:
            raise ValueError(f"floor_area needs at least 3 corners, got {len(polygon)}")
        shape = Polygon(polygon)
        if not shape.is_valid or shape.area <= 0:
            raise ValueError(f"floor_area is not a simple polygon: {explain_validity(shape)}")
        return polygon

    @field_validator("source")
    @classmethod
    def _resolve_relative_path(cls, value: str, info: ValidationInfo) -> str:
        context = info.context or {}
        camera_id = info.data.get("id")
        if value.startswith(USB_PREFIXES) and usb_device_index(value) is None:
            # Regression: usb:-1 passed, and the camera service retried it forever.
            raise ValueError("a USB camera is usb:N or /dev/videoN, N its device number "
                             "(0 for /dev/video0)")
        if value == SKELETON_SOURCE and checks_service(context, f"camera:{camera_id}"):
            raise ValueError(
                "still the placeholder of the site skeleton; set this camera's stream "
                "(rtsp://user:${CAMERA_PASSWORD}@host/path), usb:N or a video file")
        base_dir = context.get("base_dir")
        if base_dir is None or not is_file_source(value):
            return value
        path = Path(value).expanduser()
        path = path if path.is_absolute() else (Path(base_dir) / path).resolve()
        # Only where asked (check-config, the camera's own worker): a replay given another
        # video, or `edge status`, must work while a camera's file is missing.
        if checks_service(context, f"camera:{camera_id}") and not path.is_file():
            what = "is a folder, not a video file" if path.is_dir() else "does not exist"
            raise ValueError(
                f"the video file {path} {what}; fix the path (relative to the site file) "
                "or put the file there"
            )
        return str(path)


class DetectorConfig(StrictModel):
    """The ONNX person detector."""

    model: str = Field("yolox_nano_416x416", title="Model")
    """A model name from models/manifest.yaml, or a path to an .onnx file."""
    kind: str | None = Field(None, pattern="^(yolox|ssd)$")
    """Decoder for a model given by path (yolox or ssd); manifest models know theirs."""
    input_size: tuple[Annotated[int, Field(ge=32)], Annotated[int, Field(ge=32)]] | None = Field(
        None, title="Network input (height, width)",
    )
    """YOLOX runs at any multiple of 32 up to 4096; larger finds smaller, distant people, and costs
    memory and time with the square of the side. None = from each camera's frame size: 0.6 of it,
    aspect kept, so a 60-pixel person stays >= 36 input pixels, each side a multiple of 32, at most
    960 (640x360: 224x384; 1920x1080: 544x960); a model of one fixed size runs at its own."""
    confidence_threshold: float = Field(0.1, ge=0.0, le=1.0)
    """Drop detections scoring below this. Keep it low: the tracker uses weak boxes."""
    nms_iou_threshold: float = Field(0.45, gt=0.0, le=1.0)
    """Non-maximum suppression IoU."""
    threads: int | None = Field(None, ge=1, le=64)
    """onnxruntime intra-op threads per camera worker. None: one camera alone gets onnxruntime's
    choice (a thread per core); several share the cores out, at least one thread each, which
    takes less CPU a picture (edge.detection.session.worker_threads)."""

    @field_validator("input_size")
    @classmethod
    def _multiple_of_32(cls, value: tuple[int, int] | None) -> tuple[int, int] | None:
        if value is not None and max(value) > MAX_INPUT_SIDE:
            raise ValueError(f"input_size must be at most {MAX_INPUT_SIDE} per side: memory "
                             "and time grow with its square (416 to 1280 suit a shop floor)")
        if value is not None and (value[0] % 32 or value[1] % 32):
            nearest = [max(32, round(side / 32) * 32) for side in value]
            raise ValueError(f"input_size must be multiples of 32, e.g. {nearest}")
        return value


class FeetConfig(StrictModel):
    """Where a tracked person stands when the bottom of their box is not their feet.

    A detector boxes what it sees: a person whose legs are hidden behind someone else, a
    post or a shelf gets a box cut off above the hidden feet, and its bottom-centre lands
    metres further from the camera (edge.feet). Such a box is recognised against the
    track's own scale (its box height over how far its feet stand below the horizon,
    which is constant along a person's walk), and the feet are put that person's height
    below the box's top instead.
    """

    scale_window_s: float = Field(4.0, ge=0, le=60)
    """A track's scale is the median over its whole boxes of the last this many seconds (at
    least two of them). A box cut off for longer keeps its bottom-centre. 0 turns the correction
    off: every box's bottom-centre is where the person stands."""
    hidden_height_ratio: float = Field(0.8, gt=0, lt=1)
    """A box shorter than this fraction of the height the track's scale gives at its bottom edge
    may be cut off above hidden feet..."""
    hidden_edge_ratio: float = Field(2.0, ge=1, le=100)
    """...when its bottom edge moved at least this many times as far as its top edge since the
    track's last whole box: the head stayed where it was, the feet vanished. A box that shrank at
    both edges (a detector's other guess at the scale, as the MOTChallenge public detections make)
    or at the top (someone bending down) keeps its bottom-centre."""


class TrackerConfig(StrictModel):
    """ByteTrack-style multi-object tracker.

    Every time-dependent setting is in seconds and converted to frames with the frame
    rate the tracker is fed (``ByteTracker(config, frame_rate)``), so one config holds
    at 7 or 30 frames/s; every size-dependent one is relative to the box (IoU, body
    heights, height ratios), so it holds at any image size. Two per-frame keys of older
    configs are still accepted, with a warning: ``minimum_consecutive_frames`` (now
    ``minimum_track_age_s``) and ``velocity_noise`` (now ``acceleration_noise``).
    """

    track_activation_threshold: float = Field(0.5, ge=0, le=1)
    """Detections at or above this score are 'high': they match first and can start tracks. Scores
    are the detector's own scale: the defaults of the two thresholds suit the product's detector
    (YOLOX-Nano), chosen on the shared PETS and TUD-Campus videos (docs/vision.md); MOTChallenge's
    public det.txt scores on another scale (edge.evaluation.trackers.PUBLIC_DETECTION_SCORES)."""
    low_confidence_threshold: float = Field(0.1, ge=0, le=1)
    """Detections between this and the activation threshold only extend existing tracks (ByteTrack's
    second stage)."""
    new_track_threshold: float = Field(0.7, ge=0, le=1)
    """An unmatched detection starts a track only above this score (the detector's scale, as
    track_activation_threshold)."""
    high_match_iou: float = Field(0.1, gt=0, le=1)
    """Least IoU for a high-score detection to match a track."""
    low_match_iou: float = Field(0.5, gt=0, le=1)
    """Least IoU for a low-score detection to match a track."""
    unconfirmed_match_iou: float = Field(0.3, gt=0, le=1)
    """Least IoU for a tentative track to match again."""
    recovery_max_distance: float = Field(0.5, ge=0, le=10)
    """Second chance for confident detections IoU left unmatched: they may join an unmatched track
    whose predicted or last-seen centre is at most this many body heights away. Brings people back
    from occlusion; 0 turns it off."""
    direction_weight: float = Field(0.0, ge=0, le=2)
    """OC-SORT's observation-centric momentum, λ: in the IoU stages a pair's cost (1 - IoU) gains
    λ x (θ/π - 1/2), θ the angle between the way the track was last seen moving and the way from
    its last observed centre to the detection's (-λ/2 straight ahead, +λ/2 straight back; 0 where
    either way is unknown). Helps when two people cross and IoU with the predicted boxes cannot
    tell them apart. The IoU gates are unchanged; 0 turns it off."""
    direction_span_s: float = Field(0.2, gt=0, le=5)
    """Seconds back over which a track's way of moving is measured for direction_weight: from the
    oldest observation at most this old to the newest (or from the one before the newest, after a
    longer gap). Observations, not the Kalman state: steadier against detector jitter."""
    max_height_ratio: float = Field(2.0, ge=1, le=10)
    """A detection never matches a track whose last box is more than this factor taller or shorter:
    a box around a head or a half-hidden body would drag the track's size, speed and floor position
    off."""
    position_noise: float = Field(1.0 / 20, gt=0, le=1)
    """Kalman position noise, as a fraction of the box height: how far the motion model trusts a
    detection over its own prediction (mostly the detector's jitter, which does not depend on the
    frame rate)."""
    acceleration_noise: float = Field(1.2, gt=0, le=100)
    """How quickly a person's speed may change, in body heights per second per second (the Kalman
    velocity noise, converted to each frame rate). Higher follows turns and a moving camera sooner;
    lower holds a straight walk through occlusions."""
    minimum_track_age_s: float = Field(0.0, ge=0, le=10)
    """Seconds a new track must be seen, frame after frame, before it is reported (birth hysteresis:
    rounded to whole frames, at least one)."""
    lost_track_buffer_s: float = Field(2.0, ge=0, le=120)
    """Seconds a lost track is kept for re-association."""
    minimum_consecutive_frames: int | None = Field(None, ge=1, le=30)
    """Deprecated: frames a new track must be seen in a row. Counts frames, so it changes meaning
    with the frame rate; overrides minimum_track_age_s when set. Use minimum_track_age_s (N frames
    at F frames/s = N / F seconds)."""
    velocity_noise: float | None = Field(None, gt=0, le=1)
    """Deprecated: the Kalman velocity noise as a fraction of the box height per frame. Per frame,
    so it changes meaning with the frame rate; overrides acceleration_noise when set. Use
    acceleration_noise (V per frame at F frames/s = V x F x F body heights per second per second).
    """

    @model_validator(mode="after")
    def _warn_per_frame_keys(self) -> TrackerConfig:
        if self.minimum_consecutive_frames is not None:
            warnings.warn(
                f"tracker.minimum_consecutive_frames ({self.minimum_consecutive_frames}) is "
                "deprecated: it counts frames, so its meaning changes with the frame rate. "
                "Replace it with minimum_track_age_s: N frames at F frames/s is N / F "
                f"seconds (at 7 frames/s, {self.minimum_consecutive_frames / 7:.2f}). It "
                "overrides minimum_track_age_s until then.",
                FutureWarning, stacklevel=2,
            )
        if self.velocity_noise is not None:
            warnings.warn(
                f"tracker.velocity_noise ({self.velocity_noise}) is deprecated: it is per "
                "frame, so its meaning changes with the frame rate. Replace it with "
                "acceleration_noise: V at F frames/s is V x F x F (at 7 frames/s, "
                f"{self.velocity_noise * 49:.4g}). It overrides acceleration_noise until then.",
                FutureWarning, stacklevel=2,
            )
        return self

    def frames_to_confirm(self, frame_rate: float) -> int:
        """Matched frames in a row a new track needs at ``frame_rate`` (at least 1)."""
        if self.minimum_consecutive_frames is not None:
            return self.minimum_consecutive_frames
        return max(1, math.floor(self.minimum_track_age_s * frame_rate + 0.5))

    def velocity_weight(self, frame_rate: float) -> float:
        """The Kalman velocity noise per frame at ``frame_rate``, as a fraction of the box
        height: a change of speed of ``a`` body heights/s per second is ``a / F`` heights/s
        per frame, ``a / F**2`` heights per frame per frame."""
        if self.velocity_noise is not None:
            return self.velocity_noise
        return self.acceleration_noise / (frame_rate * frame_rate)
