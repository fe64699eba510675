"""Run the status page under uvicorn, with a clean stop and a restart exit code."""

from __future__ import annotations

import logging
import socket
import threading
from pathlib import Path

import uvicorn

from edge.config import SiteConfig
from edge.errors import ConfigError
from edge.storage import open_database
from edge.web.app import create_app
from edge.web.dashboard import WebDeps

log = logging.getLogger(__name__)
# EX_TEMPFAIL: systemd (Restart=on-failure) starts the service again.
EXIT_RESTART = 75


def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as error:
        sock.close()
        raise ConfigError(
            f"the status page cannot listen on {host}:{port}: {error.strerror}; "
            "another program may use that port: change web.port or stop it"
        ) from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def serve(site: SiteConfig, db_path: Path, *, host: str | None = None,
          port: int | None = None) -> int:
    """Serve until stopped (0) or until IT asks for a restart (:data:`EXIT_RESTART`).

    Raises:
        ConfigError: the ``web:`` section is unusable, or the port is taken.
        StorageError: the database cannot be created.
    """
    # The address served is part of the config in use (/admin/config shows it).
    served = {"host": host, "port": port}
    site = site.model_copy(update={"web": site.web.model_copy(
        update={key: value for key, value in served.items() if value is not None})})
    # Bring the schema up to date once, so every table the page reads exists.
    open_database(db_path).close()
    restart_requested = threading.Event()
    holder: dict[str, uvicorn.Server] = {}

    def restart() -> None:
        log.warning("Restart requested through /admin/restart.")
        restart_requested.set()
        holder["server"].should_exit = True

    app = create_app(WebDeps(site=site, db_path=db_path, restart=restart))
    host, port = site.web.host, site.web.port
    sock = _listen(host, port)
    config = uvicorn.Config(
        app, log_level="info", access_log=False, server_header=False, proxy_headers=False,
        limit_concurrency=256, timeout_keep_alive=5, h11_max_incomplete_event_size=16_384,
    )
    server = uvicorn.Server(config)
    holder["server"] = server
    log.info("Status page on http://%s:%d/ (access: %s).", host, port, site.web.access)
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
    return EXIT_RESTART if restart_requested.is_set() else 0
