"""The ``edge`` command. Library errors become one-line messages here, and only here."""

from __future__ import annotations

import logging
import signal
import sqlite3
import sys
import warnings
from typing import Any

import click

from edge import __version__
from edge.cli.lazy import LazyGroup
from edge.cli.options import DB_PATH_META
from edge.errors import ConfigError, DataWarning, EdgeError, ModelError
from edge.storage.database import storage_error

# EX_CONFIG from sysexits.h: the service cannot work until a person fixes its config or model.
EXIT_CONFIG = 78
# Commands systemd runs (services and their ExecStartPre check): a config or model error
# exits EXIT_CONFIG so RestartPreventExitStatus=78 ends the restarts.
SERVICE_COMMANDS = ("run", "check-config", "purge")


class _ConfigFailure(click.ClickException):
    """``Error: <message>`` with exit status :data:`EXIT_CONFIG` (click's is a class variable)."""

    exit_code = EXIT_CONFIG


# Each top-level command: the module that defines it, imported only when the command runs
# or --help lists it. A service loads its own command's stack, not the replay's, the
# report's (jinja2) or the evaluators' (issue 18: the memory of a camera worker).
COMMANDS: dict[str, tuple[str, str]] = {
    "replay": ("edge.cli.replay_commands", "replay_command"),
    "eval": ("edge.cli.eval_commands", "eval_group"),
    "models": ("edge.cli.model_commands", "models_group"),
    "check-config": ("edge.cli.config_commands", "check_config"),
    "run": ("edge.cli.run_commands", "run_group"),
    "purge": ("edge.cli.run_commands", "purge_command"),
    "status": ("edge.cli.run_commands", "status_command"),
    "visits": ("edge.cli.visits_commands", "visits_group"),
    "pos": ("edge.cli.pos_commands", "pos_group"),
    "wifi": ("edge.cli.wifi_commands", "wifi_group"),
    "sync": ("edge.cli.sync_commands", "sync_group"),
    "web": ("edge.cli.web_commands", "web_group"),
    "calibrate": ("edge.cli.calibrate_commands", "calibrate_command"),
    "privacy": ("edge.cli.privacy_commands", "privacy_group"),
    "report": ("edge.cli.report_commands", "report_command"),
}


_default_showwarning = warnings.showwarning


def _show_warning(message: Warning | str, category: type[Warning], *args: Any,
                  **kwargs: Any) -> None:
    """A :class:`DataWarning` (about the user's input) as one ``Warning:`` line; others
    as Python shows them."""
    if issubclass(category, DataWarning):
        click.echo(f"Warning: {message}", err=True)
    else:
        _default_showwarning(message, category, *args, **kwargs)


class EdgeGroup(LazyGroup):
    """Loads each command from :data:`COMMANDS` when it is used, and translates every
    :class:`EdgeError`, and a sqlite error no command caught (a full disk, a corrupt
    page), into ``Error: <message>`` and exit status 1."""

    def invoke(self, ctx: click.Context):  # type: ignore[override]
        try:
            with warnings.catch_warnings():
                warnings.showwarning = _show_warning
                return super().invoke(ctx)
        except EdgeError as error:
            service = ctx.invoked_subcommand in SERVICE_COMMANDS
            if service and isinstance(error, (ConfigError, ModelError)):
                # The services: systemd's RestartPreventExitStatus=78 stops a restart loop
                # that could not help until a person fixes the config or the model.
                raise _ConfigFailure(str(error)) from None
            raise click.ClickException(str(error)) from None
        except sqlite3.DatabaseError as error:
            # A full disk or a corrupt page met mid-command, where no library call expected
            # it; programming errors (IntegrityError, ProgrammingError...) keep their trace.
            if type(error) not in (sqlite3.DatabaseError, sqlite3.OperationalError):
                raise
            raise click.ClickException(
                str(storage_error(error, ctx.meta.get(DB_PATH_META)))) from None
        except KeyboardInterrupt as error:
            # Ctrl-C, or SIGTERM where a command turns it into the same clean stop.
            signum = getattr(error, "signum", signal.SIGINT)
            click.echo("Terminated." if signum == signal.SIGTERM else "Interrupted.", err=True)
            sys.exit(128 + signum)


@click.group(
    cls=EdgeGroup, lazy=COMMANDS, context_settings={"help_option_names": ["-h", "--help"]}
)
@click.version_option(__version__, prog_name="edge")
@click.option("-v", "--verbose", is_flag=True, help="Log debug details.")
def cli(verbose: bool) -> None:
    """In-store analytics appliance: cameras and Wi-Fi to anonymous store aggregates."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )



def main() -> None:
    cli(prog_name="edge")
