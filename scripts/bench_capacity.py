#!/usr/bin/env python3
"""How many cameras one box carries: memory per camera worker, and 640x360 streams
detected at 5 frames/s in real time.

1. Cost per frame of the whole per-camera pipeline (decode a 640x360 frame, detect,
   track, map to the floor, batched SQLite writes) at each network input size, one
   onnxruntime thread, against the baseline of bare onnxruntime inference at the same
   size measured in the same run (``pipeline_ratio``). Each pass runs in a fresh
   process; the pipeline pass alone, then two at once (parallel efficiency).
2. Capacity derived from it: streams = cores x efficiency / (5 frames/s x cost per frame).
   CPU time per frame is the cost (wall time is printed too): on a machine shared with
   other work, wall time measures the neighbours as much as the pipeline.
3. Validation: N real camera workers (``edge run camera``, one process each) on N
   looped 640x360 recordings paced to 5 frames/s, sharing one database; each worker's
   achieved frames/s over the measuring window, from its own health reports.
4. Memory: peak RSS (VmHWM) of one worker, then the sum over 4 workers running at
   once (and their PSS: shared library pages counted once). Workers import only what an
   installed box has (the development venv's pandas is hidden; measured both ways for
   one worker).

The 640x360 copy of the PETS recording is written to a temporary folder (MPEG-4
part 2: this OpenCV build has no H.264 encoder) and deleted afterwards; the demo
calibration is scaled to it, so floor positions stay true.

    .venv/bin/python scripts/bench_capacity.py            # table
    .venv/bin/python scripts/bench_capacity.py --json     # one JSON object name -> number
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from checkout_venv import bench_parser, enter, print_figures

enter(__file__)

WIDTH, HEIGHT = 640, 360
DETECT_FPS = 5.0
FILE_FPS = 10.0  # the copy is declared 10 frames/s: every other frame is detected, 5 a second
SIZES = ((256, 448), (352, 640))
MAX_VALIDATION_STREAMS = 16


def log(message: str) -> None:
    print(f"bench_capacity: {message}", file=sys.stderr, flush=True)


def make_video(folder: Path) -> Path:
    """A 640x360 copy of the demo recording."""
    import cv2

    from edge.assets import resolve_uri

    source = cv2.VideoCapture(resolve_uri("asset:pets09_s2l1_view001"))
    target = folder / "pets-640x360.mp4"
    writer = cv2.VideoWriter(str(target), cv2.VideoWriter.fourcc(*"mp4v"), FILE_FPS,
                             (WIDTH, HEIGHT))
    while True:
        ok, image = source.read()
        if not ok:
            break
        writer.write(cv2.resize(image, (WIDTH, HEIGHT), interpolation=cv2.INTER_AREA))
    writer.release()
    source.release()
    return target


def site_yaml(folder: Path, video: Path, size: tuple[int, int], cameras: int, name: str) -> Path:
    """The demo site with ``cameras`` cameras on the 640x360 copy, 1 thread each."""
    import yaml

    from edge.paths import default_site_config

    site = yaml.safe_load(default_site_config().read_text())
    base = site["cameras"][0]
    scale_x, scale_y = WIDTH / 768, HEIGHT / 576  # the recording is 768x576
    points = base["calibration"]["image_points"]
    calibration = {
        "image_points": [[x * scale_x, y * scale_y] for x, y in points],
        "floor_points": base["calibration"]["floor_points"],
    }
    site["cameras"] = [
        {**base, "id": f"cam{i + 1}", "source": str(video), "loop": True, "fps": FILE_FPS,
         "detect_fps": DETECT_FPS, "calibration": calibration}
        for i in range(cameras)
    ]
    site["detector"].update(input_size=list(size), threads=1)
    site["storage"] = {"db_path": str(folder / f"{name}.db")}
    site["service"] = {"health_interval_s": 1.0}
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(site, sort_keys=False))
    return path


# --- measuring passes, each in its own process ---------------------------------------

def bare_pass(args: argparse.Namespace) -> dict[str, float]:
    """onnxruntime alone: one session.run per frame at the input size, 1 thread."""
    import numpy as np

    from edge.config import load_site
    from edge.detection.base import resolve_model
    from edge.detection.session import make_session, with_symbolic_input_size

    site = load_site(args.site)
    path, _, spec = resolve_model(site.detector)
    native = (int(spec["input"]["height"]), int(spec["input"]["width"]))
    size = tuple(site.detector.input_size or native)
    session = make_session(path if size == native else with_symbolic_input_size(path), 1)
    name = session.get_inputs()[0].name
    blob = np.random.default_rng(0).uniform(0, 255, (1, 3, *size)).astype(np.float32)
    for _ in range(5):
        session.run(None, {name: blob})
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(args.frames):
        session.run(None, {name: blob})
    return {"frames": args.frames, "wall_ms": 1000 * (time.perf_counter() - wall) / args.frames,
            "cpu_ms": 1000 * (time.process_time() - cpu) / args.frames}


def pipeline_pass(args: argparse.Namespace) -> dict[str, float]:
    """The camera worker's per-frame work, unpaced: decode, detect, track, floor, store."""
    from edge.calibration import fit_camera_calibrations
    from edge.config import load_site
    from edge.detection import load_detector
    from edge.pipeline import CameraPipeline
    from edge.runtime.schema import open_database
    from edge.storage.trajectories import start_run, write_track_points
    from edge.tracking import ByteTracker
    from edge.video import VideoSource

    site = load_site(args.site)
    camera = site.cameras[0]
    pipeline = CameraPipeline(camera.id, load_detector(site.detector),
                              ByteTracker(site.tracker, DETECT_FPS),
                              fit_camera_calibrations(site)[camera.id], camera.floor_area)
    with tempfile.TemporaryDirectory() as folder:
        db = open_database(Path(folder) / "bench.db")
        run_id = start_run(db, camera.id, "bench", "bench")
        source = VideoSource(camera.id, camera.source, prefetch=0)  # decode in this thread
        frames, batch, points = 0, [], 0
        wall = cpu = 0.0
        try:
            for frame in source:
                if frames == args.warmup:  # the first frames pay for lazy initialisation
                    wall, cpu = time.perf_counter(), time.process_time()
                batch.append(pipeline.process(frame))
                frames += 1
                if len(batch) >= 10:  # the worker flushes every couple of seconds
                    points += write_track_points(db, run_id, batch)
                    batch = []
                if frames >= args.frames + args.warmup:
                    break
            points += write_track_points(db, run_id, batch)
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        finally:
            source.close()
            db.close()
    measured = frames - args.warmup
    return {"frames": measured, "wall_ms": 1000 * wall / measured,
            "cpu_ms": 1000 * cpu / measured, "points": points,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def _spawn(mode: str, site: Path, frames: int, warmup: int) -> subprocess.Popen:
    command = [sys.executable, __file__, "--worker", mode, "--site", str(site),
               "--frames", str(frames), "--warmup", str(warmup)]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _collect(process: subprocess.Popen) -> dict[str, float]:
    out, err = process.communicate()
    if process.returncode != 0:
        sys.exit(f"bench_capacity: a measuring pass failed:\n{err.strip()[-3000:]}")
    return json.loads(out.strip().splitlines()[-1])


def cost(site: Path, frames: int, warmup: int, parallel: int) -> list[dict[str, float]]:
    processes = [_spawn("pipeline", site, frames, warmup) for _ in range(parallel)]
    return [_collect(p) for p in processes]


# --- live workers -------------------------------------------------------------------

def _peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _health(db: Path) -> dict[str, dict]:
    import sqlite3

    if not db.exists():
        return {}
    with sqlite3.connect(db, timeout=10) as conn:
        try:
            rows = conn.execute(
                "select component, status, detail, updated_at from health").fetchall()
        except sqlite3.OperationalError:
            return {}
    return {c: {"status": s, "detail": json.loads(d or "{}"), "updated_at": u}
            for c, s, d, u in rows}


# `edge run camera` with only the runtime dependencies importable: the development venv
# also holds pandas (for the eval extra), which sqlite-utils imports whenever it can
# (about 35 MB per process that an installed box does not pay).
AS_INSTALLED = "import sys; sys.modules['pandas'] = None; from edge.cli import main; main()"
DEV_VENV = "from edge.cli import main; main()"


def live_workers(site: Path, cameras: int, seconds: float, folder: Path,
                 launcher: str = AS_INSTALLED) -> dict[str, list[float]]:
    """Run ``cameras`` workers at once; achieved frames/s and memory of each."""
    import psutil
    import yaml

    db = Path(yaml.safe_load(site.read_text())["storage"]["db_path"])
    env = {**os.environ, "EDGE_STATE_DIR": str(folder / f"state-{site.stem}")}
    processes = [
        subprocess.Popen([sys.executable, "-c", launcher, "run", "camera", "--config", str(site),
                          "--camera", f"cam{i + 1}"], env=env, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True, start_new_session=True)
        for i in range(cameras)
    ]
    names = [f"camera:cam{i + 1}" for i in range(cameras)]
    pss_peak = [0.0] * cameras
    try:
        deadline = time.monotonic() + 120 + 10 * cameras
        while True:  # every worker up and detecting
            health = _health(db)
            if all(health.get(n, {}).get("detail", {}).get("frames_processed", 0) > 0
                   for n in names):
                break
            for process in processes:
                if process.poll() is not None:
                    stderr = process.communicate()[1]
                    sys.exit(f"bench_capacity: a worker exited:\n{stderr[-2000:]}")
            if time.monotonic() > deadline:
                sys.exit("bench_capacity: the workers did not start in time")
            time.sleep(0.5)
        time.sleep(3)  # past the first health window
        first = _health(db)
        started = time.monotonic()
        while time.monotonic() - started < seconds:
            for i, process in enumerate(processes):
                with contextlib.suppress(psutil.Error):  # exited between two samples
                    pss_peak[i] = max(pss_peak[i],
                                      psutil.Process(process.pid).memory_full_info().pss / 2**20)
            time.sleep(1.0)
        last = _health(db)
        peaks = [_peak_rss_mb(p.pid) for p in processes]
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
    fps = []
    for name in names:
        a, b = first[name], last[name]
        frames = b["detail"]["frames_processed"] - a["detail"]["frames_processed"]
        fps.append(frames / (b["updated_at"] - a["updated_at"]))
    return {"fps": fps, "peak_rss_mb": peaks, "pss_peak_mb": pss_peak}


def main() -> int:
    parser = bench_parser(__doc__, quick=None)
    parser.add_argument("--frames", type=int, default=300, help="frames per cost pass")
    parser.add_argument("--warmup", type=int, default=10, help="frames not timed")
    parser.add_argument("--seconds", type=float, default=30.0, help="live measuring window")
    parser.add_argument("--streams", default="12,auto",
                        help="workers in each validation run, comma-separated; auto = the "
                        f"derived capacity (at most {MAX_VALIDATION_STREAMS}); 12 is the goal")
    parser.add_argument("--cores", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--worker", choices=["bare", "pipeline"], help=argparse.SUPPRESS)
    parser.add_argument("--site", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.worker:
        print(json.dumps(bare_pass(args) if args.worker == "bare" else pipeline_pass(args)))
        return 0

    figures: dict[str, float] = {"cores": args.cores,
                                 "load_avg_1m_at_start": round(os.getloadavg()[0], 2)}
    folder = Path(tempfile.mkdtemp(prefix="bench-capacity-"))
    try:
        log("writing the 640x360 copy of the recording")
        video = make_video(folder)
        best: tuple[float, tuple[int, int]] | None = None
        for size in SIZES:
            tag = f"{size[0]}x{size[1]}"
            site = site_yaml(folder, video, size, 1, f"cost-{tag}")
            log(f"{tag}: bare inference, the pipeline alone, then two at once")
            bare = _collect(_spawn("bare", site, args.frames, 0))
            alone = cost(site, args.frames, args.warmup, 1)[0]
            both = cost(site, args.frames, args.warmup, 2)
            both_cpu = statistics.mean(p["cpu_ms"] for p in both)
            both_wall = statistics.mean(p["wall_ms"] for p in both)
            efficiency = alone["cpu_ms"] / both_cpu
            streams = args.cores * efficiency / (DETECT_FPS * alone["cpu_ms"] / 1000)
            streams_wall = args.cores * (alone["wall_ms"] / both_wall) / (
                DETECT_FPS * alone["wall_ms"] / 1000)
            figures.update({
                f"bare_cpu_ms_{tag}": round(bare["cpu_ms"], 2),
                f"bare_wall_ms_{tag}": round(bare["wall_ms"], 2),
                f"pipeline_cpu_ms_{tag}": round(alone["cpu_ms"], 2),
                f"pipeline_wall_ms_{tag}": round(alone["wall_ms"], 2),
                f"pipeline_ratio_{tag}": round(alone["cpu_ms"] / bare["cpu_ms"], 3),
                f"parallel2_cpu_ms_{tag}": round(both_cpu, 2),
                f"parallel2_wall_ms_{tag}": round(both_wall, 2),
                f"parallel_efficiency_{tag}": round(efficiency, 3),
                f"streams_5fps_{tag}": round(streams, 1),
                f"streams_5fps_wall_{tag}": round(streams_wall, 1),
            })
            if best is None or streams > best[0]:
                best = (streams, size)
        assert best is not None
        size = best[1]
        tag = f"{size[0]}x{size[1]}"
        log(f"memory: one worker at {tag}, as installed and in the development venv")
        one = live_workers(site_yaml(folder, video, size, 1, "mem1"), 1, args.seconds / 2, folder)
        dev = live_workers(site_yaml(folder, video, size, 1, "mem1dev"), 1, args.seconds / 2,
                           folder, DEV_VENV)
        log(f"memory: four workers at {tag}")
        four = live_workers(site_yaml(folder, video, size, 4, "mem4"), 4, args.seconds / 2, folder)
        derived = min(MAX_VALIDATION_STREAMS, max(1, int(best[0])))
        levels = sorted({derived if level == "auto" else int(level)
                         for level in args.streams.split(",")})
        figures.update({
            "validation_input_height": size[0],
            "validation_input_width": size[1],
        })
        for streams in levels:
            figures[f"load_avg_1m_before_{streams}_streams"] = round(os.getloadavg()[0], 2)
            log(f"validation: {streams} workers at {tag} for {args.seconds:.0f} s")
            live = live_workers(site_yaml(folder, video, size, streams, f"live{streams}"),
                                streams, args.seconds, folder)
            figures.update({
                f"streams_{streams}_min_fps": round(min(live["fps"]), 2),
                f"streams_{streams}_median_fps": round(statistics.median(live["fps"]), 2),
                f"streams_{streams}_at_4_75_fps": sum(f >= 4.75 for f in live["fps"]),
                f"streams_{streams}_peak_rss_sum_mb": round(sum(live["peak_rss_mb"]), 1),
            })
        figures.update({
            "worker_peak_rss_mb": round(one["peak_rss_mb"][0], 1),
            "worker_peak_rss_mb_dev_venv": round(dev["peak_rss_mb"][0], 1),
            "worker_pss_mb": round(one["pss_peak_mb"][0], 1),
            "four_workers_peak_rss_sum_mb": round(sum(four["peak_rss_mb"]), 1),
            "four_workers_pss_sum_mb": round(sum(four["pss_peak_mb"]), 1),
            "load_avg_1m_at_end": round(os.getloadavg()[0], 2),
        })
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return print_figures(figures, args.json)


if __name__ == "__main__":
    sys.exit(main())
