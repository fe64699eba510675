"""The occupancy card's "Partial count" for the people the fusion holds: from how many
it says it holds, not from its health reading degraded (which a camera delay it
corrects, or a few late frames, also make it)."""

from __future__ import annotations

import datetime as dt
import json
import time

import pytest
from fastapi.testclient import TestClient

from edge.config.fusion import FusionConfig
from edge.fusion.store import write_camera_frames
from edge.fusion.tracker import FloorFusion
from edge.runtime.schema import open_database
from edge.storage.health import report_health
from edge.web.app import create_app
from edge.web.dashboard import WebDeps
from edge.web.queries import with_cameras
from edge.web.schemas import ComponentHealth, Occupancy
from tests.support.web_support import BASE_URL, LONDON, with_web
from tests.test_fusion import FPS, sighting, squares
from tests.test_fusion_live_lag import late_aisle_site
from tests.test_fusion_service import START, fuse_until, people_at


def test_every_camera_working_and_nobody_held_is_no_partial_count(tmp_path):
    """Review: camera aisle's pictures 1.2 s late, known and corrected, every camera
    working, nobody held: the fusion reads degraded (a delay over
    fusion.camera_delay_warn_s) and the card said "Partial count: the counting across
    cameras keeps some people where a camera last saw them"."""
    site = late_aisle_site(tmp_path, 1.2)
    db = open_database(tmp_path / "edge.db")
    write_camera_frames(db, [sighting(c, START + t + (1.2 if c == "aisle" else 0.0),
                                      people_at(t))
                             for c in ("door", "aisle") for t in [k / 5 for k in range(50)]])
    worker = fuse_until(site, db, START + 1.0, START + 14.5)
    worker.report_health()
    for camera in ("door", "aisle"):
        report_health(db, f"camera:{camera}", "ok", f"Camera {camera} is working.",
                      {"last_frame_age_s": 0.1, "connected": True})
    status, detail = db.execute(
        "select status, detail from health where component = 'fusion'").fetchone()
    # the health rows are stamped by the wall clock: the page reads them on it
    app = create_app(WebDeps(site=with_web(site, cache_s=0), db_path=tmp_path / "edge.db",
                             clock=time.time))
    with TestClient(app, base_url=BASE_URL) as web:
        page = web.get("/").text
        occupancy = web.get("/api/v1/occupancy").json()
    assert "Partial count" not in page
    assert (occupancy["cameras"], occupancy["held"]) == ("working", False)
    assert status == "degraded" and json.loads(detail)["people_held"] == 0


def component(kind: str, status: str, **figures) -> ComponentHealth:
    name = "fusion" if kind == "fusion" else f"camera:{kind}"
    return ComponentHealth(component=name, kind="fusion" if kind == "fusion" else "camera",
                           name=name, status=status, message="", updated_at=START, age_s=1.0,
                           figures=figures)


@pytest.mark.parametrize(("fusion", "state", "held"), [
    (component("fusion", "degraded", people_held=0), "working", False),
    (component("fusion", "ok", people_held=0), "working", False),
    (component("fusion", "degraded", people_held=2), "partial", True),
    (component("fusion", "degraded"), "working", False),  # says nothing of people held
])
def test_the_card_is_partial_while_the_fusion_holds_people(fusion, state, held):
    occupancy = Occupancy(people=3, as_of=START, as_of_text="10:00", live=True, window_s=5.0)
    cameras = [component("door", "ok"), component("aisle", "ok")]
    day = dt.datetime.fromtimestamp(START, LONDON).date()
    shown = with_cameras(occupancy, [*cameras, fusion], LONDON, day)
    assert (shown.cameras, shown.held) == (state, held)


def test_the_fusion_counts_the_people_it_holds_for_a_dead_camera():
    coverage = squares(a=(0, 0, 5, 10), b=(5, 0, 10, 10))
    fusion = FloorFusion(FusionConfig(), coverage, ((0, 0), (10, 10)))
    for k in range(10):
        fusion.step(k, k / FPS, [sighting("a", k / FPS, [2.0, 5.0]),
                                 sighting("b", k / FPS, [8.0, 5.0])])
    assert fusion.held_count() == 0
    for k in range(10, 10 + int(10 * FPS)):  # camera a dies: its person is held
        fusion.step(k, k / FPS, [sighting("b", k / FPS, [8.0, 5.0])])
    assert fusion.held_count() == 1
    assert len(fusion.people) == 2
