"""A thin MQTT client: ``publish``, ``subscribe``, ``start``/``run``, ``stop``.

Over paho-mqtt 2.x (``CallbackAPIVersion.VERSION2``, MQTT 5), whose network
thread does all socket I/O (TLS sockets must not be written from two threads) and
reconnects with backoff. It keeps no message queue of its own: the outbox is the
queue. It announces itself with a retained ``online`` on ``available`` and leaves
a retained ``offline`` there as its last will. Every connection failure is
reported with its cause (unreachable broker, TLS handshake, refused credentials),
and a refused CONNACK is never taken for a connection.
"""

from __future__ import annotations

import logging
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from edge.config.sync import MqttConfig, TlsConfig
from edge.errors import ConfigError
from sync.errors import BrokerError

log = logging.getLogger(__name__)

Handler = Callable[[str, bytes], object]  # return value ignored

SESSION_NEVER_EXPIRES = 0xFFFFFFFF
# paho sends at most this many QoS 1 messages before their PUBACKs and queues the rest
# unsent; the publisher keeps far fewer aggregates in flight, so what it hands paho goes
# out at once and is never stuck behind its own retries (paho's default is 20).
PAHO_MAX_INFLIGHT = 100
# Beyond this many unacknowledged messages paho refuses new ones (Delivery.dropped):
# a hard bound on what a silent broker can make this process hold.
PAHO_MAX_QUEUED = 2000


def tls_context(tls: TlsConfig) -> ssl.SSLContext:
    """An SSL context from the TLS config.

    Raises:
        ConfigError: a CA, certificate or key file that cannot be read or parsed.
    """
    try:
        return tls.ssl_context()
    except ValueError as error:
        raise ConfigError(f"sync.mqtt.{error}") from None


@dataclass(frozen=True, slots=True)
class Delivery:
    """A QoS 1 publish; ``done`` once the broker acknowledged it (PUBACK)."""

    info: mqtt.MQTTMessageInfo
    _acks: dict[int, ReasonCode]

    def done(self) -> bool:
        """The broker acknowledged it. Never raises: paho's ``is_published()`` raises for
        any publish whose ``rc`` is an error, and :meth:`MqttClient.publish` leaves only
        the errors of a publish paho did not keep (:meth:`dropped`)."""
        return not self.dropped() and self.info.is_published()

    def dropped(self) -> bool:
        """paho did not keep it (its queue was full): it will never be sent, so it must be
        published again. Any other unacknowledged publish is still held by paho, which
        sends it again after a reconnection."""
        return self.info.rc != mqtt.MQTT_ERR_SUCCESS

    def refusal(self) -> str | None:
        """The broker's reason if its PUBACK refused the message (e.g. not authorized)."""
        code = self._acks.get(self.info.mid)
        return str(code) if code is not None and code.is_failure else None


# paho's reason-code names (MQTT 5), in words for the journal and the status page.
REASON_WORDS = {
    "Keep alive timeout": "the broker stopped answering (no reply within the keep-alive time)",
    "Server shutting down": "the broker is shutting down",
    "Session taken over": "another client connected with this box's client id",
    "Not authorized": "the broker does not accept this box's user name or password",
    "Bad user name or password": "the broker does not accept this box's user name or password",
    "Banned": "the broker has banned this box",
    "Server busy": "the broker is too busy",
    "Server unavailable": "the broker is not available",
    "Administrative action": "the broker's administrator disconnected this box",
    "Message rate too high": "this box sent messages faster than the broker allows",
    "Quota exceeded": "this box went over the broker's quota",
    "Packet too large": "a message was larger than the broker allows",
    "Connection rate exceeded": "this box reconnected more often than the broker allows",
    "Maximum connect time": "the broker's longest allowed connection time was reached",
    "Use another server": "the broker asks this box to use another server",
    "Server moved": "the broker has moved to another address",
    "Protocol error": "the broker and this box disagreed on the MQTT protocol",
    "Malformed packet": "the broker and this box disagreed on the MQTT protocol",
}
# paho reports a connection that ended without a DISCONNECT from the broker (socket
# closed, network down, broker killed) as "Unspecified error".
CONNECTION_CLOSED = ("the network connection closed without a word from the broker (broker "
                     "stopped or restarted, or the network is down)")


def reason_words(reason: ReasonCode, *, from_broker: bool = True) -> str:
    """Plain words for a paho reason code, ending with its MQTT code for IT."""
    name = getattr(reason, "getName", lambda: str(reason))()
    value = getattr(reason, "value", None)
    code = f" (MQTT reason {value:#04x})" if isinstance(value, int) else ""
    if name == "Unspecified error" and not from_broker:
        return CONNECTION_CLOSED
    words = REASON_WORDS.get(name)
    if words is None:
        return f"the broker said: {name}{code}"
    return f"{words}{code}"


def check_filter(topic: str) -> None:
    """Refuse a subscription filter the broker (and paho) would refuse, here and now
    rather than on the network thread at the next connection, which it would end.

    Raises:
        ValueError: naming the filter and what is wrong with it.
    """
    levels = topic.split("/")
    if not topic or len(topic.encode("utf-8", "surrogatepass")) > 65535 or "\0" in topic:
        raise ValueError(f"invalid MQTT subscription filter {topic!r}: empty, too long or NUL")
    for index, level in enumerate(levels):
        if ("#" in level or "+" in level) and len(level) > 1:
            raise ValueError(
                f"invalid MQTT subscription filter {topic!r}: a wildcard must be a whole level"
            )
        if level == "#" and index != len(levels) - 1:
            raise ValueError(f"invalid MQTT subscription filter {topic!r}: '#' must come last")


class _Client(mqtt.Client):
    """paho's client, remembering why the last connection attempt failed (paho's
    ``on_connect_fail`` is not told), and why its network thread ended if it died."""

    last_connect_error: OSError | None = None
    thread_failure: BaseException | None = None
    # Whether the broker answered this connection attempt's CONNECT (a CONNACK, accepted
    # or refused): a connection closed before that was closed by no MQTT broker.
    answered = False

    def reconnect(self) -> mqtt.MQTTErrorCode:
        self.answered = False
        try:
            return super().reconnect()
        except OSError as error:
            self.last_connect_error = error
            raise

    def _thread_main(self) -> None:
        # paho re-raises an exception from a callback, which ends its thread silently for
        # the rest of the process: record it, so the thread that waits can end with it.
        try:
            super()._thread_main()
        except BaseException as error:
            self.thread_failure = error
            log.exception("MQTT: the network thread failed.")


class MqttClient:
    """Connects to one broker, keeps reconnecting, routes messages to handlers.

    Args:
        config: broker address, credentials and TLS.
        client_id: unique per box (and per consumer).
        available_topic: gets a retained ``online`` when connected; ``offline`` is the will.
        persistent_session: keep subscriptions and queued QoS 1 messages at the broker
            while disconnected (the consumer wants this; the edge uses its outbox).
        ack_after_handler: acknowledge a received QoS 1 message only once its handler
            returned without raising, so a message a receiver failed to store is sent
            again (at-least-once to the receiver's disk, not just to its process).
        max_packet_bytes: the largest packet this client takes (MQTT 5 Maximum Packet
            Size, sent in CONNECT): the broker must not send it a bigger one, so an
            oversized message never reaches this process's memory (the broker drops it
            for this client). None: no limit.
    """

    def __init__(
        self,
        config: MqttConfig,
        *,
        client_id: str,
        available_topic: str | None = None,
        persistent_session: bool = False,
        ack_after_handler: bool = False,
        max_packet_bytes: int | None = None,
    ) -> None:
        self.config = config
        self.available_topic = available_topic
        self.connected = threading.Event()
        self.subscribed = threading.Event()  # every subscription acknowledged (SUBACK)
        # Message ids of subscriptions not yet acknowledged. paho gives None for one it
        # could not send (no connection): it stays here, so `subscribed` is not set.
        self._unacked_subscriptions: set[int | None] = set()
        self.connections = 0  # successful CONNACKs so far; the service watches it to re-announce
        self.last_error: str | None = None
        self._handlers: dict[str, tuple[Handler, int]] = {}
        self._acks: dict[int, ReasonCode] = {}
        self._stop_requested = False  # a plain flag: set from signal handlers too
        self._running_foreground = False
        client = _Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=mqtt.MQTTv5,
            manual_ack=ack_after_handler,
        )
        self._manual_ack = ack_after_handler
        if config.username is not None:
            client.username_pw_set(config.username, config.password)
        if config.tls is not None:
            client.tls_set_context(tls_context(config.tls))
        if available_topic:
            client.will_set(available_topic, b"offline", qos=1, retain=True)
        client.max_inflight_messages_set(PAHO_MAX_INFLIGHT)
        client.max_queued_messages_set(PAHO_MAX_QUEUED)
        connect = Properties(PacketTypes.CONNECT)
        if persistent_session:
            connect.SessionExpiryInterval = SESSION_NEVER_EXPIRES
        if max_packet_bytes is not None:
            connect.MaximumPacketSize = max_packet_bytes
        properties = connect if persistent_session or max_packet_bytes is not None else None
        client.connect_async(
            config.host,
            config.port,
            config.keepalive_s,
            clean_start=not persistent_session,
            properties=properties,
        )
        client.reconnect_delay_set(config.reconnect_min_s, config.reconnect_max_s)
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_publish = self._on_publish
        client.on_subscribe = self._on_subscribe
        self._client = client

    # --- the four verbs -------------------------------------------------------------
    def subscribe(self, topic: str, handler: Handler, qos: int = 1) -> None:
        """Route messages on ``topic`` (wildcards allowed) to ``handler(topic, payload)``;
        (re)subscribed on every connection.

        Raises:
            ValueError: ``topic`` is not a valid subscription filter.
        """
        check_filter(topic)
        self._handlers[topic] = (handler, qos)
        if self.connected.is_set():
            self._client.subscribe(topic, qos)

    def publish(
        self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False
    ) -> Delivery:
        """Hand a message to paho; the :class:`Delivery` says when the broker has it.

        A QoS 1 publish made while the connection is down (paho's ``MQTT_ERR_NO_CONN``,
        as when the broker drops between the caller's check and this call) is kept by
        paho and sent on the next connection, like any unacknowledged one; but paho
        keeps that ``rc`` after the PUBACK, and its ``is_published()`` raises
        ``RuntimeError`` on it for ever (it once ended ``edge sync run`` whenever a
        publish met a dropping connection). paho keeps every QoS > 0 message it did not
        refuse with ``MQTT_ERR_QUEUE_SIZE`` (it stores the message before sending it), so
        any other ``rc`` is reset to success here: the message is held and will be sent.
        """
        info = self._client.publish(topic, payload, qos=qos, retain=retain)
        if qos > 0 and info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_QUEUE_SIZE):
            info.rc = mqtt.MQTT_ERR_SUCCESS
        return Delivery(info, self._acks)

    def start(self) -> None:
        """Connect, and keep reconnecting, in paho's background thread."""
        self._client.loop_start()

    def stop(self, timeout_s: float = 2.0) -> None:
        """Say ``offline`` (retained; a clean disconnect does not fire the will), disconnect
        and stop the network thread. When :meth:`run` is blocking another thread, only
        ask it to do so: safe from a signal handler."""
        self._stop_requested = True
        if self._running_foreground:
            return
        if self.connected.is_set() and self.available_topic:
            delivery = self.publish(self.available_topic, b"offline", retain=True)
            deadline = time.monotonic() + timeout_s
            while not delivery.done() and self.connected.is_set() and time.monotonic() < deadline:
                time.sleep(0.02)
        self._client.disconnect()
        self._client.loop_stop()
        self.connected.clear()

    def check(self) -> None:
        """Raise if the network thread died (a bug in a callback): nothing would ever be
        sent or received again, so whoever waits must not wait for ever.

        Raises:
            BrokerError: naming what ended the thread.
        """
        failure = self._client.thread_failure
        if failure is not None:
            raise BrokerError(
                f"the MQTT network thread failed: {type(failure).__name__}: {failure}"
            )

    def run(self) -> None:
        """:meth:`start`, block until :meth:`stop` is called (from another thread or a
        signal handler), then stop.

        Raises:
            BrokerError: the network thread died.
        """
        self._running_foreground = True
        self.start()
        try:
            while not self._stop_requested:
                self.check()
                time.sleep(0.05)
        finally:
            self._running_foreground = False
            self.stop()

    def _on_connect_fail(self, client: mqtt.Client, userdata: Any) -> None:
        where = f"{self.config.host}:{self.config.port}"
        error = self._client.last_connect_error
        if isinstance(error, ssl.SSLError):
            self._failed(f"TLS handshake with {where} failed: {error.reason or error}")
        else:
            detail = (error.strerror or str(error)) if error is not None else "connection failed"
            self._failed(f"broker {where} unreachable: {detail}")

    def _failed(self, reason: str) -> None:
        if reason != self.last_error:
            log.warning("MQTT: %s; retrying.", reason)
        self.last_error = reason

    # --- paho callbacks (network thread) ---------------------------------------------
    def _on_connect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: ReasonCode, properties: Any
    ) -> None:
        self._client.answered = True
        if reason.is_failure:
            # Frigate once logged a refusal and then marked itself connected (#22496): not here.
            self._failed(f"broker refused the connection: {reason}: {reason_words(reason)}")
            return
        self.last_error = None
        self.subscribed.clear()
        self._unacked_subscriptions = {
            client.subscribe(topic, qos)[1] for topic, (_, qos) in self._handlers.items()
        }
        if not self._unacked_subscriptions:
            self.subscribed.set()
        if self.available_topic:
            client.publish(self.available_topic, b"online", qos=1, retain=True)
        self.connections += 1
        self.connected.set()
        log.info("MQTT: connected to %s:%s.", self.config.host, self.config.port)

    def _on_disconnect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: ReasonCode, properties: Any
    ) -> None:
        was_connected = self.connected.is_set()
        self.connected.clear()
        self.subscribed.clear()
        if self._stop_requested:
            return
        where = f"{self.config.host}:{self.config.port}"
        if was_connected:
            from_broker = bool(getattr(flags, "is_disconnect_packet_from_server", False))
            self._failed(f"connection to the broker {where} lost: "
                         f"{reason_words(reason, from_broker=from_broker)}")
        elif not self._client.answered:
            # The port took the connection but closed it without answering CONNECT: most
            # often plain MQTT aimed at a TLS listener (or something that is no broker).
            self._failed(self._closed_before_answering(where))

    def _closed_before_answering(self, where: str) -> str:
        if self.config.tls is None:
            return (f"{where} closed the connection without answering as an MQTT broker: is "
                    f"it a TLS port? Set sync.mqtt.tls (docs/mqtt.md) or use the plain port")
        return f"{where} closed the connection without answering as an MQTT broker"

    def _on_subscribe(
        self,
        client: mqtt.Client,
        userdata: Any,
        mid: int,
        reasons: list[ReasonCode],
        properties: Any,
    ) -> None:
        for reason in reasons:
            if reason.is_failure:
                self._failed(f"broker refused a subscription: {reason}")
        self._unacked_subscriptions.discard(mid)
        if not self._unacked_subscriptions:
            self.subscribed.set()

    def _on_publish(
        self, client: mqtt.Client, userdata: Any, mid: int, reason: ReasonCode, properties: Any
    ) -> None:
        # Called under paho's own lock: record only, never call back into paho here.
        self._acks[mid] = reason

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        for topic, (handler, _) in self._handlers.items():
            if mqtt.topic_matches_sub(topic, message.topic):
                try:
                    handler(message.topic, bytes(message.payload))
                except Exception:  # a bad message must not kill the network thread
                    log.exception(
                        "MQTT: handler for %s failed on a message; not acknowledged.", message.topic
                    )
                    return
                break
        if self._manual_ack and message.qos > 0:
            client.ack(message.mid, message.qos)
