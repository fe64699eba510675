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

pytest_plugins = ["tests.report_support"]  # the report tests' shared replays

PETS_VIDEO = SHARED / "video" / "pets09-s2l1-view001.avi"
PETS_GT = SHARED / "mot" / "PETS09-S2L1" / "gt" / "gt.txt"
PETS_DET = SHARED / "mot" / "PETS09-S2L1" / "det" / "det.txt"
PETS_SITE = REPO / "calibration" / "pets09" / "site.yaml"

if not (SHARED / "README.md").is_file():
    raise pytest.UsageError(
        f"shared assets not found at {SHARED}: put the shared folder beside the checkout "
        "or set EDGE_ASSETS_DIR"
    )


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
