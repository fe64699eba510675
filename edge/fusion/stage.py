"""The fusion stage of a site: its cameras' calibrations, footprints and the
store-wide tracker, built once from the site config and shared by the replay and the
live fusion service."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping

import numpy as np
import shapely

from edge.calibration import Homography, fit_camera_calibrations
from edge.config import SiteConfig
from edge.fusion.coverage import Coverage, footprint
from edge.fusion.delays import CameraDelays
from edge.fusion.observe import floor_side_sign, observe
from edge.fusion.tracker import FloorFusion
from edge.records import FloorObservations, FloorTracks, FusedTracks

log = logging.getLogger(__name__)


class FusionStage:
    """Turns each camera's floor tracks into observations and fuses them.

    Args:
        site: the site config (cameras, calibrations, floor bounds, ``fusion``).
        image_sizes: per camera, its frame size ``(width, height)`` where known beyond
            the config's ``calibration.image_size`` (read from a video file).
        homographies: the fitted calibrations, when the caller has them already.
    """

    def __init__(
        self,
        site: SiteConfig,
        image_sizes: Mapping[str, tuple[int, int]] | None = None,
        homographies: Mapping[str, Homography] | None = None,
    ) -> None:
        self.site = site
        self.config = site.fusion
        fitted = dict(homographies) if homographies is not None else fit_camera_calibrations(site)
        sizes = dict(image_sizes or {})
        self.matrices: dict[str, np.ndarray] = {}
        self.signs: dict[str, float] = {}
        self.areas: dict[str, shapely.Polygon | None] = {}
        footprints: dict[str, shapely.Polygon | None] = {}
        for camera in site.cameras:
            matrix = fitted[camera.id].matrix
            size = sizes.get(camera.id) or camera.calibration.image_size
            area = shapely.Polygon(camera.floor_area) if camera.floor_area else None
            if area is not None:
                shapely.prepare(area)
            self.matrices[camera.id] = matrix
            self.signs[camera.id] = _floor_sign(matrix, size, camera.calibration.image_points)
            self.areas[camera.id] = area
            if size is not None:
                footprints[camera.id] = footprint(matrix, size,
                                                  max_range_m=self.config.max_range_m, area=area)
            else:
                footprints[camera.id] = area  # unknown frame: its floor_area, or everywhere
        self.coverage = Coverage(footprints)
        self.tracker = FloorFusion(self.config, self.coverage, site.floor.bounds,
                                   new_person_confidence=site.tracker.new_track_threshold)
        self.delays = CameraDelays(self.config, {c.id: c.stream_delay_s for c in site.cameras})

    def learn_image_size(self, camera_id: str, size: tuple[int, int]) -> None:
        """A camera's frame size, learnt from its first frame: its footprint and the
        side of its horizon the floor is on follow."""
        matrix = self.matrices[camera_id]
        self.signs[camera_id] = floor_side_sign(matrix, size)
        self.coverage.set_footprint(camera_id, footprint(
            matrix, size, max_range_m=self.config.max_range_m, area=self.areas[camera_id]))

    def lonely_cameras(self) -> list[str]:
        """Cameras whose footprint overlaps no other camera's (known footprints only): a
        person walking from one into the next is bridged by motion alone."""
        overlaps = self.coverage.overlaps()
        known = [c for c, p in self.coverage.footprints.items() if p is not None]
        if len(known) < 2:
            return []
        return [c for c in known
                if not any(area > 0 for pair, area in overlaps.items() if c in pair)]

    def observe(self, floor: FloorTracks) -> FloorObservations:
        """One camera frame's detections as floor observations."""
        camera = floor.camera_id
        return observe(
            floor,
            self.matrices[camera],
            floor_sign=self.signs[camera],
            pixel_noise=self.config.pixel_noise,
            calibration_noise_m=self.config.calibration_noise_m,
            area=self.areas[camera],
        )

    def camera_time(self, seen: FloorObservations) -> float:
        """When a camera frame was taken, as far as is known: its stamp less its camera's
        delay (:mod:`edge.fusion.delays`). Pick the frames of an instant by it."""
        return self.delays.camera_time(seen)

    def snapshot(self) -> dict:
        """The tracker's state and the cameras' learnt delays (:meth:`restore`)."""
        return {**self.tracker.snapshot(), "camera_delays": self.delays.snapshot()}

    def restore(self, snapshot: Mapping) -> None:
        """Go on from a :meth:`snapshot` (a state saved before the delays were kept
        restores the tracker alone).

        Raises:
            ValueError: it cannot be read (the stage is then as new).
        """
        self.tracker.restore(snapshot)
        try:
            if "camera_delays" in snapshot:
                self.delays.restore(snapshot["camera_delays"])
        except ValueError:
            self.tracker.reset()
            raise

    def step(
        self, frame_index: int, t: float, observations: Iterable[FloorObservations]
    ) -> FusedTracks:
        """Fuse one instant ``t`` (on the cameras' corrected clock): each frame's stamp is
        corrected by its camera's delay, then the delays learn from what was matched."""
        fused = self.tracker.step(frame_index, t,
                                  [self.delays.correct(seen) for seen in observations],
                                  self.delays.unsure())
        if self.config.learn_camera_delays:
            self.delays.learn(t, self.tracker.aligned)
        return fused


def _floor_sign(matrix: np.ndarray, size: tuple[int, int] | None,
                image_points: list[tuple[float, float]] | None) -> float:
    """Which side of the horizon the floor is on: from the bottom of the frame when
    its size is known, else from the calibration marks (they lie on the floor)."""
    if size is None and image_points:
        w = np.c_[np.array(image_points), np.ones(len(image_points))] @ matrix[2]
        return 1.0 if float(np.median(w)) >= 0 else -1.0
    return floor_side_sign(matrix, size)
