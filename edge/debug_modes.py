"""Debug modes: the few switches that lift a privacy guard, for engineers only.

A debug mode (for example ``edge replay --no-blur``, which writes people's faces
into a video) is never a service's setting. Turning one on goes through
:func:`announce_debug_mode`, which logs a loud warning to stderr and tells every
registered listener (the privacy audit log hooks in here), and
:func:`refuse_under_service`, which stops a debug mode from running under systemd,
where no engineer is watching the terminal.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from typing import TextIO

from edge.errors import EdgeError

log = logging.getLogger("edge.debug_mode")

# Set by systemd for every unit it starts: INVOCATION_ID always (since v232),
# NOTIFY_SOCKET for Type=notify services such as ours.
SERVICE_ENVIRONMENT = ("INVOCATION_ID", "NOTIFY_SOCKET")

Listener = Callable[[str, str], None]
_listeners: list[Listener] = []


class DebugModeRefused(EdgeError):
    """A debug mode was asked for where it must not run (under systemd)."""


def add_listener(listener: Listener) -> None:
    """Call ``listener(name, detail)`` whenever a debug mode is turned on (e.g. an audit log)."""
    if listener not in _listeners:
        _listeners.append(listener)


def remove_listener(listener: Listener) -> None:
    """Stop calling ``listener``."""
    if listener in _listeners:
        _listeners.remove(listener)


def running_as_service(environ: dict[str, str] | None = None) -> bool:
    """True when started by systemd (``INVOCATION_ID`` or ``NOTIFY_SOCKET`` set)."""
    env = os.environ if environ is None else environ
    return any(env.get(name) for name in SERVICE_ENVIRONMENT)


def refuse_under_service(name: str, environ: dict[str, str] | None = None) -> None:
    """Raise :class:`DebugModeRefused` when running under systemd.

    Args:
        name: the debug mode, as the user typed it (e.g. ``--no-blur``).
        environ: the environment to check (default: this process's).
    """
    env = os.environ if environ is None else environ
    found = [variable for variable in SERVICE_ENVIRONMENT if env.get(variable)]
    if found:
        raise DebugModeRefused(
            f"{name} is a debug mode for an engineer at a terminal and refuses to run under "
            f"systemd ({' and '.join(found)} set); run it by hand on your own test footage"
        )


def announce_debug_mode(name: str, detail: str, stream: TextIO | None = None) -> None:
    """Record that a debug mode is on: a loud warning on stderr, then every listener.

    Args:
        name: the debug mode (e.g. ``no-blur``).
        detail: what it does and to which output, in plain words.
        stream: where the banner goes (default: ``sys.stderr``).
    """
    out = stream or sys.stderr
    bar = "!" * 78
    print(f"{bar}\nWARNING: DEBUG MODE {name.upper()}: {detail}\n"
          f"Use it on your own test footage only; never on a store's cameras.\n{bar}",
          file=out, flush=True)
    log.warning("debug mode %s on: %s", name, detail)
    for listener in list(_listeners):
        listener(name, detail)
