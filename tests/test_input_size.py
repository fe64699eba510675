"""The detector input size a camera gets from its own frame size: aspect ratio kept,
a 60-pixel person stays >= 36 input pixels, multiples of 32, capped; an explicit
``detector.input_size`` still wins."""

from __future__ import annotations

from contextlib import nullcontext as does_not_raise

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge.config.vision import DetectorConfig
from edge.detection import load_detector
from edge.detection.input_size import (
    FLOOR_INPUT_PX,
    FLOOR_PERSON_PX,
    MAX_DEFAULT_SIDE,
    default_input_size,
)


@pytest.mark.parametrize(
    "frame, expected, raises",
    [
        ((360, 640), (224, 384), does_not_raise()),  # the capacity figure's streams
        ((576, 768), (352, 480), does_not_raise()),  # PETS
        ((1080, 1920), (544, 960), does_not_raise()),  # capped: the long side is 960
        ((1920, 1080), (960, 544), does_not_raise()),  # portrait, capped
        ((640, 360), (384, 224), does_not_raise()),  # portrait
        ((480, 640), (288, 384), does_not_raise()),  # TUD-Campus
        ((30, 40), (32, 32), does_not_raise()),  # never below one stride
        ((0, 640), None, pytest.raises(ValueError, match="must be positive, got 640x0")),
    ],
    ids=["640x360", "768x576", "1920x1080", "portrait-1080x1920", "portrait-360x640",
         "640x480", "tiny", "zero-height"],
)
def test_default_input_size_table(frame, expected, raises):
    with raises:
        assert default_input_size(*frame) == expected


@given(st.integers(16, 4096), st.integers(16, 4096))
def test_default_keeps_the_floor_the_aspect_and_the_cap(height, width):
    size = default_input_size(height, width)
    assert size[0] % 32 == 0 and size[1] % 32 == 0
    assert max(size) <= MAX_DEFAULT_SIDE
    # The scale the detector's letterbox applies to a frame of this size.
    ratio = min(size[0] / height, size[1] / width)
    if max(height, width) <= MAX_DEFAULT_SIDE * FLOOR_PERSON_PX / FLOOR_INPUT_PX:
        assert FLOOR_PERSON_PX * ratio >= FLOOR_INPUT_PX - 1e-6
    # Aspect ratio kept: the letterboxed frame leaves less than a stride of padding.
    for side, pixels in zip(size, (height, width), strict=True):
        assert side - pixels * ratio < 32


@pytest.mark.system
def test_detector_default_size_follows_the_first_frame():
    """Regression: every camera ran at the model's 416x416, a 640x360 stream shrunk to
    416x234 and a 1920x1080 one to 416x234 alike."""
    detector = load_detector(DetectorConfig())
    assert detector.input_size is None  # not known before a frame
    detector.detect(np.zeros((360, 640, 3), np.uint8))
    assert detector.input_size == (224, 384)
    # A later frame of another size is letterboxed into the size chosen, in its pixels.
    image = np.zeros((1080, 1920, 3), np.uint8)
    image[300:700, 900:1000] = 255
    detections = detector.detect(image)
    assert detector.input_size == (224, 384)
    assert (detections.xyxy[:, 2] <= 1920).all() and (detections.xyxy[:, 3] <= 1080).all()


@pytest.mark.system
@pytest.mark.parametrize(
    "config, frame, expected",
    [
        (DetectorConfig(input_size=(256, 448)), (360, 640), (256, 448)),
        (DetectorConfig(), (1080, 1920), (544, 960)),
        (DetectorConfig(), (1920, 1080), (960, 544)),
        (DetectorConfig(model="light_person_detector_192x192"), (360, 640), (192, 192)),
    ],
    ids=["explicit-wins", "1920x1080", "portrait", "fixed-size-model"],
)
def test_detector_input_size(config, frame, expected):
    detector = load_detector(config)
    detector.detect(np.zeros((*frame, 3), np.uint8))
    assert detector.input_size == expected
