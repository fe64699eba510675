"""Accuracy gate: the whole PETS09-S2L1 recording through `edge replay` with the
demo site, scored against its ground truth. The replay runs once per test session
(shared by every xdist worker through a file lock) and takes about a minute; it also
writes the annotated video, and every test of the whole recording (the report's, the
visit targets') reads this one replay: they carry the ``pets_replay`` xdist group, so
the scheduler runs them on one worker."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from edge.runtime.schema import open_database
from edge.storage.trajectories import read_trajectories
from tests.conftest import PETS_GT, PETS_SITE
from tests.support.cli import run_edge
from tests.support.session import run_once

pytestmark = [
    pytest.mark.system,
    pytest.mark.slow,
    pytest.mark.xdist_group("pets_replay"),
    pytest.mark.timeout(1200),  # ~1 min alone; far more on a CPU shared with the suite
]
REPLAY_TIMEOUT_S = 1100

LEAST_HOTA = 0.60
LEAST_IDF1 = 0.80
MOST_FLOOR_MEDIAN_M = 0.30


@pytest.fixture(scope="session")
def pets_replay(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Replay the recording once, evaluate it with the CLI, share the figures."""
    return run_once(tmp_path_factory, "pets_replay", _replay_and_evaluate)


def _replay_and_evaluate(folder: Path) -> dict:
    db, tracks, video = folder / "edge.db", folder / "tracks.txt", folder / "all.mp4"
    replay = subprocess.run(
        [sys.executable, "-m", "edge", "replay", "--site", str(PETS_SITE), "--db", str(db),
         "--mot-out", str(tracks), "--annotate", str(video), "--quiet"],
        capture_output=True, text=True, timeout=REPLAY_TIMEOUT_S, check=False,
    )
    assert replay.returncode == 0, replay.stderr
    mot = run_edge("eval", "mot", "--gt", str(PETS_GT), "--tracks", str(tracks), "--json")
    assert mot.returncode == 0, mot.stderr
    floor = run_edge("eval", "floor", "--gt", str(PETS_GT), "--db", str(db), "--json")
    assert floor.returncode == 0, floor.stderr
    return {
        "replay_stdout": replay.stdout,
        "db": str(db),
        "video": str(video),
        "mot": json.loads(mot.stdout),
        "floor": json.loads(floor.stdout),
    }


def test_replay_reads_every_frame(pets_replay):
    assert "Replayed 795 frames of camera view001" in pets_replay["replay_stdout"]


def test_hota_and_idf1_gate(pets_replay):
    mot = pets_replay["mot"]
    assert mot["HOTA"] >= LEAST_HOTA, mot
    assert mot["IDF1"] >= LEAST_IDF1, mot
    assert mot["frames"] == 795


def test_identity_is_mostly_kept(pets_replay):
    """19 people walk through; a tracker that fragments them shows many more ids."""
    mot = pets_replay["mot"]
    assert mot["tracker_ids"] <= 1.5 * mot["gt_ids"]
    assert mot["id_switches"] <= 40


def test_floor_position_error_gate(pets_replay):
    floor = pets_replay["floor"]
    assert floor["median_m"] <= MOST_FLOOR_MEDIAN_M, floor
    assert floor["matched"] >= 3500  # of 4,476 ground-truth boxes


def test_trajectories_are_stored(pets_replay):
    db = open_database(pets_replay["db"])
    trajectories = list(read_trajectories(db))
    assert len(trajectories) == pets_replay["mot"]["tracker_ids"]
    longest = max(trajectories, key=lambda t: len(t.t))
    assert longest.xy.shape[1] == 2 and len(longest.t) > 100
