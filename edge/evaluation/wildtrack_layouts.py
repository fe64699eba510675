"""Random counting lines and zones on WILDTRACK: do the counts hold on a scene the
settings were never tuned on (issue 14)?

PETS09 is the one recording the visit settings were chosen on. WILDTRACK is another
square, seven other cameras and 2 frames/s instead of 7: its degraded boxes
(:func:`edge.evaluation.multicam.degrade`, seed 0) are replayed with the product's
default settings, either all cameras fused into store-wide tracks or one camera on
its own, and the random layouts of :func:`edge.evaluation.layouts.evaluate_layouts`
are scored on them against ``gt/floor.txt``. Lines and zones go where WILDTRACK's
ground-truth people walk, ``margin_m`` inside the hull of their positions (the site
has no ``floor_area``), so a single camera's layouts lie inside that camera's view.

The ground truth has flaws (the README: about 20 steps where an id jumps more than
1.5 m between frames); they are kept: a scene not tuned on comes with its flaws.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import sqlite_utils
import yaml

from edge.config import SiteConfig, parse_site
from edge.evaluation.floor import read_floor_truth
from edge.evaluation.layouts import DEFAULT_SEEDS, LayoutEvaluation, evaluate_layouts
from edge.evaluation.multicam import (
    Degradation,
    camera_file_name,
    wildtrack_site,
    write_degraded,
)
from edge.motformat import read_mot
from edge.replay import replay
from edge.replay_store import replay_store


def wildtrack_floor_gt(folder: str | Path, camera: str | None = None) -> np.ndarray:
    """``gt/floor.txt`` as gt rows with floor coordinates in columns 8-9 (as
    :func:`edge.evaluation.visits.evaluate_visits` reads PETS's ``gt.txt``).

    With ``camera``, only the (frame, person) pairs that camera has a box of: the
    people it sees, when it sees them.

    Raises:
        DataFormatError: a file is missing or malformed, or no such camera.
    """
    gt = read_floor_truth(Path(folder) / "gt" / "floor.txt")
    if camera is not None:
        boxes = read_mot(Path(folder) / "gt" / f"{camera_file_name(folder, camera)}.txt")
        seen = {(int(f), int(i)) for f, i in boxes[:, :2].tolist()}
        gt = gt[[(int(f), int(i)) in seen for f, i in gt[:, :2].tolist()]]
    return gt


@dataclass(frozen=True, slots=True)
class WildtrackReplay:
    """A replay of WILDTRACK's degraded boxes and the ground truth to score it on."""

    site: SiteConfig
    db: sqlite_utils.Database
    run_id: int
    gt: np.ndarray  # as :func:`wildtrack_floor_gt`

    def layouts(self, seeds: tuple[int, ...] = DEFAULT_SEEDS) -> LayoutEvaluation:
        """The random layouts of ``seeds`` scored on this replay
        (:func:`edge.evaluation.layouts.evaluate_layouts`)."""
        return evaluate_layouts(self.site, self.gt, self.db, run_id=self.run_id, seeds=seeds)


def replay_wildtrack(
    folder: str | Path,
    work_dir: str | Path,
    db: sqlite_utils.Database,
    *,
    camera: str | None = None,
    degradation: Degradation | None = None,
) -> WildtrackReplay:
    """Replay WILDTRACK's degraded boxes with the product's default settings.

    Args:
        folder: the WILDTRACK folder (``../shared/multicam/wildtrack-train``).
        work_dir: where the degraded boxes go.
        db: the database to replay into, with the box's tables
            (``edge.runtime.schema.open_database``, which this layer does not import).
        camera: replay this camera alone (its own tracks, no fusion), to be scored
            against the people it sees; default: every camera, fused.
        degradation: how the boxes are degraded (default: ``Degradation()``, as for
            the fusion's figures).
    """
    work_dir = Path(work_dir)
    site = wildtrack_site_config(folder)
    paths = write_degraded(folder, work_dir / "degraded", degradation or Degradation())
    if camera is None:
        run_id = replay_store(site, db, detections=paths).run_id
    else:
        run_id = replay(site, db, camera_id=camera, detections=paths[camera]).run_id
    return WildtrackReplay(site, db, run_id, wildtrack_floor_gt(folder, camera))


def wildtrack_site_config(folder: str | Path) -> SiteConfig:
    """WILDTRACK's site (:func:`edge.evaluation.multicam.wildtrack_site`), validated,
    every other section at its defaults."""
    return parse_site(yaml.safe_dump(wildtrack_site(folder)), source="wildtrack")
