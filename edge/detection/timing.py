"""How much of this box's processor a camera takes: the detector timed on this CPU.

Capacity depends on the processor more than on anything in the config: the same model at
352x640 costs 17-18 ms of CPU a picture on a core with AVX-512 and 27 ms on one with AVX2
only (docs/appliance.md, Capacity). So the estimate is measured, not looked up: the
configured detector runs on pictures of each camera's frame size, and the process's CPU
time (every onnxruntime thread included) is divided by the pictures.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

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

    @property
    def cores(self) -> float:
        """Cores the camera keeps busy, its whole pipeline counted."""
        return self.pictures_per_s * self.detect_ms * PIPELINE_OVERHEAD / 1000


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
