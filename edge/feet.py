"""Where a tracked person stands in the image, also when their feet are hidden.

The floor position of a person is their box's bottom-centre mapped through the
camera's homography. A detector boxes what it sees, so a person whose legs are hidden
behind someone else, a post or a shelf gets a box cut off above the feet: on PETS09
(YOLOX-Nano at 480x640) a box 40-49 pixels tall where the person is 72 put them
2.5-3.5 m further from the camera, for a few frames at a time. A zone's dwell and a
line's count read that jump as a walk.

Why a track's *scale* and not its height: for a camera over a flat floor, a person's
box height is proportional to how far their feet stand below the horizon, with a
constant that is the person's height over the camera's (Hoiem et al., "Putting
objects in perspective", 2006). The horizon is where the homography sends pixels to
infinity (its third row is zero there), so the distance below it is that row applied
to the feet, ``w = H[2] . (u, v, 1)``, up to a constant, and ``s = height / w`` stays
put as a person walks towards or away from the camera, where their height in pixels
can double. On the PETS09 ground truth ``s`` varies by 2 % along a person's walk
(coefficient of variation, median over its 19 people) where the height varies by 15 %.

A box is taken for cut off when it is shorter than ``hidden_height_ratio`` of the
height its track's scale (the median ``s`` of its whole boxes over the last
``scale_window_s``) gives at its bottom edge, *and* its bottom edge moved at least
``hidden_edge_ratio`` times as far as its top edge since the track's last whole box:
the head stayed, the feet vanished. Its feet are then put where the track's scale
puts them below the box's top. A box that shrank at both edges (another detector's
guess at the scale: the MOTChallenge public detections do that, and correcting them
made their floor positions worse) or from the top (someone bending down) keeps its
bottom-centre, and so does a box taller than expected: on PETS its extra height is as
often above the head as below the feet. Measured against the ground truth of the
person each track follows: 19 of 19 corrected positions closer, by 2.5 m (median), on
the product's detector; 4 of 4 on the public detections (docs/vision.md).

State is kept per track id for at most 1.5 ``scale_window_s`` after its last whole box,
so memory stays flat however many people pass (STYLE A4).
"""

from __future__ import annotations

import math
import statistics
from collections import deque
from dataclasses import dataclass

import numpy as np

from edge.calibration import Homography
from edge.config.vision import FeetConfig
from edge.records import Tracks, box_anchors

MIN_WHOLE_BOXES = 2  # a scale needs at least two whole boxes: one could be the odd one


@dataclass(frozen=True, slots=True)
class _Box:
    """One whole box of a track: when, its scale, its top and bottom edges (pixels)."""

    t: float
    scale: float
    top: float
    bottom: float


class FootPoints:
    """The image point each track stands on: its box's bottom-centre, or, for a box cut
    off above hidden feet, the point its track's scale puts below the box's top.

    Args:
        config: the thresholds (:class:`edge.config.vision.FeetConfig`).
        homography: the camera's image-to-floor mapping (its horizon).
    """

    def __init__(self, config: FeetConfig, homography: Homography) -> None:
        self.config = config
        self._horizon = np.asarray(homography.matrix, dtype=np.float64)[2].copy()
        self._boxes: dict[int, deque[_Box]] = {}
        self._swept_t = -math.inf  # when retired ids were last dropped
        self.corrected = 0  # boxes whose feet were put below their top

    def reset(self) -> None:
        """Forget every track."""
        self._boxes = {}
        self._swept_t = -math.inf
        self.corrected = 0

    @property
    def tracks_held(self) -> int:
        """Track ids with state in memory."""
        return len(self._boxes)

    def anchors(self, tracks: Tracks, timestamp: float) -> np.ndarray:
        """``(n, 2)`` image points where the people of ``tracks`` stand, in float64.

        Args:
            tracks: one frame's tracks; never modified.
            timestamp: the frame's time in seconds (increasing).
        """
        anchors = box_anchors(tracks.xyxy)
        window = self.config.scale_window_s
        if window <= 0:
            return anchors
        # Held 1.5 windows at most; a clock stepped back sweeps at once (not after the step).
        if not 0 <= timestamp - self._swept_t < window / 2:
            self._forget_before(timestamp - window)
            self._swept_t = timestamp
        tops = np.asarray(tracks.xyxy, dtype=np.float64).reshape(-1, 4)[:, 1]
        for row, track_id in enumerate(np.asarray(tracks.tracker_id).tolist()):
            u, bottom = anchors[row]
            top = float(tops[row])
            history = self._boxes.setdefault(int(track_id), deque())
            while history and history[0].t < timestamp - window:
                history.popleft()
            below = self._below_horizon(u, bottom)
            if below <= 0:
                continue  # feet on the horizon: no scale to read
            feet = self._hidden_feet(history, u, top, bottom, below)
            if feet is not None:
                anchors[row, 1] = feet
                self.corrected += 1
            else:
                history.append(_Box(timestamp, (bottom - top) / below, top, bottom))
        return anchors

    def _sign(self, u: float, v: float) -> float:
        """+1 or -1: which sign the homography's third row has on the floor at ``(u, v)``
        (a homography is defined up to a factor, negative ones included; the feet of a
        person on the floor are on the floor side of the horizon)."""
        a, b, c = self._horizon
        return 1.0 if a * u + b * v + c >= 0 else -1.0

    def _below_horizon(self, u: float, v: float) -> float:
        """How far pixel ``(u, v)`` lies below the horizon, up to a constant factor."""
        a, b, c = self._horizon
        return abs(float(a * u + b * v + c))

    def _hidden_feet(self, history: deque[_Box], u: float, top: float, bottom: float,
                     below: float) -> float | None:
        """The feet's row when the box is cut off above them (see the module docstring),
        else None."""
        if len(history) < MIN_WHOLE_BOXES:
            return None
        scale = statistics.median(box.scale for box in history)
        if bottom - top >= self.config.hidden_height_ratio * scale * below:
            return None
        last = history[-1]
        if abs(bottom - last.bottom) < self.config.hidden_edge_ratio * abs(top - last.top):
            return None
        # The feet's row v solves  v - top = scale * below(u, v), on the bottom edge's side
        # of the horizon, where below(u, v) = sign * (a u + b v + c) is linear in v.
        a, b, c = self._horizon * self._sign(u, bottom)
        slope = 1.0 - scale * b
        if slope <= 0:
            return None  # no such row: a camera looking up, or a scale from bad boxes
        feet = (top + scale * (a * u + c)) / slope
        return float(feet) if np.isfinite(feet) and feet > bottom else None

    def _forget_before(self, t: float) -> None:
        """Drop the tracks whose last whole box is older than ``t`` (retired ids)."""
        stale = [key for key, boxes in self._boxes.items() if not boxes or boxes[-1].t < t]
        for key in stale:
            del self._boxes[key]
