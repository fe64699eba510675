"""Video sources: decode-ahead reader thread, clean stop, damaged files."""

from __future__ import annotations

import itertools
import time

import numpy as np
import pytest

from edge.errors import SourceError
from edge.video import VideoSource, describe_source
from tests.conftest import PETS_VIDEO

pytestmark = pytest.mark.system


def test_read_ahead_gives_the_same_frames_as_reading_in_place():
    with VideoSource("cam", str(PETS_VIDEO), fps=7, start_time=0.0, prefetch=0) as plain:
        expected = [(f.index, f.timestamp, f.image[::97, ::97].copy())
                    for f in itertools.islice(plain, 30)]
    with VideoSource("cam", str(PETS_VIDEO), fps=7, start_time=0.0, prefetch=2) as ahead:
        got = [(f.index, f.timestamp, f.image[::97, ::97].copy())
               for f in itertools.islice(ahead, 30)]
    assert [g[:2] for g in got] == [e[:2] for e in expected]
    for (_, _, a), (_, _, b) in zip(got, expected, strict=True):
        np.testing.assert_array_equal(a, b)


def test_closing_early_stops_the_reader_thread():
    source = VideoSource("cam", str(PETS_VIDEO), fps=7, start_time=0.0, prefetch=2)
    frames = iter(source)
    first = next(frames)
    assert first.index == 0 and first.timestamp == 0.0
    reader = source._reader
    assert reader is not None and reader.is_alive()
    source.close()
    assert not reader.is_alive()


def test_detect_fps_skips_frames_of_a_file():
    with VideoSource("cam", str(PETS_VIDEO), fps=7, detect_fps=3.5) as source:
        indices = [f.index for f in itertools.islice(source, 4)]
    assert source.stride == 2 and indices == [0, 2, 4, 6]


def test_a_detect_fps_that_skips_more_says_the_rate_it_really_gets(caplog):
    """Regression (issue 18): 3 of 7 frames/s silently ran at 2.33 frames/s."""
    with VideoSource("cam", str(PETS_VIDEO), fps=7, detect_fps=3) as source:
        assert source.stride == 3
    assert "detecting 1 frame in 3, so at 2.33 frames/s, not the 3 of detect_fps" in caplog.text
    caplog.clear()
    with VideoSource("cam", str(PETS_VIDEO), fps=7, detect_fps=3.5):
        assert caplog.text == ""


def test_truncated_file_ends_early_without_error(tmp_path):
    truncated = tmp_path / "cut.avi"
    truncated.write_bytes(PETS_VIDEO.read_bytes()[:400_000])
    with VideoSource("cam", str(truncated), fps=7) as source:
        frames = sum(1 for _ in source)
    assert source.info.frame_count == 795
    assert 10 <= frames < 795


def test_directory_is_not_a_video(tmp_path):
    with pytest.raises(SourceError, match="cannot read video file"):
        VideoSource("cam", str(tmp_path))


def test_credentials_never_shown():
    assert describe_source("rtsp://user:secret@10.0.0.5/stream") == "rtsp://***@10.0.0.5/stream"


def test_files_decode_in_place_by_default():
    """A decoding thread only pays where a stream must be drained (live sources)."""
    with VideoSource("cam", str(PETS_VIDEO), fps=7) as source:
        next(iter(source))
        assert source._reader is None


def test_a_file_is_stamped_as_if_it_had_just_ended():
    """A replay runs faster than real time: stamped from "now" on, its last positions
    would lie minutes in the future (the status page would count them as people in
    the store right now). By default the recording ends when it is opened."""
    opened = time.time()
    with VideoSource("cam", str(PETS_VIDEO), fps=7) as source:
        assert source.info.frame_count == 795
        stamps = [f.timestamp for f in source]
    assert len(stamps) == 795
    assert stamps[-1] <= time.time()
    assert stamps[-1] == pytest.approx(opened - 1 / 7, abs=2.0)
    assert stamps[-1] - stamps[0] == pytest.approx(794 / 7)
