"""Options shared by several commands."""

from __future__ import annotations

import os
from pathlib import Path

import click

from edge.config import SiteConfig, load_site
from edge.paths import default_site_config, state_dir
from edge.storage.database import default_db_path

INSTALLED_CONFIG = Path("/etc/store-edge/site.yaml")

site_option = click.option(
    "--site",
    "--config",
    "site_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Site config (YAML). Default: $EDGE_CONFIG, else /etc/store-edge/site.yaml on an "
    "installed box, else the embedded PETS09 demo site.",
)
db_option = click.option(
    "--db",
    "db_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="SQLite database. Default: the site's storage.db_path, else <state dir>/edge.db.",
)


def resolve_site_path(site_path: Path | None) -> Path:
    """The site config to use when none is named on the command line."""
    if site_path is not None:
        return site_path
    if os.environ.get("EDGE_CONFIG"):
        return Path(os.environ["EDGE_CONFIG"])
    return INSTALLED_CONFIG if INSTALLED_CONFIG.is_file() else default_site_config()


def load_site_option(site_path: Path | None) -> SiteConfig:
    return load_site(resolve_site_path(site_path))


def resolve_db_path(db_path: Path | None, site: SiteConfig | None) -> Path:
    if db_path is not None:
        return db_path
    if site is not None and site.storage.db_path:
        configured = Path(site.storage.db_path)
        return configured if configured.is_absolute() else state_dir() / configured
    return default_db_path()
