"""The detector input size a camera gets by default, from its own frame size.

One fixed network size for every camera either wastes time on a small stream or loses
the distant people of a large one. When ``detector.input_size`` is not set, a resizable
model (YOLOX) runs at the frame scaled by :data:`DEFAULT_SCALE`, aspect ratio kept,
each side rounded *up* to a multiple of 32, the long side capped at
:data:`MAX_DEFAULT_SIDE`.

The person-height floor it keeps: a person :data:`FLOOR_PERSON_PX` (60) pixels tall
in the frame stays at least :data:`FLOOR_INPUT_PX` (36) input pixels tall, on every
frame up to 1600 pixels wide; above that the cap wins (1920x1080 runs at 544x960,
where the 60-pixel person is 30 input pixels).

Why 0.6: on the PETS recording (768x576, people 55-125 px tall, 5th percentile 61),
YOLOX-Nano's detection accuracy (DetA) levels off near that scale: 0.604 at 0.39,
0.622 at 0.44, 0.621 at 0.61, 0.634 at 0.83 (``scripts/bench_capacity`` measures it;
``models/cards/yolox_nano.md``). Time grows with the input's pixels, so a larger
default buys little accuracy at a high price; a camera whose people are smaller than
60 pixels gets an explicit ``detector.input_size``.
"""

from __future__ import annotations

import math

STRIDE = 32  # YOLOX's coarsest stride: each side a multiple of it
FLOOR_PERSON_PX = 60  # a person this tall in the frame...
FLOOR_INPUT_PX = 36  # ...stays at least this tall in the network input
DEFAULT_SCALE = FLOOR_INPUT_PX / FLOOR_PERSON_PX
MAX_DEFAULT_SIDE = 960  # cost grows with the square: 960x544 is ~3x the native 416x416


def default_input_size(frame_height: int, frame_width: int) -> tuple[int, int]:
    """The ``(height, width)`` network input for frames of this size.

    The frame scaled by :data:`DEFAULT_SCALE` (or less, so that the long side fits
    :data:`MAX_DEFAULT_SIDE`), each side rounded up to a multiple of 32.

    Raises:
        ValueError: a side that is not a positive number of pixels.
    """
    if frame_height < 1 or frame_width < 1:
        raise ValueError(f"a frame size must be positive, got {frame_width}x{frame_height}")
    scale = min(DEFAULT_SCALE, MAX_DEFAULT_SIDE / max(frame_height, frame_width))

    def side(pixels: int) -> int:
        # The tolerance keeps an exact multiple (320 x 0.6 = 192.00000000000003) from
        # rounding up a whole stride.
        strides = math.ceil(pixels * scale / STRIDE - 1e-9)
        return min(MAX_DEFAULT_SIDE, max(STRIDE, STRIDE * strides))

    return side(frame_height), side(frame_width)


def describe_input_size(configured: tuple[int, int] | None, resizable: bool,
                        native: tuple[int, int] | None,
                        frame_size: tuple[int, int] | None) -> str:
    """One line saying which network input a camera's detector runs at, and why.

    Args:
        configured: ``detector.input_size``, or None.
        resizable: the model runs at other sizes than its own (YOLOX).
        native: the model's own ``(height, width)``, when known.
        frame_size: the camera's ``(width, height)``, when known before it runs.
    """
    if configured is not None:
        return f"{configured[0]}x{configured[1]} (detector.input_size)"
    if not resizable:
        own = f"{native[0]}x{native[1]}" if native else "its own size"
        return f"{own} (the model's own size: it does not resize)"
    if frame_size is None:
        return (f"{DEFAULT_SCALE:.1f} of its frame size, set when the first frame arrives "
                "(give calibration.image_size to see it here)")
    width, height = frame_size
    size = default_input_size(height, width)
    person = FLOOR_PERSON_PX * size[0] / height
    return (f"{size[0]}x{size[1]} (from its {width}x{height} frames: a {FLOOR_PERSON_PX}-pixel "
            f"person is {person:.0f} input pixels tall)")
