"""Accuracy on the Brno lab captures, whose CSVs give the people present (occupancy).

Per 15-minute window (clock-aligned), the estimate is compared with the time-weighted
mean occupancy over the part of the window the capture covers. The lab's own PCs
(listed in the dataset's README) are excluded through the site config, i.e. by
pseudonym under the day's key, as a store would exclude its tills and printers.
Run with ``-s`` to see the figures.
"""

from __future__ import annotations

import pytest

from edge.evaluation import wifi as evaluation
from edge.evaluation.wifi import brno_config, evaluate_occupancy
from edge.wifi.calibration import fit_people_per_device
from tests.conftest import SHARED

BRNO = SHARED / "wifi" / "brno-sc6-61"
DAY = BRNO / "position_1_sc6-61_2024-03-15_anonymized.pcap"
DAY_2 = BRNO / "position_2_sc6-61_2024-03-15_anonymized.pcap"
LECTURE = BRNO / "position_1_sc6-61_2023-02-08_anonymized.pcap"
NIGHT = BRNO / "position_1_sc6-61_2023-04-17_anonymized.pcap"


def lab_pcs() -> list[str]:
    """The exclusion list, as the dataset's README gives it (tests/test_wifi_cli.py too)."""
    return evaluation.lab_pcs(BRNO / "README.md")


@pytest.fixture(scope="module")
def figures():
    config = brno_config(BRNO)
    out = {}
    for capture in (DAY, DAY_2, LECTURE, NIGHT):
        result = evaluate_occupancy(capture, config)
        out[capture.name] = {
            "windows": result.windows,
            "estimate": result.estimate,
            "people": result.people,
            "r": result.r,
            "r_raw": result.r_raw,
            "r_gated": result.r_gated,
            "mae": result.mae,
        }
        print(f"\n{capture.name}: {len(result.people)} windows; Pearson r estimate "
              f"{_f(result.r)}, raw distinct addresses {_f(result.r_raw)}, gated at -70 dBm "
              f"{_f(result.r_gated)}; mean |estimate - people| {result.mae:.2f}")
        print(f"  people   {[round(p, 1) for p in result.people]}")
        print(f"  estimate {result.estimate}")
    return out


def _f(value: float | None) -> str:
    return "undefined" if value is None else f"{value:.3f}"


def test_the_exclusion_list_is_the_readmes():
    assert len(lab_pcs()) == 14 and lab_pcs()[0] == "dc:fb:48:68:be:e4"


@pytest.mark.parametrize("capture", [DAY, DAY_2], ids=["position-1", "position-2"])
def test_occupancy_follows_the_room_through_a_day(figures, capture):
    """2024-03-15: empty, five people 14:00-15:50, empty again (two sniffers)."""
    day = figures[capture.name]
    assert day["r"] >= 0.95
    assert day["r"] > day["r_raw"] and day["r"] >= day["r_gated"] - 0.02
    occupied = [e for e, p in zip(day["estimate"], day["people"], strict=False) if p >= 4.5]
    empty = [e for e, p in zip(day["estimate"], day["people"], strict=False) if p == 0]
    assert min(occupied) >= 3 and max(occupied) <= 8
    assert sum(empty) / len(empty) < 0.25


def test_the_night_capture_is_empty(figures):
    night = figures[NIGHT.name]
    assert len(night["windows"]) == 21
    assert max(w.in_store_devices for w in night["windows"]) == 0
    assert sum(w.frames for w in night["windows"]) == 511       # heard, and not counted


def test_the_lecture_is_counted_at_its_level(figures):
    """2023-02-08: 14-15 people for 100 minutes, then 10 and 8 in the last four minutes.

    The occupancy barely varies, so Pearson r measures noise here (0.6-0.8 between
    reasonable settings); what the estimate must get right is the level. With the
    default factor of 1 person per device, it is within about 2 people.
    """
    lecture = figures[LECTURE.name]
    assert lecture["mae"] <= 2.5
    assert lecture["r"] >= 0.6
    assert lecture["estimate"][-1] == min(lecture["estimate"])   # the emptying room


def test_a_fitted_factor_brings_the_day_to_people(figures):
    day = figures[DAY.name]
    fit = fit_people_per_device(day["estimate"], day["people"])
    assert 0.6 <= fit.people_per_device <= 1.2
    assert fit.mean_abs_error < 0.6
