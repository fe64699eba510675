"""Run an expensive setup once per test session, whichever xdist worker asks first.

``xdist_group`` marks do not keep tests on one worker with pytest 9.2 and
pytest-xdist 3.8 (a 6-test sample spread over both workers under --dist loadgroup),
so shared replays are built under a file lock in the session's temporary folder,
as tests/test_vision_accuracy.py does, and their results read back from JSON.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest


def run_once(
    factory: pytest.TempPathFactory, name: str, build: Callable[[Path], dict]
) -> dict:
    """``build(folder)`` once per session; every caller gets its JSON-able result."""
    base = factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent  # the session's folder, shared by its workers
    folder = base / name
    folder.mkdir(exist_ok=True)
    with (base / f"{name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        result = folder / "result.json"
        if not result.exists():
            result.write_text(json.dumps(build(folder)))
    return json.loads(result.read_text())
