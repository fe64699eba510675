"""docs/mqtt.md stays true: its examples pass the schemas and the k-anonymity check, and its
ACL works on a real broker."""

from __future__ import annotations

import json

import pytest

from edge.runtime.schema import open_database
from sync import contract, kanon
from sync.publisher import SyncService
from tests.conftest import REPO
from tests.support.mqtt_broker import Broker
from tests.support.sync_helpers import STORE, add_crossings, sync_site

pytestmark = pytest.mark.system

DOC = (REPO / "docs" / "mqtt.md").read_text()
DAY0 = 1_709_251_200.0


def blocks(language: str) -> list[str]:
    """The fenced code blocks opened with ```<language> (fences alternate open/close)."""
    found, current, opened = [], [], None
    for line in DOC.splitlines():
        if line.startswith("```"):
            if opened is None:
                opened, current = line[3:].strip(), []
            else:
                if opened == language:
                    found.append("\n".join(current))
                opened = None
        elif opened is not None:
            current.append(line)
    return found


def test_documented_messages_are_valid():
    messages = [json.loads(block) for block in blocks("json")]
    aggregate = next(m for m in messages if m.get("kind") == "aggregate")
    contract.validate("aggregate", aggregate)
    assert kanon.violations(aggregate, aggregate["k"]) == []
    state = next(m for m in messages if "settings" in m)
    contract.validate("state", state)
    envelope = next(m for m in messages if "signature" in m)
    contract.validate("downlink-body", json.loads(envelope["body"]))


def test_documented_acl_lets_a_store_publish_its_own_topics(tmp_path):
    acl = next(block for block in blocks("") if "pattern write" in block)
    acl = "\n".join(line for line in acl.splitlines() if not line.startswith("#"))
    broker = Broker(tmp_path / "broker", users={STORE: "pw", "central": "pw2"}, acl=acl).start()
    try:
        db = open_database(tmp_path / "edge.db")
        add_crossings(db, [DAY0 + i for i in range(6)])
        mqtt = {"host": "127.0.0.1", "port": broker.port, "username": STORE, "password": "pw"}
        site = sync_site(window_s=60, settle_s=0, mqtt=mqtt)
        summary = SyncService(site, db, clock=lambda: DAY0 + 60).flush(10)
        assert (summary.delivered, summary.pending) == (1, 0)
    finally:
        broker.stop()
