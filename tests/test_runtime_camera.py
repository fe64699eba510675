"""A live camera worker against a real network stream that drops and comes back."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import pytest
import shapely

from edge.config import load_site
from edge.runtime.camera_worker import CameraWorker
from edge.runtime.schema import open_database
from edge.storage.health import read_health
from tests.conftest import PETS_VIDEO
from tests.support.live_site import live_site_yaml, start_worker
from tests.support.mjpeg_camera import MjpegCamera, load_jpegs
from tests.support.waiting import wait_for

pytestmark = pytest.mark.system


@pytest.fixture(scope="module")
def pets_jpegs():
    return load_jpegs(PETS_VIDEO, count=40, width=768)


def camera_health(db):
    rows = [r for r in read_health(db) if r["component"] == "camera:view001"]
    return rows[0] if rows else None


def test_stream_that_drops_is_reconnected_within_5_s(tmp_path, pets_jpegs):
    camera = MjpegCamera(pets_jpegs, fps=7).start()
    site = load_site(live_site_yaml(tmp_path, camera.url, detect_fps=4))
    db = open_database(tmp_path / "edge.db")
    worker, thread = start_worker(site, tmp_path / "edge.db")
    try:
        wait_for(lambda: db["track_points"].count > 0, timeout_s=60)
        wait_for(lambda: (h := camera_health(db)) and h["status"] == "ok", timeout_s=10)

        camera.stop()  # the camera drops off the network for a while
        wait_for(lambda: camera_health(db)["status"] == "down", timeout_s=10)
        assert "not sending pictures" in camera_health(db)["message"]
        time.sleep(3)

        camera.start()
        back_at = time.time()
        wait_for(lambda: (worker.reader.stats.last_frame_at or 0) > back_at, timeout_s=10)
        recovered_after = worker.reader.stats.last_frame_at - back_at
        assert recovered_after <= 5.0, f"stream recovered only after {recovered_after:.1f} s"
        wait_for(lambda: camera_health(db)["status"] == "ok", timeout_s=10)
        assert camera_health(db)["detail"]["reconnects"] >= 1
    finally:
        worker.stop.set()
        thread.join(30)
        camera.stop()
    assert not thread.is_alive()
    run = db["runs"].get(1)
    assert run["status"] == "stopped" and run["frames"] == worker.stats.frames_processed > 0
    points = db.execute("select count(*) from track_points").fetchone()[0]
    assert points == worker.stats.points_written  # nothing buffered was lost on stop


def test_nearly_full_disk_stops_raw_writes_but_not_the_camera(tmp_path, pets_jpegs):
    camera = MjpegCamera(pets_jpegs, fps=7).start()
    # No disk has a petabyte free: the guard sees a "full" disk.
    site = load_site(
        live_site_yaml(tmp_path, camera.url, sections={"storage": {"min_free_disk_mb": 10**9}})
    )
    db = open_database(tmp_path / "edge.db")
    worker, thread = start_worker(site, tmp_path / "edge.db")
    try:
        wait_for(lambda: worker.stats.raw_points_skipped > 0, timeout_s=60)
        wait_for(lambda: (h := camera_health(db)) and h["status"] == "degraded", timeout_s=10)
        assert "disk is nearly full" in camera_health(db)["message"]
        # No positions are stored, but the run still counts its frames as it goes.
        wait_for(lambda: db["runs"].get(1)["frames"] > 0, timeout_s=10)
    finally:
        worker.stop.set()
        thread.join(30)
        camera.stop()
    assert db["track_points"].count == 0
    assert worker.stats.frames_processed > 0


def test_a_second_worker_for_the_same_camera_refuses_to_start(tmp_path, pets_jpegs):
    camera = MjpegCamera(pets_jpegs, fps=7).start()
    config = live_site_yaml(tmp_path, camera.url)
    command = [sys.executable, "-m", "edge", "run", "camera", "--config", str(config),
               "--camera", "view001"]
    first = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    try:
        lock = tmp_path / "state" / "locks" / "camera-view001.lock"
        wait_for(lambda: lock.exists() and lock.read_text().strip() == str(first.pid), timeout_s=60)
        second = subprocess.run(command, capture_output=True, text=True, timeout=120)
        assert second.returncode != 0
        assert "Traceback" not in second.stderr
        assert f"another camera-view001 is already running (pid {first.pid})" in second.stderr
    finally:
        first.terminate()
        first.wait(30)
        camera.stop()
    assert first.returncode == 0  # SIGTERM is a clean stop


def test_unknown_camera_is_a_config_error(tmp_path):
    config = live_site_yaml(tmp_path, "usb:0")
    result = subprocess.run(
        [sys.executable, "-m", "edge", "run", "camera", "--config", str(config),
         "--camera", "nope"],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 78
    assert "no camera 'nope' in the site config" in result.stderr


def test_a_full_database_costs_positions_not_the_camera(tmp_path, pets_jpegs):
    """SQLITE_FULL under the disk guard's threshold (the disk filled between two checks):
    positions are counted as skipped and health says why; the worker neither crashes
    nor enters a restart loop."""
    camera = MjpegCamera(pets_jpegs, fps=7).start()
    site = load_site(live_site_yaml(tmp_path, camera.url))
    db = open_database(tmp_path / "edge.db")
    worker = CameraWorker(site, "view001", db)  # runs on this thread, with this connection
    # SQLite may not grow the file by a single page: every insert of positions fails.
    db.execute(f"pragma max_page_count = {db.execute('pragma page_count').fetchone()[0]}")
    seen: list[tuple[str, str]] = []

    def watch() -> None:
        other = open_database(tmp_path / "edge.db")
        while not worker.stop.is_set():
            if (row := camera_health(other)) and row["status"] != "down":
                seen.append((row["status"], row["message"]))
            if worker.stats.raw_points_skipped and len(seen) > 3:
                worker.stop.set()
            time.sleep(0.2)

    watcher = threading.Thread(target=watch)
    watcher.start()
    stopper = threading.Timer(90, worker.stop.set)  # a safety net only
    stopper.start()
    try:
        worker.run()  # returns: no exception escaped
    finally:
        stopper.cancel()
        worker.stop.set()
        watcher.join(10)
        camera.stop()
    assert worker.stats.frames_processed > 0 and worker.stats.raw_points_skipped > 0
    # Whatever fitted before the file was full is stored whole; nothing half-written.
    assert db["track_points"].count == worker.stats.points_written
    assert ("degraded", "The database cannot be written (database or disk is full): movement "
            "details are not stored.") in seen
    assert db.execute("pragma integrity_check").fetchone()[0] == "ok"
    assert db["runs"].get(1)["status"] == "stopped"


def test_a_killed_workers_run_is_closed_and_its_tracks_become_visits(tmp_path):
    from edge.storage.trajectories import start_run

    site = load_site(live_site_yaml(tmp_path, "usb:0"))
    db = open_database(tmp_path / "edge.db")
    orphan = start_run(db, "view001", "usb:0", "m")  # its worker was killed: never finished
    elsewhere = start_run(db, "another-camera", "usb:1", "m")
    t0 = time.time() - 60
    db["track_points"].insert_all(
        {"run_id": orphan, "camera_id": "view001", "track_id": 7, "frame": i, "t": t0 + i,
         "x": -10.0, "y": -12.0 + 0.5 * i, "left": 0, "top": 0, "width": 10, "height": 30,
         "confidence": 0.9}
        for i in range(20)
    )
    worker = CameraWorker(site, "view001", db)
    # Regression: the live worker ignored the camera's floor_area that replay applies.
    corners = site.camera("view001").floor_area
    assert worker.pipeline.floor_area is not None
    assert worker.pipeline.floor_area.equals(shapely.Polygon(corners))
    assert worker.close_interrupted_runs() == [orphan]
    run = db["runs"].get(orphan)
    assert run["status"] == "interrupted" and run["ended_at"] == t0 + 19
    assert db.execute("select count(*) from visits where run_id = ?", [orphan]).fetchone()[0] == 1
    assert db["runs"].get(elsewhere)["status"] == "running"  # another camera's: not ours to close
    assert worker.close_interrupted_runs() == []


def short_video(path, frames: int = 5, fps: float = 50.0):
    import cv2
    import numpy as np

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (64, 48))
    for i in range(frames):
        writer.write(np.full((48, 64, 3), 40 * i, np.uint8))
    writer.release()
    return path


def looped_camera(source):
    from edge.config.vision import CameraConfig

    return CameraConfig.model_validate({
        "id": "demo", "source": str(source), "loop": True, "fps": 50,
        "calibration": {"image_points": [[0, 0], [64, 0], [64, 48], [0, 48]],
                        "floor_points": [[0, 0], [6, 0], [6, 4], [0, 4]]},
    })


def test_a_looped_file_starting_again_is_not_a_reconnection(tmp_path, caplog):
    """Regression: each pass over a looped demo file logged "Camera X is back ... after 0
    failed attempts" and counted one more reconnection in its health."""
    from edge.runtime.frame_reader import FrameReader

    reader = FrameReader(looped_camera(short_video(tmp_path / "demo.avi")),
                         backoff_initial_s=0.05, backoff_max_s=0.1)
    with caplog.at_level("INFO", logger="edge.runtime.frame_reader"):
        reader.start()
        try:
            wait_for(lambda: reader.stats.frames_read >= 20, timeout_s=30)  # four passes
        finally:
            reader.stop()
    assert reader.stats.reconnects == 0
    assert "is back" not in caplog.text and "reconnecting" not in caplog.text


def test_a_looped_file_that_comes_back_is_a_reconnection(tmp_path, caplog):
    from edge.runtime.frame_reader import FrameReader

    video = short_video(tmp_path / "demo.avi")
    reader = FrameReader(looped_camera(video), backoff_initial_s=0.05, backoff_max_s=0.1)
    with caplog.at_level("INFO", logger="edge.runtime.frame_reader"):
        reader.start()
        try:
            wait_for(lambda: reader.stats.frames_read >= 5, timeout_s=30)
            video.rename(tmp_path / "away.avi")  # the file goes (a USB stick pulled out)
            wait_for(lambda: reader.stats.last_error is not None, timeout_s=10)
            (tmp_path / "away.avi").rename(video)
            wait_for(lambda: reader.stats.reconnects == 1, timeout_s=10)
        finally:
            reader.stop()
    assert "Camera demo is back" in caplog.text


def test_a_missing_video_file_stops_its_worker_with_exit_78(tmp_path):
    """Regression: a looped demo file that is not there was retried every 2 s forever,
    while check-config said the config was valid. Both now say the same one line."""
    config = live_site_yaml(tmp_path, str(tmp_path / "gone.avi"), loop=True)
    commands = {
        "worker": ["run", "camera", "--config", str(config), "--camera", "view001"],
        "check": ["check-config", str(config)],
    }
    said = {}
    for name, args in commands.items():
        result = subprocess.run([sys.executable, "-m", "edge", *args],
                                capture_output=True, text=True, timeout=120)
        assert result.returncode == 78, result.stderr
        assert "Traceback" not in result.stderr and "retrying" not in result.stderr
        said[name] = result.stderr.strip().splitlines()
    assert said["worker"] == said["check"]
    assert len(said["worker"]) == 1
    assert said["worker"][0].startswith(f"Error: invalid site config: {config}:")
    assert (f"cameras[0].source: the video file {tmp_path / 'gone.avi'} does not exist"
            in said["worker"][0])


def test_a_worker_killed_mid_run_leaves_its_frame_count(tmp_path):
    """Regression: a run killed with kill -9 was stored with frames=0 although ~300 frames
    had been processed: the count was written only when the run ended."""
    import signal
    import sqlite3

    config = live_site_yaml(tmp_path, str(PETS_VIDEO), detect_fps=7)
    worker = subprocess.Popen(
        [sys.executable, "-m", "edge", "run", "camera", "--config", str(config),
         "--camera", "view001"], stderr=subprocess.DEVNULL)
    db_path = tmp_path / "state" / "edge.db"

    def frames_stored():
        if not db_path.exists():
            return 0
        with sqlite3.connect(db_path) as db:
            try:
                row = db.execute("select frames from runs where status = 'running'").fetchone()
            except sqlite3.OperationalError:  # the schema is not there yet
                return 0
        return row[0] if row else 0

    try:
        wait_for(lambda: frames_stored() >= 5, timeout_s=90, poll_s=0.2)
        worker.send_signal(signal.SIGKILL)
        worker.wait(30)
    finally:
        worker.kill()
        worker.wait(30)
    with sqlite3.connect(db_path) as db:
        frames, status = db.execute("select frames, status from runs").fetchone()
        stored = db.execute("select count(distinct frame) from track_points").fetchone()[0]
    assert status == "running" and frames >= 5  # as the next worker will find it
    assert frames >= stored  # every frame with positions stored was counted
