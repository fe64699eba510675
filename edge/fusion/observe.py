"""One camera's people as floor observations with an uncertainty each.

A person's floor position is the bottom-centre of their box mapped through the
camera's homography. How far that can be off is worked out, not assumed: the box's
edges wobble by a fraction of its height (``pixel_noise``: a detector's box edges
move by a few percent of the person's height from frame to frame), and the
homography stretches a pixel into more floor the further the person stands from the
camera. The position's covariance is therefore ``J Σ Jᵀ + σ²_cal I``, with ``J`` the
homography's Jacobian at the feet, ``Σ`` the pixel covariance of the bottom-centre
and ``σ_cal`` the calibration's own floor error. A person near the camera gets a
covariance of a few centimetres, one at the far end of a plaza several decimetres
along the line of sight: the fusion weighs and gates each sighting by it.
"""

from __future__ import annotations

import numpy as np
import shapely

from edge.records import Detections, FloorObservations, FloorTracks

MIN_BOX_HEIGHT_PX = 4.0


def homography_jacobian(
    matrix: np.ndarray, points: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Floor position and its ``(n, 2, 2)`` derivative by pixel at each ``(n, 2)`` point.

    Returns:
        ``(floor_xy (n, 2), jacobian (n, 2, 2), w (n,))`` where ``w`` is the homogeneous
        scale: its sign tells which side of the horizon a pixel lies (see
        :func:`below_horizon`).
    """
    points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    homogeneous = np.c_[points, np.ones(len(points))] @ matrix.T  # (n, 3)
    w = homogeneous[:, 2]
    safe = np.where(np.abs(w) < 1e-12, 1e-12, w)
    xy = homogeneous[:, :2] / safe[:, None]
    # d(q_i / w)/dp_j = (H_ij - xy_i H_2j) / w
    jacobian = (matrix[None, :2, :2] - xy[:, :, None] * matrix[None, 2:3, :2]) / safe[:, None, None]
    return xy, jacobian, w


def floor_side_sign(matrix: np.ndarray, image_size: tuple[int, int] | None) -> float:
    """The sign of the homogeneous scale on the floor the camera sees: that of the
    bottom-centre of the image (the nearest floor), or of the pixel origin's row
    below it when the image size is unknown."""
    width, height = image_size if image_size is not None else (2.0, 2.0)
    _, _, w = homography_jacobian(matrix, np.array([[width / 2.0, height - 1.0]]))
    return 1.0 if w[0] >= 0 else -1.0


def below_horizon(w: np.ndarray, floor_sign: float) -> np.ndarray:
    """Whether each pixel (by its homogeneous scale ``w``) maps onto the floor in front
    of the camera; pixels above the horizon map "behind" it, nowhere real."""
    return (w * floor_sign) > 1e-12


def observe(
    floor: FloorTracks,
    matrix: np.ndarray,
    *,
    floor_sign: float,
    pixel_noise: float,
    calibration_noise_m: float,
    area: shapely.Polygon | None = None,
) -> FloorObservations:
    """Everyone the camera's detector found in one frame, as floor observations.

    Every detection goes to the fusion, not only the camera's confirmed tracks: the
    fusion confirms people from several cameras at once, so a person is seen from the
    first frame another camera agrees. The camera's own track id rides along when the
    detection is one of its confirmed tracks (a continuity hint). Detections whose feet
    lie above the horizon (the calibration cannot place them) or outside the camera's
    ``area`` (its ``floor_area``) are left out.
    """
    detections: Detections = floor.detections
    if len(detections) == 0:
        return FloorObservations.empty(floor.camera_id, floor.frame_index, floor.timestamp)
    boxes = np.asarray(detections.xyxy, dtype=np.float64)
    anchors = detections.anchors
    xy, jacobian, w = homography_jacobian(matrix, anchors)
    heights = np.maximum(boxes[:, 3] - boxes[:, 1], MIN_BOX_HEIGHT_PX)
    sigma = pixel_noise * heights + 1.0  # a pixel of quantisation on top
    # bottom-centre: x is the mean of two edges (variance halves), y one edge
    pixel_cov = np.zeros((len(boxes), 2, 2))
    pixel_cov[:, 0, 0] = sigma**2 / 2.0
    pixel_cov[:, 1, 1] = sigma**2
    covariance = jacobian @ pixel_cov @ np.transpose(jacobian, (0, 2, 1))
    covariance += np.eye(2)[None] * calibration_noise_m**2
    local = _local_ids(boxes, floor)
    keep = below_horizon(w, floor_sign) & np.all(np.isfinite(xy), axis=1)
    if area is not None and keep.any():
        keep &= shapely.contains_xy(area, xy[:, 0], xy[:, 1])
    return FloorObservations(
        floor.camera_id, floor.frame_index, floor.timestamp,
        xy[keep], covariance[keep], local[keep],
        np.asarray(detections.confidence, dtype=np.float64)[keep],
    )


def _local_ids(boxes: np.ndarray, floor: FloorTracks) -> np.ndarray:
    """The camera track id of each detection (tracks carry their detection's own box)."""
    local = np.full(len(boxes), -1, dtype=np.int64)
    tracks = floor.tracks
    if len(tracks) == 0:
        return local
    track_boxes = np.asarray(tracks.xyxy, dtype=np.float64)
    same = np.all(np.abs(boxes[:, None, :] - track_boxes[None, :, :]) < 1e-3, axis=2)
    rows, cols = np.nonzero(same)
    local[rows] = np.asarray(tracks.tracker_id, dtype=np.int64)[cols]
    return local
