"""Constant-velocity Kalman filter over box centre, aspect ratio and height.

The state is ``(cx, cy, a, h, vcx, vcy, va, vh)`` with ``a = w / h``, as in SORT,
DeepSORT and ByteTrack. Noise scales with the box height, so near (large) and far
(small) people are tracked with the same relative uncertainty.
"""

from __future__ import annotations

import numpy as np

_POSITION_WEIGHT = 1.0 / 20
_VELOCITY_WEIGHT = 1.0 / 160

_MOTION = np.eye(8)
_MOTION[:4, 4:] = np.eye(4)
_OBSERVATION = np.eye(4, 8)


def xyxy_to_xyah(box: np.ndarray) -> np.ndarray:
    width, height = box[2] - box[0], max(box[3] - box[1], 1e-3)
    return np.array([box[0] + width / 2, box[1] + height / 2, width / height, height])


def xyah_to_xyxy(state: np.ndarray) -> np.ndarray:
    cx, cy, aspect, height = state[:4]
    width = aspect * height
    return np.array([cx - width / 2, cy - height / 2, cx + width / 2, cy + height / 2])


class KalmanBoxFilter:
    """The motion model of one track: its state mean and covariance."""

    __slots__ = ("mean", "covariance")

    def __init__(self, box_xyxy: np.ndarray) -> None:
        measurement = xyxy_to_xyah(box_xyxy)
        self.mean = np.concatenate([measurement, np.zeros(4)])
        h = measurement[3]
        std = [
            2 * _POSITION_WEIGHT * h, 2 * _POSITION_WEIGHT * h, 1e-2, 2 * _POSITION_WEIGHT * h,
            10 * _VELOCITY_WEIGHT * h, 10 * _VELOCITY_WEIGHT * h, 1e-5, 10 * _VELOCITY_WEIGHT * h,
        ]
        self.covariance = np.diag(np.square(std))

    def predict(self) -> None:
        h = self.mean[3]
        std = [
            _POSITION_WEIGHT * h, _POSITION_WEIGHT * h, 1e-2, _POSITION_WEIGHT * h,
            _VELOCITY_WEIGHT * h, _VELOCITY_WEIGHT * h, 1e-5, _VELOCITY_WEIGHT * h,
        ]
        self.mean = _MOTION @ self.mean
        self.covariance = _MOTION @ self.covariance @ _MOTION.T + np.diag(np.square(std))

    def update(self, box_xyxy: np.ndarray) -> None:
        measurement = xyxy_to_xyah(box_xyxy)
        h = self.mean[3]
        noise = np.diag(np.square([_POSITION_WEIGHT * h, _POSITION_WEIGHT * h, 1e-1, _POSITION_WEIGHT * h]))
        projected_cov = _OBSERVATION @ self.covariance @ _OBSERVATION.T + noise
        gain = np.linalg.solve(projected_cov, _OBSERVATION @ self.covariance).T
        self.mean = self.mean + gain @ (measurement - _OBSERVATION @ self.mean)
        self.covariance = self.covariance - gain @ projected_cov @ gain.T

    def stop_velocity(self) -> None:
        """Zero the velocity: used when a track is lost, so it waits where it was last seen
        instead of drifting off while the person stands behind a shelf."""
        self.mean[4:] = 0.0

    @property
    def box(self) -> np.ndarray:
        return xyah_to_xyxy(self.mean)
