"""A replay stopped from outside (SIGTERM from a timeout or a cancelled CI job, Ctrl-C)
closes its run and keeps the positions it processed; a run left ``running`` by a killed
replay is closed by the next one and named by the commands that look for a finished run."""

from __future__ import annotations

import signal
import sqlite3
import time

import numpy as np
import pytest

from edge.errors import DataFormatError
from edge.runtime.schema import open_database
from edge.storage.trajectories import latest_finished_run, start_run
from tests.conftest import PETS_DET
from tests.support.cli import EDGE, stopped_by

pytestmark = pytest.mark.system  # replays the shared det files in a subprocess


def long_det(folder, copies: int = 8):
    """The PETS detections played ``copies`` times in a row (thousands of frames): a
    replay long enough to be stopped half-way."""
    rows = np.loadtxt(PETS_DET, delimiter=",")
    last = int(rows[:, 0].max())
    parts = []
    for k in range(copies):
        part = rows.copy()
        part[:, 0] += k * last
        parts.append(part)
    det = folder / "det.txt"
    np.savetxt(det, np.vstack(parts), fmt="%.3f", delimiter=",")
    return det


def wait_for_frames(db_path, at_least: int, process, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        try:
            with sqlite3.connect(f"file:{db_path}?mode=ro", uri=True) as db:
                row = db.execute("select max(frames) from runs").fetchone()
            if row and row[0] and row[0] >= at_least:
                return
        except sqlite3.Error:
            pass
        time.sleep(0.02)
    raise AssertionError(f"the replay stored no {at_least} frames (exit {process.poll()})")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["TERM", "INT"])
def test_a_stopped_replay_closes_its_run_and_keeps_its_positions(tmp_path, signum):
    """Field report: `edge replay … & sleep 4; kill -TERM $!` left the run `running` for
    ever (report and eval then found "no finished replay run"); with Ctrl-C the run was
    closed, but the last batch of positions (up to 49 frames) was never stored."""
    db_path = tmp_path / "x.db"

    def half_way(process) -> None:
        wait_for_frames(db_path, 120, process)
        time.sleep(0.04)  # half-way through the next batch of 50 frames

    stopped_by(signum, [*EDGE, "replay", "--detections", str(long_det(tmp_path)), "--db",
                        str(db_path), "--max-frames", "6000", "--quiet"], half_way)
    db = open_database(db_path)
    (status, frames), = db.execute("select status, frames from runs").fetchall()
    assert status == "failed"
    last_stored, = db.execute("select max(frame) from track_points").fetchone()
    assert 120 <= frames < 6000
    # Every frame processed is stored, the last batch too (the PETS people are tracked
    # in every frame but a copy's first two).
    assert frames - 2 <= last_stored + 1 <= frames, (frames, last_stored)


def test_a_killed_replay_s_run_is_named_then_closed_by_the_next(tmp_path):
    db = open_database(tmp_path / "x.db")
    run_id = start_run(db, "view001", "det.txt", "det.txt", kind="replay")
    db.execute("update runs set pid = 999999999, pid_start = 1 where id = ?", [run_id])
    db.conn.commit()
    with pytest.raises(DataFormatError, match=rf"run {run_id} was left 'running' by a replay "
                                              "that was killed"):
        latest_finished_run(db)
    live = start_run(db, "view001", "rtsp://cam", "yolox", kind="live")
    db.execute("update runs set pid = 999999998, pid_start = 1 where id = ?", [live])
    db.conn.commit()
    start_run(db, "view001", "det.txt", "det.txt", kind="replay")
    statuses = dict(db.execute("select id, status from runs").fetchall())
    assert statuses[run_id] == "interrupted"
    assert statuses[live] == "running"  # a camera's run is its own worker's to close
