"""Central ingestion on real parts: mosquitto, PostgreSQL, ``edge sync ingest`` processes,
and a simulated fleet publishing windows built by the box's own aggregation code.

What is proved: every window is committed exactly once however the workers share,
die (SIGKILL) or lose their database; what fails the contract ends in the dead-letter
table with its reason and never stops the stream.
"""

from __future__ import annotations

import json
import threading

import psycopg
import pytest

from scripts.fleet_sim import DAY_START, Fleet, SimMessage, fleet_messages, store_ids
from sync import contract
from tests.support.central_support import (
    Worker,
    central_db_fixture,  # noqa: F401 (fixture)
    query,
    set_connections_allowed,
    window_count,
)
from tests.support.mqtt_broker import broker_fixture  # noqa: F401 (fixture)
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.system, pytest.mark.xdist_group("central")]


def stored(dsn: str) -> list[tuple[str, int]]:
    return query(dsn, "SELECT window_id, duplicates FROM windows ORDER BY window_id")


def assert_exactly_once(dsn: str, messages: list[SimMessage]) -> int:
    """Every window of ``messages`` stored once, nothing else; returns the duplicates
    absorbed (redeliveries of windows already committed)."""
    rows = stored(dsn)
    ids = [row[0] for row in rows]
    assert len(ids) == len(set(ids))  # the primary key says so too
    assert sorted(ids) == sorted(m.window_id for m in messages)
    assert query(dsn, "SELECT count(*) FROM dead_letters")[0][0] == 0
    return sum(row[1] for row in rows)


def test_two_workers_split_a_shared_subscription_and_commit_every_window_once(
    broker, central_db, tmp_path
):
    workers = [Worker(central_db, broker.port, f"ingest-{i}", tmp_path).start() for i in (1, 2)]
    try:
        for worker in workers:
            worker.wait_subscribed()
        messages = fleet_messages(6, 40)
        with Fleet("127.0.0.1", broker.port, store_ids(6)) as fleet:
            fleet.publish(messages)
        wait_for(lambda: window_count(central_db) >= len(messages), 60, "every window")
        per_worker = dict(query(central_db, "SELECT worker, count(*) FROM windows GROUP BY 1"))
    finally:
        codes = [worker.stop() for worker in workers]
    assert assert_exactly_once(central_db, messages) == 0
    assert set(per_worker) == {"ingest-1", "ingest-2"}, per_worker
    assert min(per_worker.values()) >= len(messages) // 4, per_worker  # round robin
    assert codes == [0, 0]
    for worker in workers:
        assert "dead-lettered" in worker.log_text()  # the summary line of a clean stop


def test_a_worker_killed_mid_stream_and_restarted_loses_and_duplicates_nothing(
    broker, central_db, tmp_path
):
    """SIGKILL while messages are received but not committed: they were never
    acknowledged, so the broker sends them again when the session resumes; windows
    committed but not yet acknowledged come back too and are absorbed as duplicates."""
    messages = fleet_messages(5, 80)
    # 2 x 10 messages per 0.2 s is slower than the fleet: messages queue up received but
    # not committed (a worker that acknowledged on receipt loses them here).
    slow = ("--batch", "10", "--delay", "0.2")
    workers = [
        Worker(central_db, broker.port, f"ingest-{i}", tmp_path, *slow).start() for i in (1, 2)
    ]
    publisher_error: list[BaseException] = []

    def publish() -> None:
        try:
            with Fleet("127.0.0.1", broker.port, store_ids(5)) as fleet:
                fleet.publish(messages, rate=150)
        except BaseException as error:  # reported below
            publisher_error.append(error)

    try:
        for worker in workers:
            worker.wait_subscribed()
        thread = threading.Thread(target=publish)
        thread.start()
        wait_for(lambda: window_count(central_db) >= 100, 60, "a third of the windows")
        workers[0].kill()
        killed_at = window_count(central_db)
        workers[0].start()
        workers[0].wait_subscribed(times=2)
        thread.join(120)
        assert not publisher_error, publisher_error
        wait_for(lambda: window_count(central_db) >= len(messages), 60, "every window")
    finally:
        codes = [worker.stop() for worker in workers]
    assert killed_at < len(messages)  # it was killed mid-stream
    assert_exactly_once(central_db, messages)
    assert codes == [0, 0]
    assert "session resumed" in workers[0].log_text()


def test_database_down_the_worker_stops_acknowledging_reconnects_and_loses_nothing(
    broker, central_db, tmp_path
):
    worker = Worker(central_db, broker.port, "ingest-1", tmp_path).start()
    messages = fleet_messages(4, 50)
    first, second = messages[:80], messages[80:]
    try:
        worker.wait_subscribed()
        with Fleet("127.0.0.1", broker.port, store_ids(4)) as fleet:
            fleet.publish(first)
            wait_for(lambda: window_count(central_db) >= len(first), 60, "the first windows")
            set_connections_allowed(central_db, False)
            fleet.publish(second)  # the broker takes them; the worker cannot commit them
            wait_for(lambda: "not acknowledging" in worker.log_text(), 30, "the worker to notice")
            assert worker.process is not None and worker.process.poll() is None
            set_connections_allowed(central_db, True)
        wait_for(lambda: window_count(central_db) >= len(messages), 90, "every window")
        assert worker.log_text().count("MQTT: subscribed") >= 2  # it reconnected
    finally:
        set_connections_allowed(central_db, True)
        code = worker.stop()
    assert_exactly_once(central_db, messages)
    assert code == 0


def moved(message: SimMessage, start: float) -> dict:
    """``message``'s body as the window that starts at ``start`` (its own id)."""
    body = json.loads(message.payload)
    body["window"]["start"] = contract.iso_utc(start)
    body["id"] = contract.aggregate_id(body["store"], start, body["window"]["seconds"])
    return body


def partitions(dsn: str) -> list[str]:
    return [row[0] for row in query(
        dsn, "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = 'windows' ORDER BY 1")]


def test_invalid_wrong_store_oversized_and_conflicting_messages_are_dead_lettered(
    broker, central_db, tmp_path
):
    good = fleet_messages(2, 10)
    a, b = store_ids(2)
    # store b's, ten days after the good ones: a window not sent otherwise, so it is inserted
    nul = moved(good[1], DAY_START + 10 * 86_400)
    other = next(m for m in good if m.store == b)
    tampered = json.loads(good[0].payload)
    tampered["footfall"] = {"in": 3, "out": 3, "capture_rate": None}  # below k
    bad_schema = json.loads(good[0].payload)
    bad_schema["window"]["seconds"] = 0
    nul["dwell"][0]["zone"] = "a\u0000b"  # valid JSON, but PostgreSQL stores no NUL
    conflicting = json.loads(good[2].payload)
    conflicting["occupancy"] = {"mean": 9.5, "max": 12, "sample_s": 1.0}
    topic = f"store-edge/{a}/{contract.AGGREGATES}"
    poison = [
        SimMessage(a, "-", topic, contract.canonical_json(bad_schema)),
        SimMessage(a, "-", topic, contract.canonical_json(tampered)),
        SimMessage(a, "-", topic, b"{not json"),
        SimMessage(a, "-", topic, other.payload),  # store b's window on store a's topic
        SimMessage(a, "-", topic, b'{"pad": "' + b"x" * 100_000 + b'"}'),
        # stopped the worker for good: refused by the database, retried for ever
        SimMessage(b, "-", good[1].topic, contract.canonical_json(nul)),
        # a box whose clock was never set, and one years ahead: each made a partition
        SimMessage(a, "-", topic, contract.canonical_json(moved(good[0], 0.0))),
        SimMessage(a, "-", topic, contract.canonical_json(moved(good[0], 4_070_908_800.0))),
    ]
    worker = Worker(central_db, broker.port, "ingest-1", tmp_path).start()
    try:
        worker.wait_subscribed()
        with Fleet("127.0.0.1", broker.port, store_ids(2)) as fleet:
            fleet.publish(good[:10] + poison + good[10:])
            wait_for(lambda: window_count(central_db) >= len(good), 60, "every good window")
            fleet.publish([SimMessage(a, "-", good[2].topic, contract.canonical_json(conflicting))])
            wait_for(
                lambda: query(central_db, "SELECT count(*) FROM dead_letters")[0][0] >= 9,
                30,
                "the dead letters",
            )
    finally:
        code = worker.stop()
    assert code == 0
    assert sorted(row[0] for row in stored(central_db)) == sorted(m.window_id for m in good)
    letters = query(
        central_db, "SELECT category, reason, bytes, payload IS NULL FROM dead_letters ORDER BY id"
    )
    categories = [row[0] for row in letters]
    assert sorted(categories) == sorted(
        ["invalid", "invalid", "invalid", "invalid", "wrong_store", "oversized", "conflict",
         "out_of_range", "out_of_range"]
    )
    assert any("NUL character" in row[1] for row in letters)
    reasons = {row[0]: row[1] for row in letters}
    assert f"store '{b}' published on {topic}" in reasons["wrong_store"]
    assert "100011 bytes, more than the 65536" in reasons["oversized"]
    assert "already stored with other content" in reasons["conflict"]
    assert any("not k-anonymous" in row[1] for row in letters)
    assert any("window.seconds" in row[1] for row in letters)
    assert all(row[3] == (row[0] == "oversized") for row in letters)  # oversized: not kept
    assert all(len(row[1]) <= 200 for row in letters)
    assert {row[1].split(",")[0] for row in letters if row[0] == "out_of_range"} == {
        "window starts 1970-01-01T00:00:00Z", "window starts 2099-01-01T00:00:00Z"}
    # only the good windows' day (the NUL window is screened out before any insert)
    good_day = contract.iso_utc(DAY_START)[:10].replace("-", "")
    assert partitions(central_db) == [f"windows_{good_day}"]


def test_a_row_the_database_refuses_is_dead_lettered_and_its_batch_committed_and_acked(
    broker, central_db, tmp_path
):
    """A window PostgreSQL refuses in a batch of good ones: it used to fail the batch's
    transaction, nothing was acknowledged, and the worker reconnected and got the same
    batch again, for ever, stuck. Now it is dead-lettered (``refused``), the rest
    committed and everything acknowledged: nothing comes again. (A k beyond PostgreSQL's
    integer was such a window; the worker's own check now refuses it first, so here a
    constraint of the database refuses one window the checks let through.)"""
    good = fleet_messages(2, 15)
    bad = moved(good[3], DAY_START + 15 * 900)
    poison = SimMessage(bad["store"], bad["id"], good[3].topic, contract.canonical_json(bad))
    # commits held back a second: the messages queue up and share a batch
    worker = Worker(central_db, broker.port, "ingest-1", tmp_path, "--delay", "1").start()
    try:
        worker.wait_subscribed()
        with psycopg.connect(central_db, autocommit=True) as conn:
            conn.execute("ALTER TABLE windows ADD CONSTRAINT refuse_poison "
                         f"CHECK (window_id <> '{bad['id']}')")
        with Fleet("127.0.0.1", broker.port, store_ids(2)) as fleet:
            fleet.publish(good[:12] + [poison] + good[12:])
            wait_for(lambda: window_count(central_db) >= len(good), 60, "every good window")
            wait_for(lambda: query(central_db, "SELECT count(*) FROM dead_letters")[0][0] >= 1,
                     30, "the dead letter")
    finally:
        code = worker.stop()
    assert code == 0
    assert assert_exactly_once_but(central_db, good) == 0  # nothing was sent again
    letters = query(central_db, "SELECT category, reason FROM dead_letters")
    assert len(letters) == 1 and letters[0][0] == "refused"
    assert letters[0][1].startswith(f"the database refused window {bad['id']}: ")
    assert "refuse_poison" in letters[0][1]
    log = worker.log_text()
    assert "storing them one by one" in log
    assert "not acknowledging" not in log and log.count("MQTT: subscribed") == 1
    assert f"{len(good)} stored, 0 duplicates, 1 dead-lettered" in log


def assert_exactly_once_but(dsn: str, messages: list[SimMessage]) -> int:
    """:func:`assert_exactly_once` where dead letters are expected too."""
    rows = stored(dsn)
    assert sorted(row[0] for row in rows) == sorted(m.window_id for m in messages)
    return sum(row[1] for row in rows)


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        ((), {"EDGE_CENTRAL_DSN": ""}, "Error: no database: pass --dsn or set EDGE_CENTRAL_DSN"),
        (("--dsn", "x", "--group", "a/b"), {}, "Error: shared subscription group 'a/b'"),
        (("--dsn", "x", "--prefix", "#"), {}, "Error: --prefix '#' is not a topic prefix"),
    ],
)
def test_ingest_refuses_bad_options_in_one_line(args, env, message):
    from click.testing import CliRunner

    from edge.cli import cli

    result = CliRunner().invoke(cli, ["sync", "ingest", *args], env=env)
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(message), result.output
