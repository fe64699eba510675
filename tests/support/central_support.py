"""Helpers for the central ingestion tests: a throw-away PostgreSQL database on the local
server, and ``edge sync ingest`` workers as real processes."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo

from sync.central.store import CentralStore
from tests.conftest import REPO
from tests.support.waiting import terminate, wait_for

# The server the tests use (scripts/test starts the local cluster if it is down).
ADMIN_DSN = os.environ.get(
    "EDGE_TEST_PG_DSN", "host=127.0.0.1 port=5432 user=postgres dbname=postgres"
)
GROUP = "central-test"


def admin() -> psycopg.Connection:
    try:
        return psycopg.connect(ADMIN_DSN, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as error:
        pytest.fail(
            f"PostgreSQL is not reachable at {ADMIN_DSN!r} ({error}); start it "
            "(scripts/test does) or set EDGE_TEST_PG_DSN"
        )


@pytest.fixture(name="central_db")
def central_db_fixture() -> Iterator[str]:
    """A database of this test's own (created empty, dropped after): its DSN."""
    name = f"central_test_{uuid.uuid4().hex[:12]}"
    with admin() as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield make_conninfo(ADMIN_DSN, dbname=name)
    finally:
        with admin() as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


@contextlib.contextmanager
def open_central_store(dsn: str, worker: str) -> Iterator[CentralStore]:
    """The central store on ``dsn``, migrated and ready, as an ingest worker has it;
    closed after."""
    store = CentralStore(dsn, worker=worker)
    store.open()
    assert store.ready()
    try:
        yield store
    finally:
        store.close()


def set_connections_allowed(dsn: str, allowed: bool) -> None:
    """Take the database down for its clients (no new connection, every open one cut),
    or bring it back: an outage of the central store, without touching the server
    other databases live on."""
    name = psycopg.conninfo.conninfo_to_dict(dsn)["dbname"]
    with admin() as conn:
        conn.execute(
            sql.SQL("ALTER DATABASE {} WITH ALLOW_CONNECTIONS {}").format(
                sql.Identifier(str(name)), sql.SQL("true" if allowed else "false")
            )
        )
        if not allowed:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                [name],
            )


def query(dsn: str, text: str, params: list | None = None) -> list[tuple]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        return conn.execute(text, params).fetchall()


def window_count(dsn: str) -> int:
    try:
        return int(query(dsn, "SELECT count(*) FROM windows")[0][0])
    except psycopg.Error:  # not migrated yet
        return 0


class Worker:
    """One ``edge sync ingest`` process (its log in ``folder/<client id>.log``)."""

    def __init__(self, dsn: str, port: int, client_id: str, folder: Path, *extra: str) -> None:
        self.args = [
            sys.executable,
            "-m",
            "edge",
            "sync",
            "ingest",
            "--dsn",
            dsn,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--group",
            GROUP,
            "--client-id",
            client_id,
            *extra,
        ]
        self.client_id = client_id
        self.log = folder / f"{client_id}.log"
        self.process: subprocess.Popen | None = None

    def start(self) -> Worker:
        stream = self.log.open("a")
        self.process = subprocess.Popen(
            self.args,
            cwd=REPO,
            stdout=stream,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        stream.close()
        return self

    def log_text(self) -> str:
        return self.log.read_text() if self.log.exists() else ""

    def wait_subscribed(self, times: int = 1, timeout_s: float = 30) -> None:
        """Until the worker's log says it subscribed ``times`` times (restarts append)."""
        wait_for(
            lambda: self.log_text().count("MQTT: subscribed") >= times,
            timeout_s,
            f"{self.client_id} to subscribe",
        )

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> int:
        """SIGTERM and wait: the exit code."""
        return 0 if self.process is None else terminate(self.process, 20)
