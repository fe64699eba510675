"""A picture to judge a calibration at a glance: the floor's metre grid drawn on a frame.

If the grid lines lie flat on the floor and meet the marks, the calibration is right;
if they bend away or float, a point pair is wrong.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from edge.calibration import Homography

GRID_COLOUR = (0, 255, 255)
MARK_COLOUR = (0, 0, 255)
FIT_COLOUR = (0, 255, 0)
# Lines drawn per direction at most: more are a blur on any picture, and each costs a
# projection and a polyline (a 0.0001 m step over a plan took 37 s).
MAX_GRID_LINES = 400

Bounds = tuple[tuple[float, float], tuple[float, float]]


def grid_step(bounds: Bounds, step_m: float, max_lines: int = MAX_GRID_LINES) -> float:
    """The spacing actually drawn: ``step_m``, or the smallest multiple of it that keeps
    each direction to ``max_lines`` lines over ``bounds``."""
    (x0, y0), (x1, y1) = bounds
    span = max(x1 - x0, y1 - y0)
    factor = max(1, math.ceil(span / (step_m * max_lines)))
    return step_m * factor


def _visible(points: np.ndarray, homography: Homography) -> np.ndarray:
    """Mask of floor points in front of the camera (positive homogeneous scale)."""
    homogeneous = np.c_[points, np.ones(len(points))] @ homography.inverse.T
    return homogeneous[:, 2] > 0


def draw_floor_grid(
    image: np.ndarray,
    homography: Homography,
    bounds: Bounds,
    step_m: float = 1.0,
    image_points: np.ndarray | None = None,
    floor_points: np.ndarray | None = None,
) -> np.ndarray:
    """Return a copy of ``image`` with floor grid lines every ``step_m`` metres (or a
    multiple of it, see :func:`grid_step`).

    Calibration marks (``image_points``) are drawn as red circles and where their
    floor points map back into the image as green crosses: the two should coincide.
    """
    if not (math.isfinite(step_m) and step_m > 0):
        raise ValueError(f"the grid step must be a positive number of metres, got {step_m}")
    step_m = grid_step(bounds, step_m)
    out = image.copy()
    (x0, y0), (x1, y1) = bounds
    samples = np.linspace(0.0, 1.0, 200)
    lines = [np.c_[np.full_like(samples, x), y0 + samples * (y1 - y0)]
             for x in np.arange(np.ceil(x0 / step_m) * step_m, x1 + 1e-9, step_m)]
    lines += [np.c_[x0 + samples * (x1 - x0), np.full_like(samples, y)]
              for y in np.arange(np.ceil(y0 / step_m) * step_m, y1 + 1e-9, step_m)]
    height, width = image.shape[:2]
    for floor_line in lines:
        keep = _visible(floor_line, homography)
        pixels = homography.floor_to_image(floor_line[keep])
        inside = (np.abs(pixels[:, 0]) < 4 * width) & (np.abs(pixels[:, 1]) < 4 * height)
        if inside.sum() >= 2:
            cv2.polylines(out, [pixels[inside].round().astype(np.int32)], False, GRID_COLOUR, 1,
                          cv2.LINE_AA)
    if image_points is not None and floor_points is not None:
        back = homography.floor_to_image(np.asarray(floor_points, dtype=np.float64))
        for (u, v), (bu, bv) in zip(np.asarray(image_points), back, strict=True):
            cv2.circle(out, (int(u), int(v)), 6, MARK_COLOUR, 2, cv2.LINE_AA)
            cv2.drawMarker(out, (int(bu), int(bv)), FIT_COLOUR, cv2.MARKER_CROSS, 10, 2)
    return out
