"""The live figures of a fused site whose camera's pictures arrive late.

The fusion stores each instant ``service.flush_interval_s + fusion.latency_s`` and the
longest camera delay behind the clock (its ``lag_s``): the page's live window and the
fusion's own health look back that much further."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml
from fastapi.testclient import TestClient

from edge.config import load_site
from edge.fusion.store import write_camera_frames
from edge.runtime.fusion_worker import FusionWorker
from edge.runtime.schema import open_database
from edge.web.app import create_app
from edge.web.dashboard import WebDeps
from edge.web.queries import fusion_lag_s
from edge.web.schemas import ComponentHealth
from tests.support.web_support import BASE_URL, with_web
from tests.test_fusion import sighting
from tests.test_fusion_service import START, people_at, two_camera_site


def late_aisle_site(tmp_path, delay: float):
    """The two-camera site, camera aisle's pictures reaching the box ``delay`` late (its
    configured ``stream_delay_s``)."""
    two_camera_site(tmp_path)
    doc = yaml.safe_load((tmp_path / "site.yaml").read_text())
    doc["cameras"][1]["stream_delay_s"] = delay
    (tmp_path / "site.yaml").write_text(yaml.safe_dump(doc))
    site = load_site(tmp_path / "site.yaml")
    assert site.cameras[1].id == "aisle"
    return site


@pytest.mark.parametrize("delay", [2.0, 3.0])
def test_a_late_camera_leaves_the_count_live_and_every_camera_working(tmp_path, delay):
    """Review: with camera aisle's pictures 2 s late (fusion.max_camera_delay_s, the
    default) the page never counted anyone "right now" (live 0 of 60 times): the fused
    instants lag the clock by 5 s, its live window. At 3 s the fusion's health said
    "Cameras aisle, door send no pictures" while both sent: it judged them at the clock
    less the wait, without the delay."""
    site = late_aisle_site(tmp_path, delay)
    db = open_database(tmp_path / "edge.db")
    now = [START]
    worker = FusionWorker(site, db, clock=lambda: now[0])
    worker.start()
    app = create_app(WebDeps(site=with_web(site, cache_s=0), db_path=tmp_path / "edge.db",
                             clock=lambda: now[0]))
    buffers: dict[str, list] = {"door": [], "aisle": []}
    taken = {"door": 0.0, "aisle": 0.0}
    answers, healths = [], []
    with TestClient(app, base_url=BASE_URL) as web:
        for tick in range(1, 60 * 50 + 1):  # 60 s in 20 ms ticks
            now[0] = START + tick * 0.02
            for camera, late in (("door", 0.0), ("aisle", delay)):
                while taken[camera] <= now[0] - START:  # read (and stamped) late
                    walked = taken[camera] - late
                    buffers[camera].append(sighting(camera, START + taken[camera],
                                                    people_at(10 - abs(walked % 20 - 10))))
                    taken[camera] += 0.2
            if tick % 100 == 0:  # the workers' flush_interval_s, 2 s
                for frames in buffers.values():
                    write_camera_frames(db, frames)
                    frames.clear()
            if tick % 10 == 0 and worker.fuse_ready():  # the fusion's loop, 1 / rate_fps
                worker.flush()
            if tick > 30 * 50 and tick % 50 == 0:
                worker.report_health()  # every service.health_interval_s
                healths.append(db.execute("select message, detail from health "
                                          "where component = 'fusion'").fetchone())
                answers.append(web.get("/api/v1/occupancy").json())
    assert [(a["live"], a["people"]) for a in answers] == [(True, 3)] * len(answers)
    lag = site.service.flush_interval_s + site.fusion.latency_s + delay
    assert {a["window_s"] for a in answers} == {site.web.live_window_s + lag}
    for message, detail in healths:
        assert json.loads(detail)["cameras_down"] == [], message
        assert json.loads(detail)["lag_s"] == lag
        assert "send no pictures" not in message


def fusion_row(**figures) -> ComponentHealth:
    return ComponentHealth(component="fusion", kind="fusion", name="Counting across cameras",
                           status="ok", message="", updated_at=START, age_s=1.0,
                           figures=figures)


@pytest.mark.parametrize(("figures", "lag"), [
    ({"lag_s": 4.0}, 4.0),
    ({"lag_s": 1e9}, 5.0),  # no further back than the site's config allows
    ({"lag_s": "4"}, 0.0),
    ({"lag_s": float("nan")}, 0.0),
    ({"lag_s": -3.0}, 0.0),
    ({}, 0.0),  # a fusion that does not say
])
def test_the_live_window_widens_by_the_fusion_s_lag_within_bounds(figures, lag):
    assert fusion_lag_s([fusion_row(**figures)], most=5.0) == lag


def test_no_fusion_no_lag():
    camera = fusion_row(lag_s=4.0).model_copy(update={"kind": "camera"})
    assert fusion_lag_s([camera], most=5.0) == 0.0
    assert fusion_lag_s([], most=5.0) == 0.0


def test_the_site_s_bound_on_the_fusion_s_lag(tmp_path):
    site = late_aisle_site(tmp_path, 3.0)
    assert site.fusion_lag_s == 2.0 + 1.0 + 3.0  # flush, latency, the longest delay
    one = site.model_copy(update={"cameras": site.cameras[:1]})
    assert one.fusion_lag_s == 0.0
    assert np.isfinite(site.fusion_lag_s)
