"""Reference consumer: subscribe, validate, de-duplicate by id, store.

For tests and as the central team's starting point. It keeps a persistent MQTT
session (the broker queues aggregates while it is away), acknowledges a message
only after it is committed to its own SQLite file, and stores each aggregate id
once: redeliveries (QoS 1 is at-least-once) are counted, not stored again.
Messages it cannot take (not JSON, too deeply nested, failing the schema or the
k-anonymity claim, naming another store than their topic's, or an id that is not
the one of their store and window) are kept in ``rejected`` with a short reason,
never in ``aggregates``, and acknowledged: no message blocks the ones behind it.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import sqlite_utils
from pydantic import ValidationError
from sqlite_utils.migrations import Migrations

from edge.config.sync import MqttConfig
from edge.errors import ConfigError
from edge.storage.database import open_database
from sync import contract, kanon
from sync.errors import ContractError, WrongStore, short_reason
from sync.mqtt_client import MqttClient

log = logging.getLogger(__name__)

MIGRATIONS = Migrations("sync.consumer")


@MIGRATIONS()
def m001_consumer_tables(db: sqlite_utils.Database) -> None:
    db.table("aggregates").create(
        {"id": str, "store": str, "window_start": float, "window_s": int, "payload": str,
         "received_at": float, "duplicates": int},
        pk="id",
    )
    db.table("aggregates").create_index(["store", "window_start"])
    db.table("rejected").create({"topic": str, "reason": str, "bytes": int, "received_at": float})
    db.table("availability").create({"store": str, "status": str, "at": float}, pk="store")
    db.table("stats").create({"store": str, "payload": str, "at": float}, pk="store")


def check_topic_segments(
    prefix: str, store: str, *, names: tuple[str, str] = ("prefix", "store")
) -> None:
    """``prefix`` must be a topic prefix the box's config accepts (``sync.mqtt.topic_prefix``)
    and ``store`` ``+`` or a store id as the contract spells it: a ``#`` or ``a/b`` would
    make a subscription the broker refuses, or one that matches other topics.

    Raises:
        ConfigError: naming the value (``names`` are how the caller calls them).
    """
    try:
        MqttConfig(topic_prefix=prefix)
    except ValidationError:
        raise ConfigError(
            f"{names[0]} {prefix!r} is not a topic prefix: letters, digits, _ and - in levels "
            "separated by /, no wildcard"
        ) from None
    if store != "+" and not contract.is_store_id(store):
        raise ConfigError(
            f"{names[1]} {store!r} is neither + (all stores) nor a store id (lower-case letters, "
            "digits, _ and -, at most 48)"
        )


def open_consumer_db(path: str | Path) -> sqlite_utils.Database:
    return open_database(path, migrations=[MIGRATIONS])


@dataclass(frozen=True, slots=True)
class Accepted:
    """An aggregate that passed every check, with the columns it is stored under."""

    id: str
    store: str
    window_start: float
    window_s: int
    text: str
    k: int
    schema_version: str
    timezone: str | None = None  # the store's IANA zone (schema 1.5); None: an older box


def check_aggregate(topic: str, payload: bytes) -> Accepted:
    """Everything the consumer checks before storing a message from ``topic``
    (``<prefix>/<store>/aggregates``): JSON the rest can handle, the schema, the
    k-anonymity it claims, the store it names against the topic's, and its id against
    the one derived from its store and window (so no store can take another's window).

    Raises:
        ContractError: why it is rejected.
    """
    message = contract.parse_json(payload, "message")
    contract.validate("aggregate", message)
    problems = kanon.violations(message, message["k"])
    if problems:
        raise ContractError("not k-anonymous as claimed: " + "; ".join(problems[:3]))
    store = message["store"]
    if topic.split("/")[-2] != store:
        raise WrongStore(f"store {store!r} published on {topic}")
    window = message["window"]
    try:
        start = contract.parse_iso_utc(window["start"])
    except ValueError:
        raise ContractError(f"window.start {window['start']!r} is not a UTC time") from None
    expected = contract.aggregate_id(store, start, window["seconds"], message["kind"])
    if message["id"] != expected:
        raise ContractError(
            f"id {message['id']!r} is not the id of its store and window, {expected!r}"
        )
    return Accepted(
        expected,
        store,
        start,
        window["seconds"],
        payload.decode("utf-8"),
        message["k"],
        message["schema_version"],
        message.get("timezone"),
    )


@dataclass
class ConsumerCounts:
    stored: int = 0
    duplicates: int = 0
    rejected: int = 0


class ReferenceConsumer:
    """Receives every store's aggregates under ``prefix`` (or one store's).

    Args:
        db_path: the consumer's own SQLite file.
        config: broker connection (host, port, credentials, TLS).
        prefix: topic prefix of the boxes.
        store: a store id, or ``+`` for all.
        client_id: stable, so the broker keeps the session across restarts.
        delay_s: sleep this long per message (to test slow consumers).
    """

    def __init__(
        self,
        db_path: str | Path,
        config: MqttConfig,
        *,
        prefix: str,
        store: str = "+",
        client_id: str = "edge-reference-consumer",
        delay_s: float = 0.0,
    ) -> None:
        check_topic_segments(prefix, store)
        self.db_path = db_path
        self.prefix, self.store = prefix, store
        self.delay_s = delay_s
        self.counts = ConsumerCounts()
        self.client = MqttClient(
            config, client_id=client_id, persistent_session=True, ack_after_handler=True
        )
        self._db: sqlite_utils.Database | None = None
        self._db_thread: int | None = None

    def _database(self) -> sqlite_utils.Database:
        # sqlite3 connections belong to their thread: open it where messages arrive.
        if self._db is None or self._db_thread != threading.get_ident():
            self._db = open_consumer_db(self.db_path)
            self._db_thread = threading.get_ident()
        return self._db

    def handle_aggregate(self, topic: str, payload: bytes) -> str:
        """Validate and store one message; returns ``stored``, ``duplicate`` or ``rejected``.

        A message that cannot be processed, whatever is wrong with it, is rejected: kept in
        ``rejected`` with a short reason and acknowledged, so it never blocks the queue.
        Raises only if the message cannot be stored (then it is not acknowledged and the
        broker sends it again)."""
        if self.delay_s:
            time.sleep(self.delay_s)
        db = self._database()
        now = time.time()
        try:
            accepted = check_aggregate(topic, payload)
        except ContractError as error:
            return self._reject(db, topic, payload, str(error), now)
        except Exception as error:  # a check that chokes on a message is a reason, not a crash
            log.exception("Checking a message on %s failed; rejecting it.", topic)
            return self._reject(db, topic, payload, f"{type(error).__name__}: {error}", now)
        with db.atomic():
            inserted = db.execute(
                "insert or ignore into aggregates (id, store, window_start, window_s, payload, "
                "received_at, duplicates) values (?, ?, ?, ?, ?, ?, 0)",
                [accepted.id, accepted.store, accepted.window_start, accepted.window_s,
                 accepted.text, now],
            ).rowcount
            if not inserted:
                db.execute(
                    "update aggregates set duplicates = duplicates + 1 where id = ?",
                    [accepted.id],
                )
        if inserted:
            self.counts.stored += 1
            return "stored"
        self.counts.duplicates += 1
        return "duplicate"

    def _reject(
        self, db: sqlite_utils.Database, topic: str, payload: bytes, reason: str, now: float
    ) -> str:
        reason = short_reason(reason)
        with db.atomic():
            db.execute(
                "insert into rejected (topic, reason, bytes, received_at) values (?, ?, ?, ?)",
                [topic, reason, len(payload), now],
            )
        self.counts.rejected += 1
        log.warning("Rejected a message on %s: %s", topic, reason)
        return "rejected"

    def _latest(self, table: str, column: str, topic: str, value: str) -> None:
        db = self._database()
        with db.atomic():
            db.execute(
                f"insert into {table} (store, {column}, at) values (?, ?, ?) on conflict(store) "
                f"do update set {column} = excluded.{column}, at = excluded.at",
                [topic.split("/")[-2], value, time.time()],
            )

    def _handle_available(self, topic: str, payload: bytes) -> None:
        self._latest("availability", "status", topic, payload.decode(errors="replace")[:16])

    def _handle_stats(self, topic: str, payload: bytes) -> None:
        self._latest("stats", "payload", topic, payload.decode(errors="replace"))

    def run(self) -> None:
        """Receive until :meth:`stop` (blocks; messages are handled on this thread)."""
        base = f"{self.prefix}/{self.store}"
        self.client.subscribe(f"{base}/{contract.AGGREGATES}", self.handle_aggregate, qos=1)
        self.client.subscribe(f"{base}/{contract.AVAILABLE}", self._handle_available, qos=1)
        self.client.subscribe(f"{base}/{contract.STATS}", self._handle_stats, qos=0)
        self._database()
        self.client.run()

    def stop(self) -> None:
        self.client.stop()
