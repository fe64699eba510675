"""The MOTChallenge scenes the tracker is tuned and gated on, read from their folders.

Each scene folder holds ``seqinfo.ini`` (frame rate, frame size), ``det/det.txt``
(public detections) and ``gt/gt.txt``. Six scenes ship in the shared assets, spanning
7-30 frames/s, static and moving cameras and 640-1920 pixels wide: a tracker setting
is judged on all of them, never on one (docs/vision.md).
"""

from __future__ import annotations

import configparser
import math
from dataclasses import dataclass
from pathlib import Path

from edge.errors import DataFormatError

# Folders under the shared assets' mot/ folder, in the order tables list them.
SCENE_FOLDERS = (
    "PETS09-S2L1",
    "TUD-Campus",
    "MOT15-dev/ADL-Rundle-6",
    "MOT15-dev/ETH-Bahnhof",
    "MOT15-dev/KITTI-13",
    "MOT15-dev/Venice-2",
)

# Scenes whose recording is shared too (paths under the shared assets), so the product's
# own detector can be run on them: video frame N is ground-truth frame N + 1.
SCENE_VIDEOS = {"PETS09-S2L1": "video/pets09-s2l1-view001.avi",
                "TUD-Campus": "mot/TUD-Campus/TUD-Campus.mp4"}


@dataclass(frozen=True, slots=True)
class Scene:
    """One MOTChallenge sequence: where its files are and how it was filmed."""

    name: str
    folder: Path
    fps: float
    width: int
    height: int

    @property
    def det(self) -> Path:
        return self.folder / "det" / "det.txt"

    @property
    def gt(self) -> Path:
        return self.folder / "gt" / "gt.txt"


def read_scene(folder: str | Path, fps: float | None = None) -> Scene:
    """A scene from its folder's ``seqinfo.ini``.

    Args:
        fps: the frame rate to use instead of ``seqinfo.ini``'s ``frameRate`` (for a
            sequence whose file lacks it or states it wrong).

    Raises:
        DataFormatError: no ``seqinfo.ini``, or a frame rate that is missing, not a
            number, zero or negative, with no ``fps`` given instead: a tracker whose
            timings are in seconds cannot run without it, and guessing one would
            silently change every time-based setting.
    """
    folder = Path(folder)
    info_path = folder / "seqinfo.ini"
    if not info_path.is_file():
        raise DataFormatError(f"{info_path} does not exist: a MOTChallenge scene folder "
                              "holds seqinfo.ini with its frameRate, imWidth and imHeight")
    parser = configparser.ConfigParser()
    try:
        parser.read(info_path)
        section = parser["Sequence"]
    except (configparser.Error, KeyError):
        raise DataFormatError(f"{info_path}: expected a [Sequence] section") from None
    name = section.get("name", folder.name)
    if fps is None:
        fps = _positive(info_path, section, "frameRate", what="frame rate (frames/s)")
    elif not (math.isfinite(fps) and fps > 0):
        raise DataFormatError(f"the frame rate given for {name} must be > 0, got {fps}")
    width = int(_positive(info_path, section, "imWidth", what="frame width (pixels)"))
    height = int(_positive(info_path, section, "imHeight", what="frame height (pixels)"))
    return Scene(name=name, folder=folder, fps=float(fps), width=width, height=height)


def _positive(path: Path, section: configparser.SectionProxy, key: str, what: str) -> float:
    raw = section.get(key)
    if raw is None or not raw.strip():
        raise DataFormatError(f"{path}: {key} (the {what}) is missing; add it, or pass the "
                              "value on the command line (--fps for the frame rate)")
    try:
        value = float(raw)
    except ValueError:
        raise DataFormatError(f"{path}: {key} must be a number, got {raw!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise DataFormatError(f"{path}: {key} (the {what}) must be > 0, got {raw!r}; fix "
                              "it, or pass the right value on the command line")
    return value


def shared_scenes(shared: str | Path) -> list[Scene]:
    """The six scenes of the shared assets (``shared`` is the assets folder)."""
    return [read_scene(Path(shared) / "mot" / folder) for folder in SCENE_FOLDERS]
