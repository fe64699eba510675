"""Entry points of the long-running services other than cameras: each holds its
single-instance lock, tells systemd when it is ready and alive, and stops on SIGTERM."""

from __future__ import annotations

import logging
import signal
import sqlite3
import threading
import urllib.request
from collections.abc import Callable
from pathlib import Path

import sqlite_utils

from edge.config import SiteConfig
from edge.errors import ConfigError, EdgeError
from edge.paths import state_dir
from edge.privacy.settings import record_service_start
from edge.runtime.schema import open_database
from edge.runtime.single_instance import InstanceLock
from edge.runtime.systemd_notify import ServiceNotifier
from edge.storage.health import report_health

log = logging.getLogger(__name__)


def stop_on_signals() -> threading.Event:
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    return stop


def run_sync_service(site: SiteConfig, db_path: Path) -> None:
    """Aggregate closed windows into the outbox and publish them, until SIGTERM."""
    from sync.publisher import SyncService

    if not site.sync.enabled:
        raise ConfigError("sync.enabled is false in the site config: nothing to run")
    late = site.settle_warning()
    if late:
        log.warning("%s", late)
    with InstanceLock(state_dir(), "sync"):
        db = open_database(db_path)
        record_service_start(db, site, "service:sync")
        SyncService(site, db).run(stop_on_signals(), ServiceNotifier())


def run_fusion_service(site: SiteConfig, db_path: Path) -> None:
    """Fuse the cameras' floor sightings into store-wide tracks, until SIGTERM."""
    from edge.runtime.fusion_worker import FusionWorker

    if not site.fuses_cameras:
        raise ConfigError("the site has one camera: there is nothing to fuse")
    notifier = ServiceNotifier()
    with InstanceLock(state_dir(), "fusion"):
        db = open_database(db_path)
        record_service_start(db, site, "service:fusion")
        worker = FusionWorker(site, db)
        notifier.ready(f"fusing {len(site.cameras)} cameras")
        worker.run(stop_on_signals(), on_alive=notifier.alive)


def run_wifi_service(site: SiteConfig, db_path: Path) -> None:
    """Count probe requests on the configured monitor interface, until SIGTERM."""
    from edge.wifi.service import run_sniffer

    if site.wifi is None or site.wifi.interface is None:
        raise ConfigError("wifi.interface is not set in the site config: nothing to listen on")
    notifier = ServiceNotifier()
    with InstanceLock(state_dir(), "wifi"):
        notifier.ready(f"listening on {site.wifi.interface}")
        run_sniffer(site, site.wifi.interface, open_database(db_path), stop_on_signals(),
                    on_alive=notifier.alive)


def _watch_web(
    url: str,
    notifier: ServiceNotifier,
    done: threading.Event,
    report: Callable[[str, str], None] | None = None,
    every_s: float = 5.0,
) -> None:
    """Ping systemd's watchdog only while the page really answers: a hung event loop
    stops the pings and systemd restarts the service. Each round also reports the
    page's health as component ``web`` (``report(status, message)``), so that
    ``edge status`` shows it like the other services."""
    ready = False
    while not done.wait(min(notifier.interval_s, every_s)):
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                answered = response.status == 200
        except OSError:
            answered = False
        if answered and not ready:
            notifier.ready("status page is serving")
            ready = True
        if answered:
            notifier.alive()
        if report is not None and (answered or ready):
            if answered:
                report("ok", f"The status page is answering at {url.removesuffix('/healthz')}.")
            else:
                report("down", f"The status page stopped answering at "
                               f"{url.removesuffix('/healthz')}.")


def _web_health_reporter(site: SiteConfig, db_path: Path) -> Callable[[str, str], None]:
    """``report(status, message)`` writing the ``web`` health row; a busy database
    skips one report rather than stopping the watchdog thread."""
    state: dict[str, sqlite_utils.Database] = {}

    def report(status: str, message: str) -> None:
        try:
            if "db" not in state:
                state["db"] = open_database(db_path)
            report_health(state["db"], "web", status, message, {"port": site.web.port})
        except (sqlite3.Error, EdgeError) as error:
            log.warning("status page: could not record its health: %s", error)

    return report


def run_web_service(site: SiteConfig, db_path: Path) -> int:
    """Serve the status page until SIGTERM; returns the exit code (75: restart asked)."""
    from edge.web.server import serve

    notifier = ServiceNotifier()
    host = "127.0.0.1" if site.web.host in ("0.0.0.0", "::", "") else site.web.host
    url = f"http://{host}:{site.web.port}/healthz".replace("http://::1", "http://[::1]")
    done = threading.Event()
    with InstanceLock(state_dir(), "web"):
        watcher = threading.Thread(
            target=_watch_web, daemon=True,
            args=(url, notifier, done, _web_health_reporter(site, db_path),
                  site.service.health_interval_s))
        watcher.start()
        try:
            # Bring the schema up to date once, so every table the page reads exists.
            open_database(db_path).close()
            return serve(site, db_path)
        finally:
            done.set()
            notifier.stopping()
