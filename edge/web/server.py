"""Run the status page under uvicorn, with a clean stop and a restart exit code."""

from __future__ import annotations

import ipaddress
import logging
import socket
import threading
from pathlib import Path

import uvicorn

from edge.config import SiteConfig
from edge.config.web import WebConfig
from edge.errors import ConfigError
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


def open_lan_warning(web: WebConfig) -> str | None:
    """The warning to print when anyone who reaches the port may read without a PIN."""
    if web.access != "open-lan":
        return None
    try:
        if ipaddress.ip_address(web.host).is_loopback:
            return None
    except ValueError:
        if web.host.lower() == "localhost":
            return None
    where = "every interface of this box" if web.host in ("0.0.0.0", "::", "") else web.host
    rule = "!" * 78
    return (f"\n{rule}\n"
            f"  OPEN-LAN: the status page, its API and /metrics are served WITHOUT a PIN\n"
            f"  on {where}, port {web.port}. Anyone who can reach it can read the store's\n"
            f"  figures. Use this only on a closed staff network; otherwise set\n"
            f"  web.access: pin, or listen on 127.0.0.1 (--host 127.0.0.1).\n"
            f"{rule}")


def _ssl_files(web: WebConfig) -> tuple[str, str] | None:
    """uvicorn's HTTPS settings for ``web.tls``, checked first (a one-line error).

    Raises:
        ConfigError: the certificate or key cannot be used.
    """
    if web.tls is None:
        return None
    try:
        web.tls.ssl_context()
    except ValueError as error:
        raise ConfigError(f"web.{error}") from None
    return web.tls.cert_file, web.tls.key_file


def serve(site: SiteConfig, db_path: Path, *, host: str | None = None,
          port: int | None = None) -> int:
    """Serve until stopped (0) or until IT asks for a restart (:data:`EXIT_RESTART`).

    Raises:
        ConfigError: the ``web:`` section is unusable, or the port is taken.
    """
    # The address served is part of the config in use (/admin/config shows it).
    served = {"host": host, "port": port}
    site = site.model_copy(update={"web": site.web.model_copy(
        update={key: value for key, value in served.items() if value is not None})})
    restart_requested = threading.Event()
    holder: dict[str, uvicorn.Server] = {}

    def restart() -> None:
        log.warning("Restart requested through /admin/restart.")
        restart_requested.set()
        holder["server"].should_exit = True

    app = create_app(WebDeps(site=site, db_path=db_path, restart=restart))
    host, port = site.web.host, site.web.port
    https = _ssl_files(site.web)
    cert_file, key_file = https or (None, None)
    sock = _listen(host, port)
    config = uvicorn.Config(
        app, log_level="info", access_log=False, server_header=False, proxy_headers=False,
        limit_concurrency=256, timeout_keep_alive=5, h11_max_incomplete_event_size=16_384,
        ssl_certfile=cert_file, ssl_keyfile=key_file,
    )
    server = uvicorn.Server(config)
    holder["server"] = server
    warning = open_lan_warning(site.web)
    if warning:
        log.warning("%s", warning)
    log.info("Status page on %s://%s:%d/ (access: %s).", "https" if https else "http", host,
             port, site.web.access)
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
    return EXIT_RESTART if restart_requested.is_set() else 0
