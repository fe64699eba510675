"""Image-to-floor mapping of a camera: a homography fitted from point pairs.

A person's floor position is the bottom-centre of their box (where the feet are),
mapped through the homography into the site's floor frame, in metres.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from edge.config.site import SiteConfig
from edge.errors import CalibrationError


@dataclass(frozen=True, slots=True)
class Homography:
    """A fitted image-to-floor homography.

    Attributes:
        matrix: ``(3, 3)`` mapping homogeneous pixels to homogeneous floor metres.
        reprojection_error_m: per calibration point, distance in metres between the
            given floor point and where its image point maps.
    """

    matrix: np.ndarray
    reprojection_error_m: np.ndarray

    def __post_init__(self) -> None:
        if self.matrix.shape != (3, 3):
            raise ValueError(f"homography matrix must have shape (3, 3), got {self.matrix.shape}")

    @property
    def inverse(self) -> np.ndarray:
        return np.linalg.inv(self.matrix)

    def image_to_floor(self, points: np.ndarray) -> np.ndarray:
        """Map ``(n, 2)`` pixel points to ``(n, 2)`` floor metres."""
        return _apply(self.matrix, points)

    def floor_to_image(self, points: np.ndarray) -> np.ndarray:
        """Map ``(n, 2)`` floor metres to ``(n, 2)`` pixels (for drawing zones)."""
        return _apply(self.inverse, points)


def _apply(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    if len(points) == 0:
        return np.zeros((0, 2), np.float64)
    mapped = cv2.perspectiveTransform(points.reshape(-1, 1, 2), matrix)
    return mapped.reshape(-1, 2)


def _spread(points: np.ndarray) -> float:
    """Smallest singular value of the centred points: 0 when they are collinear."""
    centred = points - points.mean(axis=0)
    return float(np.linalg.svd(centred, compute_uv=False)[-1] / np.sqrt(len(points)))


def fit_homography(image_points: np.ndarray, floor_points: np.ndarray) -> Homography:
    """Fit the homography from at least 4 matched point pairs (least squares).

    Raises:
        CalibrationError: too few pairs, points (nearly) on one line, or no fit.
    """
    image = np.asarray(image_points, dtype=np.float64).reshape(-1, 2)
    floor = np.asarray(floor_points, dtype=np.float64).reshape(-1, 2)
    if len(image) != len(floor) or len(image) < 4:
        raise CalibrationError(
            f"a homography needs at least 4 matched point pairs, got {len(image)} image and "
            f"{len(floor)} floor points"
        )
    if _spread(image) < 1.0 or _spread(floor) < 0.05:
        raise CalibrationError(
            "calibration points are (nearly) collinear: pick marks that span the floor in "
            "both directions, not along one line"
        )
    matrix, _ = cv2.findHomography(image, floor, method=0)
    if matrix is None or not np.all(np.isfinite(matrix)) or abs(np.linalg.det(matrix)) < 1e-12:
        raise CalibrationError("no homography fits these point pairs; check they match")
    errors = np.linalg.norm(_apply(matrix, image) - floor, axis=1)
    return Homography(matrix=matrix, reprojection_error_m=errors)


def fit_camera_calibrations(site: SiteConfig, *, source: str = "site") -> dict[str, Homography]:
    """Fit every camera's homography, refusing any whose fit is too poor."""
    fitted = {}
    for index, camera in enumerate(site.cameras):
        where = f"{source} cameras[{index}] ({camera.id}).calibration"
        calibration = camera.calibration
        if calibration.homography is not None:  # checked by the config: finite, regular
            fitted[camera.id] = Homography(
                matrix=np.array(calibration.homography, dtype=np.float64),
                reprojection_error_m=np.zeros(0),
            )
            continue
        try:
            homography = fit_homography(
                np.array(calibration.image_points), np.array(calibration.floor_points)
            )
        except CalibrationError as error:
            raise CalibrationError(f"{where}: {error}") from None
        worst = float(homography.reprojection_error_m.max())
        if worst > calibration.max_reprojection_error_m:
            raise CalibrationError(
                f"{where}: a point reprojects {worst:.2f} m from where it should be (limit "
                f"{calibration.max_reprojection_error_m} m); a point pair is probably mismatched"
            )
        fitted[camera.id] = homography
    return fitted
