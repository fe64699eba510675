"""Fixtures and helpers of the report tests (a plugin: tests/conftest.py lists it).

Expensive setups run once per test session, whichever xdist worker asks first: shared
replays are built under a file lock in the session's temporary folder, as
tests/test_vision_accuracy.py does, and their results read back from JSON, so a test
gets them on whichever worker it runs. (``xdist_group`` marks, which keep a group on one
worker, did nothing with pytest 9.2 and pytest-xdist 3.8 until tests/conftest.py tagged
the tests itself.)
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from edge.annotate import LINE_COLOUR, TRACK_COLOUR, ZONE_COLOURS
from edge.cli import cli
from tests.conftest import PETS_DET, PETS_GT, SINGLE_PHONES
from tests.support.cli import run_edge
from tests.support.session import run_once
from tests.test_vision_accuracy import pets_replay  # noqa: F401  (a fixture, offered here)

FRAMES = 100
START = "2026-11-23T10:00:00+00:00"
PHONE = SINGLE_PHONES / "S21Ultra-M_anonymized.pcap"


def kept_detail(original: np.ndarray, drawn: np.ndarray) -> float:
    """How much of the original's fine detail the drawn patch still holds: correlation
    of their high-pass images (about 1 for the same picture, about 0 once pixelated).
    Drawn overlays (zone outlines, labels) are unrelated to the original, so they do
    not raise it."""
    a, b = _high_pass(original), _high_pass(drawn)
    return float(a @ b / np.sqrt((a @ a) * (b @ b) + 1e-9))


def _high_pass(patch: np.ndarray) -> np.ndarray:
    grey = cv2.cvtColor(patch, cv2.COLOR_BGR2GRAY).astype(np.float64)
    return (grey - cv2.GaussianBlur(grey, (0, 0), 1.5)).ravel()


# The annotator's drawing colours (boxes, labels, lines, zone outlines; white zone
# names), leaving out its greys, which the pavement shares.
OVERLAY_COLOURS = np.array([c for c in (TRACK_COLOUR, LINE_COLOUR, *ZONE_COLOURS.values())
                            if max(c) - min(c) > 80] + [(255, 255, 255)], dtype=np.float64)
MIN_VISIBLE_PX = 30  # a head with fewer pixels outside the drawing is hidden by it
OVERLAY_REACH_PX = 3  # the widening of the drawn pixels: a 7x7 dilation


def overlay_mask(drawn: np.ndarray) -> np.ndarray:
    """Pixels the annotator drew over (in one of its colours), widened by the reach of
    the high-pass filter: what lies under a drawn box edge is hidden, not shown."""
    distance = np.linalg.norm(drawn[:, :, None, :].astype(np.float64) - OVERLAY_COLOURS,
                              axis=-1).min(axis=-1)
    side = 2 * OVERLAY_REACH_PX + 1
    return cv2.dilate((distance < 70).astype(np.uint8), np.ones((side, side), np.uint8)) > 0


def overlay_mask_in(drawn: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """``overlay_mask(drawn)[y1:y2, x1:x2]`` for ``box`` (x1, y1, x2, y2), computed on the
    box and the margin the widening reaches into only: the same pixels, without the cost
    of the whole picture (a quarter of a second a frame, minutes over a video)."""
    x1, y1, x2, y2 = box
    top, left = max(y1 - OVERLAY_REACH_PX, 0), max(x1 - OVERLAY_REACH_PX, 0)
    around = drawn[top : y2 + OVERLAY_REACH_PX, left : x2 + OVERLAY_REACH_PX]
    return overlay_mask(around)[y1 - top : y2 - top, x1 - left : x2 - left]


def retained_detail(original: np.ndarray, drawn: np.ndarray,
                    ignore: np.ndarray | None = None) -> float:
    """Share of the original's fine detail still in the drawn patch: the drawn high-pass
    image projected on the original's (1 unchanged, about 0 once covered). Unlike the
    correlation of :func:`kept_detail` it also falls when the detail is only faint
    (smoothed). Pixels in ``ignore`` (drawn overlays) are left out."""
    a, b = _high_pass(original), _high_pass(drawn)
    if ignore is not None:
        keep = ~ignore.ravel()
        a, b = a[keep], b[keep]
    return float(a @ b / (a @ a + 1e-9))


COVERED_BELOW = 0.5  # a head keeping half its fine detail or more is visible


def ground_truth_heads(gt: np.ndarray, frame_number: int,
                       size: tuple[int, int]) -> list[tuple[int, int, int, int]]:
    """Head regions of one ground-truth frame: the top 20% of each box, clipped to the
    picture (``size`` is width, height); regions under 4x4 px are left out."""
    width, height = size
    heads = []
    for x, y, w, h in gt[gt[:, 0] == frame_number][:, 2:6]:
        x1, y1 = int(max(x, 0)), int(max(y, 0))
        x2, y2 = int(min(x + w, width)), int(min(y + 0.2 * h, height))
        if x2 - x1 >= 4 and y2 - y1 >= 4:
            heads.append((x1, y1, x2, y2))
    return heads


def uncovered_heads(gt: np.ndarray, frame_number: int, original: np.ndarray,
                    drawn: np.ndarray) -> list[tuple[int, int, int, int]]:
    """The frame's ground-truth heads whose detail the drawn picture still shows (drawn
    boxes and labels left out of the comparison)."""
    size = (original.shape[1], original.shape[0])
    uncovered = []
    for x1, y1, x2, y2 in ground_truth_heads(gt, frame_number, size):
        drawn_over = overlay_mask_in(drawn, (x1, y1, x2, y2))
        if ((~drawn_over).sum() >= MIN_VISIBLE_PX
                and retained_detail(original[y1:y2, x1:x2], drawn[y1:y2, x1:x2],
                                    drawn_over) >= COVERED_BELOW):
            uncovered.append((x1, y1, x2, y2))
    return uncovered


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
