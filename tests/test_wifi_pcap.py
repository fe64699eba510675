"""Capture files: both formats, both byte orders, and every way a file can be broken."""

from __future__ import annotations

import re
import struct
from pathlib import Path

import pytest

from edge.config.wifi import WifiConfig
from edge.errors import DataFormatError
from edge.wifi.pcapfile import CaptureFile
from edge.wifi.pipeline import replay_to_list
from tests.conftest import SHARED, skip_module_without_shared

pytestmark = pytest.mark.system
skip_module_without_shared()

LAB_DAY = SHARED / "wifi" / "brno-sc6-61" / "position_1_sc6-61_2024-03-15_anonymized.pcap"
OWE = SHARED / "wifi" / "mixed-traffic" / "owe.pcapng"


def real_frames(count: int = 20) -> list[tuple[float, bytes]]:
    with CaptureFile(LAB_DAY) as capture:
        return [(f.timestamp, f.data) for _, f in zip(range(count), capture, strict=False)]


def write_pcap(path: Path, frames, *, order="<", nano=False, linktype=127) -> Path:
    magic = 0xA1B23C4D if nano else 0xA1B2C3D4
    out = struct.pack(order + "IHHiIII", magic, 2, 4, 0, 0, 65535, linktype)
    for timestamp, data in frames:
        seconds = int(timestamp)
        fraction = round((timestamp - seconds) * (1e9 if nano else 1e6))
        out += struct.pack(order + "IIII", seconds, fraction, len(data), len(data)) + data
    path.write_bytes(out)
    return path


def pcapng_block(kind: int, body: bytes, order: str = "<") -> bytes:
    body += b"\x00" * (-len(body) % 4)
    length = 12 + len(body)
    return struct.pack(order + "II", kind, length) + body + struct.pack(order + "I", length)


def write_pcapng(path: Path, frames, *, order="<", tsresol=6, linktype=127) -> Path:
    shb = pcapng_block(0x0A0D0D0A, struct.pack(order + "IHHq", 0x1A2B3C4D, 1, 0, -1), order)
    options = struct.pack(order + "HH", 9, 1) + bytes([tsresol]) + b"\x00" * 3
    options += struct.pack(order + "HH", 0, 0)
    idb = pcapng_block(1, struct.pack(order + "HHI", linktype, 0, 65535) + options, order)
    blocks = [shb, idb, pcapng_block(5, b"\x00" * 8, order)]   # + a statistics block
    for timestamp, data in frames:
        ticks = round(timestamp * 10**tsresol)
        body = struct.pack(order + "IIIII", 0, ticks >> 32, ticks & 0xFFFFFFFF, len(data),
                           len(data))
        blocks.append(pcapng_block(6, body + data, order))
    path.write_bytes(b"".join(blocks))
    return path


@pytest.mark.parametrize("order", ["<", ">"])
@pytest.mark.parametrize("nano", [False, True])
def test_pcap_variants_read_the_same_frames(tmp_path, order, nano):
    frames = real_frames()
    path = write_pcap(tmp_path / "x.pcap", frames, order=order, nano=nano)
    with CaptureFile(path) as capture:
        got = list(capture)
    assert [f.data for f in got] == [data for _, data in frames]
    assert [round(f.timestamp, 6) for f in got] == [round(t, 6) for t, _ in frames]
    assert capture.stats.frames == len(frames) and not capture.stats.notes


@pytest.mark.parametrize("order", ["<", ">"])
@pytest.mark.parametrize("tsresol", [6, 9])
def test_pcapng_variants_read_the_same_frames(tmp_path, order, tsresol):
    frames = real_frames()
    path = write_pcapng(tmp_path / "x.pcapng", frames, order=order, tsresol=tsresol)
    with CaptureFile(path) as capture:
        got = list(capture)
    assert capture.format == "pcapng"
    assert [f.data for f in got] == [data for _, data in frames]
    assert [round(f.timestamp, 6) for f in got] == [round(t, 6) for t, _ in frames]
    assert capture.stats.other_blocks == 1


def test_shared_pcapng_reads():
    with CaptureFile(OWE) as capture:
        frames = list(capture)
    assert len(frames) == 107 and {f.linktype for f in frames} == {127}


@pytest.mark.parametrize("cut", [30, 40, 1000, -7, -1])
def test_truncated_pcap_keeps_every_whole_frame(tmp_path, cut):
    data = LAB_DAY.read_bytes()
    path = tmp_path / "cut.pcap"
    path.write_bytes(data[:cut])
    with CaptureFile(path) as capture:
        frames = list(capture)
    with CaptureFile(LAB_DAY) as full:
        total = sum(1 for _ in full)
    if cut > 0:
        assert len(frames) < total
    else:
        assert len(frames) == total - 1
    assert capture.stats.truncated == 1 and "kept the" in capture.stats.notes[0]


def test_header_only_pcap_is_an_empty_capture(tmp_path):
    path = tmp_path / "empty.pcap"
    path.write_bytes(LAB_DAY.read_bytes()[:24])
    with CaptureFile(path) as capture:
        assert list(capture) == []
    assert capture.stats.truncated == capture.stats.corrupt == 0


def test_truncated_pcapng_keeps_every_whole_frame(tmp_path):
    path = tmp_path / "cut.pcapng"
    path.write_bytes(OWE.read_bytes()[:-150])   # into the last frame block
    with CaptureFile(path) as capture:
        frames = list(capture)
    assert len(frames) == 106 and capture.stats.truncated == 1


def test_garbage_inside_a_file_ends_it_with_a_note(tmp_path):
    frames = real_frames(5)
    path = write_pcap(tmp_path / "x.pcap", frames)
    data = bytearray(path.read_bytes())
    record = 24 + 16 + len(frames[0][1])            # the second record header
    data[record + 8:record + 12] = struct.pack("<I", 0x7FFFFFFF)
    path.write_bytes(bytes(data))
    with CaptureFile(path) as capture:
        assert len(list(capture)) == 1
    assert capture.stats.corrupt == 1


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "empty or too short"),
        (b"\x00\x01", "empty or too short"),
        (b"GIF89a" + b"\x00" * 40, "bad.pcap: not a pcap or pcapng capture (it starts with "
                                    "bytes 47494638)"),
        (bytes.fromhex("ac6677ac") + bytes(range(60)), "bad.pcap: not a pcap or pcapng capture"),
        (LAB_DAY.read_bytes()[:10], "bad.pcap is cut short: 10 bytes, but a pcap file header "
                                    "alone takes 24"),
        (LAB_DAY.read_bytes()[:23], "cut short: 23 bytes"),
        (OWE.read_bytes()[:20], "bad.pcap is cut short: 20 bytes, but a pcapng file header "
                                "alone takes 28"),
    ],
    ids=["empty", "2-bytes", "gif", "random", "pcap-10", "pcap-23", "pcapng-20"],
)
def test_files_that_are_not_captures(tmp_path, content, message):
    """Field report: random bytes gave an error without the file's name, and a pcap cut
    inside its own 24-byte header exited 0 with a warning while an empty one was an
    error. A file too short to hold its header is an error like the empty file."""
    path = tmp_path / "bad.pcap"
    path.write_bytes(content)
    with pytest.raises(DataFormatError, match=re.escape(message)):
        CaptureFile(path)


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(DataFormatError, match="does not exist"):
        CaptureFile(tmp_path / "nope.pcap")
    with pytest.raises(DataFormatError, match="is a folder"):
        CaptureFile(tmp_path)


def test_other_link_types_are_skipped_and_counted(tmp_path):
    frames = real_frames(8)
    ethernet = write_pcap(tmp_path / "eth.pcap", frames, linktype=1)
    result = replay_to_list(ethernet, WifiConfig())
    assert result.stats.skipped == {"link type 1 (not radiotap)": 8}
    assert result.stats.probe_requests == 0
    mixed = write_pcapng(tmp_path / "plain80211.pcapng", frames, linktype=105)
    assert replay_to_list(mixed, WifiConfig()).stats.skipped == {"link type 105 (not radiotap)": 8}


def pcapng_blocks(data: bytes) -> list[tuple[int, int]]:
    """``(offset, block type)`` of every block of a little-endian pcapng file."""
    blocks, offset = [], 0
    while offset < len(data):
        kind, length = struct.unpack_from("<II", data, offset)
        blocks.append((offset, kind))
        offset += length
    return blocks


def test_skipped_pcapng_packet_blocks_are_counted_with_their_reason(tmp_path):
    """Regression (review, r8_pcapng_silent): packet blocks naming an interface with no
    Interface Description Block, or claiming more bytes than they hold, were dropped
    into ``corrupt``, which no summary printed."""
    from edge.wifi.pcapfile import SKIP_NO_INTERFACE, SKIP_OVERLONG

    data = bytearray(write_pcapng(tmp_path / "whole.pcapng", real_frames(10)).read_bytes())
    packets = [offset for offset, kind in pcapng_blocks(bytes(data)) if kind == 6]
    for offset in packets[:4]:
        struct.pack_into("<I", data, offset + 8, 1)              # interface 1: not described
    struct.pack_into("<I", data, packets[4] + 20, 60000)         # captured length > the block
    damaged = tmp_path / "damaged.pcapng"
    damaged.write_bytes(data)
    with CaptureFile(damaged) as capture:
        assert len(list(capture)) == 5
        assert capture.stats.skipped == {SKIP_NO_INTERFACE: 4, SKIP_OVERLONG: 1}
    notes = replay_to_list(damaged, WifiConfig()).read_notes
    assert notes == [f"1 pcapng packet blocks skipped: {SKIP_OVERLONG}",
                     f"4 pcapng packet blocks skipped: {SKIP_NO_INTERFACE}"]
