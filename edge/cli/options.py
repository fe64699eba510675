"""Options (and their helpers) shared by several commands."""

from __future__ import annotations

import functools
import math
import os
import signal
import threading
from collections.abc import Callable, Collection
from datetime import date, datetime
from pathlib import Path
from typing import Any, TypeVar

import click

from edge.config import SiteConfig, load_site
from edge.errors import StorageError
from edge.paths import default_site_config, installed_config, state_dir
from edge.storage.database import default_db_path

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
# The file an `import` command reads (till transactions, floor trajectories).
csv_argument = click.argument(
    "csv_path", metavar="FILE.csv", type=click.Path(dir_okay=False, path_type=Path)
)


def resolve_site_path(site_path: Path | None) -> Path:
    """The site config to use when none is named on the command line."""
    if site_path is not None:
        return site_path
    if os.environ.get("EDGE_CONFIG"):
        return Path(os.environ["EDGE_CONFIG"])
    return installed_config() or default_site_config()


def load_site_option(
    site_path: Path | None, *, services: bool | Collection[str] = False
) -> SiteConfig:
    """The site config of ``--site`` (or the default one); ``services``: as
    :func:`edge.config.loader.parse_site`."""
    return load_site(resolve_site_path(site_path), services=services)


class FiniteFloatRange(click.FloatRange):
    """``click.FloatRange`` that also refuses NaN (which compares false with any bound)."""

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> Any:
        number = super().convert(value, param, ctx)
        if math.isnan(number):
            self.fail(f"{value!r} is not a number; give one from {self.min:g} to {self.max:g}.",
                      param, ctx)
        return number


REPLAY_FIRST = "run `edge replay` first"
DB_PATH_META = "edge.db_path"  # click context meta: the database the command uses


def resolve_db_path(
    db_path: Path | None,
    site: SiteConfig | None,
    *,
    must_exist: bool = False,
    hint: str = REPLAY_FIRST,
) -> Path:
    """The database a command uses: ``--db``, else the site's ``storage.db_path``, else
    ``<state dir>/edge.db``.

    Args:
        must_exist: for commands that only read or derive from data already stored
            (reports, evaluations, builds, status): a database that is not there is an
            error, instead of a new empty one that a mistyped ``--db`` would create.
        hint: how to get the data, ending the error message.

    Raises:
        StorageError: ``must_exist`` and there is no such file.
    """
    if db_path is not None:
        path = db_path
    elif site is not None and site.storage.db_path:
        configured = Path(site.storage.db_path)
        path = configured if configured.is_absolute() else state_dir() / configured
    else:
        path = default_db_path()
    if must_exist and not path.is_file():
        raise StorageError(f"database {path} does not exist; {hint}")
    context = click.get_current_context(silent=True)
    if context is not None:  # named by the CLI's message if sqlite fails later (full, corrupt)
        context.meta[DB_PATH_META] = path
    return path


def json_safe(value: object) -> object:
    """JSON has no NaN: undefined figures become null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value


F = TypeVar("F", bound=Callable[..., Any])


def on_stop_signals(callback: Callable[[], object]) -> None:
    """Run ``callback`` on SIGTERM/SIGINT, from a short thread: a signal handler must not
    take locks the interrupted main thread may hold."""

    def handler(signum: int, frame: object) -> None:
        threading.Thread(target=callback, name="stop", daemon=True).start()

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, handler)


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread as Ctrl-C raises KeyboardInterrupt."""

    signum = signal.SIGTERM


def sigterm_stops(command: F) -> F:
    """Make SIGTERM (a timeout, a cancelled CI job, ``kill``) stop ``command`` as Ctrl-C
    does: ``finally`` blocks run, so a replay closes its run and keeps what it
    processed. Without this Python dies at once and the run stays ``running``."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if threading.current_thread() is not threading.main_thread():
            return command(*args, **kwargs)  # signals go to the main thread only

        def handler(signum: int, frame: object) -> None:
            signal.signal(signal.SIGTERM, signal.SIG_IGN)  # the clean-up is not cut short
            raise Terminated()

        previous = signal.signal(signal.SIGTERM, handler)
        try:
            return command(*args, **kwargs)
        finally:
            signal.signal(signal.SIGTERM, previous)

    return wrapper  # type: ignore[return-value]


def utc_day(text: str, hint: str) -> date:
    """A ``YYYY-MM-DD`` option's day."""
    try:
        return datetime.strptime(text, "%Y-%m-%d").date()
    except ValueError:
        raise click.BadParameter(f"expected YYYY-MM-DD, got {text!r}", param_hint=hint) from None
