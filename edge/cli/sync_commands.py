"""``edge sync``: publish aggregates over MQTT, inspect the outbox (the box's side).

The central platform's commands (consume, ingest, gaps, refit, sign-config) live in
:mod:`edge.cli.central_commands`, listed here by :data:`CENTRAL_COMMANDS`."""

from __future__ import annotations

import contextlib
import json
import logging
import threading
from datetime import UTC, datetime, time
from pathlib import Path

import click

from edge.cli.lazy import LazyGroup
from edge.cli.options import (
    db_option,
    load_site_option,
    on_stop_signals,
    resolve_db_path,
    site_option,
    utc_day,
)
from edge.errors import ConfigError, StorageError
from edge.runtime.schema import open_database

log = logging.getLogger(__name__)
SERVICES_FIRST = "no service has written to it yet (start them with `edge run`)"


# The central platform's side, in its own module: imported only when one of them runs or
# --help lists them (as the top level's COMMANDS), never by `edge sync run` on a box.
CENTRAL = "edge.cli.central_commands"
CENTRAL_COMMANDS: dict[str, tuple[str, str]] = {
    "consume": (CENTRAL, "consume_command"),
    "gaps": (CENTRAL, "gaps_command"),
    "ingest": (CENTRAL, "ingest_command"),
    "refit": (CENTRAL, "refit_command"),
    "sign-config": (CENTRAL, "sign_config_command"),
}


@click.group("sync", cls=LazyGroup, lazy=CENTRAL_COMMANDS)
def sync_group() -> None:
    """Send k-anonymous aggregates to the central platform over MQTT (see docs/mqtt.md)."""



def _service(site_path: Path | None, db_path: Path | None):
    from sync.publisher import SyncService

    site = load_site_option(site_path)
    return SyncService(site, open_database(resolve_db_path(db_path, site)))


@sync_group.command("run")
@site_option
@db_option
def run_command(site_path: Path | None, db_path: Path | None) -> None:
    """Run the sync service until stopped (SIGTERM or Ctrl-C): aggregate each closed
    window into the outbox and publish it; apply signed config downlinks."""
    service = _service(site_path, db_path)
    if not service.config.enabled:
        raise ConfigError("sync.enabled is false in the site config: nothing to run")
    stop = threading.Event()
    on_stop_signals(stop.set)
    service.run(stop)


@sync_group.command("publish-once")
@site_option
@db_option
@click.option(
    "--timeout",
    "timeout_s",
    type=float,
    default=30.0,
    show_default=True,
    help="Give up after this many seconds.",
)
def publish_once_command(site_path: Path | None, db_path: Path | None, timeout_s: float) -> None:
    """Aggregate closed windows, publish everything pending, wait for the broker's
    acknowledgements, and exit (non-zero if anything is still pending)."""
    from sync.errors import BrokerError

    service = _service(site_path, db_path)
    summary = service.flush(timeout_s)
    problem = service.storage_problem()
    if problem is not None:  # Regression: a full disk printed "0 delivered" and exited 0.
        raise StorageError(f"nothing could be aggregated: {problem}")
    click.echo(
        f"{summary.delivered} delivered, {summary.pending} pending, {summary.refused} refused."
    )
    if summary.pending:
        # The connection's problem, else the broker's refusal of a publish (an ACL), else none.
        reason = (
            service.client.last_error or service.outbox.last_error() or "no acknowledgement in time"
        )
        raise BrokerError(
            f"{summary.pending} aggregates still pending after {timeout_s:.0f} s: {reason}"
        )


@sync_group.command("status")
@site_option
@db_option
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def status_command(site_path: Path | None, db_path: Path | None, as_json: bool) -> None:
    """Show the outbox (pending, delivered, evicted) and the effective k and window."""
    from sync.contract import iso_utc
    from sync.outbox import Outbox
    from sync.settings import effective_settings

    site = load_site_option(site_path)
    db = open_database(resolve_db_path(db_path, site, must_exist=True, hint=SERVICES_FIRST))
    summary = Outbox(db).summary()
    settings = effective_settings(db, site)
    oldest = summary.oldest_pending_start
    report = {
        "store": site.site.id,
        "pending": summary.pending,
        "pending_bytes": summary.pending_bytes,
        "oldest_pending_window": iso_utc(oldest) if oldest is not None else None,
        "delivered": summary.delivered,
        "refused": summary.refused,
        "evicted_total": summary.evicted_total,
        **settings.as_state(),
    }
    if as_json:
        click.echo(json.dumps(report))
        return
    for key, value in report.items():
        click.echo(f"{key}: {value}")


def _utc_time(text: str, hint: str) -> float:
    """An option's UTC time: ``2026-03-01T00:45:00Z`` (as `edge sync gaps` prints) or a
    day ``2026-03-01`` (its midnight, UTC)."""
    from sync.contract import parse_iso_utc

    if "T" in text:
        with contextlib.suppress(ValueError):
            return parse_iso_utc(text)
        raise click.BadParameter(f"expected YYYY-MM-DDTHH:MM:SSZ or YYYY-MM-DD, got {text!r}",
                                 param_hint=hint)
    return datetime.combine(utc_day(text, hint), time(), tzinfo=UTC).timestamp()


@sync_group.command("resend")
@site_option
@db_option
@click.option("--from", "first", required=True,
              help="Resend the windows starting at or after this UTC time "
              "(YYYY-MM-DDTHH:MM:SSZ, as `edge sync gaps` prints, or YYYY-MM-DD).")
@click.option("--to", "last", required=True,
              help="... and before this one (the end `edge sync gaps` prints).")
def resend_command(site_path: Path | None, db_path: Path | None, first: str, last: str) -> None:
    """Send delivered aggregates again: head office lost them (`edge sync gaps` lists the
    holes). The sync service sends them as it sends pending ones, through the same checks;
    the central side keeps one copy of each window."""
    from sync.contract import iso_utc
    from sync.outbox import Outbox

    start, end = _utc_time(first, "--from"), _utc_time(last, "--to")
    if end <= start:
        raise click.BadParameter("must be after --from", param_hint="--to")
    site = load_site_option(site_path)
    db = open_database(resolve_db_path(db_path, site, must_exist=True, hint=SERVICES_FIRST))
    outbox = Outbox(db, max_pending=site.sync.outbox_max_pending)
    count = outbox.resend(start, end)
    kept = db.execute("select min(window_start) from sync_outbox").fetchone()[0]
    click.echo(f"{count} delivered windows from {iso_utc(start)} to {iso_utc(end)} will be sent "
               "again by the sync service.")
    if kept is None or kept > start:
        since = "none is kept" if kept is None else f"the oldest kept starts {iso_utc(kept)}"
        click.echo(f"Windows older than storage.delivered_aggregate_days are not kept: {since}.",
                   err=True)


@sync_group.command("payload-size")
@site_option
@db_option
@click.option("--day", default=None, help="UTC day YYYY-MM-DD (default: the first day with data).")
def payload_size_command(site_path: Path | None, db_path: Path | None, day: str | None) -> None:
    """Report the bytes one store-day of aggregates takes (payloads and MQTT framing)."""
    from sync.aggregate import aligned_start, earliest_data_time
    from sync.sizing import bytes_per_day

    site = load_site_option(site_path)
    db = open_database(resolve_db_path(db_path, site, must_exist=True, hint=SERVICES_FIRST))
    if day is not None:
        start = datetime.combine(utc_day(day, "--day"), time(), tzinfo=UTC).timestamp()
    else:
        first = earliest_data_time(db)
        if first is None:
            raise ConfigError("the database holds no data to aggregate")
        start = aligned_start(first, 86_400)
    size = bytes_per_day(db, site, start)
    click.echo(
        f"{size.windows} windows of {site.sync.window_s} s: {size.payload_bytes} payload bytes "
        f"(mean {size.mean_payload_bytes:.0f}, largest {size.largest_payload_bytes}), "
        f"{size.wire_bytes} bytes with MQTT framing per store-day."
    )
