#!/usr/bin/env python3
"""How many cameras one box carries: memory per camera worker, and 640x360 streams
detected at 5 frames/s in real time, each figure beside the accuracy it is bought at.

0. Accuracy at each input size: the PETS recording (768x576, all 795 frames) through
   the demo site at that input size, scored against its ground truth as `edge eval mot`
   does (HOTA, IDF1, DetA). Every size here is at least 16:9, so both the recording and
   a 640x360 stream are fitted by height: a person has the same height in input pixels
   as in a 640x360 stream of the same field of view (the 640x360 copy below), and the
   accuracy is that of the stream's people. ``accurate_size`` is the size with the most
   streams among those whose HOTA is within 0.02 of the best size's.

1. Cost per frame of the whole per-camera pipeline (decode the 640x360 frames the camera
   sends, ``--stream-fps``: 10, every other one detected, or 5, each one; detect,
   track, map to the floor, batched SQLite writes) at each network input size, one
   onnxruntime thread, against the baseline of bare onnxruntime inference at the same
   size measured in the same run (``pipeline_ratio``). Each pass runs in a fresh
   process; the pipeline pass alone, then two at once (parallel efficiency).
2. Capacity derived from it: streams = cores x efficiency / (5 frames/s x cost per frame).
   CPU time per frame is the cost (wall time is printed too): on a machine shared with
   other work, wall time measures the neighbours as much as the pipeline.
3. Validation: N real camera workers (``edge run camera``, one process each) on N
   looped 640x360 recordings sent at ``--stream-fps`` and detected at 5 frames/s,
   sharing one database; each worker's
   achieved frames/s over the measuring window, from its own health reports.
4. Variants at the accurate size (not with --quick): onnxruntime graph optimisation
   levels (CPU ms, and the largest output difference to ENABLE_ALL on real frames),
   intra-op threads 1 and 2 with spinning on and off, and static INT8 quantisation
   (onnxruntime.quantization.quantize_static, per-channel, QDQ and QOperator, MinMax,
   calibrated on frames of the shared one-by-one-person and TUD-Campus videos, never
   the PETS test frames), each with its CPU ms and PETS HOTA / IDF1.
5. Memory: peak RSS (VmHWM) of one worker, then the sum over 4 workers running at
   once (and their PSS: shared library pages counted once). Workers import only what an
   installed box has (the development venv's pandas is hidden; measured both ways for
   one worker). VmHWM counts the shared library pages a worker touches, and how many the
   kernel maps per touch depends on how the files entered the page cache (large folios):
   compare figures from the same run only.

The 640x360 copy of the PETS recording is written to a temporary folder (MPEG-4
part 2: this OpenCV build has no H.264 encoder) and deleted afterwards: the frame
scaled by 0.625 (people keep their shape) and centred between grey bars, the field of
view of a 16:9 camera; the demo calibration is scaled to it, so floor positions stay
true.

    .venv/bin/python scripts/bench_capacity.py            # table
    .venv/bin/python scripts/bench_capacity.py --json     # one JSON object name -> number
    .venv/bin/python scripts/bench_capacity.py --quick    # two sizes, no variants or live runs
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
# (224, 384) is the default a 640x360 camera gets (edge.detection.input_size).
SIZES = ((224, 384), (256, 448), (288, 512), (352, 640), (480, 864))
QUICK_SIZES = ((224, 384), (352, 640))
HOTA_MARGIN = 0.02  # "accurate": HOTA within this of the best size's
SCALE = HEIGHT / 576  # the recording is 768x576: scaled by height, centred
OFFSET_X = (WIDTH - round(768 * SCALE)) / 2
CALIBRATION_VIDEOS = (  # (path under the shared folder, every how many frames)
    ("video/one-by-one-person-detection.mp4", 70),
    ("mot/TUD-Campus/TUD-Campus.mp4", 7),
)
MAX_VALIDATION_STREAMS = 16
ACCURATE_SIZE = (352, 640)  # the accurate size of the last full run (docs/appliance.md)


def log(message: str) -> None:
    print(f"bench_capacity: {message}", file=sys.stderr, flush=True)


def make_video(folder: Path) -> Path:
    """A 640x360 copy of the demo recording: scaled by height, between grey bars."""
    import cv2
    import numpy as np

    from edge.assets import resolve_uri

    source = cv2.VideoCapture(resolve_uri("asset:pets09_s2l1_view001"))
    target = folder / "pets-640x360.mp4"
    writer = cv2.VideoWriter(str(target), cv2.VideoWriter.fourcc(*"mp4v"), FILE_FPS,
                             (WIDTH, HEIGHT))
    while True:
        ok, image = source.read()
        if not ok:
            break
        frame = np.full((HEIGHT, WIDTH, 3), 114, np.uint8)
        scaled = cv2.resize(image, (round(768 * SCALE), HEIGHT), interpolation=cv2.INTER_AREA)
        frame[:, int(OFFSET_X):int(OFFSET_X) + scaled.shape[1]] = scaled
        writer.write(frame)
    writer.release()
    source.release()
    return target


def site_yaml(folder: Path, video: Path, size: tuple[int, int], cameras: int, name: str,
              threads: int | None = 1, stream_fps: float = FILE_FPS) -> Path:
    """The demo site with ``cameras`` cameras on the 640x360 copy, ``threads`` each (None:
    the product's own choice, edge.detection.session.worker_threads)."""
    import yaml

    from edge.paths import default_site_config

    site = yaml.safe_load(default_site_config().read_text())
    base = site["cameras"][0]
    points = base["calibration"]["image_points"]
    calibration = {
        "image_points": [[x * SCALE + int(OFFSET_X), y * SCALE] for x, y in points],
        "floor_points": base["calibration"]["floor_points"],
    }
    site["cameras"] = [
        {**base, "id": f"cam{i + 1}", "source": str(video), "loop": True, "fps": stream_fps,
         "detect_fps": DETECT_FPS, "calibration": calibration}
        for i in range(cameras)
    ]
    site["detector"].update(input_size=list(size), threads=threads)
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
    from edge.detection.session import edited_yolox, make_session
    from edge.detection.yolox import empty_input, fill_input, takes_patches

    site = load_site(args.site)
    path, _, spec = resolve_model(site.detector)
    native = (int(spec["input"]["height"]), int(spec["input"]["width"]))
    height, width = site.detector.input_size or native
    size = (int(height), int(width))
    # The model as the detector runs it: any size, the person's class only, patches in.
    session = make_session(edited_yolox(path, int(spec.get("person_class", 0)), patches=True), 1)
    name = session.get_inputs()[0].name
    image = np.random.default_rng(0).integers(0, 255, (*size, 3), np.uint8)
    blob = fill_input(empty_input(size, takes_patches(session)), image)
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
    from edge.feet import FootPoints
    from edge.pipeline import CameraPipeline
    from edge.runtime.schema import open_database
    from edge.storage.trajectories import start_run, write_track_points
    from edge.tracking import ByteTracker
    from edge.video import VideoSource

    site = load_site(args.site)
    camera = site.cameras[0]
    homography = fit_camera_calibrations(site)[camera.id]
    pipeline = CameraPipeline(camera.id, load_detector(site.detector),
                              ByteTracker(site.tracker, DETECT_FPS),
                              homography, camera.floor_area,
                              feet=FootPoints(site.feet, homography))
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


def accuracy_pass(args: argparse.Namespace) -> dict[str, float]:
    """The PETS recording through the demo site at ``args.size`` (and ``args.model``),
    scored against its ground truth."""
    from edge.config import load_site
    from edge.evaluation.accuracy import evaluate_run, read_ground_truth
    from edge.paths import default_site_config
    from edge.replay import replay
    from edge.runtime.schema import open_database

    site = load_site(default_site_config())
    update: dict[str, object] = {"input_size": tuple(args.size), "threads": 1}
    if args.model:
        update.update(model=args.model, kind="yolox")
    site = site.model_copy(update={"detector": site.detector.model_copy(update=update)})
    gt = read_ground_truth(Path(os.environ["EDGE_ASSETS_DIR"]) / "mot" / "PETS09-S2L1" / "gt"
                           / "gt.txt")
    with tempfile.TemporaryDirectory() as folder:
        db = open_database(Path(folder) / "accuracy.db")
        summary = replay(site, db, start_time=0.0)
        mot = evaluate_run(db, site, summary.run_id, gt, "gt.txt").mot
        db.close()
    return {"frames": summary.frames, **{k: float(mot[k]) for k in ("HOTA", "IDF1", "DetA")}}


def variant_pass(args: argparse.Namespace) -> dict[str, float]:
    """Bare inference of one session variant (model, optimisation level, threads,
    spinning) at ``args.size`` on real frames; its outputs are saved for comparison."""
    import numpy as np
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = getattr(ort.GraphOptimizationLevel, args.level)
    options.intra_op_num_threads = args.threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if args.spin else "0")
    options.log_severity_level = 3
    session = ort.InferenceSession(args.model, options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    blobs = np.load(args.blobs)
    outputs = [session.run(None, {name: blob[None]})[0] for blob in blobs]  # also warms up
    wall, cpu = time.perf_counter(), time.process_time()
    for index in range(args.frames):
        session.run(None, {name: blobs[index % len(blobs)][None]})
    figures = {"frames": args.frames,
               "wall_ms": 1000 * (time.perf_counter() - wall) / args.frames,
               "cpu_ms": 1000 * (time.process_time() - cpu) / args.frames}
    if args.outputs:
        np.save(args.outputs, np.concatenate(outputs))
    return figures


def letterboxed_blobs(paths: list[tuple[Path, int]], size: tuple[int, int]):
    """NCHW float32 blobs of every ``step``-th frame of each video, letterboxed to
    ``size`` the way the detector does it (top-left, grey 114)."""
    import cv2
    import numpy as np

    blobs = []
    for path, step in paths:
        capture = cv2.VideoCapture(str(path))
        index = 0
        while True:
            ok, image = capture.read()
            if not ok:
                break
            if index % step == 0:
                ratio = min(size[0] / image.shape[0], size[1] / image.shape[1])
                new = (round(image.shape[1] * ratio), round(image.shape[0] * ratio))
                canvas = np.full((*size, 3), 114, np.uint8)
                canvas[:new[1], :new[0]] = cv2.resize(image, new, interpolation=cv2.INTER_LINEAR)
                blobs.append(canvas.transpose(2, 0, 1).astype(np.float32))
            index += 1
        capture.release()
    return np.stack(blobs)


def quantize(folder: Path, size: tuple[int, int]) -> dict[str, Path]:
    """FP32 (any input size) and two static INT8 variants of YOLOX-Nano, calibrated on
    the shared videos that are not the PETS test recording."""
    import onnx
    from onnx import version_converter
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from edge.assets import resolve
    from edge.detection.session import edited_yolox

    shared = Path(os.environ["EDGE_ASSETS_DIR"])
    model = onnx.load_from_string(edited_yolox(resolve("yolox_nano_416x416"), 0))
    del model.graph.value_info[:]  # shapes recorded at 416x416: inferred again below
    model = version_converter.convert_version(model, 13)  # per-channel QDQ needs opset 13
    fp32 = folder / "fp32.onnx"
    onnx.save(model, str(fp32))
    prepared = folder / "prepared.onnx"
    quant_pre_process(str(fp32), str(prepared), skip_symbolic_shape=True)
    blobs = letterboxed_blobs([(shared / p, step) for p, step in CALIBRATION_VIDEOS], size)
    log(f"INT8: calibrating on {len(blobs)} frames of the one-by-one-person and TUD-Campus "
        "videos")

    class Frames(CalibrationDataReader):
        def __init__(self) -> None:
            self._left = iter(blobs)

        def get_next(self) -> dict | None:
            blob = next(self._left, None)
            return None if blob is None else {"images": blob[None]}

    variants = {"fp32": fp32}
    for name, quant_format in (("int8_qdq", QuantFormat.QDQ),
                               ("int8_qoperator", QuantFormat.QOperator)):
        variants[name] = folder / f"{name}.onnx"
        quantize_static(str(prepared), str(variants[name]), Frames(), quant_format=quant_format,
                        per_channel=True, activation_type=QuantType.QUInt8,
                        weight_type=QuantType.QInt8, calibrate_method=CalibrationMethod.MinMax)
    return variants


def _run_worker(mode: str, *argv: str) -> dict[str, float]:
    command = [sys.executable, __file__, "--worker", mode, *argv]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        sys.exit(f"bench_capacity: the {mode} pass failed:\n{result.stderr.strip()[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def accuracy(size: tuple[int, int], model: Path | None = None) -> dict[str, float]:
    argv = ["--size", str(size[0]), str(size[1])]
    return _run_worker("accuracy", *argv, *(["--model", str(model)] if model else []))


def variants(folder: Path, size: tuple[int, int], frames: int) -> dict[str, float]:
    """Speed and accuracy of each session and model variant at ``size``."""
    import numpy as np

    tag = f"{size[0]}x{size[1]}"
    models = quantize(folder, size)
    shared = Path(os.environ["EDGE_ASSETS_DIR"])
    test_blobs = folder / "pets-blobs.npy"  # real frames for timing and output checks
    np.save(test_blobs, letterboxed_blobs([(shared / "video" / "pets09-s2l1-view001.avi", 40)],
                                          size))
    figures: dict[str, float] = {}
    reference = folder / "reference.npy"

    def timed(name: str, model: Path, level: str = "ORT_ENABLE_ALL", threads: int = 1,
              spin: bool = True, outputs: Path | None = None) -> dict[str, float]:
        log(f"variant {name} at {tag}")
        argv = ["--model", str(model), "--level", level, "--threads", str(threads),
                "--frames", str(frames), "--blobs", str(test_blobs), "--size", *map(str, size)]
        if spin:
            argv.append("--spin")
        if outputs:
            argv += ["--outputs", str(outputs)]
        result = _run_worker("variant", *argv)
        figures[f"variant_{name}_cpu_ms_{tag}"] = round(result["cpu_ms"], 2)
        figures[f"variant_{name}_wall_ms_{tag}"] = round(result["wall_ms"], 2)
        return result

    timed("fp32_all", models["fp32"], outputs=reference)
    for level in ("ORT_DISABLE_ALL", "ORT_ENABLE_BASIC", "ORT_ENABLE_EXTENDED"):
        name = f"fp32_{level.removeprefix('ORT_').lower()}"
        out = folder / f"{name}.npy"
        timed(name, models["fp32"], level=level, outputs=out)
        figures[f"variant_{name}_max_output_diff_{tag}"] = float(
            np.abs(np.load(out) - np.load(reference)).max())
    for threads, spin in ((2, True), (2, False)):
        timed(f"fp32_threads{threads}_spin{int(spin)}", models["fp32"], threads=threads,
              spin=spin)
    for name in ("int8_qdq", "int8_qoperator"):
        out = folder / f"{name}.npy"
        timed(name, models[name], outputs=out)
        scores = np.load(out)[..., 4] * np.load(out)[..., 5]
        ref_scores = np.load(reference)[..., 4] * np.load(reference)[..., 5]
        figures[f"variant_{name}_max_person_score_diff_{tag}"] = round(
            float(np.abs(scores - ref_scores).max()), 4)
        log(f"variant {name}: PETS accuracy at {tag}")
        scored = accuracy(size, models[name])
        figures.update({f"variant_{name}_{k}_{tag}": round(scored[k], 4)
                        for k in ("HOTA", "IDF1", "DetA")})
    return figures


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


# `edge run camera` with only the runtime dependencies importable. The development venv
# also holds pandas (for the eval extra), which sqlite-utils imports whenever it can; edge
# itself now hides it from sqlite-utils (edge/__init__.py, issue 18), so both launchers
# should measure the same worker: a gap between the two figures is a regression.
AS_INSTALLED = "import sys; sys.modules['pandas'] = None; from edge.cli import main; main()"
DEV_VENV = "from edge.cli import main; main()"


def live_workers(site: Path, cameras: int, seconds: float, folder: Path,
                 launcher: str = AS_INSTALLED, *, sample_pss: bool = True,
                 ) -> dict[str, list[float]]:
    """Run ``cameras`` workers at once; achieved frames/s and memory of each.

    ``sample_pss``: read each worker's PSS every second (its smaps: a few ms of CPU a
    worker, taken from the workers being measured); off for the frames/s validation."""
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
            for i, process in enumerate(processes if sample_pss else ()):
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
    parser = bench_parser(__doc__, quick=(
        f"sizes {', '.join(f'{h}x{w}' for h, w in QUICK_SIZES)}, 100 frames per cost pass, "
        "no variants, memory or live runs; the best HOTA is then the better of the two"))
    parser.add_argument("--frames", type=int, default=300, help="frames per cost pass")
    parser.add_argument("--warmup", type=int, default=10, help="frames not timed")
    parser.add_argument("--seconds", type=float, default=30.0, help="live measuring window")
    parser.add_argument("--streams", default="12,auto",
                        help="workers in each validation run, comma-separated; auto = the "
                        f"derived capacity (at most {MAX_VALIDATION_STREAMS}); 12 is the goal")
    parser.add_argument("--cores", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--stream-fps", type=float, default=FILE_FPS,
                        help="frames/s each camera sends, all decoded, %(default)s: every "
                             "other one detected; 5: each one")
    parser.add_argument("--live-only", action="store_true",
                        help="only the validation: real workers at --streams (numbers) at "
                        f"{ACCURATE_SIZE[0]}x{ACCURATE_SIZE[1]}, the accurate size last measured")
    parser.add_argument("--worker-threads", default="1",
                        help="with --live-only: detector threads per worker (auto: unset, "
                        "the product's choice)")
    parser.add_argument("--worker", choices=["bare", "pipeline", "accuracy", "variant"],
                        help=argparse.SUPPRESS)
    parser.add_argument("--site", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--size", type=int, nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--model", help=argparse.SUPPRESS)
    parser.add_argument("--level", default="ORT_ENABLE_ALL", help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--spin", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--blobs", help=argparse.SUPPRESS)
    parser.add_argument("--outputs", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.worker:
        passes = {"bare": bare_pass, "pipeline": pipeline_pass, "accuracy": accuracy_pass,
                  "variant": variant_pass}
        print(json.dumps(passes[args.worker](args)))
        return 0

    if args.live_only:
        return _print(validate(args, ACCURATE_SIZE), args.json)
    sizes = QUICK_SIZES if args.quick else SIZES
    if args.quick:
        args.frames = min(args.frames, 100)
    figures: dict[str, float] = {"cores": args.cores,
                                 "load_avg_1m_at_start": round(os.getloadavg()[0], 2)}
    folder = Path(tempfile.mkdtemp(prefix="bench-capacity-"))
    try:
        log("writing the 640x360 copy of the recording")
        video = make_video(folder)
        streams_of: dict[tuple[int, int], float] = {}
        hota_of: dict[tuple[int, int], float] = {}
        for size in sizes:
            tag = f"{size[0]}x{size[1]}"
            site = site_yaml(folder, video, size, 1, f"cost-{tag}", stream_fps=args.stream_fps)
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
            log(f"{tag}: PETS accuracy (795 frames)")
            scored = accuracy(size)
            streams_of[size], hota_of[size] = streams, scored["HOTA"]
            figures.update({
                f"pets_hota_{tag}": round(scored["HOTA"], 4),
                f"pets_idf1_{tag}": round(scored["IDF1"], 4),
                f"pets_deta_{tag}": round(scored["DetA"], 4),
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
        best_hota = max(hota_of.values())
        accurate = [size for size in sizes if hota_of[size] >= best_hota - HOTA_MARGIN]
        size = max(accurate, key=lambda s: streams_of[s])
        tag = f"{size[0]}x{size[1]}"
        figures.update({
            "best_pets_hota": round(best_hota, 4),
            "accurate_input_height": size[0],
            "accurate_input_width": size[1],
            "streams_5fps_at_accurate_size": round(streams_of[size], 1),
        })
        if args.quick:
            return _print(figures, args.json)
        figures.update(variants(folder, size, args.frames))
        log(f"memory: one worker at {tag}, as installed and in the development venv")
        one = live_workers(site_yaml(folder, video, size, 1, "mem1"), 1, args.seconds / 2, folder)
        dev = live_workers(site_yaml(folder, video, size, 1, "mem1dev"), 1, args.seconds / 2,
                           folder, DEV_VENV)
        log(f"memory: four workers at {tag}")
        four = live_workers(site_yaml(folder, video, size, 4, "mem4"), 4, args.seconds / 2, folder)
        derived = min(MAX_VALIDATION_STREAMS, max(1, int(streams_of[size])))
        figures.update(validate(args, size, folder, video, derived))
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
    return _print(figures, args.json)


def validate(args: argparse.Namespace, size: tuple[int, int], folder: Path | None = None,
             video: Path | None = None, derived: int | None = None) -> dict[str, float]:
    """Real camera workers at each of ``--streams`` (``auto``: ``derived``), each on its own
    looped 640x360 stream paced to 5 frames/s: their achieved frames/s."""
    own_folder = folder is None
    folder = folder or Path(tempfile.mkdtemp(prefix="bench-capacity-"))
    tag = f"{size[0]}x{size[1]}"
    figures: dict[str, float] = {"validation_input_height": size[0],
                                 "validation_input_width": size[1]}
    try:
        if video is None:
            log("writing the 640x360 copy of the recording")
            video = make_video(folder)
        levels = sorted({level for level in (
            derived if text == "auto" else int(text) for text in args.streams.split(","))
            if level is not None})
        for streams in levels:
            figures[f"load_avg_1m_before_{streams}_streams"] = round(os.getloadavg()[0], 2)
            log(f"validation: {streams} workers at {tag} for {args.seconds:.0f} s")
            threads = None if args.worker_threads == "auto" else int(args.worker_threads)
            live = live_workers(site_yaml(folder, video, size, streams, f"live{streams}", threads,
                                          args.stream_fps),
                                streams, args.seconds, folder, sample_pss=False)
            figures.update({
                f"streams_{streams}_min_fps": round(min(live["fps"]), 2),
                f"streams_{streams}_median_fps": round(statistics.median(live["fps"]), 2),
                f"streams_{streams}_at_4_75_fps": sum(f >= 4.75 for f in live["fps"]),
                f"streams_{streams}_peak_rss_sum_mb": round(sum(live["peak_rss_mb"]), 1),
            })
    finally:
        if own_folder:
            shutil.rmtree(folder, ignore_errors=True)
    return figures


def _print(figures: dict[str, float], as_json: bool) -> int:
    figures["load_avg_1m_at_end"] = round(os.getloadavg()[0], 2)
    return print_figures(figures, as_json)


if __name__ == "__main__":
    sys.exit(main())
