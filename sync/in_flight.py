"""The aggregates handed to paho and not yet recorded delivered.

A publish stays *in flight* from the moment paho takes it until its PUBACK: paho keeps an
unacknowledged QoS 1 message and sends it again by itself after a reconnection, so the
row is never published a second time meanwhile (a second copy would only be a
duplicate). An acknowledged publish is *acked* until the outbox records it delivered: a
database that cannot be written (a full disk) keeps it there, never published again,
and it is recorded at a later pass. At most :data:`MAX_IN_FLIGHT` publishes wait for
their PUBACK at a time, so a broker that stops acknowledging leaves the outbox growing
on disk, not in memory.

The sync service (:mod:`sync.publisher`) owns one :class:`InFlight` and drives it from
its pass, on the thread that owns the database connection.
"""

from __future__ import annotations

import logging
import sqlite3
from dataclasses import dataclass

from sync.mqtt_client import Delivery
from sync.outbox import Outbox

log = logging.getLogger(__name__)

MAX_IN_FLIGHT = 20  # aggregates published and not yet acknowledged, at most


@dataclass(frozen=True, slots=True)
class Acks:
    """What :meth:`InFlight.collect` found."""

    delivered: int  # acknowledged rows recorded delivered
    retried: int  # rows refused (by the broker's PUBACK, or by paho's full queue)
    record_error: sqlite3.Error | None  # why acknowledged rows could not be recorded


class InFlight:
    """The outbox rows published and not yet recorded delivered.

    ``len()`` and ``in`` count the rows waiting for their PUBACK; :attr:`acked` holds
    those acknowledged and not yet recorded.
    """

    def __init__(self, outbox: Outbox, ack_timeout_s: float) -> None:
        self.outbox = outbox
        self.ack_timeout_s = ack_timeout_s
        # id -> (delivery, sent at); kept until paho has its PUBACK (or refused to queue it)
        self.sent: dict[str, tuple[Delivery, float]] = {}
        # Acknowledged by the broker but not yet recorded delivered (the database could not
        # be written: a full disk): never published again, recorded at a later pass.
        self.acked: set[str] = set()
        self._connection_seen = 0  # the client's connections when the clocks were last reset
        self.unacked_for_s = 0.0  # how long the oldest in-flight publish has waited

    def __len__(self) -> int:
        return len(self.sent)

    def __contains__(self, id: object) -> bool:
        return id in self.sent

    def add(self, id: str, delivery: Delivery, now: float) -> None:
        """Remember a publish paho has taken, until its PUBACK."""
        self.sent[id] = (delivery, now)

    def room(self) -> int:
        """How many more rows may be published now."""
        return MAX_IN_FLIGHT - len(self.sent)

    def held(self) -> set[str]:
        """The rows that must not be published again: in flight or acknowledged."""
        return set(self.sent) | self.acked

    def collect(self, now: float, connections: int) -> Acks:
        """Mark acknowledged rows delivered; schedule a retry for a refused one (its PUBACK
        carried a failure) or one paho would not queue. A row waiting for its PUBACK stays
        in flight, across timeouts and reconnections alike: paho still holds it and sends
        it again itself after a reconnection, so publishing it again would send it twice
        (before this, a silent broker got a new copy of every row at each timeout).

        An acknowledged row is remembered in :attr:`acked` until it is recorded, so a
        database that cannot be written (a full disk) never makes it be published again
        (before this, the same 20 rows went out at every pass and the rest never did).

        Args:
            connections: the client's connections so far: a new one restarts the clocks.
        """
        retried = 0
        if self._connection_seen != connections:
            # A new connection: paho resent what it holds; wait ack_timeout_s from now.
            self._connection_seen = connections
            self.sent = {id: (d, now) for id, (d, _) in self.sent.items()}
        for id, (delivery, _) in list(self.sent.items()):
            if delivery.done():
                reason = delivery.refusal()
                if reason is not None:
                    reason = f"broker refused the message: {reason}"
            elif delivery.dropped():
                reason = "the MQTT client's queue was full"
            else:
                continue
            del self.sent[id]
            if reason is None:
                self.acked.add(id)
                continue
            retried += 1
            try:
                next_at = self.outbox.mark_failed(id, reason, now)
            except sqlite3.Error as error:  # the row stays due: published again next pass
                log.warning("Aggregate %s not delivered (%s), and the attempt cannot be "
                            "recorded (%s); retry at the next pass.", id, reason, error)
                continue
            log.warning(
                "Aggregate %s not delivered (%s); retry in %.0f s.", id, reason, next_at - now
            )
        delivered, record_error = self._record_delivered(now)
        return Acks(delivered, retried, record_error)

    def _record_delivered(self, now: float) -> tuple[int, sqlite3.Error | None]:
        """Mark the acknowledged rows delivered; on a database error keep them in
        :attr:`acked` (not published again) to try again at the next pass."""
        if not self.acked:
            return 0, None
        try:
            self.outbox.mark_delivered(sorted(self.acked), now)
        except sqlite3.Error as error:
            return 0, error
        count = len(self.acked)
        self.acked.clear()
        return count, None

    def watch(self, now: float, connected: bool) -> None:
        """Update :attr:`unacked_for_s`, and say so once it passes ``ack_timeout_s``."""
        oldest = min((sent for _, sent in self.sent.values()), default=now)
        waited = now - oldest if connected else 0.0
        if waited > self.ack_timeout_s and self.unacked_for_s <= self.ack_timeout_s:
            log.warning(
                "Sync: the broker has not acknowledged %d aggregates for %.0f s; holding them "
                "(they are sent again on reconnection) and sending no more meanwhile.",
                len(self.sent),
                waited,
            )
        self.unacked_for_s = waited
