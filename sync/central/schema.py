"""The central PostgreSQL schema: versioned migrations, day partitions, roll-up views.

Each migration runs in its own transaction under an advisory lock and is recorded in
``central_schema_migrations``, so workers starting together apply it once and a
failed migration leaves nothing behind. Never edit an applied migration: append one.

``windows`` is partitioned by day of ``window_start`` (UTC); a day's partition is
created by the first worker that stores a window of that day
(:func:`ensure_partition`). The roll-ups are views chained on one another
(windows → store-day → region-day); every sum is a sum of *published* cells only
(SQL aggregates skip the nulls that stand for suppressed cells), so a roll-up cell is
null when no window published that cell, and otherwise a sum of counts that are each
at least k: nothing below k can appear in, or be worked out from, a roll-up that was
not already in the published windows. Migration 3 (:mod:`sync.central.rollups`) adds
buying units, segment units, transactions and conversion, and queue counts to the
roll-ups, and says which published figures cannot be combined.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import psycopg
from psycopg import sql

from sync.central.rollups import STORE_TRUTHS_SQL

MIGRATIONS_LOCK = 7_206_001  # pg_advisory_xact_lock keys of this schema
PARTITION_LOCK = 7_206_002


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str


def _window_sum(path: str) -> str:
    return f"sum((w.payload #>> '{{{path}}}')::int)"


_WEIGHTED_DURATION = (
    "sum((w.payload #>> '{visits,count}')::int"
    " * (w.payload #>> '{visits,mean_duration_s}')::float8)"
)

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
        f"""
        CREATE VIEW rollup_store_day AS
        SELECT w.store,
               (w.window_start AT TIME ZONE 'UTC')::date AS day,
               count(*) AS windows,
               min(w.k) AS k,
               {_window_sum("footfall,in")} AS footfall_in,
               {_window_sum("footfall,out")} AS footfall_out,
               count(w.payload #>> '{{footfall,in}}') AS footfall_in_windows,
               {_window_sum("visits,count")} AS visits,
               count(w.payload #>> '{{visits,count}}') AS visits_windows,
               {_window_sum("visits,checkout")} AS checkout,
               {_WEIGHTED_DURATION} / nullif({_window_sum("visits,count")}
                   FILTER (WHERE w.payload #>> '{{visits,mean_duration_s}}' IS NOT NULL), 0)
                   AS mean_duration_s,
               {_window_sum("visits,count")}
                   FILTER (WHERE w.payload #>> '{{visits,mean_duration_s}}' IS NOT NULL)
                   AS duration_visits,
               {_window_sum("wifi,passers_by")} AS passers_by,
               max((w.payload #>> '{{occupancy,max}}')::int) AS occupancy_max
        FROM windows w
        GROUP BY 1, 2;

        CREATE VIEW rollup_store_day_dwell AS
        SELECT w.store,
               (w.window_start AT TIME ZONE 'UTC')::date AS day,
               d.cell ->> 'zone' AS zone,
               count(*) AS windows,
               sum((d.cell ->> 'visits')::int) AS visits,
               sum((d.cell ->> 'visits')::int * (d.cell ->> 'mean_s')::float8)
                   / nullif(sum((d.cell ->> 'visits')::int)
                            FILTER (WHERE d.cell ->> 'mean_s' IS NOT NULL), 0) AS mean_s,
               sum((d.cell ->> 'visits')::int)
                   FILTER (WHERE d.cell ->> 'mean_s' IS NOT NULL) AS mean_visits
        FROM windows w
        CROSS JOIN LATERAL jsonb_array_elements(w.payload -> 'dwell') AS d(cell)
        WHERE d.cell ->> 'visits' IS NOT NULL
        GROUP BY 1, 2, 3;

        CREATE VIEW rollup_store_day_mix AS
        SELECT w.store,
               (w.window_start AT TIME ZONE 'UTC')::date AS day,
               m.kind,
               m.cell ->> 'name' AS name,
               count(*) AS windows,
               sum((m.cell ->> 'scored')::int) AS scored,
               sum((m.cell ->> 'visits')::int) AS visits,
               sum((m.cell ->> 'scored')::int)
                   FILTER (WHERE m.cell ->> 'visits' IS NOT NULL) AS visits_of_scored,
               sum((m.cell ->> 'scored')::int * (m.cell ->> 'mean_probability')::float8)
                   / nullif(sum((m.cell ->> 'scored')::int)
                            FILTER (WHERE m.cell ->> 'mean_probability' IS NOT NULL), 0)
                   AS mean_probability,
               sum((m.cell ->> 'scored')::int)
                   FILTER (WHERE m.cell ->> 'mean_probability' IS NOT NULL) AS probability_scored
        FROM windows w
        CROSS JOIN LATERAL (
            SELECT 'trait' AS kind, t.cell FROM jsonb_array_elements(w.payload -> 'traits') t(cell)
            UNION ALL
            SELECT 'segment', s.cell FROM jsonb_array_elements(w.payload -> 'segments') s(cell)
        ) AS m
        WHERE m.cell ->> 'scored' IS NOT NULL
        GROUP BY 1, 2, 3, 4;

        CREATE VIEW rollup_region_day AS
        SELECT r.region, s.day,
               count(*) AS stores,
               sum(s.windows) AS windows,
               min(s.k) AS k,
               sum(s.footfall_in) AS footfall_in,
               sum(s.footfall_out) AS footfall_out,
               sum(s.visits) AS visits,
               sum(s.checkout) AS checkout,
               sum(s.mean_duration_s * s.duration_visits) / nullif(sum(s.duration_visits), 0)
                   AS mean_duration_s,
               sum(s.duration_visits) AS duration_visits,
               sum(s.passers_by) AS passers_by
        FROM rollup_store_day s JOIN store_regions r USING (store)
        GROUP BY 1, 2;

        CREATE VIEW rollup_region_day_dwell AS
        SELECT r.region, s.day, s.zone,
               count(*) AS stores,
               sum(s.visits) AS visits,
               sum(s.mean_s * s.mean_visits) / nullif(sum(s.mean_visits), 0) AS mean_s,
               sum(s.mean_visits) AS mean_visits
        FROM rollup_store_day_dwell s JOIN store_regions r USING (store)
        GROUP BY 1, 2, 3;

        CREATE VIEW rollup_region_day_mix AS
        SELECT r.region, s.day, s.kind, s.name,
               count(*) AS stores,
               sum(s.scored) AS scored,
               sum(s.visits) AS visits,
               sum(s.visits_of_scored) AS visits_of_scored,
               sum(s.mean_probability * s.probability_scored)
                   / nullif(sum(s.probability_scored), 0) AS mean_probability,
               sum(s.probability_scored) AS probability_scored
        FROM rollup_store_day_mix s JOIN store_regions r USING (store)
        GROUP BY 1, 2, 3, 4;
        """,
    ),
    Migration(
        3,
        "roll-ups: buying units, segment units, transactions and conversion, queue counts",
        STORE_TRUTHS_SQL,
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
