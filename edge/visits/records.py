"""Records of the behavioural layer: ``Visit -> VisitFeatures -> TraitScores``.

A visit is one person's smoothed floor trajectory, from first to last sighting. It
carries no image and no appearance; its ``track_id`` means nothing outside the box
(and the ``visit_id`` given when it is stored is random).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from edge.records import check_shape


@dataclass(frozen=True, slots=True)
class Visit:
    """One person's floor trajectory.

    Attributes:
        camera_id: the camera (or ``"import"``) that saw it.
        run_id: the replay/live run, ``None`` for imported trajectories.
        track_id: the tracker's id; meaningless outside the run.
        t: ``(n,)`` strictly increasing seconds (epoch seconds for live data).
        xy: ``(n, 2)`` floor metres, smoothed.
    """

    camera_id: str
    run_id: int | None
    track_id: int
    t: np.ndarray = field(repr=False)
    xy: np.ndarray = field(repr=False)

    def __post_init__(self) -> None:
        check_shape("Visit.t", self.t, (None,))
        check_shape("Visit.xy", self.xy, (len(self.t), 2))
        if len(self.t) == 0:
            raise ValueError("a visit needs at least one position")

    def __len__(self) -> int:
        return len(self.t)

    @property
    def start_t(self) -> float:
        return float(self.t[0])

    @property
    def end_t(self) -> float:
        return float(self.t[-1])

    @property
    def duration_s(self) -> float:
        return float(self.t[-1] - self.t[0])


@dataclass(frozen=True, slots=True)
class ZoneStay:
    """One presence of a visit in a zone, after entry/exit hysteresis."""

    zone_id: str
    enter_t: float
    leave_t: float

    @property
    def seconds(self) -> float:
        return self.leave_t - self.enter_t


@dataclass(frozen=True, slots=True)
class QueueWait:
    """A wait at the tills: from joining a ``queue`` zone to reaching a ``checkout`` zone.

    Both times are the zone stays' entry times (first moment inside, after hysteresis).
    """

    queue_zone: str
    checkout_zone: str
    joined_t: float
    reached_t: float

    @property
    def wait_s(self) -> float:
        return self.reached_t - self.joined_t


@dataclass(frozen=True, slots=True)
class LineCrossing:
    """A counting line crossed by a trajectory; ``in`` is towards the line's inside."""

    line_id: str
    t: float
    direction: Literal["in", "out"]


@dataclass(frozen=True, slots=True)
class VisitFeatures:
    """What a visit did, as named numbers plus its zone stays and line crossings.

    Attributes:
        visit: the visit measured.
        features: feature name -> finite number (see ``edge.visits.features``).
        stays: zone stays in order of entry.
        crossings: line crossings in time order.
        queue_waits: waits from a queue zone to a checkout zone, in time order.
    """

    visit: Visit
    features: Mapping[str, float]
    stays: tuple[ZoneStay, ...]
    crossings: tuple[LineCrossing, ...]
    queue_waits: tuple[QueueWait, ...] = ()

    @property
    def zone_sequence(self) -> list[str]:
        return [stay.zone_id for stay in self.stays]

    @property
    def zone_dwell(self) -> dict[str, float]:
        dwell: dict[str, float] = {}
        for stay in self.stays:
            dwell[stay.zone_id] = dwell.get(stay.zone_id, 0.0) + stay.seconds
        return dwell

    @property
    def zone_entries(self) -> dict[str, int]:
        entries: dict[str, int] = {}
        for stay in self.stays:
            entries[stay.zone_id] = entries.get(stay.zone_id, 0) + 1
        return entries


@dataclass(frozen=True, slots=True)
class TraitScores:
    """A visit's trait probabilities and micro-segment memberships.

    Attributes:
        traits: trait name -> score in [0, 1] of the named pole (the opposite pole is
            ``1 - p``); a trait counts for a visit at ``p >= 0.5``. ``None`` for every
            trait of a visit too short to say (the spec's ``trait_evidence``).
        segments: segment name -> membership probability (they sum to 1).
        spec_version: the segment spec that produced them.
    """

    traits: Mapping[str, float | None]
    segments: Mapping[str, float]
    spec_version: str


@dataclass(frozen=True, slots=True)
class VisitResult:
    """A visit, measured and classified: what is stored or printed."""

    visit_id: str
    measured: VisitFeatures
    scores: TraitScores

    def to_json(self) -> dict[str, Any]:
        """The ``edge visits import --json`` object (a stable interface)."""
        visit = self.measured.visit
        return {
            "visit_id": self.visit_id,
            "track_id": visit.track_id,
            "camera_id": visit.camera_id,
            "start_t": visit.start_t,
            "end_t": visit.end_t,
            "features": dict(self.measured.features),
            "zone_dwell": self.measured.zone_dwell,
            "zone_sequence": self.measured.zone_sequence,
            "line_crossings": [
                {"line_id": c.line_id, "t": c.t, "direction": c.direction}
                for c in self.measured.crossings
            ],
            "queue_waits": [
                {"queue": w.queue_zone, "checkout": w.checkout_zone, "joined_t": w.joined_t,
                 "reached_t": w.reached_t, "wait_s": w.wait_s}
                for w in self.measured.queue_waits
            ],
            "traits": dict(self.scores.traits),
            "segments": dict(self.scores.segments),
            "spec_version": self.scores.spec_version,
        }
