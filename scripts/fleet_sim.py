#!/usr/bin/env python3
"""Fleet simulator: N simulated stores publish k-anonymous aggregate windows over MQTT.

Each store gets synthetic visits (zones, transitions, traits, segments, entrance
crossings, Wi-Fi windows) in an in-memory box database; every window is then built by
the box's own code (``sync.aggregate.aggregate_window`` → ``full_message`` →
``sync.kanon.suppress``), checked against the schema and the k rule, and published as
the box would (its own MQTT client, one connection per store, QoS 1, ``<prefix>/<store>/
aggregates``) at a chosen total rate.

    python scripts/fleet_sim.py --host 127.0.0.1 --port 1883 --stores 20 --windows 96 --rate 200

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
from sync.mqtt_client import MqttClient  # noqa: E402

ENTRANCE = "front-door"
ZONES = ("entrance", "promo-table", "premium", "grocery", "checkout")
TRAITS = ("premium-interest", "quick-visit", "promo-seeker")
SEGMENTS = ("browser", "mission", "family")
DAY_START = 1_709_251_200.0  # 2024-03-01T00:00:00Z


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
) -> list[SimMessage]:
    """``windows`` consecutive windows of ``store``, built by the box's aggregation code."""
    rng = random.Random(f"{seed}/{store}")
    spans = [Window(start + i * window_s, window_s) for i in range(windows)]
    db = open_database(":memory:")
    _fill_store(db, store, spans, rng)
    messages = []
    for window in spans:
        aggregate = aggregate_window(db, window, store=store, entrance_lines=[ENTRANCE])
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


class Fleet:
    """One MQTT connection per simulated store (client id ``fleet-sim-<store>``)."""

    def __init__(self, host: str, port: int, stores: Sequence[str]) -> None:
        config = MqttConfig(host=host, port=port)
        self.clients = {
            store: MqttClient(config, client_id=f"fleet-sim-{store}") for store in stores
        }

    def __enter__(self) -> Fleet:
        for client in self.clients.values():
            client.start()
        for client in self.clients.values():
            if not client.connected.wait(10):
                raise RuntimeError(f"fleet simulator: no connection ({client.last_error})")
        return self

    def __exit__(self, *exc: object) -> None:
        for client in self.clients.values():
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
    args = parser.parse_args()
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
