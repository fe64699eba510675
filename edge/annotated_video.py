"""The annotated replay video: every frame drawn by :class:`edge.annotate.Annotator`
into a file that browsers play.

Written with PyAV (the ``av`` package), whose wheels bundle FFmpeg with libx264 and
libvpx: H.264 in mp4 (``yuv420p``, index at the front) or, for a ``.webm`` path, VP9
in WebM. OpenCV's pip wheels have neither encoder, and the MPEG-4 Part 2 (``mp4v``)
they write is refused by Chromium (issue 18 #11).
"""

from __future__ import annotations

import contextlib
import os
from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import Any

import cv2
import numpy as np

from edge.annotate import Annotator
from edge.errors import OutputError
from edge.outputs import ensure_writable
from edge.records import FloorTracks, Frame

# File suffix -> (container format, encoder, encoder options). Anything else is mp4.
FORMATS: dict[str, tuple[str, str, dict[str, str]]] = {
    ".webm": ("webm", "libvpx-vp9", {"crf": "34", "b": "0", "deadline": "realtime",
                                     "cpu-used": "8"}),
    ".mp4": ("mp4", "libx264", {"crf": "23", "preset": "veryfast"}),
}
BROWSER_CODECS = ("h264", "vp9", "vp8")  # what the written file's stream may be


def _load_av() -> Any:
    """PyAV, an extra of the engineers' tools (the appliance never writes a video).

    Raises:
        OutputError: PyAV is not installed.
    """
    try:
        import av
    except ImportError:
        raise OutputError(
            "the annotated video needs PyAV (H.264 that browsers play; OpenCV's wheels "
            "cannot write it): pip install 'store-edge[report]'"
        ) from None
    return av


class AnnotatedVideo:
    """Writes one camera's annotated frames to an H.264 mp4 (or VP9 WebM) file.

    The writer opens on the first frame (its size is the frame's), so a recording
    without a readable frame leaves no file. The output path is checked at once.

    Args:
        path: the file to write (``.webm``: VP9 in WebM; anything else: H.264 mp4).
        annotator: draws each frame (and pixelates people unless told otherwise).
        fps: frame rate of the written video (the replay's processed frames per second).
    """

    def __init__(self, path: Path, annotator: Annotator, fps: float) -> None:
        ensure_writable(path, "annotated video")
        self._av = _load_av()  # before minutes of replay, not after
        self.path = path
        self.annotator = annotator
        self.fps = fps if fps > 0 else 7.0
        self.frames = 0
        self.codec: str | None = None
        self._container: Any = None
        self._stream: Any = None

    def _open(self, width: int, height: int) -> None:
        container_format, encoder, options = FORMATS.get(self.path.suffix.lower(),
                                                         FORMATS[".mp4"])
        try:
            container = self._av.open(str(self.path), mode="w", format=container_format,
                                      options={"movflags": "+faststart"}
                                      if container_format == "mp4" else {})
        except (OSError, self._av.FFmpegError) as error:
            raise OutputError(f"cannot write the annotated video {self.path}: {error}") from None
        stream = container.add_stream(encoder, rate=Fraction(self.fps).limit_denominator(1001))
        # 4:2:0 (what browsers decode) needs even sides; odd frames get one edge pixel.
        stream.width, stream.height = width + width % 2, height + height % 2
        stream.pix_fmt = "yuv420p"
        stream.options = dict(options)
        self._container, self._stream = container, stream
        self.codec = stream.codec_context.name

    def write(self, frame: Frame, floor: FloorTracks) -> None:
        """Draw one frame and append it to the video."""
        if self._container is None:
            width, height = frame.size
            self._open(width, height)
        image = self.annotator.draw(frame, floor)
        pad_y, pad_x = self._stream.height - image.shape[0], self._stream.width - image.shape[1]
        if pad_y or pad_x:
            image = cv2.copyMakeBorder(image, 0, pad_y, 0, pad_x, cv2.BORDER_REPLICATE)
        picture = self._av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="bgr24")
        self._container.mux(self._stream.encode(picture))
        self.frames += 1

    def close(self) -> None:
        """Flush the encoder and finish the file; safe to call twice. The file is
        readable by its owner only: it shows the store and its visitors."""
        if self._container is not None:
            container, self._container = self._container, None
            try:
                container.mux(self._stream.encode())  # frames the encoder still holds
            finally:
                container.close()
            with contextlib.suppress(OSError):
                os.chmod(self.path, 0o600)

    def __enter__(self) -> AnnotatedVideo:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
