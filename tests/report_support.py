"""Fixtures and helpers of the report tests (a plugin: tests/conftest.py lists it).

Expensive setups run once per test session, whichever xdist worker asks first:
``xdist_group`` marks do not keep tests on one worker with pytest 9.2 and
pytest-xdist 3.8 (a 6-test sample spread over both workers under --dist loadgroup),
so shared replays are built under a file lock in the session's temporary folder,
as tests/test_vision_accuracy.py does, and their results read back from JSON.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from edge.cli import cli
from tests.conftest import PETS_DET, PETS_GT, SHARED
from tests.test_cli import run_edge
from tests.test_vision_accuracy import pets_replay  # noqa: F401  (a fixture, offered here)

FRAMES = 100
START = "2026-11-23T10:00:00+00:00"
PHONE = SHARED / "wifi" / "single-phone" / "S21Ultra-M_anonymized.pcap"


def run_once(
    factory: pytest.TempPathFactory, name: str, build: Callable[[Path], dict]
) -> dict:
    """``build(folder)`` once per session; every caller gets its JSON-able result."""
    base = factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent  # the session's folder, shared by its workers
    folder = base / name
    folder.mkdir(exist_ok=True)
    with (base / f"{name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        result = folder / "result.json"
        if not result.exists():
            result.write_text(json.dumps(build(folder)))
    return json.loads(result.read_text())


def kept_detail(original: np.ndarray, drawn: np.ndarray) -> float:
    """How much of the original's fine detail the drawn patch still holds: correlation
    of their high-pass images (about 1 for the same picture, about 0 once pixelated).
    Drawn overlays (zone outlines, labels) are unrelated to the original, so they do
    not raise it."""
    def high_pass(patch: np.ndarray) -> np.ndarray:
        grey = cv2.cvtColor(patch, cv2.COLOR_BGR2GRAY).astype(np.float64)
        return (grey - cv2.GaussianBlur(grey, (0, 0), 1.5)).ravel()

    a, b = high_pass(original), high_pass(drawn)
    return float(a @ b / np.sqrt((a @ a) * (b @ b) + 1e-9))


def read_frames(path: Path, indices: list[int]) -> dict[int, np.ndarray]:
    capture = cv2.VideoCapture(str(path))
    frames, index = {}, 0
    while index <= max(indices):
        ok, image = capture.read()
        if not ok:
            break
        if index in indices:
            frames[index] = image
        index += 1
    capture.release()
    return frames


def report_payload(path: Path) -> dict:
    match = re.search(r'<script type="application/json" id="report-data">(.*?)</script>',
                      path.read_text(), flags=re.S)
    assert match, "the report embeds its figures as JSON"
    return json.loads(match.group(1))


def _annotated_replay(folder: Path) -> dict:
    paths = {name: str(folder / name) for name in ("edge.db", "a.mp4", "a.html", "tracks.txt")}
    result = run_edge(
        "replay", "--max-frames", str(FRAMES), "--start-time", START,
        "--db", paths["edge.db"], "--annotate", paths["a.mp4"],
        "--report", paths["a.html"], "--gt", str(PETS_GT), "--pcap", str(PHONE),
        "--mot-out", paths["tracks.txt"], "--quiet",
    )
    assert result.returncode == 0, result.stderr
    return {**paths, "stdout": result.stdout, "stderr": result.stderr}


@pytest.fixture(scope="session")
def annotated(tmp_path_factory) -> dict:
    """The 100-frame replay with every output, made once per session (the browser test
    in tests/test_report_browser.py opens its report)."""
    result = run_once(tmp_path_factory, "report_annotated", _annotated_replay)
    return {key: Path(value) if key != "stdout" and key != "stderr" else value
            for key, value in result.items()}


def _det_replay(folder: Path) -> dict:
    db = folder / "edge.db"
    replayed = run_edge("replay", "--detections", str(PETS_DET), "--start-time", START,
                        "--db", str(db), "--quiet")
    assert replayed.returncode == 0, replayed.stderr
    return {"db": str(db)}


@pytest.fixture(scope="session")
def det_db(tmp_path_factory) -> Path:
    """A database holding one finished det.txt replay of PETS (made once per session;
    tests only read it)."""
    return Path(run_once(tmp_path_factory, "report_det_replay", _det_replay)["db"])


@dataclass(frozen=True)
class Ran:
    """What a command did, shaped like ``subprocess.CompletedProcess``."""

    returncode: int
    stdout: str
    stderr: str


def invoke(*args: str, env: dict[str, str | None] | None = None) -> Ran:
    """Run ``edge ARGS`` in this process (the same click group, error translation
    included; no interpreter start-up, which costs seconds on a loaded machine).
    ``env`` values of None unset a variable for the call. An exception that escapes
    the command (a traceback for the user) is raised here."""
    result = CliRunner().invoke(cli, list(args), env=env, prog_name="edge")
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return Ran(result.exit_code, result.stdout, result.stderr)


def _det_report(folder: Path, db: Path) -> dict:
    out = folder / "r.html"
    result = run_edge("report", "--db", str(db), "--out", str(out), "--gt", str(PETS_GT))
    assert result.returncode == 0, result.stderr
    return {"db": str(db), "out": str(out), "stdout": result.stdout}


@pytest.fixture(scope="session")
def det_report(det_db, tmp_path_factory) -> dict:
    """`edge report --gt` of the det.txt replay (made once per session)."""
    result = run_once(tmp_path_factory, "report_det_report", lambda f: _det_report(f, det_db))
    return {**result, "db": Path(result["db"]), "out": Path(result["out"])}
