"""MOTChallenge text files: detections in, tracks out, ground truth for evaluation.

Rows are ``frame,id,left,top,width,height,conf,x,y,z`` with frames numbered from 1.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TextIO

import numpy as np

from edge.errors import DataFormatError
from edge.records import Detections, FloorTracks, FusedTracks

MOT_COLUMNS = 10


def read_mot(path: str | Path, *, min_columns: int = 7) -> np.ndarray:
    """Read a MOTChallenge file as an ``(n, 10)`` float array, with precise errors."""
    return read_rows(path, min_columns=min_columns, keep=MOT_COLUMNS,
                     layout="frame,id,left,top,width,height,conf,...")


def read_rows(
    path: str | Path, *, min_columns: int, keep: int, layout: str, allow_empty: bool = False
) -> np.ndarray:
    """Comma-separated numeric rows whose first column is a frame number from 1 (the
    MOTChallenge files, the floor tracks ``frame,id,x,y``), as an ``(n, keep)`` array:
    extra columns dropped, missing ones -1. Errors name the file, line and what was
    expected (``layout``).

    Raises:
        DataFormatError: no such file, a short, non-numeric or non-finite row, a bad
            frame number, or (unless ``allow_empty``) no rows at all.
    """
    path = Path(path)
    if not path.is_file():
        raise DataFormatError(f"{path} does not exist")
    rows = []
    with path.open() as stream:
        for number, line in enumerate(stream, start=1):
            line = line.strip()
            if not line:
                continue
            parts = line.split(",")
            if len(parts) < min_columns:
                raise DataFormatError(
                    f"{path}:{number}: expected at least {min_columns} comma-separated columns "
                    f"({layout}), got {len(parts)}"
                )
            try:
                values = [float(p) for p in parts[:keep]]
            except ValueError:
                raise DataFormatError(f"{path}:{number}: non-numeric value in {line!r}") from None
            if not all(np.isfinite(values)):
                raise DataFormatError(f"{path}:{number}: NaN or infinite value in {line!r}")
            if values[0] < 1 or values[0] != int(values[0]):
                raise DataFormatError(f"{path}:{number}: frame numbers start at 1, got {parts[0]}")
            values += [-1.0] * (keep - len(values))
            rows.append(values)
    if not rows and not allow_empty:
        raise DataFormatError(f"{path} holds no rows")
    return np.array(rows, dtype=np.float64).reshape(-1, keep)


def detections_by_frame(path: str | Path) -> Iterator[tuple[int, Detections]]:
    """Per 0-based frame index, the detections of a MOTChallenge ``det.txt``.

    Frames without detections are yielded empty so trackers see time pass. Rows may
    come in any order (they are sorted by frame, keeping the file's order within a
    frame). A row repeated exactly (same frame, box and score) is a writer's mistake,
    not a second person: it is dropped, and a warning says how many were.
    """
    rows = read_mot(path)
    _, first = np.unique(rows[:, [0, 2, 3, 4, 5, 6]], axis=0, return_index=True)
    if len(first) < len(rows):
        warnings.warn(f"{path}: {len(rows) - len(first)} duplicate detection rows (same "
                      "frame, box and score) were dropped", UserWarning, stacklevel=2)
        rows = rows[np.sort(first)]
    frames = rows[:, 0].astype(np.int64)
    last = int(frames.max())
    order = np.argsort(frames, kind="stable")
    rows, frames = rows[order], frames[order]
    bounds = np.searchsorted(frames, np.arange(1, last + 2))
    for frame in range(1, last + 1):
        chunk = rows[bounds[frame - 1] : bounds[frame]]
        xyxy = chunk[:, 2:6].copy()
        xyxy[:, 2:] += xyxy[:, :2]
        confidence = chunk[:, 6].copy()
        if len(confidence) and confidence.max() > 1.0:  # some det.txt files hold raw scores
            confidence = 1.0 / (1.0 + np.exp(-confidence))
        yield frame - 1, Detections(xyxy.astype(np.float32), confidence.astype(np.float32))


def mot_rows(floor: FloorTracks) -> Iterable[str]:
    """MOTChallenge lines for one frame's tracks (frame numbered from 1)."""
    tracks = floor.tracks
    for i in range(len(tracks)):
        x1, y1, x2, y2 = (float(v) for v in tracks.xyxy[i])
        yield (
            f"{floor.frame_index + 1},{int(tracks.tracker_id[i])},{x1:.2f},{y1:.2f},"
            f"{x2 - x1:.2f},{y2 - y1:.2f},{float(tracks.confidence[i]):.4f},-1,-1,-1\n"
        )


def write_mot(stream: TextIO, floor: FloorTracks) -> None:
    stream.writelines(mot_rows(floor))


def write_floor_rows(stream: TextIO, tracks: FloorTracks | FusedTracks) -> None:
    """``frame,track_id,x,y`` rows (frames from 1, metres) of one frame's floor tracks:
    one camera's, or the store-wide fused ones."""
    ids = tracks.track_id if isinstance(tracks, FusedTracks) else tracks.tracks.tracker_id
    frame = tracks.frame_index + 1
    for track_id, (x, y) in zip(ids, tracks.xy, strict=True):
        stream.write(f"{frame},{int(track_id)},{x:.3f},{y:.3f}\n")
