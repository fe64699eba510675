"""What a leak audit looks for: every spelling of every identifier in the inputs.

Needles are byte strings. A needle marked ``fold_case`` is matched against a
lower-cased copy of the haystack (its own bytes are lower case), so
``AA:bb:Cc:...`` is found as well as ``aa:bb:cc:...``. Needle labels never
contain the identifier itself (an audit report must not leak what it looks for):
an address is "address #17", an SSID "SSID #3".

Identifiers come from the inputs themselves, read independently of the product's
own parser: captures through scapy's raw pcap/pcapng readers and a minimal
802.11 header walk (tests check it against scapy's full dissection), frames
through OpenCV.
"""

from __future__ import annotations

import base64
import hashlib
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

RADIOTAP, IEEE802_11, PPI = 127, 105, 192
BROADCAST = b"\xff" * 6
HASHES = ("sha256", "md5", "sha1")
# File signatures of images, video containers and numpy dumps (raw and base64).
IMAGE_MAGIC: dict[str, bytes] = {
    "JPEG (JFIF)": b"\xff\xd8\xff\xe0",
    "JPEG (Exif)": b"\xff\xd8\xff\xe1",
    "JPEG (raw DQT)": b"\xff\xd8\xff\xdb",
    "JPEG (Adobe)": b"\xff\xd8\xff\xee",
    "JPEG JFIF marker": b"JFIF\x00",
    "PNG signature": b"\x89PNG\r\n\x1a\n",
    "JPEG in base64": b"/9j/4",
    "PNG in base64": b"iVBORw0KGgo",
    "image data URL": b"data:image/",
    "AVI container": b"AVI LIST",
    "MP4 container": b"ftypisom",
    "numpy array file": b"\x93NUMPY",
}
MIN_SSID_BYTES = 5     # "test", "owe": shorter names are words any log holds


@dataclass(frozen=True, slots=True)
class Needle:
    """One byte string to look for."""

    value: bytes
    kind: str          # "address", "address-hash", "ssid", "image", "frame-pixels", ...
    label: str         # says what it is without saying the identifier
    fold_case: bool = False

    def __post_init__(self) -> None:
        if len(self.value) < 4:
            raise ValueError(f"expected a needle of at least 4 bytes, got {len(self.value)}")
        if self.fold_case and self.value != self.value.lower():
            raise ValueError("a case-folded needle must be given in lower case")


@dataclass(slots=True)
class NeedleSet:
    """Needles by value (one label kept per value)."""

    needles: dict[tuple[bytes, bool], Needle] = field(default_factory=dict)

    def add(self, value: bytes, kind: str, label: str, *, fold_case: bool = False) -> None:
        key = (value.lower() if fold_case else value, fold_case)
        self.needles.setdefault(key, Needle(key[0], kind, label, fold_case))

    def extend(self, needles: Iterable[Needle]) -> None:
        for needle in needles:
            self.needles.setdefault((needle.value, needle.fold_case), needle)

    def __iter__(self) -> Iterator[Needle]:
        return iter(self.needles.values())

    def __len__(self) -> int:
        return len(self.needles)

    def counts(self) -> dict[str, int]:
        """Needles per kind."""
        return dict(sorted(Counter(needle.kind for needle in self).items()))


# -- captures ----------------------------------------------------------------------


@dataclass(slots=True)
class CaptureIdentifiers:
    """Individual addresses and SSIDs found in captures, and how many frames were read."""

    addresses: set[bytes] = field(default_factory=set)
    ssids: set[bytes] = field(default_factory=set)
    frames: int = 0


def _ie_offset(subtype: int) -> int | None:
    """Where the information elements of a management frame start (None: no SSID)."""
    return {0: 28, 2: 34, 4: 24, 5: 36, 8: 36}.get(subtype)


def dot11_identifiers(frame: bytes) -> tuple[list[bytes], bytes | None]:
    """Individual (not group) addresses and the SSID of one bare 802.11 frame."""
    if len(frame) < 10:
        return [], None
    ftype, subtype, flags = (frame[0] >> 2) & 3, frame[0] >> 4, frame[1]
    # Which address fields a frame has, as scapy's Dot11 layer decides it.
    offsets = [4]
    if ftype not in (1, 3) or subtype in (4, 5, 6, 8, 9, 10, 11, 14, 15):
        offsets.append(10)      # a transmitter address (control frames: some kinds only)
    if ftype in (0, 2):
        offsets.append(16)
        if ftype == 2 and flags & 3 == 3:
            offsets.append(24)
    addresses = [frame[o:o + 6] for o in offsets if len(frame) >= o + 6]
    addresses = [a for a in addresses if not a[0] & 1]      # group bit: not a device
    ssid = None
    start = _ie_offset(subtype) if ftype == 0 else None
    if start is not None and len(frame) >= start + 2 and frame[start] == 0:
        ssid = frame[start + 2:start + 2 + frame[start + 1]] or None
    return addresses, ssid


def _bare_80211(data: bytes, linktype: int | None) -> bytes | None:
    """The 802.11 frame inside a capture record; None when the link type (None: unknown)
    carries no 802.11."""
    if linktype == RADIOTAP and len(data) >= 4:
        return data[int.from_bytes(data[2:4], "little"):]
    if linktype == PPI and len(data) >= 4:
        return data[int.from_bytes(data[2:4], "little"):]
    if linktype == IEEE802_11:
        return data
    return None


def capture_identifiers(paths: Iterable[str | Path]) -> CaptureIdentifiers:
    """Every individual address and every SSID in pcap/pcapng ``paths`` (scapy readers)."""
    from scapy.utils import RawPcapReader

    found = CaptureIdentifiers()
    for path in paths:
        with RawPcapReader(str(path)) as reader:
            default_linktype = getattr(reader, "linktype", None)
            for data, meta in reader:
                found.frames += 1
                linktype = getattr(meta, "linktype", None) or default_linktype
                frame = _bare_80211(data, linktype)
                if frame is None:
                    continue
                addresses, ssid = dot11_identifiers(frame)
                found.addresses.update(addresses)
                if ssid is not None:
                    found.ssids.add(ssid)
    return found


# -- spellings ---------------------------------------------------------------------


def address_texts(address: bytes) -> dict[str, bytes]:
    """The ways software writes a MAC address as text (lower case; matched folded)."""
    hexed = address.hex()
    colon = ":".join(hexed[i:i + 2] for i in range(0, 12, 2))
    return {
        "colon text": colon.encode(),
        "dash text": colon.replace(":", "-").encode(),
        "bare hex": hexed.encode(),
        "dotted text": f"{hexed[:4]}.{hexed[4:8]}.{hexed[8:]}".encode(),
    }


def add_address(needles: NeedleSet, address: bytes, label: str) -> None:
    """Every spelling of one address: text forms (any case), raw bytes, decimal,
    base64, and unkeyed SHA-256/MD5/SHA-1 digests of the raw and text forms."""
    texts = address_texts(address)
    for form, text in texts.items():
        needles.add(text, "address", f"{label} as {form}", fold_case=True)
    if len(set(address)) >= 4:
        # 02:00:00:00:01:00 as 6 raw bytes is ordinary SQLite page structure.
        needles.add(address, "address", f"{label} as raw bytes")
    needles.add(str(int.from_bytes(address, "big")).encode(), "address", f"{label} as decimal")
    needles.add(base64.b64encode(address).rstrip(b"="), "address", f"{label} as base64")
    inputs = {"raw bytes": address, **texts,
              "upper colon text": texts["colon text"].upper(),
              "upper bare hex": texts["bare hex"].upper()}
    for algorithm in HASHES:
        for form, value in inputs.items():
            digest = hashlib.new(algorithm, value)
            what = f"{label}: unkeyed {algorithm} of its {form}"
            needles.add(digest.hexdigest().encode(), "address-hash", f"{what} (hex)",
                        fold_case=True)
            needles.add(digest.digest(), "address-hash", f"{what} (raw)")


def add_ssid(needles: NeedleSet, ssid: bytes, label: str) -> bool:
    """An SSID as its exact bytes; names too short to be told from words are left out."""
    if len(ssid) < MIN_SSID_BYTES or not ssid.strip(b"\x00 "):
        return False
    needles.add(ssid, "ssid", label)
    return True


def add_image_magic(needles: NeedleSet) -> None:
    for what, magic in IMAGE_MAGIC.items():
        needles.add(magic, "image", what)


def identifier_needles(
    found: CaptureIdentifiers, extra_addresses: Iterable[bytes] = ()
) -> NeedleSet:
    """Needles for every address and SSID of ``found`` (plus ``extra_addresses``, e.g.
    a site's exclusion list), and image signatures."""
    needles = NeedleSet()
    addresses = sorted(set(found.addresses) | set(extra_addresses))
    for index, address in enumerate(addresses):
        if address != BROADCAST and any(address):
            add_address(needles, address, f"address #{index}")
    for index, ssid in enumerate(sorted(found.ssids)):
        add_ssid(needles, ssid, f"SSID #{index}")
    add_image_magic(needles)
    return needles


# -- frames ------------------------------------------------------------------------


def frame_needles(
    video: str | Path,
    *,
    max_frames: int,
    every: int = 5,
    rows: int = 8,
    run_bytes: int = 64,
    min_distinct: int = 24,
) -> list[Needle]:
    """Runs of pixel bytes from decoded frames: BGR as decoded, RGB, and grey.

    A run must hold ``min_distinct`` different byte values, so flat areas (sky, a
    white wall: runs of one value that any file could contain) are not used.
    """
    import cv2

    capture = cv2.VideoCapture(str(video))
    if not capture.isOpened():
        raise ValueError(f"cannot open video {video}")
    needles: list[Needle] = []
    try:
        for index in range(max_frames):
            ok, frame = capture.read()
            if not ok:
                break
            if index % every:
                continue
            forms = {"BGR": frame, "RGB": frame[:, :, ::-1], "grey":
                     cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)}
            height = frame.shape[0]
            for name, image in forms.items():
                for row in range(height // (rows + 1), height, height // (rows + 1))[:rows]:
                    line = image[row].tobytes()
                    for start in (len(line) // 4, len(line) // 2):
                        run = line[start:start + run_bytes]
                        if len(run) == run_bytes and len(set(run)) >= min_distinct:
                            needles.append(Needle(run, "frame-pixels",
                                                  f"frame {index} row {row} ({name})"))
    finally:
        capture.release()
    return needles
