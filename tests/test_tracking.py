"""The tracker on synthetic boxes: birth and death hysteresis, occlusion bridging,
recovery, the size gate, bounded state."""

from __future__ import annotations

import gc
import sys
import types

import numpy as np
import pytest

from edge.config.vision import TrackerConfig
from edge.records import Detections
from edge.tracking import ByteTracker
from edge.tracking.association import assign, box_iou, centre_distance, direction_cost

FPS = 7.0
WIDTH, HEIGHT = 30.0, 80.0
# These tests check mechanisms with scores and timings of their own, not the defaults
# (chosen on the public detections of six scenes: docs/vision.md).
SYNTHETIC = {"track_activation_threshold": 0.5, "new_track_threshold": 0.6,
             "minimum_track_age_s": 3 / FPS, "lost_track_buffer_s": 4.0}


def config(**overrides: float) -> TrackerConfig:
    return TrackerConfig(**{**SYNTHETIC, **overrides})


def person(x: float, y: float = 200.0, height: float = HEIGHT) -> list[float]:
    """An xyxy box of a standing person whose top-left corner is (x, y)."""
    return [x, y, x + WIDTH * height / HEIGHT, y + height]


def dets(*boxes: list[float], scores: list[float] | None = None) -> Detections:
    xyxy = np.array(boxes, dtype=np.float32).reshape(-1, 4)
    confidence = np.array(scores if scores is not None else [0.9] * len(xyxy), np.float32)
    return Detections(xyxy, confidence)


def feed(tracker: ByteTracker, frames: list[Detections], start: int = 0) -> list[list[int]]:
    """Ids reported per frame."""
    return [
        [int(i) for i in tracker.update(d, (start + k) / FPS).tracker_id]
        for k, d in enumerate(frames)
    ]


def walker(frames: int, start_x: float = 100.0, step: float = 10.0, score: float = 0.9):
    return [dets(person(start_x + step * k), scores=[score]) for k in range(frames)]


def test_one_walker_keeps_one_id():
    ids = feed(ByteTracker(config(), FPS), walker(40))
    assert {i for frame in ids for i in frame} == {1}


def test_birth_hysteresis_confirms_after_consecutive_frames():
    tracker = ByteTracker(config(minimum_track_age_s=3 / FPS), FPS)
    ids = feed(tracker, walker(5))
    assert ids == [[], [], [1], [1], [1]]


def test_a_miss_before_confirmation_ends_a_tentative_track():
    """Two frames seen, one missed, then seen again: the first two never count."""
    tracker = ByteTracker(config(minimum_track_age_s=3 / FPS), FPS)
    frames = walker(8)
    frames[2] = Detections.empty()
    ids = feed(tracker, frames)
    assert ids[:5] == [[], [], [], [], []]
    assert ids[5:] == [[1], [1], [1]]


def test_new_tracks_need_a_confident_detection():
    tracker = ByteTracker(config(new_track_threshold=0.6), FPS)
    assert feed(tracker, walker(6, score=0.55)) == [[]] * 6


def test_low_score_boxes_bridge_an_occlusion():
    """A shopper half-hidden behind another scores low for a while: ByteTrack's second
    stage keeps extending the track with those weak boxes, under the same id."""
    frames = walker(30)
    for k in range(10, 20):
        frames[k] = dets(frames[k].xyxy[0].tolist(), scores=[0.3])
    ids = feed(ByteTracker(config(), FPS), frames)
    assert all(frame == [1] for frame in ids[2:])


def test_low_score_boxes_never_start_tracks():
    ids = feed(ByteTracker(config(), FPS), walker(10, score=0.3))
    assert ids == [[]] * 10


def test_boxes_below_the_low_threshold_are_ignored():
    frames = walker(30)
    for k in range(10, 20):
        frames[k] = dets(frames[k].xyxy[0].tolist(), scores=[0.05])
    ids = feed(ByteTracker(config(low_confidence_threshold=0.1), FPS), frames)
    assert ids[10:20] == [[]] * 10  # not reported while unseen...
    assert ids[25] == [1]  # ...but the id survives the gap


@pytest.mark.parametrize("gap_s, same_id", [(3.0, True), (5.0, False)])
def test_death_after_lost_track_buffer(gap_s, same_id):
    """A person standing still, hidden for gap_s: within lost_track_buffer_s (4 s) the
    track is found again under its id; after it, the track was retired."""
    tracker = ByteTracker(config(lost_track_buffer_s=4.0), FPS)
    still = [dets(person(300)) for _ in range(10)]
    gap = round(gap_s * FPS)
    ids = feed(tracker, still)
    feed(tracker, [Detections.empty()] * gap, start=10)
    after = feed(tracker, still, start=10 + gap)
    assert ids[-1] == [1]
    assert after[-1] == ([1] if same_id else [2])


def test_retired_tracks_free_their_state():
    tracker = ByteTracker(config(lost_track_buffer_s=1.0), FPS)
    feed(tracker, walker(10))
    assert tracker.live_track_count == 1
    feed(tracker, [Detections.empty()] * 10, start=10)
    assert tracker.live_track_count == 0


def _hidden_walker(offset: float) -> tuple[list[Detections], int]:
    """Walks right 10 px/frame for 20 frames, hidden 4 frames, reappears ``offset`` px
    behind where constant velocity would put it (it slowed down while hidden)."""
    frames = walker(20)
    frames += [Detections.empty()] * 4
    last_seen = 100.0 + 10 * 19
    reappear = last_seen + 10 * 5 - offset
    frames += [dets(person(reappear + 4 * k)) for k in range(6)]
    return frames, 24


def test_recovery_by_centre_distance_after_occlusion():
    """Back from behind a shelf off the predicted path (IoU with the prediction below
    high_match_iou), but within recovery_max_distance body heights: same id."""
    frames, back = _hidden_walker(offset=28.0)
    ids = feed(ByteTracker(config(recovery_max_distance=0.5), FPS), frames)
    assert ids[back] == [1]
    without = feed(ByteTracker(config(recovery_max_distance=0.0), FPS), frames)
    assert 1 not in {i for frame in without[back:] for i in frame}


def test_a_head_sized_box_does_not_take_over_a_track():
    """Regression: a detector box around a head (a third of the body) matched a
    walker's track, shrank its Kalman height to nothing, and the person came back
    under a new id. The height gate refuses such a match."""
    tracker = ByteTracker(config(max_height_ratio=2.0), FPS)
    feed(tracker, walker(10))
    head = [200.0, 200.0, 215.0, 225.0]
    reported = tracker.update(dets(head), 10 / FPS)
    assert len(reported) == 0
    body_again = tracker.update(dets(person(210)), 11 / FPS)
    assert body_again.tracker_id.tolist() == [1]


def test_two_people_crossing_keep_their_ids():
    frames = [
        dets(person(100 + 12 * k), person(400 - 12 * k, y=205)) for k in range(26)
    ]
    tracker = ByteTracker(config(), FPS)
    first = tracker.update(frames[0], 0.0)
    assert len(first) == 0
    by_direction: dict[int, set[str]] = {}
    for k, frame in enumerate(frames[1:], start=1):
        tracks = tracker.update(frame, k / FPS)
        for track_id, box in zip(tracks.tracker_id, tracks.xyxy, strict=True):
            moving_right = abs(box[0] - (100 + 12 * k)) < 1
            by_direction.setdefault(int(track_id), set()).add("right" if moving_right else "left")
    assert sorted(by_direction) == [1, 2]
    assert all(len(directions) == 1 for directions in by_direction.values())



def _stand_then_cross(weight: float) -> list[tuple[int | None, int | None]]:
    """Two shoppers stand 10 px apart at a shelf for 10 frames (B a little lower), then
    walk towards each other at 8 px/frame and pass. Ids per frame as (A's, B's)."""
    frames = [
        dets(person(200 + 8 * walked), person(240 - 8 * walked, y=210))
        for walked in [0] * 9 + list(range(12))
    ]
    tracker = ByteTracker(config(direction_weight=weight), FPS)
    owners = []
    for k, frame in enumerate(frames):
        tracks = tracker.update(frame, k / FPS)
        by_box = {
            int(np.argmin(np.abs(frame.xyxy - box).sum(axis=1))): int(track_id)
            for track_id, box in zip(tracks.tracker_id, tracks.xyxy, strict=True)
        }
        owners.append((by_box.get(0), by_box.get(1)))
    return owners


@pytest.mark.parametrize("weight", [0.1, 0.2, 0.4])
def test_direction_term_keeps_two_people_who_cross_just_after_starting(weight):
    """Observation-centric momentum. Kalman velocities learnt while the two stood still
    lag once they walk, so at the crossing each predicted box overlaps the other
    person's detection more than its own: IoU alone swaps the ids (asserted below, with
    direction_weight 0). The way each was seen moving, measured between observations,
    points at its own detection, and the direction term keeps the ids."""
    assert set(_stand_then_cross(weight)[2:]) == {(1, 2)}
    assert (2, 1) in _stand_then_cross(0.0)


def test_direction_cost():
    heading = np.array([[1.0, 0.0], [np.nan, np.nan]])
    origin = np.array([[0.0, 0.0], [0.0, 0.0]])
    ahead, aside, back, on_origin = (
        [9, -1, 11, 1], [-1, 9, 1, 11], [-11, -1, -9, 1], [-1, -1, 1, 1])
    cost = direction_cost(heading, origin, np.array([ahead, aside, back, on_origin], float))
    np.testing.assert_allclose(cost, [[-0.5, 0.0, 0.5, 0.0], [0.0, 0.0, 0.0, 0.0]], atol=1e-9)
    assert direction_cost(heading, origin, np.zeros((0, 4))).shape == (2, 0)


@pytest.mark.parametrize(("fps", "kept"), [(7.0, 2), (28.0, 6)])
def test_heading_is_measured_over_seconds_and_bounded(fps, kept):
    """direction_span_s 0.2: at 7 frames/s the heading spans one frame, at 28 five; a
    track holds only the observations within the span, however long it lives (and none
    while the term is off)."""
    off = ByteTracker(config(direction_span_s=0.2), fps)
    for k in range(10):
        off.update(dets(person(100 + 3 * k, y=200 + k)), k / fps)
    assert off._tracks[0].recent == []
    tracker = ByteTracker(config(direction_span_s=0.2, direction_weight=0.1), fps)
    for k in range(100):
        tracker.update(dets(person(100 + 3 * k, y=200 + k)), k / fps)
    (track,) = tracker._tracks
    assert len(track.recent) == kept
    np.testing.assert_allclose(track.heading, np.array([3.0, 1.0]) / np.hypot(3, 1))


def test_reports_the_detector_boxes_and_passes_data_through_untouched():
    tracker = ByteTracker(config(minimum_track_age_s=0.0), FPS)
    detections = Detections(
        np.array([person(100), person(400)], np.float32),
        np.array([0.9, 0.8], np.float32),
        {"class_id": np.array([0, 0]), "camera_row": np.array([7, 8])},
    )
    before = (detections.xyxy.copy(), detections.confidence.copy())
    tracks = tracker.update(detections, 0.0)
    np.testing.assert_array_equal(detections.xyxy, before[0])
    np.testing.assert_array_equal(detections.confidence, before[1])
    order = np.argsort(tracks.data["camera_row"])
    np.testing.assert_array_equal(tracks.xyxy[order], detections.xyxy)
    assert tracks.data["camera_row"][order].tolist() == [7, 8]


def test_non_finite_boxes_are_skipped_and_counted():
    tracker = ByteTracker(config(minimum_track_age_s=0.0), FPS)
    bad = dets(person(100), [np.nan, 0, 10, 10], [5, 5, 5, 5], scores=[0.9, 0.9, 0.9])
    tracks = tracker.update(bad, 0.0)
    assert len(tracks) == 1
    assert tracker.skipped_detections == 2


def test_reset_forgets_everything():
    tracker = ByteTracker(config(), FPS)
    feed(tracker, walker(10))
    tracker.reset()
    assert tracker.live_track_count == 0
    assert feed(tracker, walker(3)) == [[], [], [1]]


def _deep_size(root: object) -> int:
    """Bytes held by ``root`` and everything it references (modules, classes and
    functions excluded): what the tracker keeps alive."""
    seen: set[int] = set()
    stack, total = [root], 0
    while stack:
        item = stack.pop()
        if id(item) in seen or isinstance(item, type | types.ModuleType | types.FunctionType):
            continue
        seen.add(id(item))
        total += sys.getsizeof(item)
        stack.extend(gc.get_referents(item))
    return total


def test_state_stays_bounded_over_100000_ids():
    """STYLE A4: per-id state must go when the id goes. 100,000 people pass through a
    10x10 grid of spots, one frame each; what the tracker holds must not grow."""
    quick = config(minimum_track_age_s=0.0, lost_track_buffer_s=0.0)
    tracker = ByteTracker(quick, FPS)
    spots = np.array(
        [person(10 + 75 * col, y=10 + 100 * row) for row in range(10) for col in range(10)],
        np.float32,
    )
    present = Detections(spots, np.full(len(spots), 0.9, np.float32))
    frame = 0
    largest = 0

    def pass_people(cycles: int) -> int:
        """Run ``cycles`` x 100 people through; return the tracker's size at the peak."""
        nonlocal frame, largest
        for _ in range(cycles):
            for detections in (present, Detections.empty()):
                tracker.update(detections, frame / FPS)
                frame += 1
                largest = max(largest, tracker.live_track_count)
        tracker.update(present, frame / FPS)  # a full house, to measure
        frame += 1
        size = _deep_size(tracker)
        tracker.update(Detections.empty(), frame / FPS)
        frame += 1
        return size

    after_10k = pass_people(99)
    after_100k = pass_people(899)
    assert tracker._next_id - 1 == 100_000
    assert largest <= len(spots)
    assert tracker.live_track_count == 0
    assert after_100k <= after_10k + 1024, (after_10k, after_100k)


def test_association_helpers():
    a = np.array([[0, 0, 10, 10]], float)
    b = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30]], float)
    np.testing.assert_allclose(box_iou(a, b), [[1.0, 1 / 3, 0.0]])
    np.testing.assert_allclose(centre_distance(a, b)[0, :2], [0.0, 0.5])
    cost = np.array([[0.1, np.nan], [np.inf, 0.2]])
    assert assign(cost, 0.5) == [(0, 0), (1, 1)]
    assert assign(np.array([[0.9]]), 0.5) == []


def test_kalman_shortcut_equals_the_textbook_update():
    """The update divides by a diagonal innovation covariance instead of solving; check
    it against the full formula after predictions, updates and a re-anchored copy."""
    from edge.tracking.kalman import KalmanBoxFilter, xyxy_to_xyah

    kalman = KalmanBoxFilter(np.array(person(100)), 1 / 20, 1 / 80)
    rng = np.random.default_rng(7)
    for step in range(1, 30):
        kalman.predict(hold_size=step % 7 == 0)
        box = np.array(person(100 + 9 * step + rng.normal(0, 2), height=80 + rng.normal(0, 3)))
        mean, cov = kalman.mean.copy(), kalman.covariance.copy()
        std = np.array([1 / 20, 1 / 20, 1e-1, 1 / 20]) * np.array([mean[3], mean[3], 1, mean[3]])
        projected = cov[:4, :4] + np.diag(np.square(std))
        gain = np.linalg.solve(projected, cov[:4]).T
        expected_mean = mean + gain @ (xyxy_to_xyah(box) - mean[:4])
        expected_cov = cov - gain @ projected @ gain.T
        kalman = kalman.copy()
        kalman.update(box)
        np.testing.assert_allclose(kalman.mean, expected_mean, rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(kalman.covariance, expected_cov, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize(("fps", "frames_before_report"), [(7.0, 2), (14.0, 5), (30.0, 11)])
def test_birth_hysteresis_is_in_seconds(fps, frames_before_report):
    """0.4 s of sightings before a track is reported, whatever the frame rate: it is
    reported in its 3rd frame at 7 frames/s, 6th at 14, 12th at 30 (whole frames)."""
    tracker = ByteTracker(config(minimum_track_age_s=0.4), fps)
    reported = [len(tracker.update(d, k / fps)) for k, d in enumerate(walker(20, step=2))]
    assert reported.index(1) == frames_before_report


def test_velocity_noise_follows_the_frame_rate():
    """The same acceleration_noise is a smaller per-frame velocity noise at a higher
    frame rate: (1/F)^2 of it."""
    noise = TrackerConfig(acceleration_noise=0.98)
    assert noise.velocity_weight(7.0) == pytest.approx(0.02)
    assert noise.velocity_weight(14.0) == pytest.approx(0.005)


def test_per_frame_keys_of_old_configs_still_work_with_a_warning():
    with pytest.warns(FutureWarning, match="minimum_track_age_s.*3 / F|N / F"):
        old = TrackerConfig(minimum_consecutive_frames=3)
    assert old.frames_to_confirm(30.0) == 3  # frames, as before, at any rate
    with pytest.warns(FutureWarning, match="acceleration_noise"):
        old = TrackerConfig(velocity_noise=0.0125)
    assert old.velocity_weight(30.0) == 0.0125


@pytest.mark.parametrize("fps", [0, 0.0, -7.0, float("nan"), float("inf"), None, "7 fps"])
def test_a_missing_or_zero_frame_rate_is_refused(fps):
    with pytest.raises(ValueError, match="frame rate"):
        ByteTracker(config(), fps)
