"""MOTChallenge text files: detections in, tracks out, ground truth for evaluation.

Rows are ``frame,id,left,top,width,height,conf,x,y,z`` with frames numbered from 1.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from edge.errors import DataFormatError, DataWarning
from edge.records import Detections, FloorTracks, FusedTracks

MOT_COLUMNS = 10


class LineSink(Protocol):
    """Where rows are written: a text file, or :class:`edge.outputs.OutputFile`."""

    def writelines(self, lines: Iterable[str], /) -> None: ...


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
            if values[0] != int(values[0]):
                raise DataFormatError(
                    f"{path}:{number}: frame numbers are whole numbers (1, 2, ...), got {parts[0]}")
            if values[0] < 1:
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
                      "frame, box and score) were dropped", DataWarning, stacklevel=2)
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


def mot_array(
    frame: Any, track_id: Any, boxes: Any, confidence: Any, *, frame_offset: int = 0,
    corners: bool = True,
) -> np.ndarray:
    """``(n, 10)`` MOTChallenge rows (``x, y, z`` -1) of ``n`` boxes: the one place a
    MOT row is built. ``frame`` and ``track_id`` are one value each or one per box
    (a detection's id is -1); ``boxes`` is ``(n, 4)``: corners ``x1, y1, x2, y2``
    (turned into left, top, width, height), or with ``corners=False`` already left,
    top, width, height; ``frame_offset`` is added to the frames (1: 0-based indices to
    MOTChallenge frames)."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    rows = np.full((len(boxes), MOT_COLUMNS), -1.0)
    rows[:, 0] = np.asarray(frame, dtype=np.float64) + frame_offset
    rows[:, 1] = track_id
    rows[:, 2:6] = boxes
    if corners:
        rows[:, 4:6] = boxes[:, 2:] - boxes[:, :2]
    rows[:, 6] = confidence
    return rows


def mot_lines(rows: np.ndarray, *, box_decimals: int = 2,
              score_decimals: int = 4) -> Iterator[str]:
    """The text lines of MOTChallenge ``rows`` (:func:`mot_array`): the one MOT writer."""
    b, s = box_decimals, score_decimals
    for row in np.asarray(rows, dtype=np.float64).reshape(-1, MOT_COLUMNS):
        frame, track, left, top, width, height, score, x, y, z = row.tolist()
        yield (f"{int(frame)},{int(track)},{left:.{b}f},{top:.{b}f},{width:.{b}f},"
               f"{height:.{b}f},{score:.{s}f},{int(x)},{int(y)},{int(z)}\n")


def save_mot(path: str | Path, rows: np.ndarray, *, box_decimals: int = 2,
             score_decimals: int = 4) -> None:
    """Write MOTChallenge ``rows`` to ``path`` (a det.txt or tracks file)."""
    with Path(path).open("w") as stream:
        stream.writelines(mot_lines(rows, box_decimals=box_decimals,
                                    score_decimals=score_decimals))


def write_mot(stream: LineSink, floor: FloorTracks) -> None:
    """Append the MOTChallenge lines of one frame's tracks (frame numbered from 1)."""
    tracks = floor.tracks
    stream.writelines(mot_lines(mot_array(floor.frame_index, tracks.tracker_id, tracks.xyxy,
                                          tracks.confidence, frame_offset=1)))


def write_floor_rows(stream: LineSink, tracks: FloorTracks | FusedTracks) -> None:
    """``frame,track_id,x,y`` rows (frames from 1, metres) of one frame's floor tracks:
    one camera's, or the store-wide fused ones."""
    ids = tracks.track_id if isinstance(tracks, FusedTracks) else tracks.tracks.tracker_id
    frame = tracks.frame_index + 1
    stream.writelines(f"{frame},{int(track_id)},{x:.3f},{y:.3f}\n"
                      for track_id, (x, y) in zip(ids, tracks.xy, strict=True))
