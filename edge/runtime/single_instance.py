"""One process per role: a second instance started by mistake refuses to run."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import IO

from edge.errors import EdgeError


class AlreadyRunningError(EdgeError):
    """Another process already holds this role's lock."""


class InstanceLock:
    """An exclusive ``flock`` on ``<state dir>/locks/<role>.lock``, released on exit.

    The kernel drops the lock when the process dies (even on kill -9), so a
    crashed service never blocks its own restart.

    Args:
        directory: the state folder.
        role: the lock's name, and how the refusal names the other process.
        how_to_stop: the end of the refusal: how to stop the other one.
    """

    def __init__(
        self,
        directory: Path,
        role: str,
        *,
        how_to_stop: str = "stop it first (systemctl stop) or remove the duplicate service",
    ) -> None:
        self.path = directory / "locks" / f"{role}.lock"
        self.role = role
        self.how_to_stop = how_to_stop
        self._file: IO[str] | None = None

    def acquire(self) -> InstanceLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = self.path.open("a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            handle.close()
            raise AlreadyRunningError(
                f"another {self.role} is already running (pid {holder}); {self.how_to_stop}"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        self._file = handle
        return self

    def release(self) -> None:
        if self._file is not None:
            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
            self._file = None

    def __enter__(self) -> InstanceLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()
