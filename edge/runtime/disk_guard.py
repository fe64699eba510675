"""Graceful behaviour when the disk fills: raw data stops first.

Raw floor trajectories are the first thing to give up when free space runs low;
visits, aggregates and the outbox keep being written, so no published figure is
lost while the disk is cleaned up.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path


class DiskGuard:
    """Answers "may I write raw data?" from the free space of the state folder."""

    def __init__(self, path: Path, min_free_mb: int, check_every_s: float = 10.0) -> None:
        self.path = path
        self.min_free_bytes = min_free_mb * 1024 * 1024
        self.check_every_s = check_every_s
        self._checked_at = float("-inf")
        self._free = 0

    def free_bytes(self) -> int:
        now = time.monotonic()
        if now - self._checked_at >= self.check_every_s:
            self._free = shutil.disk_usage(self.path).free
            self._checked_at = now
        return self._free

    def raw_writes_allowed(self) -> bool:
        return self.free_bytes() >= self.min_free_bytes
