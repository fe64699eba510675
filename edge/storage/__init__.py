"""The box's local state: one SQLite database in WAL mode, versioned by migrations.

:func:`edge.storage.database.open_database` applies the migration sets it is given;
the list of every set lives in the composition layer (:mod:`edge.runtime.schema`).
"""
