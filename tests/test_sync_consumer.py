"""The reference consumer against a real mosquitto: poison messages are rejected and
acknowledged (never redelivered for ever), one store cannot take another store's
windows, and a bad subscription or a dead network thread ends it with an error."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time

import pytest

from edge.config.sync import MqttConfig
from edge.errors import ConfigError
from edge.runtime.schema import open_database
from sync.consumer import ConsumerCounts, ReferenceConsumer, open_consumer_db
from sync.contract import aggregate_id
from sync.errors import BrokerError
from sync.mqtt_client import MqttClient
from sync.producer import build_message
from sync.publisher import SyncService
from tests.support.mqtt_broker import broker_fixture  # noqa: F401 (fixture)
from tests.support.sync_helpers import STORE, sync_site
from tests.support.waiting import wait_for
from tests.test_sync_mqtt import (
    DAY0,
    PREFIX,
    Listener,
    at,
    mqtt_section,
    past_windows,
    start_consumer,
    stop_consumer,
)

pytestmark = pytest.mark.system

EVIL = "evil"


def window_message(db, start: float = DAY0, store: str = STORE) -> dict:
    """The real, schema-valid, k-anonymous message the box would publish for a window."""
    from sync.aggregate import window_from

    message = build_message(db, sync_site(window_s=60, settle_s=0), window_from(start, 60), 5)
    message["store"], message["id"] = store, aggregate_id(store, start, 60)
    return message


def rejected_rows(tmp_path) -> list[tuple[str, str]]:
    db = open_consumer_db(tmp_path / "consumer.db")
    return [(row[0], row[1]) for row in db.execute("select topic, reason from rejected")]


def test_poison_messages_are_rejected_acknowledged_and_not_redelivered(tmp_path, broker):
    """Field failure: a deeply nested array and an aggregate with window.start
    2024-13-45T99:99:99Z raised outside the handler's try: not acknowledged, nothing in
    `rejected`, and the same traceback again after every restart."""
    db = open_database(tmp_path / "edge.db")
    bad_date = window_message(db, store=EVIL)
    bad_date["window"]["start"] = "2024-13-45T99:99:99Z"
    poison = [
        b"[" * 30000 + b"]" * 30000,
        json.dumps(bad_date).encode(),
        b'{"\\ud800": 1}',
        json.dumps(window_message(db, store=EVIL)).replace('"k": 5', '"k": NaN').encode(),
        b"\xff\xfe not utf-8",
        b"[]",
    ]
    topic = f"{PREFIX}/{EVIL}/aggregates"
    consumer, thread = start_consumer(tmp_path, broker.port)
    sender = Listener(broker.port, f"{PREFIX}/unused")
    try:
        for payload in poison:
            sender.publish(topic, payload)
        wait_for(lambda: consumer.counts.rejected == len(poison), what="every poison rejected")
        sender.publish(topic, json.dumps(window_message(db, store=EVIL)).encode())
        wait_for(lambda: consumer.counts.stored == 1, what="the next good message stored")
        assert thread.is_alive()
        stop_consumer(consumer, thread)
        # Every message was acknowledged: a restarted consumer gets nothing again.
        consumer, thread = start_consumer(tmp_path, broker.port)
        time.sleep(1.0)
        assert consumer.counts == ConsumerCounts()
    finally:
        stop_consumer(consumer, thread)
        sender.close()
    rows = rejected_rows(tmp_path)
    assert len(rows) == len(poison) and {t for t, _ in rows} == {topic}
    reasons = [reason for _, reason in rows]
    assert all(0 < len(reason) <= 200 and "\n" not in reason for reason in reasons), reasons
    assert "nested" in reasons[0] and "2024-13-45T99:99:99Z" in reasons[1]


def test_a_store_cannot_take_over_another_stores_window(tmp_path, broker):
    """Field failure: `"store":"evil"` with `"id":"pets09-demo/.../aggregate"` on
    store-edge/evil/aggregates was stored under that id, and the real window then counted
    as a duplicate and was lost."""
    site = sync_site(window_s=60, settle_s=0, mqtt=mqtt_section(broker.port))
    db = open_database(tmp_path / "edge.db")
    past_windows(db, 2)
    real_id = aggregate_id(STORE, DAY0, 60)
    stolen = window_message(db, store=EVIL) | {"id": real_id}
    shifted = window_message(db, store=EVIL) | {"id": aggregate_id(EVIL, DAY0 + 60, 60)}
    longer = window_message(db, store=EVIL) | {"id": aggregate_id(EVIL, DAY0, 900)}
    impostor = window_message(db, store=STORE)  # right id, wrong topic
    consumer, thread = start_consumer(tmp_path, broker.port)
    evil = Listener(broker.port, f"{PREFIX}/unused")
    try:
        for message in (stolen, shifted, longer, impostor):
            evil.publish(f"{PREFIX}/{EVIL}/aggregates", json.dumps(message).encode())
        wait_for(lambda: consumer.counts.rejected == 4, what="four rejections")
        assert SyncService(site, db, clock=at(2)).flush(15).delivered == 2
        wait_for(lambda: consumer.counts.stored == 2, what="the real windows stored")
    finally:
        stop_consumer(consumer, thread)
        evil.close()
    assert consumer.counts.duplicates == 0
    stored = open_consumer_db(tmp_path / "consumer.db")
    rows = list(stored.execute("select id, store, duplicates, payload from aggregates"))
    assert {r[0] for r in rows} == {real_id, aggregate_id(STORE, DAY0 + 60, 60)}
    assert all(r[1] == STORE and r[2] == 0 for r in rows)
    assert all(json.loads(r[3])["footfall"]["in"] == 6 for r in rows)
    reasons = [reason for _, reason in rejected_rows(tmp_path)]
    assert sum(f"id {real_id!r}" in reason for reason in reasons) == 1, reasons
    assert any("published on" in reason for reason in reasons), reasons


@pytest.mark.parametrize(
    "options, message",
    [
        (["--store", "#"], "--store"),
        (["--store", "a/b"], "--store"),
        (["--store", "Bad Store!"], "--store"),
        (["--prefix", "a/#"], "--prefix"),
        (["--prefix", "+"], "--prefix"),
        (["--prefix", ""], "--prefix"),
    ],
)
def test_consume_with_a_bad_topic_segment_is_one_error_line(tmp_path, broker, options, message):
    """Field failure: `edge sync consume --store '#'` killed paho's thread (Invalid
    subscription filter) and the process stayed up doing nothing."""
    result = subprocess.run(
        [sys.executable, "-m", "edge", "sync", "consume", "--db", str(tmp_path / "c.db"),
         "--port", str(broker.port), *options],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and message in lines[0], lines


def test_the_library_refuses_a_bad_subscription_up_front():
    config = MqttConfig(host="127.0.0.1", port=1)
    with pytest.raises(ConfigError, match="store"):
        ReferenceConsumer("unused.db", config, prefix=PREFIX, store="#")
    client = MqttClient(config, client_id="filter-test")
    with pytest.raises(ValueError, match="subscription filter"):
        client.subscribe("a/#/b", lambda topic, payload: None)


class _BuggyClient(MqttClient):
    def _on_connect(self, *args) -> None:  # a bug in a callback, on paho's network thread
        raise RuntimeError("bug in a callback")


def test_a_dead_network_thread_ends_run_with_an_error(broker):
    client = _BuggyClient(MqttConfig(host="127.0.0.1", port=broker.port), client_id="buggy")
    outcome: list[BaseException | None] = []

    def target() -> None:
        try:
            client.run()
            outcome.append(None)
        except BaseException as error:
            outcome.append(error)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(15)
    try:
        assert not thread.is_alive(), "run() kept going without its network thread"
    finally:
        client.stop()
    (error,) = outcome
    assert isinstance(error, BrokerError) and "bug in a callback" in str(error)
