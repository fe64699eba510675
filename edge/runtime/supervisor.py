"""``edge run``: every service of the box as child processes, restarted when they die.

On an installed box systemd does this job (one unit per service, see ``systemd/``);
the supervisor gives engineers and the end-to-end test the same process layout
with one command. A child that exits is restarted with a growing delay; one that
keeps crashing (``restart_burst`` times within ``restart_window_s``) is left
stopped with an error in the log, like systemd's ``StartLimitBurst``, so a crash
loop never hides its cause. SIGTERM stops every child: terminate, wait, then kill.

Children die with their supervisor: each asks the kernel for SIGTERM when its parent
dies (``PR_SET_PDEATHSIG``), so a ``kill -9`` of ``edge run`` no longer leaves them
running with health ``ok`` and holding the locks the next ``edge run`` needs. The
supervisor also records its children (pid and start time) in
``<state dir>/locks/supervisor.children.json``; the next one stops any it finds still
running (one that ignored SIGTERM) before it starts its own.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import logging
import os
import resource
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import KW_ONLY, dataclass, field
from pathlib import Path

from edge.config import SiteConfig
from edge.paths import state_dir
from edge.processes import ProcessId
from edge.runtime.single_instance import InstanceLock

log = logging.getLogger(__name__)

EXIT_CONFIG = 78  # EX_CONFIG: restarting cannot help
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def _libc_prctl() -> Callable[..., int] | None:
    try:
        return ctypes.CDLL(None, use_errno=True).prctl  # type: ignore[no-any-return]
    except (OSError, AttributeError):  # not Linux: children only stop on a clean stop
        return None


_PRCTL = _libc_prctl()  # looked up here: the child must not load libraries after fork


def _die_with(parent: int) -> Callable[[], None]:
    """A ``preexec_fn`` (runs in the child, between fork and exec) that has the kernel
    send SIGTERM to the child when ``parent`` dies, even by SIGKILL. The signal goes when
    the *thread* that started the child ends, so :meth:`Supervisor.run` must keep running
    on one thread. The child dumps no core, as the units' ``LimitCORE=0``: a crashing
    camera worker's memory holds frames (faces)."""
    prctl = _PRCTL

    def preexec() -> None:
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        if prctl is None:  # not Linux: children only stop on a clean stop
            return
        prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before the request: go now
            os.kill(os.getpid(), signal.SIGTERM)

    return preexec


@dataclass(slots=True)
class ChildService:
    """One supervised process."""

    name: str
    argv: list[str]
    process: subprocess.Popen | None = None
    starts: deque[float] = field(default_factory=lambda: deque(maxlen=16))
    next_start: float = 0.0
    given_up: bool = False
    every_s: float | None = None    # a periodic job (systemd: a timer): started again this
                                    # long after it exits, whatever its exit code


def services_for(site: SiteConfig, config_path: Path) -> list[ChildService]:
    """The processes a site needs: one per camera, Wi-Fi if configured, sync, web, and
    the periodic retention purge."""
    base = [sys.executable, "-m", "edge", "run"]
    config = ["--config", str(config_path)]
    services = [
        ChildService(f"camera-{camera.id}", [*base, "camera", *config, "--camera", camera.id])
        for camera in site.cameras
    ]
    if site.fuses_cameras:
        services.append(ChildService("fusion", [*base, "fusion", *config]))
    if site.wifi is not None and site.wifi.interface is not None:
        services.append(ChildService("wifi", [*base, "wifi", *config]))
    if site.sync.enabled:
        services.append(ChildService("sync", [*base, "sync", *config]))
    services.append(ChildService("web", [*base, "web", *config]))
    # The retention purge, as store-edge-purge.timer runs it on an installed box.
    services.append(ChildService("purge", [sys.executable, "-m", "edge", "purge", *config],
                                 every_s=site.service.purge_interval_s))
    return services


def children_file() -> Path:
    """Where ``edge run`` records its children, for the next one to clean up after it."""
    return state_dir() / "locks" / "supervisor.children.json"


def supervisor_lock() -> InstanceLock:
    """The lock of ``edge run`` itself (``<state dir>/locks/supervisor.lock``), like each
    service's own: a second supervisor is refused before it starts any child."""
    return InstanceLock(
        state_dir(), "supervisor",
        how_to_stop="stop it first (Ctrl-C in its terminal, or kill that pid); "
        "one `edge run` runs every service",
    )


@dataclass(eq=False)
class Supervisor:
    """Starts, watches and restarts child services until told to stop."""

    services: list[ChildService]
    _: KW_ONLY
    restart_delay_s: float = 1.0
    restart_delay_max_s: float = 10.0
    restart_burst: int = 5
    restart_window_s: float = 300.0
    stop_timeout_s: float = 10.0
    children_file: Path | None = None
    stop_event: threading.Event = field(default_factory=threading.Event, init=False)

    def _start(self, service: ChildService, now: float) -> None:
        service.starts.append(now)
        service.process = subprocess.Popen(service.argv, preexec_fn=_die_with(os.getpid()))
        log.info("Started %s (pid %d).", service.name, service.process.pid)
        self._record_children()

    def _record_children(self) -> None:
        if self.children_file is None:
            return
        children = [
            {"name": s.name, "pid": child.pid, "start": child.start, "boot": child.boot}
            for s in self.services if s.process is not None
            for child in [ProcessId.of(s.process.pid)]
        ]
        try:
            self.children_file.parent.mkdir(parents=True, exist_ok=True)
            temporary = self.children_file.with_suffix(".tmp")
            temporary.write_text(json.dumps(children))
            temporary.replace(self.children_file)
        except OSError as error:  # bookkeeping for a crash: never a reason to stop
            log.warning("Cannot record the supervised pids in %s: %s", self.children_file, error)

    def stop_stale_children(self) -> list[int]:
        """Stop the children a previous supervisor recorded that still run (it was killed
        and they outlived it): terminate, wait ``stop_timeout_s``, kill. Only call while
        holding the supervisor lock. Returns their pids."""
        if self.children_file is None or not self.children_file.exists():
            return []
        try:
            recorded = json.loads(self.children_file.read_text())
            stale = [ProcessId(int(c["pid"]), c["start"], c["boot"]) for c in recorded]
        except (OSError, ValueError, KeyError, TypeError) as error:
            log.warning("Ignoring %s: %s", self.children_file, error)
            return []
        stale = [child for child in stale if child.pid != os.getpid() and child.alive()]
        if stale:
            log.warning("Stopping %d services left running by a previous `edge run` "
                        "(pids %s).", len(stale), ", ".join(str(c.pid) for c in stale))
        for sig in (signal.SIGTERM, signal.SIGKILL):
            for child in stale:
                if child.alive():
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(child.pid, sig)
            deadline = time.monotonic() + self.stop_timeout_s
            while any(c.alive() for c in stale) and time.monotonic() < deadline:
                time.sleep(0.05)
        self.children_file.unlink(missing_ok=True)
        return [child.pid for child in stale]

    def _on_exit(self, service: ChildService, code: int, now: float) -> None:
        service.process = None
        if service.every_s is not None:
            if code != 0:
                log.error("%s failed (exit code %d); next run in %.0f s.", service.name, code,
                          service.every_s)
            service.next_start = now + service.every_s
            return
        recent = [t for t in service.starts if now - t <= self.restart_window_s]
        if code == EXIT_CONFIG:
            service.given_up = True
            log.error("%s refused its configuration (exit %d); not restarting it.",
                      service.name, code)
        elif len(recent) >= self.restart_burst:
            service.given_up = True
            log.error(
                "%s exited %d times in %.0f s (last exit code %d); not restarting it again.",
                service.name, len(recent), self.restart_window_s, code,
            )
        else:
            delay = min(self.restart_delay_s * 2 ** max(len(recent) - 1, 0),
                        self.restart_delay_max_s)
            service.next_start = now + delay
            log.warning("%s exited with code %d; restarting in %.0f s.", service.name, code, delay)

    def run(self, poll_s: float = 0.2) -> int:
        """Supervise until :attr:`stop_event` is set; return 1 if a service was given up."""
        self.stop_stale_children()
        try:
            while not self.stop_event.is_set():
                now = time.monotonic()
                for service in self.services:
                    if service.given_up:
                        continue
                    if service.process is None:
                        if now >= service.next_start:
                            self._start(service, now)
                    elif (code := service.process.poll()) is not None:
                        self._on_exit(service, code, now)
                if all(s.given_up for s in self.services):
                    break
                self.stop_event.wait(poll_s)
        finally:
            self.stop_all()
        return 1 if any(s.given_up for s in self.services) else 0

    def stop_all(self) -> None:
        running = [s for s in self.services if s.process is not None and s.process.poll() is None]
        for service in running:
            service.process.terminate()  # type: ignore[union-attr]
        deadline = time.monotonic() + self.stop_timeout_s
        for service in running:
            try:
                service.process.wait(max(deadline - time.monotonic(), 0.1))  # type: ignore[union-attr]
            except subprocess.TimeoutExpired:
                log.warning("%s did not stop in %.0f s; killing it.", service.name,
                            self.stop_timeout_s)
                service.process.kill()  # type: ignore[union-attr]
                service.process.wait()  # type: ignore[union-attr]
        if self.children_file is not None:
            self.children_file.unlink(missing_ok=True)
