"""Reads a live camera in a background thread: reconnects, paces files, drops when busy.

The reader never blocks the detector and the detector never blocks the reader: frames
go through a queue of one slot, and a frame that arrives while the detector is busy
replaces the waiting one (counted as dropped), so the worker always detects the
freshest frame. Frigate does the same with its frame queue.
"""

from __future__ import annotations

import dataclasses
import logging
import queue
import threading
import time

from edge.config.vision import CameraConfig
from edge.errors import SourceError
from edge.records import Frame
from edge.video import VideoSource, describe_source

log = logging.getLogger(__name__)

RETRY_LOG_EVERY_S = 60.0  # while a camera stays away, say so once a minute


@dataclasses.dataclass(slots=True)
class ReaderStats:
    """Counters the health record reports."""

    frames_read: int = 0
    frames_dropped: int = 0
    reconnects: int = 0
    connected: bool = False
    last_frame_at: float | None = None  # wall clock
    last_error: str | None = None
    # Frames a second a file is paced to (the rate frames are kept); None for a live
    # camera, whose own rate is what arrives.
    paced_fps: float | None = None


class FrameReader:
    """Keeps one camera's freshest frame available, reconnecting with backoff.

    Args:
        camera: the camera's config.
        backoff_initial_s, backoff_max_s: waits between reconnection attempts,
            doubling from the first to the second. A short maximum means a camera
            that comes back is picked up within that many seconds.
    """

    def __init__(
        self, camera: CameraConfig, *, backoff_initial_s: float = 0.5, backoff_max_s: float = 2.0
    ) -> None:
        self.camera = camera
        self.backoff_initial_s = backoff_initial_s
        self.backoff_max_s = backoff_max_s
        self.stats = ReaderStats()
        self._slot: queue.Queue[Frame] = queue.Queue(maxsize=1)
        self._stop = threading.Event()
        self._reopen = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"reader-{camera.id}", daemon=True)
        self._index = 0
        # The frame size of the first connection: a camera that comes back at another
        # size is scaled to it, or refused if its shape changed (edge.video.VideoSource).
        self._frame_size: tuple[int, int] | None = None

    def start(self) -> FrameReader:
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._thread.join(timeout)

    def reopen(self) -> None:
        """Ask the reader to drop the current connection and reconnect (stall watchdog)."""
        self._reopen.set()

    def next_frame(self, timeout: float) -> Frame | None:
        try:
            return self._slot.get(timeout=timeout)
        except queue.Empty:
            return None

    def _offer(self, frame: Frame) -> None:
        try:
            self._slot.put_nowait(frame)
        except queue.Full:
            try:
                self._slot.get_nowait()
                self.stats.frames_dropped += 1
            except queue.Empty:
                pass
            self._slot.put_nowait(frame)

    def _run(self) -> None:
        backoff = self.backoff_initial_s
        shown = describe_source(self.camera.source)
        failures, last_warning = 0, 0.0
        last_refusal = -RETRY_LOG_EVERY_S  # when frames of another shape were last logged
        # Whether the source was lost (it failed, stalled or ended) since it last opened.
        # A looped file starting again was not lost: that is no reconnection.
        lost = False
        while not self._stop.is_set():
            try:
                source = VideoSource(
                    self.camera.id,
                    self.camera.source,
                    fps=self.camera.fps,
                    detect_fps=self.camera.detect_fps,
                    frame_size=self._frame_size,
                    # Checked against image_size where the config has it; a live
                    # camera's size is not checked against a point calibration's
                    # points (a replay's is: edge.video.VideoSource).
                    calibration=self.camera.calibration
                    if self.camera.calibration.image_size else None,
                    prefetch=0,  # this reader is already the decoding thread
                )
            except SourceError as error:
                self.stats.connected = False
                self.stats.last_error = str(error)
                failures += 1
                # The first failure, then one line a minute: a camera unplugged for a
                # night must not write tens of thousands of lines to the journal.
                if failures == 1 or time.monotonic() - last_warning >= RETRY_LOG_EVERY_S:
                    log.warning("%s; retrying every %.0f s at most (attempt %d).", error,
                                self.backoff_max_s, failures)
                    last_warning = time.monotonic()
                self._stop.wait(backoff)
                backoff = min(backoff * 2, self.backoff_max_s)
                continue
            if (lost or failures) and (self.stats.frames_read or self.stats.reconnects):
                self.stats.reconnects += 1
                log.info("Camera %s is back (%s) after %d failed attempts.", self.camera.id,
                         shown, failures)
            failures, lost = 0, False
            self.stats.connected = True
            self.stats.last_error = None
            backoff = self.backoff_initial_s
            try:
                self._pump(source)
            except SourceError as error:  # frames of another shape: none are passed on
                source.close()
                self.stats.connected = False
                self.stats.last_error = str(error)
                if time.monotonic() - last_refusal >= RETRY_LOG_EVERY_S:
                    log.error("%s; trying again every %.0f s.", error, self.backoff_max_s)
                    last_refusal = time.monotonic()
                self._stop.wait(self.backoff_max_s)
                continue
            finally:
                self._frame_size = self._frame_size or source.frame_size
            source.close()
            self.stats.connected = False
            if self._stop.is_set():
                break
            if not source.info.live and self.camera.loop and not self._reopen.is_set():
                log.debug("Camera %s: %s ended; playing it again.", self.camera.id, shown)
                continue  # a demo file: start again at once
            self._reopen.clear()
            lost = True
            log.warning("Camera %s stopped delivering frames; reconnecting.", self.camera.id)
            self._stop.wait(backoff)

    def _pump(self, source: VideoSource) -> None:
        """Forward frames until the source ends, fails, or a reopen is requested.

        Files are paced to real time at the rate frames are kept, so a looped
        recording behaves like a camera.
        """
        pace = None if source.info.live else source.info.fps / source.stride
        self.stats.paced_fps = pace
        started = time.monotonic()
        for sent, frame in enumerate(source):
            if self._stop.is_set() or self._reopen.is_set():
                return
            if pace:
                delay = started + sent / pace - time.monotonic()
                if delay > 0 and self._stop.wait(delay):
                    return
            now = time.time()
            self._index += 1
            self.stats.frames_read += 1
            self.stats.last_frame_at = now
            self._offer(dataclasses.replace(frame, index=self._index, timestamp=now))
