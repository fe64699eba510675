#!/usr/bin/env python3
"""Benchmark: the live fusion with one camera whose pictures arrive late.

A camera's frames are stamped when its worker reads them; an RTSP stream's buffering
makes them 0.2-2 s late. Here one camera's frames are stamped ``--shift`` seconds late
(0, 0.6, 1.0 by default) and fed, as the camera workers would, to the live fusion
service (``tests/support/lagging_cameras.py``), which fuses at the recording's frame
rate:

- WILDTRACK's seven cameras, degraded boxes (seed 0), ``--camera`` late (default
  cvlab3): floor IDF1 at 1 m, identity switches, fused track ids for the ground
  truth's people, people reported / present per frame, visits built, and each
  camera's learnt delay;
- the small synthetic room (``edge.evaluation.synthetic_room``, 4 cameras, 15 people,
  3 frames/s, seed 0), cam2 late: the same figures.

    .venv/bin/python scripts/bench_camera_delays.py [--json] [--quick]

Run it on an older checkout with ``PYTHONPATH=<that checkout>`` for the figures
before (the learnt delays then read null).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from checkout_venv import SHARED, bench_parser, enter, print_figures

enter(__file__)

import yaml  # noqa: E402

from edge.config import parse_site  # noqa: E402
from edge.evaluation.floor_tracks import evaluate_floor_tracks, read_floor_rows  # noqa: E402
from edge.evaluation.multicam import Degradation, wildtrack_site, write_degraded  # noqa: E402
from edge.evaluation.synthetic_room import Room, make_room  # noqa: E402
from edge.runtime.schema import open_database  # noqa: E402
from edge.visits.analysis import VisitAnalyzer  # noqa: E402
from edge.visits.builder import build_visits  # noqa: E402
from tests.support.lagging_cameras import camera_frames, fuse_live, fused_rows  # noqa: E402

WILDTRACK = SHARED / "multicam" / "wildtrack-train"


def scene(site_dict: dict, detections: dict, truth: Path, late: str, shift: float,
          folder: Path) -> dict[str, object]:
    """One replay through the live fusion service with camera ``late`` ``shift`` s late."""
    fps = float(site_dict["cameras"][0]["fps"])
    site_dict = {**site_dict, "fusion": {**site_dict.get("fusion", {}), "rate_fps": fps}}
    site = parse_site(yaml.safe_dump(site_dict), source="bench")
    db = open_database(folder / f"{late}-{shift}.db")
    worker = fuse_live(site, db, camera_frames(site, detections, {late: shift}))
    assert worker.run_id is not None
    build_visits(db, VisitAnalyzer(site), run_id=worker.run_id)
    figures = evaluate_floor_tracks(read_floor_rows(truth), fused_rows(db, worker.run_id, fps))
    delays = getattr(worker.stage, "delays", None)
    return {
        "idf1": round(float(figures["IDF1"]), 4),
        "id_switches": int(figures["id_switches"]),
        "track_ids": int(figures["tracker_ids"]),
        "people_ids": int(figures["gt_ids"]),
        "reported_per_frame": round(float(figures["people_reported_per_frame"]), 2),
        "present_per_frame": round(float(figures["people_present_per_frame"]), 2),
        "occupancy_error": round(float(figures["occupancy_error"]), 4),
        "visits": db.execute("select count(*) from visits where run_id = ?",
                             [worker.run_id]).fetchone()[0],
        "learnt_delay_s": None if delays is None else round(delays.estimates()[late], 3),
        "other_delays_max_s": None if delays is None else round(max(
            d for c, d in delays.estimates().items() if c != late), 3),
    }


def main() -> int:
    parser = bench_parser(__doc__, quick="WILDTRACK only, shifts 0 and 0.6 s")
    parser.add_argument("--camera", default="cvlab3", help="the WILDTRACK camera made late")
    parser.add_argument("--shift", type=float, action="append",
                        help="seconds late (repeatable; default 0, 0.6, 1.0)")
    args = parser.parse_args()
    shifts = args.shift or ([0.0, 0.6] if args.quick else [0.0, 0.6, 1.0])
    figures: dict[str, object] = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        paths = write_degraded(WILDTRACK, folder / "degraded", Degradation(seed=0))
        for shift in shifts:
            result = scene(wildtrack_site(WILDTRACK), paths, WILDTRACK / "gt" / "floor.txt",
                           args.camera, shift, folder)
            figures.update({f"wildtrack_{args.camera}_{shift:g}s_{k}": v
                            for k, v in result.items()})
        if not args.quick:
            site, room_paths, truth = make_room(Room(seed=0), folder / "room")
            for shift in shifts:
                result = scene(site, room_paths, truth, "cam2", shift, folder)
                figures.update({f"room_cam2_{shift:g}s_{k}": v for k, v in result.items()})
    return print_figures(figures, args.json)


if __name__ == "__main__":
    sys.exit(main())
