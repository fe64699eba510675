"""The live fusion service: camera workers' frames in the database -> store-wide tracks
that the status page counts once."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edge.fusion.store import read_camera_frames, write_camera_frames
from edge.runtime.fusion_worker import FusionWorker
from edge.runtime.schema import open_database
from edge.visits.builder import build_visits
from edge.web.queries import occupancy
from tests.support.live_site import floor_in_centimetres_site
from tests.test_fusion import sighting

pytestmark = pytest.mark.system

START = 1_800_000_000.0


def two_camera_site(tmp_path, **sections):
    """Two cameras looking at the same 10 x 10 m floor, as a store with overlapping views;
    ``sections`` add to the site file."""
    return floor_in_centimetres_site(tmp_path, "two-cams", {"door": 10, "aisle": 5},
                                     **sections)



def people_at(t: float) -> np.ndarray:
    return np.array([[1.0 + 0.5 * t, 2.0], [5.0, 1.0 + 0.4 * t], [8.0, 8.0 - 0.3 * t]])


def started(site, db, now: list[float]) -> FusionWorker:
    """A fusion service started on the clock ``now`` (a one-item list the test moves)."""
    worker = FusionWorker(site, db, clock=lambda: now[0])
    worker.start()
    return worker


def fuse_until(site, db, start: float, until: float) -> FusionWorker:
    """A fusion service on its own clock, run in half-second steps from ``start`` to
    ``until`` (storing what it fused at each step)."""
    now = [start]
    worker = started(site, db, now)
    fuse_on(worker, now, until)
    return worker


def test_two_cameras_seeing_the_same_people_count_them_once(tmp_path):
    site = two_camera_site(tmp_path)
    db = open_database(tmp_path / "edge.db")
    rng = np.random.default_rng(4)
    frames = []
    for camera, fps, skew in (("door", 10.0, 0.0), ("aisle", 5.0, 0.3)):  # aisle's clock +0.3 s
        for k in range(int(10 * fps)):
            t = k / fps
            truth = people_at(t)
            seen = sighting(camera, START + t + skew, truth + rng.normal(0, 0.1, truth.shape))
            frames.append(seen)
    write_camera_frames(db, frames)
    worker = fuse_until(site, db, START + 2.0, START + 11.5)
    people = db.execute("select count(distinct track_id) from track_points where camera_id = "
                        "'store'").fetchone()[0]
    assert people == 3, "three people, seen by two cameras, are three tracks"
    last = db.execute("select max(t) from track_points").fetchone()[0]
    from zoneinfo import ZoneInfo
    live = occupancy(db.conn, set(db.table_names()), last, 1.0, ZoneInfo("UTC"))
    assert live.people == 3
    # the camera frames are gone once fused (only the last seconds stay)
    left = list(read_camera_frames(db, 0, START + 100))
    assert all(seen.timestamp >= worker.instant - 5.0 for seen in left)


def test_the_fusion_service_closes_a_run_a_killed_service_left_running(tmp_path):
    site = two_camera_site(tmp_path)
    db = open_database(tmp_path / "edge.db")
    first = FusionWorker(site, db, clock=lambda: START)
    first.start()  # then killed: never finished
    second = FusionWorker(site, db, clock=lambda: START + 60)
    second.start()
    statuses = dict(db.execute("select id, status from runs").fetchall())
    assert statuses[first.run_id] == "interrupted" and statuses[second.run_id] == "running"


def test_calibration_health_reaches_the_page_and_metrics(tmp_path):
    """Where two cameras see the same person, how far apart they place them: on the
    status page's health panel and in /metrics, per camera pair."""
    from fastapi.testclient import TestClient
    from prometheus_client.parser import text_string_to_metric_families

    from edge.web.app import WebDeps, create_app
    from tests.support.web_support import BASE_URL

    site = two_camera_site(tmp_path)
    db = open_database(tmp_path / "edge.db")
    frames = []
    for camera, offset in (("door", 0.0), ("aisle", 0.3)):  # aisle places people 0.3 m off
        for k in range(50):
            t = k / 5.0
            frames.append(sighting(camera, START + t, people_at(t) + [offset, 0.0], sigma=0.15))
    write_camera_frames(db, frames)
    worker = fuse_until(site, db, START + 1.0, START + 11.5)
    worker.report_health()
    app = create_app(WebDeps(site=site, db_path=tmp_path / "edge.db", clock=lambda: START + 12))
    with TestClient(app, base_url=BASE_URL) as web:
        page = web.get("/").text
        metrics = web.get("/metrics").text
    assert "Counting across cameras" in page and "within 30 cm" in page
    samples = {s.labels.get("pair"): s.value for family in text_string_to_metric_families(metrics)
               for s in family.samples
               if s.name == "edge_fusion_calibration_pair_median_metres"}
    assert list(samples) == ["aisle-door"] and abs(samples["aisle-door"] - 0.3) < 0.02


def test_cameras_that_disagree_are_not_shown_as_agreeing(tmp_path):
    """Field report: "two cameras on one floor counted every person twice" while the page
    read "cameras agree on where people stand within 117 cm" (the people still matched).
    The pair is named on the page and its unmatched share is in /metrics."""
    from fastapi.testclient import TestClient
    from prometheus_client.parser import text_string_to_metric_families

    from edge.web.app import WebDeps, create_app
    from tests.support.web_support import BASE_URL
    from tests.test_fusion_calibration_check import SECONDS, fused_pair

    site, _ = fused_pair(tmp_path, 1.5)
    app = create_app(WebDeps(site=site, db_path=tmp_path / "edge.db",
                             clock=lambda: START + SECONDS + 5))
    with TestClient(app, base_url=BASE_URL) as web:
        page = web.get("/").text
        metrics = web.get("/metrics").text
    assert "Cameras aisle and door count people twice" in page
    assert "cameras aisle-door DISAGREE" in page and "agree on where people stand" not in page
    samples = {s.labels.get("pair"): s.value for family in text_string_to_metric_families(metrics)
               for s in family.samples
               if s.name == "edge_fusion_calibration_pair_unmatched_ratio"}
    assert list(samples) == ["aisle-door"] and samples["aisle-door"] > 0.8


def test_the_last_shopper_s_visit_is_built_while_the_store_stays_empty(tmp_path):
    """Reviewer's report: the fusion service closed tracks against the newest stored
    position, so after the last shopper left, with nobody else in view, their visit was
    not built until someone came in (hours later, after the sync had sent their window).
    The service runs on its own clock here, 20 times as fast as the test's."""
    import threading
    import time

    site = two_camera_site(tmp_path)
    site = site.model_copy(update={
        "service": site.service.model_copy(update={"visits_interval_s": 0.1,
                                                   "flush_interval_s": 0.05})})
    db = open_database(tmp_path / "edge.db")
    frames = [sighting(camera, START + t, [[1.0 + 0.5 * t, 2.0]])
              for camera in ("door", "aisle") for t in np.arange(0.0, 16.0, 0.2)]
    write_camera_frames(db, frames)   # one shopper for 16 s, then nobody
    began = time.monotonic()
    stop = threading.Event()

    def serve() -> None:  # the service's own connection, as in its process
        FusionWorker(site, open_database(tmp_path / "edge.db"),
                     clock=lambda: START + 1.0 + 20 * (time.monotonic() - began)).run(stop)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        visits = 0
        while time.monotonic() < deadline and not visits:
            time.sleep(0.1)
            visits = open_database(tmp_path / "edge.db")["visits"].count
        statuses = [row[0] for row in db.execute("select status from runs")]
    finally:
        stop.set()
        thread.join(10)
    assert visits == 1, "built while the service ran, with nobody else seen"
    assert statuses == ["running"]


def test_a_stopped_fusion_service_reads_down_not_its_last_ok(tmp_path):
    """Reviewer's report: a stopped fusion service left its last "ok" on the status page
    and in `edge status` (the camera workers and the sync write "down" when they stop)."""
    import threading

    from edge.storage.health import read_health

    site = two_camera_site(tmp_path)
    db = open_database(tmp_path / "edge.db")
    write_camera_frames(db, [sighting(camera, START + t, [[1.0 + 0.5 * t, 2.0]])
                             for camera in ("door", "aisle") for t in np.arange(0.0, 4.0, 0.2)])
    worker = FusionWorker(site, db, clock=lambda: START + 2.0)
    worker.start()
    worker.fuse_ready()
    worker.report_health()
    (running,) = read_health(db)
    assert running["status"] in ("ok", "degraded")  # as it reports while it runs
    stop = threading.Event()
    stop.set()
    worker.run(stop)
    (health,) = [row for row in read_health(db) if row["component"] == "fusion"]
    assert health["status"] == "down"
    assert "stopped" in health["message"]


def test_frames_stored_in_batches_are_all_fused_and_every_instant_sees_everyone(tmp_path):
    """Camera workers store their frames every service.flush_interval_s (2 s), each stamped
    when it was taken, so a frame reaches the table up to 2 s late; two workers started
    together flush in step. Waiting only fusion.latency_s (1 s) left about half of the
    frames unread and a third of the instants with nobody in them."""
    site = two_camera_site(tmp_path)
    db = open_database(tmp_path / "edge.db")
    now = [START]
    worker = started(site, db, now)
    rng = np.random.default_rng(5)
    flush_s = site.service.flush_interval_s
    buffers: dict[str, list] = {"door": [], "aisle": []}
    taken = {"door": 0.0, "aisle": 0.0}
    written, people_seen = 0, []
    for tick in range(1, 30 * 50 + 1):  # 30 s in 20 ms ticks
        now[0] = START + tick * 0.02
        for camera, fps in (("door", 10.0), ("aisle", 5.0)):
            while taken[camera] <= now[0] - START:
                t = taken[camera]
                noisy = people_at(t) + rng.normal(0, 0.1, (3, 2))
                buffers[camera].append(sighting(camera, START + t, noisy))
                taken[camera] += 1 / fps
        if tick % round(flush_s / 0.02) == 15:  # both workers flush at the same moment
            for frames in buffers.values():
                write_camera_frames(db, frames)
                written += len(frames)
                frames.clear()
        if tick % 10 == 0:  # the service's loop, every 1 / rate_fps
            before = len(worker.batch)
            worker.fuse_ready()
            people_seen += [len(fused) for fused in worker.batch[before:]]
            worker.flush()
    assert written > 400
    assert worker.frames_read == written
    assert worker.late_frames == {}
    assert len(people_seen) > 100
    assert people_seen[10:] == [3] * len(people_seen[10:])  # once confirmed, nobody dropped


def test_frames_later_than_the_wait_are_counted_late_and_the_health_says_so(tmp_path):
    site = two_camera_site(tmp_path)
    db = open_database(tmp_path / "edge.db")
    now = [START]
    worker = started(site, db, now)
    door = [sighting("door", START + k / 10, people_at(k / 10)) for k in range(100)]
    aisle = [sighting("aisle", START + k / 5, people_at(k / 5)) for k in range(50)]
    write_camera_frames(db, door)
    now[0] = START + 10 + worker.wait_s + 0.5
    worker.fuse_ready()
    write_camera_frames(db, aisle)  # ten seconds of one camera's frames, all too late
    worker.fuse_ready()
    assert worker.late_frames == {"aisle": 50}
    worker.report_health()
    status, message, detail = db.execute(
        "select status, message, detail from health where component = 'fusion'").fetchone()
    assert status == "degraded" and "aisle" in message and "fusion.latency_s" in message
    assert '"late_frames": {"aisle": 50}' in detail


def test_visits_of_a_store_run_the_purge_closed_while_fusion_was_down_are_built(tmp_path):
    """A fusion service killed with shoppers in the store, then `edge purge` (before the
    service came back) closed its run as interrupted: the service only looked for runs
    still 'running', so those shoppers' visits were never built."""
    site = two_camera_site(tmp_path)
    db = open_database(tmp_path / "edge.db")
    frames = [sighting(camera, START + t, people_at(t))
              for camera in ("door", "aisle") for t in np.arange(0.0, 8.0, 0.2)]
    write_camera_frames(db, frames)
    killed = fuse_until(site, db, START + 1.0, START + 12.0)  # never finished: killed
    assert db["visits"].count == 0  # visits of open tracks wait for the run to end
    with db.atomic():  # what close_dead_runs does once the killed process is gone
        db.execute("update runs set status = 'interrupted' where id = ?", [killed.run_id])
    FusionWorker(site, db, clock=lambda: START + 600).start()
    built = db.execute("select count(*) from visits where run_id = ?", [killed.run_id])
    assert built.fetchone()[0] == 3
    assert db["runs"].get(killed.run_id)["status"] == "interrupted"


def walk_frames(until: float, leave: float) -> list:
    """Both cameras' frames every 0.2 s up to ``until``: the three people of
    :func:`people_at` until ``leave``, nobody after (the cameras keep looking)."""
    return [sighting(camera, START + t, people_at(t) if t < leave else np.zeros((0, 2)))
            for camera in ("door", "aisle") for t in np.arange(0.0, until, 0.2)]


def fuse_on(worker: FusionWorker, now: list[float], until: float) -> None:
    """Go on fusing in half-second steps of ``worker``'s clock ``now`` until ``until``."""
    while now[0] < until:
        now[0] += 0.5
        worker.fuse_ready()
        worker.flush()


def stopped_with_people(site, db, *, until: float) -> tuple[FusionWorker, list[float]]:
    """The frames of :func:`walk_frames` up to ``until``, and a fusion service that fused
    them on its own clock from START + 1 s to START + 9 s, then stopped (SIGTERM) with
    the three people in the store; returns it and its clock."""
    write_camera_frames(db, walk_frames(until=until, leave=16.0))
    now = [START + 1.0]
    first = started(site, db, now)
    fuse_on(first, now, START + 9.0)
    first.finish("stopped")
    return first, now


def store_visits(db) -> list[tuple[int, float, float]]:
    return db.execute("select run_id, start_t, end_t from visits order by start_t").fetchall()


def test_a_restarted_fusion_service_goes_on_with_the_same_people(tmp_path):
    """Reviewer's report: restarting the fusion service (an upgrade, a config change,
    systemd's Restart=) split every shopper in the store into two visits, 3 became 6:
    the new run started with an empty tracker. Back within fusion.down_hold_s, it now
    resumes its run with the same people, and fuses the frames stored meanwhile."""
    site = two_camera_site(tmp_path)
    db = open_database(tmp_path / "edge.db")
    first, now = stopped_with_people(site, db, until=40.0)
    assert db["runs"].get(first.run_id)["status"] == "stopped"
    now[0] = START + 12.0  # back 3 s later, the people still in the store
    second = started(site, db, now)
    assert second.run_id == first.run_id
    assert db["runs"].get(first.run_id)["status"] == "running"
    fuse_on(second, now, START + 45.0)
    second.finish("stopped")
    FusionWorker(site, db, clock=lambda: START + 1000).start()  # builds what is left
    visits = store_visits(db)
    assert len(visits) == 3, visits
    assert {run for run, _, _ in visits} == {first.run_id}
    assert all(start < START + 2.0 and end > START + 14.0 for _, start, end in visits)
    # the instants of the time it was down were fused from the stored camera frames
    instants = np.array([t for (t,) in db.execute(
        "select distinct t from track_points where run_id = ? order by t", [first.run_id])])
    assert np.diff(instants[instants < START + 15.0]).max() < 0.5
    assert db.execute("select count(distinct track_id) from track_points").fetchone()[0] == 3


def test_a_fusion_service_back_too_late_ends_the_visits_where_it_stopped(tmp_path):
    """Down longer than fusion.down_hold_s, the people it had in view may have left long
    ago: their visits end where it stopped, and a new run starts."""
    site = two_camera_site(tmp_path)
    db = open_database(tmp_path / "edge.db")
    first, now = stopped_with_people(site, db, until=12.0)
    assert store_visits(db) == []  # open: it may be back in time
    late = FusionWorker(site, db, clock=lambda: START + 9.0 + site.fusion.down_hold_s + 5)
    late.start()
    assert late.run_id != first.run_id
    visits = store_visits(db)
    assert len(visits) == 3 and {run for run, _, _ in visits} == {first.run_id}


def test_a_fusion_state_it_cannot_read_starts_a_new_run_and_loses_no_visit(tmp_path, caplog):
    site = two_camera_site(tmp_path)
    db = open_database(tmp_path / "edge.db")
    first, now = stopped_with_people(site, db, until=12.0)
    with db.atomic():  # written by a later version, or damaged
        db.execute("update fusion_state set state = '{\"version\": 99}'")
    second = FusionWorker(site, db, clock=lambda: START + 12.0)
    second.start()
    assert second.run_id != first.run_id
    assert "cannot be resumed" in caplog.text and "version 99" in caplog.text
    assert len(store_visits(db)) == 3


def test_the_saved_tracker_state_is_purged_with_the_raw_trajectories(tmp_path):
    from edge.retention import purge

    site = two_camera_site(tmp_path)
    db = open_database(tmp_path / "edge.db")
    write_camera_frames(db, walk_frames(until=12.0, leave=16.0))
    fuse_until(site, db, START + 1.0, START + 9.0).finish("stopped")
    assert db["fusion_state"].count == 1
    purge(db, site.storage, now=START + 3600.0, timezone=site.site.timezone)
    assert db["fusion_state"].count == 1  # an hour later: still raw data's to keep
    purge(db, site.storage, now=START + site.storage.raw_trajectory_hours * 3600 + 60,
          timezone=site.site.timezone)
    assert db["fusion_state"].count == 0 and db["track_points"].count == 0


def test_a_window_waits_for_the_visits_of_a_fusion_service_that_is_restarting(tmp_path):
    """The sync closed each window sync.settle_s after its end whatever the visit
    sources were doing: the visits of people who left while the fusion service was down
    (resumed later, their visits built after it caught up) missed their window, and
    the central platform never counted them, while the status page did."""
    from sync.outbox import Outbox
    from sync.producer import produce
    from sync.settings import effective_settings

    site = two_camera_site(tmp_path, sync={"window_s": 60})
    db = open_database(tmp_path / "edge.db")
    window_end = START + 60

    def produced(now: float) -> list[float]:
        produce(db, site, Outbox(db), effective_settings(db, site), now)
        return [row[0] for row in db.execute("select window_start from sync_outbox")]

    first, now = stopped_with_people(site, db, until=220.0)
    assert produced(window_end + site.sync.settle_s + 10) == []  # waits: it may resume
    now[0] = START + 200.0
    second = started(site, db, now)
    fuse_on(second, now, START + 210.0)
    build_visits(db, second.visits, run_id=second.run_id, stored_until=second.instant)
    assert START in produced(now[0])
    ends = [end for _, _, end in store_visits(db)]
    assert len(ends) == 3 and all(START + 14 < end < window_end for end in ends)


def test_a_window_stops_waiting_for_a_fusion_service_that_does_not_come_back(tmp_path):
    from sync.outbox import Outbox
    from sync.producer import produce
    from sync.settings import effective_settings

    site = two_camera_site(tmp_path, sync={"window_s": 60})
    db = open_database(tmp_path / "edge.db")
    write_camera_frames(db, walk_frames(until=12.0, leave=16.0))
    stopped = fuse_until(site, db, START + 1.0, START + 9.0)
    stopped.finish("stopped")
    # Visits are all stored up to close_after_s + stitch_max_gap_s before the last instant.
    stored = stopped.instant - site.visits.close_after_s - site.visits.stitch_max_gap_s
    give_up = stored + site.sync.settle_s + site.fusion.down_hold_s
    produce(db, site, Outbox(db), effective_settings(db, site), give_up - 1)
    assert db["sync_outbox"].count == 0
    produce(db, site, Outbox(db), effective_settings(db, site), give_up + 1)
    windows = db["sync_outbox"].count
    assert windows == int((give_up + 1 - site.sync.settle_s - START) // 60)  # every closed one


def test_a_killed_fusion_service_resumes_from_its_last_saved_state_without_double_points(
        tmp_path):
    """Killed (kill -9, a power cut), it saved its state up to SAVE_STATE_EVERY_S before:
    the instants stored after that are fused again, not stored twice."""
    site = two_camera_site(tmp_path)
    db = open_database(tmp_path / "edge.db")
    write_camera_frames(db, walk_frames(until=40.0, leave=16.0))
    now = [START + 1.0]
    killed = started(site, db, now)
    fuse_on(killed, now, START + 10.0)
    saved_t = db.execute("select t from fusion_state").fetchone()[0]
    assert saved_t < killed.instant  # instants were stored after the last state saved
    now[0] = START + 14.0
    second = started(site, db, now)
    assert second.run_id == killed.run_id
    fuse_on(second, now, START + 45.0)
    second.finish("stopped")
    FusionWorker(site, db, clock=lambda: START + 1000).start()
    doubled = db.execute("select count(*) from (select track_id, t from track_points "
                         "group by track_id, t having count(*) > 1)").fetchone()[0]
    assert doubled == 0
    assert len(store_visits(db)) == 3


def resumed_after_learning_a_delay(tmp_path, *, until: float, leave: float):
    """A two-camera service that learnt the aisle camera is 0.8 s late, fused the walk
    (frames to ``until``, the walkers leaving at ``leave``) for 8 s, stopped, and was
    started again 3 s later: the resumed service, its database and its clock (a one-item
    list)."""
    site = two_camera_site(tmp_path)
    db = open_database(tmp_path / "edge.db")
    write_camera_frames(db, walk_frames(until=until, leave=leave))
    now = [START + 1.0]
    first = started(site, db, now)
    first.stage.delays.restore({"delays": {"aisle": 0.8}, "estimates": {"aisle": 0.8},
                                "sure": ["aisle"]})  # as learnt
    fuse_on(first, now, START + 9.0)
    first.finish("stopped")
    now[0] = START + 12.0
    second = started(site, db, now)
    assert second.run_id == first.run_id
    return second, db, now


def test_a_resumed_fusion_service_keeps_the_camera_delays_it_learnt(tmp_path):
    """A restarted service learnt every camera's delay again from nothing: for its
    first seconds, walkers seen by a late camera and one other were counted twice."""
    second, _, _ = resumed_after_learning_a_delay(tmp_path, until=20.0, leave=16.0)
    assert second.stage.delays.delays()["aisle"] == 0.8
    assert "aisle" in second.stage.delays.learnt()


def test_the_settle_check_counts_the_wait_for_a_late_camera(tmp_path):
    """The fusion waits up to the longest camera delay it corrects for a late camera's
    pictures (fusion.max_camera_delay_s): the check of sync.settle_s left it out."""
    site = two_camera_site(tmp_path)
    single = site.visits.close_after_s + site.visits.stitch_max_gap_s \
        + site.service.visits_interval_s + site.service.flush_interval_s + 1.0
    assert site.visit_stored_within_s == pytest.approx(
        single + site.fusion.latency_s + site.fusion.max_camera_delay_s)
    short = two_camera_site(tmp_path, sync={"settle_s": single + site.fusion.latency_s + 0.5})
    assert "the longest camera delay" in (short.settle_warning() or "")


@pytest.mark.parametrize("how", ["stopped", "killed"])
def test_fusion_taken_out_of_the_config_leaves_no_visit_open(tmp_path, how):
    """Field report: a site that went from several cameras to one (the installer then
    disables the fusion service) never built the visits of the people its last fusion
    run had in view when it stopped: left for a fusion service that never came back,
    they stayed open for ever. The one camera's worker now ends that run and builds
    them, as a fusion service back too late does."""
    from edge.runtime.camera_worker import CameraWorker
    from tests.test_camera_restart import one_camera_site

    site = two_camera_site(tmp_path)
    db = open_database(tmp_path / "edge.db")
    first, now = stopped_with_people(site, db, until=12.0)
    if how == "killed":  # left running by a process that is gone (a reboot)
        with db.atomic():
            db.execute("update runs set status = 'running', ended_at = null, "
                       "boot_id = 'an-earlier-boot' where id = ?", [first.run_id])
    assert store_visits(db) == []
    one = one_camera_site(tmp_path)  # IT took the aisle camera out
    CameraWorker(one, "door", db, clock=lambda: START + 20.0).start()
    visits = store_visits(db)
    assert len(visits) == 3 and {run for run, _, _ in visits} == {first.run_id}
    assert db["runs"].get(first.run_id)["status"] == ("stopped" if how == "stopped"
                                                       else "interrupted")


def test_a_failed_fusion_run_builds_every_visit_as_it_stops(tmp_path):
    """A failed run is not resumed, and only runs that stopped or were interrupted are
    built later: the visits of the people a failed run had in view stayed open for ever."""
    site = two_camera_site(tmp_path)
    db = open_database(tmp_path / "edge.db")
    write_camera_frames(db, walk_frames(until=12.0, leave=16.0))
    failed = fuse_until(site, db, START + 1.0, START + 9.0)
    failed.finish("failed")
    visits = store_visits(db)
    assert len(visits) == 3 and {run for run, _, _ in visits} == {failed.run_id}


def test_a_resumed_service_does_not_count_the_frames_it_fused_before_as_late(tmp_path):
    """Reviewer's report: resumed with a learnt camera delay, the service read that
    camera's frames stamped after the saved done-until but taken before it (their stamp
    less the delay), fused before the stop, again, and counted them late: its health
    read degraded ("raise fusion.latency_s") after every restart."""
    second, db, now = resumed_after_learning_a_delay(tmp_path, until=40.0, leave=30.0)
    fuse_on(second, now, START + 20.0)
    assert second.late_frames == {}
    second.report_health()
    status, message = db.execute(
        "select status, message from health where component = 'fusion'").fetchone()
    assert status == "ok", message
    # a frame that does come after its instant was fused is still late
    write_camera_frames(db, [sighting("door", second.done_until - 1.0, people_at(15.0))])
    fuse_on(second, now, START + 20.5)
    assert second.late_frames == {"door": 1}


def test_an_engineer_s_replay_into_the_box_database_leaves_the_live_fusion_alone(tmp_path):
    """Reviewer's report: the service resumed the newest store run of any kind, so an
    `edge replay --site` into the box's database between a stop and a restart made it
    start a new run (every shopper in the store got a second visit); and it closed a
    replay still running as interrupted. Only the service's own (live) runs are its."""
    from edge.config.site import STORE_TRACKS_ID
    from edge.storage.trajectories import finish_run, start_run

    site = two_camera_site(tmp_path)
    db = open_database(tmp_path / "edge.db")
    first, now = stopped_with_people(site, db, until=40.0)
    done = start_run(db, STORE_TRACKS_ID, "replay of door, aisle", "m", kind="replay")
    finish_run(db, done, 0, "stopped")
    running = start_run(db, STORE_TRACKS_ID, "replay of door, aisle", "m", kind="replay")
    now[0] = START + 12.0
    second = started(site, db, now)
    assert second.run_id == first.run_id
    assert db["runs"].get(running)["status"] == "running"  # this process's, still replaying
    fuse_on(second, now, START + 45.0)
    second.finish("stopped")
    FusionWorker(site, db, clock=lambda: START + 1000).start()
    visits = store_visits(db)
    assert len(visits) == 3 and {run for run, _, _ in visits} == {first.run_id}
    assert db["runs"].get(running)["status"] == "running"


def test_a_camera_taken_out_of_the_config_is_not_live_after_a_resume(tmp_path):
    """The saved tracker state kept the last frame time of a camera the site no longer
    has: resumed, it counted as live (in the health row, and, with no footprint, as
    seeing the whole floor), and so did its frames still stored."""
    site = floor_in_centimetres_site(tmp_path, "three-cams", {"door": 10, "aisle": 5,
                                                              "side": 5})
    db = open_database(tmp_path / "edge.db")
    write_camera_frames(db, [sighting(camera, START + t, people_at(t))
                             for camera in ("door", "aisle", "side")
                             for t in np.arange(0.0, 20.0, 0.2)])
    now = [START + 1.0]
    first = started(site, db, now)
    fuse_on(first, now, START + 9.0)
    assert "side" in first.stage.tracker.live_cameras(now[0] - first.wait_s)
    first.finish("stopped")
    second = started(two_camera_site(tmp_path), db, now)  # "side" taken out, back at once
    assert second.run_id == first.run_id
    assert "side" not in second.stage.tracker.camera_last_t
    fuse_on(second, now, START + 12.0)
    second.report_health()
    (detail,) = db.execute("select detail from health where component = 'fusion'").fetchone()
    assert json.loads(detail)["cameras_live"] == ["aisle", "door"]
    assert db.execute("select count(distinct track_id) from track_points").fetchone()[0] == 3


def test_a_camera_worker_records_its_frame_size_for_the_fusion_service(tmp_path):
    """Only the camera worker's own fusion stage learnt the frame size: the fusion
    service, with point-pair calibration (no calibration.image_size), took every camera
    to see the whole floor. The worker now records it, again if it changes."""
    from edge.fusion.store import read_camera_image_sizes
    from edge.records import Detections
    from edge.runtime.camera_worker import CameraWorker
    from tests.test_fusion_handover import side_by_side_site

    site = side_by_side_site(tmp_path, left_sees=4, right_from=6, image_size=False)
    db = open_database(tmp_path / "edge.db")
    now = [START]
    worker = CameraWorker(site, "left", db, clock=lambda: now[0])
    worker.start()
    fusion = FusionWorker(site, db, clock=lambda: now[0])
    fusion.start()

    def look(size: tuple[int, int], k: int) -> None:
        worker.see_frame_size(size)
        worker.track(worker.pipeline.process_detections(Detections.empty(), k, now[0]))

    look((400, 1000), 0)
    assert read_camera_image_sizes(db) == {}  # with the next flush, before its frames
    worker.flush()
    assert read_camera_image_sizes(db) == {"left": (400, 1000)}
    fusion.fuse_ready()
    assert fusion.stage.coverage.footprints["left"].bounds == pytest.approx(
        (0.0, 0.0, 4.0, 10.0), abs=0.01)
    assert fusion.stage.coverage.footprints["right"] is None  # not known yet: everywhere
    now[0] += 5
    look((400, 1000), 1)
    look((200, 500), 2)  # the stream reopened at half the resolution
    worker.flush()
    assert read_camera_image_sizes(db) == {"left": (200, 500)}
    fusion.fuse_ready()
    assert fusion.stage.coverage.footprints["left"].bounds == pytest.approx(
        (0.0, 0.0, 2.0, 5.0), abs=0.01)
