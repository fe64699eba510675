"""Tracker-only runs on precomputed detections: ours and, when installed, supervision's
ByteTrack and norfair with their defaults, all as MOTChallenge rows for
:mod:`edge.evaluation.mot`.

Shared by ``scripts/bench_tracker.py`` (speed and accuracy ratios) and
``edge eval suite`` (accuracy figures). :func:`detect_video` gives them the product's
detector's boxes on a recording instead of a det.txt.
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path

import cv2
import numpy as np

from edge.config.vision import DetectorConfig, TrackerConfig
from edge.detection import load_detector
from edge.errors import SourceError
from edge.motformat import detections_by_frame, mot_array
from edge.records import Detections
from edge.tracking import ByteTracker


def load_detections(path: str | Path) -> list[Detections]:
    """Every frame's detections of a MOTChallenge det.txt, frame 1 first."""
    return [detections for _, detections in detections_by_frame(path)]


def as_mot(rows: list[tuple]) -> np.ndarray:
    """``(frame, id, x1, y1, x2, y2, score)`` rows as MOTChallenge rows."""
    array = np.array(rows, dtype=np.float64).reshape(-1, 7)
    return mot_array(array[:, 0], array[:, 1], array[:, 2:6], array[:, 6])


# MOTChallenge's public detections score on a scale of their own: every box >= 0.5 and
# most > 0.9, where YOLOX-Nano's people score 0.3-0.9. The six-scene search chose these
# score thresholds for them (docs/vision.md); the other knobs are the defaults.
PUBLIC_DETECTION_SCORES = {"track_activation_threshold": 0.9, "new_track_threshold": 0.9}


def for_public_detections(config: TrackerConfig | None = None) -> TrackerConfig:
    """``config`` (default: the defaults) with the score thresholds of
    :data:`PUBLIC_DETECTION_SCORES`, for tracker-only runs on MOTChallenge det.txt."""
    return (config or TrackerConfig()).model_copy(update=PUBLIC_DETECTION_SCORES)


def detect_video(path: str | Path, config: DetectorConfig | None = None,
                 ) -> tuple[list[Detections], tuple[int, int]]:
    """The product's detector (``config``, default: as a new site has it, one thread)
    on every frame of the video at ``path``: detections per frame, frame 1 first, and
    the input size it ran at.

    Raises:
        SourceError: the file has no frame to read.
    """
    detector = load_detector(config or DetectorConfig(threads=1))
    capture = cv2.VideoCapture(str(path))
    frames = []
    try:
        while True:
            ok, image = capture.read()
            if not ok:
                break
            frames.append(detector.detect(image))
    finally:
        capture.release()
    if not frames or detector.input_size is None:
        raise SourceError(f"cannot read a frame of {path}")
    return frames, detector.input_size


def track_ours(
    frames: list[Detections], fps: float, config: TrackerConfig
) -> tuple[np.ndarray, float]:
    """Our tracker over ``frames``: (MOTChallenge rows, seconds spent tracking)."""
    tracker = ByteTracker(config, fps)
    rows = []
    started = time.perf_counter()
    for index, detections in enumerate(frames):
        tracks = tracker.update(detections, index / fps)
        for i in range(len(tracks)):
            rows.append((index + 1, tracks.tracker_id[i], *tracks.xyxy[i], tracks.confidence[i]))
    return as_mot(rows), time.perf_counter() - started


def supervision_available() -> bool:
    """Whether supervision's ByteTrack can be imported (the ``bench`` extra)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import supervision as sv
    except ImportError:
        return False
    return hasattr(sv, "ByteTrack")


def track_supervision(frames: list[Detections], fps: float) -> tuple[np.ndarray, float]:
    """supervision's ByteTrack (every knob at its default) over the same ``frames``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import supervision as sv

        tracker = sv.ByteTrack(frame_rate=round(fps))
    inputs = [
        sv.Detections(
            xyxy=d.xyxy.astype(np.float32),
            confidence=d.confidence.astype(np.float32),
            class_id=np.zeros(len(d), dtype=int),
        )
        for d in frames
    ]
    rows = []
    started = time.perf_counter()
    for index, detections in enumerate(inputs):
        tracked = tracker.update_with_detections(detections)
        ids, scores = tracked.tracker_id, tracked.confidence
        if ids is None or scores is None:  # supervision's types allow it; ByteTrack sets both
            continue
        for i in range(len(tracked)):
            rows.append((index + 1, ids[i], *tracked.xyxy[i], scores[i]))
    return as_mot(rows), time.perf_counter() - started


# norfair has no default distance threshold. With IoU distance (1 - IoU), 0.9 (a match
# needs IoU >= 0.1) gave the best mean HOTA over the six shared scenes of 0.7, 0.8, 0.9.
NORFAIR_IOU_DISTANCE = 0.9


def track_norfair(frames: list[Detections], fps: float) -> tuple[np.ndarray, float]:
    """norfair's tracker on box corners with its IoU distance over the same ``frames``.

    Its knobs stay at their defaults but the distance threshold
    (:data:`NORFAIR_IOU_DISTANCE`). Like ours and supervision's, it reports the
    detector's own box, only in the frames a detection matched the track. norfair
    counts in frames and takes no frame rate, so ``fps`` is unused.
    """
    del fps
    import logging

    from norfair import Detection, Tracker

    # norfair logs a warning for every Kalman estimate with a negative size.
    logging.getLogger("norfair").setLevel(logging.ERROR)
    tracker = Tracker(distance_function="iou", distance_threshold=NORFAIR_IOU_DISTANCE)
    inputs = [
        [
            Detection(points=box.reshape(2, 2).astype(np.float64),
                      scores=np.array([score, score], dtype=np.float64))
            for box, score in zip(d.xyxy, d.confidence, strict=True)
        ]
        for d in frames
    ]
    rows = []
    started = time.perf_counter()
    for index, detections in enumerate(inputs):
        for tracked in tracker.update(detections=detections):
            box = tracked.last_detection
            if box.age != tracked.age:  # not matched in this frame
                continue
            (x1, y1), (x2, y2) = box.points
            score = float(box.scores[0]) if box.scores is not None else 1.0
            rows.append((index + 1, tracked.id, x1, y1, x2, y2, score))
    return as_mot(rows), time.perf_counter() - started
