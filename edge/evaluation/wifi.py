"""Wi-Fi counting accuracy on the shared captures with ground truth.

- Brno lab captures (``wifi/brno-sc6-61``): each pcap has a CSV whose
  ``occupancy`` column gives the people in the room, one row per captured frame.
  Per 15-minute window (clock-aligned) the estimate is compared with the
  time-weighted mean occupancy over the part of the window the capture covers. The
  lab's own PCs (listed in the dataset's README) are excluded through the Wi-Fi
  config, by pseudonym, as a store excludes its tills and printers.
- Single-phone captures (``wifi/single-phone``): each is one phone under 1 to
  several hundred addresses; the estimator should say 1.

The raw-address baselines below count source addresses in memory, for comparison
only; nothing is stored.
"""

from __future__ import annotations

import csv
import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge.config.wifi import WifiConfig
from edge.errors import DataFormatError
from edge.wifi.calibration import pearson
from edge.wifi.parser import MalformedFrame, dissect
from edge.wifi.pcapfile import CaptureFile
from edge.wifi.pipeline import replay_to_list
from edge.wifi.windows import WifiWindow

WINDOW_S = 900
RSSI_BASELINE_GATE_DBM = -70  # the published baseline's gate (shared/README.md)


@dataclass(frozen=True, slots=True)
class OccupancyFigures:
    """One Brno capture: per window, our estimate against the people present.

    Attributes:
        windows: every window the replay produced.
        estimate, people: paired per window the ground truth covers.
        r: Pearson r of estimate and people (None when undefined).
        r_raw, r_gated: the baselines' r: distinct source addresses per window, all
            or above -70 dBm only.
        mae: mean absolute error of the estimate, in people.
    """

    windows: list[WifiWindow]
    estimate: list[float]
    people: list[float]
    r: float | None
    r_raw: float | None
    r_gated: float | None
    mae: float


def lab_pcs(readme: Path) -> list[str]:
    """The lab PCs' addresses from the Brno dataset's README (its exclusion list)."""
    text = readme.read_text()
    if "## Anonymized MACs" not in text:
        raise DataFormatError(f"{readme}: no '## Anonymized MACs' section")
    block = text.split("## Anonymized MACs", 1)[1]
    return re.findall(r"^([0-9a-f]{2}(?::[0-9a-f]{2}){5})$", block, flags=re.MULTILINE)


def ground_truth_csv(capture: Path) -> Path:
    """The occupancy CSV beside a Brno capture."""
    return Path(str(capture).replace("_anonymized.pcap", "_ver-99.csv"))


def occupancy_per_window(
    capture: Path, starts: list[float], window_s: int = WINDOW_S
) -> list[float | None]:
    """Time-weighted mean of the CSV's occupancy over each window's covered seconds.

    Raises:
        DataFormatError: the CSV is missing or does not pair one row per frame.
    """
    with CaptureFile(capture) as frames:
        times = np.array([frame.timestamp for frame in frames])
    truth = ground_truth_csv(capture)
    try:
        with truth.open(newline="") as handle:
            occupancy = np.array([float(row["occupancy"])
                                  for row in csv.DictReader(handle, delimiter=";")])
    except (OSError, KeyError, ValueError) as error:
        raise DataFormatError(f"{truth}: cannot read the occupancy column ({error})") from None
    if len(occupancy) != len(times):
        raise DataFormatError(
            f"{truth}: {len(occupancy)} rows for {len(times)} frames; they must pair one to one"
        )
    return window_means(times, occupancy, starts, window_s)


def window_means(
    times: np.ndarray, occupancy: np.ndarray, starts: list[float], window_s: float
) -> list[float | None]:
    """Time-weighted mean of ``occupancy`` (its value at each of the sorted ``times``)
    over the seconds of each window ``[start, start + window_s)`` that ``times``
    cover; None for a window they do not reach."""
    means: list[float | None] = []
    for start in starts:
        grid = np.arange(max(start, times[0]), min(start + window_s, times[-1]), 1.0)
        if len(grid) == 0:
            means.append(None)
            continue
        index = np.clip(np.searchsorted(times, grid, side="right") - 1, 0, len(times) - 1)
        means.append(float(occupancy[index].mean()))
    return means


def distinct_addresses(
    capture: Path,
    starts: list[float],
    gate: float | None,
    window_s: int = WINDOW_S,
    exclude: list[str] = (),  # type: ignore[assignment]
) -> list[int]:
    """The baselines: distinct source addresses per window (all, or above ``gate`` dBm),
    leaving out ``exclude`` (the lab's PCs, as the estimate does)."""
    excluded = {bytes.fromhex(address.replace(":", "")) for address in exclude}
    seen: dict[float, set[bytes]] = {start: set() for start in starts}
    with CaptureFile(capture) as frames:
        for frame in frames:
            try:
                probe = dissect(frame.data)
            except MalformedFrame:
                continue
            if probe is None or (gate is not None and (probe.rssi or -999) < gate):
                continue
            if probe.source in excluded:
                continue
            start = frame.timestamp // window_s * window_s
            if start in seen:
                seen[start].add(probe.source)
    return [len(seen[start]) for start in starts]


def capture_key(capture: Path) -> Callable[[int], bytes]:
    """A pseudonym key fixed per capture file, so an evaluation's figures repeat.

    The box draws a random key every day, and pseudonyms are short on purpose
    (``wifi.pseudonym_bits``, 20), so two addresses of a capture collide under some
    keys: with a random key the same capture gave 1 or 2 devices from run to run.
    These are public recordings, read on an engineer's machine; the key never leaves
    this process.
    """
    seed = hashlib.sha256(b"evaluation:" + capture.name.encode()).digest()
    return lambda size: (seed * (size // len(seed) + 1))[:size]


def evaluate_occupancy(
    capture: Path, config: WifiConfig, window_s: int = WINDOW_S
) -> OccupancyFigures:
    """Replay one Brno capture and compare its windows with the room's occupancy."""
    result = replay_to_list(capture, config, window_sizes=[window_s],
                            key_factory=capture_key(capture))
    starts = [w.start for w in result.windows]
    truth = occupancy_per_window(capture, starts, window_s)
    paired = [(w, t) for w, t in zip(result.windows, truth, strict=False) if t is not None]
    estimate = [w.occupancy_estimate for w, _ in paired]
    people = [float(t) for _, t in paired]
    raw = distinct_addresses(capture, starts, None, window_s, config.exclude_addresses)
    gated = distinct_addresses(
        capture, starts, RSSI_BASELINE_GATE_DBM, window_s, config.exclude_addresses
    )
    return OccupancyFigures(
        windows=result.windows,
        estimate=estimate,
        people=people,
        r=pearson(estimate, people),
        r_raw=pearson([raw[starts.index(w.start)] for w, _ in paired], people),
        r_gated=pearson([gated[starts.index(w.start)] for w, _ in paired], people),
        mae=float(np.mean(np.abs(np.array(estimate) - np.array(people)))) if paired else 0.0,
    )


def brno_config(folder: Path) -> WifiConfig:
    """The Wi-Fi config the Brno figures use: defaults, the lab PCs excluded."""
    return WifiConfig(exclude_addresses=lab_pcs(folder / "README.md"))


@dataclass(frozen=True, slots=True)
class DeviceCount:
    """One single-phone capture: devices estimated over the whole capture and per window."""

    whole: int
    per_window_max: int
    windows: int


def single_phone_devices(capture: Path, window_s: int = WINDOW_S) -> DeviceCount:
    """Estimated devices in a capture of one phone (the answer should be 1).

    The publisher replaced every address with a random one, locally administered or
    not, so the locally-administered bit is not trusted here.
    """
    result = replay_to_list(capture, WifiConfig(trust_la_bit=False),
                            window_sizes=[window_s, 86400], key_factory=capture_key(capture))
    whole = [w.in_store_devices for w in result.windows if w.window_s == 86400]
    parts = [w.in_store_devices for w in result.windows if w.window_s == window_s]
    return DeviceCount(whole=sum(whole), per_window_max=max(parts, default=0), windows=len(parts))
