"""Shared fixtures: real assets from ../shared, real records, temporary state."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("EDGE_ASSETS_DIR") or REPO.parent / "shared").resolve()
os.environ["EDGE_ASSETS_DIR"] = str(SHARED)
os.environ.setdefault("EDGE_OFFLINE", "1")

pytest_plugins = ["tests.support.report_support"]  # the report tests' shared replays

PETS_VIDEO = SHARED / "video" / "pets09-s2l1-view001.avi"
PETS_GT = SHARED / "mot" / "PETS09-S2L1" / "gt" / "gt.txt"
PETS_DET = SHARED / "mot" / "PETS09-S2L1" / "det" / "det.txt"
PETS_SITE = REPO / "calibration" / "pets09" / "site.yaml"
# Captures of one phone each, under one to hundreds of MACs (../shared/README.md).
SINGLE_PHONES = SHARED / "wifi" / "single-phone"

SHARED_PRESENT = (SHARED / "README.md").is_file()


def skip_module_without_shared() -> None:
    """Call at the top of a system module that reads the shared assets while it is imported
    (e.g. for its parameters), so that the unit tier can still collect it without them."""
    if not SHARED_PRESENT:
        pytest.skip(f"shared assets not found at {SHARED}", allow_module_level=True)


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Without the shared assets only the unit tier runs: every ``system`` test (shared
    assets, real services, the CLI) fails at once, saying why. (A per-test failure, not a
    session error, so that it reads the same under xdist.)"""
    if not SHARED_PRESENT and item.get_closest_marker("system"):
        pytest.fail(
            f"shared assets not found at {SHARED}: put the shared folder beside the checkout, "
            'set EDGE_ASSETS_DIR, or run only the unit tier with -m "not system"',
            pytrace=False,
        )


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Make ``xdist_group`` marks keep their tests on one worker under ``--dist loadgroup``.

    pytest-xdist 3.8 tags a marked test's id with ``@group`` by writing ``item._nodeid``,
    which pytest 9.2 no longer reads (a node's id is ``item._id``): every test was then
    scheduled on its own, so a group's tests (the users of one whole-recording replay)
    spread over both workers and one sat waiting on the other's file lock. This tags
    them as xdist would (after its own hook; nothing to do where its tag took). The
    scheduler then hands each group to one worker, largest groups first."""
    if not getattr(config.option, "loadgroup", False):
        return
    from _pytest.nodeid import NodeId

    for item in items:
        names = sorted({str(mark.args[0] if mark.args else mark.kwargs.get("name", "default"))
                        for mark in item.iter_markers("xdist_group")})
        suffix = "@" + "_".join(names)
        if names and not item.nodeid.endswith(suffix):
            item._id = NodeId.parse(item.nodeid + suffix)


@pytest.fixture(autouse=True)
def _isolated_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own state directory, so nothing is written into the checkout."""
    state = tmp_path / "state"
    monkeypatch.setenv("EDGE_STATE_DIR", str(state))
    return state


@pytest.fixture
def pets_site():
    from edge.config import load_site

    return load_site(PETS_SITE)


@pytest.fixture
def memory_db():
    from edge.runtime.schema import open_database

    return open_database(":memory:")


def boxes(*rows: tuple[float, float, float, float]) -> np.ndarray:
    return np.array(rows, dtype=np.float32).reshape(-1, 4)
