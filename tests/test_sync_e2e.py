"""End to end, real processes: the broker goes away, windows keep coming, the publisher is
killed with SIGKILL during the outage, both come back, and the consumer ends with every
window exactly once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from edge.runtime.schema import open_database
from tests.support.mqtt_broker import Broker
from tests.support.sync_helpers import ENTRANCE, STORE, write_site
from tests.support.waiting import query, wait_for

pytestmark = pytest.mark.system

WINDOW_S = 2
PREFIX = "e2e-edge"


def edge(*args: str, log: Path) -> subprocess.Popen:
    handle = log.open("ab")
    return subprocess.Popen(
        [sys.executable, "-m", "edge", *args],
        stdout=handle,
        stderr=handle,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


class CrossingWriter(threading.Thread):
    """Writes an entrance crossing every 0.1 s, stamped now: 'people keep coming in'."""

    def __init__(self, path: Path) -> None:
        super().__init__(daemon=True)
        self.path = path
        self.stop = threading.Event()
        self.last_t = 0.0

    def run(self) -> None:
        db = open_database(self.path)
        track = 0
        while not self.stop.is_set():
            track += 1
            self.last_t = time.time()
            # Plain INSERT, no schema read first: a transaction that reads and then writes
            # gets SQLITE_BUSY at once (no busy wait) if another process committed between.
            with db.atomic():
                db.execute(
                    "insert into line_crossings (line_id, camera_id, run_id, track_id, t,"
                    " direction) values (?, 'view001', 1, ?, ?, 'in')",
                    [ENTRANCE, track, self.last_t],
                )
            self.stop.wait(0.1)


def test_outage_kill9_and_restart_deliver_every_window_exactly_once(tmp_path):
    broker = Broker(tmp_path / "broker").start()
    site = write_site(
        tmp_path / "site.yaml",
        window_s=WINDOW_S,
        settle_s=1.0,
        poll_s=0.1,
        retry_initial_s=0.5,
        retry_max_s=1.0,
        ack_timeout_s=5,
        mqtt={
            "host": "127.0.0.1",
            "port": broker.port,
            "topic_prefix": PREFIX,
            "reconnect_min_s": 1,
            "reconnect_max_s": 1,
        },
    )
    edge_db, consumer_db, log = (
        tmp_path / "edge.db",
        tmp_path / "consumer.db",
        tmp_path / "processes.log",
    )
    open_database(edge_db).close()
    writer = CrossingWriter(edge_db)
    consumer = edge(
        "sync",
        "consume",
        "--db",
        str(consumer_db),
        "--port",
        str(broker.port),
        "--host",
        "127.0.0.1",
        "--prefix",
        PREFIX,
        log=log,
    )
    processes = [consumer]
    try:
        # The central consumer subscribes first: a broker keeps messages only for
        # subscriptions that exist (from then on its persistent session keeps them).
        wait_for(lambda: f"{PREFIX}/+/aggregates" in broker.log_text(), 30, "the subscription")
        publisher = edge("sync", "run", "--site", str(site), "--db", str(edge_db), log=log)
        processes.append(publisher)
        writer.start()

        def received() -> int:
            return len(query(consumer_db, "select id from aggregates"))

        def pending() -> int:
            return query(edge_db, "select count(*) from sync_outbox where status = 'pending'")[0][0]

        wait_for(lambda: received() >= 3, 60, "the first aggregates at the consumer")

        broker.stop()
        outage_start = time.time()
        wait_for(lambda: pending() >= 2, 20, "windows stored during the outage")
        publisher.send_signal(signal.SIGKILL)
        publisher.wait(10)
        stored_at_kill = pending()
        publisher = edge("sync", "run", "--site", str(site), "--db", str(edge_db), log=log)
        processes.append(publisher)
        wait_for(lambda: pending() > stored_at_kill, 20, "the restarted publisher storing windows")
        broker.start()  # same port, same persistence file
        outage_end = time.time()

        time.sleep(1.0)
        writer.stop.set()
        writer.join(5)
        last_window_start = (writer.last_t // WINDOW_S) * WINDOW_S

        def all_delivered() -> bool:
            produced = query(edge_db, "select max(window_start) from sync_outbox")[0][0] or 0
            return (
                produced >= last_window_start
                and pending() == 0
                and received() == len(query(edge_db, "select id from sync_outbox"))
            )

        wait_for(all_delivered, 30, "every window delivered and received")

        # The retained last will: killing the publisher turns the store 'offline'.
        publisher.send_signal(signal.SIGKILL)
        publisher.wait(10)
        wait_for(
            lambda: (
                query(consumer_db, "select status from availability where store = ?", [STORE])
                == [("offline",)]
            ),
            10,
            "the last will",
        )
        consumer.send_signal(signal.SIGTERM)
        assert consumer.wait(10) == 0
    finally:
        writer.stop.set()
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait(5)
        broker.stop()

    sent = query(
        edge_db,
        "select id, window_start, created_at, status from sync_outbox order by window_start",
    )
    got = query(
        consumer_db,
        "select id, window_start, duplicates, payload from aggregates order by window_start",
    )
    assert [row[0] for row in got] == [row[0] for row in sent]  # same windows, each stored once
    assert all(row[3] == "delivered" for row in sent)
    starts = [row[1] for row in sent]
    assert all(b - a == WINDOW_S for a, b in zip(starts, starts[1:], strict=False)), (
        "a window is missing"
    )
    during_outage = [row for row in sent if outage_start <= row[2] <= outage_end]
    assert len(during_outage) >= 2, "windows produced during the outage"
    # Nothing lost inside the windows either: footfall equals the crossings written, exactly.
    for window_id, start, _, payload in got:
        message = json.loads(payload)
        assert message["id"] == window_id
        crossings = query(
            edge_db,
            "select count(*) from line_crossings where t >= ? and t < ?",
            [start, start + WINDOW_S],
        )[0][0]
        assert message["footfall"]["in"] == (crossings if crossings >= message["k"] else None)
    process_log = log.read_text()
    assert "Traceback" not in process_log, process_log[-3000:]
    print(
        f"\n{len(got)} windows, {len(during_outage)} stored during the outage, "
        f"{sum(row[2] for row in got)} duplicate deliveries absorbed by the consumer"
    )
