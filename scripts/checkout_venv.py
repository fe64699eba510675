"""The start every Python script of this checkout shares: its interpreter, paths and assets.

The scripts need the project and its extras, which ``scripts/setup`` installs into
``.venv``. Started with any other Python (``python3 scripts/bench.py``), a script
re-runs itself with ``.venv/bin/python``; with no ``.venv`` it goes on with the
interpreter it has, which may hold the project too. Each script begins with::

    from checkout_venv import REPO, SHARED, enter

    enter(__file__)

(run as a script, its own folder is first on ``sys.path``, so this module is found).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
VENV = REPO / ".venv"
# The shared recordings and models: $EDGE_ASSETS_DIR, else the folder beside the checkout.
SHARED = Path(os.environ.get("EDGE_ASSETS_DIR") or REPO.parent / "shared")


def reexec(script: str) -> None:
    """Replace this process with ``script`` under ``.venv/bin/python``, unless it
    already runs there (or there is no ``.venv``)."""
    python = VENV / "bin" / "python"
    if not python.exists() or Path(sys.prefix).resolve() == VENV.resolve():
        return
    os.execv(python, [str(python), script, *sys.argv[1:]])


def enter(script: str) -> None:
    """Run ``script`` under the checkout's ``.venv`` (see :func:`reexec`), with the
    checkout first on ``sys.path`` (so its ``edge``, ``sync`` and ``tests`` are the
    ones imported) and ``$EDGE_ASSETS_DIR`` set for the library and child processes."""
    reexec(script)
    sys.path.insert(0, str(REPO))
    os.environ.setdefault("EDGE_ASSETS_DIR", str(SHARED))
