"""``edge visits``: trajectories to visits, features, traits and segments.

Also registers ``edge eval visits`` (zone dwell and line counts against ground
truth) on the ``eval`` group, so that all accuracy checks live under ``edge eval``.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from edge.cli.options import (
    csv_argument,
    db_option,
    json_safe,
    load_site_option,
    resolve_db_path,
    site_option,
)
from edge.runtime.schema import open_database
from edge.visits.analysis import VisitAnalyzer
from edge.visits.builder import build_visits
from edge.visits.features import BASE_FEATURES, ZONE_KINDS, feature_names
from edge.visits.group_store import insert_groups
from edge.visits.importer import read_trajectory_csv
from edge.visits.store import insert_crossings, insert_staff_visits, insert_visits

spec_option = click.option(
    "--spec", "spec_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
    help="Segment spec (YAML) to classify with. Default: the site's visits.segment_spec.",
)


@click.group("visits")
def visits_group() -> None:
    """Visits: floor trajectories to zone dwell, path features and behavioural traits."""


@visits_group.command("import")
@csv_argument
@site_option
@db_option
@spec_option
@click.option("--json", "as_json", is_flag=True,
              help="Print one JSON object per visit instead of writing the database.")
@click.option("--camera", "camera_id", default="import", show_default=True,
              help="Camera id recorded with the visits written to the database.")
def import_command(
    csv_path: Path,
    site_path: Path | None,
    db_path: Path | None,
    spec_path: Path | None,
    as_json: bool,
    camera_id: str,
) -> None:
    """Import trajectories from another system: FILE.csv with columns track_id,t,x,y
    (t in seconds, x/y in metres in the site's floor frame).

    With --json, prints one JSON object per visit (track_id, features, traits,
    segments, zone dwell, line crossings); otherwise writes the visits to the
    database (with --json and --db, does both).
    """
    site = load_site_option(site_path)
    analyzer = VisitAnalyzer(site, spec_path)
    tracks = read_trajectory_csv(csv_path, bounds=site.floor.bounds)
    visits, crossings, staff, fragments = [], [], [], 0
    for track in tracks:
        outcome = analyzer.analyze_track(camera_id, None, track.track_id, track.t, track.xy)
        visits += outcome.visits
        crossings += outcome.crossings
        staff += outcome.staff
        fragments += outcome.fragments
    if as_json:
        for result in visits:
            click.echo(json.dumps(json_safe(result.to_json())))
    if not as_json or db_path is not None:
        path = resolve_db_path(db_path, site)
        db = open_database(path)
        with db.atomic():
            insert_visits(db, site.site.id, visits)
            insert_groups(db, site.visits, visits)
            insert_staff_visits(db, site.site.id, staff)
            insert_crossings(db, crossings)
        click.echo(
            f"Imported {len(tracks)} tracks from {csv_path}: {len(visits)} visits "
            f"({fragments} fragments under {site.visits.min_duration_s:g} s dropped, "
            f"{len(staff)} associates' left out), "
            f"{len(crossings)} line crossings, written to {path}.",
            err=as_json,
        )


@visits_group.command("build")
@site_option
@db_option
@spec_option
@click.option("--run", "run_id", type=int, default=None,
              help="Only this replay/live run (default: every run not yet finished).")
@click.option("--rebuild", is_flag=True, help="Delete the run's visits and build them again.")
def build_command(
    site_path: Path | None,
    db_path: Path | None,
    spec_path: Path | None,
    run_id: int | None,
    rebuild: bool,
) -> None:
    """Turn stored track positions into visits, zone dwell, traits and line crossings.

    Incremental: tracks still open (seen less than visits.close_after_s before a
    running run's latest position) are left for the next call, and so is a track that
    a new one may continue (until visits.stitch_max_gap_s more has passed).
    """
    if rebuild and run_id is None:
        raise click.BadParameter("--rebuild needs --run", param_hint="--rebuild")
    site = load_site_option(site_path)
    path = resolve_db_path(db_path, site, must_exist=True)
    summary = build_visits(open_database(path), VisitAnalyzer(site, spec_path),
                           run_id=run_id, rebuild=rebuild)
    click.echo(
        f"Built {summary.visits} visits from {summary.runs} run(s) in {path} "
        f"(spec {summary.spec_version}; {summary.fragments} fragments dropped, "
        f"{summary.crossings} line crossings, {summary.open_tracks} tracks still open)."
    )


@visits_group.command("check-spec")
@click.argument("spec_file", type=click.Path(dir_okay=False, path_type=Path))
@site_option
def check_spec_command(spec_file: Path, site_path: Path | None) -> None:
    """Validate a segment spec against a site (as the box would on hot reload)."""
    site = load_site_option(site_path)
    analyzer = VisitAnalyzer(site, spec_file)
    classifier = analyzer.spec.classifier
    click.echo(
        f"{spec_file}: spec {classifier.spec.name} version {classifier.spec_version} is valid; "
        f"traits: {', '.join(classifier.traits)}; "
        f"segments: {', '.join(classifier.segment_names) or 'none'}"
        + ("; with a trained classifier" if classifier.model is not None else "")
    )
    for warning in classifier.warnings:
        click.echo(f"Warning: {warning}", err=True)


@visits_group.command("features")
@site_option
def features_command(site_path: Path | None) -> None:
    """List the feature names a segment spec or classifier may use for a site."""
    site = load_site_option(site_path)
    tags = sorted({tag for zone in site.floor.zones for tag in zone.tags})
    for name in feature_names(tags):
        if name in BASE_FEATURES:
            click.echo(f"{name:28s} {BASE_FEATURES[name]}")
        elif name.startswith("dwell_kind_"):
            click.echo(f"{name:28s} Seconds in zones of this kind ({', '.join(ZONE_KINDS)}).")
        elif name.startswith("dwell_tag_"):
            click.echo(f"{name:28s} Seconds in zones with this tag.")
        else:
            click.echo(f"{name:28s} Fraction of the visit in zones with this tag.")


@visits_group.command("scenarios")
@spec_option
@click.option("--repeats", default=2, show_default=True, help="Copies of each behaviour mix.")
@click.option("--seed", default=0, show_default=True, help="Random seed of the suite.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def scenarios_command(spec_path: Path | None, repeats: int, seed: int, as_json: bool) -> None:
    """Score a segment spec on the labelled synthetic scenario suite: agreement and
    confusion (tp, fp, fn, tn) per trait at p >= 0.5."""
    from edge.visits.scenarios import scenario_site, scenario_suite, score_scenarios

    analyzer = VisitAnalyzer(scenario_site(), spec_path)
    table = score_scenarios(analyzer, scenario_suite(repeats, seed))
    if as_json:
        click.echo(json.dumps({"spec_version": analyzer.spec.spec_version, "traits": table}))
        return
    click.echo(f"spec {analyzer.spec.spec_version}, {repeats * 120} visits")
    for trait, row in table.items():
        click.echo(f"{trait:>24}  agreement {row['agreement']:.3f}  tp {row['tp']:>3}  "
                   f"fp {row['fp']:>3}  fn {row['fn']:>3}  tn {row['tn']:>3}")
