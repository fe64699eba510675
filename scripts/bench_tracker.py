#!/usr/bin/env python3
"""Benchmark the tracker alone against supervision's ByteTrack and norfair, on the
same detections, on every shared scene.

The three trackers get each scene's public detections (MOTChallenge det.txt) frame by
frame, at the frame rate of its seqinfo.ini; their tracks are scored against the
ground truth with the project's evaluator (TrackEval HOTA, motmetrics IDF1 and ID
switches). Speed is timed in the same run over the same frames, median of --repeat
passes, and reported as ratios (ours / the reference). Scenes: PETS09-S2L1,
TUD-Campus and MOT15-dev's ADL-Rundle-6, ETH-Bahnhof, KITTI-13 and Venice-2 (7-30
frames/s, 640-1920 pixels wide).

    .venv/bin/python scripts/bench_tracker.py                     # table, all six scenes
    .venv/bin/python scripts/bench_tracker.py --json              # one JSON object name -> number
    .venv/bin/python scripts/bench_tracker.py --scene DIR --fps 7 # another scene folder
    .venv/bin/python scripts/bench_tracker.py --detector          # the product's detector
                                                                  # on the shared videos

With ``--detector``, the scenes whose recording is shared (PETS09-S2L1 and TUD-Campus)
are run through the product's detector with the settings a new site gets (YOLOX-Nano,
the input size derived from the frame size, ``DetectorConfig`` defaults), once, and the
three trackers get those boxes instead of det.txt: the tracker as a user runs it, the
references fed the same detector.

Needs the `bench` extra (pip install -e '.[bench]'), which brings supervision and
norfair.
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

from checkout_venv import SHARED, bench_parser, enter

enter(__file__)

import numpy as np

from edge.config import load_site
from edge.config.vision import TrackerConfig
from edge.errors import EdgeError
from edge.evaluation.mot import evaluate_mot
from edge.evaluation.scenes import SCENE_VIDEOS, Scene, read_scene, shared_scenes
from edge.evaluation.trackers import (
    detect_video,
    for_public_detections,
    load_detections,
    track_norfair,
    track_ours,
    track_supervision,
)
from edge.motformat import read_mot
from edge.records import Detections

TRACKERS = ("ours", "supervision", "norfair")
METRICS = ("hota", "idf1", "id_switches")


def run_tracker(name: str, frames: list[Detections], fps: float,
                config: TrackerConfig) -> tuple[np.ndarray, float]:
    if name == "ours":
        return track_ours(frames, fps, config)
    if name == "supervision":
        return track_supervision(frames, fps)
    return track_norfair(frames, fps)


def bench_scene(scene: Scene, config: TrackerConfig, repeat: int,
                frames: list[Detections] | None = None) -> dict[str, float]:
    """``{tracker}_{metric}`` figures of the three trackers on one scene, on its
    det.txt or on ``frames``."""
    frames = load_detections(scene.det) if frames is None else frames
    gt = read_mot(scene.gt)
    figures: dict[str, float] = {"frames": len(frames), "fps": scene.fps}
    for name in TRACKERS:
        seconds = []
        for _ in range(max(1, repeat)):
            tracks, elapsed = run_tracker(name, frames, scene.fps, config)
            seconds.append(elapsed)
        metrics = evaluate_mot(gt, tracks)
        figures[f"{name}_hota"] = round(float(metrics["HOTA"]), 4)
        figures[f"{name}_idf1"] = round(float(metrics["IDF1"]), 4)
        figures[f"{name}_id_switches"] = int(metrics["id_switches"])
        figures[f"{name}_seconds"] = statistics.median(seconds)
    return figures


def main() -> int:
    parser = bench_parser(__doc__, quick="one timed pass")
    parser.add_argument("--scene", type=Path, action="append",
                        help="a MOTChallenge scene folder (seqinfo.ini, det/, gt/); "
                             "repeat for several; default the six shared scenes")
    parser.add_argument("--fps", type=float,
                        help="frame rate of the --scene folders, instead of their seqinfo.ini")
    parser.add_argument("--site", type=Path,
                        help="benchmark this site config's tracker section instead of the "
                             "defaults (e.g. calibration/pets09/site.yaml, fitted to YOLOX)")
    parser.add_argument("--repeat", type=int, default=5, help="timed passes per tracker")
    parser.add_argument("--detector", action="store_true",
                        help="feed the trackers the product's detector's boxes on the shared "
                             "videos (PETS09-S2L1, TUD-Campus) instead of det.txt")
    args = parser.parse_args()
    if args.quick:
        args.repeat = 1
    try:
        if args.scene:
            scenes = [read_scene(folder, args.fps) for folder in args.scene]
        else:
            scenes = shared_scenes(SHARED)
        # The defaults suit the product's detector; det.txt scores on its own scale.
        if args.site:
            config = load_site(args.site).tracker
        else:
            config = TrackerConfig() if args.detector else for_public_detections()
        detected: dict[str, list[Detections]] = {}
        if args.detector:
            scenes = [scene for scene in scenes if scene.name in SCENE_VIDEOS]
            for scene in scenes:
                detected[scene.name], size = detect_video(SHARED / SCENE_VIDEOS[scene.name])
                print(f"{scene.name}: YOLOX-Nano at {size[0]}x{size[1]} (the default for "
                      f"{scene.width}x{scene.height})", file=sys.stderr)
        per_scene = {scene.name: bench_scene(scene, config, args.repeat,
                                             detected.get(scene.name)) for scene in scenes}
    except EdgeError as error:
        print(f"Error: {error}", file=sys.stderr)
        return 1

    figures: dict[str, float] = {}
    for name, scene_figures in per_scene.items():
        for key in ("fps", *(f"{t}_{m}" for t in TRACKERS for m in METRICS)):
            figures[f"{name}.{key}"] = scene_figures[key]
    for tracker in TRACKERS:
        for metric in ("hota", "idf1"):
            values = [f[f"{tracker}_{metric}"] for f in per_scene.values()]
            figures[f"mean_{tracker}_{metric}"] = round(statistics.fmean(values), 4)
        total = sum(f[f"{tracker}_seconds"] for f in per_scene.values())
        frames = sum(f["frames"] for f in per_scene.values())
        figures[f"{tracker}_frames_per_s"] = round(frames / total, 1)
    best_reference = max(figures["mean_supervision_hota"], figures["mean_norfair_hota"])
    figures["hota_ratio"] = round(figures["mean_ours_hota"] / best_reference, 3)
    figures["hota_margin"] = round(figures["mean_ours_hota"] - best_reference, 4)
    figures["speed_ratio"] = round(
        figures["ours_frames_per_s"] / figures["supervision_frames_per_s"], 3)
    figures["speed_ratio_norfair"] = round(
        figures["ours_frames_per_s"] / figures["norfair_frames_per_s"], 3)
    figures["frames"] = sum(f["frames"] for f in per_scene.values())
    if args.json:
        print(json.dumps(figures))
        return 0
    source = "the product's detector" if args.detector else "public det.txt"
    print(f"{figures['frames']} frames in {len(per_scene)} scenes, the same detections "
          f"({source}) for every tracker; HOTA / IDF1 / ID switches")
    print(f"{'scene':14}{'fps':>5}" + "".join(f"{t:>22}" for t in TRACKERS))
    for name, f in per_scene.items():
        cells = "".join(
            f"{f[t + '_hota']:.3f} / {f[t + '_idf1']:.3f} / {f[t + '_id_switches']:>3}".rjust(22)
            for t in TRACKERS)
        print(f"{name:14}{f['fps']:>5g}{cells}")
    means = "".join(
        f"{figures[f'mean_{t}_hota']:.3f} / {figures[f'mean_{t}_idf1']:.3f}      ".rjust(22)
        for t in TRACKERS)
    print(f"{'mean':19}{means}")
    print(f"mean HOTA, ours minus the better reference: {figures['hota_margin']:+.4f}")
    print("frames/s: " + ", ".join(f"{t} {figures[f'{t}_frames_per_s']}" for t in TRACKERS))
    print(f"speed ratio (ours / supervision): {figures['speed_ratio']}; "
          f"(ours / norfair): {figures['speed_ratio_norfair']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
