"""The ``edge`` command as a child process, the way an operator runs it."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from typing import Any

EDGE = [sys.executable, "-m", "edge"]


def run_edge(*args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """Run ``edge ARGS`` to the end (at most 300 s), capturing its text output."""
    return subprocess.run([*EDGE, *args], capture_output=True, text=True, timeout=300, **kwargs)


def stopped_by(
    signum: int, command: list[str], when_ready: Callable[[subprocess.Popen[str]], Any]
) -> tuple[Any, str, str]:
    """Start ``command``, call ``when_ready(process)`` (it waits until the command is
    half-way), then send ``signum`` and wait for it to end, as an operator's Ctrl-C or a
    ``timeout`` would. Returns what ``when_ready`` returned and the rest of stdout and
    stderr; asserts the command ended on that signal (exit 128 + signum) with no
    traceback. The process is killed if anything goes wrong."""
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    try:
        ready = when_ready(process)
        process.send_signal(signum)
        stdout, stderr = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 128 + signum, stderr
    assert "Traceback" not in stderr
    return ready, stdout, stderr
