"""Whether a camera worker keeps up with its camera: the pictures it analyses against
those it should (a file's pace), or those it drops while busy (a live camera's)."""

from __future__ import annotations

from dataclasses import dataclass

from edge.runtime.frame_reader import ReaderStats

# A camera falls behind when the worker analyses less than KEEP_UP_SHARE of the pictures
# it should (a file's pace), or drops more than the rest of the ones its camera sent while
# it was busy. Judged over spans holding at least JUDGE_FRAMES pictures (one health
# window at 5 frames/s, several short ones), and said after BEHIND_SPANS spans in a row.
KEEP_UP_SHARE = 0.85
JUDGE_FRAMES = 20
BEHIND_SPANS = 2


def falling_behind(
    analysed_fps: float, offered: int, dropped: int, span_s: float, paced_fps: float | None,
) -> float | None:
    """The pictures a second a camera should be analysed at, when a span fell short.

    Args:
        analysed_fps: pictures analysed a second over the span.
        offered, dropped: pictures the reader passed on in the span, and how many of
            them were replaced by a newer one before the detector was free.
        span_s: the span's length.
        paced_fps: a file's pace (None for a live camera).

    Returns:
        None while the worker keeps up. A live camera keeps up while it drops at most
        ``1 - KEEP_UP_SHARE`` of what arrives (its own rate is whatever it sends); a file
        while it is analysed at ``KEEP_UP_SHARE`` of its pace or more (a starved reader
        lags its pace without dropping).
    """
    if paced_fps is not None and analysed_fps < KEEP_UP_SHARE * paced_fps:
        return paced_fps
    if offered > 0 and dropped > (1 - KEEP_UP_SHARE) * offered:
        return offered / span_s
    return None


@dataclass(slots=True)
class _Span:
    """Health windows judged together (see falling_behind): the pictures analysed in
    them, their seconds, and the reader's counters at the span's start."""

    read_at_start: int
    dropped_at_start: int
    frames: int = 0
    seconds: float = 0.0

    @classmethod
    def starting(cls, reader: ReaderStats) -> _Span:
        return cls(reader.frames_read, reader.frames_dropped)



class KeepUp:
    """The judgement over spans of health windows (:func:`falling_behind`), said after
    ``BEHIND_SPANS`` spans in a row.

    Attributes:
        behind_fps: the rate the camera should be analysed at while it falls behind
            (else None).
        behind_spans: for how many spans in a row it has.
    """

    def __init__(self, reader: ReaderStats) -> None:
        self._span = _Span.starting(reader)
        self.behind_fps: float | None = None
        self.behind_spans = 0

    @property
    def behind(self) -> bool:
        """Whether the camera has fallen behind long enough to say so."""
        return self.behind_fps is not None and self.behind_spans >= BEHIND_SPANS

    def measure(self, frames: int, seconds: float, reader: ReaderStats) -> None:
        """Add a health window of ``frames`` analysed in ``seconds``; once the span since
        the last judgement holds enough pictures, judge whether the camera fell behind."""
        span = self._span
        if not reader.connected:  # a camera away is down, not behind: start afresh
            self._span, self.behind_spans, self.behind_fps = _Span.starting(reader), 0, None
            return
        span.frames += frames
        span.seconds += seconds
        offered = reader.frames_read - span.read_at_start
        paced = reader.paced_fps
        if (paced * span.seconds if paced else offered) < JUDGE_FRAMES:
            return
        wanted = falling_behind(span.frames / span.seconds, offered,
                                reader.frames_dropped - span.dropped_at_start, span.seconds, paced)
        self.behind_spans = self.behind_spans + 1 if wanted else 0
        self.behind_fps = wanted
        self._span = _Span.starting(reader)
