"""Trajectories from other systems: a CSV of ``track_id,t,x,y`` rows.

``t`` is in seconds (any origin; epoch seconds if the visits are to be stored with
real times), ``x``/``y`` in metres in the site's floor frame. Rows of different
tracks may be interleaved; within a track, ``t`` must increase. Other columns are
ignored. The whole file is checked before anything is used: one bad row rejects
the file, with its line number. The file is UTF-8, with or without the byte-order
mark Excel writes.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edge.errors import DataFormatError

REQUIRED_COLUMNS = ("track_id", "t", "x", "y")
# A position farther than this outside the site's floor bounds is not on the floor:
# another frame or unit (millimetres, GPS degrees, pixels), or a broken value.
FLOOR_MARGIN_M = 100.0
# Track ids are stored as SQLite INTEGER, a signed 64-bit number.
TRACK_ID_RANGE = (-(2**63), 2**63 - 1)
Bounds = tuple[tuple[float, float], tuple[float, float]]


@dataclass(frozen=True, slots=True)
class ImportedTrack:
    """One track of an imported file: ``t`` ``(n,)`` seconds, ``xy`` ``(n, 2)`` metres."""

    track_id: int
    t: np.ndarray = field(repr=False)
    xy: np.ndarray = field(repr=False)


def read_trajectory_csv(
    path: str | Path, *, bounds: Bounds | None = None, margin_m: float = FLOOR_MARGIN_M
) -> list[ImportedTrack]:
    """Read and validate a trajectory CSV.

    Args:
        bounds: the site's ``floor.bounds``; a position more than ``margin_m`` outside
            them rejects the file.

    Raises:
        DataFormatError: unreadable file, missing columns, a non-numeric, NaN or
            infinite value, a track id that is not an integer or does not fit 64 bits,
            a position far off the floor, time not increasing within a track, or no
            rows at all. The message names the line.
    """
    path = Path(path)
    try:
        # utf-8-sig: Excel's "CSV UTF-8" starts with a byte-order mark, which would
        # otherwise become part of the first column's name.
        handle = path.open(newline="", encoding="utf-8-sig")
    except FileNotFoundError:
        raise DataFormatError(f"trajectory file {path} does not exist") from None
    except OSError as error:
        raise DataFormatError(f"cannot read trajectory file {path}: {error.strerror}") from None
    points: dict[int, list[tuple[float, float, float]]] = {}
    with handle:
        reader = csv.reader(handle)
        try:
            header = next(reader, None)
            if header is None:
                raise DataFormatError(f"{path}: empty file; expected a header track_id,t,x,y")
            names = [name.strip().lower() for name in header]
            missing = [c for c in REQUIRED_COLUMNS if c not in names]
            if missing:
                raise DataFormatError(
                    f"{path}:1: missing column(s) {', '.join(missing)}; the header must name "
                    f"track_id,t,x,y (got {','.join(header)})"
                )
            columns = [names.index(c) for c in REQUIRED_COLUMNS]
            for row in reader:
                line = reader.line_num
                if not row or all(not cell.strip() for cell in row):
                    continue
                track, t, x, y = _parse_row(path, line, row, columns)
                if bounds is not None:
                    _check_on_floor(path, line, x, y, bounds, margin_m)
                previous = points.setdefault(track, [])
                if previous and t <= previous[-1][0]:
                    raise DataFormatError(
                        f"{path}:{line}: time goes backwards (or repeats) in track {track}: "
                        f"t={t} after t={previous[-1][0]}; rows of a track must be in time order"
                    )
                previous.append((t, x, y))
        except UnicodeDecodeError as error:
            raise DataFormatError(f"{path}: not a text CSV file ({error.reason})") from None
        except csv.Error as error:
            raise DataFormatError(f"{path}:{reader.line_num}: not valid CSV: {error}") from None
    if not points:
        raise DataFormatError(f"{path}: no trajectory rows after the header")
    tracks = []
    for track_id, rows in points.items():
        array = np.asarray(rows, dtype=np.float64)
        tracks.append(ImportedTrack(track_id, array[:, 0], array[:, 1:3]))
    return tracks


def _parse_row(
    path: Path, line: int, row: list[str], columns: list[int]
) -> tuple[int, float, float, float]:
    if len(row) <= max(columns):
        raise DataFormatError(
            f"{path}:{line}: expected at least {max(columns) + 1} values, got {len(row)}"
        )
    cells = [row[i].strip() for i in columns]
    try:
        track = int(cells[0])
    except ValueError:
        raise DataFormatError(
            f"{path}:{line}: track_id must be an integer, got {cells[0]!r}"
        ) from None
    low, high = TRACK_ID_RANGE
    if not low <= track <= high:
        raise DataFormatError(
            f"{path}:{line}: track_id {cells[0]} does not fit a signed 64-bit integer "
            f"({low}..{high})"
        )
    values = []
    for name, cell in zip(REQUIRED_COLUMNS[1:], cells[1:], strict=True):
        try:
            value = float(cell)
        except ValueError:
            raise DataFormatError(f"{path}:{line}: {name} must be a number, got {cell!r}") from None
        if not math.isfinite(value):
            raise DataFormatError(f"{path}:{line}: {name} must be a finite number, got {cell!r}")
        values.append(value)
    return track, values[0], values[1], values[2]


def _check_on_floor(
    path: Path, line: int, x: float, y: float, bounds: Bounds, margin_m: float
) -> None:
    (x0, y0), (x1, y1) = bounds
    if x0 - margin_m <= x <= x1 + margin_m and y0 - margin_m <= y <= y1 + margin_m:
        return
    raise DataFormatError(
        f"{path}:{line}: position x={x:g}, y={y:g} is more than {margin_m:g} m outside the "
        f"site's floor.bounds [[{x0:g}, {y0:g}], [{x1:g}, {y1:g}]]; x and y must be metres "
        "in the site's floor frame"
    )
