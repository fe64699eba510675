"""Video sources: decode-ahead reader thread, clean stop, damaged files."""

from __future__ import annotations

import itertools
import re
import time

import cv2
import numpy as np
import pytest
import yaml

from edge.config import load_site
from edge.config.vision import CalibrationConfig
from edge.errors import SourceError
from edge.paths import default_site_config
from edge.runtime.frame_reader import FrameReader
from edge.video import VideoSource, describe_source
from tests.conftest import PETS_VIDEO
from tests.support.live_site import live_site_yaml
from tests.support.mjpeg_camera import MjpegCamera
from tests.support.report_support import invoke

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


def small_video(path, size=(64, 48), frames=6):
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 7.0, size)
    for i in range(frames):
        writer.write(np.full((size[1], size[0], 3), 20 * i % 256, np.uint8))
    writer.release()
    return path


def test_frames_of_another_size_but_the_same_shape_are_scaled_back(tmp_path, caplog):
    """Issue 14, bad input: a camera whose stream comes back at another resolution (a
    profile changed) would have its pixels read with a calibration made for the old
    size. The same view at another size is scaled back, said once, and counted."""
    video = small_video(tmp_path / "a.avi")
    with VideoSource("cam", str(video), frame_size=(32, 24), prefetch=0) as source:
        sizes = {f.image.shape[:2] for f in source}
        assert sizes == {(24, 32)} and source.resized_frames == 6
    warnings = [r.message for r in caplog.records if "frames changed" in r.message]
    assert warnings == ["Camera cam: frames changed from 32x24 to 64x48 (the same shape); "
                        "scaling them back to 32x24, where the calibration holds."]
    with VideoSource("cam", str(video), prefetch=0) as source:      # its own size: as is
        assert [f.image.shape[:2] for f in source] == [(48, 64)] * 6
        assert source.frame_size == (64, 48) and source.resized_frames == 0


@pytest.mark.parametrize("prefetch", [0, 2])
def test_frames_of_another_shape_are_refused(tmp_path, prefetch):
    video = small_video(tmp_path / "a.avi")
    refused = pytest.raises(SourceError, match=r"^camera cam: frames changed from 48x48 to "
                            r"64x48, another shape: the view or the stream profile changed")
    with VideoSource("cam", str(video), frame_size=(48, 48), prefetch=prefetch) as source, \
            refused:
        list(source)


def test_a_camera_that_comes_back_at_another_size_keeps_its_first_size(tmp_path):
    """The live reader keeps the first connection's frame size: a camera back at
    twice the resolution is scaled to it; back with another shape, none of its
    frames reach the detector and the reader says why."""
    def jpegs(width, height):
        image = np.full((height, width, 3), 128, np.uint8)
        return [cv2.imencode(".jpg", image)[1].tobytes()] * 5

    camera = MjpegCamera(jpegs(160, 120), fps=10).start()
    site = load_site(live_site_yaml(tmp_path, camera.url, detect_fps=4))
    reader = FrameReader(site.cameras[0], backoff_initial_s=0.1, backoff_max_s=0.3).start()

    def next_size(after: float):
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            frame = reader.next_frame(timeout=0.5)
            if frame is not None and frame.timestamp > after:
                return frame.image.shape[:2]
        return None

    try:
        assert next_size(0.0) == (120, 160)
        for size, expected in (((320, 240), (120, 160)), ((240, 240), None)):
            camera.stop()
            camera.jpegs = jpegs(*size)
            camera.start()
            reader.reopen()
            time.sleep(0.5)
            assert next_size(time.time()) == expected
        assert reader.stats.last_error.startswith(
            "camera view001: frames changed from 160x120 to 240x240, another shape")
    finally:
        reader.stop()
        camera.stop()


def calibration(**fields):
    points = [(1.0, 1.0), (30.0, 1.0), (30.0, 20.0), (1.0, 20.0)]
    return CalibrationConfig(**{"image_points": points,
                                "floor_points": [(0, 0), (3, 0), (3, 2), (0, 2)], **fields})


def test_a_recording_at_another_size_than_the_calibration_is_scaled_to_it(tmp_path, caplog):
    """Finding 3a: PETS frames resized to 384x288 were replayed with the 768x576
    calibration, exit 0, and 679 detections fell outside the floor area. The same
    shape is scaled to calibration.image_size, said in one line."""
    video = small_video(tmp_path / "a.avi")  # 64x48
    with VideoSource("cam", str(video), prefetch=0,
                     calibration=calibration(image_size=(32, 24))) as source:
        assert {f.image.shape[:2] for f in source} == {(24, 32)}
        assert source.resized_frames == 6
    notes = [r.message for r in caplog.records if r.name == "edge.video"]
    assert notes == ["Camera cam: the recording is 64x48, the calibration 32x24 "
                     "(calibration.image_size, the same shape); scaling the frames to 32x24."]


@pytest.mark.parametrize("prefetch", [0, 2])
def test_a_recording_of_another_shape_than_the_calibration_is_refused(tmp_path, prefetch):
    video = small_video(tmp_path / "a.avi")
    with pytest.raises(SourceError, match=r"^camera cam: the recording's frames are 64x48 but "
                       r"the calibration was made at 48x48 \(calibration.image_size\), another "
                       r"shape: .*calibrate the camera again"):
        VideoSource("cam", str(video), prefetch=prefetch,
                    calibration=calibration(image_size=(48, 48)))


def test_calibration_points_outside_the_recording_are_refused(tmp_path):
    """Without image_size, a recording smaller than the calibration's points is the
    wrong size: refused, with the fix."""
    video = small_video(tmp_path / "a.avi", size=(24, 16))
    with pytest.raises(SourceError, match=r"calibration.image_points has \(30, 1\), outside "
                       r"the recording's 24x16 frames.*set calibration.image_size"):
        VideoSource("cam", str(video), calibration=calibration())
    with VideoSource("cam", str(small_video(tmp_path / "b.avi")), prefetch=0,
                     calibration=calibration()) as source:        # 64x48 holds them: as is
        assert [f.image.shape[:2] for f in source] == [(48, 64)] * 6


def test_replay_refuses_a_recording_of_another_shape_than_the_calibration(tmp_path):
    """Finding 3, through the CLI: the site's calibration.image_size is passed on."""
    video = small_video(tmp_path / "a.avi")  # 64x48
    site = yaml.safe_load(default_site_config().read_text())
    camera = site["cameras"][0]
    camera["source"] = str(video)
    camera["calibration"]["image_size"] = [768, 768]
    (tmp_path / "site.yaml").write_text(yaml.safe_dump(site))
    db = tmp_path / "edge.db"
    result = invoke("replay", "--site", str(tmp_path / "site.yaml"), "--db", str(db), "--quiet")
    assert result.returncode == 1, result.stdout
    assert "frames are 64x48 but the calibration was made at 768x768" in result.stderr


def without_frame_rate(path):
    """``path``, an AVI, with its header's frame rate set to 0 (as some recorders write)."""
    data = bytearray(path.read_bytes())
    at = data.find(b"strh")
    assert data[at + 8:at + 12] == b"vids"
    data[at + 32:at + 36] = (0).to_bytes(4, "little")  # dwRate
    path.write_bytes(bytes(data))
    return path


def test_a_file_without_a_frame_rate_needs_the_cameras_fps(tmp_path):
    """Finding 6: an AVI whose header rate is 0 replayed at FFmpeg's guess of 25
    frames/s (19 frames of a 7 frames/s recording spanned 0.76 s, not 2.7 s): every
    time, dwell and speed 3.6 times off, silently. Refused unless the camera's fps
    says the rate."""
    video = without_frame_rate(small_video(tmp_path / "a.avi", frames=19))
    with pytest.raises(SourceError, match=r"^camera cam: .*a.avi does not say its frame rate "
                       r".*set the camera's fps \(cameras\[\].fps in the site file\)"):
        VideoSource("cam", str(video))
    with VideoSource("cam", str(video), fps=7, prefetch=0) as source:
        stamps = [f.timestamp for f in source]
    assert stamps[-1] - stamps[0] == pytest.approx(18 / 7)
    with VideoSource("cam", str(small_video(tmp_path / "b.avi")), prefetch=0) as source:
        assert source.info.fps == 7.0                     # a header with a rate: as before


def test_replay_refuses_a_file_without_a_frame_rate(tmp_path):
    video = without_frame_rate(small_video(tmp_path / "a.avi", size=(768, 576), frames=2))
    site = yaml.safe_load(default_site_config().read_text())
    del site["cameras"][0]["fps"]
    (tmp_path / "site.yaml").write_text(yaml.safe_dump(site))
    result = invoke("replay", str(video), "--site", str(tmp_path / "site.yaml"),
                    "--db", str(tmp_path / "edge.db"), "--quiet")
    assert result.returncode == 1, result.stdout
    assert "does not say its frame rate" in result.stderr
    assert "cameras[].fps" in result.stderr


def test_damage_in_the_middle_says_later_frame_numbers_are_unreliable(tmp_path):
    """Finding 5: 51 frames lost in the middle of a recording were reported as "ended
    after 744 of the 795 frames (truncated ...?)", and every later frame was numbered
    7 s early without a word. The error now says frames may be missing anywhere and
    later frame numbers and times are unreliable for an evaluation."""
    video = tmp_path / "damaged.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 7.0, (128, 96))
    noise = np.random.default_rng(0)
    for _ in range(60):
        writer.write(noise.integers(0, 255, (96, 128, 3), dtype=np.uint8))
    writer.release()
    data = bytearray(video.read_bytes())
    start, length = len(data) * 4 // 10, len(data) // 5
    data[start:start + length] = bytes(length)            # a damaged stretch mid-file
    video.write_bytes(bytes(data))
    site = yaml.safe_load(default_site_config().read_text())
    camera = site["cameras"][0]
    camera.update(source=str(video))
    camera["calibration"]["image_size"] = [128, 96]
    site["detector"]["input_size"] = [96, 128]
    (tmp_path / "site.yaml").write_text(yaml.safe_dump(site))
    result = invoke("replay", "--site", str(tmp_path / "site.yaml"),
                    "--db", str(tmp_path / "edge.db"), "--quiet")
    assert result.returncode == 1, result.stdout
    error = result.stderr.strip().splitlines()[-1]
    assert re.search(r"ended after (\d+) of the 60 frames", error), error
    assert "Frames may be missing anywhere, not only at the end" in error
    assert "evaluation against ground truth is unreliable" in error
