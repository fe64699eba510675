"""The ingestion worker: a shared MQTT subscription in, committed rows out, then PUBACK.

Several workers subscribe to ``$share/<group>/<prefix>/+/aggregates`` (MQTT v5
shared subscription): the broker hands each message to one of them. Each worker
keeps a persistent session (``clean_start`` false, a session expiry) under a stable
client id, and acknowledges a message (paho ``manual_ack``, ``client.ack(mid, qos)``)
only after the transaction holding its row committed. So:

- a worker killed between receive and commit never acknowledged the message: the
  broker sends it again when the session resumes (or, on brokers that do so, to
  another member of the group);
- a redelivered message finds its window already stored (same id and bytes): counted
  as a duplicate, acknowledged, never stored twice;
- when the database fails, the worker stops acknowledging, disconnects (the session
  and its unacknowledged messages stay at the broker), waits until the database
  answers again and reconnects: MQTT sends an unacknowledged message again only on a
  new connection, so staying connected would strand it;
- a window the database refuses (a value it cannot store) is dead-lettered alone and
  the rest of its batch committed and acknowledged (:class:`CentralStore`), so one such
  message never holds its batch back at every redelivery.

paho's network thread only queues what arrives; this worker's own thread screens
messages and commits them in batches. The broker never has more than
``receive_maximum`` unacknowledged messages out to one worker (MQTT 5 flow
control), which bounds that queue.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from edge.config.sync import MqttConfig
from sync import contract
from sync.central.store import (
    ACCEPT_AHEAD_S,
    ACCEPT_PAST_S,
    MAX_MESSAGE_BYTES,
    AcceptedStarts,
    CentralStore,
    CentralStoreError,
    WriteCounts,
    screen,
)
from sync.consumer import check_topic_segments
from sync.errors import BrokerError
from sync.mqtt_client import tls_context

log = logging.getLogger(__name__)

# The broker drops anything bigger for this client; between MAX_MESSAGE_BYTES and this,
# a message arrives and is dead-lettered as oversized, so its sender can be found.
MAX_PACKET_BYTES = 1_048_576


@dataclass(frozen=True, slots=True)
class Received:
    """One message as paho handed it over: ``session`` is the connection it came on
    (a message id means nothing on another connection)."""

    session: int
    mid: int
    qos: int
    topic: str
    payload: bytes


@dataclass(frozen=True, slots=True)
class IngestSettings:
    """How a worker subscribes and batches.

    Args:
        prefix: topic prefix of the boxes (``sync.mqtt.topic_prefix``).
        group: shared subscription group: workers of one group split the messages.
        client_id: stable per worker (``ingest-1``, ``ingest-2``...): the broker keeps
            its session, and the messages not yet acknowledged, under it.
        session_expiry_s: how long the broker keeps the session of a stopped worker.
        receive_maximum: unacknowledged messages the broker may have out to this worker.
        batch_max: messages committed per transaction at most.
        max_bytes: a bigger payload is dead-lettered as oversized.
        accept_past_s, accept_ahead_s: a window that starts longer ago than
            ``accept_past_s``, or later than ``accept_ahead_s`` ahead, of this worker's
            clock is dead-lettered as ``out_of_range`` (:class:`AcceptedStarts`).
        commit_delay_s: sleep this long before each commit (tests: a slow database, so
            that messages wait received but not committed).
    """

    prefix: str = "store-edge"
    group: str = "central-ingest"
    client_id: str = "central-ingest-1"
    session_expiry_s: int = 7 * 86400
    receive_maximum: int = 400
    batch_max: int = 200
    max_bytes: int = MAX_MESSAGE_BYTES
    accept_past_s: float = ACCEPT_PAST_S
    accept_ahead_s: float = ACCEPT_AHEAD_S
    commit_delay_s: float = 0.0

    def topic_filter(self) -> str:
        return f"$share/{self.group}/{self.prefix}/+/{contract.AGGREGATES}"


class IngestWorker:
    """Receives aggregates from a shared subscription and commits them to ``store``."""

    def __init__(self, store: CentralStore, config: MqttConfig, settings: IngestSettings) -> None:
        check_topic_segments(settings.prefix, "+")
        if not settings.group or any(c in settings.group for c in "/+#"):
            raise ValueError(f"shared subscription group {settings.group!r}: no /, + or #")
        self.store = store
        self.config = config
        self.settings = settings
        self.counts = WriteCounts()
        self.connected = threading.Event()
        self.subscribed = threading.Event()
        self._session = 0
        self._queue: queue.Queue[Received] = queue.Queue()
        self._failure: BaseException | None = None

    def run(self, stop: threading.Event) -> None:
        """Ingest until ``stop`` is set; a database outage pauses it, never ends it.

        Raises:
            BrokerError: paho's network thread died (a bug): nothing would arrive again.
        """
        self.store.open()
        try:
            delay = 0.5
            while not stop.is_set():
                if not self.store.ready():
                    stop.wait(delay)
                    delay = min(delay * 2, 10.0)
                    continue
                delay = 0.5
                self._connected_session(stop)
        finally:
            self.store.close()

    def _client(self) -> mqtt.Client:
        client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=self.settings.client_id,
            protocol=mqtt.MQTTv5,
            manual_ack=True,
        )
        if self.config.username is not None:
            client.username_pw_set(self.config.username, self.config.password)
        if self.config.tls is not None:
            client.tls_set_context(tls_context(self.config.tls))
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_subscribe = self._on_subscribe
        client.reconnect_delay_set(self.config.reconnect_min_s, self.config.reconnect_max_s)
        return client

    def _connected_session(self, stop: threading.Event) -> None:
        """Connect, commit and acknowledge until ``stop`` or a database failure, then
        disconnect (keeping the session at the broker)."""
        client = self._client()
        self._queue = queue.Queue()
        properties = Properties(PacketTypes.CONNECT)
        properties.SessionExpiryInterval = self.settings.session_expiry_s
        properties.ReceiveMaximum = self.settings.receive_maximum
        properties.MaximumPacketSize = MAX_PACKET_BYTES
        client.connect_async(
            self.config.host,
            self.config.port,
            self.config.keepalive_s,
            clean_start=False,
            properties=properties,
        )
        client.loop_start()
        try:
            while not stop.is_set():
                thread = client._thread  # paho's network thread; it ends only on a bug
                if thread is None or not thread.is_alive():
                    raise BrokerError("the MQTT network thread ended")
                batch = self._next_batch()
                if not batch:
                    continue
                try:
                    self._commit_and_ack(client, batch)
                except CentralStoreError as error:
                    log.error("%s; not acknowledging, reconnecting once it is back.", error)
                    return
            # stop: commit and acknowledge what already arrived before leaving
            leftover = self._next_batch(wait_s=0)
            while leftover:
                try:
                    self._commit_and_ack(client, leftover)
                except CentralStoreError:
                    break
                leftover = self._next_batch(wait_s=0)
        finally:
            self.connected.clear()
            self.subscribed.clear()
            client.disconnect()
            client.loop_stop()

    def _next_batch(self, wait_s: float = 0.1) -> list[Received]:
        try:
            first = self._queue.get(timeout=wait_s) if wait_s else self._queue.get_nowait()
        except queue.Empty:
            return []
        batch = [first]
        while len(batch) < self.settings.batch_max:
            try:
                batch.append(self._queue.get_nowait())
            except queue.Empty:
                break
        return batch

    def _commit_and_ack(self, client: mqtt.Client, batch: list[Received]) -> None:
        accepted = AcceptedStarts.around(
            time.time(), past_s=self.settings.accept_past_s, ahead_s=self.settings.accept_ahead_s
        )
        screened = [
            screen(r.topic, r.payload, max_bytes=self.settings.max_bytes, accepted=accepted)
            for r in batch
        ]
        if self.settings.commit_delay_s:
            time.sleep(self.settings.commit_delay_s)
        counts = self.store.write(screened)
        self.counts.add(counts)
        for category, count in counts.by_category.items():
            log.warning("%d message(s) dead-lettered: %s.", count, category)
        session = self._session
        for received in batch:
            # A message id belongs to its connection: after a reconnection the broker
            # sends the message again (and it is then a duplicate), never ack it here.
            if received.session == session and received.qos > 0:
                client.ack(received.mid, received.qos)

    # --- paho callbacks (network thread) ---------------------------------------------
    def _on_connect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: ReasonCode, properties: Any
    ) -> None:
        if reason.is_failure:
            log.warning("MQTT: broker refused the connection: %s; retrying.", reason)
            return
        self._session += 1
        client.subscribe(self.settings.topic_filter(), qos=1)
        self.connected.set()
        resumed = bool(getattr(flags, "session_present", False))
        log.info(
            "MQTT: connected to %s:%s as %s (session %s).",
            self.config.host,
            self.config.port,
            self.settings.client_id,
            "resumed" if resumed else "new",
        )

    def _on_subscribe(
        self, client: mqtt.Client, userdata: Any, mid: int, reasons: list[ReasonCode], props: Any
    ) -> None:
        for reason in reasons:
            if reason.is_failure:
                log.error(
                    "MQTT: broker refused the subscription %s: %s (does it support shared "
                    "subscriptions? see docs/central.md)",
                    self.settings.topic_filter(),
                    reason,
                )
                return
        log.info("MQTT: subscribed to %s.", self.settings.topic_filter())
        self.subscribed.set()

    def _on_disconnect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: ReasonCode, props: Any
    ) -> None:
        if self.connected.is_set():
            log.warning("MQTT: connection lost (%s); reconnecting.", reason)
        self.connected.clear()
        self.subscribed.clear()

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        self._queue.put(
            Received(self._session, message.mid, message.qos, message.topic, bytes(message.payload))
        )
