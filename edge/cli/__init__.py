"""The ``edge`` command. Library errors become one-line messages here, and only here."""

from __future__ import annotations

import logging
import sqlite3
import sys

import click

from edge import __version__
from edge.cli.calibrate_commands import calibrate_command
from edge.cli.config_commands import check_config
from edge.cli.eval_commands import eval_group
from edge.cli.model_commands import models_group
from edge.cli.options import DB_PATH_META
from edge.cli.pos_commands import pos_group
from edge.cli.privacy_commands import privacy_group
from edge.cli.replay_commands import replay_command
from edge.cli.report_commands import report_command
from edge.cli.run_commands import purge_command, run_group, status_command
from edge.cli.sync_commands import sync_group
from edge.cli.visits_commands import visits_group
from edge.cli.web_commands import web_group
from edge.cli.wifi_commands import wifi_group
from edge.errors import ConfigError, EdgeError, ModelError
from edge.storage.database import storage_error

# EX_CONFIG from sysexits.h: the service cannot work until a person fixes its config or model.
EXIT_CONFIG = 78
# Commands systemd runs (services and their ExecStartPre check): a config or model error
# exits EXIT_CONFIG so RestartPreventExitStatus=78 ends the restarts.
SERVICE_COMMANDS = ("run", "check-config", "purge")


class _ConfigFailure(click.ClickException):
    """``Error: <message>`` with exit status :data:`EXIT_CONFIG` (click's is a class variable)."""

    exit_code = EXIT_CONFIG


class EdgeGroup(click.Group):
    """Translates every :class:`EdgeError`, and a sqlite error no command caught (a full
    disk, a corrupt page), into ``Error: <message>`` and exit status 1."""

    def invoke(self, ctx: click.Context):  # type: ignore[override]
        try:
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
        except KeyboardInterrupt:
            click.echo("Interrupted.", err=True)
            sys.exit(130)


@click.group(cls=EdgeGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="edge")
@click.option("-v", "--verbose", is_flag=True, help="Log debug details.")
def cli(verbose: bool) -> None:
    """In-store analytics appliance: cameras and Wi-Fi to anonymous store aggregates."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )


COMMANDS: list[click.Command] = [
    replay_command,
    eval_group,
    models_group,
    check_config,
    run_group,
    purge_command,
    status_command,
    visits_group,
    pos_group,
    wifi_group,
    sync_group,
    web_group,
    calibrate_command,
    privacy_group,
    report_command,
]
for _command in COMMANDS:
    cli.add_command(_command)


def main() -> None:
    cli(prog_name="edge")
