"""Read-only access to the local database for the status page.

The page never writes the database. Each request opens its own read-only
connection (cheap with SQLite, and safe across the server's worker threads); in
WAL mode it reads a consistent snapshot while camera, Wi-Fi and sync services
write. Problems become typed errors the app turns into clear answers.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from edge.errors import StorageError
from edge.storage.database import database_bytes

READ_BUSY_TIMEOUT_S = 3.0


class DatabaseMissing(StorageError):
    """The database file does not exist yet (nothing has been recorded)."""


class DatabaseBusy(StorageError):
    """Another process holds the database for longer than a reader will wait."""


class DatabaseUnreadable(StorageError):
    """The file is not a readable edge database (damaged, foreign, no permission)."""


class ReadOnlyDatabase:
    """Hands out read-only connections to the database at ``path``."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    @contextmanager
    def connect(self) -> Iterator[sqlite3.Connection]:
        if not self.path.is_file():
            raise DatabaseMissing(f"the database {self.path} does not exist yet")
        try:
            conn = sqlite3.connect(
                f"{self.path.resolve().as_uri()}?mode=ro", uri=True,
                timeout=READ_BUSY_TIMEOUT_S, check_same_thread=False,
            )
        except sqlite3.Error as error:
            raise DatabaseUnreadable(f"cannot open the database {self.path}: {error}") from None
        try:
            conn.execute("PRAGMA query_only=ON")
            # One snapshot for every query of the request: figures agree with each other.
            conn.execute("BEGIN")
            yield conn
        except sqlite3.OperationalError as error:
            raise translate(error, self.path) from None
        except sqlite3.DatabaseError as error:
            raise DatabaseUnreadable(
                f"the database {self.path} cannot be read: {error}"
            ) from None
        finally:
            conn.close()

    def size_bytes(self) -> int | None:
        return database_bytes(self.path)


def translate(error: sqlite3.OperationalError, path: Path) -> StorageError:
    text = str(error).lower()
    if "locked" in text or "busy" in text:
        return DatabaseBusy(f"the database {path} is busy: another program is writing to it")
    return DatabaseUnreadable(f"the database {path} cannot be read: {error}")


def table_names(conn: sqlite3.Connection) -> set[str]:
    return {row[0] for row in conn.execute("select name from sqlite_master where type='table'")}


def has_columns(conn: sqlite3.Connection, table: str, columns: set[str]) -> bool:
    found = {row[1] for row in conn.execute(f"pragma table_info({table})")}
    return columns <= found
