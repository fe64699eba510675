"""The annotated replay video: every frame drawn by :class:`edge.annotate.Annotator`
into an mp4 that any ordinary player opens."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from types import TracebackType

import cv2

from edge.annotate import Annotator
from edge.errors import OutputError
from edge.records import FloorTracks, Frame
from edge.report.files import ensure_writable

# H.264 ('avc1') plays everywhere, but OpenCV's pip wheels usually lack an encoder for
# it; MPEG-4 Part 2 ('mp4v') is always there and plays in VLC, mpv, browsers' players
# of most systems and ffmpeg-based tools.
FOURCCS = ("avc1", "mp4v")


class AnnotatedVideo:
    """Writes one camera's annotated frames to an mp4 file.

    The writer opens on the first frame (its size is the frame's), so a recording
    without a readable frame leaves no file. The output path is checked at once.

    Args:
        path: the mp4 file to write.
        annotator: draws each frame (and pixelates people unless told otherwise).
        fps: frame rate of the written video (the replay's processed frames per second).
    """

    def __init__(self, path: Path, annotator: Annotator, fps: float) -> None:
        ensure_writable(path, "annotated video")
        self.path = path
        self.annotator = annotator
        self.fps = fps if fps > 0 else 7.0
        self.frames = 0
        self.fourcc: str | None = None
        self._writer: cv2.VideoWriter | None = None

    def _open(self, width: int, height: int) -> cv2.VideoWriter:
        level = cv2.utils.logging.getLogLevel()
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)  # avc1 probe noise
        try:
            for fourcc in FOURCCS:
                writer = cv2.VideoWriter(
                    str(self.path), cv2.VideoWriter.fourcc(*fourcc), self.fps, (width, height)
                )
                if writer.isOpened():
                    self.fourcc = fourcc
                    return writer
                writer.release()
        finally:
            cv2.utils.logging.setLogLevel(level)
        raise OutputError(
            f"cannot write the annotated video {self.path}: OpenCV has no mp4 encoder "
            f"({', '.join(FOURCCS)}) or the file cannot be created"
        )

    def write(self, frame: Frame, floor: FloorTracks) -> None:
        """Draw one frame and append it to the video."""
        if self._writer is None:
            width, height = frame.size
            self._writer = self._open(width, height)
        self._writer.write(self.annotator.draw(frame, floor))
        self.frames += 1

    def close(self) -> None:
        """Finish the file (writes the mp4 index); safe to call twice. The file is
        readable by its owner only: it shows the store and its visitors."""
        if self._writer is not None:
            self._writer.release()
            self._writer = None
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
