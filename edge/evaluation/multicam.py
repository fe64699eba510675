"""Multi-camera recordings for evaluating the fusion: WILDTRACK's training split as a
site, and degraded copies of its perfect boxes as a real detector would give them.

WILDTRACK's boxes are the annotations themselves: no misses, no false boxes, exact
edges. A real detector drops people, jitters edges and finds people in posters, so
the fusion is developed and reported on :func:`degrade`d copies (fixed seed):
15% of boxes dropped, each edge jittered by N(0, 0.04 x box height) pixels, and
about one false box per two camera-frames.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge.errors import DataFormatError
from edge.evaluation.trackers import PUBLIC_DETECTION_SCORES
from edge.motformat import mot_array, read_mot, save_mot

WILDTRACK_FPS = 2.0
WILDTRACK_IMAGE = (1920, 1080)
WILDTRACK_BOUNDS = ((-3.0, -9.0), (9.0, 27.0))


@dataclass(frozen=True, slots=True)
class Degradation:
    """How a real detector is worse than perfect boxes."""

    drop: float = 0.15
    edge_jitter: float = 0.04  # of the box height, per edge, one sigma
    false_per_frame: float = 0.5  # false boxes per camera-frame, on average
    seed: int = 0


def wildtrack_cameras(folder: str | Path) -> dict[str, list[list[float]]]:
    """Camera id (lower-case, as a site config needs) -> image-to-floor matrix."""
    path = Path(folder) / "H_image_to_floor_m.json"
    if not path.is_file():
        raise DataFormatError(f"{path} does not exist (WILDTRACK's matrices)")
    return {name.lower(): matrix for name, matrix in json.loads(path.read_text()).items()}


def wildtrack_site(folder: str | Path, *, store_id: str = "wildtrack") -> dict:
    """A site config (as a dict, for YAML) whose cameras are WILDTRACK's seven, each
    calibrated by its matrix; sources are placeholders (replay them with
    ``--detections CAMERA=det.txt``). Those det.txt files score on the public
    detections' scale (:func:`degrade`), so the tracker gets that scale's thresholds."""
    cameras = [
        {
            "id": camera,
            "source": f"rtsp://wildtrack.invalid/{camera}",
            "fps": WILDTRACK_FPS,
            "calibration": {"homography": matrix, "image_size": list(WILDTRACK_IMAGE)},
        }
        for camera, matrix in wildtrack_cameras(folder).items()
    ]
    (x0, y0), (x1, y1) = WILDTRACK_BOUNDS
    return {
        "site": {"id": store_id, "name": "WILDTRACK (ETH Zurich)"},
        "cameras": cameras,
        "floor": {"bounds": [[x0, y0], [x1, y1]], "heatmap_cell_m": 1.0},
        "tracker": dict(PUBLIC_DETECTION_SCORES),
    }


def degrade(rows: np.ndarray, degradation: Degradation, image_size: tuple[int, int],
            camera_index: int = 0) -> np.ndarray:
    """A degraded copy of perfect MOTChallenge detection rows (frames kept as they are).

    The random stream depends on ``seed`` and ``camera_index`` only, so a camera's
    copy is the same in every run.
    """
    rng = np.random.default_rng([degradation.seed, camera_index])
    keep = rng.random(len(rows)) >= degradation.drop
    kept = rows[keep].copy()
    heights = kept[:, 5]
    edges = np.c_[kept[:, 2], kept[:, 3], kept[:, 2] + kept[:, 4], kept[:, 3] + kept[:, 5]]
    edges += rng.normal(0.0, 1.0, edges.shape) * (degradation.edge_jitter * heights)[:, None]
    edges[:, 2] = np.maximum(edges[:, 2], edges[:, 0] + 2)
    edges[:, 3] = np.maximum(edges[:, 3], edges[:, 1] + 4)
    kept[:, 2:6] = np.c_[edges[:, :2], edges[:, 2:] - edges[:, :2]]
    # scores as the public MOTChallenge detections have them: true boxes mostly above
    # 0.9, false ones spread lower (a tracker's activation threshold then means the same)
    kept[:, 6] = np.clip(rng.normal(0.92, 0.06, len(kept)), 0.3, 1.0)
    frames = np.unique(rows[:, 0])
    false_frames: list[float] = []
    false_boxes: list[tuple[float, float, float, float]] = []
    false_scores: list[float] = []
    width, height = image_size
    typical = np.median(rows[:, 5]) if len(rows) else 200.0
    for frame in frames:
        for _ in range(rng.poisson(degradation.false_per_frame)):
            h = typical * rng.uniform(0.5, 1.5)
            w = h * rng.uniform(0.3, 0.45)
            left, top = rng.uniform(0, width - w), rng.uniform(height * 0.3, height - h)
            false_frames.append(frame)
            false_boxes.append((left, top, w, h))
            false_scores.append(rng.uniform(0.3, 0.9))
    false = mot_array(false_frames, -1, false_boxes, false_scores, corners=False)
    out = np.vstack([kept[:, :10], false])
    return out[np.argsort(out[:, 0], kind="stable")]


def write_degraded(folder: str | Path, out_dir: str | Path,
                   degradation: Degradation = Degradation()) -> dict[str, Path]:
    """Degrade every camera's ``det/<CAMERA>.txt`` into ``out_dir``; camera -> path."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {}
    for index, camera in enumerate(sorted(wildtrack_cameras(folder))):
        source = Path(folder) / "det" / f"{camera_file_name(folder, camera)}.txt"
        rows = degrade(read_mot(source), degradation, WILDTRACK_IMAGE, index)
        path = out_dir / f"{camera}.txt"
        save_mot(path, rows, box_decimals=1, score_decimals=3)
        paths[camera] = path
    return paths


def camera_file_name(folder: str | Path, camera: str) -> str:
    """The name WILDTRACK's files give a camera (``cvlab1`` -> ``CVLab1``).

    Raises:
        DataFormatError: the folder has no files of that camera.
    """
    for path in (Path(folder) / "det").glob("*.txt"):
        if path.stem.lower() == camera:
            return path.stem
    raise DataFormatError(f"no det file for camera {camera} in {folder}/det")
