"""Every table of the box's database: the one list of migration sets, and the
``open_database`` that applies them.

Storage (:mod:`edge.storage.database`) opens a file and applies the sets it is given;
it imports none of the modules that own tables. This module, in the composition layer,
is the one place that knows them all, ``sync`` included. Services, commands and tests
open the box's database through :func:`open_database` here.

To add a table: give its owning module a ``Migrations`` set (or a new migration in its
existing set) and, for a new set, append it to :data:`MIGRATION_SETS`.
"""

from __future__ import annotations

from pathlib import Path

import sqlite_utils
from sqlite_utils.migrations import Migrations

from edge.fusion import store as fusion_store
from edge.pos import store as pos_store
from edge.privacy import overrides as privacy_overrides
from edge.privacy import store as privacy_store
from edge.storage import database, health, trajectories
from edge.visits import store as visits_store
from edge.wifi import store as wifi_store
from sync import outbox as sync_outbox

# Applied in this order; each set records its own progress, so a set added later is
# applied to existing databases at their next open.
MIGRATION_SETS: tuple[Migrations, ...] = (
    trajectories.MIGRATIONS,
    visits_store.MIGRATIONS,
    wifi_store.MIGRATIONS,
    health.MIGRATIONS,
    sync_outbox.MIGRATIONS,
    privacy_store.MIGRATIONS,
    fusion_store.MIGRATIONS,
    privacy_overrides.MIGRATIONS,
    pos_store.MIGRATIONS,
)


def open_database(path: str | Path | None = None, *, migrate: bool = True) -> sqlite_utils.Database:
    """Open (creating if needed) the box's database at ``path`` with every table.

    ``":memory:"`` gives an in-memory database (tests); None the state directory's.

    Raises:
        StorageError: the file cannot be created, opened or written.
    """
    return database.open_database(path, migrations=MIGRATION_SETS, migrate=migrate)
