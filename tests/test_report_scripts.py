"""scripts/bench.py and `edge eval suite`: one JSON object each, stable documented names."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from edge.evaluation.suite import BRNO_CAPTURES, FLOOR_NAMES, MOT_NAMES, VISIT_NAMES
from tests.conftest import REPO, SINGLE_PHONES

pytestmark = pytest.mark.system

DOCS = REPO / "docs" / "report.md"
BENCHES = {"builder", "capacity", "fusion", "ingest", "tracker", "vision", "visits", "web",
           "wifi"}


def run_script(*args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=REPO,
                          timeout=timeout, check=False)


def documented_names() -> set[str]:
    """Figure names in docs/report.md's tables (first column, in backticks)."""
    return set(re.findall(r"^\| `([a-z_][\w.<>-]*)` \|", DOCS.read_text(), flags=re.M))


def test_bench_finds_every_bench_and_no_helper_module():
    result = run_script("scripts/bench.py", "--list")
    assert result.returncode == 0, result.stderr
    assert set(result.stdout.split()) == BENCHES  # not bench.py, checkout_venv.py, fleet_sim.py


def test_bench_runs_two_benches_quickly_as_one_json_object():
    """bench_wifi.py and bench_visits.py both run, --quick reaches them, and their
    figures come back prefixed in one object."""
    result = run_script("scripts/bench.py", "wifi", "visits", "--quick", "--json")
    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout)
    assert "bench wifi --quick" in result.stderr and "bench visits --quick" in result.stderr
    assert figures["wifi.frames"] > 1000 and figures["wifi.parser_speedup"] > 1
    assert figures["visits.pets_visits"] > 0
    assert all(isinstance(v, int | float) for v in figures.values())
    assert {"wifi.bench_seconds", "visits.bench_seconds"} <= set(figures)


def test_bench_rejects_an_unknown_bench():
    result = run_script("scripts/bench.py", "nonesuch")
    assert result.returncode == 2 and "unknown bench nonesuch" in result.stderr


@pytest.fixture(scope="module")
def evaluated() -> dict:
    result = run_script("-m", "edge", "eval", "suite", "reference", "wifi", "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_evaluate_proves_the_evaluator_on_the_reference_data(evaluated):
    assert evaluated["reference.tud_campus.IDF1"] == pytest.approx(0.557659, abs=1e-6)
    assert evaluated["reference.tud_campus.MOTA"] == pytest.approx(0.526462, abs=1e-6)
    assert evaluated["reference.tud_campus.id_switches"] == 7
    assert evaluated["reference.tud_campus.matches_published"] == 1


def test_evaluate_wifi_figures(evaluated):
    assert evaluated["wifi.brno.day_p1.r"] >= 0.95 and evaluated["wifi.brno.day_p2.r"] >= 0.95
    assert evaluated["wifi.brno.night.max_devices"] == 0
    assert evaluated["wifi.brno.night.r"] is None  # undefined over an empty room, not 0
    phones = {k: v for k, v in evaluated.items()
              if k.startswith("wifi.single_phone.") and k.endswith(".devices")}
    assert len(phones) == len(list((SINGLE_PHONES).glob("*.pcap")))
    assert sorted(phones.values()) == [1, 1, 1, 1, 2]  # the Oppo's two unlinkable variants


def test_every_figure_name_is_documented(evaluated):
    """docs/report.md is the interface other scripts read: every name is in it."""
    names = set(evaluated) | {f"pets.video.{n}" for n in MOT_NAMES} | {
        f"pets.floor.{n}" for n in FLOOR_NAMES} | {f"pets.visits.{n}" for n in VISIT_NAMES}
    names |= {f"pets.tracker.{n}" for n in ("HOTA", "IDF1", "MOTA", "id_switches")}
    documented = documented_names()
    generic = set()
    for name in names:
        name = re.sub(r"^wifi\.single_phone\.[^.]+\.", "wifi.single_phone.<capture>.", name)
        name = re.sub(r"^wifi\.brno\.[^.]+\.", "wifi.brno.<capture>.", name)
        generic.add(re.sub(r"^seconds\.\w+$", "seconds.<section>", name))
    assert generic - documented == set()
    text = DOCS.read_text()
    assert all(f"`{label}`" in text for label in BRNO_CAPTURES)


def test_evaluate_rejects_an_unknown_section():
    result = run_script("-m", "edge", "eval", "suite", "nonesuch")
    assert result.returncode == 2 and "unknown section nonesuch" in result.stderr
