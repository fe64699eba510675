"""Open the local SQLite database, in WAL mode, with every schema migration applied.

Each subsystem owns its tables and declares them as a ``sqlite_utils``
``Migrations`` set (one transaction per migration). This module knows none of them:
the caller hands in the sets to apply, and the composition layer lists them all once
(:data:`edge.runtime.schema.MIGRATION_SETS`, whose ``open_database`` is the one
services, commands and tests use). Several processes (camera workers, sync, web)
share the file: WAL lets readers run while one writer writes, and a busy timeout
makes writers wait their turn instead of failing.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import sqlite_utils
from sqlite_utils.migrations import Migrations

from edge.errors import StorageError
from edge.paths import state_dir

BUSY_TIMEOUT_MS = 10_000


class _ImmediateConnection(sqlite3.Connection):
    """A connection whose transactions take the write lock when they begin.

    ``db.atomic()`` opens a plain (deferred) ``BEGIN``. In WAL mode a deferred
    transaction that reads first (sqlite-utils reads the table's schema before an
    insert) and then writes fails at once with "database is locked" if another process
    committed in between: the busy timeout cannot help, the snapshot is stale. With
    several camera workers, the sync and the web writing the same file, that lost
    positions and health reports and stopped workers at start. ``BEGIN IMMEDIATE``
    waits for the lock (busy timeout) instead, and then cannot fail that way.

    This is the one way the project takes the write lock: every ``BEGIN`` on a
    database from :func:`open_database` (``db.atomic()``, sqlite-utils' own, the
    migrations') is immediate; no module writes ``BEGIN IMMEDIATE`` itself.
    """

    def execute(self, sql: str, *args: Any, **kwargs: Any) -> sqlite3.Cursor:
        if sql.strip().rstrip(";").upper() == "BEGIN":
            sql = "BEGIN IMMEDIATE"
        return super().execute(sql, *args, **kwargs)


def where(*conditions: tuple[str, object | None]) -> tuple[str | None, list[object]]:
    """A ``where`` clause (without the keyword; None for none) and its parameters from
    ``(condition, value)`` pairs such as ``("t >= ?", since)``; a pair whose value is
    None is left out (an optional filter not given)."""
    given = [(condition, value) for condition, value in conditions if value is not None]
    return " and ".join(c for c, _ in given) or None, [value for _, value in given]


def default_db_path() -> Path:
    return state_dir() / "edge.db"


# In WAL mode committed pages wait in "-wal" until a checkpoint copies them into the
# main file; "-shm" is the WAL's index. Without them a busy database looks empty.
SIDE_FILES = ("-wal", "-shm")


def database_bytes(path: str | Path) -> int | None:
    """Bytes the database at ``path`` takes on disk, with its ``-wal`` and ``-shm``
    files; None if there is no such database."""
    path = Path(path)
    try:
        total = path.stat().st_size
    except OSError:
        return None
    for suffix in SIDE_FILES:
        with contextlib.suppress(OSError):  # no WAL yet, or checkpointed and removed
            total += path.with_name(path.name + suffix).stat().st_size
    return total


def storage_error(error: sqlite3.Error, path: str | Path | None) -> StorageError:
    """A raw sqlite error met while using the database at ``path`` as one plain sentence
    that says what to do: the CLI translates what no command caught with this."""
    text = str(error)
    where = f"the database {path}" if path is not None else "the database"
    if "full" in text:  # SQLITE_FULL: "database or disk is full"
        return StorageError(f"{where} cannot be written: the disk is full ({text}); free "
                            "space, e.g. `edge purge`, or move the database to a larger disk")
    if "malformed" in text or "not a database" in text:  # SQLITE_CORRUPT, SQLITE_NOTADB
        return StorageError(f"{where} is corrupt ({text}); move it aside (the services start "
                            "a new one) and restore a backup if its data is needed")
    return StorageError(f"{where} failed: {text}")


def open_database(
    path: str | Path | None = None,
    *,
    migrations: Sequence[Migrations],
    migrate: bool = True,
) -> sqlite_utils.Database:
    """Open (creating if needed) the database at ``path`` and bring its schema up to date.

    Args:
        path: the file; ``":memory:"`` gives an in-memory database (tests); None the
            state directory's.
        migrations: the sets to apply, in order (required: storage does not know its
            users; :func:`edge.runtime.schema.open_database` passes them all).
        migrate: False opens the file as it is (no migration, no write probe).

    Raises:
        StorageError: the file cannot be created, opened or written.
    """
    if path is None:
        path = default_db_path()
    try:
        if str(path) == ":memory:":
            db = sqlite_utils.Database(memory=True)
        else:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(
                str(path),
                timeout=BUSY_TIMEOUT_MS / 1000,
                isolation_level=None,
                factory=_ImmediateConnection,
            )
            db = sqlite_utils.Database(conn)
            _use_wal(db)
        db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        db.execute("PRAGMA foreign_keys=ON")
        db.execute("PRAGMA synchronous=NORMAL")
        if migrate:
            _migrate(db, migrations)
            if str(path) != ":memory:":
                _probe_write(db)
    except (sqlite3.Error, OSError) as error:
        hint = _access_hint(path)
        raise StorageError(f"cannot open the database {path}: {error}{hint}") from None
    return db


def _use_wal(db: sqlite_utils.Database) -> None:
    """Put the file in WAL mode (a no-op once it is).

    At first boot every service opens the new file at once, still in rollback-journal
    mode. Switching the mode needs the file alone, and when two connections both hold
    a shared lock and both want it, SQLite answers "database is locked" at once to one
    of them instead of waiting (the busy handler would deadlock): a service died at
    start about once in twenty boots. So a busy answer is tried again, backing off,
    until the busy timeout.
    """
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    pause = 0.005
    while True:
        try:
            db.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as error:
            busy = getattr(error, "sqlite_errorcode", None) == sqlite3.SQLITE_BUSY
            if not busy or time.monotonic() + pause > deadline:
                raise
        time.sleep(pause)
        pause = min(2 * pause, 0.1)


def _migrate(db: sqlite_utils.Database, sets: Sequence[Migrations]) -> None:
    """Apply pending migrations, one process at a time.

    Every service opens the database when the box boots: without one write lock over
    the whole check-and-apply, two processes both saw a migration pending and one
    failed ("database is locked" or "table already exists"), exiting and restarting.
    The transaction (``BEGIN IMMEDIATE``, :class:`_ImmediateConnection`) waits (busy
    timeout) for the other process's migrations; the migrations' own transactions nest
    inside as savepoints.
    """
    if not any(migrations.pending(db) for migrations in sets):
        return  # the usual start: nothing to do, no write lock taken
    with db.atomic():
        for migrations in sets:
            migrations.apply(db)


def _probe_write(db: sqlite_utils.Database) -> None:
    """Fail now, not at the first write, when the file is read-only: a service must not
    run for hours logging that it cannot store anything. Rewrites the header, undone."""
    version = db.execute("pragma user_version").fetchone()[0]
    db.execute("BEGIN")  # immediate (_ImmediateConnection): takes the write lock now
    try:
        db.execute(f"pragma user_version = {int(version)}")
    finally:
        db.execute("rollback")


def _access_hint(path: str | Path) -> str:
    """Say which of the file or its folder this process may not write (SQLite says only
    "unable to open database file" or "attempt to write a readonly database")."""
    if str(path) == ":memory:":
        return ""
    for target in (Path(path), Path(path).parent):
        if target.exists() and not os.access(target, os.W_OK):
            return (
                f"; {target} is read-only for this process (uid {os.getuid()}): give the "
                "service's user write access to it, or set storage.db_path to a writable folder"
            )
    return ""
