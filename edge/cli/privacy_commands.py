"""``edge privacy``: the privacy audit log and the debug modes on, for IT."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import click

from edge.cli.options import db_option, load_site_option, resolve_db_path, site_option
from edge.runtime.schema import open_database

NO_SERVICE_YET = "no service has started on it yet"


def _value(value: object) -> str:
    return "-" if value is None else json.dumps(value)


@click.group("privacy")
def privacy_group() -> None:
    """Privacy audit log and debug modes (what changed, when, by whom)."""


@privacy_group.command("audit-log")
@site_option
@db_option
@click.option("--limit", type=click.IntRange(min=1), default=200, show_default=True,
              help="Newest rows to show.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per row (JSON lines).")
def audit_log_command(site_path: Path | None, db_path: Path | None, limit: int,
                      as_json: bool) -> None:
    """Show changes of privacy settings (RSSI gate, retention, k...), Wi-Fi key rotations
    and debug modes, newest first."""
    from edge.privacy.store import read_audit_log

    site = load_site_option(site_path)
    path = resolve_db_path(db_path, site, must_exist=True, hint=NO_SERVICE_YET)
    rows = read_audit_log(open_database(path), limit=limit)
    tz = ZoneInfo(site.site.timezone)
    if as_json:
        for row in rows:
            click.echo(json.dumps(row))
        return
    if not rows:
        click.echo("The privacy audit log is empty (no service has started on this database).")
        return
    for row in rows:
        at = datetime.fromtimestamp(row["at"], tz).isoformat(timespec="seconds")
        click.echo(f"{at}  {row['setting']}: {_value(row['old'])} -> {_value(row['new'])}  "
                   f"({row['source']})")


@privacy_group.command("debug-modes")
@site_option
@db_option
def debug_modes_command(site_path: Path | None, db_path: Path | None) -> None:
    """List the debug modes on now; clears those whose process on this host is gone.

    Exits 1 while any debug mode is on.
    """
    from edge.debug_modes import clear_stale_debug_modes
    from edge.privacy.store import active_debug_modes

    site = load_site_option(site_path)
    # A named database must exist; where the default one does not, nothing has run, so
    # no debug mode can be on (and none is created just to say so).
    path = resolve_db_path(db_path, site, must_exist=db_path is not None, hint=NO_SERVICE_YET)
    if not path.is_file():
        click.echo("No debug mode is on.")
        raise SystemExit(0)
    db = open_database(path)
    for name in clear_stale_debug_modes(db):
        click.echo(f"Cleared debug mode {name}: its process is gone.")
    modes = active_debug_modes(db)
    tz = ZoneInfo(site.site.timezone)
    for mode in modes:
        since = datetime.fromtimestamp(mode["started_at"], tz).isoformat(timespec="seconds")
        click.echo(f"ON  {mode['name']} since {since} (pid {mode['pid']} on {mode['host']}): "
                   f"{mode['detail']}")
    if not modes:
        click.echo("No debug mode is on.")
    raise SystemExit(1 if modes else 0)
