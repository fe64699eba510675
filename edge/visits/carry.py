"""What the live visit builder carries from one build to the next about the pieces it holds.

The builder (``edge.visits.builder``) holds a piece of a track until it can be written:
while it is in view, and until every piece that could continue it or rival a join has
appeared and ended. It used to read every stored position since the start of the oldest
piece it held, so one associate at the till for two hours made every build, every few
seconds, re-read and re-analyse two hours of every track.

A build now reads the last ``2 x`` :func:`window_s` of its run (every track), and of a
piece it holds that started before that, only what the last build kept of it
(``visit_build_open``): its first and last raw positions, and what continues into it.

Why that gives the same visits. Whether a piece continues another (a stitch, or a cut
where a track jumped onto someone else, ``edge.visits.swaps``) depends only on the
pieces that end or start within ``stitch_max_gap_s`` of its start, on positions
``swap_heading_s`` before a jump, and on whether those pieces have vanished (known
``close_after_s`` after they did). So once a build has seen :func:`window_s` past a
piece's start, what continues into it is decided for good: later builds keep that
decision (:class:`edge.visits.swaps.Predecessor`) instead of making it again, and need
none of the positions around it. Every decision about a later start is still made, with
every position from :func:`window_s` before it. What needs all of a held piece's
positions is read back from ``track_points`` when it is needed:

* its visit, once it closes (once per visit);
* the staff rule while it is in view: once the rule fires for a piece, the answer of the
  last build (``staff_tracks_open``) stands, as the rule's signals only grow; so what is
  read back for it is a piece in view and not (yet) an associate's, at most
  ``staff_presence_s`` of positions.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import sqlite_utils

from edge.config.visits import VisitConfig
from edge.visits.records import Visit
from edge.visits.swaps import PieceKey, Predecessor

SLACK_S = 1.0  # beyond the sums of thresholds below, against rounding at the edges


def window_s(config: VisitConfig) -> float:
    """How long after a piece's start what continues into it is final, and how far
    back the evidence of such a decision reaches: a vanished piece is known
    ``close_after_s`` after it vanished; rivals end or start within ``stitch_max_gap_s``
    of the start, and a jump that cuts into it is at most that before it, with its
    heading measured over ``swap_heading_s`` before the jump."""
    gap = config.stitch_max_gap_s
    heading = config.swap_heading_s if config.swap_jump_speed_mps > 0 and gap > 0 else 0.0
    return config.close_after_s + 2 * gap + 2 * heading + SLACK_S


@dataclass(frozen=True, slots=True)
class HeldPiece:
    """A piece the builder holds for a later build, as it keeps it between builds.

    Attributes:
        camera_id, track_id: its track.
        start_t, start_xy: its first raw position; end_t, end_xy: its last one so far.
        predecessor: what continues into it (None: nothing).
    """

    camera_id: str
    track_id: int
    start_t: float
    start_xy: tuple[float, float]
    end_t: float
    end_xy: tuple[float, float]
    predecessor: Predecessor | None

    @property
    def key(self) -> PieceKey:
        return (self.camera_id, self.track_id, self.start_t)


def held_pieces(pieces: Sequence[Visit], held: Iterable[int], links: dict[int, int],
                heads: set[int]) -> list[HeldPiece]:
    """The held pieces ``held`` (indices into the cut pieces ``pieces``) as kept, with
    their predecessors by ``links``; ``heads`` are the pieces that are a cut's head."""
    before = {b: a for a, b in links.items()}
    out = []
    for i in held:
        piece = pieces[i]
        a = before.get(i)
        predecessor = None if a is None else Predecessor(
            "cut" if a in heads else "stitch", pieces[a].track_id, pieces[a].start_t,
            pieces[a].end_t)
        out.append(HeldPiece(piece.camera_id, piece.track_id, piece.start_t,
                             (float(piece.xy[0, 0]), float(piece.xy[0, 1])), piece.end_t,
                             (float(piece.xy[-1, 0]), float(piece.xy[-1, 1])), predecessor))
    return out


def read_held(db: sqlite_utils.Database, run_id: int) -> list[HeldPiece]:
    """The pieces the run's last build held."""
    rows = db.execute(
        "select camera_id, track_id, start_t, start_x, start_y, end_t, end_x, end_y, "
        "pred_kind, pred_track_id, pred_start_t, pred_end_t from visit_build_open "
        "where run_id = ? order by camera_id, track_id, start_t", [run_id]).fetchall()
    return [HeldPiece(camera, track, start, (sx, sy), end, (ex, ey),
                      None if kind is None else Predecessor(kind, p_track, p_start, p_end))
            for (camera, track, start, sx, sy, end, ex, ey, kind, p_track, p_start,
                 p_end) in rows]


def replace_held(db: sqlite_utils.Database, run_id: int, held: Sequence[HeldPiece]) -> None:
    """Keep ``held`` as the run's held pieces (call inside ``db.atomic()``)."""
    db.execute("delete from visit_build_open where run_id = ?", [run_id])
    if not held:
        return
    db.table("visit_build_open").insert_all(
        {"run_id": run_id, "camera_id": h.camera_id, "track_id": h.track_id,
         "start_t": h.start_t, "start_x": h.start_xy[0], "start_y": h.start_xy[1],
         "end_t": h.end_t, "end_x": h.end_xy[0], "end_y": h.end_xy[1],
         "pred_kind": None if h.predecessor is None else h.predecessor.kind,
         "pred_track_id": None if h.predecessor is None else h.predecessor.track_id,
         "pred_start_t": None if h.predecessor is None else h.predecessor.start_t,
         "pred_end_t": None if h.predecessor is None else h.predecessor.end_t}
        for h in held)


def decided(held: Iterable[HeldPiece], before: float) -> dict[PieceKey, Predecessor | None]:
    """What continues into each held piece that started before ``before``: final."""
    return {h.key: h.predecessor for h in held if h.start_t < before}


@dataclass(frozen=True, slots=True)
class Carried:
    """What is kept, before the read window, of a held raw piece (a track's positions
    with no gap of ``close_after_s``) that started before it.

    Attributes:
        t, xy: its first and last raw positions, and those on either side of each cut
            the last build made in it, before the window (``(n,)``, ``(n, 2)``).
        goes_on: it goes on into the window (the track's first positions read are its).
    """

    t: np.ndarray
    xy: np.ndarray
    goes_on: bool


def carried(held: Iterable[HeldPiece], before: float,
            close_after_s: float) -> dict[tuple[str, int], list[Carried]]:
    """Per track, in time order, its held raw pieces that started before ``before``.

    The held pieces of a raw piece that the last build cut apart follow each other
    within ``close_after_s`` (one sample apart); raw pieces of a track are further apart.
    """
    by_track: dict[tuple[str, int], list[HeldPiece]] = {}
    for h in sorted(held, key=lambda h: h.key):
        by_track.setdefault((h.camera_id, h.track_id), []).append(h)
    out: dict[tuple[str, int], list[Carried]] = {}
    for key, pieces in by_track.items():
        groups: list[list[HeldPiece]] = []
        for h in pieces:
            if groups and h.start_t - groups[-1][-1].end_t <= close_after_s:
                groups[-1].append(h)
            else:
                groups.append([h])
        for group in groups:
            if group[0].start_t >= before:
                continue
            samples = {t: xy for h in group for t, xy in ((h.start_t, h.start_xy),
                                                          (h.end_t, h.end_xy)) if t < before}
            times = sorted(samples)
            out.setdefault(key, []).append(Carried(
                np.array(times, dtype=np.float64),
                np.array([samples[t] for t in times], dtype=np.float64).reshape(-1, 2),
                group[-1].end_t >= before))
    return out


def with_carried(camera_id: str, run_id: int, track_id: int, kept: Sequence[Carried],
                 found: Sequence[Visit]) -> list[Visit]:
    """A track's raw pieces: those ``kept`` from before the window, the one that goes on
    joined to the first piece ``found`` in the window, then the rest found."""
    out: list[Visit] = []
    rest = list(found)
    for piece in kept:
        if piece.goes_on and rest:
            first = rest.pop(0)
            out.append(Visit(camera_id, run_id, track_id, np.concatenate([piece.t, first.t]),
                             np.concatenate([piece.xy, first.xy])))
        else:
            out.append(Visit(camera_id, run_id, track_id, piece.t, piece.xy))
    return out + rest

