"""The packages and scripts type-check: mypy (with the pydantic plugin, see
pyproject.toml) finds nothing."""

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.system

REPO = Path(__file__).resolve().parent.parent


def test_mypy_reports_no_errors():
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "edge", "sync", "scripts"],
        cwd=REPO, capture_output=True, text=True, check=False,
    )
    assert result.returncode == 0, f"mypy failed:\n{result.stdout}{result.stderr}"
