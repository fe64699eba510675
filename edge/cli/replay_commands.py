"""``edge replay``: a recorded video (or det.txt) into floor trajectories."""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import click
from tqdm import tqdm

from edge.cli.options import (
    db_option,
    load_site_option,
    resolve_db_path,
    sigterm_stops,
    site_option,
)
from edge.cli.report_commands import echo_report
from edge.config import SiteConfig
from edge.debug_modes import announce_debug_mode, refuse_under_service
from edge.errors import SourceError
from edge.fusion.pair_check import MIN_OVERLAP_SAMPLES, PairHealth
from edge.motformat import read_mot
from edge.replay import frames_to_cover, replay
from edge.replay_store import replay_store
from edge.report.build import make_report, plan_report
from edge.runtime.schema import open_database
from edge.video import check_video_file
from edge.visits.analysis import VisitAnalyzer
from edge.visits.builder import build_visits


def _progress(bar: tqdm) -> Callable[[int, int | None], None]:
    """A replay's ``progress(done, total)`` shown on ``bar``."""

    def progress(done: int, total: int | None) -> None:
        if total and bar.total != total:
            bar.total = total
        bar.update(done - bar.n)

    return progress


CAMERA_ID = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")


def _parse_start(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(
            f"expected an ISO 8601 time such as 2026-11-23T10:00:00+00:00, got {value!r}"
        ) from None
    if moment.tzinfo is None:
        raise click.BadParameter("give a time zone, e.g. 2026-11-23T10:00:00+00:00")
    return moment.timestamp()


@click.command("replay")
@click.argument("video", required=False)
@site_option
@db_option
@click.option("--camera", "camera_id", help="Camera of the site config (default: the first).")
@click.option("--detections", "detection_args", multiple=True, metavar="[CAMERA=]det.txt",
              help="Track a MOTChallenge det.txt instead of running the detector; on a site "
                   "with several cameras, CAMERA=det.txt for each (repeatable).")
@click.option("--floor-out", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write the floor tracks (store-wide when several cameras are fused) "
                   "as frame,track_id,x,y rows (metres, frames from 1).")
@click.option("--mot-out", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write the tracks in MOTChallenge format (frames from 1).")
@click.option("--start-time", help="Wall-clock time of the first frame, ISO 8601 "
              "(default: the recording as if it had just ended).")
@click.option("--max-frames", type=click.IntRange(min=1), help="Stop after this many frames.")
@click.option("--annotate", type=click.Path(path_type=Path),
              help="Also write the recording with boxes, track ids, zones, counting lines and "
                   "each person's zone and dwell, as an mp4. People are pixelated.")
@click.option("--no-blur", is_flag=True,
              help="DEBUG MODE: do not pixelate people in --annotate's video. Only for your "
                   "own test footage; refused under systemd; announced loudly.")
@click.option("--report", "report_path", type=click.Path(path_type=Path),
              help="Also write an HTML report of the run (heat map, paths, dwell, footfall, "
                   "mix; it holds movement paths: keep it local).")
@click.option("--gt", "gt_path", type=click.Path(path_type=Path),
              help="With --report: ground truth (MOTChallenge gt.txt) to measure the run against.")
@click.option("--pcap", type=click.Path(path_type=Path),
              help="With --report: a Wi-Fi capture to replay into the same database and show.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@sigterm_stops
def replay_command(
    video: str | None,
    site_path: Path | None,
    db_path: Path | None,
    camera_id: str | None,
    detection_args: tuple[str, ...],
    floor_out: Path | None,
    mot_out: Path | None,
    start_time: str | None,
    max_frames: int | None,
    annotate: Path | None,
    no_blur: bool,
    report_path: Path | None,
    gt_path: Path | None,
    pcap: Path | None,
    quiet: bool,
) -> None:
    """Replay VIDEO (default: the camera's configured source) through detection,
    tracking and calibration, writing floor trajectories to the database.

    With no arguments, replays the embedded demo: the PETS09-S2L1 sample recording.
    On a site with several cameras and no VIDEO (nor --camera), replays every camera
    together on one clock and fuses them into one floor track per person.
    """
    site = load_site_option(site_path)
    per_camera = parse_detections(detection_args, site)
    for det in per_camera.values():
        read_mot(det)  # a det file that does not parse fails before the database is made
    if video is None and camera_id is None and site.fuses_cameras:
        _replay_store(site, db_path, per_camera, floor_out, mot_out, start_time, max_frames,
                      annotate, report_path, quiet)
        return
    if per_camera and len(per_camera) > 1:
        raise click.UsageError("one camera is replayed: give one --detections")
    detections = next(iter(per_camera.values()), None)
    named = next((name for name in per_camera if name), None)
    if named is not None:
        if camera_id is not None and camera_id != named:
            raise click.UsageError(f"--detections is for camera {named}, --camera is {camera_id}")
        camera_id = named
    if no_blur and annotate is None:
        raise click.UsageError("--no-blur only applies to --annotate's video")
    if (gt_path is not None or pcap is not None) and report_path is None:
        raise click.UsageError("--gt and --pcap go with --report")
    if annotate is not None and detections is not None:
        raise click.UsageError("--annotate needs the video's frames; drop --detections")
    if no_blur:
        refuse_under_service("--no-blur")
    visits = VisitAnalyzer(site)  # before the replay, so a bad segment spec fails fast
    # Every output and input checked before minutes of replay, not after; the ground
    # truth against the frames this replay will cover, too.
    plan = None
    if report_path is not None:
        frames = frames_to_cover(site, camera_id=camera_id, video=video, detections=detections,
                                 max_frames=max_frames) if gt_path is not None else None
        plan = plan_report(report_path, gt_path, pcap, frames=frames)
    if detections is None and site.cameras:  # a missing file fails before the database
        camera = site.camera(camera_id) if camera_id else site.cameras[0]
        check_video_file(camera.id, video or camera.source)
    path = resolve_db_path(db_path, site)
    db = open_database(path)
    if no_blur:  # recorded in this replay's database: its status page shows the banner
        announce_debug_mode("no-blur", f"people are NOT pixelated in the video {annotate}", db)
    bar = tqdm(unit="frame", disable=quiet or None, file=sys.stderr, leave=False)
    progress = _progress(bar)
    try:
        summary = replay(
            site,
            db,
            camera_id=camera_id,
            video=video,
            detections=detections,
            mot_out=mot_out,
            floor_out=floor_out,
            start_time=_parse_start(start_time),
            progress=progress,
            max_frames=max_frames,
            annotate=annotate,
            pixelate_people=not no_blur,
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
    if summary.outside_area:
        click.echo(
            f"{summary.outside_area} detections outside the camera's floor_area were ignored."
        )
    if summary.read_failures:
        click.echo(
            f"Warning: {summary.read_failures} frames could not be decoded and were skipped.",
            err=True,
        )
    if mot_out:
        click.echo(f"Tracks in MOTChallenge format: {mot_out}")
    if floor_out:
        click.echo(f"Floor tracks (frame,track_id,x,y): {floor_out}")
    built = build_visits(db, visits, run_id=summary.run_id)
    click.echo(f"Visits: {built.visits} (spec {built.spec_version}), "
               f"{built.crossings} line crossings.")
    if annotate is not None:
        blurred = "people NOT pixelated (debug mode)" if no_blur else "people pixelated"
        click.echo(f"Annotated video: {annotate} ({summary.annotated_frames} frames, {blurred}).")
    if plan is not None:
        echo_report(plan, *make_report(plan, db, site, summary.run_id))
    if summary.ended_early:
        # What could be read is kept (and its visits built); the exit status still tells
        # a script it was not all.
        # The decoder skips a damaged stretch unseen and numbers the frames after it as
        # if none were missing (OpenCV counts the frames it could read; an AVI's
        # timestamps are renumbered too), so where frames are missing is not known.
        raise SourceError(
            f"the recording ended after {summary.frames} of the {summary.expected_frames} "
            f"frames {'asked for' if max_frames else 'its header announces'} (truncated or "
            f"damaged file?); the {summary.frames} "
            f"frames read were processed and saved as run {summary.run_id}. Frames may be "
            "missing anywhere, not only at the end: after a damaged stretch every frame "
            "number and time is early by the frames lost, so an evaluation against ground "
            "truth is unreliable from there"
        )


def parse_detections(values: tuple[str, ...], site: SiteConfig) -> dict[str, Path]:
    """``--detections`` values as camera id -> det.txt. A bare path is the replayed
    camera's (``--camera``, else the first); ``CAMERA=path`` names the camera."""
    known = {c.id for c in site.cameras}
    per_camera: dict[str, Path] = {}
    for value in values:
        name, sep, path = value.partition("=")
        if sep and CAMERA_ID.fullmatch(name):
            if name not in known:
                raise click.BadParameter(
                    f"{name!r} is not a camera of the site (cameras: "
                    f"{', '.join(sorted(known)) or 'none'})", param_hint="--detections")
            if name in per_camera:
                raise click.BadParameter(f"camera {name} is given twice",
                                         param_hint="--detections")
            per_camera[name] = Path(path)
        else:
            if len(values) > 1:
                raise click.BadParameter(
                    f"{value!r}: with several --detections, name each camera: CAMERA=det.txt",
                    param_hint="--detections")
            per_camera[""] = Path(value)
    return per_camera


def _replay_store(
    site: SiteConfig,
    db_path: Path | None,
    detections: dict[str, Path],
    floor_out: Path | None,
    mot_out: Path | None,
    start_time: str | None,
    max_frames: int | None,
    annotate: Path | None,
    report_path: Path | None,
    quiet: bool,
) -> None:
    """Every camera of the site together, fused into store-wide tracks."""
    if "" in detections:
        raise click.UsageError(
            f"the site has {len(site.cameras)} cameras: name each det.txt's camera, e.g. "
            f"--detections {site.cameras[0].id}=det.txt")
    for option, value in (("--mot-out", mot_out), ("--annotate", annotate),
                          ("--report", report_path)):
        if value is not None:
            raise click.UsageError(
                f"{option} is for one camera's recording: add --camera ID to replay that "
                "camera alone")
    visits = VisitAnalyzer(site)
    for recorded in site.cameras:  # a missing file fails before the database is made
        if recorded.id not in detections:
            check_video_file(recorded.id, recorded.source)
    path = resolve_db_path(db_path, site)
    db = open_database(path)
    bar = tqdm(unit="frame", disable=quiet or None, file=sys.stderr, leave=False)
    progress = _progress(bar)
    try:
        summary = replay_store(site, db, detections=detections, floor_out=floor_out,
                               start_time=_parse_start(start_time), max_frames=max_frames,
                               progress=progress)
    finally:
        bar.close()
    frames = ", ".join(f"{c} {n}" for c, n in summary.camera_frames.items())
    click.echo(
        f"Replayed {len(summary.cameras)} cameras together ({frames} frames) in "
        f"{summary.seconds:.1f} s: {summary.tracks} people tracked store-wide over "
        f"{summary.frames} fused frames, {summary.track_points} floor positions written to "
        f"{path} (run {summary.run_id})."
    )
    for camera in summary.lonely_cameras:
        click.echo(f"Warning: camera {camera}'s view overlaps no other camera's; people "
                   "walking between it and the others are followed by motion alone.", err=True)
    for pair, check in summary.calibration_health.items():
        click.echo(calibration_check_line(pair, check))
    if floor_out:
        click.echo(f"Floor tracks (frame,track_id,x,y): {floor_out}")
    built = build_visits(db, visits, run_id=summary.run_id)
    click.echo(f"Visits: {built.visits} (spec {built.spec_version}), "
               f"{built.crossings} line crossings.")


def calibration_check_line(pair: tuple[str, str], check: PairHealth) -> str:
    """The replay's line about one camera pair's calibration check: the matched distance
    and the share of the people where both look that only one saw; when the pair
    disagrees, that first, with what to do (the matched distance then understates the
    error: it is taken over the few people still matched)."""
    a, b = pair
    if check.disagrees:
        apart = ("no person was matched across them" if check.median_m is None else
                 f"the median of the {check.matched} distances where they did match a "
                 f"person, {check.median_m:.2f} m, understates it: those counted twice are "
                 "left out")
        return (f"Calibration check {a}-{b}: FAILED: {check.unmatched_share:.0%} of the "
                f"{check.overlap} people sampled where both cameras look were seen by one "
                f"only: the two calibrations disagree and people there are counted twice "
                f"({apart}). Check both cameras' calibration: edge calibrate --footprints "
                "PLAN.png shows where each sees the floor; refit the one that is off with "
                "edge calibrate PICTURE --pairs MARKS.csv.")
    if check.median_m is None:
        return f"Calibration check {a}-{b}: no person matched across the two cameras yet."
    line = (f"Calibration check {a}-{b}: the two cameras place the same person "
            f"{check.median_m:.2f} m apart (median of {check.matched})")
    if check.unmatched_share is None:
        return line + "."
    few = " (too few to judge yet)" if check.overlap < MIN_OVERLAP_SAMPLES else ""
    return (line + f"; {check.unmatched_share:.0%} of the {check.overlap} people sampled "
            f"where both look were seen by one only{few}.")
