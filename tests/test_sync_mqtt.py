"""The sync against a real mosquitto broker: delivery, refusals, TLS, downlink, discovery."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable

import paho.mqtt.client as paho
import pytest
from click.testing import CliRunner

from edge.cli import cli
from edge.config.sync import MqttConfig
from edge.errors import StorageError
from edge.runtime.schema import open_database
from edge.storage.health import read_health
from sync import kanon
from sync.consumer import ReferenceConsumer, open_consumer_db
from sync.downlink import config_body, sign_body
from sync.mqtt_client import MqttClient
from sync.outbox import Outbox
from sync.publisher import SyncService
from tests.support.mqtt_broker import (  # noqa: F401 (fixtures)
    Broker,
    broker_fixture,
    make_tls_files,
    tls_broker_fixture,
)
from tests.support.sync_helpers import STORE, add_crossings, sync_site, write_site
from tests.support.waiting import wait_for

pytestmark = pytest.mark.system

PREFIX = "test-edge"
DAY0 = 1_709_251_200.0
KEY = "test-downlink-key-0123456789-abcdefghijkl"


def mqtt_section(port: int, **extra) -> dict:
    return {
        "host": "127.0.0.1",
        "port": port,
        "topic_prefix": PREFIX,
        "reconnect_min_s": 1,
        "reconnect_max_s": 2,
        **extra,
    }


def at(minutes: int) -> Callable[[], float]:
    """A clock stopped ``minutes`` after DAY0: windows up to then are closed."""
    return lambda: DAY0 + minutes * 60


def past_windows(db, count: int, window_s: int = 60, per_window: int = 6) -> None:
    add_crossings(db, [DAY0 + w * window_s + i for w in range(count) for i in range(per_window)])


class Listener:
    """A plain paho subscriber recording (topic, payload, retain) for assertions."""

    def __init__(self, port: int, topic: str, **login) -> None:
        self.messages: list[tuple[str, bytes, bool]] = []
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2, protocol=paho.MQTTv5)
        if login:
            self.client.username_pw_set(login["username"], login["password"])
        self.client.on_message = lambda c, u, m: self.messages.append(
            (m.topic, m.payload, m.retain)
        )
        self.client.connect("127.0.0.1", port)
        self.client.subscribe(topic, 1)
        self.client.loop_start()
        time.sleep(0.2)

    def payloads(self, topic: str) -> list[bytes]:
        return [payload for t, payload, _ in self.messages if t == topic]

    def publish(self, topic: str, payload: bytes) -> None:
        self.client.publish(topic, payload, qos=1).wait_for_publish(5)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def start_consumer(tmp_path, port, **kwargs) -> tuple[ReferenceConsumer, threading.Thread]:
    consumer = ReferenceConsumer(
        tmp_path / "consumer.db", MqttConfig(host="127.0.0.1", port=port), prefix=PREFIX, **kwargs
    )
    thread = threading.Thread(target=consumer.run, daemon=True)
    thread.start()
    # Subscribed before anything is published: a broker keeps messages only for
    # subscriptions that exist.
    wait_for(consumer.client.subscribed.is_set, what="consumer subscriptions")
    return consumer, thread


def stop_consumer(consumer, thread) -> None:
    consumer.stop()
    thread.join(5)


def test_publish_ack_and_consume_each_window_once(tmp_path, broker):
    site = sync_site(window_s=60, settle_s=0, mqtt=mqtt_section(broker.port))
    db = open_database(tmp_path / "edge.db")
    past_windows(db, 5)
    consumer, thread = start_consumer(tmp_path, broker.port)
    listener = Listener(broker.port, f"{PREFIX}/{STORE}/#")
    summary = SyncService(site, db, clock=at(5)).flush(15)
    assert (summary.pending, summary.delivered) == (0, 5)
    wait_for(lambda: consumer.counts.stored == 5, what="5 stored")
    # Republishing what was delivered (a lost PUBACK) is absorbed by the consumer's de-dup.
    db.execute("update sync_outbox set status = 'pending', delivered_at = null")
    SyncService(site, db, clock=at(5)).flush(15)
    wait_for(lambda: consumer.counts.duplicates == 5, what="5 duplicates")
    stop_consumer(consumer, thread)
    stored = open_consumer_db(tmp_path / "consumer.db")
    rows = list(
        stored.execute("select id, duplicates, payload from aggregates order by window_start")
    )
    assert [r[0] for r in rows] == [
        r[0] for r in db.execute("select id from sync_outbox order by window_start")
    ]
    assert all(r[1] == 1 and json.loads(r[2])["footfall"]["in"] == 6 for r in rows)
    # available: retained online while connected, offline on a clean stop.
    available = listener.payloads(f"{PREFIX}/{STORE}/available")
    assert available[0] == b"online" and available[-1] == b"offline"
    state = json.loads(listener.payloads(f"{PREFIX}/{STORE}/config/state")[-1])
    assert state["settings"] == {
        "min_publishable_count": 5,
        "window_s": 60,
        "segment_spec_version": None,
    }
    listener.close()


def test_slow_consumer_does_not_hold_the_box_back(tmp_path, broker):
    site = sync_site(window_s=60, settle_s=0, mqtt=mqtt_section(broker.port))
    db = open_database(tmp_path / "edge.db")
    past_windows(db, 20)
    consumer, thread = start_consumer(tmp_path, broker.port, delay_s=0.15)
    summary = SyncService(site, db, clock=at(20)).flush(20)
    assert summary.delivered == 20 and summary.pending == 0  # the broker took them all
    assert consumer.counts.stored < 20  # ...while the consumer is still working through them
    wait_for(lambda: consumer.counts.stored == 20, timeout_s=30, what="slow consumer catching up")
    stop_consumer(consumer, thread)
    # A consumer that was away gets what was published meanwhile (persistent session).
    past_more = sync_site(window_s=60, settle_s=0, mqtt=mqtt_section(broker.port))
    add_crossings(db, [DAY0 + 20 * 60 + i for i in range(6)])
    SyncService(past_more, db, clock=at(22)).flush(10)
    consumer, thread = start_consumer(tmp_path, broker.port)
    wait_for(lambda: consumer.counts.stored == 2, what="queued windows after reconnect")
    stop_consumer(consumer, thread)
    assert (
        open_consumer_db(tmp_path / "consumer.db")
        .execute("select count(*) from aggregates")
        .fetchone()[0]
        == 22
    )


def test_broker_refusing_credentials_loses_nothing(tmp_path, monkeypatch):
    broker = Broker(tmp_path / "broker", users={"store": "right-password"}).start()
    try:
        db = open_database(tmp_path / "edge.db")
        past_windows(db, 3)
        monkeypatch.setenv("EDGE_TEST_MQTT_PASSWORD", "wrong-password")
        site = sync_site(
            window_s=60,
            settle_s=0,
            mqtt=mqtt_section(broker.port, username="store", password="${EDGE_TEST_MQTT_PASSWORD}"),
        )
        service = SyncService(site, db, clock=at(3))
        summary = service.flush(3)
        assert (summary.pending, summary.delivered) == (3, 0)
        # mosquitto answers a wrong password with "Not authorized" (MQTT 5 reason 0x87).
        assert "broker refused the connection: Not authorized" in service.client.last_error
        (health,) = [h for h in read_health(db) if h["component"] == "sync"]
        assert health["status"] == "down" and "Not authorized" in health["message"]
        monkeypatch.setenv("EDGE_TEST_MQTT_PASSWORD", "right-password")
        site = sync_site(
            window_s=60,
            settle_s=0,
            mqtt=mqtt_section(broker.port, username="store", password="${EDGE_TEST_MQTT_PASSWORD}"),
        )
        summary = SyncService(site, db, clock=at(3)).flush(10)
        assert (summary.pending, summary.delivered) == (0, 3)
    finally:
        broker.stop()


def test_acl_refusing_a_topic_keeps_rows_pending(tmp_path):
    acl = f"user store\ntopic readwrite {PREFIX}/{STORE}/available\n"
    broker = Broker(tmp_path / "broker", users={"store": "pw"}, acl=acl).start()
    try:
        db = open_database(tmp_path / "edge.db")
        past_windows(db, 2)
        site = sync_site(
            window_s=60,
            settle_s=0,
            retry_initial_s=60,
            mqtt=mqtt_section(broker.port, username="store", password="pw"),
        )
        service = SyncService(site, db, clock=at(2))
        service.flush(3)
        rows = list(db.execute("select status, attempts, last_error from sync_outbox"))
        assert len(rows) == 2
        assert all(r[0] == "pending" and r[1] >= 1 and "Not authorized" in r[2] for r in rows), rows
    finally:
        broker.stop()


def test_tls_with_client_certificates(tmp_path, tls_broker):
    broker, files = tls_broker
    db = open_database(tmp_path / "edge.db")
    past_windows(db, 2)
    tls = {
        "ca_file": str(files["ca"]),
        "cert_file": str(files["client"]),
        "key_file": str(files["client_key"]),
    }
    site = sync_site(window_s=60, settle_s=0, mqtt=mqtt_section(broker.port, tls=tls))
    assert SyncService(site, db, clock=at(2)).flush(10).delivered == 2
    # A CA that did not sign the broker's certificate: a clear handshake error, nothing lost.
    other = make_tls_files(tmp_path / "other-ca")
    add_crossings(db, [DAY0 + 120 + i for i in range(6)])
    site = sync_site(
        window_s=60,
        settle_s=0,
        mqtt=mqtt_section(broker.port, tls={**tls, "ca_file": str(other["ca"])}),
    )
    service = SyncService(site, db, clock=at(3))
    assert service.flush(3).pending == 1
    assert "TLS handshake with 127.0.0.1" in service.client.last_error
    assert "CERTIFICATE_VERIFY_FAILED" in service.client.last_error


def test_plain_mqtt_aimed_at_a_tls_port_says_so(tmp_path, tls_broker):
    """Field defect (issue 18, item 10): plain MQTT aimed at a TLS listener said
    "connecting" for ever; the listener closes the connection without a CONNACK."""
    broker, _ = tls_broker
    db = open_database(tmp_path / "edge.db")
    past_windows(db, 2)
    site = sync_site(window_s=60, settle_s=0, mqtt=mqtt_section(broker.port))
    service = SyncService(site, db, clock=at(2))
    summary = service.flush(3)
    assert (summary.pending, summary.delivered) == (2, 0)
    error = service.client.last_error
    assert error is not None and "is it a TLS port?" in error, error
    assert f"127.0.0.1:{broker.port}" in error


def test_unreachable_broker_keeps_everything(tmp_path):
    from tests.support.net import free_port

    db = open_database(tmp_path / "edge.db")
    past_windows(db, 3)
    site = sync_site(window_s=60, settle_s=0, mqtt=mqtt_section(free_port()))
    service = SyncService(site, db, clock=at(3))
    summary = service.flush(2)
    assert (summary.pending, summary.delivered) == (3, 0)
    assert (
        "unreachable" in service.client.last_error
        and "refused" in service.client.last_error.lower()
    )


def test_downlink_over_the_broker(tmp_path, broker):
    site = sync_site(
        window_s=60, settle_s=0, downlink_key=KEY, poll_s=0.05, mqtt=mqtt_section(broker.port)
    )
    stop = threading.Event()

    def serve() -> None:  # the service owns its database connection, on its own thread
        SyncService(site, open_database(tmp_path / "edge.db")).run(stop)

    runner = threading.Thread(target=serve, daemon=True)
    listener = Listener(broker.port, f"{PREFIX}/{STORE}/config/state")
    runner.start()
    try:
        wait_for(lambda: listener.payloads(f"{PREFIX}/{STORE}/config/state"), what="initial state")

        def last_state():
            return json.loads(listener.payloads(f"{PREFIX}/{STORE}/config/state")[-1])

        topic = f"{PREFIX}/{STORE}/config/set"
        first = sign_body(config_body(STORE, {"min_publishable_count": 7},
                                      issued_at=time.time() - 1), KEY)
        listener.publish(topic, first)
        wait_for(lambda: last_state()["settings"]["min_publishable_count"] == 7, what="k 7")
        good = sign_body(config_body(STORE, {"min_publishable_count": 8}), KEY)
        listener.publish(topic, good)
        wait_for(lambda: last_state()["settings"]["min_publishable_count"] == 8, what="k applied")
        assert last_state()["last_downlink"]["status"] == "applied"
        for bad, reason in [
            (first, "already used"),  # replayed (the one in force again is ignored)
            (
                sign_body(config_body(STORE, {"min_publishable_count": 3}), "y" * 40),
                "bad signature",
            ),
            (b"{garbage", "not JSON"),
        ]:
            count = len(listener.payloads(f"{PREFIX}/{STORE}/config/state"))
            listener.publish(topic, bad)
            wait_for(
                lambda c=count: len(listener.payloads(f"{PREFIX}/{STORE}/config/state")) > c,
                what=f"state after {reason}",
            )
            assert last_state()["last_downlink"]["status"] == "refused"
            assert reason in last_state()["last_downlink"]["reason"]
            assert last_state()["settings"]["min_publishable_count"] == 8
    finally:
        stop.set()
        runner.join(10)
        listener.close()


def test_stats_and_home_assistant_discovery(tmp_path, broker):
    site = sync_site(
        window_s=60,
        settle_s=0,
        stats_interval_s=1,
        homeassistant_discovery=True,
        mqtt=mqtt_section(broker.port),
    )
    db = open_database(tmp_path / "edge.db")
    listener = Listener(broker.port, "#")
    service = SyncService(site, db)
    service.client.start()
    try:
        wait_for(service.client.connected.is_set, what="connection")
        service.run_pass()
        service.run_pass()
        stats = wait_for(lambda: listener.payloads(f"{PREFIX}/{STORE}/stats"), what="stats")
        message = json.loads(stats[0])
        assert message["store"] == STORE and set(message["outbox"]) >= {"pending", "evicted_total"}
        configs = wait_for(
            lambda: [
                (t, p) for t, p, _ in listener.messages if t.startswith("homeassistant/sensor/")
            ],
            what="discovery",
        )
        assert {t.split("/")[3] for t, _ in configs} == {
            "footfall_in",
            "footfall_out",
            "occupancy_mean",
            "occupancy_max",
        }
        sensor = json.loads(dict(configs)[f"homeassistant/sensor/{STORE}/footfall_in/config"])
        assert sensor["state_topic"] == f"{PREFIX}/{STORE}/aggregates"
        assert sensor["availability_topic"] == f"{PREFIX}/{STORE}/available"
    finally:
        service.client.stop()
        listener.close()


def test_thin_client_routes_only_subscribed_topics(broker):
    got: list[str] = []
    client = MqttClient(MqttConfig(host="127.0.0.1", port=broker.port), client_id="route-test")
    client.subscribe("a/+/x", lambda topic, payload: got.append(topic))
    client.start()
    wait_for(client.subscribed.is_set, what="subscription")
    for topic in ("a/1/x", "a/1/y", "b/1/x"):
        client.publish(topic, b"1")
    wait_for(lambda: got, what="routed message")
    time.sleep(0.3)
    client.stop()
    assert got == ["a/1/x"]


def test_the_publish_path_rechecks_k_and_applies_a_raised_k_to_the_backlog(tmp_path, broker):
    from sync.outbox import Outbox
    from sync.settings import OverrideChanges, apply_changes

    site = sync_site(window_s=60, settle_s=0, mqtt=mqtt_section(broker.port))
    db = open_database(tmp_path / "edge.db")
    past_windows(db, 2, per_window=6)
    listener = Listener(broker.port, f"{PREFIX}/{STORE}/aggregates")
    service = SyncService(site, db, clock=at(2))
    service.run_pass()  # stored at k=5 (footfall 6 published); not connected yet: not sent
    # A row stored with a cell of 3 (by a box before an update that made a rule
    # stricter, or damaged): the cell never leaves the box, the window does.
    forged = json.loads(db["sync_outbox"].get(f"{STORE}/20240301T000000Z/60/aggregate")["payload"])
    forged["id"] = f"{STORE}/20240301T000500Z/60/aggregate"
    forged["window"]["start"] = "2024-03-01T00:05:00Z"
    forged["footfall"]["out"] = 3
    forged["k"] = 7  # claims to be 7-anonymous already: the check finds the cell
    Outbox(db).add(
        id=forged["id"],
        kind="aggregate",
        topic_suffix="aggregates",
        window_start=DAY0 + 300,
        window_s=60,
        payload=json.dumps(forged).encode(),
        now=0,
    )
    # What still fails the checks after the rules are applied again is refused.
    bad = dict(forged, id=f"{STORE}/20240301T001000Z/60/aggregate", mac="02:00:5e:10:00:01")
    bad["window"] = dict(forged["window"], start="2024-03-01T00:10:00Z")
    Outbox(db).add(id=bad["id"], kind="aggregate", topic_suffix="aggregates",
                   window_start=DAY0 + 600, window_s=60, payload=json.dumps(bad).encode(), now=0)
    # The central platform raises k to 7 before the backlog goes out.
    apply_changes(db, OverrideChanges(min_publishable_count=7), nonce="n" * 16, issued_at=0, now=0)
    summary = service.flush(10)
    assert (summary.delivered, summary.refused, summary.pending) == (3, 1, 0)
    sent = wait_for(
        lambda: (
            [json.loads(p) for p in listener.payloads(f"{PREFIX}/{STORE}/aggregates")]
            if len(listener.messages) >= 3
            else None
        ),
        what="three aggregates",
    )
    assert all(m["k"] == 7 and m["footfall"]["in"] is None for m in sent)  # 6 < 7: suppressed
    (resent,) = [m for m in sent if m["id"] == forged["id"]]
    assert resent["footfall"]["out"] is None
    assert not kanon.violations(resent, 7)
    assert db["sync_outbox"].get(bad["id"])["status"] == "refused"
    (health,) = [h for h in read_health(db) if h["component"] == "sync"]
    assert any("refused on the way out" in alarm for alarm in health["detail"]["alarms"])
    listener.close()


def test_a_lost_broker_is_logged_in_words(tmp_path, caplog):
    """Regression (issue 18 #13): a broker that went away was logged as "connection to
    the broker lost (Unspecified error)": paho's name for a socket that closed without
    a DISCONNECT. The log now says what happened, and still names the broker."""
    broker = Broker(tmp_path / "broker").start()
    client = MqttClient(MqttConfig(host="127.0.0.1", port=broker.port), client_id="lost-test")
    try:
        client.start()
        wait_for(client.connected.is_set, what="connection")
        with caplog.at_level("WARNING", logger="sync.mqtt_client"):
            broker.process.kill()  # the broker's machine lost power: no DISCONNECT
            broker.process.wait(5)
            wait_for(lambda: client.last_error, what="the loss to be noticed")
    finally:
        client.stop()
        broker.stop()
    assert "Unspecified error" not in client.last_error
    assert client.last_error.startswith(f"connection to the broker 127.0.0.1:{broker.port} lost: "
                                        "the network connection closed"), client.last_error
    assert any("broker stopped or restarted, or the network is down" in r.getMessage()
               for r in caplog.records)


def test_reason_codes_in_words():
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.reasoncodes import ReasonCode

    from sync.mqtt_client import reason_words

    def code(name: str) -> ReasonCode:
        return ReasonCode(PacketTypes.DISCONNECT, name)

    assert reason_words(code("Keep alive timeout"), from_broker=False).startswith(
        "the broker stopped answering")
    assert reason_words(code("Server shutting down")) == (
        "the broker is shutting down (MQTT reason 0x8b)")
    assert reason_words(code("Session taken over")).startswith("another client connected")
    # From the broker itself, "Unspecified error" is all it said: say so, with the code.
    assert reason_words(code("Unspecified error")) == (
        "the broker said: Unspecified error (MQTT reason 0x80)")


def test_windows_head_office_lost_are_sent_again(tmp_path, broker):
    """A broker crash lost windows the box had marked delivered; `edge sync gaps` lists
    them, and until now nothing on the box could send them again (they stay in its
    outbox storage.delivered_aggregate_days). `edge sync resend` does, for the span gaps
    prints; the consumer keeps one copy."""
    settings = {"window_s": 60, "settle_s": 0, "mqtt": mqtt_section(broker.port)}
    site = sync_site(**settings)
    site_file = write_site(tmp_path / "site.yaml", **settings)
    db = open_database(tmp_path / "edge.db")
    past_windows(db, 5)
    assert SyncService(site, db, clock=at(5)).flush(15).delivered == 5
    consumer, thread = start_consumer(tmp_path, broker.port)
    result = CliRunner().invoke(cli, ["sync", "resend", "--site", str(site_file), "--db",
                                      str(tmp_path / "edge.db"), "--from",
                                      "2024-03-01T00:01:00Z", "--to", "2024-03-01T00:03:00Z"])
    assert result.exit_code == 0, result.output
    assert "2 delivered windows from 2024-03-01T00:01:00Z to 2024-03-01T00:03:00Z" in result.output
    assert SyncService(site, db, clock=at(5)).flush(15).pending == 0
    wait_for(lambda: consumer.counts.stored == 2, what="the 2 windows sent again")
    stop_consumer(consumer, thread)
    stored = open_consumer_db(tmp_path / "consumer.db")
    assert [row[0] for row in stored.execute("select window_start from aggregates order by 1")] \
        == [DAY0 + 60, DAY0 + 120]
    # Refused in words: more than the outbox holds, a span the wrong way round.
    small = Outbox(db, max_pending=3)
    with pytest.raises(StorageError, match="more than the outbox holds"):
        small.resend(DAY0, DAY0 + 300)
    assert db.execute("select count(*) from sync_outbox where status = 'pending'").fetchone() \
        == (0,)
    backwards = CliRunner().invoke(cli, ["sync", "resend", "--site", str(site_file), "--db",
                                         str(tmp_path / "edge.db"), "--from", "2024-03-02",
                                         "--to", "2024-03-01"])
    assert backwards.exit_code == 2 and "must be after --from" in backwards.output
