"""``edge run``: the live services; ``edge purge``; ``edge status``."""

from __future__ import annotations

import json
import os
import shutil
import signal
import time
from pathlib import Path

import click

from edge.cli.options import resolve_db_path
from edge.config import SiteConfig, load_site
from edge.paths import default_site_config, state_dir
from edge.storage import open_database

INSTALLED_CONFIG = Path("/etc/store-edge/site.yaml")

config_option = click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Site config. Default: $EDGE_CONFIG, else /etc/store-edge/site.yaml, else the demo site.",
)


def resolve_config(config_path: Path | None) -> Path:
    if config_path is not None:
        return config_path
    if os.environ.get("EDGE_CONFIG"):
        return Path(os.environ["EDGE_CONFIG"])
    return INSTALLED_CONFIG if INSTALLED_CONFIG.is_file() else default_site_config()


def _load(config_path: Path | None) -> tuple[Path, SiteConfig]:
    path = resolve_config(config_path)
    return path, load_site(path)


@click.group("run", invoke_without_command=True)
@config_option
@click.pass_context
def run_group(ctx: click.Context, config_path: Path | None) -> None:
    """Run the live box: every camera, the Wi-Fi counter, the sync and the status page.

    Without a sub-command, starts them all as child processes and restarts any that
    dies (what systemd does on an installed box). Sub-commands run one service.
    """
    if ctx.invoked_subcommand is not None:
        return
    from edge.runtime.supervisor import Supervisor, services_for

    path, site = _load(config_path)
    supervisor = Supervisor(services_for(site, path.resolve()))
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: supervisor.stop_event.set())
    click.echo(f"Running store {site.site.id}: {len(supervisor.services)} services. Ctrl-C stops.")
    ctx.exit(supervisor.run())


@run_group.command("camera")
@config_option
@click.option("--camera", "camera_id", required=True, help="The camera's id in the site config.")
def run_camera(config_path: Path | None, camera_id: str) -> None:
    """Run one camera: detect, track and store floor positions until stopped."""
    from edge.runtime.camera_worker import run_camera_worker

    _, site = _load(config_path)
    run_camera_worker(site, camera_id, open_database(resolve_db_path(None, site)))


@run_group.command("sync")
@config_option
def run_sync(config_path: Path | None) -> None:
    """Run the sync service: aggregates to the central platform over MQTT."""
    from edge.runtime.services import run_sync_service

    _, site = _load(config_path)
    run_sync_service(site, resolve_db_path(None, site))


@run_group.command("web")
@config_option
def run_web(config_path: Path | None) -> None:
    """Run the status page (exits 75 when IT asks for a restart)."""
    from edge.runtime.services import run_web_service

    _, site = _load(config_path)
    raise SystemExit(run_web_service(site, resolve_db_path(None, site)))


@run_group.command("wifi")
@config_option
def run_wifi(config_path: Path | None) -> None:
    """Run the Wi-Fi counter on the configured monitor interface."""
    from edge.runtime.services import run_wifi_service

    _, site = _load(config_path)
    run_wifi_service(site, resolve_db_path(None, site))


@click.command("purge")
@config_option
def purge_command(config_path: Path | None) -> None:
    """Delete data older than its retention period (raw trajectories after hours,
    visits after days)."""
    from edge.retention import purge

    _, site = _load(config_path)
    result = purge(open_database(resolve_db_path(None, site)), site.storage)
    if result.total:
        for table, count in result.deleted.items():
            click.echo(f"{table}: {count} rows deleted")
    else:
        click.echo("Nothing to purge.")


def _age(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s ago"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min ago"
    return f"{seconds / 3600:.1f} h ago"


@click.command("status")
@config_option
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def status_command(config_path: Path | None, as_json: bool) -> None:
    """Summarize the box's health for IT: each service, the database and the disk.

    Exits 0 when everything is ok, 1 when something is degraded, down, silent (no
    report for web.health_stale_s) or has never reported.
    """
    from edge.storage.health import read_health

    path, site = _load(config_path)
    db_path = resolve_db_path(None, site)
    health = read_health(open_database(db_path)) if db_path.exists() else []
    disk = shutil.disk_usage(db_path.parent if db_path.parent.exists() else state_dir().parent)
    now = time.time()
    for row in health:
        # A service killed without a word leaves its last "ok" behind: after the page's
        # staleness limit it is "silent", as the status page shows it.
        if row["status"] != "down" and now - row["updated_at"] > site.web.health_stale_s:
            row["status"] = "silent"
    expected = [f"camera:{c.id}" for c in site.cameras]
    seen = {row["component"] for row in health}
    summary = {
        "store": site.site.id,
        "config": str(path),
        "database": str(db_path),
        "database_mb": round(db_path.stat().st_size / 1e6, 1) if db_path.exists() else 0.0,
        "disk_free_mb": disk.free // 1_000_000,
        "components": health,
        "missing": [name for name in expected if name not in seen],
    }
    if as_json:
        click.echo(json.dumps(summary))
    else:
        click.echo(f"Store {site.site.id} ({path})")
        click.echo(f"Database {db_path}: {summary['database_mb']} MB; "
                   f"disk free {summary['disk_free_mb']} MB")
        for row in health:
            click.echo(f"  {row['status']:>8}  {row['component']:<20} {row['message']} "
                       f"(updated {_age(now - row['updated_at'])})")
        for name in summary["missing"]:
            click.echo(f"  {'unknown':>8}  {name:<20} has never reported; is its service running?")
    bad = summary["missing"] or any(row["status"] != "ok" for row in health)
    raise SystemExit(1 if bad else 0)
