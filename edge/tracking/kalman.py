"""Constant-velocity Kalman filter over box centre, aspect ratio and height.

The state is ``(cx, cy, a, h, vcx, vcy, va, vh)`` with ``a = w / h``, as in SORT,
DeepSORT and ByteTrack. Noise scales with the box height, so near (large) and far
(small) people are tracked with the same relative uncertainty.

The two noise weights are fractions of the box height per frame. ByteTrack fixes
them (1/20 position, 1/160 velocity) for 25-30 frames/s; here the tracker derives the
velocity weight from the frame rate (``TrackerConfig.velocity_weight``: a speed
change in body heights per second per second, divided by the frame rate squared), so
a 7 frames/s camera gets a larger one than a 30 frames/s one (docs/vision.md).
"""

from __future__ import annotations

import numpy as np

DEFAULT_POSITION_WEIGHT = 1.0 / 20
DEFAULT_VELOCITY_WEIGHT = 1.0 / 80  # 1.2 body heights/s² at about 10 frames/s
_ASPECT_NOISE = 1e-2  # the aspect ratio of a walking person barely changes
_ASPECT_VELOCITY_NOISE = 1e-5
_ASPECT_MEASUREMENT_NOISE = 1e-1

_MOTION = np.eye(8)
_MOTION[:4, 4:] = np.eye(4)
_DIAGONAL = np.diag_indices(8)


def _h_scaled(size: int) -> np.ndarray:
    """Which state (8) or measurement (4) entries have noise proportional to the height."""
    return np.array([True, True, False, True] * (size // 4))


_H_SCALED_8 = _h_scaled(8)
_H_SCALED_4 = _h_scaled(4)


def xyxy_to_xyah(box: np.ndarray) -> np.ndarray:
    """``(x1, y1, x2, y2)`` -> ``(centre x, centre y, width / height, height)``."""
    width, height = box[2] - box[0], max(box[3] - box[1], 1e-3)
    return np.array([box[0] + width / 2, box[1] + height / 2, width / height, height])


def xyah_to_xyxy(state: np.ndarray) -> np.ndarray:
    """The inverse of :func:`xyxy_to_xyah` (reads the first four state entries)."""
    cx, cy, aspect, height = state[:4]
    width = aspect * height
    return np.array([cx - width / 2, cy - height / 2, cx + width / 2, cy + height / 2])


class KalmanBoxFilter:
    """The motion model of one track: its state mean and covariance.

    Args:
        box_xyxy: the first observed box.
        position_weight: position noise, as a fraction of the box height per frame.
        velocity_weight: velocity noise, as a fraction of the box height per frame.
    """

    __slots__ = ("mean", "covariance", "_process_std", "_measurement_std")

    def __init__(
        self,
        box_xyxy: np.ndarray,
        position_weight: float = DEFAULT_POSITION_WEIGHT,
        velocity_weight: float = DEFAULT_VELOCITY_WEIGHT,
    ) -> None:
        p, v = position_weight, velocity_weight
        # Per-frame standard deviations, as multiples of the box height except the
        # aspect ratio's, which are absolute (`_H_SCALED_8` says which).
        self._process_std = np.array([p, p, _ASPECT_NOISE, p, v, v, _ASPECT_VELOCITY_NOISE, v])
        self._measurement_std = np.array([p, p, _ASPECT_MEASUREMENT_NOISE, p])
        measurement = xyxy_to_xyah(box_xyxy)
        self.mean: np.ndarray = np.concatenate([measurement, np.zeros(4)])
        initial = self._process_std * np.where(_H_SCALED_8, measurement[3], 1.0)
        initial *= [2, 2, 1, 2, 10, 10, 1, 10]  # a new track's speed is unknown
        self.covariance: np.ndarray = np.diag(np.square(initial))

    def predict(self, hold_size: bool = False) -> None:
        """Advance the state one frame (constant velocity); uncertainty grows.

        Args:
            hold_size: keep the box height as it is (used while a track is unseen, as
                ByteTrack does: a size trend learnt from a few frames must not shrink
                a hidden person's box to nothing).
        """
        if hold_size:
            self.mean[7] = 0.0
        std = self._process_std * np.where(_H_SCALED_8, self.mean[3], 1.0)
        self.mean = _MOTION @ self.mean
        self.covariance = _MOTION @ self.covariance @ _MOTION.T
        self.covariance[_DIAGONAL] += np.square(std)

    def update(self, box_xyxy: np.ndarray) -> None:
        """Correct the state with an observed box."""
        measurement = xyxy_to_xyah(box_xyxy)
        std = self._measurement_std * np.where(_H_SCALED_4, self.mean[3], 1.0)
        # Motion, noise and the first covariance couple each of cx, cy, a, h only with
        # its own velocity, so the covariance never links two of them: the innovation
        # covariance H P H^T + R is diagonal and the gain P H^T S^-1 is a division.
        innovation_var = np.diagonal(self.covariance)[:4] + np.square(std)
        cross = self.covariance[:, :4]  # P H^T
        gain = cross / innovation_var
        self.mean = self.mean + gain @ (measurement - self.mean[:4])
        self.covariance = self.covariance - gain @ cross.T

    def copy(self) -> KalmanBoxFilter:
        """An independent copy (used to re-run the filter after an occlusion)."""
        twin = KalmanBoxFilter.__new__(KalmanBoxFilter)
        twin.mean = self.mean.copy()
        twin.covariance = self.covariance.copy()
        twin._process_std = self._process_std  # never written: safe to share
        twin._measurement_std = self._measurement_std
        return twin

    @property
    def box(self) -> np.ndarray:
        """The state's box, xyxy."""
        return xyah_to_xyxy(self.mean)
