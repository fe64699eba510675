"""Stream frames out of pcap and pcapng files, fast and without ever crashing on bad input.

Engineers replay captures, tests replay the shared ones, and a capture cut short by a
power loss must still give everything before the cut. So the reader never raises
once the file header has been recognised: a truncated record, a corrupt block length
or trailing garbage ends the stream and is counted in :class:`ReadStats`.

Both formats are read from a memory map with ``struct.unpack_from``: no per-frame
object but the frame's own bytes. Formats: classic pcap (microsecond and nanosecond
variants, either byte order) and pcapng (sections of either byte order, several
interfaces with their own link type and ``if_tsresol``/``if_tsoffset``; Enhanced,
Simple and obsolete Packet blocks).
"""

from __future__ import annotations

import mmap
import struct
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from edge.errors import DataFormatError

LINKTYPE_IEEE802_11 = 105
LINKTYPE_RADIOTAP = 127

# A record claiming more than this is corruption, not a frame (802.11 frames are < 12 kB).
MAX_FRAME_BYTES = 262_144

_PCAP_MAGICS = {
    b"\xd4\xc3\xb2\xa1": ("<", 1e-6),
    b"\xa1\xb2\xc3\xd4": (">", 1e-6),
    b"\x4d\x3c\xb2\xa1": ("<", 1e-9),
    b"\xa1\xb2\x3c\x4d": (">", 1e-9),
}
_PCAPNG_SHB = 0x0A0D0D0A
_PCAPNG_BOM = 0x1A2B3C4D
# The smallest file of each format: its file header alone (pcap global header; pcapng
# Section Header Block without options). Shorter is a cut-off file, not a capture.
HEADER_BYTES = {"pcap": 24, "pcapng": 28}

# Why a pcapng packet block was skipped (ReadStats.skipped; the replay summary says it).
SKIP_NO_INTERFACE = ("they name an interface no Interface Description Block describes "
                     "(blocks cut out of the file, or files joined without their headers)")
SKIP_SHORT = "too short for a packet block header"
SKIP_OVERLONG = "they claim more frame bytes than their block holds"


@dataclass(slots=True)
class ReadStats:
    """What the reader met besides good frames (all counts)."""

    frames: int = 0
    truncated: int = 0          # the file ends inside a record or block
    corrupt: int = 0            # a record or block length that cannot be right
    no_timestamp: int = 0       # pcapng Simple Packet Blocks (skipped: no time)
    other_blocks: int = 0       # pcapng blocks that carry no frame (statistics, names...)
    notes: list[str] = field(default_factory=list)   # one line per stream-ending problem
    # pcapng packet blocks skipped (the stream goes on after them): reason -> blocks
    skipped: Counter[str] = field(default_factory=Counter)

    def skip_notes(self) -> list[str]:
        """One line per reason packet blocks were skipped, for the replay summary."""
        return [f"{count} pcapng packet blocks skipped: {reason}"
                for reason, count in sorted(self.skipped.items())]


class RawFrame(NamedTuple):
    """One captured frame: capture time (epoch seconds), link type, bytes as captured.

    A named tuple, not a dataclass: one is made per frame on the hot path.
    """

    timestamp: float
    linktype: int
    data: bytes


def sniff_format(head: bytes, source: str = "capture") -> str:
    """``"pcap"`` or ``"pcapng"`` from a file's first four bytes.

    Args:
        source: the file's name, for the message.

    Raises:
        DataFormatError: the bytes start neither format.
    """
    if head[:4] in _PCAP_MAGICS:
        return "pcap"
    if len(head) >= 4 and struct.unpack("<I", head[:4])[0] == _PCAPNG_SHB:
        return "pcapng"
    raise DataFormatError(
        f"{source}: not a pcap or pcapng capture (it starts with bytes "
        f"{head[:4].hex() or 'nothing'}); write captures with tcpdump -w, dumpcap or Wireshark"
    )


class CaptureFile:
    """A pcap or pcapng file, iterated as :class:`RawFrame` objects.

    ``position`` and ``size`` (bytes) drive progress bars; ``stats`` counts anomalies.

    Raises:
        DataFormatError: on open, when the file is missing, unreadable, empty, of an
            unknown format or too short to hold its own file header. Never while
            iterating.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.stats = ReadStats()
        self.position = 0
        try:
            with self.path.open("rb") as handle:
                self.size = self.path.stat().st_size
                if self.size < 4:
                    raise DataFormatError(f"capture {self.path} is empty or too short to be a pcap")
                self._map: mmap.mmap | bytes = mmap.mmap(
                    handle.fileno(), 0, access=mmap.ACCESS_READ
                )
        except FileNotFoundError:
            raise DataFormatError(f"capture file {self.path} does not exist") from None
        except IsADirectoryError:
            raise DataFormatError(f"{self.path} is a folder, not a capture file") from None
        except OSError as error:
            raise DataFormatError(f"cannot read capture {self.path}: {error.strerror}") from None
        try:
            self.format = sniff_format(bytes(self._map[:4]), str(self.path))
            if self.size < HEADER_BYTES[self.format]:
                raise DataFormatError(
                    f"capture {self.path} is cut short: {self.size} bytes, but a "
                    f"{self.format} file header alone takes {HEADER_BYTES[self.format]}"
                )
        except DataFormatError:
            self.close()
            raise

    def __enter__(self) -> CaptureFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if isinstance(self._map, mmap.mmap):
            self._map.close()

    def __iter__(self) -> Iterator[RawFrame]:
        if self.format == "pcap":
            return self._pcap()
        return self._pcapng()

    def _end(self, kind: str, offset: int, detail: str) -> None:
        if kind == "truncated":
            self.stats.truncated += 1
        else:
            self.stats.corrupt += 1
        self.stats.notes.append(
            f"{detail} at byte {offset}; kept the {self.stats.frames} frames before it"
        )

    def _pcap(self) -> Iterator[RawFrame]:
        buf = self._map
        size = self.size
        order, unit = _PCAP_MAGICS[bytes(buf[:4])]  # the header is there (checked on open)
        linktype = struct.unpack_from(order + "I", buf, 20)[0] & 0xFFFF
        unpack = struct.Struct(order + "IIII").unpack_from
        new = tuple.__new__   # builds the named tuple without its Python-level __new__
        offset = 24
        stats = self.stats
        while offset < size:
            if offset + 16 > size:
                self._end("truncated", offset, "the file ends inside a record header")
                break
            sec, frac, captured, _original = unpack(buf, offset)
            if captured > MAX_FRAME_BYTES:
                self._end("corrupt", offset, f"a record claims {captured} bytes")
                break
            start = offset + 16
            end = start + captured
            if end > size:
                self._end("truncated", offset, "the file ends inside a frame")
                break
            offset = end
            self.position = end
            stats.frames += 1
            yield new(RawFrame, (sec + frac * unit, linktype, buf[start:end]))
        self.position = size

    def _pcapng(self) -> Iterator[RawFrame]:
        buf = self._map
        size = self.size
        stats = self.stats
        order = "<"
        interfaces: list[tuple[int, float, float]] = []   # (linktype, seconds per tick, offset)
        offset = 0
        while offset < size:
            if offset + 12 > size:
                self._end("truncated", offset, "the file ends inside a block header")
                break
            block_type = struct.unpack_from(order + "I", buf, offset)[0]
            if block_type == _PCAPNG_SHB:
                bom = bytes(buf[offset + 8:offset + 12])
                order = "<" if bom == struct.pack("<I", _PCAPNG_BOM) else ">"
                if bom not in (struct.pack("<I", _PCAPNG_BOM), struct.pack(">I", _PCAPNG_BOM)):
                    self._end("corrupt", offset, "a pcapng section has no byte-order magic")
                    break
                interfaces = []
            length = struct.unpack_from(order + "I", buf, offset + 4)[0]
            if length < 12 or length % 4 or length > MAX_FRAME_BYTES + 64:
                self._end("corrupt", offset, f"a pcapng block claims {length} bytes")
                break
            if offset + length > size:
                self._end("truncated", offset, "the file ends inside a pcapng block")
                break
            body = offset + 8
            body_end = offset + length - 4
            offset += length
            self.position = offset
            if block_type == 1:          # Interface Description Block
                if body_end - body < 8:
                    self._end("corrupt", body, "an interface block is too short")
                    break
                linktype = struct.unpack_from(order + "H", buf, body)[0]
                tick, shift = _interface_options(buf, body + 8, body_end, order)
                interfaces.append((linktype, tick, shift))
            elif block_type in (6, 2):   # Enhanced / obsolete Packet Block
                head = 20
                if body_end - body < head:
                    stats.skipped[SKIP_SHORT] += 1
                    continue
                if block_type == 6:
                    iface, high, low, captured = struct.unpack_from(order + "IIII", buf, body)
                else:
                    iface, _drops, high, low, captured = struct.unpack_from(
                        order + "HHIII", buf, body
                    )
                start = body + head
                if iface >= len(interfaces):
                    stats.skipped[SKIP_NO_INTERFACE] += 1
                    continue
                if start + captured > body_end:
                    stats.skipped[SKIP_OVERLONG] += 1
                    continue
                linktype, tick, shift = interfaces[iface]
                stats.frames += 1
                timestamp = ((high << 32) | low) * tick + shift
                yield RawFrame(timestamp, linktype, buf[start:start + captured])
            elif block_type == 3:        # Simple Packet Block: no interface time stamp
                stats.no_timestamp += 1
            elif block_type != _PCAPNG_SHB:
                stats.other_blocks += 1
        self.position = size


def _interface_options(
    buf: mmap.mmap | bytes, offset: int, end: int, order: str
) -> tuple[float, float]:
    """``(seconds per time-stamp tick, seconds to add)`` from an IDB's options."""
    tick, shift = 1e-6, 0.0
    while offset + 4 <= end:
        code, length = struct.unpack_from(order + "HH", buf, offset)
        value = offset + 4
        if code == 0 or value + length > end:
            break
        if code == 9 and length >= 1:        # if_tsresol
            resolution = buf[value]
            tick = 2.0 ** -(resolution & 0x7F) if resolution & 0x80 else 10.0 ** -resolution
        elif code == 14 and length >= 8:     # if_tsoffset, seconds
            shift = float(struct.unpack_from(order + "q", buf, value)[0])
        offset = value + (length + 3) // 4 * 4
    return tick, shift
