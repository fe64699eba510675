"""The central store: screen a message, then commit windows and dead letters in batches.

:func:`screen` is the CPU part (size, JSON, schema, k claim, store, id: the reference
consumer's :func:`sync.consumer.check_aggregate`; numbers within the bounds of
:mod:`sync.central.bounds`; a time zone this worker knows),
done before any database work. :class:`CentralStore` writes a batch in one
transaction: windows keyed by ``(store, window id)`` with ``INSERT ... ON CONFLICT DO
NOTHING``, so a redelivered window is counted as a duplicate, never stored twice; a
window id that comes back with *different* bytes keeps the first and dead-letters the
second (``conflict``). "The first" is the one stored before, else the first copy in the
batch: a batch is de-duplicated by key before its insert, so the database never picks
between two copies of one key. A row the database refuses (a value it cannot store) is
dead-lettered alone (``refused``) and the rest of the batch is committed.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout

from edge.errors import EdgeError
from sync.central.bounds import out_of_bounds
from sync.central.local_day import record_zones
from sync.central.schema import day_of, ensure_partition, migrate
from sync.consumer import check_aggregate
from sync.contract import iso_utc
from sync.errors import ContractError, WrongStore, short_reason

log = logging.getLogger(__name__)

# Aggregates are about 4 kB (docs/mqtt.md, Volume); a box refuses downlinks over 70 kB.
MAX_MESSAGE_BYTES = 65_536
DEAD_LETTER_KEEP_BYTES = MAX_MESSAGE_BYTES  # an oversized payload is not kept at all
# A box's outbox holds about 104 days of windows by default (sync.outbox_max_pending),
# so a box back from a long outage sends windows that old; a year is kept as margin.
ACCEPT_PAST_S = 400 * 86_400
# A window is published after it ends: one that starts later than this ahead of the
# worker's clock comes from a box whose clock is wrong.
ACCEPT_AHEAD_S = 3_600


@dataclass(frozen=True, slots=True)
class AcceptedStarts:
    """The window starts a worker stores, around its own clock: a box whose clock was
    never set (1970 after a dead clock battery) or jumped years ahead would otherwise
    put its windows in the roll-ups of a day that never happened, and create a
    partition for each such day."""

    earliest: float
    latest: float

    @classmethod
    def around(
        cls, now: float, *, past_s: float = ACCEPT_PAST_S, ahead_s: float = ACCEPT_AHEAD_S
    ) -> AcceptedStarts:
        return cls(now - past_s, now + ahead_s)

    def refusal(self, window_start: float) -> str | None:
        if self.earliest <= window_start <= self.latest:
            return None
        return (
            f"window starts {iso_utc(window_start)}, outside {iso_utc(self.earliest)} .. "
            f"{iso_utc(self.latest)} "
            "that this worker accepts (is the box's clock set?)"
        )


class CentralStoreError(EdgeError):
    """The central database cannot be reached or refused a write: nothing of the batch
    was committed, so nothing of it may be acknowledged."""


@dataclass(frozen=True, slots=True)
class WindowRow:
    """An aggregate that passed every check, as it is stored."""

    topic: str
    store: str
    window_id: str
    window_start: float
    window_s: int
    k: int
    schema_version: str
    text: str
    sha256: bytes
    timezone: str | None = None  # the store's IANA zone (schema 1.5); None: an older box


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A message that is not stored as a window, and why.

    ``category``: ``oversized``, ``wrong_store``, ``invalid`` (not JSON, schema, k
    claim, id, a number beyond :mod:`sync.central.bounds`, a time zone this worker does
    not know), ``out_of_range`` (a window start
    outside :class:`AcceptedStarts`), ``conflict`` (an id already stored with other
    bytes) or ``refused`` (the database refused to store its row).
    """

    topic: str
    category: str
    reason: str
    size: int
    payload: bytes | None


Screened = WindowRow | DeadLetter
WindowKey = tuple[str, str]  # (store, window id): a window's key in ``windows``


def key_of(window: WindowRow) -> WindowKey:
    return window.store, window.window_id


def screen(
    topic: str,
    payload: bytes,
    *,
    max_bytes: int = MAX_MESSAGE_BYTES,
    accepted: AcceptedStarts | None = None,
) -> Screened:
    """Check one message from ``topic`` (``<prefix>/<store>/aggregates``); never raises.

    ``accepted``: the window starts to store (the ingest worker passes the range around
    its clock); None accepts any date (loading archived windows, tests)."""
    if len(payload) > max_bytes:
        reason = f"{len(payload)} bytes, more than the {max_bytes} an aggregate may have"
        return DeadLetter(topic, "oversized", reason, len(payload), None)
    try:
        window = check_aggregate(topic, payload)
    except WrongStore as error:
        return DeadLetter(topic, "wrong_store", short_reason(str(error)), len(payload), payload)
    except ContractError as error:
        return DeadLetter(topic, "invalid", short_reason(str(error)), len(payload), payload)
    except Exception as error:  # a check that chokes on a message is a reason, not a crash
        log.exception("Checking a message on %s failed; dead-lettering it.", topic)
        reason = short_reason(f"{type(error).__name__}: {error}")
        return DeadLetter(topic, "invalid", reason, len(payload), payload)
    refusal = accepted.refusal(window.window_start) if accepted is not None else None
    if refusal is not None:
        return DeadLetter(topic, "out_of_range", refusal, len(payload), payload)
    beyond = out_of_bounds(json.loads(window.text))
    if beyond is not None:
        return DeadLetter(topic, "invalid", short_reason(beyond), len(payload), payload)
    if window.timezone is not None and not is_known_zone(window.timezone):
        reason = (f"time zone {short_reason(window.timezone, 64)!r} is not in this worker's "
                  "time zone database (update tzdata and send it again)")
        return DeadLetter(topic, "invalid", reason, len(payload), payload)
    return WindowRow(
        topic,
        window.store,
        window.id,
        window.window_start,
        window.window_s,
        window.k,
        window.schema_version,
        window.text,
        hashlib.sha256(payload).digest(),
        window.timezone,
    )


def is_known_zone(name: str) -> bool:
    """Whether ``name`` is an IANA time zone of this worker's database (the box checked it
    against its own; a zone newer than ours is refused here with a reason, not guessed)."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return False
    return True


@dataclass
class WriteCounts:
    stored: int = 0
    duplicates: int = 0
    dead_letters: int = 0
    by_category: dict[str, int] = field(default_factory=dict)

    def add(self, other: WriteCounts) -> None:
        self.stored += other.stored
        self.duplicates += other.duplicates
        self.dead_letters += other.dead_letters
        for category, count in other.by_category.items():
            self.by_category[category] = self.by_category.get(category, 0) + count


_INSERT_WINDOWS = """
INSERT INTO windows (store, window_id, window_start, window_s, k, schema_version, payload,
                     payload_sha256, timezone, worker)
SELECT u.store, u.window_id, to_timestamp(u.start), u.window_s, u.k, u.version, u.payload::jsonb,
       u.sha, u.timezone, %s
FROM unnest(%s::text[], %s::text[], %s::float8[], %s::int[], %s::int[], %s::text[], %s::text[],
            %s::bytea[], %s::text[])
     AS u(store, window_id, start, window_s, k, version, payload, sha, timezone)
ORDER BY u.store, u.window_id
ON CONFLICT (store, window_id, window_start) DO NOTHING
RETURNING store, window_id
"""
_COUNT_DUPLICATE = """
UPDATE windows SET duplicates = duplicates + 1
WHERE store = %s AND window_id = %s AND window_start = to_timestamp(%s) AND payload_sha256 = %s
RETURNING 1
"""
_INSERT_DEAD_LETTER = """
INSERT INTO dead_letters (topic, category, reason, bytes, payload, worker)
VALUES (%s, %s, %s, %s, %s, %s)
"""


class CentralStore:
    """A pool of connections to the central database, written by one worker.

    Args:
        dsn: libpq connection string (``host=... dbname=... user=...`` or a URI).
        worker: recorded with every row this worker commits.
        timeout_s: how long to wait for a connection before a write fails.
    """

    def __init__(self, dsn: str, *, worker: str, timeout_s: float = 5.0) -> None:
        self.worker = worker
        self.timeout_s = timeout_s
        self.pool = ConnectionPool(
            dsn,
            min_size=1,
            max_size=2,
            open=False,
            kwargs={"autocommit": True, "connect_timeout": max(1, int(timeout_s))},
            check=ConnectionPool.check_connection,
            name=f"central-{worker}",
        )
        self._days: set[date] = set()
        self._migrated = False

    def open(self) -> None:
        self.pool.open(wait=False)

    def close(self) -> None:
        self.pool.close()

    def ready(self) -> bool:
        """Whether the database answers now (and its schema is up to date)."""
        try:
            with self.pool.connection(timeout=self.timeout_s) as conn:
                if not self._migrated:
                    applied = migrate(conn)
                    if applied:
                        log.info("Central database: applied migrations %s.", applied)
                    self._migrated = True
                conn.execute("SELECT 1")
            return True
        except (psycopg.Error, PoolTimeout) as error:
            log.warning("Central database not available: %s", short_reason(str(error)))
            return False

    def write(self, items: Sequence[Screened]) -> WriteCounts:
        """Commit ``items`` in one transaction.

        Raises:
            CentralStoreError: nothing was committed (database down, connection lost).
        """
        windows = [item for item in items if isinstance(item, WindowRow)]
        dead = [item for item in items if isinstance(item, DeadLetter)]
        try:
            with self.pool.connection(timeout=self.timeout_s) as conn:
                for day in sorted({day_of(w.window_start) for w in windows} - self._days):
                    if ensure_partition(conn, day):
                        log.info("Central database: created the partition of %s.", day)
                    self._days.add(day)
                with conn.transaction():
                    counts = self._write(conn, windows, dead)
        except (psycopg.Error, PoolTimeout) as error:
            self._days.clear()  # a partition may have been dropped meanwhile
            raise CentralStoreError(
                f"cannot write to the central database: {short_reason(str(error))}"
            ) from error
        return counts

    def _write(
        self, conn: psycopg.Connection, windows: list[WindowRow], dead: list[DeadLetter]
    ) -> WriteCounts:
        counts = WriteCounts()
        if windows:
            stored, taken = self._insert(conn, windows, dead)
            counts.stored = len(stored)
            for index in taken:
                w = windows[index]
                if stored.get(key_of(w)) == index:
                    continue  # stored by this batch
                # stored before, or an earlier copy of this batch was (a redelivery)
                same = conn.execute(
                    _COUNT_DUPLICATE, [w.store, w.window_id, w.window_start, w.sha256]
                ).fetchone()
                if same:
                    counts.duplicates += 1
                else:
                    dead.append(
                        DeadLetter(
                            w.topic,
                            "conflict",
                            f"window {w.window_id} is already stored with other content; "
                            "the first one is kept",
                            len(w.text.encode()),
                            w.text.encode(),
                        )
                    )
            record_zones(conn, [(w.store, w.timezone, w.window_start)
                                for w in (windows[i] for i in sorted(stored.values()))
                                if w.timezone is not None])
        if dead:
            with conn.cursor() as cursor:
                cursor.executemany(
                    _INSERT_DEAD_LETTER,
                    [(d.topic, d.category, d.reason, d.size, d.payload, self.worker) for d in dead],
                )
            counts.dead_letters = len(dead)
            for d in dead:
                counts.by_category[d.category] = counts.by_category.get(d.category, 0) + 1
        return counts

    def _insert(
        self, conn: psycopg.Connection, windows: list[WindowRow], dead: list[DeadLetter]
    ) -> tuple[dict[WindowKey, int], list[int]]:
        """Insert ``windows`` (inside the batch's transaction): the key of each window
        stored now with the index in ``windows`` of the copy stored, and the indexes of
        the windows the database took (stored now, or their key stored before or by an
        earlier copy: a duplicate or a conflict).

        Only the first copy of each key in the batch is inserted: two copies of one key
        in one ``INSERT ... ON CONFLICT DO NOTHING`` would leave the database to pick
        which one it keeps (the order of its sort), and a later copy with other bytes
        would then be stored while the first was reported stored and the conflict went
        unrecorded.

        All in one statement; if the database refuses a row of it (a value it cannot
        store: an integer out of its range, a time zone it does not know), each row
        again in a savepoint of its own, in the batch's order, and those it refuses go to
        ``dead`` as ``refused`` (the next copy of a refused key, if any, is tried in
        its turn): one bad message neither blocks the batch nor, redelivered after a
        failed commit, every batch after it.
        """
        first: dict[WindowKey, int] = {}
        for index, w in enumerate(windows):
            first.setdefault(key_of(w), index)
        try:
            with conn.transaction():  # a savepoint: a refusal undoes this statement only
                inserted = self._insert_rows(conn, [windows[i] for i in first.values()])
                return {key: first[key] for key in inserted}, list(range(len(windows)))
        except psycopg.Error as error:
            if not refused_row(error):
                raise
            log.warning("The database refused a window of a batch of %d (%s); storing them "
                        "one by one.", len(windows), short_reason(str(error), 120))
        stored: dict[WindowKey, int] = {}
        held: set[WindowKey] = set()  # keys the database holds (stored now or before)
        taken = []
        for index, w in enumerate(windows):
            key = key_of(w)
            if key not in held:
                try:
                    with conn.transaction():
                        if self._insert_rows(conn, [w]):
                            stored[key] = index
                except psycopg.Error as error:
                    if not refused_row(error):
                        raise
                    text = error.diag.message_primary or str(error)
                    dead.append(DeadLetter(
                        w.topic, "refused",
                        short_reason(f"the database refused window {w.window_id}: {text}"),
                        len(w.text.encode()), w.text.encode(),
                    ))
                    continue
                held.add(key)
            taken.append(index)
        return stored, taken

    def _insert_rows(self, conn: psycopg.Connection, windows: list[WindowRow]) -> set[WindowKey]:
        columns = list(
            zip(
                *(
                    (
                        w.store,
                        w.window_id,
                        w.window_start,
                        w.window_s,
                        w.k,
                        w.schema_version,
                        w.text,
                        w.sha256,
                        w.timezone,
                    )
                    for w in windows
                ),
                strict=True,
            )
        )
        return {
            (row[0], row[1])
            for row in conn.execute(
                _INSERT_WINDOWS, [self.worker, *(list(column) for column in columns)]
            ).fetchall()
        }


def refused_row(error: psycopg.Error) -> bool:
    """Whether ``error`` is the database refusing a value of the row(s) written (a data
    exception, or a constraint of the schema), not a failure of the database itself
    (connection, resources, a missing partition: retried, nothing acknowledged)."""
    if isinstance(error, psycopg.errors.DataError):
        return True
    # A missing partition is an integrity error (23514) too, but names no constraint.
    return isinstance(error, psycopg.errors.IntegrityError) and bool(error.diag.constraint_name)
