"""onnxruntime sessions, and the graph edits YOLOX gets before it runs."""

from __future__ import annotations

import functools
import os
import subprocess
import sys
from pathlib import Path

import onnxruntime as ort

from edge.config.vision import DetectorConfig
from edge.errors import ModelError

# Whether idle intra-op threads busy-wait for work (onnxruntime's default: yes).
SPINNING = "session.intra_op.allow_spinning"


def usable_cores() -> int:
    """Cores this process may run on (a container's or a systemd unit's CPU set counts)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def worker_detector(config: DetectorConfig, cameras: int,
                    cores: int | None = None) -> DetectorConfig:
    """The detector config one camera worker runs, its ``threads`` set by
    :func:`worker_threads`."""
    return config.model_copy(update={"threads": worker_threads(config.threads, cameras, cores)})


def worker_threads(configured: int | None, cameras: int, cores: int | None = None) -> int | None:
    """Intra-op threads for one camera worker's session, when ``cameras`` workers share
    the box's ``cores``.

    ``detector.threads`` when set. Else one camera alone keeps onnxruntime's choice (every
    core: the shortest time a picture), and several divide the cores among them, at least
    one thread each: with onnxruntime's choice every worker runs a thread per core, and
    threads that wait on one another cost CPU that another camera needs (352x640: 22.2
    ms of CPU a picture with two threads against 17.4 with one, docs/appliance.md).
    """
    if configured is not None:
        return configured
    if cameras <= 1:
        return None
    return max(1, (cores or usable_cores()) // cameras)


def make_session(model: Path | bytes, threads: int | None) -> ort.InferenceSession:
    """A CPU session; ``threads`` sets intra-op parallelism (None: onnxruntime's default).

    Measured with ``scripts/bench_capacity`` (YOLOX-Nano, 352x640): full graph
    optimisation costs half the CPU of the basic or extended levels for the same
    outputs (within 3e-4); with two intra-op threads, spinning workers doubled the CPU
    time per frame (40.7 ms against 20.7) for no shorter wall time. On a box whose
    cameras share the cores, that CPU is another camera's, so the threads sleep.
    """
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads:
        options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    # The arena already reuses activation memory from run to run; the memory pattern
    # adds a second block the size of the planned activations on the second run (7 MB
    # per camera worker at 480x640, issue 18) and saves no CPU time (bench_capacity).
    options.enable_mem_pattern = False
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.add_session_config_entry(SPINNING, "0")
    options.log_severity_level = 3
    source = str(model) if isinstance(model, Path) else model
    try:
        return ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])
    except Exception as error:  # onnxruntime raises its own untyped errors
        name = model if isinstance(model, Path) else "model"
        raise ModelError(f"onnxruntime cannot load {name}: {error}".splitlines()[0]) from None


@functools.lru_cache(maxsize=2)
def _edited_model(path: str, mtime_ns: int, size: int, keep_class: int | None,
                  patches: bool) -> bytes:
    command = [sys.executable, "-m", "edge.detection.graph_edit", path]
    if keep_class is not None:
        command += ["--keep-class", str(keep_class)]
    if patches:
        command.append("--patches")
    result = subprocess.run(command, capture_output=True, check=False)
    if result.returncode != 0:
        reason = result.stderr.decode(errors="replace").strip().splitlines()
        raise ModelError(reason[-1] if reason else f"cannot edit {path} (status "
                         f"{result.returncode})")
    return result.stdout


def edited_yolox(path: Path, keep_class: int | None = None, patches: bool = False) -> bytes:
    """Return the model with its input height/width (and the box count of its output)
    made symbolic, so onnxruntime accepts any input size, with ``keep_class`` its
    head cut to that one class, and with ``patches`` taking its stem's 12-channel
    patches as input (:mod:`edge.detection.graph_edit`).

    The edit runs in a child process, so the onnx package never loads into a
    long-running worker; the result is cached per file.
    """
    stat = path.stat()
    return _edited_model(str(path), stat.st_mtime_ns, stat.st_size, keep_class, patches)
