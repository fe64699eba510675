"""Accuracy on the Brno lab captures, whose CSVs give the people present (occupancy).

Protocol (docs/wifi.md, "Measured figures"): 15-minute windows aligned on the clock
(what ``WindowCounter`` emits, and what the dataset authors' own plots use, pandas'
``Grouper``), first and last windows partial; per window, the estimate is compared
with the time-weighted mean occupancy over the part of the window the capture covers.
The lab's own PCs (listed in the dataset's README) are excluded from the estimate
through the site config (by pseudonym under the day's key, as a store would exclude
its tills) and from the distinct-address baselines by address.

Because one alignment can be lucky or unlucky, the estimate and both baselines are
also computed with the window grid shifted by whole minutes (``ORIGINS``). On
2024-03-15 that changes almost nothing; on 2023-02-08 it decides everything, because
the occupancy is 15 in every complete window there (see the tests at the end).
Run with ``-s`` to see the figures.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pytest

from edge.config.wifi import WifiConfig
from edge.evaluation.wifi import window_means
from edge.wifi.calibration import fit_people_per_device, pearson
from edge.wifi.parser import MalformedFrame, dissect
from edge.wifi.pcapfile import CaptureFile
from edge.wifi.pipeline import FramePipeline, replay_to_list
from edge.wifi.windows import WifiWindow
from tests.conftest import SHARED
from tests.test_wifi_pcap import write_pcap

pytestmark = pytest.mark.system

BRNO = SHARED / "wifi" / "brno-sc6-61"
DAY = BRNO / "position_1_sc6-61_2024-03-15_anonymized.pcap"
DAY_2 = BRNO / "position_2_sc6-61_2024-03-15_anonymized.pcap"
LECTURE = BRNO / "position_1_sc6-61_2023-02-08_anonymized.pcap"
NIGHT = BRNO / "position_1_sc6-61_2023-04-17_anonymized.pcap"
WINDOW = 900
# Window grids: starting on the quarter hour (the product's), then 3, 6, 9, 12 min later.
ORIGINS = (0, 180, 360, 540, 720)


def lab_pcs() -> list[str]:
    """The exclusion list, as the dataset's README gives it."""
    text = (BRNO / "README.md").read_text()
    block = text.split("## Anonymized MACs", 1)[1]
    return re.findall(r"^([0-9a-f]{2}(?::[0-9a-f]{2}){5})$", block, flags=re.MULTILINE)


@dataclass(frozen=True)
class LabCapture:
    """One capture read once: frame times, the CSV's occupancy, and probe addresses."""

    path: Path
    frame_times: np.ndarray       # every frame, in file order (pairs with the CSV rows)
    occupancy: np.ndarray         # people present when each frame was received
    probe_times: np.ndarray
    sources: list[bytes]          # transmitter address of each probe (baselines only)
    rssi: np.ndarray              # dBm, -inf when the frame has none


def read_lab_capture(capture: Path) -> LabCapture:
    frame_times, probe_times, sources, rssi = [], [], [], []
    with CaptureFile(capture) as frames:
        for frame in frames:
            frame_times.append(frame.timestamp)
            try:
                probe = dissect(frame.data)
            except MalformedFrame:
                continue
            if probe is None:
                continue
            probe_times.append(frame.timestamp)
            sources.append(probe.source)
            rssi.append(-np.inf if probe.rssi is None else probe.rssi)
    with open(str(capture).replace("_anonymized.pcap", "_ver-99.csv"), newline="") as handle:
        occupancy = np.array([float(row["occupancy"])
                              for row in csv.DictReader(handle, delimiter=";")])
    assert len(occupancy) == len(frame_times), "CSV rows and pcap frames must pair one to one"
    return LabCapture(capture, np.array(frame_times), occupancy, np.array(probe_times),
                      sources, np.array(rssi, dtype=float))


def occupancy_per_window(lab: LabCapture, starts: list[float]) -> list[float | None]:
    """Time-weighted mean of the CSV's occupancy over each window's covered seconds."""
    return window_means(lab.frame_times, lab.occupancy, starts, WINDOW)


def distinct_addresses(lab: LabCapture, starts: list[float], gate: float | None) -> list[int]:
    """The baselines: distinct source addresses per window (all, or above a gate),
    the lab PCs excluded as in the estimate."""
    excluded = {bytes.fromhex(address.replace(":", "")) for address in lab_pcs()}
    keep = lab.rssi >= gate if gate is not None else np.ones(len(lab.sources), bool)
    counts = []
    for start in starts:
        lo, hi = np.searchsorted(lab.probe_times, [start, start + WINDOW])
        counts.append(len({lab.sources[i] for i in range(lo, hi)
                           if keep[i] and lab.sources[i] not in excluded}))
    return counts


def replay_with_origin(capture: Path, config: WifiConfig, origin: int) -> list[WifiWindow]:
    """The product's pipeline with its window grid starting ``origin`` seconds after the
    quarter hour (time stamps shifted in, window starts shifted back)."""
    if origin == 0:
        return replay_to_list(capture, config, window_sizes=[WINDOW]).windows
    pipeline = FramePipeline(config, sensor="origin", window_sizes=[WINDOW])
    windows: list[WifiWindow] = []
    with CaptureFile(capture) as frames:
        for frame in frames:
            windows += pipeline.feed(frame.data, frame.timestamp - origin, frame.linktype)
    windows += pipeline.finish()
    return [_shifted(w, origin) for w in windows]


def _shifted(window: WifiWindow, origin: int) -> WifiWindow:
    return replace(window, start=window.start + origin)


def score(lab: LabCapture, windows: list[WifiWindow]) -> dict[str, object]:
    """Pearson r of the estimate and both baselines against the people, per window."""
    starts = [w.start for w in windows]
    truth = occupancy_per_window(lab, starts)
    kept = [i for i, t in enumerate(truth) if t is not None]
    people = [truth[i] for i in kept]
    estimate = [windows[i].occupancy_estimate for i in kept]
    raw = distinct_addresses(lab, starts, None)
    gated = distinct_addresses(lab, starts, -70)
    return {
        "windows": windows,
        "covered": [windows[i].covered_s for i in kept],
        "estimate": estimate,
        "people": people,
        "raw": [raw[i] for i in kept],
        "gated": [gated[i] for i in kept],
        "r": pearson(estimate, people),
        "r_raw": pearson([raw[i] for i in kept], people),
        "r_gated": pearson([gated[i] for i in kept], people),
        "mae": float(np.mean(np.abs(np.array(estimate) - np.array(people)))),
    }


@pytest.fixture(scope="module")
def figures():
    config = WifiConfig(exclude_addresses=lab_pcs())
    out = {}
    for capture in (DAY, DAY_2, LECTURE, NIGHT):
        lab = read_lab_capture(capture)
        origins = (0,) if capture == NIGHT else ORIGINS
        by_origin = {o: score(lab, replay_with_origin(capture, config, o)) for o in origins}
        result = dict(by_origin[0])
        result["by_origin"] = by_origin
        out[capture.name] = result
        print(f"\n{capture.name}: {len(result['people'])} windows; Pearson r estimate "
              f"{_f(result['r'])}, raw distinct addresses {_f(result['r_raw'])}, gated at "
              f"-70 dBm {_f(result['r_gated'])}; mean |estimate - people| {result['mae']:.2f}")
        print(f"  people   {[round(p, 1) for p in result['people']]}")
        print(f"  estimate {result['estimate']}")
        for key, label in (("r", "estimate"), ("r_raw", "raw"), ("r_gated", "gated")):
            print(f"  r by grid origin (min {', '.join(str(o // 60) for o in origins)}), "
                  f"{label}: {[_f(s[key]) for s in by_origin.values()]}")
    return out


def _f(value: float | None) -> str:
    return "undefined" if value is None else f"{value:.3f}"


def test_the_exclusion_list_is_the_readmes():
    assert len(lab_pcs()) == 14 and lab_pcs()[0] == "dc:fb:48:68:be:e4"


def test_the_lab_pcs_count_in_no_figure_whatever_their_signal(tmp_path):
    """Regression (review): the lab PCs' frames below the RSSI gate (7 on 2023-02-08)
    were counted as passer-by bursts, 3780 where the capture without their frames
    gives 3773. Excluding a device now gives the windows of a capture without it."""
    excluded = {bytes.fromhex(address.replace(":", "")) for address in lab_pcs()}
    kept, weak_from_pcs = [], 0
    with CaptureFile(LECTURE) as frames:
        for frame in frames:
            probe = dissect(frame.data)
            if probe is not None and probe.source in excluded:
                weak_from_pcs += probe.rssi is None or probe.rssi < -70
                continue
            kept.append((frame.timestamp, frame.data))
    assert weak_from_pcs == 7
    without = write_pcap(tmp_path / "without-the-pcs.pcap", kept)
    config = WifiConfig(exclude_addresses=lab_pcs())
    key = bytes(range(32))
    runs = [replay_to_list(path, config, timezone="Europe/Prague", window_sizes=[60, 900],
                           key_factory=lambda size: key[:size]) for path in (LECTURE, without)]
    counted = [[replace(w, sensor="", frames=0, excluded_frames=0) for w in run.windows]
               for run in runs]
    assert counted[0] == counted[1]
    passers = [sum(w.passers_by for w in run.windows if w.window_s == 900) for run in runs]
    assert passers == [3773, 3773]
    assert runs[0].stats.excluded_frames == 1801 + 7 and runs[1].stats.excluded_frames == 0


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


@pytest.mark.parametrize("capture", [DAY, DAY_2], ids=["position-1", "position-2"])
def test_the_day_meets_the_target_whatever_the_window_grid(figures, capture):
    """Issue 4's r >= 0.90, on every grid origin, not just the lucky one."""
    by_origin = figures[capture.name]["by_origin"]
    assert min(s["r"] for s in by_origin.values()) >= 0.90
    assert all(s["r"] > s["r_raw"] for s in by_origin.values())


def test_the_night_capture_is_empty(figures):
    night = figures[NIGHT.name]
    assert len(night["windows"]) == 21
    assert max(w.in_store_devices for w in night["windows"]) == 0
    assert sum(w.frames for w in night["windows"]) == 511       # heard, and not counted


def test_the_lecture_is_counted_at_its_level(figures):
    """2023-02-08: 14-15 people for 100 minutes, then 10 and 8 in the last four minutes.

    What the estimate can get right here is the level: with the default factor of
    1 person per device, it is within about 2 people, and the emptying room's last
    window is the lowest.
    """
    lecture = figures[LECTURE.name]
    assert lecture["mae"] <= 2.5
    assert lecture["r"] >= 0.6
    assert lecture["estimate"][-1] == min(lecture["estimate"])   # the emptying room
    plateau = [e for e, p in zip(lecture["estimate"], lecture["people"], strict=True)
               if p == 15]
    assert 13 <= np.mean(plateau) <= 18


def test_the_lecture_reference_varies_only_in_partial_windows(figures):
    """Why r on 2023-02-08 is no measure of the estimator: in every complete window the
    room holds 15 people, so over complete windows Pearson r is undefined, for any
    estimator; all of the reference's variance sits in the two partial windows."""
    lecture = figures[LECTURE.name]
    complete = [p for p, c in zip(lecture["people"], lecture["covered"], strict=True)
                if c == WINDOW]
    assert len(complete) == 6 and set(complete) == {15.0}
    assert pearson(lecture["estimate"][1:-1], complete) is None
    assert len(lecture["people"]) - len(complete) == 2


def test_the_lecture_correlation_is_decided_by_the_window_grid(figures):
    """Shifting the grid by a few minutes moves r on 2023-02-08 by more than 0.2 for the
    estimate and both baselines alike (0.45-0.87 for the estimate over the 15 whole-minute
    origins); on 2024-03-15 it moves the estimate by less than 0.1."""
    for key in ("r", "r_raw", "r_gated"):
        values = [s[key] for s in figures[LECTURE.name]["by_origin"].values()]
        assert max(values) - min(values) > 0.2, key
    for capture in (DAY, DAY_2):
        values = [s["r"] for s in figures[capture.name]["by_origin"].values()]
        assert max(values) - min(values) < 0.1


def test_a_fitted_factor_brings_the_day_to_people(figures):
    day = figures[DAY.name]
    fit = fit_people_per_device(day["estimate"], day["people"])
    assert 0.6 <= fit.people_per_device <= 1.2
    assert fit.mean_abs_error < 0.6
