"""``edge pos``: transaction counts from the store's till system (no customer data)."""

from __future__ import annotations

import time
from pathlib import Path
from zoneinfo import ZoneInfo

import click

from edge.cli.options import (
    csv_argument,
    db_option,
    load_site_option,
    resolve_db_path,
    site_option,
)
from edge.pos.store import store_periods
from edge.pos.till import read_till_csv
from edge.runtime.schema import open_database


@click.group("pos")
def pos_group() -> None:
    """Till transactions per period, for conversion (transactions / visits)."""


@pos_group.command("import")
@csv_argument
@site_option
@db_option
def import_command(csv_path: Path, site_path: Path | None, db_path: Path | None) -> None:
    """Store transaction counts per till period from FILE.csv, with columns
    period_start (ISO 8601; without an offset, store time), transactions, and optionally
    period_s (default: the site's pos.period_s).

    The whole file is checked first: an unknown period, a count that is negative or not
    a whole number, or a period given twice refuses it, and nothing is stored. A period
    stored before is replaced by the new count.
    """
    site = load_site_option(site_path)
    now = time.time()
    periods = read_till_csv(csv_path, default_period_s=site.pos.period_s,
                            tz=ZoneInfo(site.site.timezone), now=now)
    path = resolve_db_path(db_path, site)
    result = store_periods(open_database(path), periods, source="import", now=now)
    click.echo(f"Stored {result.stored} till periods from {csv_path} in {path} "
               f"({result.replaced} replaced earlier counts).")
