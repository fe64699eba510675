"""From estimated devices to people: one factor per site.

Wi-Fi sees a sample of people (not everyone carries a phone with Wi-Fi on; some
carry two; randomization leaves some devices split or merged), so the product
publishes ``occupancy_estimate = in_store_devices x people_per_device``. The factor
is fitted per site, by least squares through the origin, against

- the cameras' people count for the same windows, when cameras run
  (:func:`camera_people`, from ``track_points``), or
- manual counts (a CSV of ``window_start,people``), for sites without cameras.

Without either, the configured default (1.0) applies.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import sqlite_utils

from edge import figures
from edge.errors import DataFormatError, EdgeError
from edge.storage.database import where


class CalibrationDataError(EdgeError):
    """Too few (or degenerate) paired windows to fit a people-per-device factor."""


@dataclass(frozen=True, slots=True)
class PeopleFit:
    """A fitted factor and how well it explains the reference counts."""

    people_per_device: float
    windows: int
    pearson_r: float | None        # None when either series is constant
    mean_abs_error: float          # people per window, with the fitted factor


def pearson(xs: Sequence[float], ys: Sequence[float]) -> float | None:
    """Pearson correlation, or None when undefined (fewer than 2 points or no variance)."""
    n = len(xs)
    if n != len(ys):
        raise ValueError(f"series differ in length: {n} and {len(ys)}")
    if n < 2:
        return None
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    syy = sum((y - my) ** 2 for y in ys)
    if sxx == 0 or syy == 0:
        return None
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=False)) / math.sqrt(sxx * syy)


def fit_people_per_device(
    devices: Sequence[float], people: Sequence[float], *, min_windows: int = 4
) -> PeopleFit:
    """Least-squares factor ``k`` minimising ``sum((people - k * devices)^2)``.

    Raises:
        CalibrationDataError: fewer than ``min_windows`` pairs, or no devices at all.
    """
    if len(devices) != len(people):
        raise ValueError(f"series differ in length: {len(devices)} and {len(people)}")
    if len(devices) < min_windows:
        raise CalibrationDataError(
            f"need at least {min_windows} windows with both Wi-Fi and reference counts, "
            f"found {len(devices)}; capture longer while cameras (or a manual count) run"
        )
    sxx = sum(d * d for d in devices)
    if sxx == 0:
        raise CalibrationDataError(
            "Wi-Fi saw no in-store device in any paired window; check the RSSI gate "
            "(wifi.rssi_gate_dbm) and that the sensor is inside the store"
        )
    factor = sum(d * p for d, p in zip(devices, people, strict=False)) / sxx
    error = sum(abs(p - factor * d) for d, p in zip(devices, people, strict=False)) / len(devices)
    return PeopleFit(round(factor, 4), len(devices), pearson(devices, people), error)


def wifi_devices(
    db: sqlite_utils.Database, window_s: int, sensor: str | None = None
) -> dict[float, int]:
    """In-store devices in each stored window of ``window_s`` (by its start), as the
    status page and the aggregates count them: the largest sensor's count
    (:func:`edge.figures.wifi_sub_windows`; sensors in one store hear the same phones,
    so adding them up would count a phone once per sensor). With ``sensor``, that
    sensor's windows only."""
    condition, params = where(("window_s = ?", window_s), ("sensor = ?", sensor))
    rows = db.execute(
        f"select {figures.WIFI_ROW_COLUMNS} from wifi_windows where {condition} "
        "order by window_start", params,
    ).fetchall()
    if not rows:
        return {}
    _, subs = figures.wifi_sub_windows(rows)
    return {float(sub.start): sub.in_store_devices for sub in subs}


def camera_people(
    db: sqlite_utils.Database, window_s: int, starts: Sequence[float]
) -> dict[float, float]:
    """Average number of people the cameras tracked in each window (by its start).

    People per second = distinct (run, camera, track) with a point in that second;
    seconds inside a run's span with no point count as nobody. Windows no run
    covers are left out.
    """
    if "track_points" not in db.table_names():
        return {}
    spans = [
        (row[0], row[1])
        for row in db.execute("select min(t), max(t) from track_points group by run_id").fetchall()
        if row[0] is not None
    ]
    result: dict[float, float] = {}
    for start in starts:
        end = start + window_s
        covered = sum(max(0.0, min(end, hi) - max(start, lo)) for lo, hi in spans)
        if covered <= 0:
            continue
        row = db.execute(
            "select count(*) from (select distinct cast(t as integer) as second, run_id, "
            "camera_id, track_id from track_points where t >= ? and t < ?)",
            [start, end],
        ).fetchone()
        result[start] = row[0] / max(covered, 1.0)
    return result


def manual_counts(path: str | Path) -> dict[float, float]:
    """``window_start,people`` rows (ISO 8601 with zone, or epoch seconds) from a CSV.

    Raises:
        DataFormatError: missing file, missing columns or unreadable values.
    """
    path = Path(path)
    try:
        with path.open(newline="") as handle:
            reader = csv.DictReader(handle)
            if not reader.fieldnames or not {"window_start", "people"} <= set(reader.fieldnames):
                raise DataFormatError(
                    f"{path}: expected a CSV header with window_start and people, "
                    f"got {reader.fieldnames}"
                )
            counts = {}
            for line, row in enumerate(reader, 2):
                moment = _moment(row["window_start"], path, line)
                counts[moment] = _number(row["people"], path, line)
    except FileNotFoundError:
        raise DataFormatError(f"counts file {path} does not exist") from None
    return counts


def _moment(value: str, path: Path, line: int) -> float:
    try:
        return float(value)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise DataFormatError(f"{path}:{line}: window_start {value!r} is not ISO 8601") from None
    if moment.tzinfo is None:
        raise DataFormatError(f"{path}:{line}: window_start {value!r} needs a time zone")
    return moment.timestamp()


def _number(value: str, path: Path, line: int) -> float:
    try:
        number = float(value)
    except ValueError:
        raise DataFormatError(f"{path}:{line}: people {value!r} is not a number") from None
    if number < 0 or math.isnan(number):
        raise DataFormatError(f"{path}:{line}: people cannot be {value}")
    return number
