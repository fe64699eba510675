"""systemd readiness and watchdog notifications (``Type=notify``, ``WatchdogSec``).

A thin wrapper over the ``sdnotify`` package: outside systemd (``$NOTIFY_SOCKET``
unset) every call is a no-op, so the same code runs under systemd, the
supervisor and tests.
"""

from __future__ import annotations

import os
import time

import sdnotify


class ServiceNotifier:
    """Tells systemd when the service is ready, alive, and what it is doing."""

    def __init__(self) -> None:
        self.enabled = bool(os.environ.get("NOTIFY_SOCKET"))
        self._notifier = sdnotify.SystemdNotifier() if self.enabled else None
        watchdog_usec = int(os.environ.get("WATCHDOG_USEC", "0") or 0)
        # Ping at a third of the watchdog period, as sd_watchdog_enabled(3) advises.
        self.interval_s = watchdog_usec / 3e6 if watchdog_usec else 10.0
        self._last_ping = 0.0

    def _send(self, message: str) -> None:
        if self._notifier is not None:
            self._notifier.notify(message)

    def ready(self, status: str) -> None:
        self._send(f"READY=1\nSTATUS={status}")

    def status(self, status: str) -> None:
        self._send(f"STATUS={status}")

    def alive(self) -> None:
        """Ping the watchdog (rate-limited). Call only when the service made progress."""
        now = time.monotonic()
        if now - self._last_ping >= self.interval_s:
            self._send("WATCHDOG=1")
            self._last_ping = now

    def stopping(self) -> None:
        self._send("STOPPING=1")
