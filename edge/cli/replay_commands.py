"""``edge replay``: a recorded video (or det.txt) into floor trajectories."""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path

import click
from tqdm import tqdm

from edge.cli.options import db_option, load_site_option, resolve_db_path, site_option
from edge.replay import replay
from edge.storage import open_database
from edge.visits.analysis import VisitAnalyzer
from edge.visits.builder import build_visits


def _parse_start(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"expected an ISO 8601 time such as 2026-11-23T10:00:00+00:00, got {value!r}")
    if moment.tzinfo is None:
        raise click.BadParameter("give a time zone, e.g. 2026-11-23T10:00:00+00:00")
    return moment.timestamp()


@click.command("replay")
@click.argument("video", required=False)
@site_option
@db_option
@click.option("--camera", "camera_id", help="Camera of the site config (default: the first).")
@click.option("--detections", type=click.Path(dir_okay=False, path_type=Path),
              help="Track a MOTChallenge det.txt instead of running the detector.")
@click.option("--mot-out", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write the tracks in MOTChallenge format (frames from 1).")
@click.option("--start-time", help="Wall-clock time of the first frame, ISO 8601 (default: now).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def replay_command(
    video: str | None,
    site_path: Path | None,
    db_path: Path | None,
    camera_id: str | None,
    detections: Path | None,
    mot_out: Path | None,
    start_time: str | None,
    quiet: bool,
) -> None:
    """Replay VIDEO (default: the camera's configured source) through detection,
    tracking and calibration, writing floor trajectories to the database.

    With no arguments, replays the embedded demo: the PETS09-S2L1 sample recording.
    """
    site = load_site_option(site_path)
    visits = VisitAnalyzer(site)  # before the replay, so a bad segment spec fails fast
    path = resolve_db_path(db_path, site)
    db = open_database(path)
    bar = tqdm(unit="frame", disable=quiet or None, file=sys.stderr, leave=False)

    def progress(done: int, total: int | None) -> None:
        if total and bar.total != total:
            bar.total = total
        bar.update(done - bar.n)

    try:
        summary = replay(
            site,
            db,
            camera_id=camera_id,
            video=video,
            detections=detections,
            mot_out=mot_out,
            start_time=_parse_start(start_time),
            progress=progress,
        )
    finally:
        bar.close()
    click.echo(
        f"Replayed {summary.frames} frames of camera {summary.camera_id} in "
        f"{summary.seconds:.1f} s ({summary.fps:.1f} frames/s): {summary.tracks} people tracked, "
        f"{summary.track_points} floor positions written to {path} (run {summary.run_id})."
    )
    click.echo(
        f"Per frame: detector {summary.detect_ms_per_frame:.1f} ms, "
        f"tracker {summary.track_ms_per_frame:.2f} ms."
    )
    if summary.read_failures:
        click.echo(f"Warning: {summary.read_failures} frames could not be decoded and were skipped.")
    if mot_out:
        click.echo(f"Tracks in MOTChallenge format: {mot_out}")
    built = build_visits(db, visits, run_id=summary.run_id)
    click.echo(f"Visits: {built.visits} (spec {built.spec_version}), "
               f"{built.crossings} line crossings.")
