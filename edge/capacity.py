"""How much of this box's processor a camera takes, measured on this processor.

Capacity depends on the processor more than on anything in the config: the same model at
352x640 costs 17-18 ms of CPU a picture on a core with AVX-512 and 27 ms on one with AVX2
only (docs/appliance.md, Capacity). So the estimate is measured, not looked up: the
configured detector runs on pictures of each camera's frame size, and a short clip of
that size is decoded; the process's CPU time (every thread included) is divided by the
pictures.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from edge.detection.base import Detector

# The rest of a camera's pipeline (decoding, tracking, floor mapping, storage) on top of
# the detector: scripts/bench_capacity.py measured the whole pipeline at 1.14-1.19 times
# the detector alone at 352x640 (more at smaller inputs, where decoding weighs more).
PIPELINE_OVERHEAD = 1.2
# Share of the cores the cameras may take: the rest is for the other services and for
# the bursts a busy scene brings.
USABLE_SHARE = 0.85


@dataclass(frozen=True, slots=True)
class CameraLoad:
    """One camera's measured share of the processor."""

    camera_id: str
    input_size: tuple[int, int] | None  # (height, width) the detector ran at
    pictures_per_s: float
    detect_ms: float  # CPU ms a picture, the detector alone
    # Frames the camera sends a second (None: not known) and CPU ms to decode one: the
    # reader decodes every frame, those the detector skips too.
    frames_per_s: float | None = None
    decode_ms: float = 0.0

    @property
    def cores(self) -> float:
        """Cores the camera keeps busy, its whole pipeline counted."""
        detecting = self.pictures_per_s * self.detect_ms * PIPELINE_OVERHEAD
        extra = max(0.0, (self.frames_per_s or 0.0) - self.pictures_per_s) * self.decode_ms
        return (detecting + extra) / 1000


def detector_cpu_ms(detector: Detector, frame_size: tuple[int, int], *, pictures: int = 12,
                    warmup: int = 3, seed: int = 0) -> float:
    """CPU milliseconds the detector takes a picture of ``frame_size`` (width, height).

    The pictures are noise: the network's cost does not depend on what it sees (only
    non-maximum suppression does, and it is a small part). The first ``warmup`` are
    not timed (onnxruntime allocates on its first runs).
    """
    width, height = frame_size
    image = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    for _ in range(warmup):
        detector.detect(image)
    start = time.process_time()
    for _ in range(pictures):
        detector.detect(image)
    return 1000 * (time.process_time() - start) / pictures


def decode_cpu_ms(frame_size: tuple[int, int], *, frames: int = 30) -> float:
    """CPU milliseconds to decode one frame of ``frame_size`` (width, height): a clip of
    moving shapes written as MPEG-4 part 2 (what this OpenCV build encodes) and read back.
    A camera's H.264 or H.265 costs more: this is a lower bound."""
    width, height = frame_size
    with tempfile.TemporaryDirectory(prefix="edge-capacity-") as folder:
        path = Path(folder) / "clip.mp4"
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), 10, frame_size)
        rng = np.random.default_rng(0)
        background = cv2.GaussianBlur(
            rng.integers(0, 256, (height, width, 3), dtype=np.uint8), (0, 0), 8)
        for index in range(frames):
            image = background.copy()
            for person in range(6):  # people-sized boxes walking across
                x = (index * 7 + person * width // 6) % width
                y = height // 3 + person * height // 12
                cv2.rectangle(image, (x, y), (x + width // 30, y + height // 6),
                              (40 * person, 90, 200 - 30 * person), -1)
            writer.write(image)
        writer.release()
        capture = cv2.VideoCapture(str(path))
        try:
            start, decoded = time.process_time(), 0
            while capture.grab():
                decoded += 1
            spent = time.process_time() - start
        finally:
            capture.release()
    return 1000 * spent / max(decoded, 1)
