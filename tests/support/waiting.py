"""Waiting on real services and processes: poll a condition, read a database another
process writes, stop a child process."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")


def wait_for(condition: Callable[[], T], timeout_s: float = 15.0, what: str = "condition",
             log: Path | None = None, *, poll_s: float = 0.1) -> T:
    """Call ``condition`` every ``poll_s`` until it returns something true, and return
    that; after ``timeout_s`` fail, naming ``what`` (and the end of ``log``, if given)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if value := condition():
            return value
        time.sleep(poll_s)
    tail = log.read_text()[-4000:] if log is not None and log.exists() else ""
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}\n{tail}".rstrip())


def query(path: Path, sql: str, params: tuple = ()) -> list[tuple]:
    """Rows of ``sql`` on the SQLite database another process writes; none while the
    file or the table does not exist yet."""
    if not path.exists():
        return []
    with sqlite3.connect(path, timeout=10) as conn:
        try:
            return conn.execute(sql, params).fetchall()
        except sqlite3.OperationalError as error:  # a table not created yet
            if "no such table" in str(error):
                return []
            raise


def terminate(process: subprocess.Popen, timeout_s: float) -> int:
    """SIGTERM, wait up to ``timeout_s``, then SIGKILL: the exit code."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
    return int(process.returncode)
