"""``edge eval``: accuracy against ground truth."""

from __future__ import annotations

import json
from pathlib import Path

import click

from edge.cli.options import db_option, load_site_option, resolve_db_path
from edge.errors import StorageError
from edge.evaluation.floor import evaluate_floor
from edge.evaluation.mot import evaluate_mot_files
from edge.storage import open_database


@click.group("eval")
def eval_group() -> None:
    """Measure accuracy against ground truth."""


@eval_group.command("mot")
@click.option("--gt", "gt_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Ground truth in MOTChallenge format (gt.txt).")
@click.option("--tracks", "tracks_path", required=True,
              type=click.Path(dir_okay=False, path_type=Path),
              help="Tracks in MOTChallenge format (edge replay --mot-out).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def eval_mot(gt_path: Path, tracks_path: Path, as_json: bool) -> None:
    """HOTA (trackeval), MOTA and IDF1 (motmetrics, IoU 0.5) of TRACKS against GT."""
    metrics = evaluate_mot_files(gt_path, tracks_path)
    if as_json:
        click.echo(json.dumps(metrics))
        return
    for name in ("HOTA", "DetA", "AssA", "MOTA", "MOTP", "IDF1", "IDP", "IDR"):
        click.echo(f"{name:>16}  {metrics[name]:.4f}")
    for name in ("id_switches", "false_positives", "misses", "gt_ids", "tracker_ids", "frames"):
        click.echo(f"{name:>16}  {metrics[name]}")


@eval_group.command("floor")
@click.option("--gt", "gt_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Ground truth in MOTChallenge format with world coordinates (gt.txt).")
@db_option
@click.option("--run", "run_id", type=int, help="Replay run to evaluate (default: the latest).")
@click.option("--frame-offset", default=1, show_default=True,
              help="Added to our 0-based frame index to get the ground truth's frame number.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def eval_floor(
    gt_path: Path, db_path: Path | None, run_id: int | None, frame_offset: int, as_json: bool
) -> None:
    """Floor-position error of a replay run (its stored floor positions) against the
    ground truth's world coordinates, in metres, over tracks matched to GT boxes by IoU."""
    path = db_path if db_path is not None else resolve_db_path(None, load_site_option(None))
    if not path.is_file():
        raise StorageError(f"database {path} does not exist; run `edge replay` first")
    accuracy = evaluate_floor(gt_path, open_database(path), run_id, frame_offset)
    if as_json:
        click.echo(json.dumps(accuracy.as_dict()))
        return
    for name, value in accuracy.as_dict().items():
        shown = f"{value:.3f}" if isinstance(value, float) else str(value)
        click.echo(f"{name:>16}  {shown}")
