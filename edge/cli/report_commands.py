"""``edge report``: the engineers' HTML report of a replay run already in a database."""

from __future__ import annotations

from pathlib import Path

import click

from edge.cli.options import db_option, load_site_option, resolve_db_path, site_option
from edge.evaluation.accuracy import Accuracy
from edge.report.build import ReportPlan, make_report, plan_report
from edge.report.data import ReportData
from edge.runtime.schema import open_database
from edge.storage.trajectories import latest_finished_run

KEEP_LOCAL = "it contains movement paths: keep it local, never send it anywhere"


def echo_report(plan: ReportPlan, data: ReportData, accuracy: Accuracy | None,
                sensor: str | None) -> None:
    """The lines ``edge report`` and ``edge replay --report`` print."""
    if sensor is not None:
        windows = len(data.wifi.get(sensor, []))
        click.echo(f"Wi-Fi: {plan.pcap} replayed into the database as sensor {sensor} "
                   f"({windows} windows of {data.wifi_window_s} s in the report).")
    if accuracy is not None:
        mot = accuracy.mot
        line = (f"Against {accuracy.gt_name}: HOTA {mot['HOTA']:.3f}, IDF1 {mot['IDF1']:.3f}, "
                f"MOTA {mot['MOTA']:.3f}, {mot['id_switches']} ID switches")
        if accuracy.floor is not None:
            line += f"; floor error median {accuracy.floor['median_m']:.3f} m"
        click.echo(line + ".")
        for note in accuracy.notes:
            click.echo(f"Note: {note}{'' if note.endswith('?') else '.'}")
    click.echo(f"Report of run {data.run.id}: {plan.out} ({KEEP_LOCAL}).")


@click.command("report")
@db_option
@site_option
@click.option("--out", "out", required=True, type=click.Path(path_type=Path),
              help="The HTML file to write (one self-contained file).")
@click.option("--gt", "gt_path", type=click.Path(path_type=Path),
              help="Ground truth in MOTChallenge format (gt.txt, world coordinates in columns "
                   "8-9 for floor, dwell and line-count accuracy).")
@click.option("--run", "run_id", type=int, help="Replay run to report (default: the latest).")
def report_command(
    db_path: Path | None, site_path: Path | None, out: Path, gt_path: Path | None,
    run_id: int | None,
) -> None:
    """Write an engineer's HTML report of a replay run: heat map, movement paths, dwell
    per zone, footfall, trait and segment mix, Wi-Fi windows, and accuracy against
    ground truth when --gt is given. The report holds per-person paths: keep it local."""
    site = load_site_option(site_path)
    path = resolve_db_path(db_path, site, must_exist=True)
    plan = plan_report(out, gt_path)
    db = open_database(path)
    chosen = run_id if run_id is not None else latest_finished_run(db)
    echo_report(plan, *make_report(plan, db, site, chosen))
