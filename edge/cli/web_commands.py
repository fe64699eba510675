"""``edge web``: serve the store status page; hash its PIN and tokens."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from edge.cli.options import db_option, load_site_option, resolve_db_path, site_option
from edge.runtime.schema import open_database


@click.group("web")
def web_group() -> None:
    """The store status page for associates (tablets) and IT."""


@web_group.command("serve")
@site_option
@db_option
@click.option("--host", help="Address to listen on (default: web.host of the site config).")
@click.option("--port", type=click.IntRange(1, 65535),
              help="TCP port (default: web.port of the site config).")
@click.option("--open-lan", is_flag=True,
              help="Let anyone on the network read the page without the PIN "
                   "(demos, closed staff networks).")
def serve_command(site_path: Path | None, db_path: Path | None, host: str | None,
                  port: int | None, open_lan: bool) -> None:
    """Serve the status page: occupancy, visitors, heat map, shopper mix, Wi-Fi and health.

    Associates sign in with the store PIN (web.pin); IT endpoints need web.admin_token.
    Exits with status 75 when IT asks for a restart, so systemd starts it again.
    """
    from edge.web.server import serve  # the web stack loads only for this command

    # The page's own needs (a PIN) are checked unless --open-lan does away with them.
    site = load_site_option(site_path, services=() if open_lan else ["web"])
    if open_lan:
        site = site.model_copy(update={"web": site.web.model_copy(update={"access": "open-lan"})})
    # A named database must exist (a typo would serve a new, empty one); the default
    # one is created if need be, so the page works on a box whose services just started.
    path = resolve_db_path(db_path, site, must_exist=db_path is not None,
                           hint="give the database the services write (storage.db_path), or "
                                "leave out --db")
    # Bring the schema up to date once, so every table the page reads exists.
    open_database(path).close()
    code = serve(site, path, host=host, port=port)
    sys.exit(code)


@web_group.command("hash-secret")
@click.option("--stdin", "from_stdin", is_flag=True, help="Read the secret from standard input.")
def hash_secret_command(from_stdin: bool) -> None:
    """Print the hash of a PIN or token, to put in site.yaml instead of the secret itself."""
    from edge.web.auth import hash_secret

    if from_stdin:
        secret = sys.stdin.readline().strip()
    else:
        secret = click.prompt("PIN or token", hide_input=True, confirmation_prompt=True)
    if not secret:
        raise click.ClickException("the secret is empty")
    click.echo(hash_secret(secret))
