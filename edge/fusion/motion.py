"""A constant-velocity motion model on the floor, for many people at once.

State per person: ``(x, y, vx, vy)`` in metres and metres per second, with its
``4x4`` covariance. The process noise is white acceleration of spectral density
``q`` (m²/s³): over ``dt`` seconds a walker's position may drift by about
``sqrt(q dt³/3)`` from the straight line, which is what lets a track carry a person
across a short blind gap between two cameras and still gate them tightly when the
cameras see them every frame.
"""

from __future__ import annotations

import numpy as np


def transition(dt: float) -> np.ndarray:
    f = np.eye(4)
    f[0, 2] = f[1, 3] = dt
    return f


def process_noise(dt: float, q: float) -> np.ndarray:
    dt = max(dt, 0.0)
    block = q * np.array([[dt**3 / 3.0, dt**2 / 2.0], [dt**2 / 2.0, dt]])
    noise = np.zeros((4, 4))
    noise[np.ix_([0, 2], [0, 2])] = block
    noise[np.ix_([1, 3], [1, 3])] = block
    return noise


def predict(x: np.ndarray, p: np.ndarray, dt: float, q: float) -> tuple[np.ndarray, np.ndarray]:
    """Every state ``(n, 4)`` and covariance ``(n, 4, 4)`` moved on by ``dt`` seconds."""
    if len(x) == 0 or dt <= 0:
        return x, p
    f = transition(dt)
    return x @ f.T, f @ p @ f.T + process_noise(dt, q)


def inverse_2x2(m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Inverse and determinant of a stack of 2x2 matrices ``(..., 2, 2)``."""
    a, b, c, d = m[..., 0, 0], m[..., 0, 1], m[..., 1, 0], m[..., 1, 1]
    det = a * d - b * c
    safe = np.where(np.abs(det) < 1e-18, 1e-18, det)
    inv = np.stack([np.stack([d, -b], -1), np.stack([-c, a], -1)], -2) / safe[..., None, None]
    return inv, det


def mahalanobis(
    x: np.ndarray, p: np.ndarray, z: np.ndarray, r: np.ndarray, extra: np.ndarray | None = None,
    lead: np.ndarray | None = None, lead_sd: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Squared Mahalanobis distances ``(n, m)`` between ``n`` predicted positions and
    ``m`` sightings, the Euclidean ones, and the log-determinants of the innovation
    covariances.

    Args:
        x, p: states ``(n, 4)`` and covariances ``(n, 4, 4)``.
        z, r: sightings ``(m, 2)`` and their covariances ``(m, 2, 2)``.
        extra: ``(n,)`` variance added per person on both axes (clock skew).
        lead: ``(m,)`` seconds each sighting was taken after the states' time: each
            state is moved on by it (position plus velocity times it, and its
            covariance with it). None: all at the states' time.
        lead_sd: ``(m,)`` how many seconds each ``lead`` may be off (a camera whose delay
            is not known yet): that many seconds of each person's velocity are added
            as uncertainty along it.
    """
    dx = z[None, :, 0] - x[:, None, 0]  # (n, m)
    dy = z[None, :, 1] - x[:, None, 1]
    extra_v = np.zeros(len(x)) if extra is None else extra
    # the innovation covariance [[a, b], [b, d]] of every pair, written out: a stack of
    # (n, m, 2, 2) matrices and einsum cost ten times as much at 30 people x 8 cameras
    a = (p[:, 0, 0] + extra_v)[:, None] + r[None, :, 0, 0]
    b = p[:, 0, 1][:, None] + r[None, :, 0, 1]
    d = (p[:, 1, 1] + extra_v)[:, None] + r[None, :, 1, 1]
    if lead is not None and lead.any():
        h = lead[None, :]  # H = [I, h I]: the position h seconds on
        dx = dx - x[:, None, 2] * h
        dy = dy - x[:, None, 3] * h
        a = a + 2 * h * p[:, 0, 2][:, None] + h**2 * p[:, 2, 2][:, None]
        b = b + h * (p[:, 0, 3] + p[:, 1, 2])[:, None] + h**2 * p[:, 2, 3][:, None]
        d = d + 2 * h * p[:, 1, 3][:, None] + h**2 * p[:, 3, 3][:, None]
    if lead_sd is not None and lead_sd.any():
        s2 = lead_sd[None, :] ** 2
        a = a + s2 * (x[:, 2] ** 2)[:, None]
        b = b + s2 * (x[:, 2] * x[:, 3])[:, None]
        d = d + s2 * (x[:, 3] ** 2)[:, None]
    det = np.maximum(a * d - b * b, 1e-18)
    d2 = (d * dx * dx - 2.0 * b * dx * dy + a * dy * dy) / det
    return d2, np.hypot(dx, dy), np.log(det)


def update(
    x: np.ndarray, p: np.ndarray, z: np.ndarray, r: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Kalman update of ``k`` states with one position sighting each (rows aligned)."""
    s = p[:, :2, :2] + r
    inv, _ = inverse_2x2(s)
    gain = p[:, :, :2] @ inv  # (k, 4, 2)
    innovation = z - x[:, :2]
    x = x + np.einsum("kij,kj->ki", gain, innovation)
    p = p - gain @ p[:, :2, :]
    p = (p + np.transpose(p, (0, 2, 1))) / 2.0
    return x, p


def fuse(z: np.ndarray, r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Information-weighted mean ``(2,)`` and covariance ``(2, 2)`` of sightings
    ``(k, 2)`` with covariances ``(k, 2, 2)`` of one person."""
    inv, _ = inverse_2x2(r)
    info = inv.sum(axis=0)
    cov, _ = inverse_2x2(info)
    mean = cov @ np.einsum("kij,kj->i", inv, z)
    return mean, cov
