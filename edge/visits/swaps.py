"""Swap repair on the floor: a track that jumps onto someone else is cut there.

A tracker that loses a person behind someone else often hands their track to the
other person: the track's floor position jumps (PETS09, frames 148-160: person 16,
walking north at 1.65 m/s, is hidden by person 15 stepping out from behind a lamp
post; the track takes person 15's box, 0.86 m away, and person 16 comes back 1.6 s
later under a new id). Stitching (``edge.visits.stitch``) cannot join that new piece:
nothing vanished, the old track goes on with the wrong person.

A jump alone is no reason to cut: raw floor positions jump (feet hidden, a box
around the visible half) far more often than people change (178 jumps over 3.5 m/s
on that recording, almost all on one person). A track is cut only where the jump has
a consistent alternative:

* the track's position moves faster than ``swap_jump_speed_mps`` between two samples;
* within ``stitch_max_gap_s`` after the jump, a new piece starts near where the track
  was heading before it: its first position is within ``swap_base_m +
  stitch_speed_mps * gap`` of the track's last position before the jump carried on
  at its velocity over the ``swap_heading_s`` before it (constant velocity). Both
  sides are seen for at least ``swap_heading_s``: the track before the jump (else it
  has no heading), the new piece after its start (else it is a stray box);
* the track itself is not there: when the new piece starts, the track is at least
  ``stitch_ambiguity_ratio`` times as far from that extrapolation as the new piece;
* nothing else claims the new piece: no other new piece is within the ratio of the
  extrapolation, no other jump's extrapolation lands on it within the ratio, and no
  track that vanished could continue it (a stitch candidate).

The head before the jump then continues into the new piece; the tail after it is a
piece of its own, which stitching may join to a piece that vanished near its start.
Every threshold is in seconds and metres, so the rule reads the same at any frame rate.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from edge.config.visits import VisitConfig
from edge.visits.pauses import Pauses
from edge.visits.records import Visit
from edge.visits.stitch import StitchRule, chains, join

log = logging.getLogger(__name__)

PieceKey = tuple[str, int, float]  # (camera_id, track_id, start_t): a piece of a run


def piece_key(piece: Visit) -> PieceKey:
    """How a piece is named from one build to the next: its camera, track and start."""
    return (piece.camera_id, piece.track_id, piece.start_t)


@dataclass(frozen=True, slots=True)
class Predecessor:
    """What continues into a piece, as an earlier call of :func:`repair` decided it: the
    piece of the same camera and track ``track_id`` that started at ``start_t`` and whose
    last sample is at ``end_t``, either joined by stitching (``stitch``: it vanished and the
    piece took its person up) or the head of a cut (``cut``: that track was cut after its
    sample at ``end_t``, where it jumped onto someone else)."""

    kind: Literal["stitch", "cut"]
    track_id: int
    start_t: float
    end_t: float


@dataclass(frozen=True, slots=True)
class Cut:
    """Piece ``piece`` is cut after its sample ``after``; the head continues into
    piece ``successor``, the samples after ``after`` become a piece of their own."""

    piece: int
    after: int
    successor: int


@dataclass(frozen=True, slots=True)
class SwapRule:
    """Where a track that jumped onto someone else is cut (see the module docstring)."""

    jump_speed_mps: float
    heading_s: float
    base_m: float
    stitch: StitchRule  # its gap, walking speed and ambiguity ratio, and the joins after

    @classmethod
    def from_config(cls, config: VisitConfig, pauses: Pauses | None = None) -> SwapRule:
        """The rule of ``config``; ``pauses``: the run's (stitching does not count them)."""
        return cls(config.swap_jump_speed_mps, config.swap_heading_s, config.swap_base_m,
                   StitchRule.from_config(config, pauses))

    @property
    def enabled(self) -> bool:
        return self.jump_speed_mps > 0 and self.stitch.enabled

    def cuts(
        self,
        pieces: Sequence[Visit],
        *,
        in_view: Sequence[bool] | None = None,
        settled: Sequence[bool] | None = None,
    ) -> list[Cut]:
        """The cuts to make, at most one per new piece, in no particular order.

        Args:
            pieces: pieces of tracks, not smoothed (any order, any cameras).
            in_view: pieces whose track is still in view: they may be cut (the head's
                end is known), but they have not vanished, so they are no stitch rival.
            settled: pieces already written as visits: never cut nor continued, but
                they stay rivals.
        """
        n = len(pieces)
        if not self.enabled or n < 2:
            return []
        frozen = np.zeros(n, bool) if settled is None else np.asarray(settled, bool)
        live = np.zeros(n, bool) if in_view is None else np.asarray(in_view, bool)
        start_t = np.array([p.start_t for p in pieces])
        start_xy = np.array([p.xy[0] for p in pieces])
        duration = np.array([p.duration_s for p in pieces])
        cameras = np.array([p.camera_id for p in pieces])
        claimed = self._stitch_claimed(pieces, live)
        # (piece, jump sample, successor, distance to the extrapolation)
        found: list[tuple[int, int, int, float]] = []
        claims: dict[int, dict[int, float]] = {}  # successor -> piece -> closest extrapolation
        for i, piece in enumerate(pieces):
            if frozen[i] or len(piece) < 2:
                continue
            step = np.hypot(*np.diff(piece.xy, axis=0).T) / np.diff(piece.t)
            best: dict[int, tuple[int, float]] = {}
            for k in map(int, np.flatnonzero(step > self.jump_speed_mps)):
                t_jump = float(piece.t[k])
                if t_jump - piece.start_t < self.heading_s:
                    continue  # no heading to extrapolate yet
                gap = start_t - t_jump
                near = np.flatnonzero((gap > 0) & (gap <= self.stitch.max_gap_s)
                                      & (cameras == piece.camera_id))
                near = near[(near != i) & (duration[near] >= self.heading_s)]
                if len(near) == 0:
                    continue
                heading = self._velocity(piece, k)
                predicted = piece.xy[k] + heading * gap[near, None]
                distance = np.hypot(*(start_xy[near] - predicted).T)
                inside = distance <= self.base_m + self.stitch.speed_mps * gap[near]
                for j, d in zip(near[inside], distance[inside], strict=True):
                    mine = claims.setdefault(int(j), {})
                    mine[i] = min(mine.get(i, np.inf), float(d))
                if not inside.any():
                    continue
                pick = int(np.argmin(np.where(inside, distance, np.inf)))
                j, d = int(near[pick]), float(distance[pick])
                floor = max(d, 0.1 * self.base_m)  # floor noise is never zero
                if np.any(np.delete(distance, pick) <= self.stitch.ambiguity_ratio * floor):
                    continue  # two new pieces where the person was heading
                own = _position_at(piece, start_t[j], after=k)
                own_d = float(np.hypot(*(own - predicted[pick])))
                if own_d <= self.stitch.ambiguity_ratio * floor:
                    continue  # the track itself is (back) where the person was heading
                if frozen[j] or claimed[j, i]:
                    continue
                if j not in best or d < best[j][1]:
                    best[j] = (k, d)
            found += [(i, after, j, d) for j, (after, d) in best.items()]
        out: list[Cut] = []
        for i, k, j, d in found:
            floor = max(d, 0.1 * self.base_m)
            rivals = [r for other, r in claims[j].items() if other != i]
            if any(r <= self.stitch.ambiguity_ratio * floor for r in rivals):
                continue  # another track's jump lands there too
            out.append(Cut(i, k, j))
        return out

    def _velocity(self, piece: Visit, k: int) -> np.ndarray:
        """Velocity (m/s) over the ``heading_s`` before sample ``k``; zero with one sample."""
        first = int(np.searchsorted(piece.t, piece.t[k] - self.heading_s))
        span = float(piece.t[k] - piece.t[first])
        if span <= 0:
            return np.zeros(2)
        return np.asarray((piece.xy[k] - piece.xy[first]) / span)

    def _stitch_claimed(self, pieces: Sequence[Visit], live: np.ndarray) -> np.ndarray:
        """``[j, i]``: piece j could continue a vanished piece other than i (stitching's
        reach), so a cut of piece i must not take it."""
        candidate = self.stitch.candidates(pieces, in_view=live.tolist())[0].T  # rows: successors
        others = candidate.sum(axis=1)[:, None] - candidate
        return np.asarray(others > 0)


def _position_at(piece: Visit, t: float, *, after: int) -> np.ndarray:
    """The piece's position at ``t`` (interpolated), from its samples after ``after``;
    its last position if it ended before ``t``."""
    tail_t, tail_xy = piece.t[after + 1:], piece.xy[after + 1:]
    if t >= tail_t[-1]:
        return np.asarray(tail_xy[-1])
    return np.array([np.interp(t, tail_t, tail_xy[:, 0]), np.interp(t, tail_t, tail_xy[:, 1])])


def split(pieces: Sequence[Visit], cuts: Sequence[Cut]) -> tuple[list[Visit], list[int],
                                                                   dict[int, int]]:
    """Pieces cut where ``cuts`` say: (the new pieces, the index of the piece each came
    from, new index of a head -> new index of the piece that continues it)."""
    at: dict[int, list[Cut]] = {}
    for cut in cuts:
        at.setdefault(cut.piece, []).append(cut)
    out: list[Visit] = []
    origin: list[int] = []
    first_of: dict[int, int] = {}  # old index -> new index of its first part
    heads: list[tuple[int, int]] = []  # (new index of a head, old index of its successor)
    for i, piece in enumerate(pieces):
        first_of[i] = len(out)
        start = 0
        for cut in sorted(at.get(i, []), key=lambda c: c.after):
            heads.append((len(out), cut.successor))
            out.append(Visit(piece.camera_id, piece.run_id, piece.track_id,
                             piece.t[start:cut.after + 1], piece.xy[start:cut.after + 1]))
            origin.append(i)
            start = cut.after + 1
        out.append(Visit(piece.camera_id, piece.run_id, piece.track_id, piece.t[start:],
                         piece.xy[start:]) if start else piece)
        origin.append(i)
    return out, origin, {head: first_of[successor] for head, successor in heads}


def repair(
    pieces: Sequence[Visit],
    rule: SwapRule,
    *,
    in_view: Sequence[bool] | None = None,
    settled: Sequence[bool] | None = None,
    decided: Mapping[PieceKey, Predecessor | None] | None = None,
) -> tuple[list[Visit], list[int], dict[int, int]]:
    """Pieces cut where a track jumped onto someone else, then linked: (the pieces, the
    index of the piece each came from, links as :meth:`StitchRule.links`).
    ``in_view`` and ``settled`` as there, per piece given.

    ``decided``: pieces (by :func:`piece_key`) whose predecessor an earlier call decided
    for good (``edge.visits.carry``: the live builder no longer reads the positions
    around their start). Nothing new is cut or stitched into them; each keeps its
    predecessor, or none, and a cut that made one is made again at the same sample.
    """
    decided = decided or {}
    kept_cuts = _decided_cuts(pieces, decided)
    at = {(c.piece, c.after) for c in kept_cuts}
    cuts = [c for c in rule.cuts(pieces, in_view=in_view, settled=settled)
            if piece_key(pieces[c.successor]) not in decided and (c.piece, c.after) not in at]
    cut, origin, forced = split(pieces, cuts + kept_cuts)
    heads = [i in forced for i in range(len(cut))]
    cut_in_view = None if in_view is None else [
        bool(in_view[o]) and not head for o, head in zip(origin, heads, strict=True)]
    cut_settled = None if settled is None else [bool(settled[o]) for o in origin]
    links = rule.stitch.links(cut, in_view=cut_in_view, settled=cut_settled, continued=heads)
    taken = set(forced.values())
    kept = _decided_stitches(cut, decided, forced)
    links = {a: b for a, b in links.items()
             if b not in taken and a not in kept and piece_key(cut[b]) not in decided}
    links.update(kept)
    links.update(forced)
    return cut, origin, links


def _decided_cuts(pieces: Sequence[Visit],
                  decided: Mapping[PieceKey, Predecessor | None]) -> list[Cut]:
    """The cuts ``decided`` keeps: each piece whose predecessor is a cut's head gets it
    back, cut after the same sample."""
    out = []
    for j, piece in enumerate(pieces):
        before = decided.get(piece_key(piece))
        if before is None or before.kind != "cut":
            continue
        found = None
        for i, other in enumerate(pieces):
            if (other.camera_id == piece.camera_id and other.track_id == before.track_id
                    and other.start_t <= before.end_t < other.end_t):
                after = int(np.searchsorted(other.t, before.end_t))
                found = Cut(i, after, j) if other.t[after] == before.end_t else None
                break
        if found is None:
            log.debug("the cut into %s is gone: left uncut", piece_key(piece))
        else:
            out.append(found)
    return out


def _decided_stitches(cut: Sequence[Visit], decided: Mapping[PieceKey, Predecessor | None],
                      forced: dict[int, int]) -> dict[int, int]:
    """The stitches ``decided`` keeps, as links between the cut pieces."""
    index = {piece_key(piece): i for i, piece in enumerate(cut)}
    out: dict[int, int] = {}
    for b, piece in enumerate(cut):
        before = decided.get(piece_key(piece))
        if before is None or before.kind != "stitch":
            continue
        a = index.get((piece.camera_id, before.track_id, before.start_t))
        if a is None or a in forced or cut[a].end_t != before.end_t:
            log.debug("the piece stitched into %s is gone: left apart", piece_key(piece))
            continue
        out[a] = b
    return out


def repaired(pieces: Sequence[Visit], rule: SwapRule) -> list[Visit]:
    """Finished pieces, cut where a track jumped onto someone else, with every
    continuation joined to what it continues."""
    cut, _, links = repair(pieces, rule)
    return [join([cut[i] for i in chain]) for chain in chains(len(cut), links)]
