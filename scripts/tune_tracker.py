#!/usr/bin/env python3
"""Choose the tracker's settings by the mean HOTA over the six shared scenes.

A bounded coordinate search: starting from the current defaults, each knob in turn is
set to the value of its grid that gives the best mean HOTA over the training scenes,
the others held; rounds repeat until none improves (at most --rounds). Then, for
leave-one-scene-out figures, the same search runs once per scene on the other five and
the settings it picks are scored on the scene left out.

Scores are HOTA only (official TrackEval) on the public detections; every (settings,
scene) score is cached in --cache, so later searches and reruns cost little.

    nice -n 10 .venv/bin/python scripts/tune_tracker.py [--loso] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from checkout_venv import SHARED, enter

enter(__file__)

import numpy as np

from edge.config.vision import TrackerConfig
from edge.evaluation.mot import evaluate_mot
from edge.evaluation.scenes import Scene, shared_scenes
from edge.evaluation.trackers import for_public_detections, load_detections, track_ours
from edge.motformat import read_mot

# The searched knobs and their grids, in search order.
GRID: dict[str, list[float]] = {
    "track_activation_threshold": [0.5, 0.6, 0.7, 0.8, 0.9],
    "new_track_threshold": [0.5, 0.6, 0.7, 0.8, 0.9],
    "acceleration_noise": [0.15, 0.3, 0.6125, 1.2, 2.5, 5.0, 10.0],
    "minimum_track_age_s": [0.0, 0.1, 0.2, 0.3, 0.43, 0.6],
    "lost_track_buffer_s": [1.0, 2.0, 4.0, 8.0],
    "high_match_iou": [0.05, 0.1, 0.2, 0.3],
    "recovery_max_distance": [0.0, 0.25, 0.5, 1.0],
    "unconfirmed_match_iou": [0.2, 0.3, 0.5],
    "position_noise": [0.025, 0.05, 0.1],
    "direction_weight": [0.0, 0.1, 0.2, 0.4],
    "direction_span_s": [0.1, 0.2, 0.4, 0.8],
}
# A feature off (its knob 0) and the knobs that then mean nothing: all left out of the
# cache key, so settings that differ only in them are scored once, under the same key
# as a search that predates the feature.
OFF_AT_ZERO = {"direction_weight": ("direction_weight", "direction_span_s")}

Settings = dict[str, float]


class Scorer:
    """HOTA of given settings on each scene, computed once and cached on disk."""

    def __init__(self, scenes: list[Scene], cache: Path | None) -> None:
        self.scenes = {scene.name: scene for scene in scenes}
        self.data = {s.name: (load_detections(s.det), read_mot(s.gt)) for s in scenes}
        self.cache_path = cache
        self.cache: dict[str, float] = {}
        if cache is not None and cache.is_file():
            self.cache = json.loads(cache.read_text())

    def hota(self, settings: Settings, scene: str) -> float:
        moot = {knob for switch, knobs in OFF_AT_ZERO.items()
                if settings.get(switch, 1.0) == 0 for knob in knobs}
        key = json.dumps([scene, sorted((k, v) for k, v in settings.items() if k not in moot)])
        if key not in self.cache:
            frames, gt = self.data[scene]
            config = TrackerConfig(**settings)
            rows, _ = track_ours(frames, self.scenes[scene].fps, config)
            self.cache[key] = float(evaluate_mot(gt, rows, hota_only=True)["HOTA"])
        return self.cache[key]

    def mean(self, settings: Settings, scenes: list[str]) -> float:
        return float(np.mean([self.hota(settings, scene) for scene in scenes]))

    def save(self) -> None:
        if self.cache_path is not None:
            self.cache_path.write_text(json.dumps(self.cache))


def search(scorer: Scorer, start: Settings, scenes: list[str], rounds: int,
           verbose: bool) -> tuple[Settings, float]:
    """Coordinate search on the mean HOTA over ``scenes``."""
    best, best_score = dict(start), scorer.mean(start, scenes)
    for round_number in range(rounds):
        improved = False
        for knob, values in GRID.items():
            for value in values:
                trial = {**best, knob: value}
                score = scorer.mean(trial, scenes)
                if score > best_score + 1e-6:
                    best, best_score, improved = trial, score, True
            if verbose:
                print(f"  round {round_number + 1} {knob} = {best[knob]}: "
                      f"mean {best_score:.4f}", flush=True)
            scorer.save()
        if not improved:
            break
    return best, best_score


def loso_from_cache(scorer: Scorer, names: list[str]) -> dict[str, dict]:
    """Leave-one-scene-out over the settings already scored on all scenes: for each
    scene, the cached settings with the best mean over the other five, scored on it.

    Cheaper than a fresh search per scene, and a little optimistic: the candidates were
    visited by a search that saw every scene (only the pick among them is blind).
    """
    table: dict[str, dict[str, float]] = {}
    for key, hota in scorer.cache.items():
        scene, items = json.loads(key)
        table.setdefault(json.dumps(items), {})[scene] = hota
    complete = {k: v for k, v in table.items() if set(v) >= set(names)}
    result = {}
    for held_out in names:
        training = [name for name in names if name != held_out]
        best = max(complete, key=lambda k: np.mean([complete[k][n] for n in training]))
        result[held_out] = {"hota": round(complete[best][held_out], 4),
                            "settings": dict(json.loads(best))}
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="most rounds per search")
    parser.add_argument("--loso", action="store_true",
                        help="also leave-one-scene-out: search without each scene, score it")
    parser.add_argument("--loso-from-cache", action="store_true",
                        help="leave-one-scene-out over the settings in --cache only, no search")
    parser.add_argument("--cache", type=Path, default=Path("/tmp/tune_tracker_cache.json"))
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args()

    scenes = shared_scenes(SHARED)
    names = [scene.name for scene in scenes]
    scorer = Scorer(scenes, args.cache)
    defaults = for_public_detections()  # the defaults, with det.txt's score thresholds
    start = {knob: float(getattr(defaults, knob)) for knob in GRID}
    if args.loso_from_cache:
        loso = loso_from_cache(scorer, names)
        for name, figures in loso.items():
            print(f"without {name}: {figures['hota']:.4f} on it  {figures['settings']}")
        print(f"leave-one-scene-out mean HOTA "
              f"{np.mean([f['hota'] for f in loso.values()]):.4f}")
        if args.json:
            args.json.write_text(json.dumps(loso, indent=1))
        return 0
    print(f"start: mean HOTA {scorer.mean(start, names):.4f}", flush=True)
    chosen, score = search(scorer, start, names, args.rounds, verbose=True)
    per_scene = {name: round(scorer.hota(chosen, name), 4) for name in names}
    print(f"chosen: {chosen}\nmean HOTA {score:.4f}  {per_scene}", flush=True)
    result: dict = {"chosen": chosen, "mean_hota": round(score, 4), "per_scene": per_scene}
    if args.loso:
        loso = {}
        for held_out in names:
            training = [name for name in names if name != held_out]
            picked, _ = search(scorer, start, training, args.rounds, verbose=False)
            loso[held_out] = {"hota": round(scorer.hota(picked, held_out), 4),
                              "settings": picked}
            print(f"without {held_out}: {loso[held_out]['hota']:.4f} on it "
                  f"(all six: {per_scene[held_out]:.4f})  {picked}", flush=True)
        result["loso"] = loso
        result["loso_mean_hota"] = round(float(np.mean([v["hota"] for v in loso.values()])), 4)
        print(f"leave-one-scene-out mean HOTA {result['loso_mean_hota']:.4f}")
    scorer.save()
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
