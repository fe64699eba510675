"""`edge sync gaps`: the windows missing between a store's first and last stored window.

A broker that crashes after acknowledging windows to a box (mosquitto saves its queue
only every autosave_interval, 30 min by default) loses windows the box has marked
delivered: nothing on either side said so. Window ids are deterministic per store, so
the central side can list the holes (docs/central.md, Broker settings)."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from edge.cli import cli
from scripts.fleet_sim import DAY_START, fleet_messages
from sync import contract
from sync.central.store import WindowRow, screen
from tests.support.central_support import (  # noqa: F401 (fixture)
    central_db_fixture,
    open_central_store,
)

pytestmark = pytest.mark.system


def as_window(message, start: float, seconds: int) -> WindowRow:
    """``message``'s counts as the window of ``seconds`` that starts at ``start``."""
    body = json.loads(message.payload)
    body["window"] = {"start": contract.iso_utc(start), "seconds": seconds}
    body["id"] = contract.aggregate_id(body["store"], start, seconds)
    row = screen(message.topic, contract.canonical_json(body))
    assert isinstance(row, WindowRow), row
    return row


@pytest.fixture(name="gappy_db")
def gappy_db_fixture(central_db):
    """sim-0000: ten windows of 15 min with windows 3, 4 and 7 lost; sim-0001: no hole,
    though its window length changes (15 min, a 45-min window bridging to whole hours,
    then hours); sim-0002: one window."""
    messages = fleet_messages(3, 10)
    first, second, third = (messages[i::3] for i in range(3))
    rows = [screen(m.topic, m.payload) for i, m in enumerate(first) if i not in (3, 4, 7)]
    rows += [screen(m.topic, m.payload) for m in second[:5]]  # 00:00 .. 01:15
    rows += [as_window(second[5], DAY_START + 4_500, 2_700),  # 01:15 .. 02:00
             as_window(second[6], DAY_START + 7_200, 3_600),
             as_window(second[7], DAY_START + 10_800, 3_600)]
    rows.append(screen(third[0].topic, third[0].payload))
    with open_central_store(central_db, worker="gaps-test") as store:
        counts = store.write(rows)
    assert (counts.stored, counts.dead_letters) == (len(rows), 0)
    return central_db


def gaps(dsn: str, *args: str):
    result = CliRunner().invoke(cli, ["sync", "gaps", "--dsn", dsn, *args])
    assert result.exit_code == 0, result.output
    return result.output


def test_the_missing_windows_of_each_store_are_listed_with_their_ids(gappy_db):
    start = contract.iso_utc
    assert gaps(gappy_db).splitlines() == [
        f"sim-0000  {start(DAY_START + 2_700)} .. {start(DAY_START + 4_500)}  2 window(s) of 900 s",
        f"sim-0000  {start(DAY_START + 6_300)} .. {start(DAY_START + 7_200)}  1 window(s) of 900 s",
        "3 window(s) missing in 2 gap(s) of 1 store(s).",
    ]
    report = json.loads(gaps(gappy_db, "--json"))
    assert report["windows"] == 3
    assert [gap["ids"] for gap in report["gaps"]] == [
        [contract.aggregate_id("sim-0000", DAY_START + i * 900, 900) for i in (3, 4)],
        [contract.aggregate_id("sim-0000", DAY_START + 7 * 900, 900)],
    ]


def test_gaps_of_one_store_and_of_a_range_of_days(gappy_db):
    assert gaps(gappy_db, "--store", "sim-0001") == "No window missing.\n"
    day = contract.iso_utc(DAY_START)[:10]
    assert "3 window(s) missing" in gaps(gappy_db, "--store", "sim-0000", "--since", day,
                                         "--until", day)
    later = contract.iso_utc(DAY_START + 86_400)[:10]
    assert gaps(gappy_db, "--since", later) == "No window missing.\n"
