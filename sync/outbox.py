"""Store-and-forward outbox: every aggregate is on disk before it is published.

A row is written, with its deterministic id, in the same transaction that moves
the window cursor forward, so a crash (even ``kill -9``) either leaves both or
neither: the window is aggregated again (to the same id) or it is in the outbox.
Rows are marked delivered only when the broker acknowledges them (PUBACK), and
retried with exponential backoff until then. The outbox is bounded: past
``max_pending`` undelivered rows the oldest are dropped, counted, and reported.

Also here: the other tables of the sync service (its state, seen downlink nonces),
in one ``Migrations`` set.
"""

from __future__ import annotations

import json
import random
import sqlite3
import time
from collections.abc import Sequence
from dataclasses import KW_ONLY, dataclass
from typing import Any

import sqlite_utils
from sqlite_utils.migrations import Migrations

from edge.errors import StorageError
from sync.contract import AGGREGATE_KIND

MIGRATIONS = Migrations("edge.sync")

PENDING, DELIVERED, REFUSED = "pending", "delivered", "refused"


@MIGRATIONS()
def m001_sync_tables(db: sqlite_utils.Database) -> None:
    db.table("sync_outbox").create(
        {
            "id": str,  # deterministic: <store>/<window start>/<seconds>/<kind>
            "kind": str,
            "topic_suffix": str,  # under <prefix>/<store>/, so a new prefix applies to the backlog
            "window_start": float,
            "window_s": int,
            "payload": str,  # the k-anonymous, schema-valid JSON, exactly as published
            "bytes": int,
            "created_at": float,
            "status": str,  # pending, delivered or refused (failed the publish-path check)
            "attempts": int,
            "next_attempt_at": float,
            "last_error": str,
            "delivered_at": float,
        },
        pk="id",
    )
    db.table("sync_outbox").create_index(["status", "next_attempt_at"])
    db.table("sync_outbox").create_index(["window_start"])
    db.table("sync_state").create({"key": str, "value": str}, pk="key")
    # sync_overrides was created here too; edge.privacy.overrides owns it now (its own
    # set creates it where this migration has not already).
    db.table("sync_downlink_nonces").create(
        {"nonce": str, "issued_at": float, "received_at": float}, pk="nonce"
    )


@MIGRATIONS()
def m002_resent(db: sqlite_utils.Database) -> None:
    # When `edge sync resend` made a delivered row pending again: a full outbox puts it
    # back to delivered instead of deleting it (its copy stays on the box).
    db.table("sync_outbox").add_column("resent_at", float)


@dataclass(frozen=True, slots=True)
class OutboxRow:
    """One stored message."""

    id: str
    topic_suffix: str
    window_start: float
    window_s: int
    payload: str
    attempts: int


@dataclass(frozen=True, slots=True)
class OutboxSummary:
    pending: int
    delivered: int
    refused: int
    evicted_total: int
    oldest_pending_start: float | None
    pending_bytes: int


@dataclass(frozen=True, slots=True)
class Eviction:
    """Undelivered rows dropped because the outbox was full."""

    count: int
    first_window_start: float
    last_window_start: float


def _is_full(error: sqlite3.Error) -> bool:
    return getattr(error, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL or "full" in str(error)


@dataclass(frozen=True, slots=True)
class PublishedWindow:
    """A window and the ``visits.count`` its aggregate holds (None: withheld)."""

    start: float
    seconds: int
    count: int | None

    @property
    def end(self) -> float:
        return self.start + self.seconds


def published_windows(
    db: sqlite_utils.Database, start: float, end: float, k: int
) -> list[PublishedWindow]:
    """The windows overlapping ``[start, end)`` whose aggregate is in the outbox (sent,
    or queued to be), each with its own length (``sync.window_s`` may have changed
    since) and the ``visits.count`` it was sent with, or will be: a queued one stored
    before k was raised to ``k`` goes out with a count below it withheld (the publish
    path applies the k in force; a sent one is kept as it went out). In order. A window
    with no such row (never produced, evicted unsent, refused or purged) is left out:
    what it said is not known."""
    if end <= start or not db["sync_outbox"].exists():
        return []
    rows = db.execute(
        "select window_start, window_s, payload, status from sync_outbox where kind = ? "
        "and status != ? and window_start < ? and window_start + window_s > ? "
        "order by window_start, window_s",
        [AGGREGATE_KIND, REFUSED, end, start],
    ).fetchall()
    windows = []
    for window_start, seconds, payload, status in rows:
        count = (json.loads(payload).get("visits") or {}).get("count")
        if status == PENDING and count is not None and count < k:
            count = None
        windows.append(PublishedWindow(float(window_start), int(seconds), count))
    return windows


def cover(
    windows: Sequence[PublishedWindow], start: float, end: float
) -> list[PublishedWindow] | None:
    """``[start, end)`` laid out in the published ``windows``, in order: a stretch that
    no window covers (its message is not known) reads as one withheld window (count
    None). None when the windows do not tile the span: one crosses its start or end
    (the span is no sum of window counts), or two overlap."""
    out: list[PublishedWindow] = []
    t = start
    for window in sorted(windows, key=lambda w: (w.start, w.seconds)):
        if window.end <= start or window.start >= end:
            continue
        if window.start < t or window.end > end:
            return None
        if window.start > t:
            out.append(PublishedWindow(t, int(window.start - t), None))
        out.append(window)
        t = window.end
    if t < end:
        out.append(PublishedWindow(t, int(end - t), None))
    return out


def read_state(db: sqlite_utils.Database, key: str, default: Any = None) -> Any:
    row = db.execute("select value from sync_state where key = ?", [key]).fetchone()
    return json.loads(row[0]) if row else default


def write_state(db: sqlite_utils.Database, key: str, value: Any) -> None:
    db.execute(
        "insert into sync_state (key, value) values (?, ?) "
        "on conflict(key) do update set value = excluded.value",
        [key, json.dumps(value)],
    )


@dataclass(eq=False)
class Outbox:
    """The outbox table of one database.

    Attributes:
        db: the box's database (opened with :func:`edge.runtime.schema.open_database`).
        max_pending: most undelivered rows kept; older ones are evicted beyond it.
        retry_initial_s, retry_max_s: backoff of failed publishes (doubling, jittered).
    """

    db: sqlite_utils.Database
    _: KW_ONLY
    max_pending: int = 10_000
    retry_initial_s: float = 5.0
    retry_max_s: float = 300.0

    def cursor(self) -> float | None:
        """Start of the next window to aggregate (None before the first)."""
        value = read_state(self.db, "cursor")
        return None if value is None else float(value)

    def add(
        self,
        *,
        id: str,
        kind: str,
        topic_suffix: str,
        window_start: float,
        window_s: int,
        payload: bytes,
        now: float,
        next_cursor: float | None = None,
    ) -> Eviction | None:
        """Store a message (idempotent on ``id``) and, in the same transaction, move the
        cursor to ``next_cursor``. Returns what was evicted to stay within bounds.

        Raises:
            StorageError: the database is full or unwritable; nothing was written.
        """
        text = payload.decode()
        try:
            with self.db.atomic():
                self.db.execute(
                    "insert or ignore into sync_outbox (id, kind, topic_suffix, window_start, "
                    "window_s, payload, bytes, created_at, status, attempts, next_attempt_at) "
                    "values (?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?)",
                    [
                        id,
                        kind,
                        topic_suffix,
                        window_start,
                        window_s,
                        text,
                        len(payload),
                        now,
                        PENDING,
                        now,
                    ],
                )
                if next_cursor is not None:
                    write_state(self.db, "cursor", next_cursor)
                return self._evict()
        except sqlite3.Error as error:
            reason = "the database or its disk is full" if _is_full(error) else str(error)
            raise StorageError(
                f"cannot write aggregate {id} to the outbox: {reason}. Nothing was written and "
                "the window stays unsent; it is aggregated again once the database can be "
                "written (free disk space, or raise the database size limit)"
            ) from None

    def _evict(self) -> Eviction | None:
        excess = (
            self.db.execute(
                "select count(*) from sync_outbox where status = ?", [PENDING]
            ).fetchone()[0]
            - self.max_pending
        )
        if excess <= 0:
            return None
        oldest = self.db.execute(
            "select id, window_start, resent_at from sync_outbox where status = ? "
            "order by window_start, id limit ?",
            [PENDING, excess],
        ).fetchall()
        # A window sent again by `edge sync resend` goes back to delivered, not away: it
        # was delivered once, and its copy is kept for a later resend.
        self.db.conn.executemany(
            "update sync_outbox set status = ?, resent_at = null where id = ?",
            [(DELIVERED, v[0]) for v in oldest if v[2] is not None])
        victims = [v for v in oldest if v[2] is None]
        if not victims:
            return None
        self.db.conn.executemany("delete from sync_outbox where id = ?", [(v[0],) for v in victims])
        write_state(
            self.db, "evicted_total", read_state(self.db, "evicted_total", 0) + len(victims)
        )
        return Eviction(len(victims), victims[0][1], victims[-1][1])

    def due(
        self, now: float, limit: int, exclude: set[str] | frozenset[str] = frozenset()
    ) -> list[OutboxRow]:
        """Pending rows whose next attempt is due, oldest window first."""
        rows = self.db.execute(
            "select id, topic_suffix, window_start, window_s, payload, attempts from sync_outbox "
            "where status = ? and next_attempt_at <= ? order by window_start, id limit ?",
            [PENDING, now, limit + len(exclude)],
        ).fetchall()
        return [OutboxRow(*row) for row in rows if row[0] not in exclude][:limit]

    def mark_delivered(self, ids: list[str], now: float) -> None:
        if not ids:
            return
        with self.db.atomic():
            self.db.conn.executemany(
                "update sync_outbox set status = ?, delivered_at = ?, last_error = null, "
                "resent_at = null where id = ? and status = ?",
                [(DELIVERED, now, id, PENDING) for id in ids],
            )

    def resend(self, start: float, end: float) -> int:
        """Send the delivered messages of the windows starting in ``[start, end)`` again
        (central lost them: a broker crash, a consumer bug); returns how many. They go
        out as the pending ones do, through the publish path's checks at today's k; the
        central side keeps one copy of a window id. Refused messages stay refused. A full
        outbox puts them back to delivered rather than evicting them.

        Raises:
            StorageError: together with what is pending they would be more than
                ``max_pending`` (the oldest would be evicted: lost for good), or the
                database cannot be written.
        """
        try:
            with self.db.atomic():
                pending, again = self.db.execute(
                    "select sum(status = ?), sum(status = ? and window_start >= ? "
                    "and window_start < ?) from sync_outbox",
                    [PENDING, DELIVERED, start, end]).fetchone()
                if (pending or 0) + (again or 0) > self.max_pending:
                    raise StorageError(
                        f"{again} windows to send again and {pending} pending are more than "
                        f"the outbox holds ({self.max_pending}): send a shorter span again, "
                        "or wait until what is pending has gone")
                self.db.execute(  # due at once, whatever the service's clock reads
                    "update sync_outbox set status = ?, attempts = 0, next_attempt_at = 0, "
                    "last_error = null, resent_at = ? "
                    "where status = ? and window_start >= ? and window_start < ?",
                    [PENDING, time.time(), DELIVERED, start, end])
        except sqlite3.Error as error:
            raise StorageError(f"cannot mark the windows to send again: {error}") from None
        return int(again or 0)

    def replace_payload(self, id: str, payload: bytes) -> None:
        """Keep what is about to be published for row ``id`` (the rules applied again):
        the checks across messages read the counts the outbox holds."""
        with self.db.atomic():
            self.db.execute("update sync_outbox set payload = ?, bytes = ? where id = ?",
                            [payload.decode(), len(payload), id])

    def mark_failed(self, id: str, error: str, now: float) -> float:
        """Count a failed attempt and schedule the next one; returns its time."""
        attempts = self.db.execute("select attempts from sync_outbox where id = ?", [id]).fetchone()
        attempt = (attempts[0] if attempts else 0) + 1
        delay = min(self.retry_max_s, self.retry_initial_s * 2 ** (attempt - 1))
        next_at = now + delay * random.uniform(0.8, 1.0)  # jitter: boxes must not retry in step
        with self.db.atomic():
            self.db.execute(
                "update sync_outbox set attempts = ?, next_attempt_at = ?, last_error = ? "
                "where id = ? and status = ?",
                [attempt, next_at, error, id, PENDING],
            )
        return next_at

    def mark_refused(self, id: str, reason: str) -> None:
        """Never send this row (it failed the privacy or contract check on the way out)."""
        with self.db.atomic():
            self.db.execute(
                "update sync_outbox set status = ?, last_error = ? where id = ?",
                [REFUSED, reason, id],
            )

    def last_error(self) -> str | None:
        """Why the most recently retried pending row failed (e.g. the broker's PUBACK
        refusal "Not authorized"), or None."""
        row = self.db.execute(
            "select last_error from sync_outbox where status = ? and last_error is not null "
            "order by next_attempt_at desc limit 1",
            [PENDING],
        ).fetchone()
        return row[0] if row else None

    def summary(self) -> OutboxSummary:
        counts = dict(
            self.db.execute("select status, count(*) from sync_outbox group by status").fetchall()
        )
        oldest, pending_bytes = self.db.execute(
            "select min(window_start), coalesce(sum(bytes), 0) from sync_outbox where status = ?",
            [PENDING],
        ).fetchone()
        return OutboxSummary(
            pending=counts.get(PENDING, 0),
            delivered=counts.get(DELIVERED, 0),
            refused=counts.get(REFUSED, 0),
            evicted_total=int(read_state(self.db, "evicted_total", 0)),
            oldest_pending_start=oldest,
            pending_bytes=int(pending_bytes),
        )

    def purge_delivered(self, before: float) -> int:
        """Delete delivered rows created before ``before`` (retention)."""
        with self.db.atomic():
            return self.db.execute(
                "delete from sync_outbox where status = ? and created_at < ?", [DELIVERED, before]
            ).rowcount
