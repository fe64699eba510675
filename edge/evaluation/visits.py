"""Zone dwell and line counts of a replay, measured against ground-truth floor positions.

Ground truth is a MOTChallenge ``gt.txt`` whose columns 8 and 9 are world (floor)
coordinates in metres, as for PETS09-S2L1. Both sides go through the same visit
pipeline (smoothing, fragment dropping, zone hysteresis, line dead band), so the
comparison measures the camera, detector, tracker and calibration, not
differences of definition. Time is the frame index / camera fps on both sides
(gt frame N is video frame N-1).

Tracks are matched to people by floor overlap: in each frame a track position
belongs to the nearest gt person within ``match_radius_m``, and a track is that of
the person it belongs to most often (a track matched in under half its frames is
a false track). A person's measured dwell is the sum over their tracks, so a
person split into several tracks still counts whole.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np
import sqlite_utils

from edge.config import SiteConfig
from edge.config.site import STORE_TRACKS_ID
from edge.config.vision import DEFAULT_FPS
from edge.errors import DataFormatError
from edge.evaluation.floor import has_world_coordinates, require_world_coordinates
from edge.motformat import read_mot
from edge.storage.trajectories import require_run
from edge.visits.features import FeatureExtractor
from edge.visits.records import LineCrossing
from edge.visits.swaps import SwapRule, repaired
from edge.visits.trajectory import track_segments


@dataclass(frozen=True, slots=True)
class _Side:
    """Per id: frames, positions, zone dwell (visits only) and crossings (all pieces)."""

    frames: dict[int, np.ndarray]
    xy: dict[int, np.ndarray]
    dwell: dict[int, dict[str, float]]
    crossings: list[tuple[int, LineCrossing]]


@dataclass(frozen=True, slots=True)
class VisitEvaluation:
    """Figures of one evaluation, plus the per (person, zone) dwell table."""

    metrics: dict[str, float | int]
    pairs: list[dict[str, object]]


def measure_side(
    site: SiteConfig, frames: dict[int, np.ndarray], xy: dict[int, np.ndarray], fps: float
) -> _Side:
    extractor = FeatureExtractor(site.floor, site.visits)
    cfg = site.visits
    dwell: dict[int, dict[str, float]] = {}
    crossings: list[tuple[int, LineCrossing]] = []
    for key in frames:
        pieces = track_segments("eval", None, key, frames[key] / fps, xy[key],
                                gap_s=cfg.close_after_s, smoothing_s=cfg.smoothing_s,
                                outlier_m=cfg.outlier_m)
        totals: dict[str, float] = {}
        for piece in pieces:
            found = extractor.crossings(piece)
            crossings += [(key, c) for c in found]
            if piece.duration_s < cfg.min_duration_s or len(piece) < 2:
                continue
            for zone, seconds in extractor.measure(piece, found).zone_dwell.items():
                totals[zone] = totals.get(zone, 0.0) + seconds
        dwell[key] = totals
    return _Side(frames, xy, dwell, crossings)


def group_tracks(
    ids: np.ndarray, frames: np.ndarray, xy: np.ndarray
) -> tuple[dict[int, np.ndarray], dict[int, np.ndarray]]:
    by_frames: dict[int, np.ndarray] = {}
    by_xy: dict[int, np.ndarray] = {}
    for key in np.unique(ids).tolist():
        rows = np.flatnonzero(ids == key)
        rows = rows[np.argsort(frames[rows], kind="stable")]
        keep = np.concatenate(([True], np.diff(frames[rows]) > 0))  # one position per frame
        by_frames[int(key)] = frames[rows][keep].astype(np.float64)
        by_xy[int(key)] = xy[rows][keep]
    return by_frames, by_xy


def assign_tracks(gt: _Side, rec: _Side, radius: float) -> dict[int, int | None]:
    """Track id -> gt person id (or None for a false track)."""
    frame_index: dict[int, list[tuple[int, np.ndarray]]] = {}
    for person, frames in gt.frames.items():
        for f, p in zip(frames.astype(int).tolist(), gt.xy[person], strict=True):
            frame_index.setdefault(f, []).append((person, p))
    owner: dict[int, int | None] = {}
    for track, frames in rec.frames.items():
        votes: Counter[int] = Counter()
        for f, p in zip(frames.astype(int).tolist(), rec.xy[track], strict=True):
            best, best_d = None, radius
            for person, q in frame_index.get(f, ()):
                d = float(np.hypot(*(p - q)))
                if d <= best_d:
                    best, best_d = person, d
            if best is not None:
                votes[best] += 1
        top = votes.most_common(1)
        owner[track] = top[0][0] if top and top[0][1] >= 0.5 * len(frames) else None
    return owner


def match_crossings(gt: list, rec: list, tolerance_s: float) -> int:
    """Greedy one-to-one matching of crossings on the same line and direction."""
    candidates = sorted(
        (abs(g.t - r.t), i, j)
        for i, (_, g) in enumerate(gt)
        for j, (_, r) in enumerate(rec)
        if g.line_id == r.line_id and g.direction == r.direction and abs(g.t - r.t) <= tolerance_s
    )
    used_g: set[int] = set()
    used_r: set[int] = set()
    for _, i, j in candidates:
        if i not in used_g and j not in used_r:
            used_g.add(i)
            used_r.add(j)
    return len(used_g)


def latest_run_id(db: sqlite_utils.Database) -> int:
    """The latest run (what ``edge eval visits`` measures by default).

    Raises:
        DataFormatError: the database holds no run.
    """
    row = db.execute("select max(id) from runs").fetchone()
    if row is None or row[0] is None:
        raise DataFormatError("the database holds no replay run to evaluate (run edge replay)")
    return int(row[0])


Tracks = tuple[dict[int, np.ndarray], dict[int, np.ndarray]]  # id -> frames, id -> (n, 2)


def read_tracks(
    site: SiteConfig, gt_path: str | np.ndarray, db: sqlite_utils.Database, run_id: int
) -> tuple[float, Tracks, Tracks]:
    """The run's frame rate, the ground truth's floor tracks and the run's.

    The rate is read off the run itself (its points' frame numbers against their
    times), so it is the one the replay numbered its frames at: a camera's ``fps``,
    the rate its file declares, the fastest camera's for a fused store run, or
    :data:`~edge.config.vision.DEFAULT_FPS`, whichever the replay used. A run of a
    single instant falls back to the camera's ``fps`` (or that default).

    Raises:
        DataFormatError: the gt has no world coordinates, or the run no track points.
    """
    require_run(db, run_id)
    rows = gt_path if isinstance(gt_path, np.ndarray) else read_mot(gt_path, min_columns=9)
    require_world_coordinates(rows, "dwell and line-count accuracy")
    rows = rows[has_world_coordinates(rows)]  # (-1, -1) is "no position", not a place
    points = np.array(
        db.execute("select track_id, frame, x, y, t from track_points where run_id = ?",
                   [run_id]).fetchall(),
        dtype=np.float64,
    ).reshape(-1, 5)
    if len(points) == 0:
        raise DataFormatError(f"run {run_id} has no track points")
    fps = _run_frame_rate(site, db, run_id, points[:, 1], points[:, 4])
    return (fps, group_tracks(rows[:, 1].astype(int), rows[:, 0] - 1, rows[:, 7:9]),
            stitched(site, group_tracks(points[:, 0].astype(int), points[:, 1], points[:, 2:4]),
                     fps))


def _run_frame_rate(site: SiteConfig, db: sqlite_utils.Database, run_id: int,
                    frames: np.ndarray, t: np.ndarray) -> float:
    frame_span, time_span = np.ptp(frames), np.ptp(t)
    if frame_span > 0 and time_span > 0:
        return round(float(frame_span / time_span), 4)  # the clock's float error off
    camera_id = db.execute("select camera_id from runs where id = ?", [run_id]).fetchone()[0]
    cameras = site.cameras if camera_id == STORE_TRACKS_ID else [
        c for c in site.cameras if c.id == camera_id]
    return max((c.fps for c in cameras if c.fps), default=None) or DEFAULT_FPS


def stitched(site: SiteConfig, tracks: Tracks, fps: float) -> Tracks:
    """A run's tracks as the visit builder sees them: pieces one person was handed
    between (:mod:`edge.visits.stitch`) joined under the first piece's id."""
    frames, xy = tracks
    cfg = site.visits
    pieces = [piece for key in frames
              for piece in track_segments("eval", None, key, frames[key] / fps, xy[key],
                                          gap_s=cfg.close_after_s, smoothing_s=0.0)]
    joined: Tracks = ({}, {})
    for visit in repaired(pieces, SwapRule.from_config(cfg)):
        key = visit.track_id
        while key in joined[0]:  # a later piece of a track whose first piece went elsewhere
            key += 1_000_000
        joined[0][key] = np.round(visit.t * fps)
        joined[1][key] = visit.xy
    return joined


def evaluate_visits(
    site: SiteConfig,
    gt_path: str | np.ndarray,
    db: sqlite_utils.Database,
    *,
    run_id: int | None = None,
    match_radius_m: float = 1.0,
    crossing_tolerance_s: float = 2.0,
) -> VisitEvaluation:
    """Compare a replay's zone dwell and line crossings with ground truth.

    Args:
        site: the site whose zones and lines are measured (the camera's fps too).
        gt_path: MOTChallenge gt.txt with world coordinates in columns 8-9, or its
            rows as read by :func:`edge.motformat.read_mot` (e.g. cut to a partial replay).
        db: a database holding the replay's track_points.
        run_id: which run (default: the latest).

    Raises:
        DataFormatError: the gt file is malformed or has no world coordinates, or the
            database holds no such run.
    """
    if run_id is None:
        run_id = latest_run_id(db)
    fps, gt_tracks, rec_tracks = read_tracks(site, gt_path, db, run_id)
    gt = measure_side(site, *gt_tracks, fps)
    rec = measure_side(site, *rec_tracks, fps)
    owner = assign_tracks(gt, rec, match_radius_m)

    measured: dict[int, dict[str, float]] = {person: {} for person in gt.frames}
    false_track_dwell = 0.0
    for track, zones in rec.dwell.items():
        person = owner.get(track)
        for zone, seconds in zones.items():
            if person is None:
                false_track_dwell += seconds
            else:
                measured[person][zone] = measured[person].get(zone, 0.0) + seconds
    pairs: list[dict[str, object]] = []
    errors: list[float] = []  # relative dwell error of each pair with a true dwell
    spurious: list[float] = []  # measured seconds of each pair without one
    for person in sorted(gt.frames):
        for zone in sorted(set(gt.dwell[person]) | set(measured[person])):
            truth = gt.dwell[person].get(zone, 0.0)
            got = measured[person].get(zone, 0.0)
            rel_error = abs(got - truth) / truth if truth > 0 else None
            pairs.append({"person": person, "zone": zone, "gt_s": truth, "measured_s": got,
                          "rel_error": rel_error})
            if rel_error is None:
                spurious.append(got)
            else:
                errors.append(rel_error)
    rel = np.array(errors, dtype=float)

    entrance = set(site.floor.entrance_line_ids)
    gt_entrance = [c for c in gt.crossings if c[1].line_id in entrance]
    rec_entrance = [c for c in rec.crossings if c[1].line_id in entrance]
    matched = match_crossings(gt_entrance, rec_entrance, crossing_tolerance_s)
    metrics: dict[str, float | int] = {
        "run_id": int(run_id),
        "gt_people": len(gt.frames),
        "tracks": len(rec.frames),
        "false_tracks": sum(1 for p in owner.values() if p is None),
        "dwell_pairs": int(len(rel)),
        "dwell_median_rel_error": float(np.median(rel)) if len(rel) else float("nan"),
        "dwell_mean_rel_error": float(rel.mean()) if len(rel) else float("nan"),
        "dwell_p90_rel_error": float(np.percentile(rel, 90)) if len(rel) else float("nan"),
        "dwell_pairs_within_10pct": float(np.mean(rel <= 0.10)) if len(rel) else float("nan"),
        "dwell_gt_total_s": float(sum(sum(z.values()) for z in gt.dwell.values())),
        "dwell_measured_total_s": float(sum(sum(z.values()) for z in measured.values())),
        "spurious_dwell_pairs": len(spurious),
        "spurious_dwell_s": float(sum(spurious)),
        "false_track_dwell_s": false_track_dwell,
        "entrance_gt_crossings": len(gt_entrance),
        "entrance_measured_crossings": len(rec_entrance),
        "entrance_matched_crossings": matched,
        "entrance_crossing_recall": matched / len(gt_entrance) if gt_entrance else float("nan"),
        "entrance_crossing_precision": (
            matched / len(rec_entrance) if rec_entrance else float("nan")
        ),
        "entrance_count_ratio": (
            len(rec_entrance) / len(gt_entrance) if gt_entrance else float("nan")
        ),
    }
    for direction in ("in", "out"):
        metrics[f"entrance_gt_{direction}"] = sum(
            1 for _, c in gt_entrance if c.direction == direction)
        metrics[f"entrance_measured_{direction}"] = sum(
            1 for _, c in rec_entrance if c.direction == direction)
    return VisitEvaluation(metrics, pairs)
