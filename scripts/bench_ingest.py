#!/usr/bin/env python3
"""Benchmark: aggregate windows committed per second by 1, 2 and 4 ingestion workers.

One run, one mosquitto (its own, on a free loopback port), one PostgreSQL server
(the local one, or $EDGE_BENCH_PG_DSN; a database of its own per worker count,
dropped after). A simulated fleet (scripts/fleet_sim.py: windows built by the box's
own aggregation code) publishes the same messages for each worker count, as fast as
the broker takes them, to ``edge sync ingest`` processes sharing one subscription;
the figure is messages / seconds from the first publish to the last row committed.
Also measured in the same run: the CPU cost of the checks alone (JSON, schema, k,
store, id) per message, which bounds one worker's rate.

    .venv/bin/python scripts/bench_ingest.py [--json] [--quick] [--stores N] [--windows N]
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from checkout_venv import REPO, bench_parser, enter, print_figures

enter(__file__)


import psycopg
from fleet_sim import Fleet, committed_windows, fleet_messages, store_ids
from psycopg import sql
from psycopg.conninfo import make_conninfo

from sync.central.store import screen
from tests.support.mqtt_broker import Broker

ADMIN_DSN = os.environ.get(
    "EDGE_BENCH_PG_DSN", "host=127.0.0.1 port=5432 user=postgres dbname=postgres"
)
WORKER_COUNTS = (1, 2, 4)


def check_us(messages) -> float:
    """CPU microseconds per message of the checks a worker runs before committing."""
    started = time.process_time()
    for message in messages:
        screen(message.topic, message.payload)
    return (time.process_time() - started) / len(messages) * 1e6


def run(workers: int, broker: Broker, messages, stores: int, folder: Path) -> float:
    """messages/s committed by ``workers`` workers, on a fresh database."""
    name = f"central_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(ADMIN_DSN, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    dsn = make_conninfo(ADMIN_DSN, dbname=name)
    group = f"bench-{workers}"
    processes, logs = [], []
    try:
        for index in range(workers):
            log = folder / f"{group}-{index}.log"
            logs.append(log)
            with log.open("w") as stream:
                processes.append(subprocess.Popen(
                    [sys.executable, "-m", "edge", "sync", "ingest", "--dsn", dsn,
                     "--host", "127.0.0.1", "--port", str(broker.port), "--group", group,
                     "--client-id", f"{group}-{index}", "--session-expiry", "0"],
                    cwd=REPO, stdout=stream, stderr=subprocess.STDOUT,
                ))
        deadline = time.monotonic() + 60
        while not all("MQTT: subscribed" in log.read_text() for log in logs):
            if time.monotonic() > deadline or any(p.poll() is not None for p in processes):
                raise RuntimeError("workers did not subscribe: " + logs[0].read_text()[-2000:])
            time.sleep(0.1)
        with Fleet("127.0.0.1", broker.port, store_ids(stores)) as fleet:
            started = time.monotonic()
            fleet.publish(messages, timeout_s=600)
            while committed_windows(dsn) < len(messages):
                if time.monotonic() - started > 600:
                    raise RuntimeError(
                        f"only {committed_windows(dsn)} of {len(messages)} committed")
                time.sleep(0.05)
            elapsed = time.monotonic() - started
        return len(messages) / elapsed
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(30)
        with psycopg.connect(ADMIN_DSN, autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def main() -> int:
    parser = bench_parser(__doc__, quick="8 stores x 48 windows")
    parser.add_argument("--stores", type=int, default=None, help="simulated stores (20)")
    parser.add_argument("--windows", type=int, default=None, help="windows per store (96)")
    args = parser.parse_args()
    stores = args.stores or (8 if args.quick else 20)
    windows = args.windows or (48 if args.quick else 96)
    messages = fleet_messages(stores, windows)
    figures: dict[str, float] = {
        "messages": len(messages),
        "mean_bytes": round(sum(len(m.payload) for m in messages) / len(messages)),
        "check_us": round(check_us(messages), 1),
        "cpus": os.cpu_count() or 0,
    }
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
        broker = Broker(Path(tmp) / "broker").start()
        try:
            for workers in WORKER_COUNTS:
                rate = run(workers, broker, messages, stores, Path(tmp))
                figures[f"workers_{workers}.messages_per_s"] = round(rate, 1)
        finally:
            broker.stop()
    figures["speedup_4_vs_1"] = round(
        figures["workers_4.messages_per_s"] / figures["workers_1.messages_per_s"], 2
    )
    return print_figures(figures, args.json)


if __name__ == "__main__":
    sys.exit(main())
