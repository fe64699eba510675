import numpy as np
import pytest

from edge.records import Detections, FloorTracks, Frame, Tracks


@pytest.mark.parametrize(
    "xyxy, confidence, message",
    [
        (np.zeros((2, 3)), np.zeros(2), r"Detections.xyxy must have shape \(n, 4\), got \(2, 3\)"),
        (np.zeros((2, 4)), np.zeros(3), r"Detections.confidence must have shape \(2\), got \(3,\)"),
    ],
)
def test_detections_reject_bad_shapes(xyxy, confidence, message):
    with pytest.raises(ValueError, match=message):
        Detections(xyxy, confidence)


def test_detections_filter_keeps_data_rows_aligned():
    detections = Detections(
        np.arange(12, dtype=np.float32).reshape(3, 4),
        np.array([0.9, 0.2, 0.7], np.float32),
        {"class_id": np.array([0, 1, 2])},
    )
    kept = detections.filter(detections.confidence > 0.5)
    assert kept.data["class_id"].tolist() == [0, 2]
    assert kept.xyxy[1].tolist() == [8, 9, 10, 11]
    assert len(detections) == 3  # the input is untouched


def test_track_anchor_is_bottom_centre():
    tracks = Tracks(np.array([7]), np.array([[10, 20, 30, 80]], np.float32), np.array([0.9]))
    assert tracks.anchors.tolist() == [[20.0, 80.0]]


def test_frame_and_floor_tracks_validate():
    with pytest.raises(ValueError, match="Frame.image"):
        Frame("cam", 0, 0.0, np.zeros((4, 4), np.uint8))
    with pytest.raises(ValueError, match="FloorTracks.xy"):
        FloorTracks("cam", 0, 0.0, Tracks.empty(), np.zeros((1, 2)))


def test_records_are_frozen():
    detections = Detections.empty()
    with pytest.raises(AttributeError):
        detections.xyxy = np.zeros((1, 4))  # type: ignore[misc]
