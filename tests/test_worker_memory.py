"""Memory of a camera worker (issue 18: one peaked at 212 MB on the 768x576 PETS
recording; the target is 200 MB).

A worker's resident memory is its own (anonymous: Python objects, onnxruntime's arena,
frames) plus the pages of the shared libraries it touches (OpenCV, onnxruntime, numpy).
How many library pages a process is charged for depends on the kernel and on how the
files entered the page cache (with large folios a touched page can bring up to 2 MB):
the same worker read 179 MB with the libraries freshly loaded from disk and 215 MB
right after every library file had been read through (docs/appliance.md). Its own memory does not
depend on that: the ceilings below hold it to what the worker allocates.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import PETS_SITE, PETS_VIDEO
from tests.support.live_site import live_site_yaml

# The worker's own memory (smaps Anonymous) on the PETS recording: 101 MB measured in the
# development venv, 136 MB before pandas was kept out and the memory pattern dropped.
OWN_MEMORY_CEILING_MB = 120


def _proc_figures(pid: int) -> dict[str, float]:
    """VmHWM from /proc/PID/status and Anonymous from smaps_rollup, in MB."""
    figures = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            figures["peak_rss"] = int(line.split()[1]) / 1024
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Anonymous:"):
            figures["anonymous"] = int(line.split()[1]) / 1024
    return figures


# Stacks of other commands and services, and pandas (which sqlite-utils would import).
# scipy: ~28 MB that the shopping-groups rule once brought into every worker.
NOT_FOR_A_CAMERA = ("pandas", "scipy", "jinja2", "tqdm", "matplotlib", "motmetrics", "fastapi",
                    "uvicorn", "paho", "scapy", "edge.report", "edge.annotate",
                    "edge.evaluation", "edge.replay", "edge.wifi.pipeline")


def test_edge_run_camera_imports_only_the_camera_stack():
    """Regression: `edge run camera` imported every command's stack (the report's jinja2,
    the replay, the evaluators: 64 modules, ~3.5 MB) and, where the eval extra is
    installed, pandas through sqlite-utils (~40 MB)."""
    code = (
        "import sys, click\n"
        "from edge.cli import cli\n"
        "context = click.Context(cli)\n"
        "camera = cli.get_command(context, 'run').get_command(context, 'camera')\n"
        "import edge.runtime.camera_worker\n"  # what the command imports when it runs
        f"print([name for name in {NOT_FOR_A_CAMERA!r} if name in sys.modules])\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True, timeout=120)
    assert result.stdout.strip() == "[]"


def test_pandas_is_kept_from_sqlite_utils_only():
    """The evaluators still import pandas when they ask for it, and sqlite-utils works."""
    pytest.importorskip("pandas")
    code = (
        "import edge, pandas, sqlite_utils\n"
        "db = sqlite_utils.Database(memory=True)\n"
        "db['t'].insert({'a': 1})\n"
        "print(pandas.__name__, db['t'].count)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True, timeout=120)
    assert result.stdout.split() == ["pandas", "1"]


@pytest.mark.system  # the PETS recording
@pytest.mark.skipif(not Path("/proc/self/smaps_rollup").exists(), reason="needs Linux /proc")
def test_a_detectors_memory_stays_flat_after_it_is_loaded():
    """Regression: onnxruntime's memory pattern allocated a second block of activations
    on the detector's second run: 8 MB more for every worker at 480x640."""
    code = (
        "import sys, cv2\n"
        "from edge.config import load_site\n"
        "from edge.detection import load_detector\n"
        "def anonymous():\n"
        "    for line in open('/proc/self/smaps_rollup'):\n"
        "        if line.startswith('Anonymous:'):\n"
        "            return int(line.split()[1]) / 1024\n"
        "detector = load_detector(load_site(sys.argv[1]).detector)\n"
        "capture = cv2.VideoCapture(sys.argv[2])\n"
        "frames = [capture.read()[1] for _ in range(12)]\n"
        "before = anonymous()\n"
        "found = sum(len(detector.detect(frame)) for frame in frames)\n"
        "print(found, anonymous() - before)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(PETS_SITE), str(PETS_VIDEO)],
        capture_output=True, text=True, check=True, timeout=300,
    )
    found, growth_mb = result.stdout.split()
    assert int(found) > 12 * 3  # it really detected: ~6 people a frame
    assert float(growth_mb) < 3.0  # 0.9 MB measured; 8.0 with the memory pattern


@pytest.mark.system
@pytest.mark.skipif(not Path("/proc/self/smaps_rollup").exists(), reason="needs Linux /proc")
def test_a_camera_worker_on_the_768x576_recording_stays_under_its_ceilings(tmp_path):
    """`edge run camera` on the PETS recording (768x576, detected at 480x640 at 7
    frames/s) for 20 s after its first stored frames: its own memory (its peak is printed)."""
    config = live_site_yaml(tmp_path, str(PETS_VIDEO), loop=True, detect_fps=7)
    db_path = tmp_path / "state" / "edge.db"
    worker = subprocess.Popen(
        [sys.executable, "-m", "edge", "run", "camera", "--config", str(config),
         "--camera", "view001"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

    def frames_processed() -> int:
        if not db_path.exists():
            return 0
        try:
            with sqlite3.connect(db_path, timeout=5) as db:
                row = db.execute("select detail from health where component = "
                                 "'camera:view001'").fetchone()
        except sqlite3.OperationalError:  # the schema is not there yet
            return 0
        return json.loads(row[0])["frames_processed"] if row else 0

    try:
        deadline = time.monotonic() + 120
        while frames_processed() == 0:
            assert worker.poll() is None, worker.stderr.read() if worker.stderr else ""
            assert time.monotonic() < deadline, "the worker stored no frame in 120 s"
            time.sleep(0.5)
        first = frames_processed()
        time.sleep(20)
        assert worker.poll() is None
        figures = _proc_figures(worker.pid)
        assert frames_processed() >= first + 20  # it kept detecting while measured
    finally:
        worker.terminate()
        worker.wait(30)
    assert figures["anonymous"] < OWN_MEMORY_CEILING_MB, figures
    # The peak is reported, not asserted: with the same code it reads 179-262 MB here
    # depending on how the venv's libraries entered the page cache (the module
    # docstring); scripts/bench_capacity measures it on a quiet machine.
    print(f"camera worker peak RSS {figures['peak_rss']:.0f} MB, "
          f"own {figures['anonymous']:.0f} MB")
