"""Issue 13's field report, live: two cameras of `edge run` looking at the same people
showed the sum of both on the status page. Two camera workers on one network camera
(a still picture of the demo plaza: both see exactly the same people) and the fusion
service, as real processes: the page counts each person once."""

from __future__ import annotations

import json
import time

import pytest
import yaml

from tests.conftest import PETS_SITE, PETS_VIDEO
from tests.support.mjpeg_camera import MjpegCamera, load_jpegs
from tests.support.net import free_port
from tests.support.waiting import query, wait_for
from tests.test_e2e_stack import Processes, get_json

pytestmark = pytest.mark.system


@pytest.mark.timeout(240)
def test_two_live_cameras_on_the_same_people_count_them_once(tmp_path):
    frame = load_jpegs(PETS_VIDEO, count=60, width=768)[59]  # six people on the plaza
    camera = MjpegCamera([frame] * 5, fps=5).start()
    site = yaml.safe_load(PETS_SITE.read_text())
    calibrated = site["cameras"][0]
    site["cameras"] = [{**calibrated, "id": name, "source": camera.url, "detect_fps": 3}
                       for name in ("left", "right")]
    site["detector"].update(input_size=[480, 640], threads=1)
    site["service"] = {"health_interval_s": 0.5, "flush_interval_s": 0.5,
                       "visits_interval_s": 1.0, "stall_timeout_s": 5}
    site["sync"] = {"enabled": False}
    port = free_port()
    site["web"] = {"host": "127.0.0.1", "port": port, "access": "open-lan", "cache_s": 0,
                   "live_window_s": 3}
    path = tmp_path / "site.yaml"
    path.write_text(yaml.safe_dump(site, sort_keys=False))
    import os

    db = tmp_path / "state" / "edge.db"
    assert os.environ["EDGE_STATE_DIR"] == str(tmp_path / "state")
    log = tmp_path / "processes.log"
    processes = Processes(log)
    try:
        processes.edge("run", "--config", str(path))
        wait_for(lambda: (query(db, "select count(*) from track_points where camera_id = "
                                "'store'") or [(0,)])[0][0], 120, "store-wide tracks", log)
        time.sleep(4)  # past the fusion's confirmation and the page's live window

        def one_camera_tracks() -> int:
            """People the left camera's own tracker follows (its sightings that carry a
            camera track id): what that camera alone would count."""
            rows = query(db, "select sightings from camera_frames where camera_id = 'left' "
                         "order by t desc limit 1")
            return sum(row[5] >= 0 for row in json.loads(rows[0][0])) if rows else 0

        alone = one_camera_tracks()
        page = get_json(f"http://127.0.0.1:{port}/api/v1/occupancy")
        assert alone >= 3, f"the camera follows only {alone} people"
        assert page["live"] is True
        # each person once (a detection flickering in and out may add one), not the sum of
        # both cameras; and never more than the six people in the picture (PETS gt)
        assert abs(page["people"] - alone) <= 1, (page, alone)
        assert page["people"] <= 6 + 1, page
    finally:
        processes.kill_all()
        camera.stop()
    assert "Traceback" not in log.read_text()
