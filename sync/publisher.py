"""The sync service loop: closed windows -> outbox -> MQTT, acknowledgements, downlink.

Each pass (every ``sync.poll_s``): store newly closed windows in the outbox; mark
acknowledged publishes delivered and schedule retries for refused ones; publish due
rows (re-checked for k-anonymity and schema on the way out: the
one place where data leaves the box); apply queued downlinks; send stats; report
health. Everything here runs on the thread that owns the database connection;
the MQTT network thread only queues downlink messages.

At most :data:`~sync.in_flight.MAX_IN_FLIGHT` aggregates are unacknowledged at a time,
and a row is never published again while paho still holds its previous publish
(:mod:`sync.in_flight` keeps that account). A broker that stops acknowledging leaves the
outbox growing on disk, not in memory, and health turns ``degraded`` ("not acknowledged
for N s") instead of reading ``ok``.
"""

from __future__ import annotations

import json
import logging
import queue
import sqlite3
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Protocol

import sqlite_utils

from edge.config import SiteConfig
from edge.errors import StorageError
from edge.storage.health import read_health, report_health
from sync import contract, kanon
from sync.contract import Topics
from sync.discovery import discovery_messages
from sync.downlink import (
    HANDLERS,
    MAX_DOWNLINK_BYTES,
    MAX_INCOMING_PACKET,
    DownlinkContext,
    DownlinkResult,
    screen,
)
from sync.errors import ContractError, PrivacyError, short_reason
from sync.in_flight import InFlight
from sync.mqtt_client import MqttClient
from sync.outbox import Outbox, OutboxSummary
from sync.producer import Produced, produce, tighten
from sync.settings import effective_settings, forget_nonces

log = logging.getLogger(__name__)

COMPONENT = "sync"
DOWNLINK_QUEUE = 32  # authentic (signed) downlinks waiting for the next pass
REFUSAL_QUEUE = 1000  # refusals waiting to be published (a few hundred bytes each)
ALARM_HOLD_S = 3600.0
PURGE_EVERY_S = 3600.0


class Notifier(Protocol):
    """systemd notifications (the appliance's ServiceNotifier fits)."""

    def ready(self, status: str) -> None: ...
    def alive(self) -> None: ...
    def stopping(self) -> None: ...


@dataclass(frozen=True, slots=True)
class PassReport:
    produced: int
    published: int
    delivered: int
    retried: int


def build_client(site: SiteConfig) -> MqttClient:
    """The edge's client: its will and ``online`` go to ``<prefix>/<store>/available``."""
    mqtt = site.sync.mqtt
    topics = Topics(mqtt.topic_prefix, site.site.id)
    return MqttClient(
        mqtt,
        client_id=mqtt.client_id or f"edge-{site.site.id}",
        available_topic=topics(contract.AVAILABLE),
        max_packet_bytes=MAX_INCOMING_PACKET,
    )


class SyncService:
    """Runs the sync of one store. ``clock`` is injectable for tests."""

    def __init__(
        self,
        site: SiteConfig,
        db: sqlite_utils.Database,
        client: MqttClient | None = None,
        clock=time.time,
    ) -> None:
        self.site = site
        self.config = site.sync
        self.db = db
        self.clock = clock
        self.topics = Topics(self.config.mqtt.topic_prefix, site.site.id)
        self.outbox = Outbox(
            db,
            max_pending=self.config.outbox_max_pending,
            retry_initial_s=self.config.retry_initial_s,
            retry_max_s=self.config.retry_max_s,
        )
        self.client = client or build_client(site)
        self.in_flight = InFlight(self.outbox, self.config.ack_timeout_s)
        # Only signed messages are queued; every other one is refused on arrival and only
        # its refusal (a short reason) is kept until the next pass publishes it.
        self.downlinks: queue.Queue[tuple[str, bytes]] = queue.Queue(DOWNLINK_QUEUE)
        self.refusals: deque[DownlinkResult] = deque()
        self.dropped_downlinks = 0  # refusals beyond REFUSAL_QUEUE, so far (reported as counts)
        self._overflow = 0  # of which not yet reported
        self._overflow_lock = threading.Lock()
        self.last_downlink: DownlinkResult | None = None
        self._announced = 0
        self._last_stats = 0.0
        self._last_purge = 0.0
        self._alarms: dict[str, tuple[str, float]] = {}
        self._last_health: tuple[str, str, tuple[str, ...]] | None = None
        self._last_health_at = 0.0
        self.clock_behind_s = 0.0  # how far the clock is behind the cursor (health)
        self.failed_passes = 0  # passes ended by an exception so far (health: failed_passes)
        if self.config.downlink_key is not None:
            # Subscriptions come from the dispatch table, never from a second list.
            for suffix in HANDLERS:
                self.client.subscribe(self.topics(suffix), self._enqueue_downlink)

    # --- network thread ---------------------------------------------------------------
    def _enqueue_downlink(self, topic: str, payload: bytes) -> None:
        """Keep a signed message for the next pass; refuse anything else at once. The size
        is checked before anything else, so an oversized message is never copied or kept
        (before this, 12 queued 20 MB messages took the service from 140 to 422 MB)."""
        if len(payload) > MAX_DOWNLINK_BYTES:
            refusal: DownlinkResult | None = DownlinkResult(
                "refused", f"message of {len(payload)} bytes exceeds {MAX_DOWNLINK_BYTES}"
            )
        elif (suffix := self.topics.suffix_of(topic)) not in HANDLERS:
            refusal = DownlinkResult("refused", short_reason(f"unknown topic {topic}"))
        else:
            refusal = screen(payload, self.config.downlink_key)
        if refusal is None:
            try:
                self.downlinks.put_nowait((suffix or topic, payload))
                return
            except queue.Full:  # only the key's holder can fill it: say so, never silently
                refusal = DownlinkResult(
                    "refused",
                    f"{DOWNLINK_QUEUE} signed downlinks already waiting; send it again",
                    _nonce_of(payload),
                )
        if len(self.refusals) < REFUSAL_QUEUE:
            self.refusals.append(refusal)
        else:
            with self._overflow_lock:
                self._overflow += 1
                self.dropped_downlinks += 1

    # --- one pass ---------------------------------------------------------------------
    def run_pass(self) -> PassReport:
        now = self.clock()
        settings = effective_settings(self.db, self.site)
        produced = 0
        try:
            result = produce(self.db, self.site, self.outbox, settings, now)
            produced = len(result.windows)
            self._alarms.pop("storage", None)
            self._clock_alarms(result, now)
            if result.evictions:
                first = min(e.first_window_start for e in result.evictions)
                last = max(e.last_window_start for e in result.evictions)
                self._alarm(
                    "evicted",
                    f"outbox full ({self.config.outbox_max_pending} undelivered): dropped the "
                    f"{sum(e.count for e in result.evictions)} oldest, windows "
                    f"{contract.iso_utc(first)} to {contract.iso_utc(last)}",
                    now,
                )
        except StorageError as error:
            self._alarm("storage", str(error), now)
        except (ContractError, PrivacyError) as error:
            # A bug, not bad luck: keep the cursor (nothing is skipped) and keep delivering
            # the backlog and serving downlinks while someone looks.
            self._alarm("produce", f"cannot produce the next window: {error}", now)
        delivered, retried = self._collect_acks(now)
        published = self._publish_due(now, settings.k)
        self._process_downlinks(now)
        if self.client.connected.is_set():
            if self._announced != self.client.connections:
                self._announce()
            if now - self._last_stats >= self.config.stats_interval_s:
                self._publish_stats(now)
        if now - self._last_purge >= PURGE_EVERY_S:
            self._purge(now)
        self._report_health(now)
        if delivered:
            log.info(
                "Delivered %d aggregates (%d waiting).", delivered, self.outbox.summary().pending
            )
        return PassReport(produced, published, delivered, retried)

    def _clock_alarms(self, result: Produced, now: float) -> None:
        """Say so when the clock and the data disagree: windows are held meanwhile."""
        self.clock_behind_s = result.cursor_ahead_s
        self._alarm("clock", None if not result.cursor_ahead_s else (
            "the clock is behind the windows already produced (up to "
            f"{contract.iso_utc(now + result.cursor_ahead_s)}): it was ahead or has been set "
            "back; no window is produced until it passes that time (check NTP and the "
            "real-time clock)"), now)
        self._alarm("held", None if result.held_at is None else (
            f"no visit source has written data past {contract.iso_utc(result.held_at)} "
            "while the clock reads later: windows after that wait for the data (a camera or "
            "the fusion service stuck, or the clock ahead: check NTP)"), now)

    def storage_problem(self) -> str | None:
        """Why the last pass could not store windows (a full disk...), or None."""
        for key in ("storage", "database", "record"):
            if key in self._alarms:
                return self._alarms[key][0]
        return None

    def _pass_failed(self, key: str, message: str) -> None:
        """Count a pass that raised and report it in health, as far as the database lets."""
        self.failed_passes += 1
        now = self.clock()
        self._alarm(key, message, now)
        try:
            self._report_health(now)
        except Exception as error:  # the database itself may be what failed
            log.warning("Sync: cannot record health: %s", error)

    def _alarm(self, key: str, message: str | None, now: float) -> None:
        """Raise the alarm ``key`` (logged when its message changes), or clear it (None)."""
        if message is None:
            self._alarms.pop(key, None)
            return
        if self._alarms.get(key, ("",))[0] != message:
            log.error("Sync: %s.", message)
        self._alarms[key] = (message, now)

    def _collect_acks(self, now: float) -> tuple[int, int]:
        """Settle the publishes paho has answered (:meth:`InFlight.collect`); alarm while
        acknowledged rows cannot be recorded delivered."""
        acks = self.in_flight.collect(now, self.client.connections)
        if acks.record_error is not None:
            self._alarm("record", f"cannot record acknowledged aggregates as delivered "
                        f"({acks.record_error}); they are not sent again and are recorded "
                        "once the database can be written", now)
        elif acks.delivered:
            self._alarms.pop("record", None)
        self.in_flight.watch(now, self.client.connected.is_set())
        return acks.delivered, acks.retried

    def _publish_due(self, now: float, k: int) -> int:
        if not self.client.connected.is_set():
            return 0
        rows = self.outbox.due(now, self.in_flight.room(), exclude=self.in_flight.held())
        for row in rows:
            try:
                message = json.loads(row.payload)
                tightened = message.get("k", 0) < k  # raised since: the stricter k applies
                if not tightened and (problems := kanon.violations(message, k)):
                    # Stored before the box was updated with a stricter rule: the rule
                    # applies to what waits in the outbox too, rather than losing it.
                    log.warning("Aggregate %s from the outbox breaks a k rule (%s): "
                                "applying the rules again before it is sent.", row.id,
                                short_reason(problems[0]))
                    tightened = True
                if tightened:
                    message = tighten(self.db, message, k)
                contract.validate("aggregate", message)
                kanon.assert_k_anonymous(message, k)
            except (PrivacyError, ContractError, ValueError, KeyError, TypeError) as error:
                reason = short_reason(str(error))
                self.outbox.mark_refused(row.id, reason)
                self._alarm("refused", f"aggregate {row.id} refused on the way out: {reason}", now)
                continue
            payload = contract.canonical_json(message)
            if tightened:  # what the next messages' checks read back is what went out
                try:
                    self.outbox.replace_payload(row.id, payload)
                except sqlite3.Error as error:
                    self._alarm("record", f"cannot keep aggregate {row.id} as tightened "
                                f"({error}); it is sent once the database can be written", now)
                    continue
            delivery = self.client.publish(self.topics(row.topic_suffix), payload, qos=1)
            self.in_flight.add(row.id, delivery, now)
        return len(rows)

    def _process_downlinks(self, now: float) -> None:
        """Publish a state for every message refused on arrival, then verify and apply the
        signed ones: every message not applied is reported on config/state."""
        while self.refusals:
            refusal = self.refusals.popleft()
            log.warning("Refused a config downlink: %s", refusal.reason)
            self.last_downlink = refusal
            self._publish_state(now)
        with self._overflow_lock:
            count, self._overflow = self._overflow, 0
        if count:
            self.last_downlink = DownlinkResult(
                "refused", f"{count} more downlinks refused (more than {REFUSAL_QUEUE} at once)"
            )
            log.warning("Refused a config downlink: %s", self.last_downlink.reason)
            self._publish_state(now)
        while True:
            try:
                suffix, payload = self.downlinks.get_nowait()
            except queue.Empty:
                return
            handler = HANDLERS[suffix]  # _enqueue_downlink queues known suffixes only
            context = DownlinkContext(
                self.db,
                self.site.site.id,
                self.config.downlink_key,
                self.config.downlink_max_age_s,
                now,
                site_k=self.site.privacy.min_publishable_count,
            )
            try:
                result = handler(payload, context)
            except Exception as error:  # a bug: a retained message would end every start
                log.exception("Downlink handler for %s failed; message refused.", suffix)
                result = DownlinkResult(
                    "refused", short_reason(f"internal error: {type(error).__name__}: {error}")
                )
            if result.status == "ignored":  # the one in force again (retained): no news
                continue
            self.last_downlink = result
            self._publish_state(now)

    def _announce(self) -> None:
        """After each (re)connection: Home Assistant discovery and the config state."""
        self._announced = self.client.connections
        if self.config.homeassistant_discovery:
            name = self.site.site.name or self.site.site.id
            for topic, payload in discovery_messages(
                self.topics, self.config.discovery_prefix, name
            ):
                self.client.publish(topic, payload, qos=1, retain=True)
        self._publish_state(self.clock())

    def _publish_state(self, now: float) -> None:
        settings = effective_settings(self.db, self.site)
        state = {
            "schema_version": contract.SCHEMA_VERSION,
            "store": self.site.site.id,
            "settings": settings.as_state(),
            "updated_at": settings.updated_at,
            "last_downlink": self.last_downlink.as_state(now) if self.last_downlink else None,
        }
        contract.validate("state", state)
        if self.client.connected.is_set():
            self.client.publish(
                self.topics(contract.CONFIG_STATE),
                contract.canonical_json(state),
                qos=1,
                retain=True,
            )

    def stats(self, now: float) -> dict:
        summary = self.outbox.summary()
        components = [
            {
                "component": row["component"],
                "status": row["status"],
                "message": row["message"],
                "age_s": round(max(0.0, now - row["updated_at"]), 1),
            }
            for row in read_health(self.db)
        ]
        return {
            "schema_version": contract.SCHEMA_VERSION,
            "store": self.site.site.id,
            "at": round(now, 3),
            "components": components,
            "outbox": _outbox_stats(summary),
        }

    def _publish_stats(self, now: float) -> None:
        self._last_stats = now
        stats = self.stats(now)
        contract.validate("stats", stats)
        self.client.publish(self.topics(contract.STATS), contract.canonical_json(stats), qos=0)

    def _purge(self, now: float) -> None:
        self._last_purge = now
        try:
            self.outbox.purge_delivered(now - self.site.storage.delivered_aggregate_days * 86_400)
            forget_nonces(self.db, now - self.config.downlink_max_age_s)
        except Exception as error:  # retention is best effort; the next hour tries again
            log.warning("Sync: purge failed: %s", error)

    def _report_health(self, now: float) -> None:
        summary = self.outbox.summary()
        alarms = [message for message, at in self._alarms.values() if now - at < ALARM_HOLD_S]
        if not self.client.connected.is_set():
            status = "down"
            message = f"Not connected: {self.client.last_error or 'connecting'}."
        elif self.in_flight.unacked_for_s > self.config.ack_timeout_s:
            status = "degraded"
            message = (
                f"Connected, but {len(self.in_flight)} aggregates not acknowledged for "
                f"{self.in_flight.unacked_for_s:.0f} s (the broker sends no PUBACK)."
            )
        elif alarms:
            status, message = "degraded", alarms[-1][0].upper() + alarms[-1][1:] + "."
        else:
            status, message = "ok", "Connected."
        message += f" {summary.pending} aggregates waiting, {summary.delivered} delivered."
        # Rewritten when anything shown changes, and every 30 s (either way: the clock may
        # have been set back).
        shown = (status, message, tuple(alarms))
        if shown == self._last_health and abs(now - self._last_health_at) < 30:
            return
        try:
            detail = {
                **_outbox_stats(summary),
                # Spelled as the status page reads them (edge/web/health.py KNOWN_FIGURES).
                "broker_connected": self.client.connected.is_set(),
                "last_delivered_window": self._last_delivered_window(),
                "in_flight": len(self.in_flight),
                "acknowledged_unrecorded": len(self.in_flight.acked),
                "unacknowledged_s": round(self.in_flight.unacked_for_s, 1),
                "alarms": alarms,
                "dropped_downlinks": self.dropped_downlinks,
                "failed_passes": self.failed_passes,
                "clock_behind_cursor_s": round(self.clock_behind_s, 1),
            }
            report_health(self.db, COMPONENT, status, message, detail)
            self._last_health, self._last_health_at = shown, now
        except Exception as error:  # a full disk must not stop delivery of what is stored
            log.warning("Sync: cannot record health: %s", error)

    def _last_delivered_window(self) -> str | None:
        row = self.db.execute(
            "select max(window_start) from sync_outbox where status = 'delivered'"
        ).fetchone()
        return contract.iso_utc(row[0]) if row and row[0] is not None else None

    # --- service ----------------------------------------------------------------------
    def run(self, stop, notifier: Notifier | None = None) -> None:
        """Run passes every ``poll_s`` until ``stop`` (a threading.Event) is set."""
        self.client.start()
        if notifier is not None:
            notifier.ready(f"syncing store {self.site.site.id}")
        log.info(
            "Sync: store %s to %s:%s, topics %s/%s/...",
            self.site.site.id,
            self.config.mqtt.host,
            self.config.mqtt.port,
            self.topics.prefix,
            self.topics.store,
        )
        try:
            while not stop.is_set():
                self.client.check()  # a dead network thread ends the service (systemd restarts)
                try:
                    self.run_pass()
                except sqlite3.Error as error:  # e.g. locked past the busy timeout: next pass
                    self._pass_failed("database", f"database error: {error}")
                except Exception as error:
                    # A bug met by one pass (a paho surprise once ended the service here,
                    # and a flapping broker then left the unit failed): say it loudly,
                    # count it, and go on; what is stored is kept and sent on later passes.
                    log.exception("Sync: a pass failed; continuing with the next one.")
                    self._pass_failed(
                        "pass", f"a sync pass failed: {type(error).__name__}: {error}"
                    )
                else:
                    if notifier is not None:
                        notifier.alive()  # only a pass that worked counts as alive
                stop.wait(self.config.poll_s)
        finally:
            if notifier is not None:
                notifier.stopping()
            self.client.stop()
            try:
                report_health(self.db, COMPONENT, "down", "Sync service stopped.")
            except Exception as error:
                log.warning("Sync: cannot record health: %s", error)

    def flush(self, timeout_s: float) -> OutboxSummary:
        """Connect, store closed windows, publish until nothing is pending or ``timeout_s``."""
        self.client.start()
        deadline = time.monotonic() + timeout_s
        try:
            while time.monotonic() < deadline:
                self.client.check()
                self.run_pass()
                idle = self.client.connected.is_set() and not self.in_flight
                if idle and self.outbox.summary().pending == 0:
                    break
                time.sleep(0.05)
        finally:
            self.client.stop()
        return self.outbox.summary()


def _nonce_of(payload: bytes) -> str | None:
    """The nonce of a signed message (already authenticated by :func:`screen`)."""
    try:
        nonce = json.loads(json.loads(payload)["body"]).get("nonce")
    except Exception:
        return None
    return nonce if contract.is_nonce(nonce) else None


def _outbox_stats(summary: OutboxSummary) -> dict:
    oldest = summary.oldest_pending_start
    return {
        "pending": summary.pending,
        "delivered": summary.delivered,
        "refused": summary.refused,
        "evicted_total": summary.evicted_total,
        "oldest_pending_window": contract.iso_utc(oldest) if oldest is not None else None,
    }
