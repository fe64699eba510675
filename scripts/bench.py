#!/usr/bin/env python3
"""Every performance figure of the project, as ratios against baselines measured in
the same run. Runs each scripts/bench_*.py with --json and merges their figures,
prefixed by the bench's name (e.g. ``vision.ratio``), plus ``<name>.bench_seconds``.

    scripts/bench.py               a table
    scripts/bench.py --json        one JSON object: figure name -> number
    scripts/bench.py --quick       fewer passes and frames, for every bench that has --quick
    scripts/bench.py vision wifi   only these benches
    scripts/bench.py --list        the benches found

A bench is an executable scripts/bench_<name>.py; each runs in this checkout's .venv.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

from checkout_venv import REPO, enter, print_figures

enter(__file__)

SCRIPTS = REPO / "scripts"


def available() -> list[str]:
    """Names of the benches: executable ``bench_<name>.py`` files."""
    return sorted(
        path.stem.removeprefix("bench_")
        for path in SCRIPTS.glob("bench_*.py")
        if path.is_file() and os.access(path, os.X_OK)
    )


def command(name: str) -> list[str]:
    """How to start a bench: with this interpreter (the checkout's .venv, see enter())."""
    return [sys.executable, str(SCRIPTS / f"bench_{name}.py")]


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
    env = dict(os.environ)  # with $EDGE_ASSETS_DIR, which enter() sets
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
    print_figures(figures, args.json)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
