"""The raw-bytes parser against scapy's full dissection, frame by frame, on every shared
capture; plus the radiotap cases the shared captures do not contain."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from scapy.config import conf
from scapy.layers.dot11 import Dot11, Dot11Elt, Dot11FCS, Dot11ProbeReq, RadioTap
from scapy.utils import RawPcapReader

from edge.wifi import parser
from edge.wifi.anonymize import Anonymizer
from edge.wifi.parser import EXCLUDED, STRONG, WEAK, MalformedFrame, ProbeParser, dissect
from edge.wifi.pcapfile import CaptureFile
from tests.conftest import SHARED

pytestmark = pytest.mark.system

CAPTURES = sorted((SHARED / "wifi").glob("*/*.pcap*"))


def scapy_fields(packet, timestamp: float | None = None) -> dict | None:
    """What scapy's dissection says of one frame (None: not a probe request)."""
    if Dot11ProbeReq not in packet:
        return None
    radiotap, dot11 = packet[RadioTap], packet[Dot11]
    elements = []
    element = packet.getlayer(Dot11Elt)
    while isinstance(element, Dot11Elt):
        raw = element.raw_packet_cache
        elements.append((element.ID, bytes(raw[2:2 + element.len])))
        element = element.payload
    return {
        "timestamp_us": None if timestamp is None else round(timestamp * 1e6),
        "rssi": radiotap.dBm_AntSignal,
        "channel": radiotap.ChannelFrequency if radiotap.present.Channel else None,
        "source": dot11.addr2,
        "seq": dot11.SC >> 4,
        "ies": elements,
    }


def our_fields(timestamp: float, dissection: parser.Dissection | None) -> dict | None:
    if dissection is None:
        return None
    return {
        "timestamp_us": round(timestamp * 1e6),
        "rssi": dissection.rssi,
        "channel": dissection.channel_mhz,
        "source": ":".join(f"{b:02x}" for b in dissection.source),
        "seq": dissection.seq,
        "ies": list(dissection.ies),
    }


def scapy_raw_frames(capture: Path) -> list[tuple[bytes, float]]:
    """Frame bytes and time stamps as scapy's own (non-dissecting) readers give them."""
    frames = []
    with RawPcapReader(str(capture)) as reader:
        for data, meta in reader:
            if hasattr(meta, "tshigh"):      # pcapng
                timestamp = ((meta.tshigh << 32) + meta.tslow) / meta.tsresol
            else:
                timestamp = meta.sec + meta.usec * (1e-9 if reader.nano else 1e-6)
            frames.append((data, timestamp))
    return frames


# The big captures are cut into chunks so that xdist spreads scapy's slow dissection.
CHUNK = 2500
CHUNKS = [
    (capture, start)
    for capture in CAPTURES
    for start in range(0, max(1, sum(1 for _ in CaptureFile(capture))), CHUNK)
]


def test_every_shared_capture_is_covered():
    names = {path.name for path in CAPTURES}
    assert len(CAPTURES) == 12 and "owe.pcapng" in names, names


@pytest.mark.parametrize("capture, start", CHUNKS, ids=lambda v: getattr(v, "name", str(v)))
def test_parser_equals_scapy_on_every_frame(capture: Path, start: int):
    with CaptureFile(capture) as ours:
        mine = list(ours)
    assert ours.stats.truncated == ours.stats.corrupt == 0
    reference = scapy_raw_frames(capture)
    assert len(mine) == len(reference)
    indices = range(start, min(start + CHUNK, len(mine)))
    ours = {index: dissect(mine[index].data) for index in indices}
    # Where we see no probe request, scapy's RadioTap and 802.11 layers suffice to agree
    # (dissecting beacons in full is what makes scapy slow); probes get full dissection.
    conf.layers.filter([RadioTap, Dot11, Dot11FCS])
    try:
        for index in indices:
            if ours[index] is None:
                header = RadioTap(reference[index][0]).getlayer(Dot11)
                assert header is None or (header.type, header.subtype) != (0, 4), index
    finally:
        conf.layers.unfilter()
    probes = 0
    for index in indices:
        frame, (data, timestamp) = mine[index], reference[index]
        assert frame.data == data and frame.linktype == 127
        dissection = ours[index]
        if dissection is None:
            continue
        expected = scapy_fields(RadioTap(data), timestamp)
        got = our_fields(frame.timestamp, dissection)
        if expected is not None and len(got["ies"]) < len(expected["ies"]):
            # Only a last element that runs past the frame may be missing.
            assert dissection.ies_truncated, index
            expected["ies"] = expected["ies"][: len(got["ies"])]
        assert got == expected, f"frame {index} of {capture.name}"
        probes += 1
    assert probes > 0


# -- synthetic radiotap headers -----------------------------------------------------

PROBE_80211 = (
    b"\x40\x00" + b"\x00\x00" + b"\xff" * 6 + bytes.fromhex("0a1b2c3d4e5f") + b"\xff" * 6
    + struct.pack("<H", 1234 << 4)
)
ELEMENTS = b"\x00\x00" + b"\x01\x04\x02\x04\x0b\x16" + b"\x32\x00" + b"\xdd\x05\x00\x50\xf2\x08\x00"


def radiotap_header(words: list[int], fields: bytes) -> bytes:
    body = b"".join(struct.pack("<I", w) for w in words) + fields
    return struct.pack("<BBH", 0, 0, 4 + len(body)) + body


def test_multi_antenna_signal():
    """Bits 29+31: per-antenna namespaces after the frame-level one (Intel/Atheros cards)."""
    ext, rt_ns = 1 << 31, 1 << 29
    # word 0: Flags(1) Channel(3) dBm signal(5) + more; words 1, 2: dBm signal + antenna.
    words = [(1 << 1) | (1 << 3) | (1 << 5) | rt_ns | ext, (1 << 5) | (1 << 11) | rt_ns | ext,
             (1 << 5) | (1 << 11)]
    fields = bytes([0x00, 0x00]) + struct.pack("<HH", 2437, 0x00A0) + bytes([(-41) & 0xFF])
    fields += bytes([(-44) & 0xFF, 0, (-39) & 0xFF, 1])
    frame = radiotap_header(words, fields) + PROBE_80211 + ELEMENTS
    result = dissect(frame)
    assert result.rssi == -41 and result.antenna_rssi == (-44, -39)
    assert result.channel_mhz == 2437
    assert scapy_fields(RadioTap(frame))["rssi"] == -41
    # Without the frame-level value, the strongest antenna stands in.
    words[0] &= ~(1 << 5)
    frame = radiotap_header(words, fields[:6] + bytes([(-44) & 0xFF, 0, (-39) & 0xFF, 1]))
    assert dissect(frame + PROBE_80211 + ELEMENTS).rssi == -39


def test_tsft_alignment_vendor_namespace_and_fcs():
    """TSFT forces 8-byte alignment; a vendor namespace is skipped by its own length;
    the FCS flag drops the last four bytes from the elements."""
    ext, vendor_ns = 1 << 31, 1 << 30
    words = [(1 << 0) | (1 << 1) | (1 << 5) | vendor_ns | ext, 0x3]
    fields = b"\x00" * 4          # pad the 12-byte word block to 16 for TSFT
    fields += struct.pack("<Q", 99) + bytes([0x10, (-60) & 0xFF])
    fields += b"\x00\x00" + b"\x00\x11\x22\x00" + struct.pack("<H", 5) + b"VVVVV"
    frame = radiotap_header(words, fields) + PROBE_80211 + ELEMENTS + b"\xde\xad\xbe\xef"
    result = dissect(frame)
    assert result.rssi == -60
    assert [e for e, _ in result.ies] == [0, 1, 50, 221] and not result.ies_truncated


def test_not_probe_requests_are_none_and_headers_are_checked():
    header = radiotap_header([1 << 5], bytes([0xC0]))
    beacon = header + b"\x80\x00" + PROBE_80211[2:] + b"\x00" * 12
    assert dissect(beacon) is None
    for frame, reason in [
        (b"", "radiotap header cut short"),
        (b"\x01" + header[1:] + PROBE_80211, "unknown radiotap version"),
        (header[:2] + b"\xff\x00" + header[4:] + PROBE_80211, "radiotap length out of range"),
        (header + PROBE_80211[:20], "802.11 header cut short"),
        (radiotap_header([1 << 31], b"") + PROBE_80211, "radiotap present words cut short"),
    ]:
        with pytest.raises(MalformedFrame) as caught:
            dissect(frame)
        assert caught.value.reason == reason


def test_zero_length_and_overrunning_elements():
    header = radiotap_header([1 << 5], bytes([(-50) & 0xFF]))
    zero = dissect(header + PROBE_80211 + b"\x00\x00\x01\x00\x32\x00")
    assert zero.ies == ((0, b""), (1, b""), (50, b"")) and not zero.ies_truncated
    overrun = dissect(header + PROBE_80211 + b"\x00\x00\x01\x40\x02\x04")
    assert overrun.ies == ((0, b""),) and overrun.ies_truncated
    lone = dissect(header + PROBE_80211 + b"\x00\x00\x7f")
    assert lone.ies == ((0, b""),) and lone.ies_truncated


def test_probe_parser_gates_excludes_and_never_returns_the_address():
    header = radiotap_header([1 << 5], bytes([(-50) & 0xFF]))
    weak_header = radiotap_header([1 << 5], bytes([(-80) & 0xFF]))
    address = bytes.fromhex("0a1b2c3d4e5f")
    anonymizer = Anonymizer(exclude=[bytes.fromhex("001122334455")])
    probe_parser = ProbeParser(anonymizer, rssi_gate_dbm=-70)
    strong = probe_parser.parse(header + PROBE_80211 + ELEMENTS, 1_700_000_000.0)
    assert strong.status == STRONG and strong.randomized and strong.seq == 1234
    assert strong.pseudonym == anonymizer.pseudonym(address) < 2**20
    assert address not in repr(strong).encode() and "0a:1b" not in repr(strong)
    weak = probe_parser.parse(weak_header + PROBE_80211 + ELEMENTS, 1_700_000_001.0)
    assert weak.status == WEAK and weak.pseudonym is None
    assert weak.fingerprint == strong.fingerprint
    excluded = header + PROBE_80211[:10] + bytes.fromhex("001122334455") + PROBE_80211[16:]
    assert probe_parser.parse(excluded + ELEMENTS, 1_700_000_002.0).status == EXCLUDED
    with pytest.raises(MalformedFrame, match="link type 105"):
        probe_parser.parse(PROBE_80211, 1_700_000_003.0, linktype=105)


def test_the_stores_own_weak_frames_are_excluded_not_passers_by():
    """Regression (review): a frame of an excluded device (the store's own) below the RSSI
    gate, or without a dBm signal, was a weak frame, hence a passer-by burst: the gate
    was checked before the exclusion list. Excluded devices now count in no figure,
    whatever their signal; their weak frames still get no pseudonym."""
    till = bytes.fromhex("001122334455")
    probe_parser = ProbeParser(Anonymizer(exclude=[till]), rssi_gate_dbm=-70)
    from_till = PROBE_80211[:10] + till + PROBE_80211[16:] + ELEMENTS
    for header in (radiotap_header([1 << 5], bytes([(-50) & 0xFF])),
                   radiotap_header([1 << 5], bytes([(-80) & 0xFF])),
                   radiotap_header([0], b"")):                     # no signal field
        probe = probe_parser.parse(header + from_till, 1_700_000_000.0)
        assert probe.status == EXCLUDED and probe.pseudonym is None, probe.rssi
    weak = probe_parser.parse(radiotap_header([1 << 5], bytes([(-80) & 0xFF])) + PROBE_80211
                              + ELEMENTS, 1_700_000_001.0)
    assert weak.status == WEAK and weak.pseudonym is None


def test_signature_ignores_what_varies_within_one_device():
    base = ((0, b"home"), (1, b"\x02\x04"), (3, b"\x01"), (255, b"\x02\x00\x17"), (45, b"\xef"))
    other = ((0, b""), (1, b"\x02\x04"), (3, b"\x0b"), (255, b"\x02\x00\x2a"), (45, b"\xef"))
    different = ((0, b""), (1, b"\x02\x04"), (3, b"\x0b"), (255, b"\x02\x00\x2a"), (45, b"\xee"))
    assert parser.signature(base) == parser.signature(other)
    assert parser.signature(base) != parser.signature(different)
