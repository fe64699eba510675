"""Trajectories from other systems: a CSV of ``track_id,t,x,y`` rows.

``t`` is in seconds (any origin; epoch seconds if the visits are to be stored with
real times), ``x``/``y`` in metres in the site's floor frame. Rows of different
tracks may be interleaved; within a track, ``t`` must increase. Other columns are
ignored. The whole file is checked before anything is used: one bad row rejects
the file, with its line number.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edge.errors import DataFormatError

REQUIRED_COLUMNS = ("track_id", "t", "x", "y")


@dataclass(frozen=True, slots=True)
class ImportedTrack:
    """One track of an imported file: ``t`` ``(n,)`` seconds, ``xy`` ``(n, 2)`` metres."""

    track_id: int
    t: np.ndarray = field(repr=False)
    xy: np.ndarray = field(repr=False)


def read_trajectory_csv(path: str | Path) -> list[ImportedTrack]:
    """Read and validate a trajectory CSV.

    Raises:
        DataFormatError: unreadable file, missing columns, a non-numeric, NaN or
            infinite value, a non-integer track id, time not increasing within a
            track, or no rows at all. The message names the line.
    """
    path = Path(path)
    try:
        handle = path.open(newline="")
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
