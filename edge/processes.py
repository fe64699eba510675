"""Which process is which, across crashes: a pid alone can be reused by the kernel, so a
process is recorded as its pid and its start time (``/proc/<pid>/stat`` field 22, clock
ticks since boot) and, across reboots, the kernel's boot id."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")


def boot_id() -> str | None:
    """The kernel's id of this boot (Linux), or None where there is none."""
    try:
        return (PROC / "sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return None


def start_ticks(pid: int) -> int | None:
    """When process ``pid`` started (clock ticks since boot), or None if there is no such
    live process (a zombie, already dead, counts as gone)."""
    try:
        stat = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may hold spaces or parentheses.
    fields = stat[stat.rindex(")") + 2 :].split()
    if fields[0] in ("Z", "X"):  # state, field 3
        return None
    return int(fields[19])  # field 22


@dataclass(frozen=True, slots=True)
class ProcessId:
    """A process, told apart from a later one that got the same pid."""

    pid: int
    start: int | None
    boot: str | None

    @classmethod
    def current(cls) -> ProcessId:
        return cls.of(os.getpid())

    @classmethod
    def of(cls, pid: int) -> ProcessId:
        return cls(pid, start_ticks(pid), boot_id())

    def alive(self) -> bool:
        """Whether this very process still runs: same boot, same pid, same start time."""
        if self.boot is not None and self.boot != boot_id():
            return False
        ticks = start_ticks(self.pid)
        return ticks is not None and (self.start is None or ticks == self.start)
