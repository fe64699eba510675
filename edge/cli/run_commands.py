"""``edge run``: the live services; ``edge purge``; ``edge status``."""

from __future__ import annotations

import json
import os
import shutil
import signal
import time
from collections.abc import Collection
from pathlib import Path

import click

from edge.cli.options import db_option, resolve_db_path, resolve_site_path, site_option
from edge.config import SiteConfig, load_site
from edge.paths import state_dir
from edge.runtime.schema import open_database
from edge.storage.database import database_bytes


def _load(
    site_path: Path | None, *, services: bool | Collection[str] = (), secrets: bool = True
) -> tuple[Path, SiteConfig]:
    """The site config, checked for what ``services`` need to run (see parse_site)."""
    path = resolve_site_path(site_path)
    return path, load_site(path, services=services, secrets=secrets)


def _mark_service(ctx: click.Context, role: str) -> None:
    """Set ``EDGE_SERVICE`` for this process and the children it starts, so that debug
    modes refuse to run inside a service (restored when the command ends)."""
    before = os.environ.get("EDGE_SERVICE")
    os.environ["EDGE_SERVICE"] = role

    def restore() -> None:
        if before is None:
            os.environ.pop("EDGE_SERVICE", None)
        else:
            os.environ["EDGE_SERVICE"] = before

    ctx.call_on_close(restore)


@click.group("run", invoke_without_command=True)
@site_option
@click.pass_context
def run_group(ctx: click.Context, site_path: Path | None) -> None:
    """Run the live box: every camera, the Wi-Fi counter, the sync and the status page.

    Without a sub-command, starts them all as child processes and restarts any that
    dies (what systemd does on an installed box). Sub-commands run one service.
    """
    _mark_service(ctx, ctx.invoked_subcommand or "supervisor")
    if ctx.invoked_subcommand is not None:
        return
    from edge.runtime.supervisor import (
        Supervisor,
        children_file,
        services_for,
        supervisor_lock,
    )

    path, site = _load(site_path, services=True)
    # A second supervisor would start a second copy of every service, each refused by
    # its own lock and restarted in a loop: refuse here, once, before starting any.
    with supervisor_lock():
        supervisor = Supervisor(services_for(site, path.resolve()),
                                children_file=children_file())
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: supervisor.stop_event.set())
        click.echo(f"Running store {site.site.id}: {len(supervisor.services)} services. "
                   "Ctrl-C stops.")
        code = supervisor.run()
    ctx.exit(code)


@run_group.command("camera")
@site_option
@click.option("--camera", "camera_id", required=True, help="The camera's id in the site config.")
def run_camera(site_path: Path | None, camera_id: str) -> None:
    """Run one camera: detect, track and store floor positions until stopped."""
    from edge.runtime.camera_worker import run_camera_worker

    # Its own video file must exist: a missing file is a config error (exit 78), not a
    # camera that may come back.
    _, site = _load(site_path, services=[f"camera:{camera_id}"])
    run_camera_worker(site, camera_id, open_database(resolve_db_path(None, site)))


# The services started the same way: (command, help, entry point in edge.runtime.services
# taking the site and the database path), that module imported only when one runs.
PLAIN_SERVICES = (
    ("sync", "Run the sync service: aggregates to the central platform over MQTT.",
     "run_sync_service"),
    ("fusion", "Run the fusion of a multi-camera site: one store-wide track per person.",
     "run_fusion_service"),
    ("wifi", "Run the Wi-Fi counter on the configured monitor interface.", "run_wifi_service"),
)


def _add_plain_service(name: str, summary: str, entry_point: str) -> None:
    @run_group.command(name, help=summary)
    @site_option
    def command(site_path: Path | None) -> None:
        from edge.runtime import services

        _, site = _load(site_path)
        getattr(services, entry_point)(site, resolve_db_path(None, site))


for _name, _summary, _entry_point in PLAIN_SERVICES:
    _add_plain_service(_name, _summary, _entry_point)


@run_group.command("web")
@site_option
def run_web(site_path: Path | None) -> None:
    """Run the status page (exits 75 when IT asks for a restart)."""
    from edge.runtime.services import run_web_service

    _, site = _load(site_path, services=["web"])
    raise SystemExit(run_web_service(site, resolve_db_path(None, site)))


@click.command("purge")
@site_option
def purge_command(site_path: Path | None) -> None:
    """Delete data older than its retention period (raw trajectories after hours,
    visits after days); raw data that would pass it before the next purge
    (service.purge_interval_s) goes now too."""
    from edge.retention import purge

    # The timer's unit loads no credentials: a purge needs none (a config whose status
    # page PIN is ${EDGE_WEB_PIN} must not stop the retention it promises).
    _, site = _load(site_path, secrets=False)
    # Run every service.purge_interval_s (the systemd timer, or `edge run`): what would
    # pass its retention period before the next run goes now.
    result = purge(open_database(resolve_db_path(None, site)), site.storage,
                   timezone=site.site.timezone, margin_s=site.service.purge_interval_s)
    if result.total:
        for table, count in result.deleted.items():
            click.echo(f"{table}: {count} {'row' if count == 1 else 'rows'} deleted")
    else:
        click.echo("Nothing to purge.")


def _age(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s ago"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min ago"
    return f"{seconds / 3600:.1f} h ago"


@click.command("status")
@site_option
@db_option
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def status_command(site_path: Path | None, db_path: Path | None, as_json: bool) -> None:
    """Summarize the box's health for IT: each service, the database and the disk.

    Exits 0 when everything is ok, 1 when something is degraded, down, silent (no
    report for web.health_stale_s) or has never reported. The last reports of services
    the site config no longer has (a camera removed or renamed) are listed apart and
    do not count.
    """
    from edge.storage.health import expected_components, is_configured, read_health

    # Status only reads health: it must work for IT at a shell, where the services'
    # secrets (the page's PIN, the broker password) are not readable.
    path, site = _load(site_path, secrets=False)
    # A --db that is not there is a mistyped path (the services were blamed); the site's
    # own database is missing only until the first service starts.
    db_path = resolve_db_path(db_path, site, must_exist=db_path is not None,
                              hint="check the path given to --db")
    rows = read_health(open_database(db_path)) if db_path.exists() else []
    health = [row for row in rows if is_configured(site, row["component"])]
    gone = [row for row in rows if not is_configured(site, row["component"])]
    disk = shutil.disk_usage(db_path.parent if db_path.parent.exists() else state_dir().parent)
    now = time.time()
    for row in health:
        # A service killed without a word leaves its last "ok" behind: after the page's
        # staleness limit it is "silent", as the status page shows it.
        if row["status"] != "down" and now - row["updated_at"] > site.web.health_stale_s:
            row["status"] = "silent"
    seen = {row["component"] for row in health}
    missing = [name for name in expected_components(site) if name not in seen]
    summary = {
        "store": site.site.id,
        "config": str(path),
        "database": str(db_path),
        # With its -wal and -shm files, as the status page counts it ("figures kept").
        "database_mb": round((database_bytes(db_path) or 0) / 1e6, 1),
        "disk_free_mb": disk.free // 1_000_000,
        "components": health,
        "missing": missing,
        "not_configured": gone,
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
        for name in missing:
            click.echo(f"  {'unknown':>8}  {name:<20} has never reported; is its service running?")
        for row in gone:
            click.echo(f"  {'ignored':>8}  {row['component']:<20} is no longer in the site config "
                       f"(last report {_age(now - row['updated_at'])}: {row['status']})")
    bad = missing or any(row["status"] != "ok" for row in health)
    raise SystemExit(1 if bad else 0)
