"""How late each camera's pictures are, learnt from the people it sees with others.

A camera's frames are stamped when its worker reads them (``edge.runtime.frame_reader``),
not when the camera took them: an RTSP stream's buffering adds 0.2-2 s. A camera whose
pictures arrive 0.6 s after the others' places a walker at 1.2 m/s 0.7 m behind where
the others place them at the same stamp, which the association gate cannot tell from
another person: the fusion made 8 visits of 3 shoppers.

Each camera's **delay** is learnt, relative to the earliest camera (delays only add
up: a frame is never read before it was taken), and taken off its frame times before
the fusion picks a frame for an instant and matches its sightings.

How: at every instant, for a confirmed person walking at ``MIN_WALK_MPS`` or more whom
two cameras ``a`` and ``b`` both saw, the tracker moves each camera's sighting to the
instant with the person's velocity (:class:`AlignedSightings`). What is left between
the two, ``Δ = xy_b - xy_a``, is a calibration error ``c`` (the same whichever way the
person walks) plus the velocity times the two cameras' delay difference
``D = delay_a - delay_b`` (a later camera places a walker behind):
``Δ = c + v D``. The last ``PAIR_SAMPLES`` of each pair (bounded: the site's camera
pairs only) are fitted robustly, medians alternating between ``c`` and ``D`` (people
walking one way only cannot tell the two apart: all of it is then taken for delay,
which corrects walkers in that direction just as well). Pairs with ``MIN_PAIR_SAMPLES``
give each camera's delay by least squares over the pairs, the earliest camera of each
group of overlapping cameras at its configured ``stream_delay_s`` (0 by default).
Samples are stored as delay differences (the correction in force when they were taken
put back), and an estimate uses those taken under the correction now in force: a
correction far from the delay is measured short, and steps up to it (see
``ESTIMATE_SOON_S``). A delay under half of ``clock_skew_s`` is not corrected.

Until a camera's delay is learnt (:meth:`CameraDelays.unsure`), the tracker trusts its
sightings less along each person's way, so that a late camera's sightings go to the
people the others see, from which its delay is learnt, and do not start new people.
State: a fixed array per camera pair of the site; nothing per person.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from edge.config.fusion import FusionConfig
from edge.disjoint_set import DisjointSet
from edge.records import FloorObservations

PAIR_SAMPLES = 400  # per camera pair: a few minutes of a quiet store, seconds of a busy one
MIN_PAIR_SAMPLES = 40  # before a pair's delay difference is trusted
SAMPLE_MAX_AGE_S = 120.0  # older samples are forgotten: a stream's delay changes on reconnect
MIN_WALK_MPS = 0.5  # slower people tell little of time: a position error is a large lag
SPEED_SDS = 1.0  # ...and so does a speed known to less than this many standard deviations
PEOPLE_PER_INSTANT = 8  # once every camera seen with another is learnt, samples of at
# most this many people an instant, taking turns (30 people seen by 7 cameras give 800
# samples an instant, much the same as the last instant's)
ESTIMATE_EVERY_S = 10.0  # between two estimates (5 ms for 8 cameras' 28 pairs)...
# ...or ESTIMATE_SOON_S while a delay still moves. Samples taken under a correction far
# from the delay measure it short (a late frame is carried to its instant along a
# velocity that a stop-and-go walk does not keep: in the synthetic room, a 1 s delay
# corrected by 0.69 s measured 0.82 s; by 0.9 s, 0.99 s), so each estimate uses the
# samples taken under the correction in force (within CLOSE_S) where there are
# MIN_PAIR_SAMPLES of them, and the correction steps up to the delay. It changes by
# MOVING_S or more, or not at all: the samples under it then keep adding up.
ESTIMATE_SOON_S = 2.0
MOVING_S = 0.05
CLOSE_S = 0.01
FIT_ROUNDS = 3  # alternations between the calibration error and the delay of a pair


@dataclass(frozen=True, slots=True)
class AlignedSightings:
    """One camera's sightings of confirmed people at one fused instant, each moved to
    the instant with the person's velocity (a frame taken 0.1 s before the instant
    saw them 0.1 s of walking earlier).

    Attributes:
        camera_id: the camera.
        uid: ``(n,)`` the people (the tracker's internal ids).
        xy: ``(n, 2)`` the camera's positions of them, at the instant.
        velocity: ``(n, 2)`` each person's velocity (m/s) before this instant's update.
        velocity_sd: ``(n,)`` its standard deviation (m/s, per axis).
    """

    camera_id: str
    uid: np.ndarray
    xy: np.ndarray
    velocity: np.ndarray
    velocity_sd: np.ndarray


class CameraDelays:
    """Each camera's delay: the configured ``stream_delay_s``, then learnt.

    Args:
        config: the site's ``fusion`` settings.
        configured: per camera of the site, its ``stream_delay_s``. Cameras not named
            here are never corrected nor learnt.
    """

    def __init__(self, config: FusionConfig, configured: Mapping[str, float]) -> None:
        self.config = config
        self.configured = dict(configured)
        self.cameras = sorted(self.configured)
        self._index = {camera: i for i, camera in enumerate(self.cameras)}
        count = len(self.cameras)
        first, second = np.triu_indices(count, 1)
        self._pairs = [(self.cameras[a], self.cameras[b])
                       for a, b in zip(first, second, strict=True)]
        self._pair_of = np.full((count, count), -1, np.int64)  # cameras (a < b) -> pair
        self._pair_of[first, second] = np.arange(len(first))
        self.reset()

    def reset(self) -> None:
        """Forget what was learnt: every camera at its configured delay, not sure of it."""
        self._delays = dict(self.configured)  # taken off the frame times
        self._estimates = dict(self.configured)  # learnt (or configured): what health shows
        self._sure: set[str] = set()
        # per pair (a, b), a < b, the last PAIR_SAMPLES rows [Δx, Δy, vx, vy, t, sure,
        # applied] with Δ = c + v (delay_a - delay_b); sure: both cameras' delays were
        # learnt when it was taken; applied: delay_a - delay_b as corrected then.
        # Allocated once, at the first sample (a camera worker's stage never learns): the
        # site's camera pairs, no more.
        self._samples = np.zeros((0, PAIR_SAMPLES, 7))
        self._written = np.zeros(len(self._pairs), np.int64)
        self._estimated_t: float | None = None
        self._turn = 0
        self._learning = True  # a camera seen with another is not learnt yet
        self._moving = False  # the last estimate moved a delay by MOVING_S

    def delay(self, camera_id: str) -> float:
        """Seconds to take off this camera's frame times (0 for an unknown camera)."""
        return self._delays.get(camera_id, 0.0)

    def delays(self) -> dict[str, float]:
        """Per camera, the seconds taken off its frame times."""
        return dict(self._delays)

    def estimates(self) -> dict[str, float]:
        """Per camera, its delay as learnt (or configured, until learnt), also where it is
        not corrected (under half of ``clock_skew_s``: the association tolerates it)."""
        return dict(self._estimates)

    def longest(self) -> float:
        return max(self._delays.values(), default=0.0)

    def learnt(self) -> set[str]:
        """The cameras whose delay rests on enough recent samples."""
        return set(self._sure)

    def unsure(self) -> dict[str, float]:
        """Per camera, how many seconds (one standard deviation) its corrected frame times
        may still be off: while its delay is not learnt (at the start, or once its
        samples aged out: a delay that changed is learnt again), ``max_camera_delay_s``
        is at the association gate (``gate_sigmas``); once learnt, 0 (what is left is
        ``clock_skew_s``'s)."""
        if not self.config.learn_camera_delays:
            return {}
        unknown = self.config.max_camera_delay_s / self.config.gate_sigmas
        return {camera: 0.0 if camera in self._sure else unknown for camera in self.cameras}

    def snapshot(self) -> dict:
        """What was learnt, for a fusion service that resumes its run (the samples are
        not kept: it goes on correcting by these delays while it samples again)."""
        return {"delays": self._delays, "estimates": self._estimates,
                "sure": sorted(self._sure)}

    def restore(self, snapshot: Mapping) -> None:
        """Go on from a :meth:`snapshot`; cameras no longer in the site are left out.

        Raises:
            ValueError: it is not one.
        """
        try:
            delays = {str(c): float(d) for c, d in snapshot["delays"].items()}
            estimates = {str(c): float(d) for c, d in snapshot["estimates"].items()}
            sure = {str(c) for c in snapshot["sure"]}
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise ValueError(f"cannot resume the camera delays: {error}") from None
        self.reset()
        self._delays.update({c: d for c, d in delays.items() if c in self._index})
        self._estimates.update({c: d for c, d in estimates.items() if c in self._index})
        self._sure = sure & set(self.cameras)

    def shift(self, seconds: float) -> None:
        """Move the times of the samples by ``seconds``: the wall clock stepped. A delay is
        the streams', not the clock's; its samples stay as recent as they were."""
        if len(self._samples):
            self._samples[:, :, 4] += seconds
        if self._estimated_t is not None:
            self._estimated_t += seconds

    def health_detail(self) -> dict:
        """For the fusion's health row: each camera's delay (seconds after the earliest
        camera's pictures, as learnt or configured), which of them are learnt, and
        which are taken off the frame times."""
        return {"camera_delays_s": {c: round(d, 2) for c, d in sorted(self._estimates.items())},
                "camera_delays_learnt": sorted(self._sure),
                "camera_delays_corrected_s": {c: round(d, 2)
                                              for c, d in sorted(self._delays.items())}}

    def health_problems(self) -> list[str]:
        """A sentence per camera whose pictures come later than ``camera_delay_warn_s``."""
        limit = self.config.camera_delay_warn_s
        return [f"Pictures of camera {camera} reach the box {delay:.1f} s after the earliest "
                f"camera's (more than fusion.camera_delay_warn_s, {limit:g} s): the count "
                "corrects for it, but check the camera's stream buffering."
                for camera, delay in sorted(self._estimates.items()) if delay > limit]

    def camera_time(self, seen: FloorObservations) -> float:
        """When this frame was taken, as far as is known: its stamp less the delay."""
        return seen.timestamp - self.delay(seen.camera_id)

    def correct(self, seen: FloorObservations) -> FloorObservations:
        """The frame with its stamp moved back by its camera's delay."""
        delay = self.delay(seen.camera_id)
        return dataclasses.replace(seen, timestamp=seen.timestamp - delay) if delay else seen

    def learn(self, t: float, sightings: Sequence[AlignedSightings]) -> None:
        """Keep the samples of instant ``t``; every ``ESTIMATE_EVERY_S``, estimate again."""
        known = [s for s in sightings if s.camera_id in self._index and len(s.uid)]
        kept = self._keep(t, known) if len(known) >= 2 else np.zeros(0, np.int64)
        # a camera not learnt yet is wanted soon: estimate as soon as a pair of it can tell
        soon = any((a not in self._sure or b not in self._sure)
                   and self._written[k] >= MIN_PAIR_SAMPLES
                   for k, (a, b) in ((k, self._pairs[k]) for k in kept))
        if self._estimated_t is None or t < self._estimated_t:
            self._estimated_t = t  # the first instant, or a clock that went back
        every = ESTIMATE_SOON_S if self._moving else ESTIMATE_EVERY_S
        if soon or t - self._estimated_t >= every:
            self._estimate(t)
            self._estimated_t = t

    # -- internals ------------------------------------------------------------------

    def _keep(self, t: float, sightings: Sequence[AlignedSightings]) -> np.ndarray:
        """Keep this instant's pair samples; returns the pairs (indices) that got some."""
        camera = np.concatenate([np.full(len(s.uid), self._index[s.camera_id])
                                 for s in sightings])
        uid = np.concatenate([s.uid for s in sightings])
        velocity = np.concatenate([s.velocity for s in sightings])
        speed = np.hypot(velocity[:, 0], velocity[:, 1])
        walking = ((speed >= MIN_WALK_MPS)
                   & (speed >= SPEED_SDS * np.concatenate([s.velocity_sd for s in sightings])))
        people = np.unique(uid[walking])
        if not self._learning and len(people) > PEOPLE_PER_INSTANT:  # taking turns
            turns = -(-len(people) // PEOPLE_PER_INSTANT)
            people = people[(np.arange(len(people)) + self._turn) % turns == 0]
            self._turn += 1
        use = walking & np.isin(uid, people)
        if use.sum() < 2:
            return np.zeros(0, np.int64)
        xy = np.concatenate([s.xy for s in sightings])[use]
        camera, uid, velocity = camera[use], uid[use], velocity[use]
        first, second = np.nonzero((uid[:, None] == uid[None, :])
                                   & (camera[:, None] < camera[None, :]))
        if len(first) == 0:
            return np.zeros(0, np.int64)
        applied = np.array([self.delay(c) for c in self.cameras])
        applied = applied[camera[first]] - applied[camera[second]]
        v = velocity[first]  # the same person: the same velocity
        # what this instant's correction took off is put back: Δ = c + v (delay_a - delay_b)
        delta = xy[second] - xy[first] + v * applied[:, None]
        # a pair implying a delay beyond the longest is two people, not one late picture
        lag = np.einsum("ij,ij->i", delta, v) / np.einsum("ij,ij->i", v, v)
        sane = np.abs(lag) <= self.config.max_camera_delay_s
        sure = np.array([c in self._sure for c in self.cameras])
        rows = np.c_[delta, v, np.full(len(v), t),
                     sure[camera[first]] & sure[camera[second]], applied][sane]
        pair = self._pair_of[camera[first][sane], camera[second][sane]]
        order = np.argsort(pair, kind="stable")
        pair, rows = pair[order], rows[order]
        kept, start, counts = np.unique(pair, return_index=True, return_counts=True)
        rank = np.arange(len(pair)) - np.repeat(start, counts)  # within its pair
        slot = (self._written[pair] + rank) % PAIR_SAMPLES
        if len(self._samples) < len(self._pairs):
            self._samples = np.zeros((len(self._pairs), PAIR_SAMPLES, 7))
        self._samples[pair, slot] = rows  # (more than PAIR_SAMPLES at once: the last win)
        self._written[kept] += counts
        return kept

    def _estimate(self, t: float) -> None:
        """Each pair's delay difference, then each camera's delay (least squares over the
        pairs, the earliest camera of each group at its configured delay). A camera
        with no pair of enough recent samples keeps its last delay, unsure of it."""
        differences: list[tuple[int, int, float, float]] = []
        for k in np.flatnonzero(self._written >= MIN_PAIR_SAMPLES):
            samples = self._samples[k, :min(int(self._written[k]), PAIR_SAMPLES)]
            samples = samples[samples[:, 4] >= t - SAMPLE_MAX_AGE_S]
            if (samples[:, 5] > 0).sum() >= MIN_PAIR_SAMPLES:
                # taken while a delay was unknown, a sample may pair two people in single
                # file (the association was loose): once there are enough without, they go
                samples = samples[samples[:, 5] > 0]
            a, b = self._pairs[k]
            under = np.abs(samples[:, 6] - (self.delay(a) - self.delay(b))) <= CLOSE_S
            if under.sum() >= MIN_PAIR_SAMPLES:
                samples = samples[under]
            if len(samples) >= MIN_PAIR_SAMPLES:
                differences.append((self._index[a], self._index[b],
                                    pair_delay_difference(samples[:, :4]), float(len(samples))))
        delays, estimates = dict(self._delays), dict(self._estimates)
        sure: set[str] = set()
        for group in _groups(len(self.cameras), [(a, b) for a, b, _, _ in differences]):
            if len(group) < 2:
                continue
            column = {camera: k for k, camera in enumerate(group)}
            pairs = [d for d in differences if d[0] in column]
            design = np.zeros((len(pairs), len(group)))
            weight = np.sqrt([n for _, _, _, n in pairs])
            for row, (first, second, _, _) in enumerate(pairs):
                design[row, column[first]], design[row, column[second]] = 1.0, -1.0
            target = np.array([d for _, _, d, _ in pairs])
            solution = np.linalg.lstsq(design * weight[:, None], target * weight, rcond=None)[0]
            floor = min(self.configured[self.cameras[camera]] for camera in group)
            later = np.clip(solution - solution.min(), 0.0, self.config.max_camera_delay_s)
            for camera, place in column.items():
                name = self.cameras[camera]
                estimates[name] = floor + float(later[place])
                # a delay the clock skew tolerates is not corrected: on synchronised
                # cameras (WILDTRACK) the estimates wander up to 0.1 s, and correcting
                # by them only stirs the tracks
                small = later[place] < self.config.clock_skew_s / 2
                corrected = floor + (0.0 if small else float(later[place]))
                if abs(corrected - delays[name]) >= MOVING_S or name not in self._sure:
                    delays[name] = corrected
                sure.add(name)
        self._moving = any(delays[c] != self._delays[c] for c in self.cameras)
        self._delays, self._estimates, self._sure = delays, estimates, sure
        seen_with_others = {c for k in np.flatnonzero(self._written) for c in self._pairs[k]}
        self._learning = not seen_with_others <= sure


def pair_delay_difference(samples: np.ndarray) -> float:
    """``delay_a - delay_b`` of a camera pair from rows ``[Δx, Δy, vx, vy]``
    (``Δ = c + v (delay_a - delay_b)``, ``c`` the pair's calibration error): medians
    alternating between ``c`` and the delay difference, starting from no calibration
    error."""
    delta, v = samples[:, :2], samples[:, 2:]
    speed2 = np.einsum("ij,ij->i", v, v)
    difference = float(np.median(np.einsum("ij,ij->i", delta, v) / speed2))
    for _ in range(FIT_ROUNDS):
        offset = np.median(delta - v * difference, axis=0)
        lags = np.einsum("ij,ij->i", delta - offset, v) / speed2
        difference = float(np.median(lags))
    return difference


def _groups(count: int, pairs: Sequence[tuple[int, int]]) -> list[list[int]]:
    """Cameras ``0..count-1`` grouped by the pairs that link them."""
    cameras = DisjointSet(count)
    for a, b in pairs:
        cameras.join(a, b)
    return cameras.groups()
