"""A ByteTrack-class multi-object tracker, with observation-centric recovery.

Why this design: ByteTrack (Zhang et al., ECCV 2022) associates in stages.
Confident detections are matched first to every live track; then the weak ones,
which are usually people partly hidden behind another shopper or a shelf, may
only *extend* tracks that were tracked a moment ago, never start new ones. This
keeps identities through occlusion without letting noise spawn tracks.

Three ideas from OC-SORT (Cao et al., CVPR 2023), all motion-only, without any
appearance model:

- **Recovery by centre distance.** A person hidden for a second or two comes
  back where the motion model no longer overlaps them well (at 5-7 frames/s a
  walker moves a third of a body width per frame), so IoU fails. Confident
  detections left over after the IoU stages get a second chance against the
  tracks still unmatched, by the distance between centres measured in body
  heights, and only with a similar box height.
- **Observation-centric re-update.** While a track is lost, the Kalman filter
  runs on predictions alone and its velocity drifts. When the track is found
  again, the filter is rewound to its last observation and re-run along a
  straight line of virtual observations to the new one, so it leaves the
  occlusion with the velocity the person really had.
- **Observation-centric momentum** (off by default, ``direction_weight`` 0). In the
  IoU stages a detection costs more the further its direction from the track's last
  observation turns away from the way the track was moving, measured between its
  own observations over ``direction_span_s`` rather than read from the Kalman
  velocity, which jitter and occlusion make unsteady. Meant for two people crossing,
  whose predicted boxes overlap both detections.

Knobs (every one is a field of :class:`edge.config.vision.TrackerConfig`, whose
descriptions say what each does):

- ``track_activation_threshold`` / ``low_confidence_threshold``: split confident from
  weak detections; below the low one a box is ignored.
- ``new_track_threshold``: least score for an unmatched detection to start a track.
- ``high_match_iou`` / ``low_match_iou`` / ``unconfirmed_match_iou``: least IoU with
  the predicted box in stages 1, 2 and 4.
- ``recovery_max_distance``: stage 3's gate, in body heights.
- ``direction_weight`` / ``direction_span_s``: observation-centric momentum, λ and the
  span its direction is measured over (0 turns it off).
- ``max_height_ratio``: no match between boxes whose heights differ more (a box
  around a head must not take over a walker's track).
- ``position_noise`` / ``acceleration_noise``: the Kalman filter's noise (the second
  in body heights per second per second, turned into a per-frame weight with the
  frame rate).
- ``minimum_track_age_s``: birth hysteresis; a tentative track is confirmed after
  being matched in every frame for that long (rounded to whole frames at the
  tracker's frame rate, at least one), and a miss before then deletes it.
- ``lost_track_buffer_s``: death hysteresis; a confirmed track unmatched for longer is
  retired.

Times are in seconds and sizes relative to the boxes, so one config holds at any
frame rate and image size.

Assignment is solved with ``lap.lapjv`` (Jonker-Volgenant). Per-track state lives
only in ``self._tracks`` and is dropped when a track is retired, so memory stays
flat however many people pass (STYLE A4).
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field

import numpy as np

from edge.config.vision import TrackerConfig
from edge.records import Detections, Tracks
from edge.tracking.association import (
    assign,
    box_iou,
    centre_distance,
    direction_cost,
    height_ratio,
)
from edge.tracking.kalman import KalmanBoxFilter


class TrackState(enum.Enum):
    """Life cycle of a track: tentative -> tracked <-> lost -> (retired, forgotten)."""

    TENTATIVE = "tentative"
    TRACKED = "tracked"
    LOST = "lost"


@dataclass(slots=True, eq=False)
class _Track:
    """One person's motion state. Lives in the tracker only until retired."""

    kalman: KalmanBoxFilter
    observed: np.ndarray  # the detector's last box for this track, xyxy
    score: float
    last_seen: float
    state: TrackState = TrackState.TENTATIVE
    hits: int = 1
    frames_unseen: int = 0  # predictions since the last observation
    anchor: KalmanBoxFilter | None = None  # the filter as of the last observation
    # Observed centres (time, x, y) within direction_span_s of the last one, oldest first,
    # and the unit vector of the way they went (NaN until two observations).
    recent: list[tuple[float, float, float]] = field(default_factory=list)
    heading: np.ndarray = field(default_factory=lambda: np.full(2, np.nan))
    track_id: int | None = None  # given on confirmation
    matched_row: int | None = None  # detection row matched in the current frame


class ByteTracker:
    """Tracks people across the frames of one camera.

    Args:
        config: the tracker's thresholds (see :class:`TrackerConfig`).
        frame_rate: frames per second the tracker will be fed: turns the config's
            seconds into frames (birth hysteresis, the Kalman velocity noise). The
            death hysteresis reads the timestamps given to :meth:`update`.

    Raises:
        ValueError: ``frame_rate`` is zero, negative, NaN or infinite. There is no
            safe guess: every time-based setting would silently mean something else.

    Example:
        >>> tracker = ByteTracker(TrackerConfig(), frame_rate=7.0)
        >>> tracks = tracker.update(detections, timestamp=0.0)
    """

    def __init__(self, config: TrackerConfig, frame_rate: float) -> None:
        try:
            rate = float(frame_rate)
        except (TypeError, ValueError):
            rate = math.nan
        if not (math.isfinite(rate) and rate > 0):
            raise ValueError(
                f"the tracker needs the frame rate it is fed, > 0 frames/s, got {frame_rate!r}; "
                "give the camera's fps (or detect_fps) in the site config"
            )
        self.config = config
        self.frame_rate = rate
        self._frames_to_confirm = config.frames_to_confirm(self.frame_rate)
        self._velocity_weight = config.velocity_weight(self.frame_rate)
        self._tracks: list[_Track] = []
        self._next_id = 1
        self.skipped_detections = 0  # boxes dropped as non-finite or empty

    def reset(self) -> None:
        """Forget every track; ids restart at 1."""
        self._tracks = []
        self._next_id = 1
        self.skipped_detections = 0

    def number_after(self, last_id: int) -> None:
        """Number the next tracks after ``last_id``: a run taken up again by a new tracker
        (a restarted camera worker) keeps one person per id."""
        self._next_id = max(self._next_id, last_id + 1)

    @property
    def live_track_count(self) -> int:
        """Tracks held in memory (tentative, tracked and lost)."""
        return len(self._tracks)

    def update(self, detections: Detections, timestamp: float) -> Tracks:
        """Advance one frame and return the confirmed tracks seen in it.

        Args:
            detections: this frame's detections; never modified.
            timestamp: the frame's time in seconds (any origin, increasing).

        Returns:
            One row per confirmed track matched in this frame, with the matched
            detection's own box, score and ``data``.
        """
        config = self.config
        high, low = self._split_by_score(detections)
        self._predict()
        confirmed = [t for t in self._tracks if t.state is not TrackState.TENTATIVE]
        tentative = [t for t in self._tracks if t.state is TrackState.TENTATIVE]

        # Stage 1: confident detections against every confirmed track, lost ones included.
        rest = self._match_iou(confirmed, detections, high, config.high_match_iou, timestamp)
        # Stage 2: weak detections may only extend tracks that were tracked last frame.
        recent = [t for t in confirmed if t.matched_row is None and t.state is TrackState.TRACKED]
        self._match_iou(recent, detections, low, config.low_match_iou, timestamp)
        # Stage 3: what IoU could not pair, by centre distance (people back from occlusion).
        unmatched = [t for t in confirmed if t.matched_row is None]
        rest = self._match_distance(unmatched, detections, rest, timestamp)
        # Stage 4: tentative tracks against what is left of the confident detections.
        rest = self._match_iou(tentative, detections, rest, config.unconfirmed_match_iou, timestamp)

        self._retire_unmatched(timestamp)
        self._start_tracks(detections, rest, timestamp)
        return self._report(detections)

    def _split_by_score(self, detections: Detections) -> tuple[np.ndarray, np.ndarray]:
        """Row indices of the confident ("high") and the weak ("low") detections.

        A box with a NaN, an infinity or no area would poison a Kalman filter for good:
        it is skipped and counted, never raised on, so one bad frame cannot stop a camera.
        """
        config, xyxy, confidence = self.config, detections.xyxy, detections.confidence
        usable = np.isfinite(xyxy).all(axis=1) & np.isfinite(confidence)
        usable &= (xyxy[:, 2] > xyxy[:, 0]) & (xyxy[:, 3] > xyxy[:, 1])
        self.skipped_detections += int(len(detections) - usable.sum())
        high = usable & (confidence >= config.track_activation_threshold)
        low = usable & (confidence >= config.low_confidence_threshold) & ~high
        return np.flatnonzero(high), np.flatnonzero(low)

    def _predict(self) -> None:
        """Move every track one frame ahead; remember each seen track's filter."""
        for track in self._tracks:
            if track.frames_unseen == 0:
                track.anchor = track.kalman.copy()
            track.kalman.predict(hold_size=track.state is TrackState.LOST)
            track.frames_unseen += 1
            track.matched_row = None

    def _retire_unmatched(self, timestamp: float) -> None:
        """Birth and death hysteresis for the tracks no detection matched."""
        survivors = []
        for track in self._tracks:
            if track.matched_row is not None:
                survivors.append(track)
            elif track.state is TrackState.TENTATIVE:
                continue  # birth hysteresis: a miss before confirmation ends it
            elif timestamp - track.last_seen <= self.config.lost_track_buffer_s:
                track.state = TrackState.LOST
                survivors.append(track)
            # else: death hysteresis ran out; the track and all its state are dropped here
        self._tracks = survivors

    def _start_tracks(self, detections: Detections, rows: np.ndarray, timestamp: float) -> None:
        """A tentative track for each unmatched detection confident enough to start one."""
        config = self.config
        for row in rows:
            if detections.confidence[row] < config.new_track_threshold:
                continue
            box = detections.xyxy[row].astype(np.float64)
            track = _Track(
                KalmanBoxFilter(box, config.position_noise, self._velocity_weight),
                observed=box,
                score=float(detections.confidence[row]),
                last_seen=timestamp,
                matched_row=int(row),
            )
            self._observe(track, box, timestamp)
            self._promote(track)
            self._tracks.append(track)

    def _match_iou(
        self,
        tracks: list[_Track],
        detections: Detections,
        rows: np.ndarray,
        min_iou: float,
        timestamp: float,
    ) -> np.ndarray:
        """Match ``tracks`` to detection ``rows`` by IoU with the predicted boxes.

        Returns:
            The rows left unmatched.
        """
        if not tracks or len(rows) == 0:
            return rows
        boxes = detections.xyxy[rows]
        predicted = np.array([track.kalman.box for track in tracks])
        iou = box_iou(predicted, boxes)
        cost = 1.0 - iou
        observed = np.array([track.observed for track in tracks])
        refused = (iou < min_iou) | (height_ratio(observed, boxes) > self.config.max_height_ratio)
        weight = self.config.direction_weight
        if weight > 0:
            headings = np.array([track.heading for track in tracks])
            origins = (observed[:, :2] + observed[:, 2:]) / 2
            cost += weight * direction_cost(headings, origins, boxes)
        cost[refused] = np.inf
        # The gate stays on IoU alone: every pair it lets through costs at most this.
        pairs = assign(cost, 1.0 - min_iou + weight / 2)
        return self._apply(tracks, detections, rows, pairs, timestamp)

    def _match_distance(
        self,
        tracks: list[_Track],
        detections: Detections,
        rows: np.ndarray,
        timestamp: float,
    ) -> np.ndarray:
        """Match by the distance from each track's predicted centre, in body heights.

        Only detections of a similar height may match (``max_height_ratio``).

        Returns:
            The rows left unmatched.
        """
        config = self.config
        if not tracks or len(rows) == 0 or config.recovery_max_distance <= 0:
            return rows
        boxes = detections.xyxy[rows]
        predicted = np.array([track.kalman.box for track in tracks])
        observed = np.array([track.observed for track in tracks])
        distance = centre_distance(predicted, boxes)
        sizes_differ = height_ratio(observed, boxes) > config.max_height_ratio
        distance[sizes_differ] = np.inf
        pairs = assign(distance, config.recovery_max_distance)
        return self._apply(tracks, detections, rows, pairs, timestamp)

    def _apply(
        self,
        tracks: list[_Track],
        detections: Detections,
        rows: np.ndarray,
        pairs: list[tuple[int, int]],
        timestamp: float,
    ) -> np.ndarray:
        """Update each matched track with its detection; return the unmatched rows."""
        taken = np.zeros(len(rows), bool)
        for track_index, col in pairs:
            track, row = tracks[track_index], int(rows[col])
            box = detections.xyxy[row].astype(np.float64)
            if track.frames_unseen > 1 and track.anchor is not None:
                self._reupdate(track, box)
            else:
                track.kalman.update(box)
            track.observed = box
            self._observe(track, box, timestamp)
            track.score = float(detections.confidence[row])
            track.last_seen = timestamp
            track.frames_unseen = 0
            track.matched_row = row
            track.hits += 1
            if track.state is TrackState.LOST:
                track.state = TrackState.TRACKED
            self._promote(track)
            taken[col] = True
        return rows[~taken]

    def _observe(self, track: _Track, box: np.ndarray, timestamp: float) -> None:
        """Record an observed centre and the heading it gives (observation-centric momentum).

        The heading runs from the oldest observation at most ``direction_span_s`` old to
        this one, or from the previous observation when none is that recent (after a gap);
        only those within the span are kept, so the state per track stays bounded.
        Nothing is kept while the term is off (the default): it would only cost time.
        """
        if self.config.direction_weight <= 0:
            return
        x, y = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
        since = timestamp - self.config.direction_span_s - 1e-9
        window = [seen for seen in track.recent if seen[0] >= since]
        if track.recent:
            _, x0, y0 = window[0] if window else track.recent[-1]
            length = math.hypot(x - x0, y - y0)
            track.heading = (
                np.array([x - x0, y - y0]) / length if length > 0 else np.full(2, np.nan)
            )
        window.append((timestamp, x, y))
        track.recent = window

    @staticmethod
    def _reupdate(track: _Track, box: np.ndarray) -> None:
        """OC-SORT's observation-centric re-update: rewind the filter to the last
        observation and replay the gap along straight-line virtual observations."""
        assert track.anchor is not None
        kalman, steps = track.anchor, track.frames_unseen
        for step in range(1, steps):
            kalman.predict()
            kalman.update(track.observed + (box - track.observed) * (step / steps))
        kalman.predict()
        kalman.update(box)
        track.kalman, track.anchor = kalman, None

    def _promote(self, track: _Track) -> None:
        """Birth hysteresis: confirm a tentative track after enough matched frames."""
        if (
            track.state is TrackState.TENTATIVE
            and track.hits >= self._frames_to_confirm
        ):
            track.state = TrackState.TRACKED
            track.track_id = self._next_id
            self._next_id += 1

    def _report(self, detections: Detections) -> Tracks:
        shown = [
            t for t in self._tracks if t.state is TrackState.TRACKED and t.matched_row is not None
        ]
        if not shown:
            return Tracks.empty()
        rows = np.array([t.matched_row for t in shown], dtype=np.int64)
        return Tracks(
            tracker_id=np.array([t.track_id for t in shown], dtype=np.int64),
            xyxy=detections.xyxy[rows].astype(np.float32),
            confidence=detections.confidence[rows].astype(np.float32),
            data={key: column[rows] for key, column in detections.data.items()},
        )
