"""``--debug-raw-pcap``: keep the raw frames of a live capture, for driver debugging.

The frames keep their addresses and SSIDs, so this is a debug mode (see
:mod:`edge.debug_modes`): off by default, refused under a service, announced on
the status page while on. The file is always a new one, created readable by its
owner only: an existing path (a file of an earlier session, one someone else made
readable, a symbolic link to one) is refused, since a file that is already there
keeps its mode and owner when written into.
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


def refuse_existing(path: Path) -> None:
    """Refuse a debug capture path that is already there (a file, a link, anything).

    Raises:
        OutputError: ``path`` exists, with the fix.
    """
    if os.path.lexists(path):
        raise OutputError(_exists(path))


def _exists(path: Path) -> str:
    return (f"the debug capture {path} already exists: raw frames are only written to a new "
            "file (created mode 0600), never into an existing file or through a link, which "
            "would keep its mode and owner; give a new file name")


class RawPcapTee(FrameSource):
    """Passes ``source``'s frames on unchanged, writing each to a classic pcap file."""

    def __init__(self, source: FrameSource, path: Path) -> None:
        self.source = source
        self.path = Path(path)
        try:
            descriptor = os.open(
                self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        except FileExistsError:
            source.close()
            raise OutputError(_exists(path)) from None
        except OSError as error:
            source.close()
            raise OutputError(f"cannot write the debug capture {path}: {error.strerror}") from None
        os.fchmod(descriptor, 0o600)  # exactly 0600, whatever the umask
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
