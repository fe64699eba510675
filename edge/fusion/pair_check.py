"""The calibration check of every pair of cameras that see the same floor.

Two cameras whose calibrations disagree place one person at two places. While the two
places are within the association gate the fusion still makes one person of them, and
how far apart they were measures the disagreement (the *matched distance*). Beyond
the gate the person becomes two people, one per camera, counted twice, and the
matched distance, taken over the people still matched, *shrinks* as the error grows:
WILDTRACK's cvlab1 + idiap2 with idiap2 moved 1.5 m read 1.17 m (every other person
counted twice); moved 6 m, 1.46 m. So the check also counts, per pair, how many of the
people inside both cameras' footprints (where both should see them) only one of the two
saw: the *unmatched share*. Occlusion and missed boxes leave some unmatched on any
site; a calibration error leaves most of them.

Per pair and sampled instant (every ``PAIR_EVERY``, at which both cameras sent a frame),
each confirmed person that either camera gave a sighting to, where that sighting lies
``OVERLAP_MARGIN_M`` inside both footprints, is one sample: matched (both cameras gave
them one) or not. The last ``OVERLAP_SAMPLES`` samples of a pair give its share. A pair
*disagrees* once it has ``MIN_OVERLAP_SAMPLES`` and its share exceeds
``fusion.calibration_unmatched_warn``. A pair with a footprint not known yet (no frame
size and no ``floor_area``) gives the matched distance only.

State: two bounded queues per camera pair, nothing per person.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np

from edge.fusion.coverage import Coverage
from edge.records import check_shape

PAIR_SAMPLES = 500  # floor distances kept per camera pair for the matched distance
PAIR_EVERY = 4  # instants between two samples (they cost time)
OVERLAP_SAMPLES = 500  # people in a pair's overlap kept for its unmatched share
# A share from fewer people in the overlap is reported but judges nothing: one person
# standing behind another for a minute is a handful of samples, not a calibration error.
MIN_OVERLAP_SAMPLES = 100
# How far inside both footprints a sighting must lie to count: at a footprint's edge a
# person is half out of the picture, and the calibration error moves the edge itself.
OVERLAP_MARGIN_M = 1.0


@dataclass(frozen=True, slots=True)
class MatchedSightings:
    """One camera's sightings of an instant that went to a person.

    Attributes:
        camera: the camera id.
        uid: ``(n,)`` the person each sighting went to.
        xy: ``(n, 2)`` where the camera placed them (metres, moved to the instant).
        confirmed: ``(n,)`` whether that person is a reported one (not tentative).
    """

    camera: str
    uid: np.ndarray
    xy: np.ndarray
    confirmed: np.ndarray

    def __post_init__(self) -> None:
        check_shape("MatchedSightings.uid", self.uid, (None,))
        check_shape("MatchedSightings.xy", self.xy, (len(self.uid), 2))
        check_shape("MatchedSightings.confirmed", self.confirmed, (len(self.uid),))


@dataclass(frozen=True, slots=True)
class PairHealth:
    """The calibration check of one camera pair.

    Attributes:
        median_m: median floor distance between the two cameras' positions of the people
            both saw (None: none yet).
        matched: how many such distances it is from.
        overlap: people sampled inside both footprints (the last ``OVERLAP_SAMPLES``).
        unmatched_share: of those, the share only one camera saw (None: no footprint
            overlap known, or nobody in it yet).
        disagrees: enough people sampled and too many of them unmatched: the two
            calibrations place one person at two places, counted twice.
    """

    median_m: float | None
    matched: int
    overlap: int
    unmatched_share: float | None
    disagrees: bool


class CalibrationCheck:
    """Per camera pair, the matched distance and the unmatched share.

    Args:
        coverage: the cameras' footprints (read at each sample: a footprint learnt
            later counts from then on).
        unmatched_warn: the share of unmatched people above which a pair disagrees
            (``fusion.calibration_unmatched_warn``).
    """

    def __init__(self, coverage: Coverage, unmatched_warn: float) -> None:
        self.coverage = coverage
        self.unmatched_warn = unmatched_warn
        self.reset()

    def reset(self) -> None:
        """Forget every sample (a new run)."""
        self.distances: dict[tuple[str, str], deque[float]] = {}
        self.unmatched: dict[tuple[str, str], deque[bool]] = {}

    def record(self, sightings: Iterable[MatchedSightings], looking: set[str]) -> None:
        """Sample one instant: ``sightings``, each camera's that went to a person;
        ``looking``, the cameras that sent a frame for it (with or without people)."""
        by_camera = {seen.camera: seen for seen in sightings}
        cameras = sorted(looking | set(by_camera))
        empty = MatchedSightings("", np.zeros(0, np.int64), np.zeros((0, 2)), np.zeros(0, bool))
        # every sighting against every footprint at once: one containment test per camera
        order = [c for c in cameras if c in by_camera]
        xy = np.concatenate([by_camera[c].xy for c in order]) if order else np.zeros((0, 2))
        ends = np.cumsum([len(by_camera[c].uid) for c in order]).tolist()
        spans = dict(zip(order, zip([0, *ends][:-1], ends, strict=True), strict=True))
        inside = {c: self.coverage.well_inside(xy, c, OVERLAP_MARGIN_M) for c in cameras}
        # per camera, person -> their sighting (a camera gives a person one at most);
        # plain sets and dicts: a few dozen people, where numpy's calls cost more
        rows = {c: {uid: row for row, uid in enumerate(seen.uid.tolist())}
                for c, seen in by_camera.items()}
        uids = {c: set(row) for c, row in rows.items()}
        for i, a in enumerate(cameras):
            seen_a = by_camera.get(a, empty)
            for b in cameras[i + 1:]:
                seen_b = by_camera.get(b, empty)
                common = uids.get(a, set()) & uids.get(b, set())
                if common:
                    in_a = [rows[a][uid] for uid in common]
                    in_b = [rows[b][uid] for uid in common]
                    self.distances.setdefault((a, b), deque(maxlen=PAIR_SAMPLES)).extend(
                        np.linalg.norm(seen_a.xy[in_a] - seen_b.xy[in_b], axis=1).tolist())
                inside_a, inside_b = inside[a], inside[b]
                if a in looking and b in looking and inside_a is not None \
                        and inside_b is not None:
                    both = inside_a & inside_b
                    self._sample_overlap((a, b), [
                        set(seen.uid[seen.confirmed & both[slice(*spans[seen.camera])]].tolist())
                        if len(seen.uid) else set() for seen in (seen_a, seen_b)],
                        uids.get(a, set()), uids.get(b, set()))

    def _sample_overlap(self, pair: tuple[str, str], overlap: list[set[int]],
                        uid_a: set[int], uid_b: set[int]) -> None:
        """One sample per person either camera of ``pair`` placed inside both footprints
        (``overlap``: per camera, the people it placed there): matched when both cameras
        gave them a sighting (the other may lie just outside: the calibration error)."""
        both = (overlap[0] & uid_b) | (overlap[1] & uid_a)
        alone = len(overlap[0] | overlap[1]) - len(both)
        if both or alone:
            samples = self.unmatched.setdefault(pair, deque(maxlen=OVERLAP_SAMPLES))
            samples.extend([False] * len(both) + [True] * alone)

    def health(self) -> dict[tuple[str, str], PairHealth]:
        """Per camera pair that saw someone, its check (pairs in id order)."""
        out = {}
        for pair in sorted(set(self.distances) | set(self.unmatched)):
            distances = self.distances.get(pair, ())
            flags = self.unmatched.get(pair, ())
            share = float(np.mean(flags)) if flags else None
            out[pair] = PairHealth(
                median_m=float(np.median(distances)) if distances else None,
                matched=len(distances),
                overlap=len(flags),
                unmatched_share=share,
                disagrees=(share is not None and len(flags) >= MIN_OVERLAP_SAMPLES
                           and share > self.unmatched_warn),
            )
        return out


def disagreement_problem(pairs: Mapping[tuple[str, str], PairHealth]) -> str | None:
    """The health's sentence about the camera pairs that disagree (the worst named), or
    None when none does. Short: the status page shows 200 characters of a message."""
    bad = sorted(((h.unmatched_share or 0.0, pair) for pair, h in pairs.items() if h.disagrees),
                 reverse=True)
    if not bad:
        return None
    share, (a, b) = bad[0]
    more = f" (and {len(bad) - 1} more pairs)" if len(bad) > 1 else ""
    return (f"Cameras {a} and {b}{more} count people twice: {share:.0%} of the people both "
            "should see are seen by one only. Check their calibration: edge calibrate "
            "--footprints, then --pairs.")
