"""Track stitching on the floor: a person handed to a new track id is one visit.

A tracker that loses a person for a moment (an occlusion, a missed detection while
they run) often picks them up again under a new id. Counted per track, that person
is two visits, a line they crossed while unseen is crossed by neither piece, and
each piece's zone stays restart their entry hysteresis. Here such pieces are joined
when the floor says they are one person and nobody else:

* piece B starts after piece A ended, within ``stitch_max_gap_s`` (of seen time: the
  pauses of a resumed run do not count, ``edge.visits.pauses``);
* B's first position is within ``stitch_base_m + stitch_speed_mps * gap`` of A's
  last one (walking reach plus floor-position noise);
* the match is unambiguous: pieces are paired one-to-one by distance (an
  assignment, ``lap.lapjv``), and a pair stands only if no rival candidate of
  either piece is within ``stitch_ambiguity_ratio`` of its distance. Two people who
  vanish near each other are left apart rather than possibly swapped.

A track that jumped onto someone else while its person was hidden is first cut where
a new piece takes the person up (``edge.visits.swaps``, which builds on this rule).

Pairs chain (A -> B -> C). The decision about a pair needs only the pieces that
ended or started within ``stitch_max_gap_s`` of it, which is what lets the builder
make it live, once those pieces are known (``edge.visits.builder``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from edge.config.visits import VisitConfig
from edge.tracking.association import assign
from edge.visits.pauses import Pauses
from edge.visits.records import Visit

LIMIT_MARGIN_M = 1e-3  # the assignment's cost limit, above the costliest candidate


@dataclass(frozen=True, slots=True)
class StitchRule:
    """When a piece continues another (see the module docstring)."""

    max_gap_s: float
    base_m: float
    speed_mps: float
    ambiguity_ratio: float
    pauses: Pauses = field(default_factory=Pauses)  # the run's: not counted in a gap

    @classmethod
    def from_config(cls, config: VisitConfig, pauses: Pauses | None = None) -> StitchRule:
        return cls(config.stitch_max_gap_s, config.stitch_base_m, config.stitch_speed_mps,
                   config.stitch_ambiguity_ratio, pauses or Pauses())

    @property
    def enabled(self) -> bool:
        return self.max_gap_s > 0

    def candidates(
        self, pieces: Sequence[Visit], *, in_view: Sequence[bool] | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(candidate, distance)``, rows predecessors and columns successors: whether
        the successor could continue the predecessor (same camera, starting within
        ``max_gap_s`` of seen time after it vanished, within walking reach of the real
        time; a predecessor still ``in_view`` has not vanished), and how far it started
        from where it vanished."""
        end_t = np.array([p.end_t for p in pieces])
        start_t = np.array([p.start_t for p in pieces])
        end_xy = np.array([p.xy[-1] for p in pieces])
        start_xy = np.array([p.xy[0] for p in pieces])
        cameras = np.array([p.camera_id for p in pieces])
        same_camera = cameras[:, None] == cameras[None, :]
        gap = start_t[None, :] - end_t[:, None]
        seen_gap = self.pauses.seen(start_t)[None, :] - self.pauses.seen(end_t)[:, None]
        distance = np.hypot(*(start_xy[None, :, :] - end_xy[:, None, :]).transpose(2, 0, 1))
        reach = self.base_m + self.speed_mps * np.clip(gap, 0.0, None)
        candidate = (same_camera & (gap > 0) & (seen_gap <= self.max_gap_s)
                     & (distance <= reach))
        if in_view is not None:
            candidate[np.asarray(in_view, dtype=bool), :] = False
        return candidate, distance

    def links(
        self,
        pieces: Sequence[Visit],
        *,
        in_view: Sequence[bool] | None = None,
        settled: Sequence[bool] | None = None,
        continued: Sequence[bool] | None = None,
    ) -> dict[int, int]:
        """Index of a piece -> index of the piece that continues it (one-to-one).

        Args:
            pieces: pieces of tracks (any order, any cameras: only the same camera's join).
            in_view: pieces whose track is still in view: their end is not known yet,
                so they continue others but nothing continues them, and they are no rival.
            settled: pieces already written as visits: rivals of others, never joined.
            continued: pieces whose continuation is already known (a swap repair's
                heads): nothing else continues them, and they are no rival.
        """
        if not self.enabled or len(pieces) < 2:
            return {}
        candidate, distance = self.candidates(pieces, in_view=in_view)
        if continued is not None:
            candidate[np.asarray(continued, dtype=bool), :] = False
        if not candidate.any():
            return {}
        rows = np.flatnonzero(candidate.any(axis=1))
        cols = np.flatnonzero(candidate.any(axis=0))
        cost = np.where(candidate, distance, np.inf)[np.ix_(rows, cols)]
        # Every candidate is within reach: the limit only lets pieces go unmatched. Just
        # above the costliest candidate, not at it: lapjv prices a pair at the limit the
        # same as leaving both unmatched, and that tie dropped the costliest candidate of
        # some matrices and not others (so whether two pieces were joined hung on which
        # unrelated pieces a build had read).
        limit = float(np.max(cost[np.isfinite(cost)])) + LIMIT_MARGIN_M
        found: dict[int, int] = {}
        for r, c in assign(cost, limit):
            d = cost[r, c]
            if not np.isfinite(d):
                continue
            rivals = np.concatenate((np.delete(cost[r, :], c), np.delete(cost[:, c], r)))
            # floor noise is never zero: a rival 0.05 m off a 0.01 m match is as plausible
            if np.any(rivals <= self.ambiguity_ratio * max(float(d), 0.1 * self.base_m)):
                continue
            found[int(rows[r])] = int(cols[c])
        if settled is not None:
            found = {a: b for a, b in found.items() if not settled[a] and not settled[b]}
        return found


def chains(n: int, links: dict[int, int]) -> list[list[int]]:
    """The pieces ``0..n-1`` grouped into chains that follow ``links``, in order."""
    successors = set(links.values())
    out: list[list[int]] = []
    for head in range(n):
        if head in successors:
            continue
        chain = [head]
        while chain[-1] in links:
            chain.append(links[chain[-1]])
        out.append(chain)
    return out


def join(pieces: Sequence[Visit]) -> Visit:
    """One visit over a chain of pieces, under the first piece's track id."""
    if len(pieces) == 1:
        return pieces[0]
    first = pieces[0]
    return Visit(first.camera_id, first.run_id, first.track_id,
                 np.concatenate([p.t for p in pieces]),
                 np.concatenate([p.xy for p in pieces]))


def stitch(pieces: Sequence[Visit], rule: StitchRule) -> list[Visit]:
    """Finished pieces with every continuation joined to what it continues."""
    return [join([pieces[i] for i in chain])
            for chain in chains(len(pieces), rule.links(pieces))]
