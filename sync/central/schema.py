"""The central PostgreSQL schema: versioned migrations, day partitions, roll-up views.

Each migration runs in its own transaction under an advisory lock and is recorded in
``central_schema_migrations``, so workers starting together apply it once and a
failed migration leaves nothing behind. Never edit an applied migration: append one.

``windows`` is partitioned by UTC day of ``window_start``; a day's partition is
created by the first worker that stores a window of that day
(:func:`ensure_partition`). The roll-ups are views chained on one another
(windows → store-day → region-day); every sum is a sum of *published* cells only
(SQL aggregates skip the nulls that stand for suppressed cells), so a roll-up cell is
null when no window published that cell, and otherwise a sum of counts that are each
at least k: nothing below k can appear in, or be worked out from, a roll-up that was
not already in the published windows. The views' SQL lives in
:mod:`sync.central.rollups`: migration 2 creates them; migration 3 adds buying units,
segment units, transactions and conversion, and queue counts, and says which published
figures cannot be combined; migration 4 gives the region views the store views' columns;
migration 5 (:mod:`sync.central.local_day`) stores each window's time zone and moves the
roll-ups to each store's local day.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import psycopg
from psycopg import sql

from sync.central.local_day import LOCAL_DAY_SQL
from sync.central.rollups import REGION_COLUMNS_SQL, ROLLUPS_SQL, STORE_TRUTHS_SQL

MIGRATIONS_LOCK = 7_206_001  # pg_advisory_xact_lock keys of this schema
PARTITION_LOCK = 7_206_002


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "windows, dead letters, store regions",
        """
        CREATE TABLE windows (
            store text NOT NULL,
            window_id text NOT NULL,
            window_start timestamptz NOT NULL,
            window_s integer NOT NULL,
            k integer NOT NULL,
            schema_version text NOT NULL,
            payload jsonb NOT NULL,
            payload_sha256 bytea NOT NULL,
            worker text NOT NULL,
            received_at timestamptz NOT NULL DEFAULT now(),
            duplicates integer NOT NULL DEFAULT 0,
            PRIMARY KEY (store, window_id, window_start)
        ) PARTITION BY RANGE (window_start);
        CREATE TABLE dead_letters (
            id bigserial PRIMARY KEY,
            topic text NOT NULL,
            category text NOT NULL,
            reason text NOT NULL,
            bytes integer NOT NULL,
            payload bytea,
            worker text NOT NULL,
            received_at timestamptz NOT NULL DEFAULT now()
        );
        CREATE INDEX dead_letters_received ON dead_letters (received_at);
        CREATE TABLE store_regions (
            store text PRIMARY KEY,
            region text NOT NULL
        );
        """,
    ),
    Migration(
        2,
        "roll-ups: store-day and region-day footfall, dwell, trait and segment mix",
        ROLLUPS_SQL,
    ),
    Migration(
        3,
        "roll-ups: buying units, segment units, transactions and conversion, queue counts",
        STORE_TRUTHS_SQL,
    ),
    Migration(
        4,
        "roll-ups: the region views get the store views' columns (windows, occupancy max)",
        REGION_COLUMNS_SQL,
    ),
    Migration(
        5,
        "roll-ups by the store's local day: windows.timezone, store_timezones",
        LOCAL_DAY_SQL,
    ),
)


def migrate(conn: psycopg.Connection, migrations: tuple[Migration, ...] = MIGRATIONS) -> list[int]:
    """Apply the migrations ``conn``'s database lacks, each in its own transaction;
    returns the versions applied now. Safe to run from several workers at once."""
    applied = []
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", [MIGRATIONS_LOCK])
        conn.execute(
            "CREATE TABLE IF NOT EXISTS central_schema_migrations ("
            "version integer PRIMARY KEY, name text NOT NULL, "
            "applied_at timestamptz NOT NULL DEFAULT now())"
        )
    for migration in migrations:
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", [MIGRATIONS_LOCK])
            done = conn.execute(
                "SELECT 1 FROM central_schema_migrations WHERE version = %s", [migration.version]
            ).fetchone()
            if done:
                continue
            conn.execute(migration.sql)
            conn.execute(
                "INSERT INTO central_schema_migrations (version, name) VALUES (%s, %s)",
                [migration.version, migration.name],
            )
            applied.append(migration.version)
    return applied


def partition_name(day: date) -> str:
    return f"windows_{day:%Y%m%d}"


def day_of(window_start: float) -> date:
    return datetime.fromtimestamp(window_start, UTC).date()


def ensure_partition(conn: psycopg.Connection, day: date) -> bool:
    """Create the partition of ``windows`` for UTC ``day`` unless it exists (in its own
    transaction, under an advisory lock, so two workers never race to create it);
    returns whether it was created."""
    name = partition_name(day)
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", [PARTITION_LOCK])
        row = conn.execute("SELECT to_regclass(%s)", [name]).fetchone()
        if row is not None and row[0] is not None:
            return False
        conn.execute(
            sql.SQL("CREATE TABLE {} PARTITION OF windows FOR VALUES FROM ({}) TO ({})").format(
                sql.Identifier(name),
                sql.Literal(start.isoformat()),
                sql.Literal((start + timedelta(days=1)).isoformat()),
            )
        )
    return True
