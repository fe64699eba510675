"""Probe requests from raw radiotap + 802.11 bytes, anonymized before they leave.

Two layers:

- :func:`dissect` reads one captured frame into a :class:`Dissection` (RSSI, channel,
  source address, sequence number, information elements). It is the hot path: plain
  slicing, a cached radiotap layout per header shape, about 100x faster than
  scapy's dissection, which the tests use as the reference. Only this module and
  the tests call it.
- :class:`ProbeParser` turns a frame into a :class:`Probe` for the rest of the
  product: the raw address becomes a keyed, truncated pseudonym (or none at all when
  the frame is weaker than the RSSI gate), the IEs become a keyed fingerprint. No
  address, SSID or IE byte leaves this module.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

from edge.wifi import radiotap
from edge.wifi.anonymize import Anonymizer
from edge.wifi.pcapfile import LINKTYPE_RADIOTAP

_U16 = struct.Struct("<H").unpack_from
_U32 = struct.Struct("<I").unpack_from
_EXT = 1 << 31
_VENDOR = 1 << 30

# Element ids whose content varies between probes of one device and so must not be
# part of its fingerprint: the SSID (directed probes), the DS channel (hopping).
_VOLATILE_ELEMENTS = frozenset({0, 3})
_VENDOR_SPECIFIC = 221
_EXTENSION = 255
# Element ID Extension 2 (FILS Request Parameters) carries a per-scan value (seen
# changing on Android 13 between probes of the same scan).
_VOLATILE_EXTENSIONS = frozenset({2})

STRONG, WEAK, EXCLUDED = 0, 1, 2
LATEST_TIMESTAMP = 4_102_444_800.0      # 2100-01-01: later ones are damaged time stamps


class MalformedFrame(ValueError):
    """A frame whose headers cannot be read; ``reason`` is a short, address-free label."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Dissection(NamedTuple):
    """One probe request as sent. Holds the raw address: never pass it on."""

    rssi: int | None                   # dBm, frame-level; else the strongest antenna
    antenna_rssi: tuple[int, ...]      # dBm per antenna chain, when the card reports them
    channel_mhz: int | None            # radiotap Channel (or XChannel) frequency
    source: bytes                      # 6-byte transmitter address (addr2)
    seq: int                           # 12-bit sequence number
    ies: tuple[tuple[int, bytes], ...] # information elements, in order
    ies_truncated: bool                # the last element ran past the frame (dropped)


class Probe(NamedTuple):
    """What the product keeps of a probe request: no address, no SSID, no IE bytes."""

    timestamp: float
    rssi: int | None
    channel_mhz: int | None
    seq: int
    status: int               # STRONG (has a pseudonym), WEAK (below the gate) or EXCLUDED
    pseudonym: int | None     # keyed, truncated; None unless STRONG
    randomized: bool          # locally-administered address bit
    fingerprint: int          # keyed hash of the stable IE signature (device model/config)


_LAYOUTS: dict[int, radiotap.Layout] = {}


def _signed(value: int) -> int:
    return value - 256 if value > 127 else value


def dissect(frame: bytes) -> Dissection | None:
    """Read a radiotap-framed 802.11 frame; None when it is not a probe request.

    Raises:
        MalformedFrame: the radiotap or 802.11 header is cut short or inconsistent.
    """
    size = len(frame)
    if size < 8:
        raise MalformedFrame("radiotap header cut short")
    if frame[0] != 0:
        raise MalformedFrame("unknown radiotap version")
    rt_len = frame[2] | frame[3] << 8
    if rt_len < 8 or rt_len > size:
        raise MalformedFrame("radiotap length out of range")
    present = _U32(frame, 4)[0]
    layout = _LAYOUTS.get(present) if not present & _EXT else None
    if layout is None:
        words = radiotap.present_words(frame, rt_len)
        if words is None:
            raise MalformedFrame("radiotap present words cut short")
        if radiotap.has_vendor_namespace(words):
            layout = radiotap.walk(words, frame, rt_len)
        else:
            layout = radiotap.layout(words)
            if len(words) == 1 and len(_LAYOUTS) < 64:
                _LAYOUTS[present] = layout
    end = size
    if layout.flags >= 0:
        if layout.flags >= rt_len:
            raise MalformedFrame("radiotap fields run past its length")
        if frame[layout.flags] & radiotap.FLAG_FCS:
            end -= 4
    start = rt_len
    if end - start < 1:
        raise MalformedFrame("802.11 header cut short")
    if frame[start] & 0xFC != 0x40:      # version 0, type management, subtype probe request
        return None
    if end - start < 24:
        raise MalformedFrame("802.11 header cut short")
    rssi: int | None = None
    signal = layout.signal
    if 0 <= signal < rt_len:
        rssi = _signed(frame[signal])
    antennas = tuple(_signed(frame[o]) for o in layout.antenna_signals if o < rt_len)
    if rssi is None and antennas:
        rssi = max(antennas)
    channel: int | None = None
    if layout.channel >= 0 and layout.channel + 2 <= rt_len:
        channel = _U16(frame, layout.channel)[0]
    elif layout.xchannel >= 0 and layout.xchannel + 6 <= rt_len:
        channel = _U16(frame, layout.xchannel + 4)[0]
    seq = _U16(frame, start + 22)[0] >> 4
    position = start + 24
    if frame[start + 1] & 0x80:          # +HTC: a 4-byte HT Control field follows
        position += 4
    region = frame[position:end]
    parsed = _IE_CACHE.get(region)
    if parsed is None:
        parsed = _elements(region)
        if len(_IE_CACHE) >= IE_CACHE_SIZE:
            _IE_CACHE.clear()
        _IE_CACHE[region] = parsed
    return Dissection(
        rssi, antennas, channel, frame[start + 10:start + 16], seq, parsed[0], parsed[1]
    )


# A device repeats the same probe (same elements, same SSID list) scan after scan: in
# the shared lab capture 13,110 probes carry 723 distinct element blocks. Parsing each
# block once is most of the parser's speed. Bounded, in memory only, and emptied at
# every key rotation (see clear_caches) like everything else derived from frames.
IE_CACHE_SIZE = 4096
_IE_CACHE: dict[bytes, tuple[tuple[tuple[int, bytes], ...], bool]] = {}


def clear_caches() -> None:
    """Forget every cached element block (at key rotation and at the end of a run)."""
    _IE_CACHE.clear()


def _elements(region: bytes) -> tuple[tuple[tuple[int, bytes], ...], bool]:
    """Walk an element block: ``((id, content), ...)`` and whether the last one ran past
    the end (it is dropped, as is a lone trailing byte)."""
    ies: list[tuple[int, bytes]] = []
    append = ies.append
    position = 0
    end = len(region)
    while position < end:
        if position + 2 > end:
            return tuple(ies), True
        following = position + 2 + region[position + 1]
        if following > end:
            return tuple(ies), True
        append((region[position], region[position + 2:following]))
        position = following
    return tuple(ies), False


def signature(ies: tuple[tuple[int, bytes], ...]) -> tuple:
    """The parts of a probe's IEs that stay the same across one device's probes.

    Element order and ids always count (vendor elements by OUI and type, extension
    elements by extension id); contents count except where they vary per probe.
    """
    parts: list[object] = []
    for element, content in ies:
        if element in _VOLATILE_ELEMENTS:
            parts.append(element)
        elif element == _EXTENSION and content[:1] and content[0] in _VOLATILE_EXTENSIONS:
            parts.append((element, content[0]))
        else:
            parts.append((element, content))
    return tuple(parts)


class ProbeParser:
    """Frames in, anonymized :class:`Probe` records out.

    Args:
        anonymizer: holds the day's key; also says which addresses are excluded.
        rssi_gate_dbm: frames weaker than this (or with no dBm signal at all) are
            passers-by: they get no pseudonym, only a place in an anonymous tally.
    """

    def __init__(self, anonymizer: Anonymizer, rssi_gate_dbm: float) -> None:
        self.anonymizer = anonymizer
        self.rssi_gate_dbm = rssi_gate_dbm
        self.truncated_ies = 0      # probes whose last IE ran past the frame

    def parse(
        self, frame: bytes, timestamp: float, linktype: int = LINKTYPE_RADIOTAP
    ) -> Probe | None:
        """The probe request in ``frame``, or None when it is some other frame.

        Raises:
            MalformedFrame: unreadable headers, or a link type other than radiotap.
        """
        if linktype != LINKTYPE_RADIOTAP:
            raise MalformedFrame(f"link type {linktype} (not radiotap)")
        if not 0.0 <= timestamp < LATEST_TIMESTAMP:
            raise MalformedFrame("time stamp out of range")
        dissection = dissect(frame)
        if dissection is None:
            return None
        if dissection.ies_truncated:
            self.truncated_ies += 1
        anonymizer = self.anonymizer
        anonymizer.advance(timestamp)
        source = dissection.source
        randomized = bool(source[0] & 0x02)
        fingerprint = anonymizer.fingerprint(signature(dissection.ies))
        rssi = dissection.rssi
        if rssi is None or rssi < self.rssi_gate_dbm:
            # The store's own devices are dropped whatever their signal (a till at the
            # back of the shop can be as weak as the street). The pseudonym of a weak
            # frame is only looked up in the exclusion list, never kept.
            excluded = anonymizer.excludes_any and anonymizer.is_excluded(
                anonymizer.pseudonym(source))
            return Probe(timestamp, rssi, dissection.channel_mhz, dissection.seq,
                         EXCLUDED if excluded else WEAK, None, randomized, fingerprint)
        pseudonym = anonymizer.pseudonym(source)
        if anonymizer.is_excluded(pseudonym):
            return Probe(timestamp, rssi, dissection.channel_mhz, dissection.seq, EXCLUDED, None,
                         randomized, fingerprint)
        return Probe(timestamp, rssi, dissection.channel_mhz, dissection.seq, STRONG, pseudonym,
                     randomized, fingerprint)
