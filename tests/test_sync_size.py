"""Bytes per store-day at 15-min windows for the PETS demo site (goal: at most 1 MB).

The demo's floor trajectories come from a real replay of the PETS recording (the
tracker on its public detections). Visits, zone dwell, line crossings, traits and
segments are derived from them here by a small stand-in for the visits service
(zone membership at the feet, line side changes, traits from zone tags), so every
section of the payload is populated the way a real store's would be. The ~2-minute
recording is then tiled over all 96 windows of a day, three times per window (~120
visits per 15 min): a store busy around the clock. (Tiled as often as fits, seven
times per window, ``edge sync payload-size`` reports about the same: the number of
cells, not the counts in them, sets the size.)
"""

from __future__ import annotations

import itertools
import json
import subprocess
import sys

import numpy as np
import pytest
import shapely
from shapely.geometry import Polygon

from edge.config import load_site
from edge.runtime.schema import open_database
from edge.storage.trajectories import read_trajectories
from sync.aggregate import Window
from sync.producer import build_message
from sync.sizing import bytes_per_day, tile_day
from tests.conftest import PETS_DET, PETS_SITE

pytestmark = pytest.mark.system

DAY0 = 1_709_251_200.0
GOAL_BYTES = 1_000_000


def derive_visits(db, site) -> int:
    """Visits, dwell, crossings, traits and segments from the stored trajectories."""
    zones = [(zone, Polygon(zone.polygon)) for zone in site.floor.zones]
    line = next(line for line in site.floor.lines if line.kind == "entrance")
    (x0, y0), (x1, y1) = line.start, line.end
    inside_sign = 1 if line.inside == "left" else -1
    ids = itertools.count()
    count = 0
    with db.atomic():
        for trajectory in read_trajectories(db):
            t, xy = trajectory.t, trajectory.xy
            duration = float(t[-1] - t[0])
            if duration < 3:
                continue
            dt = float(np.median(np.diff(t))) if len(t) > 1 else 0.0
            member = np.full(len(t), None, dtype=object)
            for zone, polygon in zones:
                member[shapely.contains_xy(polygon, xy[:, 0], xy[:, 1])] = zone.id
            sequence = [z for z, _ in itertools.groupby(member) if z is not None]
            side = np.sign((x1 - x0) * (xy[:, 1] - y0) - (y1 - y0) * (xy[:, 0] - x0)) * inside_sign
            for i in np.flatnonzero(side[1:] * side[:-1] < 0):
                db["line_crossings"].insert(
                    {
                        "line_id": line.id,
                        "camera_id": trajectory.camera_id,
                        "run_id": trajectory.run_id,
                        "track_id": trajectory.track_id,
                        "t": float(t[i + 1]),
                        "direction": "in" if side[i + 1] > 0 else "out",
                    }
                )
            visit_id = f"pets-{next(ids)}"
            dwell = {zone.id: float((member == zone.id).sum() * dt) for zone, _ in zones}
            db["visits"].insert(
                {
                    "visit_id": visit_id,
                    "site_id": site.site.id,
                    "camera_id": trajectory.camera_id,
                    "run_id": trajectory.run_id,
                    "track_id": trajectory.track_id,
                    "start_t": float(t[0]),
                    "end_t": float(t[-1]),
                    "duration_s": duration,
                    "path_length_m": float(np.linalg.norm(np.diff(xy, axis=0), axis=1).sum()),
                    "checkout_visited": int(dwell.get("checkout", 0) > 0),
                    "features": "{}",
                    "zone_sequence": json.dumps(sequence),
                    "spec_version": "demo-1",
                }
            )
            for zone_id, seconds in dwell.items():
                if seconds > 0:
                    db["visit_zone_dwell"].insert(
                        {"visit_id": visit_id, "zone_id": zone_id, "dwell_s": seconds, "entries": 1}
                    )
            tags = {tag: dwell[zone.id] for zone, _ in zones for tag in zone.tags}
            traits = {f"{tag}-interest": min(1.0, seconds / 10) for tag, seconds in tags.items()}
            traits["quick-visit"] = 0.8 if duration < 20 else 0.2
            for trait, p in traits.items():
                db["visit_traits"].insert({"visit_id": visit_id, "trait": trait, "probability": p})
            browsing = 0.7 if len(sequence) >= 3 else 0.3
            for segment, p in (("browser", browsing), ("mission", 1 - browsing)):
                db["visit_segments"].insert(
                    {"visit_id": visit_id, "segment": segment, "probability": p}
                )
            count += 1
    return count


def test_payload_bytes_per_store_day_for_the_pets_demo(tmp_path):
    replay_db = tmp_path / "replay.db"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "edge",
            "replay",
            "--detections",
            str(PETS_DET),
            "--db",
            str(replay_db),
            "--quiet",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    site = load_site(PETS_SITE)
    source = open_database(replay_db)
    visits = derive_visits(source, site)
    assert visits >= 10
    day = open_database(tmp_path / "day.db")
    copies = tile_day(replay_db, day, DAY0, site.sync.window_s, copies_per_window=3)
    assert copies == 3 * 96
    size = bytes_per_day(day, site, DAY0)
    assert size.windows == 96
    print(
        f"\nPETS demo, {visits} visits per recording, {copies} copies over the day: "
        f"{size.payload_bytes} payload bytes per store-day (mean {size.mean_payload_bytes:.0f}, "
        f"largest {size.largest_payload_bytes}), {size.wire_bytes} with MQTT framing"
    )
    # The busy demo fills every section: zones, transitions, traits and segments are published.
    message = build_message(
        day, site, Window(DAY0 + 12 * 3600, site.sync.window_s), site.privacy.min_publishable_count
    )
    assert all(message[section] for section in ("dwell", "transitions", "traits", "segments"))
    assert message["footfall"]["in"] is not None and message["occupancy"]["max"] > 0
    assert size.wire_bytes <= GOAL_BYTES
