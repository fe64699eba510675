"""The box's local state: one SQLite database in WAL mode, versioned by migrations."""

from edge.storage.database import open_database

__all__ = ["open_database"]
