"""A one-camera site's worker restarted with shoppers in view (an upgrade, a config
change, systemd's Restart=): the people in view go on as the same visits.

The worker runs on its own clock here and is fed detections (boxes) through its real
tracker, as its camera loop feeds the detector's, so no camera or video is needed.
"""

from __future__ import annotations

import numpy as np
import pytest

from edge.records import Detections
from edge.runtime.camera_worker import CameraWorker
from edge.runtime.schema import open_database
from edge.visits.builder import build_visits, visits_stored_until
from tests.support.live_site import floor_in_centimetres_site

pytestmark = pytest.mark.system  # the camera worker loads the product's detector (shared assets)

START = 1_800_000_000.0
FPS = 5.0
PX_PER_M = 100.0  # the camera's image is the floor in centimetres


def one_camera_site(tmp_path, **sections):
    """One camera looking down on a 10 x 10 m floor (its image the floor in centimetres)."""
    assert PX_PER_M == 100.0
    return floor_in_centimetres_site(tmp_path, "one-cam", {"door": FPS}, **sections)



def people_at(t: float) -> np.ndarray:
    """Three shoppers browsing slowly, 3 m or more apart (floor metres), ``t`` seconds
    after START."""
    return np.array([[2.0 + 0.03 * t, 2.0], [5.0, 5.0 + 0.02 * t], [8.0, 8.0 - 0.03 * t]])


def boxes(xy: np.ndarray) -> Detections:
    """A person box standing at each floor position."""
    u, v = xy[:, 0] * PX_PER_M, xy[:, 1] * PX_PER_M
    xyxy = np.stack([u - 20, v - 120, u + 20, v], axis=1).astype(np.float32)
    return Detections(xyxy, np.full(len(xy), 0.9, np.float32))


def watch(worker: CameraWorker, now: list[float], start: float, until: float, *,
          leave: float = float("inf")) -> None:
    """Feed ``worker`` its camera's frames from ``start`` to ``until`` seconds after START
    (the three people until ``leave``, an empty floor after), flushing every second."""
    for i, t in enumerate(np.arange(start, until, 1 / FPS)):
        now[0] = START + t
        seen = boxes(people_at(t)) if t < leave else Detections.empty()
        worker.track(worker.pipeline.process_detections(seen, i, START + t))
        if i % FPS == 0:
            worker.flush()


def visits(db) -> list[tuple[int, float, float]]:
    return db.execute("select run_id, start_t, end_t from visits order by start_t").fetchall()


def stopped_with_people(site, db) -> tuple[CameraWorker, list[float]]:
    """A worker that watched the three people for 10 s, then stopped (SIGTERM) with them
    in view; returns it and its clock."""
    now = [START]
    first = CameraWorker(site, "door", db, clock=lambda: now[0])
    first.start()
    watch(first, now, 0.0, 10.0)
    first.finish("stopped")
    return first, now


def test_a_restarted_camera_worker_goes_on_with_the_same_people(tmp_path):
    """Field report: on a one-camera site (no fusion service), restarting the camera
    worker split every shopper in view into two visits, 3 became 6 (footfall and visits
    counted them twice): the new run started with an empty tracker and the old run's
    open tracks were ended at the stop. Back within fusion.down_hold_s, the worker now
    resumes its run; the people it sees again where they were are the same visits."""
    site = one_camera_site(tmp_path)
    db = open_database(tmp_path / "edge.db")
    first, now = stopped_with_people(site, db)
    assert visits(db) == []  # open: the worker may be back in time
    now[0] = START + 25.0  # back 15 s later (longer than visits.close_after_s)
    second = CameraWorker(site, "door", db, clock=lambda: now[0])
    assert second.start() == first.run_id
    watch(second, now, 25.0, 30.0)
    second.flush()
    second._build_visits(second.run_id, stored_until=now[0])
    assert visits(db) == []
    # The sync waits for them: their visits may end at the stop (edge.visits.pauses).
    assert visits_stored_until(db, site.visits, ["door"]) < START + 10.0
    watch(second, now, 30.0, 60.0, leave=40.0)  # they leave at 40 s
    second.finish("stopped")  # by then they are gone: their visits are built at the stop
    found = visits(db)
    assert len(found) == 3, found
    assert all(start < START + 1.0 and START + 39.0 < end <= START + 40.5
               for _, start, end in found), found
    ids = db.execute("select track_id from track_points where t < ? union all "
                     "select track_id from track_points where t > ?",
                     [START + 12, START + 20]).fetchall()
    assert len({i for (i,) in ids}) == 6, "a resumed run's new tracks have new ids"


def test_a_camera_worker_back_too_late_ends_the_visits_where_it_stopped(tmp_path):
    """Down longer than fusion.down_hold_s, the people it had in view may have left long
    ago: their visits end where it stopped, and a new run starts."""
    site = one_camera_site(tmp_path, fusion={"down_hold_s": 60})
    db = open_database(tmp_path / "edge.db")
    first, now = stopped_with_people(site, db)
    now[0] = START + 10.0 + 65.0
    late = CameraWorker(site, "door", db, clock=lambda: now[0])
    assert late.start() != first.run_id
    found = visits(db)
    assert len(found) == 3 and {run for run, _, _ in found} == {first.run_id}
    assert all(START + 9.5 < end <= START + 10.0 for _, _, end in found), found


def test_a_failed_run_builds_every_visit_at_once(tmp_path):
    """A run that failed is not resumed (what failed may fail again): its people's
    visits end where it stopped, at once."""
    site = one_camera_site(tmp_path)
    db = open_database(tmp_path / "edge.db")
    now = [START]
    worker = CameraWorker(site, "door", db, clock=lambda: now[0])
    worker.start()
    watch(worker, now, 0.0, 10.0)
    worker.finish("failed")
    assert len(visits(db)) == 3
    now[0] = START + 15.0
    assert CameraWorker(site, "door", db, clock=lambda: now[0]).start() != worker.run_id


def test_the_visit_builder_alone_ends_a_stopped_run_s_open_visits(tmp_path):
    """`edge visits build` (an engineer, not the worker) ends them as last seen."""
    site = one_camera_site(tmp_path)
    db = open_database(tmp_path / "edge.db")
    first, _ = stopped_with_people(site, db)
    build_visits(db, first.visits)
    assert len(visits(db)) == 3


def test_a_resumed_run_s_pauses_are_purged_with_the_raw_trajectories(tmp_path):
    from edge.retention import purge

    site = one_camera_site(tmp_path)
    db = open_database(tmp_path / "edge.db")
    first, now = stopped_with_people(site, db)
    now[0] = START + 25.0
    CameraWorker(site, "door", db, clock=lambda: now[0]).start()
    stopped = START + 9.8  # its last frame: its clock then
    assert db.execute("select stopped_t, resumed_t from run_pauses").fetchall() == [
        (pytest.approx(stopped), START + 25.0)]
    purge(db, site.storage, now=START + site.storage.raw_trajectory_hours * 3600 + 60,
          timezone=site.site.timezone)
    assert db["run_pauses"].count == 0 and db["track_points"].count == 0


def test_a_renamed_camera_s_stopped_run_is_built_by_the_new_camera_s_worker(tmp_path):
    """A one-camera site whose camera was renamed (or replaced) while people were in
    view: the old camera's worker, stopped, left their visits open for a resume that
    never comes (no worker of "door" any more). The new camera's worker ends them as
    last seen when it starts; before, they stayed open for ever."""
    site = one_camera_site(tmp_path)
    db = open_database(tmp_path / "edge.db")
    first, now = stopped_with_people(site, db)
    renamed = site.model_copy(update={"cameras": [
        site.cameras[0].model_copy(update={"id": "entrance"})]})
    now[0] = START + 20.0
    CameraWorker(renamed, "entrance", db, clock=lambda: now[0]).start()
    found = visits(db)
    assert len(found) == 3 and {run for run, _, _ in found} == {first.run_id}
    assert all(START + 9.5 < end <= START + 10.0 for _, _, end in found), found
