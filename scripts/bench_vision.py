#!/usr/bin/env python3
"""Benchmark the vision pipeline's overhead: `edge replay` against a bare loop.

The baseline is the least any detector-based product must do per frame: decode the
frame, resize it to the network input if needed, convert it to the NCHW float blob
and run the onnxruntime session. The pipeline adds everything else: letterboxing,
decoding the network output, NMS, the floor-area filter, the tracker, the floor
mapping and the batched SQLite writes. Both run over the same frames of the same
recording, with the same model, input size and thread settings, each in a fresh
process (so each peak RSS is its own), alternating, in this one run.

    .venv/bin/python scripts/bench_vision.py              # table
    .venv/bin/python scripts/bench_vision.py --json       # one JSON object name -> number

ratio = replay frames/s / bare frames/s (the median pass of each); 1.0 would be a
pipeline that costs nothing beyond the network.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from checkout_venv import bench_parser, enter, print_figures

enter(__file__)


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def _site(args: argparse.Namespace):
    from edge.config import load_site

    site = load_site(args.site)
    if args.threads:
        detector = site.detector.model_copy(update={"threads": args.threads})
        site = site.model_copy(update={"detector": detector})
    return site


def bare(args: argparse.Namespace) -> dict[str, float]:
    """Decode + resize + blob + onnxruntime, nothing else."""
    import cv2

    from edge.assets import resolve_uri
    from edge.detection.base import resolve_model
    from edge.detection.session import edited_yolox, make_session
    from edge.detection.yolox import empty_input, fill_input, takes_patches

    site = _site(args)
    camera = site.cameras[0]
    path, _, spec = resolve_model(site.detector)
    native = (int(spec["input"]["height"]), int(spec["input"]["width"]))
    size = tuple(site.detector.input_size or native)
    # The model as the detector runs it: any size, the person's class only, patches in.
    session = make_session(edited_yolox(path, int(spec.get("person_class", 0)), patches=True),
                           site.detector.threads)
    name = session.get_inputs()[0].name
    blob = empty_input(size, takes_patches(session))
    capture = cv2.VideoCapture(resolve_uri(args.video or camera.source), cv2.CAP_FFMPEG)
    frames = 0
    started = time.perf_counter()
    while frames < args.frames:
        ok, image = capture.read()
        if not ok:
            break
        if image.shape[:2] != size:
            image = cv2.resize(image, (size[1], size[0]), interpolation=cv2.INTER_LINEAR)
        session.run(None, {name: fill_input(blob, image)})
        frames += 1
    seconds = time.perf_counter() - started
    capture.release()
    return {"frames": frames, "seconds": seconds, "peak_rss_mb": _peak_rss_mb()}


def replay_pass(args: argparse.Namespace) -> dict[str, float]:
    """The real `edge replay` into a throw-away SQLite database."""
    from edge.replay import replay
    from edge.runtime.schema import open_database

    site = _site(args)
    with tempfile.TemporaryDirectory() as folder:
        db = open_database(Path(folder) / "bench.db")
        summary = replay(site, db, video=args.video, max_frames=args.frames)
        db.close()
    return {
        "frames": summary.frames,
        "seconds": summary.seconds,
        "peak_rss_mb": _peak_rss_mb(),
        "detect_ms": summary.detect_ms_per_frame,
        "track_ms": summary.track_ms_per_frame,
    }


def _worker(mode: str, argv: list[str]) -> dict[str, float]:
    command = [sys.executable, __file__, "--worker", mode, *argv]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        sys.exit(f"bench_vision: the {mode} pass failed:\n{result.stderr.strip()}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> int:
    from edge.paths import default_site_config

    parser = bench_parser(__doc__, quick="one pass of each over 300 frames")
    parser.add_argument("--site", type=Path, default=default_site_config())
    parser.add_argument("--video", help="recording (default: the site's first camera source)")
    parser.add_argument("--frames", type=int, default=795, help="frames per pass")
    parser.add_argument("--threads", type=int, help="onnxruntime threads (default: the site's)")
    parser.add_argument("--repeat", type=int, default=3, help="passes of each, alternating")
    parser.add_argument("--worker", choices=["bare", "replay"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.quick:
        args.frames, args.repeat = min(args.frames, 300), 1

    if args.worker:
        figures = bare(args) if args.worker == "bare" else replay_pass(args)
        print(json.dumps(figures))
        return 0

    argv = ["--site", str(args.site), "--frames", str(args.frames)]
    if args.video:
        argv += ["--video", args.video]
    if args.threads:
        argv += ["--threads", str(args.threads)]
    passes: dict[str, list[dict[str, float]]] = {"bare": [], "replay": []}
    for index in range(max(1, args.repeat)):
        order = ("bare", "replay") if index % 2 == 0 else ("replay", "bare")
        for mode in order:
            passes[mode].append(_worker(mode, argv))

    def median(mode: str, key: str) -> float:
        return statistics.median(p[key] for p in passes[mode])

    bare_fps = statistics.median(p["frames"] / p["seconds"] for p in passes["bare"])
    replay_fps = statistics.median(p["frames"] / p["seconds"] for p in passes["replay"])
    figures = {
        "frames": int(passes["replay"][0]["frames"]),
        "bare_frames_per_s": round(bare_fps, 2),
        "replay_frames_per_s": round(replay_fps, 2),
        "ratio": round(replay_fps / bare_fps, 3),
        "replay_detect_ms": round(median("replay", "detect_ms"), 2),
        "replay_track_ms": round(median("replay", "track_ms"), 3),
        "bare_peak_rss_mb": round(median("bare", "peak_rss_mb"), 1),
        "replay_peak_rss_mb": round(median("replay", "peak_rss_mb"), 1),
    }
    return print_figures(figures, args.json)


if __name__ == "__main__":
    sys.exit(main())
