"""Field faults of the sync service: a publish meeting a dropping connection or a full
paho queue, a pass that raises, a database that cannot record acknowledgements.

Each test names the failure it guards against; all run against a real mosquitto.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading

import pytest

import sync.mqtt_client as mqtt_client
import sync.publisher as publisher
from edge.config.sync import MqttConfig
from edge.runtime.schema import open_database
from edge.storage.health import read_health
from sync.consumer import open_consumer_db
from sync.mqtt_client import MqttClient
from sync.producer import produce
from sync.publisher import SyncService
from sync.settings import effective_settings
from tests.support.mqtt_broker import Broker
from tests.support.net import free_port
from tests.support.sync_helpers import sync_site
from tests.support.waiting import wait_for
from tests.test_sync_mqtt import at, mqtt_section, past_windows, start_consumer, stop_consumer

pytestmark = pytest.mark.system


def offline_client(port: int) -> MqttClient:
    """A client not started yet: every publish finds no connection (MQTT_ERR_NO_CONN)."""
    return MqttClient(
        MqttConfig(host="127.0.0.1", port=port, reconnect_min_s=1, reconnect_max_s=1),
        client_id="faults-test",
    )


def test_a_publish_without_connection_is_held_and_done_once_acknowledged(tmp_path):
    """paho's is_published() raised RuntimeError for a publish whose first send found no
    connection, even after paho resent it and had its PUBACK: `edge sync run` exited."""
    broker = Broker(tmp_path / "broker")
    client = offline_client(broker.port)
    delivery = client.publish("faults/a", b"1", qos=1)
    assert (delivery.done(), delivery.dropped()) == (False, False)  # held by paho
    broker.start()
    try:
        client.start()
        wait_for(delivery.done, what="the held publish acknowledged after connecting")
        assert not delivery.dropped() and delivery.refusal() is None
    finally:
        client.stop()
        broker.stop()


def test_a_publish_refused_by_a_full_paho_queue_is_dropped_not_raised(monkeypatch):
    """paho's is_published() raised ValueError for a publish its full queue refused."""
    monkeypatch.setattr(mqtt_client, "PAHO_MAX_QUEUED", 1)  # stands for 2000
    client = offline_client(free_port())
    held = client.publish("faults/a", b"1", qos=1)
    refused = client.publish("faults/a", b"2", qos=1)
    assert (held.done(), held.dropped()) == (False, False)
    assert (refused.done(), refused.dropped()) == (False, True)


def test_a_row_published_into_a_dropping_connection_is_delivered_once(tmp_path):
    """The service's pass crashed on such a publish; now the row stays held (never
    published twice) and is delivered once paho has sent it again."""
    broker = Broker(tmp_path / "broker")
    site = sync_site(window_s=60, settle_s=0, mqtt=mqtt_section(broker.port))
    db = open_database(tmp_path / "edge.db")
    past_windows(db, 3)
    service = SyncService(site, db, clock=at(3))
    produce(db, site, service.outbox, effective_settings(db, site), at(3)())
    row = service.outbox.due(at(3)(), 1)[0]
    # As if the connection dropped between the pass's connected check and its publish.
    delivery = service.client.publish(service.topics(row.topic_suffix), row.payload.encode())
    service.in_flight.add(row.id, delivery, at(3)())
    service.run_pass()  # raised RuntimeError here
    assert row.id in service.in_flight
    broker.start()
    consumer, thread = start_consumer(tmp_path, broker.port)
    try:
        summary = service.flush(15)
        assert (summary.pending, summary.delivered) == (0, 3)
        wait_for(lambda: consumer.counts.stored == 3, what="3 windows stored")
    finally:
        stop_consumer(consumer, thread)
        broker.stop()
    stored = open_consumer_db(tmp_path / "consumer.db")
    assert stored.execute("select count(*), sum(duplicates) from aggregates").fetchone() == (3, 0)


def test_the_service_survives_a_pass_that_raises(tmp_path, monkeypatch):
    """An unexpected exception in one pass ended run() (only sqlite3.Error was caught),
    and with StartLimitBurst a flapping broker left the unit failed."""
    site = sync_site(window_s=60, settle_s=0, mqtt=mqtt_section(free_port()), poll_s=0.05)
    db = open_database(tmp_path / "edge.db")
    past_windows(db, 3)
    calls = []

    def flaky_produce(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("a bug met once")
        return produce(*args, **kwargs)

    monkeypatch.setattr(publisher, "produce", flaky_produce)
    service = SyncService(site, db, clock=at(3))
    stop = threading.Event()
    seen: list[dict] = []

    class Notifier:  # called on the service's thread after each pass that worked
        def ready(self, status: str) -> None: ...
        def stopping(self) -> None: ...

        def alive(self) -> None:
            seen.append(next(r for r in read_health(db) if r["component"] == "sync"))
            if len(seen) >= 3:
                stop.set()

    timer = threading.Timer(10, stop.set)  # a bound, should the passes never work
    timer.start()
    try:
        service.run(stop, Notifier())  # raised RuntimeError from the first pass
    finally:
        timer.cancel()
    assert service.failed_passes == 1 and service.outbox.summary().pending == 3
    assert seen[-1]["detail"]["failed_passes"] == 1
    assert "a sync pass failed: RuntimeError: a bug met once" in seen[-1]["detail"]["alarms"]
def test_acknowledgements_that_cannot_be_recorded_are_not_sent_again(tmp_path, monkeypatch):
    """A full disk: PUBACKs arrived but mark_delivered failed, so the same 20 rows were
    published at every pass and the rest of the backlog never."""
    broker = Broker(tmp_path / "broker").start()
    site = sync_site(window_s=60, settle_s=0, mqtt=mqtt_section(broker.port))
    db = open_database(tmp_path / "edge.db")
    past_windows(db, 30)
    service = SyncService(site, db, clock=at(30))
    produce(db, site, service.outbox, effective_settings(db, site), at(30)())
    consumer, thread = start_consumer(tmp_path, broker.port)
    record = service.outbox.mark_delivered

    def disk_full(ids, now):
        if ids:
            raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(service.outbox, "mark_delivered", disk_full)
    service.client.start()
    try:
        wait_for(service.client.connected.is_set, what="connected")

        def a_pass() -> None:  # as run() does: a database error ends only the pass
            with contextlib.suppress(sqlite3.Error):
                service.run_pass()

        def all_received() -> bool:
            a_pass()
            return consumer.counts.stored == 30

        wait_for(all_received, 5, what="all 30 windows received", poll_s=0.05)

        def all_acknowledged() -> bool:
            a_pass()
            return len(service.in_flight.acked) == 30

        wait_for(all_acknowledged, 5, what="30 PUBACKs", poll_s=0.05)
        for _ in range(10):  # more passes: nothing acknowledged is published again
            service.run_pass()
        assert not service.in_flight
        assert service.outbox.summary().pending == 30  # not recorded: the disk is full
        assert "cannot record" in (service.storage_problem() or "")
        monkeypatch.setattr(service.outbox, "mark_delivered", record)  # space again
        service.run_pass()
        summary = service.outbox.summary()
        assert (summary.pending, summary.delivered) == (0, 30)
        assert service.storage_problem() is None
    finally:
        service.client.stop()
        stop_consumer(consumer, thread)
        broker.stop()
    stored = open_consumer_db(tmp_path / "consumer.db")
    assert stored.execute("select count(*), sum(duplicates) from aggregates").fetchone() == (30, 0)
