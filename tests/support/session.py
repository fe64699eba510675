"""Work done once per test session and shared by its pytest-xdist workers (a replay,
a filled database, the privacy run): the first worker does it under a file lock while
the others wait, then all read the result."""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


@contextmanager
def session_lock(factory: pytest.TempPathFactory, name: str) -> Iterator[Path]:
    """Hold the session's lock ``name`` (one worker at a time); yields the folder the
    session's workers share."""
    base = factory.getbasetemp()
    root = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    with (root / f"{name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield root


def run_once(
    factory: pytest.TempPathFactory, name: str, build: Callable[[Path], dict]
) -> dict:
    """``build(folder)`` once per session; every caller gets its JSON-able result."""
    with session_lock(factory, name) as root:
        folder = root / name
        folder.mkdir(exist_ok=True)
        result = folder / "result.json"
        if not result.exists():
            result.write_text(json.dumps(build(folder)))
    return json.loads(result.read_text())
