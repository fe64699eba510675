"""Similarities between tracks and detections, and the one-to-one assignment.

Kept apart from the tracker so each piece can be read (and tested) alone: the
tracker decides *which* tracks and detections meet in each stage, these functions
only score pairs and pick the best matching.
"""

from __future__ import annotations

import lap
import numpy as np


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU matrix ``(len(a), len(b))`` of two sets of xyxy boxes."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)))
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-9), 0.0)


def centre_distance(tracks: np.ndarray, detections: np.ndarray) -> np.ndarray:
    """Distance between box centres in units of the track's box height, ``(n, m)``.

    Dividing by the height makes "one body height" mean the same for a person near
    the camera and one far away, so one threshold fits the whole image.
    """
    tracks = np.asarray(tracks, dtype=np.float64).reshape(-1, 4)
    detections = np.asarray(detections, dtype=np.float64).reshape(-1, 4)
    if len(tracks) == 0 or len(detections) == 0:
        return np.zeros((len(tracks), len(detections)))
    centre_t = (tracks[:, :2] + tracks[:, 2:]) / 2
    centre_d = (detections[:, :2] + detections[:, 2:]) / 2
    height = np.maximum(tracks[:, 3] - tracks[:, 1], 1.0)
    offset = centre_t[:, None, :] - centre_d[None, :, :]
    return np.linalg.norm(offset, axis=2) / height[:, None]


def height_ratio(tracks: np.ndarray, detections: np.ndarray) -> np.ndarray:
    """``max(h_t, h_d) / min(h_t, h_d)`` for every pair, ``(n, m)``; 1 is the same size."""
    tracks = np.asarray(tracks, dtype=np.float64).reshape(-1, 4)
    detections = np.asarray(detections, dtype=np.float64).reshape(-1, 4)
    h_t = np.maximum(tracks[:, 3] - tracks[:, 1], 1.0)[:, None]
    h_d = np.maximum(detections[:, 3] - detections[:, 1], 1.0)[None, :]
    return np.maximum(h_t, h_d) / np.minimum(h_t, h_d)


def assign(cost: np.ndarray, max_cost: float) -> list[tuple[int, int]]:
    """Minimum-cost one-to-one matching (Jonker-Volgenant, ``lap.lapjv``).

    Pairs costing more than ``max_cost`` are never matched; rows and columns may stay
    unmatched. NaN or infinite costs (a pair that must not match) are treated as
    unmatchable rather than raising, so one bad box cannot stop a camera.

    Returns:
        ``(row, column)`` pairs.
    """
    if cost.size == 0:
        return []
    cost = np.where(np.isfinite(cost), cost, max_cost + 1.0)
    _, row_to_col, _ = lap.lapjv(cost, extend_cost=True, cost_limit=max_cost)
    return [(row, int(col)) for row, col in enumerate(row_to_col) if col >= 0]


def direction_cost(
    headings: np.ndarray, origins: np.ndarray, detections: np.ndarray
) -> np.ndarray:
    """OC-SORT's momentum term, ``(n, m)``: ``θ/π - 1/2`` for each track and detection.

    ``θ`` is the angle between a track's heading (a unit vector, NaN when unknown) and
    the way from its last observed centre (``origins``, ``(n, 2)``) to the detection's
    centre: -1/2 straight ahead, 0 at a right angle, +1/2 straight back. A pair whose
    angle is unknown (no heading yet, or a detection centred on the origin) scores 0,
    like a right angle, so it neither helps nor hurts.
    """
    headings = np.asarray(headings, dtype=np.float64).reshape(-1, 2)
    origins = np.asarray(origins, dtype=np.float64).reshape(-1, 2)
    detections = np.asarray(detections, dtype=np.float64).reshape(-1, 4)
    if len(headings) == 0 or len(detections) == 0:
        return np.zeros((len(headings), len(detections)))
    centres = (detections[:, :2] + detections[:, 2:]) / 2
    ways = centres[None, :, :] - origins[:, None, :]
    lengths = np.linalg.norm(ways, axis=2)
    cosine = np.einsum("nmk,nk->nm", ways, headings) / np.maximum(lengths, 1e-9)
    cost = np.arccos(np.clip(cosine, -1.0, 1.0)) / np.pi - 0.5
    return np.where(np.isfinite(cost) & (lengths > 1e-9), cost, 0.0)
