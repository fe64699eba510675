"""``edge eval``: accuracy against ground truth."""

from __future__ import annotations

import json
import os
from pathlib import Path

import click

from edge.cli.options import (
    FiniteFloatRange,
    db_option,
    json_safe,
    load_site_option,
    resolve_db_path,
    site_option,
)
from edge.config import load_site
from edge.evaluation.clear_mot import FrameRange
from edge.evaluation.floor import evaluate_floor
from edge.evaluation.floor_tracks import DEFAULT_GATE_M, evaluate_floor_tracks, read_floor_rows
from edge.evaluation.mot import (
    coverage_hint,
    evaluate_mot,
    frame_coverage_hint,
    require_run_boxes,
    scene_hint,
)
from edge.motformat import read_mot
from edge.paths import default_site_config, share_dir
from edge.runtime.schema import open_database
from edge.storage.trajectories import latest_finished_run


def _echo_json(value: object) -> None:
    """Print ``value`` as one JSON object: an undefined figure (NaN, e.g. MOTP with no
    match) is null, never the ``NaN`` that JSON parsers refuse."""
    click.echo(json.dumps(json_safe(value), allow_nan=False))


class FrameRangeType(click.ParamType):
    """``FIRST-LAST``: MOTChallenge frame numbers, from 1, both included."""

    name = "FIRST-LAST"

    def convert(self, value: object, param: click.Parameter | None,
                ctx: click.Context | None) -> FrameRange:
        if isinstance(value, tuple):
            return value  # type: ignore[return-value]
        first, sep, last = str(value).strip().partition("-")
        if not (sep and first.isdigit() and last.isdigit()):
            self.fail(f"expected FIRST-LAST frame numbers such as 1-150, got {value!r}",
                      param, ctx)
        start, end = int(first), int(last)
        if start < 1 or end < start:
            self.fail(f"expected 1 <= FIRST <= LAST, got {value!r}", param, ctx)
        return start, end


@click.group("eval")
def eval_group() -> None:
    """Measure accuracy against ground truth."""


@eval_group.command("mot")
@click.option("--gt", "gt_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Ground truth in MOTChallenge format (gt.txt).")
@click.option("--tracks", "tracks_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Tracks in MOTChallenge format (edge replay --mot-out). Without it, a "
                   "replay run stored in the database (--db, --run) is scored.")
@db_option
@click.option("--run", "run_id", type=int,
              help="Without --tracks: the stored replay run to score, from its boxes in "
                   "track_points (default: the latest finished run).")
@click.option("--frames", "frames", type=FrameRangeType(), default=None,
              help="Score only these ground-truth frames, e.g. 1-150 after "
                   "`edge replay --max-frames 150` (default: all of the ground truth's).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def eval_mot(gt_path: Path, tracks_path: Path | None, db_path: Path | None,
             run_id: int | None, frames: FrameRange | None, as_json: bool) -> None:
    """HOTA (trackeval), MOTA and IDF1 (motmetrics, IoU 0.5) of TRACKS, or of a stored
    replay run, against GT.

    Every ground-truth frame is scored unless --frames says otherwise; when the tracks
    end before the ground truth, a note on stderr says so, as it does when they run past
    its end or barely overlap it (another recording's ground truth?). A store-wide run fused from
    several cameras has no image boxes and is refused: score its cameras' runs."""
    gt = read_mot(gt_path)
    if tracks_path is not None:
        if db_path is not None or run_id is not None:
            raise click.UsageError("--tracks scores a file: drop --db and --run")
        tracks = read_mot(tracks_path)
    else:
        site = load_site_option(None) if db_path is None else None
        db = open_database(resolve_db_path(db_path, site, must_exist=True))
        tracks = require_run_boxes(db, latest_finished_run(db) if run_id is None else run_id)
    metrics = evaluate_mot(gt, tracks, frames)
    hints = [coverage_hint(gt, tracks) if frames is None else None,
             scene_hint(gt, tracks, metrics)]
    for hint in hints:
        if hint is not None:
            click.echo(f"Note: {hint}{'' if hint.endswith('?') else '.'}", err=True)
    if as_json:
        _echo_json(metrics)
        return
    for name in ("HOTA", "DetA", "AssA", "MOTA", "MOTP", "IDF1", "IDP", "IDR"):
        click.echo(f"{name:>16}  {metrics[name]:.4f}")
    for name in ("id_switches", "false_positives", "misses", "gt_ids", "tracker_ids", "frames"):
        click.echo(f"{name:>16}  {metrics[name]}")


@eval_group.command("floor")
@click.option("--gt", "gt_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Ground truth: MOTChallenge gt.txt with world coordinates; with --tracks, "
                   "floor rows frame,id,x,y.")
@click.option("--tracks", "tracks_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Floor tracks frame,track_id,x,y (edge replay --floor-out): score identities "
                   "and occupancy on the floor.")
@click.option("--gate", "gate_m", type=FiniteFloatRange(min=0.01, max=100.0),
              default=DEFAULT_GATE_M, show_default=True,
              help="With --tracks: a track and a true person farther apart (metres) never match.")
@db_option
@click.option("--run", "run_id", type=int, help="Replay run to evaluate (default: the latest).")
@click.option("--frame-offset", default=1, show_default=True,
              help="Added to our 0-based frame index to get the ground truth's frame number.")
@click.option("--frames", "frames", type=FrameRangeType(), default=None,
              help="With --tracks: score only these ground-truth frames, e.g. 1-150 after "
                   "`edge replay --max-frames 150` (default: all of the ground truth's).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def eval_floor(
    gt_path: Path, tracks_path: Path | None, gate_m: float, db_path: Path | None,
    run_id: int | None, frame_offset: int, frames: FrameRange | None, as_json: bool
) -> None:
    """Floor accuracy against ground truth.

    With --tracks: floor IDF1, MOTA and identity switches at a floor-distance gate
    (py-motmetrics), and the occupancy error (mean over frames of |people reported -
    people present| / people present). Without: the floor-position error of a replay
    run's stored positions against the ground truth's world coordinates, in metres,
    over tracks matched to GT boxes by IoU.

    With --tracks, every ground-truth frame is scored unless --frames says otherwise;
    when the tracks end before the ground truth, a note on stderr says so."""
    if tracks_path is not None:
        if db_path is not None or run_id is not None:
            raise click.UsageError("--tracks scores a file: drop --db and --run")
        gt, tracks = read_floor_rows(gt_path), read_floor_rows(tracks_path)
        metrics = evaluate_floor_tracks(gt, tracks, gate_m, frames)
        hint = frame_coverage_hint(gt[:, 0], tracks[:, 0]) if frames is None else None
        if hint is not None:
            click.echo(f"Note: {hint}.", err=True)
        if as_json:
            _echo_json(metrics)
            return
        for name, value in metrics.items():
            shown = f"{value:.4f}" if isinstance(value, float) else str(value)
            click.echo(f"{name:>26}  {shown}")
        return
    if frames is not None:
        raise click.UsageError("--frames goes with --tracks")
    site = load_site_option(None) if db_path is None else None
    path = resolve_db_path(db_path, site, must_exist=True)
    accuracy = evaluate_floor(gt_path, open_database(path), run_id, frame_offset)
    if as_json:
        _echo_json(accuracy.as_dict())
        return
    for name, value in accuracy.as_dict().items():
        shown = f"{value:.3f}" if isinstance(value, float) else str(value)
        click.echo(f"{name:>16}  {shown}")


def _default_shared() -> Path:
    """``$EDGE_ASSETS_DIR``, else ``shared/`` beside a source checkout."""
    if os.environ.get("EDGE_ASSETS_DIR"):
        return Path(os.environ["EDGE_ASSETS_DIR"])
    return share_dir().parent / "shared"


@eval_group.command("suite")
@click.argument("sections", nargs=-1, metavar="[SECTION]...")
@click.option("--json", "as_json", is_flag=True,
              help="Print one JSON object: figure name -> number (null: undefined).")
@click.option("--site", "site_path", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="Site config of the PETS demo (default: the embedded one).")
@click.option("--shared", "shared", type=click.Path(file_okay=False, path_type=Path),
              default=None, help="The shared ground truth and recordings. Default: "
              "$EDGE_ASSETS_DIR, else shared/ beside the checkout.")
@click.option("--max-frames", type=click.IntRange(min=1), default=None,
              help="video section: replay only this many frames (a quick look; figures are "
                   "then for those frames only).")
def eval_suite(sections: tuple[str, ...], as_json: bool, site_path: Path | None,
               shared: Path | None, max_frames: int | None) -> None:
    """Every accuracy figure of the project against the shared ground truth.

    SECTION (default all; figure names in docs/report.md): reference (the evaluator on
    py-motmetrics' TUD-Campus data), tracker (our tracker alone on the PETS det.txt,
    and supervision's ByteTrack), wifi (Brno occupancy correlation, single-phone
    device counts), video (`edge replay` of the PETS recording: HOTA, IDF1, MOTA, ID
    switches, floor error, dwell error, entrance-line recall)."""
    from edge.evaluation.suite import SECTIONS, run

    chosen = list(sections) or list(SECTIONS)
    unknown = sorted(set(chosen) - set(SECTIONS))
    if unknown:
        raise click.UsageError(
            f"unknown section {', '.join(unknown)}; known: {', '.join(SECTIONS)}")
    site = load_site(site_path or default_site_config())
    figures = run(site, shared or _default_shared(), chosen, max_frames=max_frames,
                  progress=lambda name: click.echo(f"evaluate {name}...", err=True))
    if as_json:
        _echo_json(figures)
        return
    width = max((len(name) for name in figures), default=10)
    for name, value in figures.items():
        click.echo(f"{name:<{width}}  {'-' if value is None else value}")


def _seed_list(_ctx: click.Context, _param: click.Parameter, value: str) -> tuple[int, ...]:
    try:
        seeds = tuple(int(part) for part in value.split(",") if part.strip())
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a comma-separated list of whole "
                                 "numbers, e.g. 3,4,5,6") from None
    if not seeds:
        raise click.BadParameter("give at least one seed, e.g. 1,2")
    return seeds


@eval_group.command("visits")
@click.option("--gt", "gt_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Ground truth with floor positions: a gt.txt with floor coordinates in "
                   "columns 8-9 (as PETS09-S2L1), or rows frame,id,x,y (as WILDTRACK's "
                   "gt/floor.txt).")
@site_option
@db_option
@click.option("--run", "run_id", type=int, default=None, help="Replay run (default: the latest).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("--pairs", is_flag=True, help="Also list dwell per (person, zone).")
@click.option("--random-layouts", "random_layouts", is_flag=True,
              help="Instead of the site's zones and lines, score 24 random counting lines and "
                   "12 random zones per seed across the floor the camera sees.")
@click.option("--seeds", default="1,2", show_default=True, callback=_seed_list,
              help="With --random-layouts: the layouts' seeds, comma-separated (1 and 2 chose "
                   "the settings; 3-6 were never used to).")
@click.option("--groups", is_flag=True,
              help="Instead, score shopping groups: precision and recall of pairs of people "
                   "put in one group, against groups in the ground truth (1.0 m rule).")
def eval_visits(
    gt_path: Path,
    site_path: Path | None,
    db_path: Path | None,
    run_id: int | None,
    as_json: bool,
    pairs: bool,
    random_layouts: bool,
    seeds: tuple[int, ...],
    groups: bool,
) -> None:
    """Zone dwell and entrance-line crossings of a replay (its track points) against
    ground-truth floor positions: median relative dwell error per (person, zone),
    and recall of gt line crossings.

    A partial replay (--max-frames) is measured against the ground truth of the frames
    it covered, as in the report; a note on stderr says so."""
    from edge.evaluation.accuracy import coverage_note, covered_frames, ground_truth_of_frames
    from edge.evaluation.floor import read_floor_truth
    from edge.evaluation.visits import evaluate_visits, latest_run_id

    site = load_site_option(site_path)
    path = resolve_db_path(db_path, site, must_exist=True)
    gt = read_floor_truth(gt_path)
    db = open_database(path)
    run = run_id if run_id is not None else latest_run_id(db)
    last_frame = covered_frames(db, run)
    note = coverage_note(gt, last_frame)
    if note is not None:
        click.echo(f"Note: {note}.", err=True)
    covered = ground_truth_of_frames(gt, last_frame, gt_path.name)
    if groups:
        from edge.evaluation.groups import evaluate_groups

        scores = evaluate_groups(site, covered, db, run_id=run)
        if as_json:
            _echo_json(scores)
        for name, value in scores.items() if not as_json else ():
            click.echo(f"{name:>20}  {value:.4f}" if isinstance(value, float) else
                       f"{name:>20}  {value}")
        return
    if random_layouts:
        from edge.evaluation.layouts import evaluate_layouts

        figures = evaluate_layouts(site, covered, db, run_id=run, seeds=seeds).metrics
        if as_json:
            _echo_json(dict(figures))
        for name, value in figures.items() if not as_json else ():
            click.echo(f"{name:>36}  {value:.4f}" if isinstance(value, float) else
                       f"{name:>36}  {value}")
        return
    report = evaluate_visits(site, covered, db, run_id=run)
    if as_json:
        payload: dict = dict(report.metrics)
        if pairs:
            payload["pairs"] = report.pairs
        _echo_json(payload)
        return
    for name, value in report.metrics.items():
        click.echo(f"{name:>30}  {value:.4f}" if isinstance(value, float) else
                   f"{name:>30}  {value}")
    if pairs:
        for row in report.pairs:
            click.echo(f"person {row['person']:>3} {row['zone']:>14}: gt {row['gt_s']:6.1f} s, "
                       f"measured {row['measured_s']:6.1f} s")
