"""The fleet fault run, scaled down (issue 16): 30 stores' day of windows through a real
mosquitto to two ``edge sync ingest`` workers on one shared subscription, while one worker
is ``kill -9``ed and restarted and the broker is restarted; every window is stored once.
``scripts/fleet_sim.py --fault-run --stores 1000`` is the full-size run (docs/central.md)."""

from __future__ import annotations

import pytest

from scripts.fleet_sim import fault_run
from tests.support.central_support import ADMIN_DSN, admin

pytestmark = pytest.mark.system


def test_a_fleet_day_survives_a_killed_worker_and_a_broker_restart(tmp_path, capsys):
    admin().close()  # fails clearly if PostgreSQL is not there
    figures = fault_run(30, 96, folder=tmp_path, admin_dsn=ADMIN_DSN, templates=4,
                        backlog=600, stall_s=60)
    with capsys.disabled():
        print(f"\n{figures}")
    assert figures["faults"] == ["broker", "kill"]
    assert figures["messages"] == 2880
    assert figures["rows"] == 2880
    assert figures["lost"] == 0 and figures["duplicated"] == 0 and figures["unexpected"] == 0
    assert figures["dead_letters"] == 0
    assert figures["session_resumed"]  # the killed worker came back to its session
    assert set(figures["rows_per_worker"]) == {"fault-0", "fault-1"}
