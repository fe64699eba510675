"""The sync against a broker that stops acknowledging, and against downlink floods
(issue 18, defects 4 and 5), on a real mosquitto."""

from __future__ import annotations

import json
import signal
import time
from collections import Counter
from pathlib import Path

import pytest

from edge.runtime.schema import open_database
from edge.storage.health import read_health
from sync.in_flight import MAX_IN_FLIGHT
from sync.mqtt_client import MqttClient
from sync.publisher import SyncService
from tests.support.mqtt_broker import broker_fixture  # noqa: F401 (fixture)
from tests.support.sync_helpers import STORE, sync_site
from tests.support.waiting import wait_for
from tests.test_sync_mqtt import DAY0, PREFIX, Listener, mqtt_section, past_windows

pytestmark = pytest.mark.system

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


# --- downlinks ------------------------------------------------------------------------

KEY = "test-downlink-key-0123456789-abcdefghijkl"
MB = 1024 * 1024


def states(listener: Listener) -> list[dict]:
    return [json.loads(p) for p in listener.payloads(f"{PREFIX}/{STORE}/config/state")]


def last_downlinks(listener: Listener, status: str) -> list[dict]:
    return [
        s["last_downlink"]
        for s in states(listener)
        if s["last_downlink"] and s["last_downlink"]["status"] == status
    ]


def test_a_flood_of_junk_never_pushes_out_a_signed_change(tmp_path, broker):
    """Field failure: 300 junk messages filled the downlink queue and a valid signed
    change, which the sender had a PUBACK for, was dropped without a word. Only signed
    messages are queued now, and every message not applied gets a refusal state."""
    import threading

    from sync.downlink import config_body, sign_body

    site = sync_site(downlink_key=KEY, poll_s=2, mqtt=mqtt_section(broker.port))
    listener = Listener(broker.port, f"{PREFIX}/{STORE}/config/state")
    stop = threading.Event()
    services: list[SyncService] = []

    def serve() -> None:  # the database belongs to the thread that opens it
        services.append(SyncService(site, open_database(tmp_path / "edge.db")))
        services[0].run(stop)

    runner = threading.Thread(target=serve, daemon=True)
    runner.start()
    topic = f"{PREFIX}/{STORE}/config/set"
    try:
        wait_for(lambda: services and services[0].client.subscribed.is_set(),
                 what="subscribed to config/set")
        for i in range(300):  # between two passes of the service
            junk = json.dumps({"body": f'{{"n": {i}}}', "signature": "0" * 64}).encode()
            listener.client.publish(topic, junk, qos=1)
        listener.publish(topic, sign_body(config_body(STORE, {"min_publishable_count": 8}), KEY))
        wait_for(
            lambda: last_downlinks(listener, "applied"), timeout_s=20, what="the change applied"
        )
        assert states(listener)[-1]["settings"]["min_publishable_count"] == 8
        wait_for(lambda: len(last_downlinks(listener, "refused")) >= 300, what="300 refusals")
        refused = last_downlinks(listener, "refused")
        assert len(refused) == 300 and all("bad signature" in r["reason"] for r in refused)
    finally:
        stop.set()
        runner.join(10)
        listener.close()


def memory_kb(pid: int) -> dict[str, int]:
    status = (Path(f"/proc/{pid}/status")).read_text().splitlines()
    fields = dict(line.split(":", 1) for line in status)
    return {name: int(fields[name].split()[0]) for name in ("VmRSS", "VmHWM")}


def test_oversized_downlinks_never_reach_the_sync_memory(tmp_path, broker):
    """Field failure: 12 downlinks of 20 MB were queued before the size check and took
    `edge sync run` from 140 to 422 MB (its unit's MemoryMax is 300 MB). The box now
    declares a maximum packet size to the broker, and checks the size before keeping
    anything: a message too big for that is refused with a reason on config/state."""
    import os
    import subprocess
    import sys

    from sync.downlink import config_body, sign_body
    from tests.support.sync_helpers import write_site

    site = write_site(tmp_path / "site.yaml", downlink_key=KEY, poll_s=0.5,
                      mqtt=mqtt_section(broker.port))
    log = (tmp_path / "sync.log").open("wb")
    sync = subprocess.Popen(
        [sys.executable, "-m", "edge", "sync", "run", "--site", str(site),
         "--db", str(tmp_path / "edge.db")],
        stdout=log, stderr=log, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    listener = Listener(broker.port, f"{PREFIX}/{STORE}/config/state")
    topic = f"{PREFIX}/{STORE}/config/set"
    try:
        wait_for(lambda: states(listener), timeout_s=60, what="the service's first state")
        time.sleep(1.0)  # its subscription is acknowledged by now
        before = memory_kb(sync.pid)
        big = b"x" * (20 * MB)
        for _ in range(12):
            listener.client.publish(topic, big, qos=1).wait_for_publish(30)
        listener.publish(topic, b"y" * 100_000)  # over 70 kB, under the packet limit
        listener.publish(topic, sign_body(config_body(STORE, {"min_publishable_count": 7}), KEY))
        wait_for(lambda: last_downlinks(listener, "applied"), timeout_s=60, what="a change after")
        after = memory_kb(sync.pid)
        grown_mb = (after["VmHWM"] - before["VmRSS"]) / 1024
        print(f"sync RSS before {before['VmRSS'] / 1024:.1f} MB, peak after 12 x 20 MB "
              f"downlinks {after['VmHWM'] / 1024:.1f} MB (+{grown_mb:.1f} MB)")
        assert grown_mb < 40, (before, after)
        refused = last_downlinks(listener, "refused")
        assert [r["reason"] for r in refused] == ["message of 100000 bytes exceeds 70000"]
        assert sync.poll() is None
    finally:
        sync.terminate()
        sync.wait(30)
        listener.close()
        log.close()
