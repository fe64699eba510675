"""Cameras that share a box's processor: each takes its share of threads, a camera whose
worker cannot keep up says so on its health, and check-config measures the box.

Found measuring capacity on a 2-core AVX2 machine: 16 workers each analysed 3.6 of
their 5 pictures a second, and every camera still reported "working"; and 12 workers
with onnxruntime's own thread count (2 each) fell to 4.4-4.6 pictures a second where
12 with one thread each held 4.8-5.0.
"""

from __future__ import annotations

import pytest
import yaml
from click.testing import CliRunner

from edge.capacity import PIPELINE_OVERHEAD, CameraLoad
from edge.cli import cli
from edge.config import load_site
from edge.detection.session import worker_threads
from edge.runtime.keeping_up import KEEP_UP_SHARE, falling_behind
from edge.runtime.schema import open_database
from edge.storage.health import read_health
from tests.conftest import PETS_SITE, PETS_VIDEO
from tests.support.live_site import live_site_yaml, start_worker
from tests.support.mjpeg_camera import MjpegCamera, load_jpegs
from tests.support.waiting import wait_for


def test_a_live_camera_that_keeps_up_is_not_behind():
    # 100 pictures arrived in 20 s, 3 replaced before the detector was free.
    assert falling_behind(4.85, offered=100, dropped=3, span_s=20.0, paced_fps=None) is None


def test_a_live_camera_dropping_many_pictures_is_behind_at_its_arrival_rate():
    wanted = falling_behind(3.0, offered=100, dropped=40, span_s=20.0, paced_fps=None)
    assert wanted == pytest.approx(5.0)


def test_a_live_camera_sending_slowly_is_not_behind():
    # The camera sends 2 pictures a second and every one is analysed: its own rate.
    assert falling_behind(2.0, offered=40, dropped=0, span_s=20.0, paced_fps=None) is None


def test_a_file_analysed_below_its_pace_is_behind_even_without_drops():
    # A starved reader lags its pace instead of dropping (the bench's looped files).
    assert falling_behind(3.6, offered=72, dropped=0, span_s=20.0, paced_fps=5.0) == 5.0
    assert falling_behind(KEEP_UP_SHARE * 5.0 + 0.01, offered=86, dropped=0, span_s=20.0,
                          paced_fps=5.0) is None


def test_cameras_sharing_the_cores_share_the_threads():
    assert worker_threads(None, cameras=1, cores=4) is None  # alone: onnxruntime's choice
    assert worker_threads(None, cameras=2, cores=4) == 2
    assert worker_threads(None, cameras=3, cores=4) == 1
    assert worker_threads(None, cameras=16, cores=2) == 1
    assert worker_threads(3, cameras=16, cores=2) == 3  # what the site says, it gets


def test_a_camera_load_counts_the_frames_decoded_and_skipped():
    detected_only = CameraLoad("cam", (352, 640), 5.0, detect_ms=30.0)
    assert detected_only.cores == pytest.approx(5 * 30 * PIPELINE_OVERHEAD / 1000)
    # A 25 frames/s main stream: the 20 frames a second the detector skips are decoded too.
    main_stream = CameraLoad("cam", (352, 640), 5.0, 30.0, frames_per_s=25.0, decode_ms=3.0)
    assert main_stream.cores - detected_only.cores == pytest.approx(20 * 3.0 / 1000)


def camera_health(db):
    rows = [r for r in read_health(db) if r["component"] == "camera:view001"]
    return rows[0] if rows else None


@pytest.mark.system
@pytest.mark.parametrize(("detect_fps", "input_size", "expect_behind"), [
    # 15 pictures a second at 960x1280: about 100-150 ms a picture on 2 cores, so the
    # worker analyses 7-10 of them.
    (15, [960, 1280], True),
    # Negative control: 3 a second at the demo's own size, well within the box.
    (3, None, False),
])
def test_a_worker_that_cannot_keep_up_reports_falling_behind(
        tmp_path, detect_fps, input_size, expect_behind):
    camera = MjpegCamera(load_jpegs(PETS_VIDEO, count=30, width=768), fps=15).start()
    path = live_site_yaml(tmp_path, camera.url, detect_fps=detect_fps)
    if input_size:
        config = yaml.safe_load(path.read_text())
        config["detector"]["input_size"] = input_size
        path.write_text(yaml.safe_dump(config, sort_keys=False))
    site = load_site(path)
    db = open_database(tmp_path / "edge.db")
    worker, thread = start_worker(site, tmp_path / "edge.db")
    try:
        wait_for(lambda: (h := camera_health(db)) and h["detail"].get("frames_processed", 0) > 0,
                 timeout_s=60, what="the camera's first pictures")
        if expect_behind:
            health = wait_for(lambda: (h := camera_health(db)) and h["status"] == "degraded"
                              and h, timeout_s=30, what="a falling-behind report")
            assert "falling behind" in health["message"]
            assert health["detail"]["behind_fps"] > health["detail"]["fps"]
        else:
            # Long enough for several judgements (20 pictures each at 3 a second).
            wait_for(lambda: worker.stats.frames_processed >= 60, timeout_s=60,
                     what="60 pictures analysed")
            health = camera_health(db)
            assert health["status"] == "ok", health["message"]
            assert health["detail"]["behind_fps"] is None
    finally:
        worker.stop.set()
        thread.join(30)
        camera.stop()


def many_cameras_site(folder, cameras: int):
    config = yaml.safe_load(PETS_SITE.read_text())
    base = config["cameras"][0]
    config["cameras"] = [{**base, "id": f"cam{i + 1}"} for i in range(cameras)]
    path = folder / "site.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


@pytest.mark.system
def test_each_worker_of_a_many_camera_site_runs_one_detector_thread(tmp_path):
    from edge.runtime.camera_worker import CameraWorker

    site = load_site(many_cameras_site(tmp_path, 4))
    worker = CameraWorker(site, "cam1", open_database(tmp_path / "edge.db"))
    options = worker.pipeline.detector._session.get_session_options()
    assert options.intra_op_num_threads == 1


@pytest.mark.system
def test_check_config_measures_what_the_cameras_take_of_this_box(tmp_path):
    one = CliRunner().invoke(cli, ["check-config", "--capacity", str(PETS_SITE)])
    assert one.exit_code == 0, one.output
    line = next(text for text in one.output.splitlines() if "camera view001: input" in text)
    # "camera view001: input 480x640, 7 pictures/s x 40.1 ms: 0.34 cores"
    ms = float(line.split(" x ")[1].split(" ms")[0])
    assert 1 < ms < 2000
    assert "Warning" not in one.output
    assert "onnxruntime's choice of detector threads" in one.output  # one camera: all cores

    # 60 such cameras cannot fit a small box: it says so, and why.
    many = CliRunner().invoke(cli, ["check-config", "--capacity",
                                    str(many_cameras_site(tmp_path, 60))])
    assert many.exit_code == 0, many.output
    assert "they will fall behind" in many.output
    assert "1 detector thread a camera" in many.output
