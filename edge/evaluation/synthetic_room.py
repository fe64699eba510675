"""A crowded small room seen by several calibrated cameras, made up with known truth:
for the fusion where WILDTRACK is not enough (a small shop, people 0.7 m apart, a
camera whose calibration is 0.2 m off).

People walk between random points of a ``size`` x ``size`` metre room and stop now
and then, as shoppers do, never closer than ``min_gap_m``. Each camera is a pinhole
high in a corner looking at the room's centre: a person's box runs from their feet
to 1.7 m above them, a person hidden behind a nearer one (box overlap over
``occlusion_iou``) is not detected, and the boxes are degraded like a real
detector's (:class:`edge.evaluation.multicam.Degradation`). One camera's matrix is
given to the fusion ``calibration_error_m`` off, as a hurried installer's would be.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge.evaluation.multicam import Degradation, degrade
from edge.evaluation.trackers import PUBLIC_DETECTION_SCORES
from edge.motformat import mot_array, save_mot

PERSON_HEIGHT_M = 1.7
WIDTH_RATIO = 0.4


@dataclass(frozen=True, slots=True)
class Room:
    size: float = 6.0
    people: int = 15
    cameras: int = 4
    fps: float = 3.0
    frames: int = 240
    min_gap_m: float = 0.6
    camera_height_m: float = 3.0
    image: tuple[int, int] = (1280, 720)
    focal_px: float = 600.0
    occlusion_iou: float = 0.6
    calibration_error_m: float = 0.2
    seed: int = 0


def _camera(position: np.ndarray, target: np.ndarray, room: Room) -> np.ndarray:
    """3x4 projection matrix of a pinhole at ``position`` looking at ``target``."""
    forward = (target - position) / np.linalg.norm(target - position)
    right = np.cross(forward, [0.0, 0.0, 1.0])
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    rotation = np.stack([right, down, forward])
    width, height = room.image
    k = np.array([[room.focal_px, 0, width / 2], [0, room.focal_px, height / 2], [0, 0, 1]])
    return k @ np.c_[rotation, -rotation @ position]


def _project(projection: np.ndarray, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    homogeneous = np.c_[points, np.ones(len(points))] @ projection.T
    return homogeneous[:, :2] / homogeneous[:, 2:3], homogeneous[:, 2]


def _walk(room: Room, rng: np.random.Generator) -> np.ndarray:
    """``(frames, people, 2)`` floor positions."""
    margin = 0.3
    position = np.zeros((room.people, 2))
    for i in range(room.people):  # spread out at the start
        for _ in range(1000):
            candidate = rng.uniform(margin, room.size - margin, 2)
            if i == 0 or np.min(np.linalg.norm(position[:i] - candidate, axis=1)) > 0.9:
                break
        position[i] = candidate
    goal = rng.uniform(margin, room.size - margin, (room.people, 2))
    speed = rng.uniform(0.5, 1.2, room.people)
    pause = np.zeros(room.people)
    out = np.zeros((room.frames, room.people, 2))
    dt = 1.0 / room.fps
    for frame in range(room.frames):
        for i in range(room.people):
            if pause[i] > 0:
                pause[i] -= dt
                continue
            offset = goal[i] - position[i]
            distance = np.linalg.norm(offset)
            if distance < 0.2:
                goal[i] = rng.uniform(margin, room.size - margin, 2)
                pause[i] = rng.exponential(3.0) if rng.random() < 0.5 else 0.0
                continue
            step = position[i] + offset / distance * min(speed[i] * dt, distance)
            others = np.delete(position, i, axis=0)
            if np.min(np.linalg.norm(others - step, axis=1)) >= room.min_gap_m:
                position[i] = step
            else:  # someone in the way: step aside
                side = np.array([-offset[1], offset[0]]) / distance
                aside = position[i] + side * speed[i] * dt * rng.choice([-1, 1])
                aside = np.clip(aside, margin, room.size - margin)
                if np.min(np.linalg.norm(others - aside, axis=1)) >= room.min_gap_m:
                    position[i] = aside
        out[frame] = position
    return out


def make_room(room: Room, folder: str | Path) -> tuple[dict, dict[str, Path], Path]:
    """Write the room's degraded detections per camera and its floor truth.

    Returns:
        ``(site config dict, camera -> det.txt path, floor truth path)``.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(room.seed)
    walk = _walk(room, rng)
    centre = np.array([room.size / 2, room.size / 2, 0.8])
    corners = [(0, 0), (room.size, 0), (room.size, room.size), (0, room.size)]
    width, height = room.image
    cameras, paths = [], {}
    visible_any = np.zeros(walk.shape[:2], bool)
    for c in range(room.cameras):
        corner = np.array(corners[c % 4], dtype=float)
        position = np.r_[corner + (centre[:2] - corner) * -0.05, room.camera_height_m]
        projection = _camera(position, centre, room)
        floor_to_image = projection[:, [0, 1, 3]]
        image_to_floor = np.linalg.inv(floor_to_image)
        if c == 0 and room.calibration_error_m:
            shift = np.eye(3)
            shift[0, 2] = room.calibration_error_m  # this camera's floor is 0.2 m off
            image_to_floor = shift @ image_to_floor
        frames: list[int] = []
        shown_boxes: list[np.ndarray] = []
        for frame in range(room.frames):
            feet = np.c_[walk[frame], np.zeros(room.people)]
            heads = np.c_[walk[frame], np.full(room.people, PERSON_HEIGHT_M)]
            (uf, depth), (uh, _) = _project(projection, feet), _project(projection, heads)
            box_h = uf[:, 1] - uh[:, 1]
            box_w = WIDTH_RATIO * box_h
            boxes = np.c_[uf[:, 0] - box_w / 2, uh[:, 1], uf[:, 0] + box_w / 2, uf[:, 1]]
            inside = (depth > 0) & (boxes[:, 0] >= 0) & (boxes[:, 2] <= width) & \
                (boxes[:, 3] <= height) & (boxes[:, 3] > 0)
            order = np.argsort(depth)
            shown: list[int] = []
            for i in order:
                if not inside[i]:
                    continue
                if any(_covered(boxes[i], boxes[j]) > room.occlusion_iou for j in shown):
                    continue
                shown.append(i)
                visible_any[frame, i] = True
                frames.append(frame)
                shown_boxes.append(boxes[i])
        rows = mot_array(frames, -1, np.reshape(shown_boxes, (-1, 4)), 1.0, frame_offset=1)
        detections = degrade(rows, Degradation(seed=room.seed), room.image, c)
        name = f"cam{c + 1}"
        path = folder / f"{name}.txt"
        save_mot(path, detections, box_decimals=1, score_decimals=3)
        paths[name] = path
        cameras.append({"id": name, "source": f"rtsp://{name}.invalid/stream", "fps": room.fps,
                        "calibration": {"homography": image_to_floor.tolist(),
                                        "image_size": list(room.image)}})
    truth = folder / "floor.txt"
    with truth.open("w") as out:
        for frame in range(room.frames):
            for i in np.flatnonzero(visible_any[frame]):
                x, y = walk[frame, i]
                out.write(f"{frame + 1},{i + 1},{x:.3f},{y:.3f}\n")
    site = {"site": {"id": "small-room"}, "cameras": cameras,
            "floor": {"bounds": [[0, 0], [room.size, room.size]]},
            "tracker": dict(PUBLIC_DETECTION_SCORES)}  # degrade() scores as det.txt does
    return site, paths, truth


def _covered(box: np.ndarray, nearer: np.ndarray) -> float:
    """Share of ``box`` hidden behind ``nearer``."""
    x1, y1 = max(box[0], nearer[0]), max(box[1], nearer[1])
    x2, y2 = min(box[2], nearer[2]), min(box[3], nearer[3])
    inter = max(0.0, x2 - x1) * max(0.0, y2 - y1)
    area = (box[2] - box[0]) * (box[3] - box[1])
    return inter / area if area > 0 else 1.0
