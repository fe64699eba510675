"""The sync against a broker that stops acknowledging, and against downlink floods
(issue 18, defects 4 and 5), on a real mosquitto."""

from __future__ import annotations

import json
import signal
import time
from collections import Counter

from edge.storage import open_database
from edge.storage.health import read_health
from sync.mqtt_client import MqttClient
from sync.publisher import MAX_IN_FLIGHT, SyncService
from tests.mqtt_broker import broker_fixture  # noqa: F401 (fixture)
from tests.sync_helpers import STORE, sync_site
from tests.test_sync_mqtt import DAY0, PREFIX, Listener, mqtt_section, past_windows, wait_for

WINDOWS = 60


def paho_holds(client: MqttClient) -> int:
    """QoS 1 messages paho keeps for their PUBACK (sent, or queued unsent)."""
    return len(client._client._out_messages)


def test_a_broker_that_stops_acknowledging_gets_each_window_once(tmp_path, broker):
    """Field failure: after 19 messages nothing went out, 300 "retries" queued inside
    paho, health read `ok Connected. 185 aggregates waiting, 0 delivered`, and the
    reconnection delivered 358 messages for 198 windows. mosquitto is frozen (SIGSTOP)
    while connected: it reads nothing and acknowledges nothing, then resumes."""
    site = sync_site(
        window_s=60, settle_s=0, ack_timeout_s=1, retry_initial_s=0.2, retry_max_s=0.5,
        poll_s=0.05, mqtt=mqtt_section(broker.port),
    )
    db = open_database(tmp_path / "edge.db")
    past_windows(db, WINDOWS)
    listener = Listener(broker.port, f"{PREFIX}/{STORE}/aggregates")
    started = time.time()
    service = SyncService(site, db, clock=lambda: DAY0 + WINDOWS * 60 + time.time() - started)
    service.client.start()
    try:
        wait_for(service.client.connected.is_set, what="connected")
        broker.process.send_signal(signal.SIGSTOP)
        try:
            paused_until = time.monotonic() + 4.0
            while time.monotonic() < paused_until:
                service.run_pass()
                assert len(service.in_flight) <= MAX_IN_FLIGHT
                assert paho_holds(service.client) <= MAX_IN_FLIGHT + 2  # + online, state
                time.sleep(0.05)
            health = {row["component"]: row for row in read_health(db)}["sync"]
            assert health["status"] == "degraded", health["message"]
            assert "not acknowledged for" in health["message"]
            assert health["detail"]["unacknowledged_s"] > 1
        finally:
            broker.process.send_signal(signal.SIGCONT)
        deadline = time.monotonic() + 30
        while service.outbox.summary().pending and time.monotonic() < deadline:
            service.run_pass()
            time.sleep(0.05)
        assert service.outbox.summary().delivered == WINDOWS
        wait_for(lambda: len(listener.messages) >= WINDOWS, what="every window received")
        time.sleep(0.5)  # any duplicate would have arrived by now
        ids = Counter(json.loads(payload)["id"] for _, payload, _ in listener.messages)
        assert len(ids) == WINDOWS and max(ids.values()) == 1, ids.most_common(3)
        health = {row["component"]: row for row in read_health(db)}["sync"]
        assert health["status"] == "ok"
    finally:
        service.client.stop()
        listener.close()
