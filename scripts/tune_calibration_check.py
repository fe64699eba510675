#!/usr/bin/env python3
"""Tuning: the calibration check of camera pairs (:mod:`edge.fusion.pair_check`) on
WILDTRACK, its calibrations as they are and with one camera's moved.

Every pair of WILDTRACK's seven cameras is replayed as a two-camera site (2 frames/s,
360 frames), on the perfect boxes and on degraded ones (seed 0), with the second
camera's calibration moved by each ``--shift`` metres along x (0: as calibrated). Per
run: the pair's unmatched share at the end, its highest and lowest over the run once
``MIN_OVERLAP_SAMPLES`` people were sampled (what the live health would have read at
some instant), the matched distance, whether the pair ever read "disagrees", and the
people reported / present per frame (the people either camera has a box of).

    .venv/bin/python scripts/tune_calibration_check.py [--json] [--quick] [--shift 1.5]

The threshold ``fusion.calibration_unmatched_warn`` is chosen between the highest share
of the pairs as calibrated and the lowest of the moved ones.
"""

from __future__ import annotations

import itertools
import tempfile
from pathlib import Path

from checkout_venv import SHARED, bench_parser, enter, print_figures

enter(__file__)

import numpy as np  # noqa: E402
import yaml  # noqa: E402

import edge.replay_store  # noqa: E402
from edge.config import parse_site  # noqa: E402
from edge.evaluation.floor_tracks import evaluate_floor_tracks, read_floor_rows  # noqa: E402
from edge.evaluation.multicam import (  # noqa: E402
    Degradation,
    camera_file_name,
    wildtrack_site,
    write_degraded,
)
from edge.evaluation.wildtrack_layouts import wildtrack_floor_gt  # noqa: E402
from edge.fusion.pair_check import MIN_OVERLAP_SAMPLES  # noqa: E402
from edge.fusion.stage import FusionStage  # noqa: E402
from edge.runtime.schema import open_database  # noqa: E402

WILDTRACK = SHARED / "multicam" / "wildtrack-train"


class _Watched(FusionStage):
    """The fusion stage, with every instant's calibration check kept."""

    series: list[dict] = []

    def step(self, frame_index, t, observations):  # type: ignore[no-untyped-def]
        fused = super().step(frame_index, t, observations)
        _Watched.series.append(self.tracker.calibration_health())
        return fused


def two_camera_site(a: str, b: str, shift_m: float) -> dict:
    """WILDTRACK's site with cameras ``a`` and ``b`` only, ``b``'s floor moved ``shift_m``
    metres along x (its matrix premultiplied by a translation)."""
    site = wildtrack_site(WILDTRACK)
    cameras = {c["id"]: c for c in site["cameras"]}
    moved = np.array([[1.0, 0.0, shift_m], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    second = dict(cameras[b])
    second["calibration"] = {**second["calibration"],
                             "homography": (moved @ np.array(second["calibration"]
                                                             ["homography"])).tolist()}
    return {**site, "cameras": [cameras[a], second]}


def pair_run(a: str, b: str, shift_m: float, detections: dict[str, Path],
             folder: Path) -> dict[str, object]:
    site = parse_site(yaml.safe_dump(two_camera_site(a, b, shift_m)), source="bench")
    db = open_database(folder / f"{a}-{b}-{shift_m}.db")
    floor_out = folder / f"{a}-{b}-{shift_m}.txt"
    _Watched.series = []
    edge.replay_store.FusionStage = _Watched  # type: ignore[misc]
    try:
        edge.replay_store.replay_store(site, db, detections={c: detections[c] for c in (a, b)},
                                       floor_out=floor_out, start_time=1_800_000_000.0)
    finally:
        edge.replay_store.FusionStage = FusionStage  # type: ignore[misc]
    shares = [h[(a, b)].unmatched_share for h in _Watched.series
              if (a, b) in h and h[(a, b)].overlap >= MIN_OVERLAP_SAMPLES]
    last = _Watched.series[-1].get((a, b))
    gt_a, gt_b = wildtrack_floor_gt(WILDTRACK, a), wildtrack_floor_gt(WILDTRACK, b)
    gt = np.unique(np.vstack([gt_a, gt_b])[:, [0, 1, 7, 8]], axis=0)
    figures = evaluate_floor_tracks(gt, read_floor_rows(floor_out))
    return {
        "share_end": None if last is None or last.unmatched_share is None
        else round(last.unmatched_share, 3),
        "share_max": round(max(shares), 3) if shares else None,
        "share_min": round(min(shares), 3) if shares else None,
        "overlap_end": 0 if last is None else last.overlap,
        "median_m": None if last is None or last.median_m is None else round(last.median_m, 2),
        "disagrees_end": last is not None and last.disagrees,
        "ever_disagrees": any(h[(a, b)].disagrees for h in _Watched.series if (a, b) in h),
        "always_disagrees": bool(shares) and all(
            h[(a, b)].disagrees for h in _Watched.series
            if (a, b) in h and h[(a, b)].overlap >= MIN_OVERLAP_SAMPLES),
        "idf1": round(float(figures["IDF1"]), 3),
        "reported_per_frame": round(float(figures["people_reported_per_frame"]), 1),
        "present_per_frame": round(float(figures["people_present_per_frame"]), 1),
    }


def summary(runs: dict[tuple[str, float], list[dict]]) -> dict[str, object]:
    """Per kind of boxes and shift, over the pairs that reached ``MIN_OVERLAP_SAMPLES``
    (the table of docs/fusion.md): the share at the end (lowest, median, highest), the
    lowest and highest during the runs, the pairs over the threshold at the end, and the
    median matched distance of every pair."""
    out: dict[str, object] = {}
    for (kind, shift), rows in runs.items():
        judged = [r for r in rows if r["share_max"] is not None]
        end = [float(r["share_end"]) for r in judged]
        distances = [float(r["median_m"]) for r in rows if r["median_m"] is not None]
        out[f"{kind} shift {shift:g}"] = {
            "pairs_judged": f"{len(judged)} of {len(rows)}",
            "share_end": [round(min(end), 2), round(float(np.median(end)), 2),
                          round(max(end), 2)] if end else None,
            "share_during": [min(r["share_min"] for r in judged),
                             max(r["share_max"] for r in judged)] if judged else None,
            "over_threshold_at_end": sum(r["disagrees_end"] for r in judged),
            "median_m": round(float(np.median(distances)), 2) if distances else None,
        }
    return out


def main() -> int:
    parser = bench_parser(__doc__, quick="perfect boxes only, pairs with cvlab1")
    parser.add_argument("--shift", type=float, nargs="+", default=[0.0, 1.5, 3.0],
                        help="metres the second camera is moved (default 0 1.5 3)")
    args = parser.parse_args()
    shifts = args.shift
    cameras = sorted(c["id"] for c in wildtrack_site(WILDTRACK)["cameras"])
    pairs = list(itertools.combinations(cameras, 2))
    if args.quick:
        pairs = [p for p in pairs if "cvlab1" in p]
    results: dict[str, object] = {}
    runs: dict[tuple[str, float], list[dict]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        kinds = {"perfect": {c: WILDTRACK / "det" / f"{camera_file_name(WILDTRACK, c)}.txt"
                             for c in cameras}}
        if not args.quick:
            kinds["degraded"] = write_degraded(WILDTRACK, folder / "degraded", Degradation())
        for kind, detections in kinds.items():
            for shift in shifts:
                for a, b in pairs:
                    run = pair_run(a, b, shift, detections, folder)
                    results[f"{kind} {a}-{b} shift {shift:g}"] = run
                    runs.setdefault((kind, shift), []).append(run)
    print_figures({**results, **summary(runs)}, as_json=args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
