"""Video sources: recorded files, RTSP streams and USB cameras, as ``Frame`` records."""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from queue import Empty, Full, Queue

import cv2
import numpy as np

from edge import assets
from edge.config.vision import (
    DEFAULT_FPS,
    NOT_FILE_PREFIXES,
    USB_PREFIXES,
    CalibrationConfig,
    detection_stride,
    usb_device_index,
)
from edge.errors import SourceError
from edge.records import Frame

# FFmpeg and OpenCV print decoder complaints about damaged files straight to stderr;
# the damage is reported once, in plain words, by us (read_failures, a short file).
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # AV_LOG_QUIET
cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)

log = logging.getLogger(__name__)

RTSP_OPEN_TIMEOUT_MS = 5000
RTSP_READ_TIMEOUT_MS = 5000
LIVE_PREFETCH_FRAMES = 2  # frames a live stream's reader thread holds for the detector
STOP_POLL_S = 0.1  # how often a blocked reader thread checks for close()
READER_JOIN_TIMEOUT_S = 10.0  # longer than an RTSP read timeout
SAME_SHAPE_TOLERANCE = 0.01  # aspect ratios this close are the same view at another size


@dataclass(frozen=True, slots=True)
class _End:
    """End of the frames, with the reader thread's error if it failed."""

    error: Exception | None = None


def describe_source(source: str) -> str:
    """The source as it may be logged: a URL without its credentials."""
    if "://" in source and "@" in source.split("://", 1)[1].split("/", 1)[0]:
        scheme, rest = source.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return source


LIVE_PREFIXES = ("rtsp://", "rtsps://", "http://", "https://", "usb:", "/dev/")


def is_live_source(source: str) -> bool:
    """A camera or stream (frames stamped with the wall clock, no frame count), not a file."""
    return source.startswith(LIVE_PREFIXES)


def check_video_file(camera_id: str, source: str) -> None:
    """Raise :class:`SourceError` when ``source`` names a file (not a camera or a stream)
    that is missing or unreadable: what opening it would say, said before a replay
    makes its database or outputs."""
    if source.startswith(NOT_FILE_PREFIXES) or "://" in source:
        return  # a camera, a stream, or a manifest asset (verified when it is resolved)
    path, shown = Path(source), describe_source(source)
    if not path.exists():
        raise SourceError(f"camera {camera_id}: video file {shown} does not exist")
    if not os.access(path, os.R_OK) or path.is_dir():
        raise SourceError(f"camera {camera_id}: cannot read video file {shown}")


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
        fps: frame rate to assume for a file (overrides a wrong header). Required
            for a file whose header has no rate, or 0 (FFmpeg would guess 25 frames/s
            and every time would be off): :class:`SourceError` without it.
        start_time: epoch seconds of a file's first frame. Default: the recording
            as if it had just ended (now minus its duration), so a replay, which runs
            faster than real time, never stamps a position in the future. Live
            sources stamp frames with the wall clock.
        detect_fps: yield at most this many frames per second of video.
        frame_size: ``(width, height)`` every frame must have (a reconnected camera
            passes its first connection's). Default: the first frame's. A frame of
            another size but the same shape (aspect ratio within 1 %) is the same
            view at another resolution (a stream profile changed): it is scaled to
            ``frame_size``, counted in ``resized_frames`` and logged once, and the
            calibration, made in ``frame_size`` pixels, still holds. A frame of
            another shape is a different view: :class:`SourceError`. (OpenCV's
            FFmpeg reader already scales a stream whose size changes to the size it
            opened with, so there this shows on reconnection; a file whose frames
            change size part-way is stretched by it unseen.)
        calibration: the camera's calibration, checked against the frames. With
            ``image_size`` (and no ``frame_size``), every frame must have that size,
            the first included: a recording of the same shape at another resolution
            is scaled to it (one line logged), one of another shape is refused
            (:class:`SourceError` naming both sizes), since the calibration's
            pixels would land elsewhere on the floor. Without ``image_size``, a
            recording whose frames do not contain all ``image_points`` is refused:
            it was made at another size than the calibration.
        prefetch: frames a reader thread may decode ahead; 0 decodes in the caller.
            Default: a reader thread for live sources (it keeps draining the stream
            and drops the oldest frame, counted, when the detector lags), none for
            files (measured on 2 cores: a decoding thread slows onnxruntime, which
            already uses every core, by more than the decoding it hides).
    """

    def __init__(
        self,
        camera_id: str,
        source: str,
        *,
        fps: float | None = None,
        start_time: float | None = None,
        detect_fps: float | None = None,
        frame_size: tuple[int, int] | None = None,
        prefetch: int | None = None,
        calibration: CalibrationConfig | None = None,
    ) -> None:
        self.camera_id = camera_id
        self._calibration = calibration
        # Whether the first frame is checked against calibration.image_size (not
        # against a reconnected camera's first size, which the caller gave).
        self._calibrated_size = frame_size is None and calibration is not None and (
            calibration.image_size is not None)
        if self._calibrated_size and calibration is not None:
            frame_size = calibration.image_size
        self.frame_size = frame_size
        self._noted_resize = False  # the scaling was already logged
        self.resized_frames = 0
        self.source = source
        resolved = assets.resolve_uri(source)
        self._capture = self._open(resolved)
        live = is_live_source(source)
        declared_fps = self._capture.get(cv2.CAP_PROP_FPS)
        if not fps and not live and (
            not 0 < declared_fps < 1000 or _avi_without_rate(Path(resolved))
        ):
            self._capture.release()
            raise SourceError(
                f"camera {camera_id}: {describe_source(source)} does not say its frame rate "
                "(its header has none, or 0); set the camera's fps (cameras[].fps in the "
                "site file) to the rate it was recorded at: a guessed rate would put every "
                "time, dwell and speed off by the same factor"
            )
        count = int(self._capture.get(cv2.CAP_PROP_FRAME_COUNT))
        self.info = SourceInfo(
            fps=float(fps or (declared_fps if 0 < declared_fps < 1000 else DEFAULT_FPS)),
            width=int(self._capture.get(cv2.CAP_PROP_FRAME_WIDTH)),
            height=int(self._capture.get(cv2.CAP_PROP_FRAME_HEIGHT)),
            frame_count=None if live or count <= 0 else count,
            live=live,
        )
        if (calibration is not None and self.info.frame_count and self.info.width > 0
                and self.info.height > 0):
            # A file's header: refused before minutes of work, not after.
            if self.frame_size is None:
                self._check_image_points(self.info.width, self.info.height)
            else:
                self._needs_scaling(self.info.width, self.info.height)
        if start_time is None:
            start_time = time.time() - (self.info.frame_count or 0) / self.info.fps
        self.start_time = start_time
        self._stride = 1 if live else detection_stride(self.info.fps, detect_fps)
        if detect_fps and self._stride > 1 and self.info.fps / self._stride < detect_fps * 0.999:
            log.warning("Camera %s: %s has %g frames/s; detecting 1 frame in %d, so at "
                        "%.3g frames/s, not the %g of detect_fps.", camera_id,
                        describe_source(source), self.info.fps, self._stride,
                        self.info.fps / self._stride, detect_fps)
        self._min_interval = 1.0 / detect_fps if detect_fps and live else 0.0
        self._prefetch = prefetch if prefetch is not None else (LIVE_PREFETCH_FRAMES if live else 0)
        self._stop = threading.Event()
        self._reader: threading.Thread | None = None
        self.read_failures = 0
        self.dropped_frames = 0  # live sources only: frames dropped for a slow consumer

    def _open(self, source: str) -> cv2.VideoCapture:
        shown = describe_source(source)
        if source.startswith(USB_PREFIXES):
            index = usb_device_index(source)
            if index is None:
                raise SourceError(f"camera {self.camera_id}: bad USB source {shown!r}; use usb:N")
            capture = cv2.VideoCapture(index, cv2.CAP_V4L2)
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
            check_video_file(self.camera_id, source)
            capture = cv2.VideoCapture(source, cv2.CAP_FFMPEG)
        if not capture.isOpened():
            what = "stream did not answer" if "://" in source else "cannot be decoded as video"
            raise SourceError(f"camera {self.camera_id}: {shown} {what}")
        return capture

    @property
    def stride(self) -> int:
        """A file is read every ``stride`` frames (1 unless ``detect_fps`` limits it)."""
        return self._stride

    def __iter__(self) -> Iterator[Frame]:
        """Frames in order. With ``prefetch``, a reader thread decodes ahead into a
        bounded queue, so decoding overlaps the detector instead of adding to it."""
        if self._prefetch <= 0:
            yield from self._decode()
            return
        self._stop.clear()
        queue: Queue[Frame | _End] = Queue(maxsize=self._prefetch)
        self._reader = threading.Thread(
            target=self._read_ahead, args=(queue,), name=f"decode-{self.camera_id}", daemon=True
        )
        self._reader.start()
        while True:
            item = queue.get()
            if isinstance(item, _End):
                if item.error is not None:
                    raise item.error
                return
            yield item

    def _read_ahead(self, queue: Queue[Frame | _End]) -> None:
        """The reader thread: decode into ``queue``. A file waits for room (no frame is
        lost); a live stream drops its oldest queued frame, counted, to stay current."""
        end = _End()
        try:
            for frame in self._decode():
                while not self._stop.is_set():
                    try:
                        queue.put(frame, timeout=STOP_POLL_S)
                        break
                    except Full:
                        if self.info.live:
                            with contextlib.suppress(Empty):
                                queue.get_nowait()
                                self.dropped_frames += 1
                if self._stop.is_set():
                    return
        except Exception as error:  # handed to the consumer, raised there
            end = _End(error)
        while not self._stop.is_set():
            try:
                queue.put(end, timeout=STOP_POLL_S)
                return
            except Full:
                continue

    def _decode(self) -> Iterator[Frame]:
        index = -1
        last_yield = 0.0
        while not self._stop.is_set():
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
            yield Frame(self.camera_id, index, timestamp, self._fit(image))

    def _check_image_points(self, width: int, height: int) -> None:
        """Refuse a recording whose frames do not hold the calibration's image points
        (without ``image_size``: see the class)."""
        calibration = self._calibration
        if calibration is None or not calibration.image_points:
            return
        outside = [(x, y) for x, y in calibration.image_points
                   if not (0 <= x <= width and 0 <= y <= height)]
        if outside:
            x, y = outside[0]
            raise SourceError(
                f"camera {self.camera_id}: calibration.image_points has ({x:g}, {y:g}), "
                f"outside the recording's {width}x{height} frames: the calibration was "
                "made at another frame size; replay a recording at the calibrated size, "
                "or set calibration.image_size to the size it was made at (a recording "
                "of the same shape is then scaled to it)"
            )

    def _needs_scaling(self, width: int, height: int) -> bool:
        """Whether a ``width`` x ``height`` frame must be scaled to ``frame_size``; refuses
        another shape, and logs the first scaling (see the class)."""
        assert self.frame_size is not None
        want_width, want_height = self.frame_size
        if (width, height) == (want_width, want_height):
            return False
        if self._calibrated_size:  # frame_size is the calibration's
            refusal = (f"the recording's frames are {width}x{height} but the calibration "
                       f"was made at {want_width}x{want_height} (calibration.image_size), "
                       "another shape: its pixels would land in the wrong places on the "
                       "floor; replay a recording of this camera's calibrated view, or "
                       "calibrate the camera again for this one")
            note = (f"the recording is {width}x{height}, the calibration "
                    f"{want_width}x{want_height} (calibration.image_size, the same shape); "
                    f"scaling the frames to {want_width}x{want_height}.")
        else:  # frame_size is the first connection's
            refusal = (f"frames changed from {want_width}x{want_height} to {width}x{height}, "
                       "another shape: the view or the stream profile changed and the "
                       "calibration no longer fits; restore the camera's stream settings or "
                       "calibrate it again")
            note = (f"frames changed from {want_width}x{want_height} to {width}x{height} (the "
                    f"same shape); scaling them back to {want_width}x{want_height}, where the "
                    "calibration holds.")
        if not _same_shape((width, height), self.frame_size):
            raise SourceError(f"camera {self.camera_id}: {refusal}")
        if not self._noted_resize:
            log.warning("Camera %s: %s", self.camera_id, note)
            self._noted_resize = True
        return True

    def _fit(self, image: np.ndarray) -> np.ndarray:
        """The frame at ``frame_size`` (see the class); raises if its shape differs."""
        height, width = image.shape[:2]
        if self.frame_size is None:
            self._check_image_points(width, height)
            self.frame_size = (width, height)
            return image
        if not self._needs_scaling(width, height):
            return image
        self.resized_frames += 1
        return cv2.resize(image, self.frame_size, interpolation=cv2.INTER_AREA)

    def close(self) -> None:
        """Stop the reader thread (if any), then release the capture."""
        self._stop.set()
        if self._reader is not None:
            self._reader.join(timeout=READER_JOIN_TIMEOUT_S)
            self._reader = None
        self._capture.release()

    def __enter__(self) -> VideoSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _same_shape(size: tuple[int, int], other: tuple[int, int]) -> bool:
    """Whether two ``(width, height)`` have the same aspect ratio, within 1 %."""
    (width, height), (other_width, other_height) = size, other
    return abs(width * other_height - height * other_width) <= (
        SAME_SHAPE_TOLERANCE * width * other_height)


AVI_HEADER_BYTES = 65536  # the RIFF header lists (avih, strh) come first


def _avi_without_rate(path: Path) -> bool:
    """Whether ``path`` is an AVI file whose video stream header has a rate of 0.

    FFmpeg then reports 25 frames/s as if the file declared it (OpenCV's
    ``CAP_PROP_FPS`` and PyAV alike), so the header itself is read.
    """
    try:
        with path.open("rb") as file:
            head = file.read(AVI_HEADER_BYTES)
    except OSError:
        return False
    if head[:4] != b"RIFF" or head[8:12] != b"AVI ":
        return False
    at = head.find(b"strh")
    while at >= 0 and at + 36 <= len(head):
        # "strh", size, then fccType, fccHandler, dwFlags, wPriority, wLanguage,
        # dwInitialFrames, dwScale, dwRate
        if head[at + 8:at + 12] == b"vids":
            scale = int.from_bytes(head[at + 28:at + 32], "little")
            rate = int.from_bytes(head[at + 32:at + 36], "little")
            return scale == 0 or rate == 0
        at = head.find(b"strh", at + 4)
    return False
