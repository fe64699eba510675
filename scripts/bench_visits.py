#!/usr/bin/env python3
"""Benchmark: feature extraction and classification cost per visit, in microseconds.

Feature extraction counts from raw positions (split, smoothing, zones, stops,
lines, all features); classification is the rule spec plus micro-segments, and
a trained ONNX trait model when the train extra is installed. Two visit sets:
the 19 PETS09-S2L1 ground-truth people on the demo site (real walking, 15-80 s,
7 fps) and the synthetic scenario suite on its test store (minutes-long shopping
visits, 5-10 fps). Baselines measured in the same run: shapely's vectorised
point-in-polygon over the same positions (what zone membership would cost with
the obvious library call) and the visits' own duration (how many seconds of
visits one CPU second covers).

    .venv/bin/python scripts/bench_visits.py [--json] [--repeats N]
"""

from __future__ import annotations

import sys
import time

from checkout_venv import REPO, SHARED, bench_parser, enter, print_figures

enter(__file__)

import numpy as np

from edge.config import load_site
from edge.visits.analysis import VisitAnalyzer
from edge.visits.scenarios import scenario_site, scenario_suite


def best_us(fn, items, repeats: int) -> float:
    """Fastest of ``repeats`` passes over ``items``, per item, in microseconds of this
    process's CPU time (so other work on a shared box does not inflate it)."""
    best = float("inf")
    for _ in range(repeats):
        start = time.process_time()
        for item in items:
            fn(item)
        best = min(best, time.process_time() - start)
    return best / len(items) * 1e6


def pets_tracks(analyzer: VisitAnalyzer) -> list:
    rows = np.loadtxt(SHARED / "mot" / "PETS09-S2L1" / "gt" / "gt.txt", delimiter=",")
    tracks = []
    for person in np.unique(rows[:, 1]):
        r = rows[rows[:, 1] == person]
        r = r[np.argsort(r[:, 0])]
        tracks.append((int(person), (r[:, 0] - 1) / 7.0, r[:, 7:9].copy()))
    return tracks


def measure_set(name: str, analyzer: VisitAnalyzer, tracks: list, repeats: int) -> dict:
    """Figures for raw ``(track_id, t, xy)`` tracks that are one visit each."""
    import shapely
    from shapely.geometry import Polygon

    ex = analyzer.extractor
    classifier = analyzer.spec.classifier

    def features_from_raw(track):
        (piece,) = analyzer.pieces("bench", None, *track)   # split + smooth
        return ex.measure(piece)

    pieces = [analyzer.pieces("bench", None, *track)[0] for track in tracks]
    measured = [ex.measure(p) for p in pieces]
    features = [m.features for m in measured]
    polygons = [Polygon(z.polygon) for z in analyzer.site.floor.zones]
    for polygon in polygons:
        shapely.prepare(polygon)

    def shapely_membership(piece):
        return [shapely.contains_xy(p, piece.xy[:, 0], piece.xy[:, 1]) for p in polygons]

    out = {
        f"{name}_visits": float(len(pieces)),
        f"{name}_positions_per_visit": float(np.mean([len(p) for p in pieces])),
        f"{name}_visit_duration_s": float(np.mean([p.duration_s for p in pieces])),
        f"{name}_features_us": best_us(features_from_raw, tracks, repeats),
        f"{name}_classify_us": best_us(classifier.classify, features, repeats),
        f"{name}_zone_membership_us": best_us(lambda p: ex.zones.contains(p.xy), pieces, repeats),
        f"{name}_shapely_membership_us": best_us(shapely_membership, pieces, repeats),
    }
    batch = best_us(lambda _: classifier.classify_many(features), [0], repeats)
    out[f"{name}_classify_batched_us"] = batch / len(features)
    out[f"{name}_total_us"] = out[f"{name}_features_us"] + out[f"{name}_classify_us"]
    out[f"{name}_membership_vs_shapely_ratio"] = (
        out[f"{name}_zone_membership_us"] / out[f"{name}_shapely_membership_us"])
    out[f"{name}_visit_seconds_per_cpu_second"] = (
        out[f"{name}_visit_duration_s"] / (out[f"{name}_total_us"] * 1e-6))
    return out


def onnx_figures(analyzer: VisitAnalyzer, repeats: int) -> dict:
    """Per-visit cost of a trained ONNX trait model (needs the train extra)."""
    try:
        from edge.visits import training
        from edge.visits.classify import OnnxTraitModel
    except ImportError:
        return {}
    try:
        data = training.build_dataset(
            analyzer, training.scenario_visits(scenario_suite(repeats=1, seed=5)))
        model = OnnxTraitModel(training.export_onnx(training.train_trait_models(data),
                                                    data.feature_names))
    except ImportError:
        return {}
    rows = [data.x[i : i + 1] for i in range(len(data.x))]
    return {"scenario_onnx_classify_us": best_us(model.predict, rows, repeats)}


def main() -> int:
    parser = bench_parser(__doc__, quick="two passes")
    parser.add_argument("--repeats", type=int, default=5, help="Passes; the fastest counts.")
    parser.add_argument("--no-onnx", action="store_true", help="Skip the trained-model figure.")
    args = parser.parse_args()
    if args.quick:
        args.repeats = min(args.repeats, 2)

    pets = VisitAnalyzer(load_site(REPO / "calibration" / "pets09" / "site.yaml"))
    figures = measure_set("pets", pets, pets_tracks(pets), args.repeats)
    store = VisitAnalyzer(scenario_site())
    suite = [(s.track_id, s.t, s.xy) for s in scenario_suite(repeats=1, seed=3)]
    figures.update(measure_set("scenario", store, suite, args.repeats))
    if not args.no_onnx:
        figures.update(onnx_figures(store, args.repeats))
    return print_figures({k: round(v, 3) for k, v in figures.items()}, args.json)


if __name__ == "__main__":
    sys.exit(main())
