"""Where the fields this product reads sit in a radiotap header.

A radiotap header is a list of 32-bit "present" words followed by the fields they
announce, each aligned to its natural size from the start of the header
(radiotap.org). Per-antenna values come in extra namespaces after the first (bit 29
of the previous word), vendor namespaces (bit 30) carry their own skip length.

Only three fields matter here: Flags (FCS present?), Channel (frequency) and
dBm_AntSignal (RSSI), plus the per-antenna dBm_AntSignal of later namespaces. Their
offsets depend only on the present words, so :func:`layout` is cached per distinct
header shape: a capture has a handful of shapes and millions of frames.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from functools import lru_cache

# bit -> (alignment, size) of the radiotap-namespace fields, from radiotap.org.
_FIELDS: dict[int, tuple[int, int]] = {
    0: (8, 8),    # TSFT
    1: (1, 1),    # Flags
    2: (1, 1),    # Rate
    3: (2, 4),    # Channel: frequency u16, flags u16
    4: (1, 2),    # FHSS
    5: (1, 1),    # dBm antenna signal
    6: (1, 1),    # dBm antenna noise
    7: (2, 2),    # lock quality
    8: (2, 2),    # TX attenuation
    9: (2, 2),    # dB TX attenuation
    10: (1, 1),   # dBm TX power
    11: (1, 1),   # antenna index
    12: (1, 1),   # dB antenna signal
    13: (1, 1),   # dB antenna noise
    14: (2, 2),   # RX flags
    15: (2, 2),   # TX flags
    16: (1, 1),   # RTS retries
    17: (1, 1),   # data retries
    18: (4, 8),   # XChannel: flags u32, frequency u16, channel u8, max power u8
    19: (1, 3),   # MCS
    20: (4, 8),   # A-MPDU status
    21: (2, 12),  # VHT
    22: (8, 12),  # frame timestamp
    23: (2, 12),  # HE
    24: (2, 12),  # HE-MU
    25: (2, 6),   # HE-MU-other-user
    26: (1, 1),   # 0-length PSDU
    27: (2, 4),   # L-SIG
}
_RADIOTAP_NS = 29
_VENDOR_NS = 30
_EXT = 31
FLAG_FCS = 0x10


@dataclass(frozen=True, slots=True)
class Layout:
    """Offsets (from the header start) of the fields read; -1 where absent.

    ``complete`` is False when an unknown field stopped the walk: fields after it
    (including later antennas) are then unknown, the ones found stay valid.
    """

    flags: int
    channel: int
    xchannel: int
    signal: int
    antenna_signals: tuple[int, ...]
    complete: bool


def present_words(header: bytes, length: int) -> tuple[int, ...] | None:
    """The present words of a radiotap header, or None if they run past ``length``."""
    words = []
    offset = 4
    while True:
        if offset + 4 > length:
            return None
        word = struct.unpack_from("<I", header, offset)[0]
        words.append(word)
        offset += 4
        if not word & (1 << _EXT):
            return tuple(words)


@lru_cache(maxsize=256)
def layout(words: tuple[int, ...]) -> Layout:
    """Field offsets for a header with these present words and no vendor namespace.

    Headers with vendor namespaces depend on data (their skip length) and go through
    :func:`walk` on every frame instead.
    """
    return _walk(words, None, 1 << 30)


def walk(words: tuple[int, ...], header: bytes, length: int) -> Layout:
    """Field offsets for any header (vendor namespaces included), bounded by ``length``."""
    return _walk(words, header, length)


def has_vendor_namespace(words: tuple[int, ...]) -> bool:
    return any(word & (1 << _VENDOR_NS) for word in words[:-1])


def _walk(words: tuple[int, ...], header: bytes | None, length: int) -> Layout:
    offset = 4 + 4 * len(words)
    flags = channel = xchannel = signal = -1
    antennas: list[int] = []
    namespace = "radiotap"
    base = 0          # bit number of this word's bit 0 within its namespace
    first = True      # still in the first radiotap namespace (the frame-level values)

    def partial() -> Layout:
        return Layout(flags, channel, xchannel, signal, tuple(antennas), False)

    for index, word in enumerate(words):
        if namespace == "vendor":
            if base == 0:   # the vendor namespace's data: 6-byte header, then skip_length
                offset = (offset + 1) & ~1
                if header is None or offset + 6 > length:
                    return partial()
                offset += 6 + struct.unpack_from("<H", header, offset + 4)[0]
        else:
            for bit in range(29):
                if not word & (1 << bit):
                    continue
                spec = _FIELDS.get(bit) if base == 0 else None
                if spec is None:
                    return partial()
                align, size = spec
                offset = (offset + align - 1) // align * align
                if offset + size > length:
                    return partial()
                if first:
                    if bit == 1:
                        flags = offset
                    elif bit == 3:
                        channel = offset
                    elif bit == 5:
                        signal = offset
                    elif bit == 18:
                        xchannel = offset
                elif bit == 5:
                    antennas.append(offset)
                offset += size
        if index == len(words) - 1:
            break
        # Bits 29/30 switch the next word to a fresh radiotap or vendor namespace;
        # with neither, the next word continues this namespace at bit base + 32.
        if word & (1 << _VENDOR_NS):
            namespace, base, first = "vendor", 0, False
        elif word & (1 << _RADIOTAP_NS):
            namespace, base, first = "radiotap", 0, False
        else:
            base += 32
    if offset > length:
        return partial()
    return Layout(flags, channel, xchannel, signal, tuple(antennas), True)
