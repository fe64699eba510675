"""Settings the central platform overrides by downlink, and the k in force.

The ``sync_overrides`` table holds one row per key (JSON value), so every service
reads the same values after a restart. The sync service writes it (``sync.settings``
validates and applies a downlink) and reads k and the window length from it; the
services' privacy audit and the status page read the k in force from here too: one
query for one figure, wherever it is shown.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

import sqlite_utils
from sqlite_utils.migrations import Migrations

from edge.config import SiteConfig

MIGRATIONS = Migrations("edge.overrides")

K_KEY, WINDOW_KEY, SEGMENT_SPEC_KEY = "min_publishable_count", "window_s", "segment_spec"
K_FLOOR = 2  # k is never below this, whatever a row says (the table is local, but be sure)

# Both have ``execute``: the services hold a sqlite_utils database, the status page a
# plain read-only connection.
Connection = sqlite_utils.Database | sqlite3.Connection


@MIGRATIONS()
def m001_sync_overrides(db: sqlite_utils.Database) -> None:
    # Boxes installed before this set existed got the table from the ``edge.sync`` set.
    db.table("sync_overrides").create(
        {"key": str, "value": str, "updated_at": float, "nonce": str}, pk="key",
        if_not_exists=True,
    )


def read_overrides(db: Connection) -> dict[str, Any]:
    """Every override set by downlink, key -> value."""
    return {
        key: json.loads(value) for key, value in db.execute("select key, value from sync_overrides")
    }


def last_update(db: Connection) -> float | None:
    """When a downlink last changed an override (None: never)."""
    value = db.execute("select max(updated_at) from sync_overrides").fetchone()[0]
    return None if value is None else float(value)


def effective_k(db: Connection, site: SiteConfig) -> int:
    """The k in force: a downlinked value where it is above the site config's; the site's
    own k (what the store committed to) is the floor no downlink lowers."""
    return k_of(read_overrides(db), site)


def k_of(overrides: dict[str, Any], site: SiteConfig) -> int:
    """k from overrides already read (see :func:`read_overrides`)."""
    return max(K_FLOOR, site.privacy.min_publishable_count, int(overrides.get(K_KEY, K_FLOOR)))


def override_rows(db: sqlite_utils.Database, keys: list[str]) -> dict[str, tuple[Any, ...]]:
    """The stored rows of ``keys``: key -> (value, updated_at, nonce)."""
    rows = db.execute(
        f"select key, value, updated_at, nonce from sync_overrides "
        f"where key in ({', '.join('?' * len(keys))})",
        keys,
    ).fetchall()
    return {row[0]: tuple(row[1:]) for row in rows}


def put_override(
    db: sqlite_utils.Database, key: str, value: str, updated_at: float, nonce: str
) -> None:
    """Set ``key`` to ``value`` (JSON text), in the caller's transaction."""
    db.execute(
        "insert into sync_overrides (key, value, updated_at, nonce) values (?, ?, ?, ?) "
        "on conflict(key) do update set value = excluded.value, "
        "updated_at = excluded.updated_at, nonce = excluded.nonce",
        [key, value, updated_at, nonce],
    )


def delete_override(db: sqlite_utils.Database, key: str) -> None:
    db.execute("delete from sync_overrides where key = ?", [key])
