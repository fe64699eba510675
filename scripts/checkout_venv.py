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

import argparse
import json
import os
import sys
from collections.abc import Mapping
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


def bench_parser(doc: str, quick: str | None) -> argparse.ArgumentParser:
    """The options every bench shares: ``--json`` and, where the bench has a shorter
    run, ``--quick`` (``quick`` says what it shortens; ``scripts/bench.py --quick``
    passes it to every bench whose ``--help`` lists it)."""
    parser = argparse.ArgumentParser(description=doc,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    if quick:
        parser.add_argument("--quick", action="store_true",
                            help=f"{quick} (scripts/bench.py --quick)")
    return parser


def print_figures(figures: Mapping[str, object], as_json: bool) -> int:
    """Print a bench's figures as one JSON object or as a table of name and value;
    returns the exit status 0."""
    if as_json:
        print(json.dumps(figures))
    else:
        width = max((len(name) for name in figures), default=10)
        for name, value in figures.items():
            print(f"{name:>{width}}  {value}")
    return 0
