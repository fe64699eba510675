"""``edge eval``: accuracy against ground truth."""

from __future__ import annotations

import json
from pathlib import Path

import click

from edge.evaluation.mot import evaluate_mot_files


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
