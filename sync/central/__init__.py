"""The central side of the sync contract: ingest every store's aggregates into PostgreSQL.

``edge sync ingest`` runs :class:`sync.central.ingest.IngestWorker`; several workers
share one MQTT v5 shared subscription and write to one database
(:mod:`sync.central.store`, schema and roll-ups in :mod:`sync.central.schema`).
Documented in docs/central.md. Nothing under ``edge/`` imports this package: only
the CLI, which assembles services, sees both.
"""
