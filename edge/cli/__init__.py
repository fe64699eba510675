"""The ``edge`` command. Library errors become one-line messages here, and only here."""

from __future__ import annotations

import logging
import sys

import click

from edge import __version__
from edge.cli.calibrate_commands import calibrate_command
from edge.cli.config_commands import check_config
from edge.cli.eval_commands import eval_group
from edge.cli.model_commands import models_group
from edge.cli.replay_commands import replay_command
from edge.errors import EdgeError


class EdgeGroup(click.Group):
    """Translates every :class:`EdgeError` into ``Error: <message>`` and exit status 1."""

    def invoke(self, ctx: click.Context):  # type: ignore[override]
        try:
            return super().invoke(ctx)
        except EdgeError as error:
            raise click.ClickException(str(error)) from None
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
    calibrate_command,
]
for _command in COMMANDS:
    cli.add_command(_command)


def main() -> None:
    cli(prog_name="edge")
