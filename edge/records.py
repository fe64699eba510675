"""The records that flow between pipeline stages.

Data flows one way::

    Frame -> Detections -> Tracks -> FloorTracks -> (visits, traits, aggregates)

Each stage takes one record and returns a new one; no stage writes to its input.
Columns are numpy arrays whose shapes are checked on construction, so a stage that
produces a malformed record fails where the bug is, not three stages later.

Every record carries a ``data`` mapping of extra per-row columns that stages pass
along untouched (for example the detector's class id, or a camera id).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np


def check_shape(name: str, array: np.ndarray, shape: tuple[int | None, ...]) -> None:
    """Raise ``ValueError`` unless ``array`` matches ``shape`` (``None`` = any size)."""
    ok = array.ndim == len(shape) and all(
        want is None or want == got for want, got in zip(shape, array.shape, strict=True)
    )
    if not ok:
        wanted = "(" + ", ".join("n" if s is None else str(s) for s in shape) + ")"
        raise ValueError(f"{name} must have shape {wanted}, got {array.shape}")


def _check_data(data: Mapping[str, np.ndarray], n: int) -> None:
    for key, column in data.items():
        if len(column) != n:
            raise ValueError(f"data[{key!r}] must have {n} rows, got {len(column)}")


@dataclass(frozen=True, slots=True)
class Frame:
    """One decoded camera frame.

    Attributes:
        camera_id: the camera's id in the site config.
        index: 0-based frame index in the source (after frame-rate limiting, the
            index of the frame in the original stream).
        timestamp: seconds since the Unix epoch at which the frame was captured.
        image: ``(height, width, 3)`` uint8 BGR pixels. Never leaves memory.
    """

    camera_id: str
    index: int
    timestamp: float
    image: np.ndarray = field(repr=False)

    def __post_init__(self) -> None:
        check_shape("Frame.image", self.image, (None, None, 3))

    @property
    def size(self) -> tuple[int, int]:
        """``(width, height)`` in pixels."""
        return int(self.image.shape[1]), int(self.image.shape[0])


def box_anchors(xyxy: np.ndarray) -> np.ndarray:
    """``(n, 2)`` bottom-centre of each ``(x1, y1, x2, y2)`` box, in float64: where the
    person stands, the point calibration maps to the floor."""
    boxes = np.asarray(xyxy, dtype=np.float64).reshape(-1, 4)
    return np.stack([(boxes[:, 0] + boxes[:, 2]) / 2.0, boxes[:, 3]], axis=1)


@dataclass(frozen=True, slots=True)
class Detections:
    """Person boxes found in one frame, in image pixels.

    Attributes:
        xyxy: ``(n, 4)`` float boxes ``(x1, y1, x2, y2)``.
        confidence: ``(n,)`` scores in ``[0, 1]``.
        data: extra ``(n, ...)`` columns carried along untouched.
    """

    xyxy: np.ndarray
    confidence: np.ndarray
    data: Mapping[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_shape("Detections.xyxy", self.xyxy, (None, 4))
        check_shape("Detections.confidence", self.confidence, (len(self.xyxy),))
        _check_data(self.data, len(self.xyxy))

    def __len__(self) -> int:
        return len(self.xyxy)

    @classmethod
    def empty(cls) -> Detections:
        return cls(np.zeros((0, 4), np.float32), np.zeros((0,), np.float32))

    @property
    def anchors(self) -> np.ndarray:
        """``(n, 2)`` bottom-centre of each box: where the person stands."""
        return box_anchors(self.xyxy)

    def filter(self, mask: np.ndarray) -> Detections:
        """Rows where ``mask`` is true (a boolean or index array)."""
        return Detections(
            self.xyxy[mask],
            self.confidence[mask],
            {key: column[mask] for key, column in self.data.items()},
        )


@dataclass(frozen=True, slots=True)
class Tracks:
    """The tracker's confirmed tracks in one frame.

    ``xyxy`` and ``confidence`` are the detector's own box and score for the
    detection matched to each track in this frame, not the motion model's
    prediction, so what is stored is what was seen.

    Attributes:
        tracker_id: ``(n,)`` int64 ids, unique per camera run, meaningless elsewhere.
        xyxy: ``(n, 4)`` float boxes in image pixels.
        confidence: ``(n,)`` detector scores.
        data: the matched detections' ``data`` columns.
    """

    tracker_id: np.ndarray
    xyxy: np.ndarray
    confidence: np.ndarray
    data: Mapping[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = len(self.tracker_id)
        check_shape("Tracks.tracker_id", self.tracker_id, (None,))
        check_shape("Tracks.xyxy", self.xyxy, (n, 4))
        check_shape("Tracks.confidence", self.confidence, (n,))
        _check_data(self.data, n)

    def __len__(self) -> int:
        return len(self.tracker_id)

    @classmethod
    def empty(cls) -> Tracks:
        return cls(
            np.zeros((0,), np.int64), np.zeros((0, 4), np.float32), np.zeros((0,), np.float32)
        )

    @property
    def anchors(self) -> np.ndarray:
        """``(n, 2)`` bottom-centre of each box: where the person stands."""
        return box_anchors(self.xyxy)


@dataclass(frozen=True, slots=True)
class FloorTracks:
    """Tracks of one frame placed on the store floor.

    Attributes:
        camera_id: the camera that saw them.
        frame_index: the frame's index in its source.
        timestamp: seconds since the Unix epoch.
        tracks: the image-space tracks this was computed from.
        xy: ``(n, 2)`` floor positions in metres, in the site's floor frame.
        detections: every person the detector found in this frame, before the
            floor-area filter and the tracker, so that an annotator can hide people
            the tracker has not confirmed (yet) too. Kept in memory only: never
            stored or sent.
    """

    camera_id: str
    frame_index: int
    timestamp: float
    tracks: Tracks
    xy: np.ndarray
    detections: Detections = field(default_factory=Detections.empty, repr=False)

    def __post_init__(self) -> None:
        check_shape("FloorTracks.xy", self.xy, (len(self.tracks), 2))

    def __len__(self) -> int:
        return len(self.tracks)


def as_array(values: Any, dtype: Any) -> np.ndarray:
    """``np.asarray`` that never returns a view the caller could mutate later."""
    return np.array(values, dtype=dtype, copy=True)


@dataclass(frozen=True, slots=True)
class FloorObservations:
    """Everyone one camera saw in one frame, placed on the floor with an uncertainty:
    what a camera hands to the store-wide fusion stage.

    Attributes:
        camera_id: the camera that saw them.
        frame_index: the frame's index in its source.
        timestamp: seconds since the Unix epoch at which the frame was captured.
        xy: ``(n, 2)`` floor positions of the people's feet, in metres.
        covariance: ``(n, 2, 2)`` covariance of each position, in square metres: how
            far the floor position may be off, given the box's size, its distance from
            the camera (through the homography) and the calibration's own error.
        local_id: ``(n,)`` int64 id of the camera's own track matched to each
            detection, or -1 when the camera's tracker has not confirmed it (yet).
            Meaningless outside this camera; a hint of continuity, never a person.
        confidence: ``(n,)`` the detector's score of each sighting (1 where unknown).
    """

    camera_id: str
    frame_index: int
    timestamp: float
    xy: np.ndarray
    covariance: np.ndarray
    local_id: np.ndarray
    confidence: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def __post_init__(self) -> None:
        n = len(self.xy)
        check_shape("FloorObservations.xy", self.xy, (None, 2))
        check_shape("FloorObservations.covariance", self.covariance, (n, 2, 2))
        check_shape("FloorObservations.local_id", self.local_id, (n,))
        if n and len(self.confidence) == 0:  # scores not known: every sighting counts
            object.__setattr__(self, "confidence", np.ones(n))
        check_shape("FloorObservations.confidence", self.confidence, (n,))

    def __len__(self) -> int:
        return len(self.xy)

    @classmethod
    def empty(cls, camera_id: str, frame_index: int, timestamp: float) -> FloorObservations:
        return cls(camera_id, frame_index, timestamp, np.zeros((0, 2)), np.zeros((0, 2, 2)),
                   np.zeros((0,), np.int64))


@dataclass(frozen=True, slots=True)
class FusedTracks:
    """The store-wide tracks at one instant: one row per person, whichever cameras saw
    them.

    Attributes:
        frame_index: the instant's index on the fusion clock (the frames of the
            fastest camera in a replay).
        timestamp: seconds since the Unix epoch.
        track_id: ``(n,)`` int64 store-wide ids, unique per fusion run.
        xy: ``(n, 2)`` floor positions in metres.
        cameras: ``(n,)`` how many cameras saw each person at this instant (0: the
            person is unseen: between views, or in the area of a camera that is down).
    """

    frame_index: int
    timestamp: float
    track_id: np.ndarray
    xy: np.ndarray
    cameras: np.ndarray

    def __post_init__(self) -> None:
        n = len(self.track_id)
        check_shape("FusedTracks.track_id", self.track_id, (None,))
        check_shape("FusedTracks.xy", self.xy, (n, 2))
        check_shape("FusedTracks.cameras", self.cameras, (n,))

    def __len__(self) -> int:
        return len(self.track_id)
