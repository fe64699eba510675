"""Drawing for engineers: boxes, ids, floor zones and lines, each person's zone and dwell.

Pure drawing, apart from the logic (STYLE.md #4): it reads records and returns a new
image, never changing the frame it is given. By default nobody is recognisable: every
detected person is coarsely pixelated (tracked or not), and then the whole picture is
pixelated and softened (:func:`cover_scene`), so that the people the detector misses
(hidden in part, too small, standing still) are covered too; boxes, ids and the floor
are drawn sharp on top. Covering only the detections left 106 of 4,650 ground-truth
heads of the PETS recording visible (issue 18 #11, measured on the decoded video: a
head keeping half its fine detail); covering the scene leaves none.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np
from shapely import contains_xy
from shapely.geometry import Polygon

from edge.calibration import Homography
from edge.config.floor import FloorConfig
from edge.records import Detections, FloorTracks, Frame

ZONE_COLOURS = {
    "entrance": (80, 200, 80),
    "checkout": (60, 60, 230),
    "product": (230, 160, 40),
    "queue": (0, 200, 255),
    "service": (200, 80, 200),
    "passage": (160, 160, 160),
    "staff": (90, 90, 90),
}
TRACK_COLOUR = (40, 220, 255)
LINE_COLOUR = (255, 0, 255)
PIXEL_BLOCKS = 6  # a person's box is reduced to about this many blocks across its height
# The whole picture is reduced to about this many blocks across its height (6 px blocks
# on a 576-line frame: a head 12-25 px tall keeps 2-4 blocks), then blurred over a third
# of a block so that block edges do not trace the original's outlines.
SCENE_BLOCKS = 96
MIN_SCENE_BLOCK_PX = 4


def pixelate(image: np.ndarray, xyxy: np.ndarray, margin: float = 0.1) -> np.ndarray:
    """Return a copy of ``image`` with every box coarsely pixelated (faces unreadable)."""
    out = image.copy()
    height, width = image.shape[:2]
    for x1, y1, x2, y2 in np.asarray(xyxy, dtype=np.float64).reshape(-1, 4):
        pad_x, pad_y = (x2 - x1) * margin, (y2 - y1) * margin
        left, top = int(max(x1 - pad_x, 0)), int(max(y1 - pad_y, 0))
        right, bottom = int(min(x2 + pad_x, width)), int(min(y2 + pad_y, height))
        if right - left < 2 or bottom - top < 2:
            continue
        region = out[top:bottom, left:right]
        block = max((bottom - top) // PIXEL_BLOCKS, 4)
        small = cv2.resize(
            region,
            (max((right - left) // block, 1), max((bottom - top) // block, 1)),
            interpolation=cv2.INTER_AREA,
        )
        out[top:bottom, left:right] = cv2.resize(
            small, (right - left, bottom - top), interpolation=cv2.INTER_NEAREST
        )
    return out


def cover_scene(image: np.ndarray, blocks: int = SCENE_BLOCKS) -> np.ndarray:
    """Return a copy of the whole picture pixelated into about ``blocks`` rows of blocks,
    then softened: nobody in it is recognisable, found by the detector or not, while the
    layout of the scene (aisles, shelves, people as blobs) stays readable."""
    height, width = image.shape[:2]
    block = max(height // blocks, MIN_SCENE_BLOCK_PX)
    small = cv2.resize(image, (max(width // block, 1), max(height // block, 1)),
                       interpolation=cv2.INTER_AREA)
    coarse = cv2.resize(small, (width, height), interpolation=cv2.INTER_NEAREST)
    return cv2.GaussianBlur(coarse, (0, 0), block / 3)


@dataclass(slots=True)
class _Presence:
    zone: str | None = None
    since: float = 0.0
    last_seen: float = 0.0


@dataclass
class Annotator:
    """Draws one camera's view with its floor overlay.

    Args:
        floor: the site's floor (zones and lines, in metres).
        homography: the camera's calibration, used backwards to draw the floor.
        pixelate_people: pixelate every detected person and cover the whole picture
            (default, :func:`cover_scene`). Turning it off is for engineers' own test
            footage only.
        forget_after_s: per-track labels are dropped this long after a track was
            last seen, so memory stays flat.
    """

    floor: FloorConfig
    homography: Homography
    pixelate_people: bool = True
    forget_after_s: float = 10.0
    _presence: dict[int, _Presence] = field(default_factory=dict, init=False)

    def __post_init__(self) -> None:
        self._zones = [(zone, Polygon(zone.polygon)) for zone in self.floor.zones]

    def _zone_at(self, xy: np.ndarray) -> list[str | None]:
        found: list[str | None] = [None] * len(xy)
        for zone, polygon in self._zones:
            inside = contains_xy(polygon, xy[:, 0], xy[:, 1]) if len(xy) else []
            for i, hit in enumerate(inside):
                if hit and found[i] is None:
                    found[i] = zone.id
        return found

    def _labels(self, floor: FloorTracks) -> list[str]:
        now = floor.timestamp
        labels = []
        for track_id, zone in zip(floor.tracks.tracker_id, self._zone_at(floor.xy), strict=True):
            presence = self._presence.setdefault(int(track_id), _Presence(zone, now, now))
            if presence.zone != zone:
                presence.zone, presence.since = zone, now
            presence.last_seen = now
            where = f"{zone} {now - presence.since:.0f}s" if zone else "-"
            labels.append(f"#{int(track_id)} {where}")
        stale = [i for i, p in self._presence.items() if now - p.last_seen > self.forget_after_s]
        for track_id in stale:
            del self._presence[track_id]
        return labels

    def _draw_floor(self, image: np.ndarray) -> None:
        overlay = image.copy()
        for zone, _ in self._zones:
            corners = self.homography.floor_to_image(np.array(zone.polygon))
            if not np.all(np.isfinite(corners)):
                continue
            points = corners.round().astype(np.int32)
            colour = ZONE_COLOURS.get(zone.kind, (200, 200, 200))
            cv2.fillPoly(overlay, [points], colour)
            cv2.polylines(image, [points], True, colour, 2, cv2.LINE_AA)
            anchor = points.mean(axis=0).astype(int)
            cv2.putText(image, zone.label, tuple(int(v) for v in anchor), cv2.FONT_HERSHEY_SIMPLEX,
                        0.45, (255, 255, 255), 1, cv2.LINE_AA)
        cv2.addWeighted(overlay, 0.18, image, 0.82, 0, dst=image)
        for line in self.floor.lines:
            ends = self.homography.floor_to_image(np.array([line.start, line.end]))
            if np.all(np.isfinite(ends)):
                a, b = (tuple(int(v) for v in p) for p in ends.round())
                cv2.line(image, a, b, LINE_COLOUR, 2, cv2.LINE_AA)
                cv2.putText(image, line.id, a, cv2.FONT_HERSHEY_SIMPLEX, 0.45, LINE_COLOUR, 1,
                            cv2.LINE_AA)

    def draw(
        self, frame: Frame, floor: FloorTracks, detections: Detections | None = None
    ) -> np.ndarray:
        """The annotated picture of one frame (a new array).

        Args:
            frame: the decoded frame (not changed).
            floor: the frame's tracks on the floor.
            detections: every person found in the frame (default: ``floor.detections``,
                which the pipeline fills). All of them are pixelated, tracked or not,
                and then the whole picture is covered.
        """
        found = floor.detections if detections is None else detections
        to_blur = np.concatenate([floor.tracks.xyxy, found.xyxy]).reshape(-1, 4)
        if self.pixelate_people:
            image = cover_scene(pixelate(frame.image, to_blur))
        else:
            image = frame.image.copy()
        self._draw_floor(image)
        for (x1, y1, x2, y2), label in zip(floor.tracks.xyxy, self._labels(floor), strict=True):
            top_left, bottom_right = (int(x1), int(y1)), (int(x2), int(y2))
            cv2.rectangle(image, top_left, bottom_right, TRACK_COLOUR, 2)
            cv2.circle(image, (int((x1 + x2) / 2), int(y2)), 3, TRACK_COLOUR, -1)
            cv2.putText(image, label, (int(x1), max(int(y1) - 4, 10)), cv2.FONT_HERSHEY_SIMPLEX,
                        0.42, TRACK_COLOUR, 1, cv2.LINE_AA)
        return image
