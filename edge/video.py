"""Video sources: recorded files, RTSP streams and USB cameras, as ``Frame`` records."""

from __future__ import annotations

import math
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2

from edge import assets
from edge.errors import SourceError
from edge.records import Frame

RTSP_OPEN_TIMEOUT_MS = 5000
RTSP_READ_TIMEOUT_MS = 5000


def describe_source(source: str) -> str:
    """The source as it may be logged: a URL without its credentials."""
    if "://" in source and "@" in source.split("://", 1)[1].split("/", 1)[0]:
        scheme, rest = source.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return source


@dataclass(frozen=True, slots=True)
class SourceInfo:
    """What was learnt about a source when it opened."""

    fps: float
    width: int
    height: int
    frame_count: int | None  # None for live streams
    live: bool


class VideoSource:
    """Decoded frames of one camera, in order.

    Args:
        camera_id: the camera's id, stamped on each frame.
        source: file path, ``asset:NAME``, ``rtsp://`` URL, ``usb:N`` or ``/dev/videoN``.
        fps: frame rate to assume for a file (overrides a wrong header).
        start_time: epoch seconds of a file's first frame (default: now). Live
            sources stamp frames with the wall clock.
        detect_fps: yield at most this many frames per second of video.
    """

    def __init__(
        self,
        camera_id: str,
        source: str,
        *,
        fps: float | None = None,
        start_time: float | None = None,
        detect_fps: float | None = None,
    ) -> None:
        self.camera_id = camera_id
        self.source = source
        self._capture = self._open(assets.resolve_uri(source))
        live = source.startswith(("rtsp://", "rtsps://", "http://", "https://", "usb:", "/dev/"))
        declared_fps = self._capture.get(cv2.CAP_PROP_FPS)
        count = int(self._capture.get(cv2.CAP_PROP_FRAME_COUNT))
        self.info = SourceInfo(
            fps=float(fps or (declared_fps if 0 < declared_fps < 1000 else 25.0)),
            width=int(self._capture.get(cv2.CAP_PROP_FRAME_WIDTH)),
            height=int(self._capture.get(cv2.CAP_PROP_FRAME_HEIGHT)),
            frame_count=None if live or count <= 0 else count,
            live=live,
        )
        self.start_time = time.time() if start_time is None else start_time
        self._stride = 1
        if detect_fps and not live and detect_fps < self.info.fps:
            self._stride = max(1, math.ceil(self.info.fps / detect_fps - 1e-9))
        self._min_interval = 1.0 / detect_fps if detect_fps and live else 0.0
        self.read_failures = 0

    def _open(self, source: str) -> cv2.VideoCapture:
        shown = describe_source(source)
        if source.startswith(("usb:", "/dev/video")):
            index = source.removeprefix("usb:").removeprefix("/dev/video")
            if not index.isdigit():
                raise SourceError(f"camera {self.camera_id}: bad USB source {shown!r}; use usb:N")
            capture = cv2.VideoCapture(int(index), cv2.CAP_V4L2)
        elif "://" in source:
            capture = cv2.VideoCapture(
                source,
                cv2.CAP_FFMPEG,
                [
                    cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, RTSP_OPEN_TIMEOUT_MS,
                    cv2.CAP_PROP_READ_TIMEOUT_MSEC, RTSP_READ_TIMEOUT_MS,
                ],
            )
        else:
            path = Path(source)
            if not path.exists():
                raise SourceError(f"camera {self.camera_id}: video file {shown} does not exist")
            if not os.access(path, os.R_OK) or path.is_dir():
                raise SourceError(f"camera {self.camera_id}: cannot read video file {shown}")
            capture = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
        if not capture.isOpened():
            what = "stream did not answer" if "://" in source else "cannot be decoded as video"
            raise SourceError(f"camera {self.camera_id}: {shown} {what}")
        return capture

    @property
    def kept_fps(self) -> float:
        """Frames per second of video that iteration yields (after ``detect_fps``)."""
        return self.info.fps / self._stride

    def __iter__(self) -> Iterator[Frame]:
        index = -1
        last_yield = 0.0
        while True:
            ok = self._capture.grab()
            if not ok:
                break
            index += 1
            if index % self._stride:
                continue
            now = time.time()
            if self._min_interval and now - last_yield < self._min_interval:
                continue
            ok, image = self._capture.retrieve()
            if not ok or image is None or image.ndim != 3:
                self.read_failures += 1
                continue
            last_yield = now
            timestamp = now if self.info.live else self.start_time + index / self.info.fps
            yield Frame(self.camera_id, index, timestamp, image)

    def close(self) -> None:
        self._capture.release()

    def __enter__(self) -> VideoSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
