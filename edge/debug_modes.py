"""Debug modes: the few switches that lift a privacy guard, for engineers only.

A debug mode (``edge replay --no-blur``, which writes people's faces into an
annotated video; ``edge wifi sniff --debug-raw-pcap FILE``, which keeps raw frames
with their addresses for driver debugging) is never a setting of the site config
and is off by default. Turning one on:

1. :func:`refuse_under_service` first: it will not run under systemd
   (``INVOCATION_ID`` / ``NOTIFY_SOCKET``) or under ``edge run`` (``EDGE_SERVICE``),
   where no engineer is watching;
2. :func:`announce_debug_mode`: a loud banner on stderr and a WARNING log line, a
   row in the privacy audit log, and a ``debug_modes`` row that the status page
   shows as a banner for as long as the mode is on. The row goes (with an audit
   row saying so) when the returned handle is stopped, its ``with`` block ends,
   or the process exits; a process killed outright leaves its row, which
   ``edge privacy debug-modes`` clears once the process is gone.
"""

from __future__ import annotations

import atexit
import logging
import os
import socket
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TextIO

import sqlite_utils

from edge.errors import EdgeError
from edge.privacy import store as privacy_store
from edge.privacy.store import active_debug_modes, delete_debug_mode, insert_debug_mode
from edge.storage.database import open_database

log = logging.getLogger("edge.debug_mode")

# systemd sets INVOCATION_ID for every unit it starts (v232+), NOTIFY_SOCKET for
# Type=notify units such as ours; `edge run` sets EDGE_SERVICE for itself and its children.
SERVICE_ENVIRONMENT = ("INVOCATION_ID", "NOTIFY_SOCKET", "EDGE_SERVICE")

Listener = Callable[[str, str], None]
_listeners: list[Listener] = []


class DebugModeRefused(EdgeError):
    """A debug mode was asked for where it must not run (under a service)."""


def add_listener(listener: Listener) -> None:
    """Call ``listener(name, detail)`` whenever a debug mode is turned on."""
    if listener not in _listeners:
        _listeners.append(listener)


def remove_listener(listener: Listener) -> None:
    if listener in _listeners:
        _listeners.remove(listener)


def running_as_service(environ: Mapping[str, str] | None = None) -> bool:
    """True under systemd or ``edge run``."""
    env = os.environ if environ is None else environ
    return any(env.get(name) for name in SERVICE_ENVIRONMENT)


def refuse_under_service(name: str, environ: Mapping[str, str] | None = None) -> None:
    """Raise :class:`DebugModeRefused` when running as a service.

    Args:
        name: the debug mode, as the user typed it (e.g. ``--no-blur``).
        environ: the environment to check (default: this process's).
    """
    env = os.environ if environ is None else environ
    found = [variable for variable in SERVICE_ENVIRONMENT if env.get(variable)]
    if found:
        raise DebugModeRefused(
            f"{name} is a debug mode for an engineer at a terminal and refuses to run under "
            f"systemd or `edge run` ({' and '.join(found)} set); run it by hand on your own "
            "test footage or captures"
        )


class DebugMode:
    """A debug mode that is on; :meth:`stop` (or leaving ``with``) turns the record off."""

    def __init__(self, name: str, detail: str, db: sqlite_utils.Database, mode_id: int) -> None:
        self.name, self.detail = name, detail
        self._db, self._id = db, mode_id
        self.active = True
        atexit.register(self.stop)

    def stop(self, reason: str = "stopped") -> None:
        if not self.active:
            return
        self.active = False
        atexit.unregister(self.stop)
        try:
            delete_debug_mode(self._db, self._id, time.time(), reason)
        except Exception as error:   # at exit, never mask the real error
            log.error("Could not record that debug mode %s stopped: %s", self.name, error)
        else:
            log.warning("debug mode %s off", self.name)

    def __enter__(self) -> DebugMode:
        return self

    def __exit__(self, *exc: object) -> None:
        error = exc[0]
        self.stop("stopped" if error is None else
                  f"stopped by {getattr(error, '__name__', error)}")


def _database(db: sqlite_utils.Database | str | Path | None) -> sqlite_utils.Database:
    if isinstance(db, sqlite_utils.Database):
        return db
    # None: the default database of the state directory. Only the tables of debug modes
    # are needed here; the services bring up the rest of the schema when they start.
    return open_database(db, migrations=[privacy_store.MIGRATIONS])


def announce_debug_mode(
    name: str,
    detail: str,
    db: sqlite_utils.Database | str | Path | None = None,
    *,
    stream: TextIO | None = None,
) -> DebugMode:
    """Turn on the record of debug mode ``name``: banner, log, audit row, status page.

    Args:
        name: the debug mode (e.g. ``no-blur``).
        detail: what it does and to which output, in plain words.
        db: the box's database (or its path); default the state directory's.
        stream: where the banner goes (default: ``sys.stderr``).

    Returns:
        The handle; the record is cleared by ``stop()``, a ``with`` block, or at exit.

    Raises:
        StorageError: the mode cannot be recorded, so it must not run.
    """
    database = _database(db)
    clear_stale_debug_modes(database)
    mode_id = insert_debug_mode(database, name, detail, os.getpid(), socket.gethostname(),
                                time.time())
    bar = "!" * 78
    print(f"{bar}\nWARNING: DEBUG MODE {name.upper()}: {detail}\n"
          "Use it on your own test footage only; never on a store's cameras.\n"
          f"It is shown on the status page and in the privacy audit log until it stops.\n{bar}",
          file=stream or sys.stderr, flush=True)
    log.warning("debug mode %s on: %s", name, detail)
    for listener in list(_listeners):
        listener(name, detail)
    return DebugMode(name, detail, database, mode_id)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True       # someone else's process: alive
    return True


def clear_stale_debug_modes(db: sqlite_utils.Database) -> list[str]:
    """Turn off the records of debug modes whose process (on this host) is gone."""
    host = socket.gethostname()
    cleared = []
    for mode in active_debug_modes(db):
        gone = mode["host"] == host and not _alive(mode["pid"])
        if gone and delete_debug_mode(db, mode["id"], time.time(), "its process is gone"):
            cleared.append(mode["name"])
    return cleared
