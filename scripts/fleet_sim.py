#!/usr/bin/env python3
"""Fleet simulator: N simulated stores publish k-anonymous aggregate windows over MQTT.

Each store gets synthetic visits (zones, transitions, traits, segments, entrance
crossings, Wi-Fi windows) in an in-memory box database; every window is then built by
the box's own code (``sync.aggregate.aggregate_window`` → ``full_message`` →
``sync.kanon.suppress``), checked against the schema and the k rule, and published as
the box would (its own MQTT client, one connection per store, QoS 1, ``<prefix>/<store>/
aggregates``) at a chosen total rate.

    python scripts/fleet_sim.py --host 127.0.0.1 --port 1883 --stores 20 --windows 96 --rate 200
    python scripts/fleet_sim.py --fault-run --stores 1000 --windows 96   # the fault run

Importable (the central ingestion tests and ``scripts/bench_ingest.py`` use
:func:`fleet_messages` and :class:`Fleet`).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edge.config.sync import MqttConfig  # noqa: E402
from edge.runtime.schema import open_database  # noqa: E402
from sync import contract, kanon  # noqa: E402
from sync.aggregate import Window, aggregate_window, full_message  # noqa: E402
from sync.mqtt_client import Delivery, MqttClient  # noqa: E402

ENTRANCE = "front-door"
ZONES = ("entrance", "promo-table", "premium", "grocery", "checkout")
TRAITS = ("premium-interest", "quick-visit", "promo-seeker")
SEGMENTS = ("browser", "mission", "family")
# The UTC midnight 30 days ago: recent enough for an ingest worker to accept
# (sync.central.store.AcceptedStarts), far enough back that 30 days of windows have all
# ended.
DAY_START = (time.time() // 86_400 - 30) * 86_400


@dataclass(frozen=True, slots=True)
class SimMessage:
    """One aggregate as a box publishes it."""

    store: str
    window_id: str
    topic: str
    payload: bytes


def store_ids(count: int) -> list[str]:
    return [f"sim-{index:04d}" for index in range(count)]


def _fill_store(db, store: str, windows: Sequence[Window], rng: random.Random) -> None:
    """Synthetic visits, crossings and Wi-Fi windows of ``store`` in ``windows``; busy
    and quiet windows alike (some cells of a quiet window fall below k)."""
    visits, dwell, traits, segments, crossings, wifi = [], [], [], [], [], []
    serial = 0
    for window in windows:
        busy = rng.choice((0, 3, 12, 30, 60))
        for _ in range(rng.randint(busy // 2, busy)):
            serial += 1
            visit_id = f"{store}-v{serial}"
            end = window.start + rng.uniform(0, window.seconds - 1)
            duration = rng.uniform(20, 900)
            path = ["entrance", *rng.sample(ZONES[1:], rng.randint(0, 3))]
            visits.append(
                {
                    "visit_id": visit_id,
                    "site_id": store,
                    "camera_id": "view001",
                    "run_id": 1,
                    "track_id": serial,
                    "start_t": end - duration,
                    "end_t": end,
                    "duration_s": duration,
                    "path_length_m": duration / rng.uniform(5, 15),
                    "checkout_visited": int("checkout" in path),
                    "features": "{}",
                    "zone_sequence": json.dumps(path),
                    "spec_version": "sim-1",
                }
            )
            dwell += [
                {"visit_id": visit_id, "zone_id": z, "dwell_s": rng.uniform(2, 120), "entries": 1}
                for z in path
            ]
            traits += [
                {"visit_id": visit_id, "trait": t, "probability": rng.random()} for t in TRAITS
            ]
            weights = [rng.random() for _ in SEGMENTS]
            segments += [
                {"visit_id": visit_id, "segment": s, "probability": w / sum(weights)}
                for s, w in zip(SEGMENTS, weights, strict=True)
            ]
        for direction, share in (("in", 1.1), ("out", 1.0)):
            crossings += [
                {
                    "line_id": ENTRANCE,
                    "camera_id": "view001",
                    "run_id": 1,
                    "track_id": rng.randint(1, 10**6),
                    "t": window.start + rng.uniform(0, window.seconds - 1),
                    "direction": direction,
                }
                for _ in range(int(busy * share))
            ]
        wifi.append(
            {
                "window_start": window.start,
                "window_s": window.seconds,
                "sensor": "wlan1",
                "frames": 100,
                "in_store_devices": rng.randint(0, busy),
                "passers_by": rng.randint(0, 5 * busy),
                "occupancy_estimate": rng.uniform(0, 6),
                "dwell_buckets": "{}",
            }
        )
    with db.atomic():
        for table, rows in (
            ("visits", visits),
            ("visit_zone_dwell", dwell),
            ("visit_traits", traits),
            ("visit_segments", segments),
            ("line_crossings", crossings),
            ("wifi_windows", wifi),
        ):
            if rows:
                db[table].insert_all(rows, batch_size=1000)


def store_messages(
    store: str,
    windows: int,
    *,
    prefix: str = "store-edge",
    k: int = 5,
    window_s: int = 900,
    start: float = DAY_START,
    seed: int = 0,
    timezone: str = "UTC",
) -> list[SimMessage]:
    """``windows`` consecutive windows of ``store``, built by the box's aggregation code
    (``timezone``: the store's ``site.timezone``, sent with each window)."""
    rng = random.Random(f"{seed}/{store}")
    spans = [Window(start + i * window_s, window_s) for i in range(windows)]
    db = open_database(":memory:")
    _fill_store(db, store, spans, rng)
    messages = []
    for window in spans:
        aggregate = aggregate_window(db, window, store=store, entrance_lines=[ENTRANCE],
                                     timezone=timezone)
        message = kanon.suppress(full_message(aggregate), k)
        contract.validate("aggregate", message)
        kanon.assert_k_anonymous(message, k)
        messages.append(
            SimMessage(
                store,
                message["id"],
                f"{prefix}/{store}/{contract.AGGREGATES}",
                contract.canonical_json(message),
            )
        )
    return messages


def fleet_messages(stores: int, windows: int, **options) -> list[SimMessage]:
    """Every store's windows, interleaved window by window as a fleet sends them."""
    per_store = [store_messages(store, windows, **options) for store in store_ids(stores)]
    return [messages[i] for i in range(windows) for messages in per_store]


def relabelled(message: SimMessage, store: str, prefix: str) -> SimMessage:
    """``message`` as store ``store`` sends it: the same counts (so just as k-anonymous),
    the store's own id and topic."""
    body = json.loads(message.payload)
    start = contract.parse_iso_utc(body["window"]["start"])
    body["store"] = store
    body["id"] = contract.aggregate_id(store, start, body["window"]["seconds"])
    return SimMessage(store, body["id"], f"{prefix}/{store}/{contract.AGGREGATES}",
                      contract.canonical_json(body))


def templated_fleet_messages(
    stores: int, windows: int, *, templates: int = 25, prefix: str = "store-edge",
    **options,
) -> list[SimMessage]:
    """Like :func:`fleet_messages` for a large fleet: ``templates`` stores' days are built
    by the box's code (1.7 s per store-day here), and store ``i`` sends template
    ``i % templates``'s windows under its own id."""
    ids = store_ids(stores)
    built = [store_messages(store, windows, prefix=prefix, **options)
             for store in ids[:templates]]
    per_store = [built[i % len(built)] if i < len(built) else
                 [relabelled(m, store, prefix) for m in built[i % len(built)]]
                 for i, store in enumerate(ids)]
    return [messages[w] for w in range(windows) for messages in per_store]


class Fleet:
    """One MQTT connection per simulated store (client id ``fleet-sim-<store>``), or
    ``connections`` connections shared round-robin by the stores (a thousand stores need
    not be a thousand client threads in one process)."""

    def __init__(
        self, host: str, port: int, stores: Sequence[str], *, connections: int | None = None
    ) -> None:
        config = MqttConfig(host=host, port=port, reconnect_min_s=1, reconnect_max_s=2)
        if connections is None:
            self.clients = {
                store: MqttClient(config, client_id=f"fleet-sim-{store}") for store in stores
            }
        else:
            shared = [MqttClient(config, client_id=f"fleet-sim-c{i}") for i in range(connections)]
            self.clients = {store: shared[i % connections] for i, store in enumerate(stores)}
        self.connections = list({id(c): c for c in self.clients.values()}.values())

    def __enter__(self) -> Fleet:
        for client in self.connections:
            client.start()
        for client in self.connections:
            if not client.connected.wait(10):
                raise RuntimeError(f"fleet simulator: no connection ({client.last_error})")
        return self

    def __exit__(self, *exc: object) -> None:
        for client in self.connections:
            client.stop()

    def publish(
        self, messages: Sequence[SimMessage], *, rate: float = 0.0, timeout_s: float = 120.0
    ) -> float:
        """Publish ``messages`` (QoS 1) at ``rate`` per second in all (0: as fast as the
        broker takes them) and wait for every PUBACK; returns the seconds it took.

        Raises:
            TimeoutError: some were not acknowledged within ``timeout_s``.
        """
        started = time.monotonic()
        deliveries = []
        for index, message in enumerate(messages):
            if rate > 0:
                delay = started + index / rate - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            client = self.clients[message.store]
            deliveries.append(client.publish(message.topic, message.payload, qos=1))
            while rate <= 0 and sum(not d.done() for d in deliveries[-200:]) >= 200:
                time.sleep(0.001)  # paho holds at most its in-flight window
        deadline = started + timeout_s
        while not all(d.done() for d in deliveries):
            if time.monotonic() > deadline:
                missing = sum(not d.done() for d in deliveries)
                raise TimeoutError(f"{missing} of {len(deliveries)} messages not acknowledged")
            time.sleep(0.01)
        return time.monotonic() - started


def committed_windows(dsn: str) -> int:
    """Rows in the central store's ``windows`` table; 0 while it cannot be read (not
    yet created, or the database is down)."""
    import psycopg

    try:
        with psycopg.connect(dsn, autocommit=True) as conn:
            row = conn.execute("SELECT count(*) FROM windows").fetchone()
            return int(row[0]) if row else 0
    except psycopg.Error:
        return 0


def fault_run(
    stores: int,
    windows: int,
    *,
    folder: Path,
    admin_dsn: str,
    workers: int = 2,
    templates: int = 25,
    connections: int = 20,
    backlog: int = 3000,
    stall_s: float = 180.0,
    log=print,
) -> dict:
    """A fleet's windows through a real mosquitto to ``workers`` ``edge sync ingest``
    processes on one shared subscription, while worker 0 is ``kill -9``ed (at a third of
    the rows) and restarted, and the broker is restarted (at two thirds); then the rows
    are counted against what was sent.

    The fleet publishes as a box does: QoS 1, and a message whose PUBACK never came is
    published again (the outbox). It keeps at most ``backlog`` messages published and not
    yet committed, so no broker queue overflows (mosquitto drops beyond
    ``max_queued_messages``). Its own database on ``admin_dsn``'s server, dropped after.

    Returns:
        figures: messages, rows, lost, duplicated (rows beyond one per window), the
        redeliveries the database absorbed, dead letters, republished, wall seconds.
    """
    import signal
    import subprocess
    import uuid

    import psycopg
    from psycopg import sql
    from psycopg.conninfo import make_conninfo

    from tests.support.mqtt_broker import Broker

    root = Path(__file__).resolve().parents[1]
    started = time.monotonic()
    messages = templated_fleet_messages(stores, windows, templates=templates)
    log(f"built {len(messages)} windows of {stores} stores in "
        f"{time.monotonic() - started:.0f} s")
    name = f"central_fault_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin_dsn, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    dsn = make_conninfo(admin_dsn, dbname=name)
    broker = Broker(folder / "broker").start()
    processes: list[subprocess.Popen | None] = [None] * workers
    logs = [folder / f"fault-{i}.log" for i in range(workers)]

    def start(i: int) -> None:
        with logs[i].open("a") as stream:
            processes[i] = subprocess.Popen(
                [sys.executable, "-m", "edge", "sync", "ingest", "--dsn", dsn, "--host",
                 "127.0.0.1", "--port", str(broker.port), "--group", "fault-run",
                 "--client-id", f"fault-{i}"],
                cwd=root, stdout=stream, stderr=subprocess.STDOUT,
            )

    def wait_subscribed(i: int, times: int) -> None:
        deadline = time.monotonic() + 60
        while logs[i].read_text().count("MQTT: subscribed") < times:
            if time.monotonic() > deadline:
                raise RuntimeError(f"worker {i} did not subscribe: {logs[i].read_text()[-800:]}")
            time.sleep(0.1)

    figures: dict = {"stores": stores, "windows_per_store": windows, "workers": workers,
                     "messages": len(messages)}
    republished = 0
    try:
        for i in range(workers):
            start(i)
        for i in range(workers):
            wait_subscribed(i, 1)
        run_started = time.monotonic()
        done: set[str] = set()

        def maybe_fault(rows: int) -> None:
            """kill -9 worker 0 at a third of the rows, restart the broker at two thirds."""
            if "kill" not in done and rows >= len(messages) // 3:
                done.add("kill")
                processes[0].send_signal(signal.SIGKILL)  # type: ignore[union-attr]
                processes[0].wait(10)  # type: ignore[union-attr]
                log(f"kill -9 worker 0 at {rows} rows; restarting it")
                figures["killed_at_rows"] = rows
                start(0)
                wait_subscribed(0, 2)
            elif "kill" in done and "broker" not in done and rows >= 2 * len(messages) // 3:
                done.add("broker")
                log(f"restarting the broker at {rows} rows")
                figures["broker_restarted_at_rows"] = rows
                broker.restart()
                for i in range(workers):
                    wait_subscribed(i, 3 if i == 0 else 2)

        with Fleet("127.0.0.1", broker.port, store_ids(stores),
                   connections=connections) as fleet:
            pending: list[tuple[SimMessage, Delivery]] = []
            for index, message in enumerate(messages):
                if index % 250 == 0:
                    while index - (rows := committed_windows(dsn)) > backlog:
                        maybe_fault(rows)
                        time.sleep(0.05)
                    maybe_fault(rows)
                    pending = [(m, d) for m, d in pending if not d.done()]
                pending.append((message, fleet.clients[message.store].publish(
                    message.topic, message.payload, qos=1)))
            # until every row is there; a message whose PUBACK never came (or that paho
            # dropped) is published again, as a box's outbox would
            last, last_change = -1, time.monotonic()
            while True:
                pending = [(m, d) for m, d in pending if not d.done()]
                rows = committed_windows(dsn)
                if rows >= len(messages) and not pending:
                    break
                maybe_fault(rows)
                if rows != last:
                    last, last_change = rows, time.monotonic()
                elif time.monotonic() - last_change > stall_s or any(
                        d.dropped() for _, d in pending):
                    if not pending:
                        log(f"no progress for {stall_s:.0f} s at {rows} rows")
                        break
                    log(f"publishing {len(pending)} unacknowledged messages again")
                    republished += len(pending)
                    pending = [(m, fleet.clients[m.store].publish(m.topic, m.payload, qos=1))
                               for m, _ in pending]
                    last_change = time.monotonic()
                time.sleep(0.2)
        figures["faults"] = sorted(done)
        figures["ingest_s"] = round(time.monotonic() - run_started, 1)
        with psycopg.connect(dsn, autocommit=True) as conn:
            stored = {(s, w) for s, w in conn.execute("SELECT store, window_id FROM windows")}
            total = conn.execute("SELECT count(*), coalesce(sum(duplicates), 0) FROM windows"
                                 ).fetchone()
            dead = conn.execute("SELECT count(*) FROM dead_letters").fetchone()
            per_worker: dict[str, int] = dict(conn.execute(
                "SELECT worker, count(*) FROM windows GROUP BY worker ORDER BY worker"
            ).fetchall())
        sent = {(m.store, m.window_id) for m in messages}
        assert total is not None and dead is not None
        figures.update(
            rows=int(total[0]),
            lost=len(sent - stored),
            unexpected=len(stored - sent),
            duplicated=int(total[0]) - len(stored),
            redeliveries_absorbed=int(total[1]),
            dead_letters=int(dead[0]),
            republished=republished,
            rows_per_worker=per_worker,
            session_resumed="session resumed" in logs[0].read_text(),
        )
    finally:
        for process in processes:
            if process is not None and process.poll() is None:
                process.terminate()
        for process in processes:
            if process is not None:
                try:
                    process.wait(30)
                except subprocess.TimeoutExpired:
                    process.kill()
        broker.stop()
        with psycopg.connect(admin_dsn, autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
    figures["wall_s"] = round(time.monotonic() - started, 1)
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=1883)
    parser.add_argument("--prefix", default="store-edge")
    parser.add_argument("--stores", type=int, default=10, help="simulated stores")
    parser.add_argument("--windows", type=int, default=96, help="windows per store")
    parser.add_argument("--window-s", type=int, default=900)
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--rate", type=float, default=100.0, help="messages/s in all (0: max)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--fault-run", action="store_true",
        help="own mosquitto and database: ingest the fleet's windows with 2 workers while "
        "one is kill -9ed and the broker restarted, then count rows (JSON figures)",
    )
    parser.add_argument("--workers", type=int, default=2, help="ingest workers (--fault-run)")
    parser.add_argument("--templates", type=int, default=25,
                        help="store-days built by the box's code, relabelled per store "
                        "(--fault-run)")
    args = parser.parse_args()
    if args.fault_run:
        import os
        import tempfile

        dsn = os.environ.get("EDGE_BENCH_PG_DSN",
                             "host=127.0.0.1 port=5432 user=postgres dbname=postgres")
        with tempfile.TemporaryDirectory(prefix="fleet-fault-") as tmp:
            figures = fault_run(args.stores, args.windows, folder=Path(tmp), admin_dsn=dsn,
                                workers=args.workers, templates=args.templates,
                                log=lambda text: print(text, file=sys.stderr, flush=True))
        print(json.dumps(figures))
        return 0 if figures["lost"] == 0 and figures["duplicated"] == 0 else 1
    messages = fleet_messages(
        args.stores,
        args.windows,
        prefix=args.prefix,
        k=args.k,
        window_s=args.window_s,
        seed=args.seed,
    )
    with Fleet(args.host, args.port, store_ids(args.stores)) as fleet:
        seconds = fleet.publish(messages, rate=args.rate, timeout_s=max(120.0, len(messages)))
    size = sum(len(m.payload) for m in messages)
    print(
        json.dumps(
            {
                "messages": len(messages),
                "seconds": round(seconds, 2),
                "messages_per_s": round(len(messages) / seconds, 1),
                "mean_bytes": round(size / len(messages)),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
