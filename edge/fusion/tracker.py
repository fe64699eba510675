"""Store-wide tracking: every camera's floor sightings fused into one track per person.

How it decides, each instant ``t`` (one frame of every camera that sent one):

1. **Predict.** Every person's floor state moves on under a constant-velocity model
   (:mod:`edge.fusion.motion`); their uncertainty grows with the time unseen.
2. **Associate.** Every sighting of the instant meets every person, predicted to the
   time of the sighting's frame (its stamp less its camera's delay,
   :mod:`edge.fusion.delays`), in one cost matrix: the negative log-likelihood of the
   pair (squared Mahalanobis distance plus the log-determinant), with the person's
   uncertainty, the sighting's own (it grows with distance from the camera,
   :mod:`edge.fusion.observe`) and a walker's speed times the tolerated clock skew
   (and, along the way they walk, times a camera's delay while it is not learnt).
   Pairs beyond ``gate_sigmas`` or ``max_gate_m`` cannot meet, nor those no one could
   have walked at ``max_speed_mps`` since the person was last seen (from where they
   were then: a track coasting on a wrong velocity is predicted where its person
   cannot be). A
   sighting whose camera track was given to this person last time costs
   ``continuity_bonus`` less. Then, camera by camera, Jonker-Volgenant (``lap``)
   picks the one-to-one matching on that camera's columns, confirmed people first,
   tentative ones with what is left: a camera gives a person at most one sighting,
   so two people 0.7 m apart whom a camera sees as two boxes stay two people even
   when another camera's floor error is larger than the gap (a merge radius alone
   fails there). Each person's sightings from all cameras are then fused into one
   measurement (their inverse covariances add up) and the person is updated once.
3. **Birth.** Sightings no person took are clustered across cameras (again one
   sighting per camera per cluster, gated the same way). A cluster with a sighting
   scoring at least the new-person confidence starts a tentative person. It is
   reported once seen at ``confirm_instants`` instants in a row, by two cameras where
   two or more look (false boxes rarely agree across cameras), or for twice as long
   by one. A tentative person missed once is dropped: a false box in one camera never
   becomes a person.
4. **Coverage and ageing.** A person no camera saw this instant is:
   - *gone* after ``lost_after_s`` when a live camera's footprint covers where they
     should be (a camera that should see them does not), or at once when their
     predicted position leaves the floor;
   - *unseen in a blind spot* when no camera's footprint covers them: carried on by
     the motion model for up to ``blind_keep_s``, to be picked up by the next camera;
   - *held* where they were, for up to ``down_hold_s``, when only cameras that are
     down cover them: a camera restarting never makes a person "leave". A person
     confirmed near a dead camera's area, within walking reach of someone held, is
     that person walking out of it (:meth:`FloorFusion._continued_held`).
5. **Duplicates.** Two people closer than ``merge_distance_m`` for ``merge_after_s``
   whom no camera ever saw as two are one person seen twice (a calibration error):
   the younger track is dropped. A larger error makes two people of one for good: the
   calibration check (:mod:`edge.fusion.pair_check`) counts, per camera pair, the people
   where both look whom only one camera saw, and the health says so.

No appearance is used: positions, their uncertainties and time alone. Per-person
state is dropped with the person; per camera only its last frame time is kept. The
whole state can be saved and restored (:meth:`FloorFusion.snapshot`), so that a live
fusion service restarted within ``down_hold_s`` goes on with the same people.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np
import shapely

from edge.config.fusion import FusionConfig
from edge.fusion import motion
from edge.fusion.coverage import Coverage
from edge.fusion.delays import AlignedSightings
from edge.fusion.pair_check import PAIR_EVERY, CalibrationCheck, MatchedSightings, PairHealth
from edge.records import FloorObservations, FusedTracks
from edge.tracking.association import assign

INITIAL_SPEED_SD = 1.0  # m/s: a new person may be walking either way
# A person held for a dead camera who walks out of its area is first seen by a live
# camera within this distance of the dead one's footprint (metres).
HANDOVER_MARGIN_M = 2.0
SNAPSHOT_VERSION = 1  # of FloorFusion.snapshot(): a service restarted on another resumes not
MAX_LEAD_S = 1.0  # a frame farther than this from its instant is taken as at most this far


@dataclass(slots=True)
class _People:
    """Column store of every tracked person (confirmed or tentative)."""

    x: np.ndarray = field(default_factory=lambda: np.zeros((0, 4)))
    p: np.ndarray = field(default_factory=lambda: np.zeros((0, 4, 4)))
    uid: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    track_id: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # 0: tentative
    sightings: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    instants: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    camera_mask: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    last_seen: np.ndarray = field(default_factory=lambda: np.zeros(0))
    last_xy: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))  # where, then
    last_cov: np.ndarray = field(default_factory=lambda: np.zeros((0, 2, 2)))  # its covariance
    held: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))
    seen: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # cameras, now
    missed_s: np.ndarray = field(default_factory=lambda: np.zeros(0))  # while a camera looked
    held_s: np.ndarray = field(default_factory=lambda: np.zeros(0))  # while only a dead one could

    def __len__(self) -> int:
        return len(self.uid)

    def keep(self, mask: np.ndarray) -> None:
        for name in self.__slots__:  # type: ignore[attr-defined]
            setattr(self, name, getattr(self, name)[mask])

    def add(self, x: np.ndarray, p: np.ndarray, uid: int, sightings: int, t: float,
            camera_mask: int) -> None:
        self.seen = np.append(self.seen, sightings)
        self.missed_s = np.append(self.missed_s, 0.0)
        self.held_s = np.append(self.held_s, 0.0)
        self.camera_mask = np.append(self.camera_mask, camera_mask)
        self.x = np.vstack([self.x, x[None]])
        self.p = np.concatenate([self.p, p[None]])
        self.uid = np.append(self.uid, uid)
        self.track_id = np.append(self.track_id, 0)
        self.sightings = np.append(self.sightings, sightings)
        self.instants = np.append(self.instants, 1)
        self.last_seen = np.append(self.last_seen, t)
        self.last_xy = np.vstack([self.last_xy, x[None, :2]])
        self.last_cov = np.concatenate([self.last_cov, p[None, :2, :2]])
        self.held = np.append(self.held, False)


class FloorFusion:
    """One store-wide tracker over every camera of a site.

    Args:
        config: the site's ``fusion`` settings.
        coverage: each camera's footprint on the floor.
        bounds: the floor plan's ``((x_min, y_min), (x_max, y_max))``: a person whose
            predicted position leaves it has left. None: no such check.
        new_person_confidence: the score that starts a person when the config leaves it
            unset (the site's tracker's ``new_track_threshold``).
    """

    def __init__(
        self,
        config: FusionConfig,
        coverage: Coverage,
        bounds: tuple[tuple[float, float], tuple[float, float]] | None = None,
        new_person_confidence: float = 0.0,
    ) -> None:
        self.config = config
        self.new_person_confidence = (config.new_person_confidence
                                      if config.new_person_confidence is not None
                                      else new_person_confidence)
        self.coverage = coverage
        self.bounds = shapely.box(*bounds[0], *bounds[1]) if bounds is not None else None
        self.calibration_check = CalibrationCheck(coverage, config.calibration_unmatched_warn)
        self.reset()

    def reset(self) -> None:
        """Forget every person and camera (a new run)."""
        self.people = _People()
        self.t: float | None = None
        self._dt = 0.0
        self.camera_last_t: dict[str, float] = {}
        self._next_uid = 1
        self._next_track_id = 1
        self._local: dict[tuple[str, int], int] = {}  # (camera, camera track) -> uid
        self._together: dict[tuple[int, int], float] = {}  # close pair -> since when
        self._camera_bits: dict[str, int] = {}
        self._steps = 0
        self.calibration_check.reset()
        self.aligned: list[AlignedSightings] = []  # the last instant's, for the delays

    def snapshot(self) -> dict:
        """Everything the tracker knows, as plain JSON values, so that a fusion service
        restarted within ``down_hold_s`` goes on with the same people under the same
        track ids (:meth:`restore`). Positions and camera-local track ids only, like the
        raw trajectories; the calibration-health samples are not kept."""
        people = self.people
        return {
            "version": SNAPSHOT_VERSION,
            "people": {name: _plain(getattr(people, name))
                       for name in people.__slots__},  # type: ignore[attr-defined]
            "t": self.t,
            "camera_last_t": self.camera_last_t,
            "next_uid": self._next_uid,
            "next_track_id": self._next_track_id,
            "local": [[camera, track, uid] for (camera, track), uid in self._local.items()],
            "together": [[a, b, since] for (a, b), since in self._together.items()],
            "camera_bits": self._camera_bits,
            "steps": self._steps,
        }

    def restore(self, snapshot: Mapping) -> None:
        """Go on from a :meth:`snapshot`. Cameras no longer in the site (those of the
        coverage) are left out: one taken out of the config while the service was down
        counted as live for ``camera_down_after_s`` after its last frame (in the health
        row; and, with no footprint, as seeing the whole floor, so nobody was held for a
        dead camera meanwhile).

        Raises:
            ValueError: it is not a snapshot this version can read (the tracker is
                then reset).
        """
        try:
            if snapshot.get("version") != SNAPSHOT_VERSION:
                raise ValueError(f"snapshot version {snapshot.get('version')!r}, "
                                 f"expected {SNAPSHOT_VERSION}")
            empty = _People()
            people = _People(**{
                name: np.asarray(snapshot["people"][name],
                                 dtype=getattr(empty, name).dtype).reshape(
                    (-1, *getattr(empty, name).shape[1:]))
                for name in empty.__slots__  # type: ignore[attr-defined]
            })
            if len({len(getattr(people, name)) for name in empty.__slots__}) != 1:  # type: ignore[attr-defined]
                raise ValueError("the people's columns differ in length")
            self.reset()
            self.people = people
            self.t = None if snapshot["t"] is None else float(snapshot["t"])
            cameras = set(self.coverage.footprints)
            self.camera_last_t = {str(c): float(t) for c, t in snapshot["camera_last_t"].items()
                                  if str(c) in cameras}
            self._next_uid = int(snapshot["next_uid"])
            self._next_track_id = int(snapshot["next_track_id"])
            self._local = {(str(c), int(track)): int(uid) for c, track, uid in snapshot["local"]
                           if str(c) in cameras}
            self._together = {(int(a), int(b)): float(since)
                              for a, b, since in snapshot["together"]}
            self._camera_bits = {str(c): int(bit) for c, bit in snapshot["camera_bits"].items()}
            self._steps = int(snapshot["steps"])
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            self.reset()
            raise ValueError(f"cannot resume the store-wide tracker: {error}") from None

    def _camera_bit(self, camera: str) -> int:
        if camera not in self._camera_bits:
            self._camera_bits[camera] = 1 << (len(self._camera_bits) % 63)
        return self._camera_bits[camera]

    def live_cameras(self, t: float) -> set[str]:
        """Cameras that sent a frame within ``camera_down_after_s`` of ``t``."""
        limit = self.config.camera_down_after_s
        return {c for c, last in self.camera_last_t.items() if t - last <= limit}

    def step(
        self, frame_index: int, t: float, observations: Iterable[FloorObservations],
        unsure_s: Mapping[str, float] | None = None,
    ) -> FusedTracks:
        """Fuse one instant: at most one frame per camera, each near ``t``.

        ``unsure_s``: per camera, how many seconds its frame times may still be off (a
        delay not learnt yet, :mod:`edge.fusion.delays`); its sightings are then trusted
        that much of each person's walk less along their way."""
        batch = list(observations)
        for seen in batch:
            self.camera_last_t[seen.camera_id] = max(
                self.camera_last_t.get(seen.camera_id, -np.inf), seen.timestamp
            )
        self._predict(t)
        people = self.people
        people.seen[:] = 0
        assigned: dict[str, np.ndarray] = {}  # camera -> uids it gave a sighting to
        sightings: list[MatchedSightings] = []  # the calibration check's
        leftovers: list[tuple[str, np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
        looked = [seen for seen in batch if len(seen)]
        # each frame's time from the instant: a sighting is compared with, and moved back
        # to the instant along, the person's velocity (frames of 3 frames/s cameras lag
        # their instant by up to a third of a second)
        sizes = [len(seen) for seen in looked]
        lead = np.repeat(np.clip([seen.timestamp - t for seen in looked], -MAX_LEAD_S,
                                 MAX_LEAD_S), sizes)
        unsure = np.repeat([(unsure_s or {}).get(seen.camera_id, 0.0) for seen in looked],
                           sizes)
        self.aligned = []
        cost = self._cost(looked, lead, unsure) if looked and len(people) else None
        start = 0
        matched_rows, matched_cols = [], []
        for seen in looked:
            end = start + len(seen)
            pairs = self._assign(cost[:, start:end]) if cost is not None else ([], [])
            rows, cols = np.array(pairs[0], np.int64), np.array(pairs[1], np.int64)
            if len(rows):
                matched_rows.append(rows)
                matched_cols.append(cols + start)
                people.camera_mask[rows] |= self._camera_bit(seen.camera_id)
                assigned[seen.camera_id] = people.uid[rows]
                aligned = seen.xy[cols] - people.x[rows, 2:] * lead[start + cols][:, None]
                sure = people.track_id[rows] > 0
                sightings.append(MatchedSightings(seen.camera_id, people.uid[rows], aligned,
                                                  sure))
                p_v = people.p[rows[sure], 2:, 2:]
                self.aligned.append(AlignedSightings(
                    seen.camera_id, people.uid[rows][sure], aligned[sure],
                    people.x[rows[sure], 2:], np.sqrt((p_v[:, 0, 0] + p_v[:, 1, 1]) / 2)))
                local = seen.local_id[cols]
                for uid, camera_track in zip(people.uid[rows][local >= 0].tolist(),
                                             local[local >= 0].tolist(), strict=True):
                    self._local[(seen.camera_id, camera_track)] = uid
            free = np.ones(len(seen), bool)
            free[cols] = False
            if free.any():
                leftovers.append((seen.camera_id, seen.xy[free], seen.covariance[free],
                                  seen.local_id[free], seen.confidence[free]))
            start = end
        if matched_rows:
            rows = np.concatenate(matched_rows)
            cols = np.concatenate(matched_cols)
            xy = np.concatenate([seen.xy for seen in looked])
            cov = np.concatenate([seen.covariance for seen in looked])
            # moved to the instant; the velocity's uncertainty adds to the position's
            z, r = xy[cols], cov[cols]
            ahead, v = lead[cols], people.x[rows, 2:]
            if ahead.any():
                z = z - v * ahead[:, None]
                r = r + ahead[:, None, None] ** 2 * people.p[rows, 2:, 2:]
            if unsure[cols].any():
                r = r + v[:, :, None] * v[:, None, :] * unsure[cols, None, None] ** 2
            self._update(rows, z, r, t)
        people.instants[people.seen > 0] += 1
        self._steps += 1
        if self._steps % PAIR_EVERY == 0:
            self.calibration_check.record(sightings, {seen.camera_id for seen in batch})
        self._confirm(t)
        self._age(t, {seen.camera_id for seen in batch})
        self._merge_duplicates(t, assigned)
        self._births(t, leftovers)
        self._confirm(t)
        self._prune_local()
        return self._report(frame_index, t)

    # -- stages ---------------------------------------------------------------------

    def _predict(self, t: float) -> None:
        dt = 0.0 if self.t is None else t - self.t
        self.t, self._dt = t, max(dt, 0.0)
        people = self.people
        if dt <= 0 or len(people) == 0:
            return
        moving = ~people.held
        x, p = motion.predict(people.x[moving], people.p[moving], dt,
                              self.config.acceleration_noise)
        people.x[moving], people.p[moving] = x, p

    def _cost(self, looked: list[FloorObservations], lead: np.ndarray,
              unsure: np.ndarray) -> np.ndarray:
        """Cost of every (person, sighting) pair of this instant, ``inf`` outside the gate:
        the negative log-likelihood (up to a constant), so a vague person does not win a
        sighting from a sharp one merely because its gate is wide. Each person is
        predicted to the time of each sighting's frame (``lead``: seconds after ``t``,
        give or take ``unsure``)."""
        people = self.people
        xy = np.concatenate([seen.xy for seen in looked])
        cov = np.concatenate([seen.covariance for seen in looked])
        speed2 = np.sum(people.x[:, 2:] ** 2, axis=1)
        d2, dist, log_det = motion.mahalanobis(people.x, people.p, xy, cov,
                                               speed2 * self.config.clock_skew_s**2, lead,
                                               unsure)
        cost = d2 + log_det
        if self.config.continuity_bonus > 0:
            previous = np.concatenate([
                [self._local.get((seen.camera_id, int(i)), -1) if i >= 0 else -1
                 for i in seen.local_id] if (seen.local_id >= 0).any()
                else np.full(len(seen), -1) for seen in looked])
            same = people.uid[:, None] == previous[None, :]
            if same.any():
                cost -= self.config.continuity_bonus * same
        reach = (self.config.max_gate_m + np.sqrt(speed2)[:, None] * unsure[None, :]
                 if unsure.any() else self.config.max_gate_m)
        out = (d2 > self.config.gate_sigmas**2) | (dist > reach)
        if self.config.max_speed_mps is not None:
            rows, cols = np.nonzero(~out)
            out[rows, cols] = self._too_far_to_walk(rows, cols, xy, cov,
                                                    self.config.max_speed_mps, unsure)
        cost[out] = np.inf
        return cost

    def _too_far_to_walk(self, rows: np.ndarray, cols: np.ndarray, xy: np.ndarray,
                         cov: np.ndarray, max_speed: float, unsure: np.ndarray) -> np.ndarray:
        """Of the pairs ``(rows[k], cols[k])``, those whose sighting no one could have
        walked to: farther from where the person was last seen than ``max_speed`` (m/s)
        times the time since (plus ``clock_skew_s`` and the sighting's ``unsure``), by
        more than ``gate_sigmas`` standard deviations of that position's and the
        sighting's uncertainty together.

        Measured from where the person was last seen, not from where the motion model
        predicts them: a track coasting on a wrong velocity (one that hopped between two
        people) is predicted where its person cannot be, and the predicted gate follows
        it there. A person held for a dead camera is exempt: their clock stops while
        held, and the predicted gate holds them already."""
        people = self.people
        elapsed = (self.t or 0.0) - people.last_seen[rows]
        reach = max_speed * (elapsed + self.config.clock_skew_s + unsure[cols])
        offset = xy[cols] - people.last_xy[rows]
        dist = np.hypot(offset[:, 0], offset[:, 1])
        far = np.flatnonzero((dist > reach) & ~people.held[rows])
        refused = np.zeros(len(rows), bool)
        if len(far):
            excess = offset[far] * (1.0 - reach[far] / dist[far])[:, None]
            inv, _ = motion.inverse_2x2(people.last_cov[rows[far]] + cov[cols[far]])
            d2 = np.einsum("ki,kij,kj->k", excess, inv, excess)
            refused[far] = d2 > self.config.gate_sigmas**2
        return refused

    def _assign(self, cost: np.ndarray) -> tuple[list[int], list[int]]:
        """One camera's matching: confirmed people pick their sightings first; tentative
        ones get what is left. Returns (people rows, sighting columns)."""
        finite = np.isfinite(cost)
        if not finite.any():
            return [], []
        limit = float(cost[finite].max()) + 1.0
        confirmed = self.people.track_id > 0
        rows: list[int] = []
        cols: list[int] = []
        taken = np.zeros(cost.shape[1], bool)
        for group in (np.flatnonzero(confirmed), np.flatnonzero(~confirmed)):
            if len(group) == 0 or taken.all():
                continue
            columns = np.flatnonzero(~taken)
            sub = cost[group] if len(columns) == cost.shape[1] else cost[np.ix_(group, columns)]
            for row, col in assign(sub, limit):
                rows.append(int(group[row]))
                cols.append(int(columns[col]))
                taken[columns[col]] = True
        return rows, cols

    def _update(self, rows: np.ndarray, z: np.ndarray, r: np.ndarray, t: float) -> None:
        """Fuse every camera's sighting of each person into one measurement (information
        form: the inverse covariances add up) and update the person once."""
        people = self.people
        inv, _ = motion.inverse_2x2(r)
        info = np.zeros((len(people), 2, 2))
        vector = np.zeros((len(people), 2))
        np.add.at(info, rows, inv)
        np.add.at(vector, rows, np.einsum("kij,kj->ki", inv, z))
        seen = np.unique(rows)
        fused_cov, _ = motion.inverse_2x2(info[seen])
        fused_z = np.einsum("kij,kj->ki", fused_cov, vector[seen])
        people.x[seen], people.p[seen] = motion.update(people.x[seen], people.p[seen],
                                                       fused_z, fused_cov)
        np.add.at(people.seen, rows, 1)
        np.add.at(people.sightings, rows, 1)
        people.last_seen[seen] = t
        people.last_xy[seen] = people.x[seen, :2]
        people.last_cov[seen] = people.p[seen, :2, :2]
        people.held[seen] = False

    def _confirm(self, t: float) -> None:
        """Tentative people seen often enough become reported people.

        Where two or more live cameras look, a person must have been seen by two of
        them (false boxes rarely agree across cameras), or by one for twice as long
        (someone the others cannot see behind a shelf or a crowd)."""
        people = self.people
        rows = np.flatnonzero((people.track_id == 0)
                              & (people.sightings >= self.config.confirm_sightings)
                              & (people.instants >= self.config.confirm_instants))
        if len(rows):
            views = np.array([bin(int(m)).count("1") for m in people.camera_mask[rows]])
            looking = self.coverage.covering(people.x[rows, :2], self.live_cameras(t))
            enough = ((views >= 2) | (looking <= 1)
                      | (people.instants[rows] >= 2 * self.config.confirm_instants))
            rows = rows[enough]
        continues = self._continued_held(rows, t)
        for row in rows.tolist():
            if row in continues:
                people.track_id[row] = people.track_id[continues[row]]
            else:
                people.track_id[row] = self._next_track_id
                self._next_track_id += 1
        gone = np.zeros(len(people), bool)
        gone[list(continues.values())] = True
        # a tentative person missed once was a false box
        people.keep(~(((people.track_id == 0) & (people.seen == 0)) | gone))

    def _continued_held(self, rows: np.ndarray, t: float) -> dict[int, int]:
        """Which of the people about to be confirmed (``rows``) are someone held for a
        dead camera who walked out of its area into a live camera's view: confirmed
        within ``HANDOVER_MARGIN_M`` of a dead camera's footprint and within walking
        reach (``max_speed_mps``) of where that person is held. Returns
        ``{row: held row}``: they go on under the held person's track id (one person,
        one visit), paired one-to-one, nearest first. Without it they were counted
        twice until ``down_hold_s`` let the held one go."""
        people = self.people
        held = np.flatnonzero(people.held & (people.track_id > 0))
        if len(held) == 0 or len(rows) == 0:
            return {}
        down = set(self.coverage.footprints) - self.live_cameras(t)
        rows = rows[self.coverage.near(people.x[rows, :2], down, HANDOVER_MARGIN_M)]
        if len(rows) == 0:
            return {}
        distance = np.linalg.norm(people.x[rows, None, :2] - people.last_xy[None, held], axis=2)
        if self.config.max_speed_mps is not None:
            reach = (self.config.max_speed_mps * (people.held_s[held] + self.config.clock_skew_s)
                     + self.config.max_gate_m)
            distance[distance > reach[None, :]] = np.inf
        if not np.isfinite(distance).any():
            return {}
        limit = float(distance[np.isfinite(distance)].max()) + 1.0
        return {int(rows[i]): int(held[j]) for i, j in assign(distance, limit)}

    def _age(self, t: float, sending: set[str]) -> None:
        """Drop the people who are gone; hold those only a dead camera could see.

        "Missed" time only runs while a camera whose view covers the person sends
        frames: a camera that stopped sending is not looking, so its people are not
        missed, and once it is down they are held."""
        people = self.people
        if len(people) == 0:
            return
        people.missed_s[people.seen > 0] = 0.0
        people.held_s[people.seen > 0] = 0.0
        people.held[people.seen > 0] = False
        unseen = np.flatnonzero(people.seen == 0)  # only they can be gone: few, usually
        if len(unseen) == 0:
            return
        xy = people.x[unseen, :2]
        if sending:
            people.missed_s[unseen] += (self.coverage.covering(xy, sending) > 0) * self._dt
        live = self.live_cameras(t)
        covered_live = self.coverage.covering(xy, live) > 0
        down = set(self.coverage.footprints) - live
        covered_down = self.coverage.covering(xy, down) > 0 if down else np.zeros(len(xy), bool)
        on_floor = (shapely.contains_xy(self.bounds, xy[:, 0], xy[:, 1])
                    if self.bounds is not None else np.ones(len(xy), bool))
        held = ~covered_live & covered_down
        people.held[unseen] = held
        people.held_s[unseen] += held * self._dt
        people.last_seen[unseen[held]] = t  # the clock stops while only a dead camera looks
        people.x[unseen[held], 2:] = 0.0
        age = t - people.last_seen[unseen]
        gone = (~on_floor
                | (covered_live & (people.missed_s[unseen] > self.config.lost_after_s))
                | (held & (people.held_s[unseen] > self.config.down_hold_s))
                | (~covered_live & ~held & (age > self.config.blind_keep_s)))
        if gone.any():
            keep = np.ones(len(people), bool)
            keep[unseen[gone]] = False
            people.keep(keep)

    def _merge_duplicates(self, t: float, assigned: Mapping[str, np.ndarray]) -> None:
        people = self.people
        confirmed = np.flatnonzero(people.track_id > 0)
        if len(confirmed) < 2 or self.config.merge_distance_m <= 0:
            self._together.clear()
            return
        xy = people.x[confirmed, :2]
        close = np.linalg.norm(xy[:, None] - xy[None], axis=2) < self.config.merge_distance_m
        views = [set(given.tolist()) for given in assigned.values()]
        together = {}
        drop: set[int] = set()
        for i, j in zip(*np.nonzero(np.triu(close, 1)), strict=True):
            a, b = sorted((int(people.uid[confirmed[i]]), int(people.uid[confirmed[j]])))
            if any(a in uids and b in uids for uids in views):
                continue  # a camera saw them as two people this instant
            since = self._together.get((a, b), t)
            together[(a, b)] = since
            if t - since >= self.config.merge_after_s:
                drop.add(b)  # the younger: uids grow with time
                for key, uid in list(self._local.items()):
                    if uid == b:
                        self._local[key] = a
        self._together = together
        if drop:
            self.people.keep(~np.isin(people.uid, list(drop)))

    def _births(
        self, t: float,
        leftovers: list[tuple[str, np.ndarray, np.ndarray, np.ndarray, np.ndarray]],
    ) -> None:
        clusters: list[dict] = []
        gate2 = self.config.gate_sigmas**2
        for camera, xy, cov, local, score in leftovers:
            if clusters:
                means = np.array([c["mean"] for c in clusters])
                covs = np.array([c["cov"] for c in clusters])
                states = np.c_[means, np.zeros((len(clusters), 2))]
                p = np.zeros((len(clusters), 4, 4))
                p[:, :2, :2] = covs
                d2, dist, _ = motion.mahalanobis(states, p, xy, cov)
                taken = np.array([camera in c["cameras"] for c in clusters])
                d2[taken] = np.inf
                d2[(d2 > gate2) | (dist > self.config.max_gate_m)] = np.inf
                pairs = assign(d2, gate2)
            else:
                pairs = []
            used = set()
            for row, col in pairs:
                cluster = clusters[row]
                cluster["z"].append(xy[col])
                cluster["r"].append(cov[col])
                cluster["mean"], cluster["cov"] = motion.fuse(np.array(cluster["z"]),
                                                              np.array(cluster["r"]))
                cluster["cameras"].add(camera)
                cluster["local"].append((camera, int(local[col])))
                cluster["score"] = max(cluster["score"], float(score[col]))
                used.add(col)
            for col in range(len(xy)):
                if col not in used:
                    clusters.append({"z": [xy[col]], "r": [cov[col]], "mean": xy[col],
                                     "cov": cov[col], "cameras": {camera},
                                     "local": [(camera, int(local[col]))],
                                     "score": float(score[col])})
        for cluster in clusters:
            if cluster["score"] < self.new_person_confidence:
                continue  # weak boxes only: they may follow a person, never start one
            if self.bounds is not None and not shapely.contains_xy(self.bounds,
                                                                   *cluster["mean"]):
                continue  # off the floor plan: the street, a reflection, a poster
            x = np.r_[cluster["mean"], 0.0, 0.0]
            p = np.zeros((4, 4))
            p[:2, :2] = cluster["cov"]
            p[2:, 2:] = np.eye(2) * INITIAL_SPEED_SD**2
            uid = self._next_uid
            self._next_uid += 1
            mask = 0
            for camera in cluster["cameras"]:
                mask |= self._camera_bit(camera)
            self.people.add(x, p, uid, len(cluster["cameras"]), t, mask)
            for camera, local in cluster["local"]:
                if local >= 0:
                    self._local[(camera, local)] = uid

    def _prune_local(self) -> None:
        alive = set(int(u) for u in self.people.uid)
        if len(self._local) > 4 * max(len(alive), 16):
            self._local = {k: v for k, v in self._local.items() if v in alive}

    def _report(self, frame_index: int, t: float) -> FusedTracks:
        people = self.people
        confirmed = people.track_id > 0
        show = confirmed & (((t - people.last_seen) <= self.config.report_unseen_s)
                            | people.held)
        unsure = np.flatnonzero(confirmed & ~show)  # unseen for a while: in a blind spot?
        if len(unsure):
            blind = self.coverage.covering(people.x[unsure, :2], self.live_cameras(t)) == 0
            show[unsure[blind]] = True
        return FusedTracks(
            frame_index=frame_index,
            timestamp=t,
            track_id=people.track_id[show].copy(),
            xy=people.x[show, :2].copy(),
            cameras=people.seen[show].copy(),
        )

    def calibration_health(self) -> dict[tuple[str, str], PairHealth]:
        """Per camera pair that saw someone, the calibration check
        (:mod:`edge.fusion.pair_check`): how far apart the two cameras place the people
        both saw, and how many of the people where both look only one of them saw."""
        return self.calibration_check.health()

    def held_count(self) -> int:
        """How many confirmed people are held where they were last seen (only a camera
        that is down could see them)."""
        people = self.people
        return int((people.held & (people.track_id > 0)).sum())


def _plain(column: np.ndarray) -> list:
    """A column as JSON values, floats to 8 decimals (far below any noise of theirs)."""
    if column.dtype.kind == "f":
        return np.round(column, 8).tolist()
    return column.tolist()
