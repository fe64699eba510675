"""Hostile input never crashes the Wi-Fi path: hypothesis mutates real frames and real
capture files; every outcome is a parsed probe, "not a probe request", or a counted skip."""

from __future__ import annotations

import contextlib
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge.config.wifi import WifiConfig
from edge.errors import DataFormatError
from edge.wifi.anonymize import Anonymizer
from edge.wifi.parser import MalformedFrame, ProbeParser, dissect
from edge.wifi.pcapfile import CaptureFile
from edge.wifi.pipeline import FramePipeline, replay_to_list
from tests.conftest import SHARED, SINGLE_PHONES, skip_module_without_shared

pytestmark = pytest.mark.system
skip_module_without_shared()


def sample_frames() -> list[bytes]:
    """A few real frames of every shape in the shared captures (probes, beacons, data...)."""
    picked: list[bytes] = []
    rng = random.Random(4)
    for path in sorted((SHARED / "wifi").glob("*/*.pcap*")):
        with CaptureFile(path) as capture:
            frames = [frame.data for frame in capture]
        picked.extend(rng.sample(frames, min(12, len(frames))))
    return picked


FRAMES = sample_frames()
SMALL_CAPTURE = (SINGLE_PHONES / "S21Ultra-M_anonymized.pcap").read_bytes()
SMALL_PCAPNG = (SHARED / "wifi" / "mixed-traffic" / "owe.pcapng").read_bytes()[:6000]

edits = st.lists(st.tuples(st.integers(0, 600), st.integers(0, 255)), max_size=12)


def mutate(data: bytes, overwrites, cut: int | None, insert: bytes) -> bytes:
    buffer = bytearray(data)
    for position, value in overwrites:
        if buffer:
            buffer[position % len(buffer)] = value
    if insert and buffer:
        at = overwrites[0][0] % len(buffer) if overwrites else 0
        buffer[at:at] = insert
    if cut is not None:
        buffer = buffer[: cut % (len(buffer) + 1)]
    return bytes(buffer)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(FRAMES), edits, st.none() | st.integers(0, 2000), st.binary(max_size=8))
def test_mutated_frames_never_crash_the_parser(frame, overwrites, cut, insert):
    data = mutate(frame, overwrites, cut, insert)
    try:
        result = dissect(data)
    except MalformedFrame as error:
        assert error.reason and "0x" not in error.reason       # a label, no frame bytes
        return
    if result is not None:
        assert len(result.source) == 6 and 0 <= result.seq < 4096
        assert all(0 <= element < 256 and len(content) < 256 for element, content in result.ies)
        assert result.rssi is None or -128 <= result.rssi <= 127


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(FRAMES), edits, st.none() | st.integers(0, 400),
                          st.binary(max_size=4)), min_size=1, max_size=20),
       st.floats(0, 2e9))
def test_mutated_frames_never_crash_the_pipeline(items, start):
    pipeline = FramePipeline(WifiConfig(), sensor="fuzz", window_sizes=[60])
    for index, (frame, overwrites, cut, insert) in enumerate(items):
        pipeline.feed(mutate(frame, overwrites, cut, insert), start + index * 7.0, 127)
    windows = pipeline.finish()
    stats = pipeline.stats
    assert stats.frames == len(items)
    assert stats.probe_requests + stats.other_frames + sum(stats.skipped.values()) == len(items)
    assert sum(w.frames for w in windows) <= stats.probe_requests


@settings(max_examples=60, deadline=None)
@given(st.sampled_from([SMALL_CAPTURE, SMALL_PCAPNG]), edits, st.none() | st.integers(0, 30000),
       st.binary(max_size=16))
def test_mutated_capture_files_never_crash_a_replay(
    tmp_path_factory, data, overwrites, cut, insert
):
    path = tmp_path_factory.mktemp("fuzz") / "mutated.pcap"
    path.write_bytes(mutate(data, [(p * 37, v) for p, v in overwrites], cut, insert))
    try:
        result = replay_to_list(path, WifiConfig())
    except DataFormatError:
        return                                      # not recognisable as a capture: one clear error
    assert result.stats.frames >= 0


def test_garbage_bytes_through_the_probe_parser():
    parser = ProbeParser(Anonymizer(), -70)
    rng = random.Random(7)
    for size in list(range(0, 64)) + [200, 1500]:
        data = bytes(rng.randrange(256) for _ in range(size))
        with contextlib.suppress(MalformedFrame):
            parser.parse(data, 1e9)


@pytest.mark.parametrize("timestamp", [-1.0, float("nan"), 1e13, float("inf")])
def test_damaged_time_stamps_are_skipped(timestamp):
    pipeline = FramePipeline(WifiConfig(), sensor="fuzz")
    assert pipeline.feed(FRAMES[0], timestamp, 127) == []
    assert pipeline.stats.skipped == {"time stamp out of range": 1}


@pytest.mark.parametrize("length", [0, 1, 2, 255])
def test_element_lengths_at_the_edges(length):
    header = b"\x00\x00\x08\x00\x00\x00\x00\x00"
    probe = b"\x40\x00\x00\x00" + b"\xff" * 6 + b"\x02" * 6 + b"\xff" * 6 + b"\x10\x00"
    frame = header + probe + bytes([221, length]) + b"\xaa" * min(length, 10)
    result = dissect(frame)
    assert result.ies_truncated == (length > 10)
    assert result.ies == (() if length > 10 else ((221, b"\xaa" * length),))
