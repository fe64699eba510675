"""Run a script of this checkout with the checkout's own interpreter.

The scripts need the project and its extras, which ``scripts/setup`` installs into
``.venv``. Started with any other Python (``scripts/bench`` finds ``python3`` on
the PATH), a script re-runs itself with ``.venv/bin/python``; with no ``.venv`` it
goes on with the interpreter it has, which may hold the project too.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

VENV = Path(__file__).resolve().parents[1] / ".venv"


def reexec(script: str) -> None:
    """Replace this process with ``script`` under ``.venv/bin/python``, unless it
    already runs there (or there is no ``.venv``)."""
    python = VENV / "bin" / "python"
    if not python.exists() or Path(sys.prefix).resolve() == VENV.resolve():
        return
    os.execv(python, [str(python), script, *sys.argv[1:]])
