#!/usr/bin/env python3
"""Train the trait classifier (scikit-learn -> ONNX) and, optionally, micro-segments.

Labelled visits come from a trajectory CSV (track_id,t,x,y, as `edge visits import`)
plus a labels CSV (track_id,trait,label with label 0/1; the label is the named
pole, e.g. showroomer=1, buyer=0) on a site, or from the synthetic scenario suite
(--synthetic, the default). Writes the ONNX model and, with --spec-out, a segment
spec that uses it (copied from --base-spec, with a new version). Needs the
`train` extra: pip install -e '.[train]'.

    scripts/train_traits.py --out var/traits.onnx --spec-out var/traits.yaml --gmm 4
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import sys
from pathlib import Path

from checkout_venv import enter

enter(__file__)

import numpy as np
import yaml

from edge.config import load_site
from edge.errors import DataFormatError, EdgeError
from edge.visits import training
from edge.visits.analysis import VisitAnalyzer
from edge.visits.classify import OnnxTraitModel
from edge.visits.importer import read_trajectory_csv
from edge.visits.scenarios import scenario_site, scenario_suite
from edge.visits.spec import default_spec_path, read_spec

SEGMENT_FEATURES = ["duration_s", "distinct_zones", "stop_time_s", "leg_directness",
                    "product_dwell_share", "checkout_visited"]
SEGMENT_LOG1P = ["duration_s", "stop_time_s"]


def read_labels(path: Path) -> dict[int, dict[str, int]]:
    labels: dict[int, dict[str, int]] = {}
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        if not reader.fieldnames or not {"track_id", "trait", "label"} <= set(reader.fieldnames):
            raise DataFormatError(f"{path}: the header must name track_id,trait,label")
        for row in reader:
            try:
                track, label = int(row["track_id"]), int(row["label"])
            except ValueError:
                raise DataFormatError(f"{path}:{reader.line_num}: track_id and label must be "
                                      "integers") from None
            if label not in (0, 1):
                raise DataFormatError(f"{path}:{reader.line_num}: label must be 0 or 1")
            labels.setdefault(track, {})[row["trait"].strip()] = label
    return labels


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trajectories", type=Path, help="Labelled visits: trajectory CSV.")
    parser.add_argument("--labels", type=Path, help="track_id,trait,label CSV.")
    parser.add_argument("--site", type=Path, help="Site of the trajectories.")
    parser.add_argument("--synthetic", type=int, default=2,
                        help="Repeats of the scenario suite to train on (120 visits each).")
    parser.add_argument("--seed", type=int, default=11, help="Scenario seed for training.")
    parser.add_argument("--out", type=Path, required=True, help="ONNX model to write.")
    parser.add_argument("--spec-out", type=Path, help="Also write a segment spec using it.")
    parser.add_argument("--base-spec", type=Path, default=default_spec_path())
    parser.add_argument("--version", help="spec_version of the written spec.")
    parser.add_argument("--gmm", type=int, default=0, help="Fit this many micro-segments.")
    parser.add_argument("--json", action="store_true", help="Print figures as one JSON object.")
    args = parser.parse_args()
    try:
        if args.trajectories:
            if not (args.labels and args.site):
                parser.error("--trajectories needs --labels and --site")
            site = load_site(args.site)
            labels = read_labels(args.labels)
            tracks = read_trajectory_csv(args.trajectories, bounds=site.floor.bounds)
            visits = [(t.track_id, t.t, t.xy, labels[t.track_id])
                      for t in tracks if t.track_id in labels]
            analyzer = VisitAnalyzer(site)
            data = training.build_dataset(analyzer, visits)
            held_out = None
        else:
            analyzer = VisitAnalyzer(scenario_site())
            data = training.build_dataset(
                analyzer, training.scenario_visits(scenario_suite(args.synthetic, args.seed)))
            held_out = training.build_dataset(
                analyzer, training.scenario_visits(scenario_suite(2, seed=0)))
        models = training.train_trait_models(data)
        if not models:
            raise DataFormatError("no trait has both labels 0 and 1 among the visits")
        model = training.export_onnx(models, data.feature_names)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_bytes(model)
        figures: dict[str, float] = {"visits": float(len(data.x)), "traits": float(len(models))}
        check = held_out or data
        onnx_p = OnnxTraitModel(model).predict(check.x)
        figures["parity_max_abs_diff"] = float(
            np.abs(onnx_p - training.sklearn_probabilities(models, check.x)).max())
        for j, trait in enumerate(models):
            y = check.labels.get(trait, np.full(len(check.x), -1))
            known = y >= 0
            if known.any():
                said = onnx_p[known, j] >= 0.5
                figures[f"agreement_{trait}"] = float((said == y[known]).mean())
        if args.spec_out:
            spec, _ = read_spec(args.base_spec)
            document = spec.model_dump(mode="json", exclude_none=True)
            major, minor, *_ = (spec.spec_version.split(".") + ["0"])[:3]
            document["spec_version"] = args.version or f"{major}.{int(minor) + 1}.0"
            document["classifier"] = {
                "model": str(args.out.resolve()) if args.spec_out.parent.resolve() !=
                args.out.parent.resolve() else args.out.name,
                "sha256": hashlib.sha256(model).hexdigest(),
            }
            if args.gmm:
                document["segments"] = training.fit_segments(
                    data, SEGMENT_FEATURES, components=args.gmm, log1p=SEGMENT_LOG1P)
            args.spec_out.parent.mkdir(parents=True, exist_ok=True)
            args.spec_out.write_text(yaml.safe_dump(document, sort_keys=False, width=100))
    except EdgeError as error:
        print(f"Error: {error}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(figures))
    else:
        for name, value in figures.items():
            print(f"{name:>36}  {value:.4f}")
        also = f", spec to {args.spec_out}" if args.spec_out else ""
        print(f"Model written to {args.out}{also}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
