#!/usr/bin/env python3
"""Every performance figure of the project, as ratios against baselines measured in
the same run. Runs each scripts/bench_* with --json and merges their figures,
prefixed by the bench's name (e.g. ``vision.ratio``), plus ``<name>.bench_seconds``.

    scripts/bench               a table
    scripts/bench --json        one JSON object: figure name -> number
    scripts/bench --quick       fewer passes and frames, for every bench that has --quick
    scripts/bench vision wifi   only these benches
    scripts/bench --list        the benches found

A bench is an executable scripts/bench_<name> with no suffix (bench_wifi.py is the
module its bash wrapper bench_wifi runs). Python benches run in this checkout's .venv.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parent
REPO = SCRIPTS.parent
PYTHON = REPO / ".venv" / "bin" / "python"


def available() -> list[str]:
    """Names of the benches: executable ``bench_<name>`` files without a suffix."""
    return sorted(
        path.name.removeprefix("bench_")
        for path in SCRIPTS.glob("bench_*")
        if path.is_file() and not path.suffix and os.access(path, os.X_OK)
    )


def command(name: str) -> list[str]:
    """How to start a bench: Python ones with the venv's interpreter, others as they are."""
    path = SCRIPTS / f"bench_{name}"
    with path.open("rb") as stream:
        first = stream.readline()
    if b"python" in first:
        return [str(PYTHON if PYTHON.exists() else Path(sys.executable)), str(path)]
    return [str(path)]


def supports_quick(name: str, env: dict[str, str]) -> bool:
    """Whether the bench lists --quick in its --help (benches added later may not)."""
    result = subprocess.run([*command(name), "--help"], capture_output=True, text=True,
                            env=env, cwd=REPO, check=False)
    return result.returncode == 0 and "--quick" in result.stdout


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*",
                        help=f"benches to run (default all: {', '.join(available())})")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--quick", action="store_true",
                        help="pass --quick to every bench that supports it")
    parser.add_argument("--list", action="store_true", help="print the benches found and exit")
    args = parser.parse_args()
    if args.list:
        print("\n".join(available()))
        return 0
    names = args.names or available()
    unknown = sorted(set(names) - set(available()))
    if unknown:
        parser.error(f"unknown bench {', '.join(unknown)}; known: {', '.join(available())}")
    env = {**os.environ,
           "EDGE_ASSETS_DIR": os.environ.get("EDGE_ASSETS_DIR", str(REPO.parent / "shared"))}
    figures: dict[str, float] = {}
    failed = []
    for name in names:
        started = time.monotonic()
        extra = ["--quick"] if args.quick and supports_quick(name, env) else []
        print(f"bench {name} {' '.join(extra)}...", file=sys.stderr, flush=True)
        result = subprocess.run([*command(name), "--json", *extra], capture_output=True,
                                text=True, env=env, cwd=REPO, check=False)
        lines = [line for line in result.stdout.splitlines() if line.strip().startswith("{")]
        if result.returncode != 0 or not lines:
            failed.append(name)
            print(f"bench {name} failed (exit {result.returncode}):\n{result.stderr[-2000:]}",
                  file=sys.stderr)
            continue
        for key, value in json.loads(lines[-1]).items():
            figures[f"{name}.{key}"] = value
        figures[f"{name}.bench_seconds"] = round(time.monotonic() - started, 1)
    if failed:
        figures["failed_benches"] = len(failed)
    if args.json:
        print(json.dumps(figures))
    else:
        width = max((len(k) for k in figures), default=10)
        for key, value in figures.items():
            print(f"{key:<{width}}  {value}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
