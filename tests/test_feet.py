"""Where a tracked person stands: the bottom-centre of the box, unless the box is cut off
above hidden feet (edge.feet). Real records, a pinhole camera over a flat floor, and real
boxes of the PETS09 recording."""

from __future__ import annotations

import numpy as np
import pytest

from edge.calibration import Homography, fit_camera_calibrations
from edge.config.vision import FeetConfig
from edge.feet import FootPoints
from edge.records import Tracks, box_anchors

HEIGHT_M = 1.7
WIDTH_M = 0.5


def camera(height_m: float = 4.0, tilt_deg: float = 25.0, focal: float = 700.0,
           size: tuple[int, int] = (960, 720)) -> np.ndarray:
    """``(3, 4)`` projection of a camera ``height_m`` over the floor (z = 0), looking
    along +y, ``tilt_deg`` down from the horizontal."""
    tilt = np.radians(tilt_deg)
    # camera axes in world coordinates: x right, y down (image rows), z forward
    forward = np.array([0.0, np.cos(tilt), -np.sin(tilt)])
    right = np.array([1.0, 0.0, 0.0])
    down = np.cross(forward, right)
    rotation = np.stack([right, down, forward])
    centre = np.array([0.0, 0.0, height_m])
    k = np.array([[focal, 0, size[0] / 2], [0, focal, size[1] / 2], [0, 0, 1]])
    return k @ np.c_[rotation, -rotation @ centre]


def project(p: np.ndarray, points: np.ndarray) -> np.ndarray:
    q = np.c_[points, np.ones(len(points))] @ p.T
    return q[:, :2] / q[:, 2:]


def floor_homography(p: np.ndarray, sign: float = 1.0) -> Homography:
    """Image-to-floor mapping of projection ``p`` (its floor plane's columns, inverted)."""
    return Homography(sign * np.linalg.inv(p[:, [0, 1, 3]]), np.zeros(0))


def person_box(p: np.ndarray, x: float, y: float) -> np.ndarray:
    """The ``(x1, y1, x2, y2)`` box of a person standing at floor ``(x, y)``."""
    feet = project(p, np.array([[x, y, 0.0]]))[0]
    head = project(p, np.array([[x, y, HEIGHT_M]]))[0]
    side = project(p, np.array([[x + WIDTH_M, y, 0.0]]))[0]
    half = (side[0] - feet[0]) / 2
    return np.array([feet[0] - half, head[1], feet[0] + half, feet[1]])


def tracks_of(*boxes: np.ndarray, ids: tuple[int, ...] = (1,)) -> Tracks:
    xyxy = np.array(boxes, np.float32).reshape(-1, 4)
    return Tracks(np.array(ids[: len(xyxy)], np.int64), xyxy, np.full(len(xyxy), 0.9, np.float32))


def walk(p: np.ndarray, ys: np.ndarray, x: float = 0.5) -> list[np.ndarray]:
    return [person_box(p, x, y) for y in ys]


def run(feet: FootPoints, boxes: list[np.ndarray], fps: float = 7.0) -> np.ndarray:
    """The anchor of each box of one track fed one per frame."""
    return np.vstack([feet.anchors(tracks_of(box), i / fps) for i, box in enumerate(boxes)])


P = camera()


def test_a_person_walking_towards_the_camera_keeps_the_bottom_centre():
    """Their box grows from 85 to 207 pixels over the walk: heights alone would call the
    first boxes short; the scale (height over the distance below the horizon) does not."""
    boxes = walk(P, np.linspace(14.0, 3.5, 50))
    heights = np.array([b[3] - b[1] for b in boxes])
    assert heights[-1] > 2.4 * heights[0]
    feet = FootPoints(FeetConfig(), floor_homography(P))
    np.testing.assert_allclose(run(feet, boxes), box_anchors(np.array(boxes)))
    assert feet.corrected == 0


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_a_box_cut_off_above_hidden_feet_is_put_back_on_its_feet(sign):
    """A box cut off at 55 % of the person (legs behind a shelf): its bottom-centre lands
    metres beyond the person; the track's scale puts the feet back within 0.1 m (the scale
    is that of the track's boxes of the last seconds, a metre back, and a tilted camera's
    scale drifts a little along a walk). A homography given with the opposite sign means
    the same mapping."""
    homography = floor_homography(P, sign)
    ys = np.linspace(10.0, 8.0, 15)
    boxes = walk(P, ys)
    cut = boxes[-1].copy()
    cut[3] = cut[1] + 0.55 * (cut[3] - cut[1])
    feet = FootPoints(FeetConfig(), homography)
    anchors = run(feet, [*boxes[:-1], cut])
    on_floor = homography.image_to_floor(anchors[-1:])[0]
    naive = homography.image_to_floor(box_anchors(cut[None]))[0]
    truth = np.array([0.5, ys[-1]])
    assert np.hypot(*(naive - truth)) > 2.0
    assert np.hypot(*(on_floor - truth)) < 0.1
    assert feet.corrected == 1


@pytest.mark.parametrize(
    "change",
    [
        pytest.param("shrunk", id="shrunk at both edges: another guess at the scale"),
        pytest.param("bending", id="shorter from the top: someone bending down"),
        pytest.param("tall", id="taller than the scale: kept"),
    ],
)
def test_other_boxes_of_another_height_keep_their_bottom_centre(change):
    boxes = walk(P, np.linspace(10.0, 8.0, 15))
    odd = boxes[-1].copy()
    height = odd[3] - odd[1]
    if change == "shrunk":
        odd[1] += 0.15 * height
        odd[3] -= 0.15 * height
    elif change == "bending":
        odd[1] += 0.4 * height
    else:
        odd[3] += 0.4 * height
    feet = FootPoints(FeetConfig(), floor_homography(P))
    anchors = run(feet, [*boxes[:-1], odd])
    np.testing.assert_allclose(anchors[-1], box_anchors(odd[None])[0])
    assert feet.corrected == 0


def test_a_track_needs_two_whole_boxes_and_zero_turns_it_off():
    boxes = walk(P, np.linspace(10.0, 8.0, 15))
    cut = boxes[1].copy()
    cut[3] = cut[1] + 0.5 * (cut[3] - cut[1])
    feet = FootPoints(FeetConfig(), floor_homography(P))
    run(feet, [boxes[0], cut])  # one whole box before it: no scale yet
    assert feet.corrected == 0
    off = FootPoints(FeetConfig(scale_window_s=0), floor_homography(P))
    late = boxes[-1].copy()
    late[3] = late[1] + 0.5 * (late[3] - late[1])
    anchors = run(off, [*boxes[:-1], late])
    np.testing.assert_allclose(anchors[-1], box_anchors(late[None])[0])
    assert off.corrected == 0 and off.tracks_held == 0


def test_tracks_are_not_mixed_and_the_input_is_not_written():
    """Two people in one frame: only the cut-off one moves, and the tracks' boxes stay
    the detector's."""
    near, far = walk(P, np.linspace(6.0, 5.0, 10), x=-1.0), walk(P, np.linspace(12.0, 11.0, 10))
    feet = FootPoints(FeetConfig(), floor_homography(P))
    for i in range(9):
        feet.anchors(tracks_of(near[i], far[i], ids=(7, 8)), i / 7)
    cut = far[9].copy()
    cut[3] = cut[1] + 0.5 * (cut[3] - cut[1])
    frame = tracks_of(near[9], cut, ids=(7, 8))
    before = frame.xyxy.copy()
    anchors = feet.anchors(frame, 9 / 7)
    np.testing.assert_array_equal(frame.xyxy, before)
    np.testing.assert_allclose(anchors[0], box_anchors(near[9][None])[0])
    assert anchors[1, 1] > cut[3] + 10 and feet.corrected == 1


def test_memory_stays_flat_over_100000_track_ids():
    """100 people at a time, each seen in two frames and never again: an id's state is
    dropped once its last box is older than the scale window (STYLE A4)."""
    feet = FootPoints(FeetConfig(scale_window_s=1.0), floor_homography(P))
    crowd = np.tile(person_box(P, 0.5, 9.0), (100, 1))
    held = []
    for batch in range(1000):
        ids = tuple(range(batch * 100, batch * 100 + 100))
        for step in range(2):
            feet.anchors(tracks_of(*crowd, ids=ids), batch * 0.25 + step * 0.1)
        held.append(feet.tracks_held)
    assert max(held) <= 800 and max(held[-100:]) == max(held[:100])
    feet.reset()
    assert feet.tracks_held == 0


def test_regression_pets_person_3_behind_the_sign_at_frame_703(pets_site):
    """PETS09 frames 684-703, the product's detector at 480x640, the track following
    person 3: at frame 703 their box is 40 pixels tall where they are 72 (legs hidden),
    and its bottom-centre put them 3.5 m from where they were, towards the far end of the
    plaza. The track's scale puts them 0.14 m from the ground truth."""
    homography = fit_camera_calibrations(pets_site)[pets_site.cameras[0].id]
    frames = [684, 685, 686, 687, 688, 689, 690, 691, 692, 695, 696, 699, 700, 701, 702, 703]
    boxes = np.array([
        [492.9, 157.8, 510.8, 233.2], [484.5, 153.5, 507.2, 227.1], [478.3, 153.3, 506.1, 227.7],
        [465.1, 157.5, 503.1, 226.5], [462.9, 153.4, 495.8, 225.8], [458.4, 152.7, 483.8, 225.1],
        [442.2, 146.6, 474.8, 225.3], [438.7, 141.7, 474.0, 224.4], [440.6, 141.0, 473.5, 225.0],
        [430.3, 152.1, 448.3, 201.6], [430.8, 153.8, 448.9, 201.2], [406.9, 151.9, 427.3, 198.7],
        [404.1, 151.2, 424.5, 207.7], [399.6, 152.7, 420.5, 210.4], [395.0, 155.1, 416.5, 216.9],
        [388.6, 154.1, 412.6, 194.0],
    ])
    feet = FootPoints(pets_site.feet, homography)
    anchors = np.vstack([feet.anchors(tracks_of(box), frame / 7) for frame, box in
                         zip(frames, boxes, strict=True)])
    truth = np.array([-4.48, -4.35])  # gt.txt frame 704 (video frame 703), person 3
    naive = homography.image_to_floor(box_anchors(boxes[-1:]))[0]
    placed = homography.image_to_floor(anchors[-1:])[0]
    assert np.hypot(*(naive - truth)) > 3.0
    assert np.hypot(*(placed - truth)) < 0.2
