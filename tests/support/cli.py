"""The ``edge`` command as a child process, the way an operator runs it."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

EDGE = [sys.executable, "-m", "edge"]


def run_edge(*args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """Run ``edge ARGS`` to the end (at most 300 s), capturing its text output."""
    return subprocess.run([*EDGE, *args], capture_output=True, text=True, timeout=300, **kwargs)
