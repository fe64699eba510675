"""Fill a database the way the store services will, for the status page's tests.

Trajectories come from real replays of the shared PETS recording (tracker only,
``det.txt``). Visits, zone dwell, traits, segments and line crossings are derived
from those trajectories here (a stand-in for the visits builder, with the same
columns), and Wi-Fi windows and health records are written as their services
write them.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import random
import socket
import sqlite3
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import shapely
import sqlite_utils
from shapely.geometry import Polygon

from edge.config import SiteConfig, load_site
from edge.replay import replay
from edge.storage.trajectories import read_trajectories
from tests.conftest import PETS_DET, PETS_SITE
from tests.support.session import session_lock

LONDON = ZoneInfo("Europe/London")
# A Tuesday in March (GMT, no daylight saving), a week before the one compared with.
DAY = dt.date(2026, 3, 10)
REPLAY_STARTS = [dt.time(9, 30), dt.time(11, 5), dt.time(14, 40)]
LAST_WEEK_STARTS = [dt.time(10, 15), dt.time(14, 40)]
NOW = dt.datetime.combine(DAY, dt.time(15, 0), LONDON).timestamp()
SEGMENTS = ("quick_trip", "browser", "focused_buyer")
# Test clients call the page by a name it answers to (it refuses unknown Host names,
# such as TestClient's default "testserver": DNS rebinding).
BASE_URL = "http://localhost"


def at(day: dt.date, time: dt.time) -> float:
    return dt.datetime.combine(day, time, LONDON).timestamp()


def day_bounds(day: dt.date) -> tuple[float, float]:
    """The store-time day ``day`` as ``[start, end)`` in epoch seconds."""
    return at(day, dt.time()), at(day + dt.timedelta(days=1), dt.time())


def _orient(a, b, c) -> float:
    return (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0])


def _side(line, point) -> float:
    """> 0 left of the line looking from start to end."""
    return _orient(line.start, line.end, point)


def _crosses(line, p, q) -> bool:
    """Whether the step p -> q crosses the line segment (proper intersection)."""
    a, b = line.start, line.end
    return _orient(a, b, p) * _orient(a, b, q) < 0 and _orient(p, q, a) * _orient(p, q, b) < 0


def build_visits(db: sqlite_utils.Database, site: SiteConfig, run_id: int, seed: int) -> int:
    """Visits with zone dwell, traits, segments and line crossings for one run."""
    rng = random.Random(seed)
    zones = [(z.id, z.kind, Polygon(z.polygon)) for z in site.floor.zones]
    tags = sorted({tag for z in site.floor.zones for tag in z.tags})
    visits, dwell_rows, trait_rows, segment_rows, crossings = [], [], [], [], []
    pieces = []
    for track in read_trajectories(db, run_id=run_id):
        for line in site.floor.lines:
            for i in range(1, len(track.t)):
                p, q = track.xy[i - 1], track.xy[i]
                if _crosses(line, p, q):
                    inward = (_side(line, q) > 0) == (line.inside == "left")
                    crossings.append({"line_id": line.id, "camera_id": track.camera_id,
                                      "run_id": run_id, "track_id": track.track_id,
                                      "t": float(track.t[i]),
                                      "direction": "in" if inward else "out"})
        duration = float(track.t[-1] - track.t[0])
        if duration < site.visits.min_duration_s:
            continue
        visit_id = uuid.UUID(int=rng.getrandbits(128)).hex
        steps = np.minimum(np.diff(track.t, append=track.t[-1]), 1.0)
        sequence, checkout = [], False
        for zone_id, kind, shape in zones:
            inside = shapely.contains_xy(shape, track.xy[:, 0], track.xy[:, 1])
            if not inside.any():
                continue
            entries = int(inside[0]) + int(np.sum(inside[1:] & ~inside[:-1]))
            dwell_rows.append({"visit_id": visit_id, "zone_id": zone_id,
                               "dwell_s": round(float(steps[inside].sum()), 3), "entries": entries})
            sequence.append((int(np.argmax(inside)), zone_id))
            checkout |= kind == "checkout"
        path = float(np.linalg.norm(np.diff(track.xy, axis=0), axis=1).sum())
        visits.append({
            "visit_id": visit_id, "site_id": site.site.id, "camera_id": track.camera_id,
            "run_id": run_id, "track_id": track.track_id, "start_t": float(track.t[0]),
            "end_t": float(track.t[-1]), "duration_s": duration, "path_length_m": path,
            "checkout_visited": int(checkout),
            "features": json.dumps({"duration_s": duration, "path_length_m": path}),
            "zone_sequence": json.dumps([z for _, z in sorted(sequence)]),
            "spec_version": "test-1",
        })
        pieces.append({"visit_id": visit_id, "run_id": run_id, "camera_id": track.camera_id,
                       "track_id": track.track_id, "start_t": float(track.t[0]),
                       "end_t": float(track.t[-1])})
        for trait in ["showroomer", "wanderer", "indecisive", "bargain_hunter",
                      *(f"affinity_{tag}" for tag in tags[:2])]:
            trait_rows.append({"visit_id": visit_id, "trait": trait,
                               "probability": round(rng.random(), 3)})
        weights = [rng.random() for _ in SEGMENTS]
        for name, weight in zip(SEGMENTS, weights, strict=True):
            segment_rows.append({"visit_id": visit_id, "segment": name,
                                 "probability": round(weight / sum(weights), 3)})
    insert_rows(db, {"visits": visits, "visit_zone_dwell": dwell_rows,
                     "visit_traits": trait_rows, "visit_segments": segment_rows,
                     "line_crossings": crossings, "visit_pieces": pieces})
    return len(visits)


def write_wifi(db: sqlite_utils.Database, day: dt.date, seed: int) -> None:
    rng = random.Random(seed)
    rows = []
    for hour in range(9, 15):
        for quarter in range(4):
            start = at(day, dt.time(hour, quarter * 15))
            rows.append({"window_start": start, "window_s": 900, "sensor": "wlan1",
                         "frames": rng.randint(800, 3000), "in_store_devices": rng.randint(2, 12),
                         "passers_by": rng.randint(10, 60),
                         "occupancy_estimate": round(rng.uniform(2, 10), 1),
                         "dwell_buckets": json.dumps({"<5min": 3, "5-15min": 2})})
            rows[-1]["arrived_devices"] = rng.randint(0, rows[-1]["in_store_devices"])
            # A second, quieter sensor hearing the same phones must not double them.
            rows.append({**rows[-1], "sensor": "wlan2", "in_store_devices": 1,
                         "arrived_devices": rng.randint(0, 1), "passers_by": 5})
    with db.atomic():
        db["wifi_windows"].insert_all(rows)


def store_site(site: SiteConfig) -> SiteConfig:
    """The PETS site as the filled store runs it: with the Wi-Fi sensor its health rows
    and windows name (``wlan1``; the page leaves out a sensor the config does not have)."""
    from edge.config.wifi import WifiConfig

    return site.model_copy(update={"wifi": WifiConfig(interface="wlan1")})


def write_health(db: sqlite_utils.Database, now: float) -> None:
    """The services' last reports: the camera, the Wi-Fi sensor, the sync (degraded), the
    visits' builder silent for an hour, and a camera removed from the config since
    (``view002``: the PETS site has only ``view001``)."""
    rows = [
        ("camera:view001", "ok", {"fps": 7.0, "last_frame_age_s": 0.4, "reconnects": 2,
                                  "connected": True, "model": "yolox_nano_416x416",
                                  "rtsp_url": "rtsp://admin:hunter2@10.0.0.5/stream"},
         "Camera view001 is working.", now - 10),
        ("wifi:wlan1", "ok", {"frames_per_s": 41.5, "monitor_mode": True,
                              "mac": "aa:bb:cc:dd:ee:ff"},
         "Wi-Fi sensor wlan1 is listening.", now - 20),
        ("sync", "degraded", {"broker_connected": False, "outbox_backlog": 3,
                              "last_delivered_window": "2026-03-10T14:00:00Z"},
         "Cannot reach head office; reports are kept and will be sent later.", now - 5),
        ("camera:view002", "ok", {"fps": 6.5}, "Camera view002 is working.", now - 3600),
        ("visits", "ok", {}, "Visits are sorted into shopper types as people leave.",
         now - 3600),
    ]
    with db.atomic():
        db["health"].upsert_all(
            [{"component": c, "status": s, "detail": json.dumps(d), "message": m, "updated_at": u}
             for c, s, d, m, u in rows], pk="component")


def fill_store_day(db_path: Path, site: SiteConfig) -> dict:
    """A realistic day and the same weekday a week before, from real PETS replays."""
    from edge.runtime.schema import open_database

    db = open_database(db_path)
    runs = []
    for day, starts in ((DAY, REPLAY_STARTS), (DAY - dt.timedelta(days=7), LAST_WEEK_STARTS)):
        for i, start in enumerate(starts):
            summary = replay(site, db, detections=PETS_DET, start_time=at(day, start))
            build_visits(db, site, summary.run_id, seed=1000 * day.day + i)
            runs.append(summary.run_id)
    write_wifi(db, DAY, seed=7)
    write_health(db, NOW)
    db.close()
    return {"runs": runs, "now": NOW, "day": DAY}


def shared_store_db(tmp_path_factory) -> Path:
    """The filled database, built once per test run and shared by xdist workers.

    The web app only reads it, so workers can share one file; a lock makes the
    first worker build it while the others wait.
    """
    with session_lock(tmp_path_factory, "web-store") as root:
        path = root / "web-store.db"
        done = root / "web-store.done"
        if not done.exists():
            fill_store_day(path, load_site(PETS_SITE))
            done.write_text("ok")
    return path


def with_web(site: SiteConfig, **web) -> SiteConfig:
    """The site with its ``web:`` section changed (validated, as if read from YAML for
    the web service)."""
    from edge.config.web import WebConfig

    fields = {**site.web.model_dump(), **web}
    checked = WebConfig.model_validate(fields, context={"services": ["web"]})
    return site.model_copy(update={"web": checked})


def expected_heatmap(db: sqlite3.Connection, site, start: float, end: float):
    """Dwell per cell recomputed in Python: the positions of each visit's pieces, each the
    gap to its piece's next one (capped at 1 s); people are the visits."""
    (x0, y0), (x1, y1) = site.floor.bounds
    cell = site.floor.heatmap_cell_m
    dwell, people = defaultdict(float), defaultdict(set)
    pieces = db.execute("select visit_id, run_id, camera_id, track_id, start_t, end_t "
                        "from visit_pieces where start_t < ? and end_t >= ?", (end, start))
    for visit, run, camera, track, first, last in pieces.fetchall():
        rows = db.execute(
            "select t, x, y from track_points where run_id = ? and camera_id = ? and "
            "track_id = ? and t >= ? and t <= ? and t < ? order by t",
            (run, camera, track, max(first, start), last, end)).fetchall()
        for i, (t, x, y) in enumerate(rows):
            gap = min(rows[i + 1][0] - t, 1.0) if i + 1 < len(rows) else 0.0
            if x0 <= x < x1 and y0 <= y < y1:
                key = (int((x - x0) // cell), int((y - y0) // cell))
                dwell[key] += gap
                people[key].add(visit)
    return dwell, people


@dataclass(frozen=True, slots=True)
class ExpectedDay:
    """The status page's figures of one day, counted straight from the database."""

    latest: float                    # the last instant with positions, up to NOW
    people: int                      # the people at that instant
    hours: Counter[int]              # visits by the store-time hour they ended in
    hours_last_week: Counter[int]    # the same, on the same weekday a week before
    crossings: dict[str, int]        # line crossings by direction
    dwell: dict[str, list[float]]    # per zone, the dwell of each visit that spent any
    visits: int                      # visits that ended in the day
    traits: dict[str, int]           # visits with each trait at p >= 0.5
    traits_scored: dict[str, int]    # visits with a probability for each trait (not too short)
    segments: dict[str, int]         # visits in each segment at p >= 0.5


def expected_day(db: sqlite3.Connection, day: dt.date) -> ExpectedDay:
    """What the page shows for ``day`` (at ``NOW``), before small groups are hidden."""
    start, end = day_bounds(day)
    latest = db.execute("select max(t) from track_points where t <= ?", (NOW,)).fetchone()[0]
    people = db.execute("select count(distinct track_id) from track_points where t = ?",
                        (latest,)).fetchone()[0]

    def hours(day: dt.date) -> Counter[int]:
        return Counter(dt.datetime.fromtimestamp(t, LONDON).hour for (t,) in db.execute(
            "select end_t from visits where end_t >= ? and end_t < ?", day_bounds(day)))

    dwell = defaultdict(list)
    for zone, seconds in db.execute(
            "select d.zone_id, d.dwell_s from visit_zone_dwell d join visits v using (visit_id) "
            "where v.end_t >= ? and v.end_t < ? and d.dwell_s > 0", (start, end)):
        dwell[zone].append(seconds)

    def likely(table: str, column: str) -> dict[str, int]:
        return dict(db.execute(
            f"select m.{column}, count(*) from {table} m join visits v using (visit_id) "
            f"where v.end_t >= ? and v.end_t < ? and m.probability >= 0.5 group by 1",
            (start, end)).fetchall())

    return ExpectedDay(
        latest=latest,
        people=people,
        hours=hours(day),
        hours_last_week=hours(day - dt.timedelta(days=7)),
        crossings=dict(db.execute(
            "select direction, count(*) from line_crossings where t >= ? and t < ? group by 1",
            (start, end)).fetchall()),
        dwell=dict(dwell),
        visits=db.execute("select count(*) from visits where end_t >= ? and end_t < ?",
                          (start, end)).fetchone()[0],
        traits=likely("visit_traits", "trait"),
        traits_scored=dict(db.execute(
            "select m.trait, count(*) from visit_traits m join visits v using (visit_id) "
            "where v.end_t >= ? and v.end_t < ? and m.probability is not null group by 1",
            (start, end)).fetchall()),
        segments=likely("visit_segments", "segment"),
    )


def expected_wifi(db: sqlite3.Connection, start: float, end: float) -> tuple[int, int]:
    """Phones that came in and passers-by over ``[start, end)``: per window the larger
    sensor's count, summed over the windows. Came in sums ``arrived_devices`` (each
    phone once), not ``in_store_devices``, which counts a phone in every window it
    stays in."""
    windows: dict[float, tuple[int, int]] = defaultdict(lambda: (0, 0))
    for window, arrived, passing in db.execute(
            "select window_start, arrived_devices, passers_by from wifi_windows "
            "where window_start >= ? and window_start < ?", (start, end)):
        old = windows[window]
        windows[window] = (max(old[0], arrived), max(old[1], passing))
    return sum(v[0] for v in windows.values()), sum(v[1] for v in windows.values())


def insert_rows(db: sqlite_utils.Database, rows: dict[str, list[dict]]) -> None:
    """Insert each table's rows, all in one transaction."""
    with db.atomic():
        for table, table_rows in rows.items():
            db[table].insert_all(table_rows)


@contextlib.contextmanager
def served(app) -> Iterator[str]:
    """Serve ``app`` with uvicorn on a free loopback port; yield its base URL."""
    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test web server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()
