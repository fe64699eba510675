"""``--debug-raw-pcap``: keep the raw frames of a live capture, for driver debugging.

The frames keep their addresses and SSIDs, so this is a debug mode (see
:mod:`edge.debug_modes`): off by default, refused under a service, announced on
the status page while on. The file is created readable by its owner only.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from pathlib import Path

from edge.errors import OutputError
from edge.wifi.capture import FrameSource

LINKTYPE_RADIOTAP = 127
SNAPLEN = 65535


class RawPcapTee(FrameSource):
    """Passes ``source``'s frames on unchanged, writing each to a classic pcap file."""

    def __init__(self, source: FrameSource, path: Path) -> None:
        self.source = source
        self.path = Path(path)
        try:
            descriptor = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        except OSError as error:
            source.close()
            raise OutputError(f"cannot write the debug capture {path}: {error.strerror}") from None
        self._file = os.fdopen(descriptor, "wb")
        self._file.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, SNAPLEN,
                                     LINKTYPE_RADIOTAP))
        self.frames_written = 0

    def frames(self) -> Iterator[tuple[bytes, float] | None]:
        for item in self.source.frames():
            if item is not None:
                data, timestamp = item
                seconds = int(timestamp)
                micros = min(int(round((timestamp - seconds) * 1e6)), 999_999)
                self._file.write(struct.pack("<IIII", seconds, micros, len(data), len(data)))
                self._file.write(data)
                self.frames_written += 1
            yield item

    def close(self) -> None:
        try:
            self.source.close()
        finally:
            self._file.close()
