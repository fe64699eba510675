"""A ByteTrack-class multi-object tracker.

Why this design: ByteTrack (Zhang et al., ECCV 2022) associates in two stages.
Confident detections are matched first to every live track; then the weak ones,
which are usually people partly hidden behind another shopper or a shelf, may
only *extend* tracks that are still unmatched, never start new ones. This keeps
identities through occlusion without letting noise spawn tracks.

Knobs (see :class:`edge.config.vision.TrackerConfig`):

- ``track_activation_threshold``: score splitting high from low detections.
- ``low_confidence_threshold``: below this a detection is ignored.
- ``new_track_threshold``: an unmatched high detection starts a tentative track
  only above this score.
- ``minimum_consecutive_frames``: a tentative track is confirmed (and gets an id)
  after being matched this many frames in a row; a miss before that deletes it.
  This is the birth hysteresis.
- ``lost_track_buffer_s``: a confirmed track unmatched for longer is retired.
  This is the death hysteresis; it is in seconds so it holds at any frame rate.
- ``high_match_iou`` / ``low_match_iou`` / ``unconfirmed_match_iou``: least IoU
  between a track's predicted box and a detection for each stage to match them.

Assignment is solved with ``lap.lapjv`` (Jonker-Volgenant). Per-track state lives
only in ``self._tracks`` and is dropped when a track is retired, so memory stays
flat however many people pass.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

import lap
import numpy as np

from edge.config.vision import TrackerConfig
from edge.records import Detections, Tracks
from edge.tracking.kalman import KalmanBoxFilter


class TrackState(enum.Enum):
    TENTATIVE = "tentative"
    TRACKED = "tracked"
    LOST = "lost"


@dataclass(slots=True)
class _Track:
    kalman: KalmanBoxFilter
    score: float
    state: TrackState = TrackState.TENTATIVE
    hits: int = 1
    last_seen: float = 0.0
    track_id: int = -1
    matched_row: int = field(default=-1)


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU matrix ``(len(a), len(b))`` of two sets of xyxy boxes."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)))
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-9), 0.0)


def _assign(similarity: np.ndarray, min_similarity: float) -> list[tuple[int, int]]:
    """Maximum-similarity one-to-one matching, keeping pairs above ``min_similarity``."""
    if similarity.size == 0:
        return []
    cost = 1.0 - similarity
    _, row_to_col, _ = lap.lapjv(cost, extend_cost=True, cost_limit=1.0 - min_similarity)
    return [(row, int(col)) for row, col in enumerate(row_to_col) if col >= 0]


class ByteTracker:
    """Tracks people across the frames of one camera.

    Example:
        >>> tracker = ByteTracker(TrackerConfig(), frame_rate=7.0)
        >>> tracks = tracker.update(detections, timestamp=0.0)
    """

    def __init__(self, config: TrackerConfig, frame_rate: float) -> None:
        self.config = config
        self.frame_rate = frame_rate
        self._tracks: list[_Track] = []
        self._next_id = 1

    def reset(self) -> None:
        """Forget every track; ids restart at 1."""
        self._tracks = []
        self._next_id = 1

    @property
    def live_track_count(self) -> int:
        """Tracks held in memory (tentative, tracked and lost)."""
        return len(self._tracks)

    def update(self, detections: Detections, timestamp: float) -> Tracks:
        """Advance one frame and return the confirmed tracks seen in it."""
        config = self.config
        confidence = detections.confidence
        high = np.flatnonzero(confidence >= config.track_activation_threshold)
        low = np.flatnonzero(
            (confidence >= config.low_confidence_threshold)
            & (confidence < config.track_activation_threshold)
        )

        for track in self._tracks:
            track.kalman.predict()
            track.matched_row = -1

        confirmed = [t for t in self._tracks if t.state is not TrackState.TENTATIVE]
        tentative = [t for t in self._tracks if t.state is TrackState.TENTATIVE]

        # Stage 1: confident detections against every confirmed track, lost ones included.
        unmatched_high = self._match(confirmed, detections, high, config.high_match_iou, timestamp)
        # Stage 2: weak detections may only extend tracks that were tracked last frame.
        still_tracked = [
            t for t in confirmed if t.matched_row < 0 and t.state is TrackState.TRACKED
        ]
        self._match(still_tracked, detections, low, config.low_match_iou, timestamp)
        # Stage 3: tentative tracks against what is left of the confident detections.
        unmatched_high = self._match(
            tentative, detections, unmatched_high, config.unconfirmed_match_iou, timestamp
        )

        survivors = []
        for track in self._tracks:
            if track.matched_row >= 0:
                survivors.append(track)
            elif track.state is TrackState.TENTATIVE:
                continue  # birth hysteresis: a miss before confirmation ends it
            elif timestamp - track.last_seen <= config.lost_track_buffer_s:
                track.state = TrackState.LOST
                survivors.append(track)
            # else: retired; its state is dropped here
        for row in unmatched_high:
            if confidence[row] >= config.new_track_threshold:
                track = _Track(
                    KalmanBoxFilter(detections.xyxy[row]),
                    float(confidence[row]),
                    last_seen=timestamp,
                    matched_row=int(row),
                )
                self._promote(track)
                survivors.append(track)
        self._tracks = survivors
        return self._report(detections)

    def _match(
        self,
        tracks: list[_Track],
        detections: Detections,
        rows: np.ndarray,
        min_iou: float,
        timestamp: float,
    ) -> np.ndarray:
        """Match ``tracks`` to detections ``rows``; update the matched; return unmatched rows."""
        if not tracks or len(rows) == 0:
            return rows
        predicted = np.array([track.kalman.box for track in tracks])
        similarity = box_iou(predicted, detections.xyxy[rows])
        taken = np.zeros(len(rows), bool)
        for track_index, col in _assign(similarity, min_iou):
            track, row = tracks[track_index], int(rows[col])
            track.kalman.update(detections.xyxy[row])
            track.score = float(detections.confidence[row])
            track.last_seen = timestamp
            track.matched_row = row
            track.hits += 1
            if track.state is TrackState.LOST:
                track.state = TrackState.TRACKED
            self._promote(track)
            taken[col] = True
        return rows[~taken]

    def _promote(self, track: _Track) -> None:
        if track.state is TrackState.TENTATIVE and track.hits >= self.config.minimum_consecutive_frames:
            track.state = TrackState.TRACKED
            track.track_id = self._next_id
            self._next_id += 1

    def _report(self, detections: Detections) -> Tracks:
        shown = [
            t for t in self._tracks if t.state is TrackState.TRACKED and t.matched_row >= 0
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
