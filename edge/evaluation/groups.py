"""Shopping groups of a replay, measured against groups in ground-truth floor positions.

The true groups are the ground truth's people put through the same visit pipeline and
the same group rule (:mod:`edge.visits.groups`), with a stricter distance
(``truth_distance_m``, 1.0 m against the site's ``group_distance_m``): people who were
that close for most of their time together certainly walked together. The measured
groups are the product's: the run's tracks, split into visits, associates left out,
grouped by the site's rule. Each track is matched to the person it follows
(:func:`edge.visits.evaluation.assign_tracks`), and the figures are precision and
recall of group membership as pairs of people: a pair is found when tracks of the two
people are in one measured group.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import sqlite_utils

from edge.config import SiteConfig
from edge.evaluation.visits import assign_tracks, latest_run_id, measure_side, read_tracks
from edge.visits.analysis import VisitAnalyzer
from edge.visits.groups import find_groups, group_pairs, pair_scores
from edge.visits.records import Visit

TRUTH_DISTANCE_M = 1.0


def _visits(analyzer: VisitAnalyzer, frames: dict[int, np.ndarray],
            xy: dict[int, np.ndarray], fps: float) -> list[Visit]:
    """Customers' visits of the tracks, as the product builds them (times in seconds)."""
    pieces = [piece for key in frames
              for piece in analyzer.pieces("eval", None, key, frames[key] / fps, xy[key])]
    return [result.measured.visit for result in analyzer.analyze_pieces(pieces).visits]


def evaluate_groups(
    site: SiteConfig,
    gt_path: str | np.ndarray,
    db: sqlite_utils.Database,
    *,
    run_id: int | None = None,
    truth_distance_m: float = TRUTH_DISTANCE_M,
    match_radius_m: float = 1.0,
) -> dict[str, Any]:
    """Precision and recall of the run's shopping groups (pairs of people).

    Args:
        site: the site (its ``visits.group_*`` rule and the camera's fps).
        gt_path: MOTChallenge gt.txt with world coordinates in columns 8-9 (or its rows).
        db: a database holding the replay's track_points.
        run_id: which run (default: the latest).
        truth_distance_m: the stricter distance that defines the true groups.
        match_radius_m: a track position belongs to the nearest person this close.

    Raises:
        DataFormatError: the gt has no world coordinates, or the database no such run.
    """
    if run_id is None:
        run_id = latest_run_id(db)
    fps, gt_tracks, rec_tracks = read_tracks(site, gt_path, db, run_id)
    analyzer = VisitAnalyzer(site)
    strict = site.model_copy(update={"visits": site.visits.model_copy(
        update={"group_distance_m": truth_distance_m})})
    gt_visits = _visits(VisitAnalyzer(strict), *gt_tracks, fps)
    truth = group_pairs(find_groups(gt_visits, strict.visits), [v.track_id for v in gt_visits])
    owner = assign_tracks(measure_side(site, *gt_tracks, fps),
                          measure_side(site, *rec_tracks, fps), match_radius_m)
    rec_visits = _visits(analyzer, *rec_tracks, fps)
    found = group_pairs(find_groups(rec_visits, site.visits),
                        [owner.get(v.track_id) for v in rec_visits])
    return {"run_id": int(run_id), "gt_people": len(gt_tracks[0]), "visits": len(rec_visits),
            "truth_distance_m": truth_distance_m, **pair_scores(truth, found),
            "true_pair_ids": sorted(truth), "found_pair_ids": sorted(found)}
