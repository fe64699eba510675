#!/usr/bin/env python3
"""Benchmark the status page: latency under a loopback load of many concurrent clients.

Starts `edge web serve` as its own process on a database (default: a demo day built
from replays of the shared PETS recording, as the tests do), then for each target
runs N concurrent clients for a few seconds and reports p50/p95/p99 latency,
throughput and errors. The baseline is /healthz under the same load, measured in
the same run: each target's p95 is also given as a ratio to it.

    scripts/bench_web.py                   # report
    scripts/bench_web.py --json            # one JSON object, name -> number
    scripts/bench_web.py --clients 50 --seconds 5 --cache-s 0 --db var/edge.db --day 2026-03-10
    scripts/bench_web.py --busy 3000000    # a busy day's refresh, in-process (web_busy_day.py)
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from checkout_venv import REPO, bench_parser, enter

enter(__file__)

import asyncio
import json
import socket
import statistics
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

from edge.config import load_site
from tests.support.web_support import DAY, fill_store_day

PETS_SITE = REPO / "calibration" / "pets09" / "site.yaml"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


async def _get(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> int:
    """One HTTP/1.1 GET on a kept-alive connection; returns the status code."""
    writer.write(request)
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    await reader.readexactly(length)
    return status


async def load(host: str, port: int, path: str, clients: int, seconds: float) -> dict[str, float]:
    """``clients`` connections, each sending requests back to back for ``seconds``.

    A bare asyncio HTTP/1.1 client: on a 2-core box a full HTTP library would
    take the CPU the server needs and the figures would measure the client.
    """
    request = f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nAccept: */*\r\n\r\n".encode()
    latencies: list[float] = []
    errors = 0
    connections = [await asyncio.open_connection(host, port) for _ in range(clients)]
    await _get(*connections[0], request)  # warm: first computation
    stop = time.perf_counter() + seconds

    async def worker(reader, writer) -> None:
        nonlocal errors
        while time.perf_counter() < stop:
            started = time.perf_counter()
            try:
                ok = await _get(reader, writer, request) == 200
            except (OSError, asyncio.IncompleteReadError, ValueError):
                ok = False
                reader, writer = await asyncio.open_connection(host, port)
            latencies.append(time.perf_counter() - started)
            errors += not ok

    began = time.perf_counter()
    await asyncio.gather(*(worker(r, w) for r, w in connections))
    elapsed = time.perf_counter() - began
    for _, writer in connections:
        writer.close()
    ms = [1000 * v for v in latencies]
    return {"p50_ms": percentile(ms, 50), "p95_ms": percentile(ms, 95),
            "p99_ms": percentile(ms, 99), "mean_ms": statistics.fmean(ms) if ms else float("nan"),
            "requests_per_s": len(ms) / elapsed, "requests": len(ms), "errors": errors}


def build_demo_db(folder: Path) -> tuple[Path, str]:
    path = folder / "bench.db"
    fill_store_day(path, load_site(PETS_SITE))
    return path, DAY.isoformat()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(folder: Path, db: Path, cache_s: float) -> tuple[subprocess.Popen, str]:
    site = folder / "site.yaml"
    # The demo's own web: section, with the cache setting (appending a second `web:`
    # would be refused as a duplicate key).
    site.write_text(PETS_SITE.read_text().replace("\nweb:\n", f"\nweb:\n  cache_s: {cache_s}\n", 1))
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "edge", "web", "serve", "--site", str(site), "--db", str(db),
         "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "EDGE_STATE_DIR": str(folder)})
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"edge web serve failed:\n{process.communicate()[1]}")
        try:
            with urllib.request.urlopen(base + "/healthz", timeout=1) as response:
                if response.status == 200:
                    return process, base
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise SystemExit("edge web serve did not answer within 60 s")


def main() -> None:
    parser = bench_parser(__doc__, quick="2 seconds per target")
    parser.add_argument("--clients", type=int, default=50, help="concurrent clients (default 50)")
    parser.add_argument("--seconds", type=float, default=5.0, help="seconds per target")
    parser.add_argument("--cache-s", type=float, default=2.0,
                        help="web.cache_s of the server (default 2, as shipped; 0 = no cache)")
    parser.add_argument("--db", type=Path, help="an existing database (default: a demo day)")
    parser.add_argument("--day", help="day to show, YYYY-MM-DD (default: the demo day)")
    parser.add_argument("--busy", type=int, metavar="N",
                        help="instead: a busy day of N positions (3000000 for the review's), "
                             "the cost of a refresh against one from scratch")
    parser.add_argument("--busy-db", type=Path,
                        help="the busy day's database, built once and reused "
                             "(default var/bench-busy-N.db)")
    args = parser.parse_args()
    if args.quick:
        args.seconds = min(args.seconds, 2.0)
    if args.busy:
        busy(args)
        return

    with tempfile.TemporaryDirectory(prefix="bench-web-") as tmp:
        folder = Path(tmp)
        if args.db:
            db, day = args.db, args.day
        else:
            db, day = build_demo_db(folder)
            day = args.day or day
        query = f"?day={day}" if day else ""
        targets = {
            "healthz": "/healthz",
            "page": f"/{query}",
            "api_summary": f"/api/v1/summary{query}",
            "api_occupancy": "/api/v1/occupancy",
            "metrics": "/metrics",
        }
        process, base = start_server(folder, db, args.cache_s)
        try:
            port = int(base.rsplit(":", 1)[1])
            results = {name: asyncio.run(load("127.0.0.1", port, path, args.clients, args.seconds))
                       for name, path in targets.items()}
        finally:
            process.terminate()
            process.wait(20)
    baseline = results["healthz"]["p95_ms"]
    flat: dict[str, float] = {"clients": args.clients, "cache_s": args.cache_s}
    for name, figures in results.items():
        for key, value in figures.items():
            flat[f"{name}_{key}"] = round(value, 3)
        flat[f"{name}_p95_ratio_to_healthz"] = round(figures["p95_ms"] / baseline, 3)
    if args.json:
        print(json.dumps(flat))
        return
    print(f"Status page under {args.clients} concurrent loopback clients, {args.seconds:.0f} s "
          f"per target, web.cache_s = {args.cache_s}:")
    print(f"  {'target':<14} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'req/s':>8} "
          f"{'errors':>7} {'p95 / healthz':>14}")
    for name, f in results.items():
        print(f"  {name:<14} {f['p50_ms']:8.1f} {f['p95_ms']:8.1f} {f['p99_ms']:8.1f} "
              f"{f['requests_per_s']:8.0f} {f['errors']:7d} "
              f"{f['p95_ms'] / baseline:13.1f}x")


def busy(args) -> None:
    import web_busy_day

    path = args.busy_db or REPO / "var" / f"bench-busy-{args.busy}.db"
    web_busy_day.build(path, args.busy)
    figures = web_busy_day.measure(load_site(PETS_SITE), path)
    if args.json:
        print(json.dumps(figures))
        return
    print(f"Busy day ({figures['positions']:.0f} positions, {figures['visits']:.0f} visits), "
          "seconds and ratio to the summary computed from scratch (same run):")
    for name in ("summary_from_scratch", "heatmap_from_scratch", "summary_refresh",
                 "occupancy", "health"):
        ratio = figures.get(f"{name}_ratio_to_from_scratch", 1.0)
        print(f"  {name:<22} {figures[name + '_s']:8.3f} s {ratio:10.4f}")


if __name__ == "__main__":
    main()
