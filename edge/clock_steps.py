"""Steps of the wall clock: it moved more (or less) than the monotonic clock.

The services stamp what they see with the wall clock (``time.time()``) and the fusion
paces on it. NTP at boot on a box without a real-time clock steps it forward by hours;
an operator setting the time steps it either way. Slewing NTP moves it by 0.5 ms a
second at most, so the wall clock moving ``CLOCK_STEP_S`` more or less than the
monotonic clock between two readings is a step, not drift.
"""

from __future__ import annotations

from collections.abc import Callable

CLOCK_STEP_S = 2.0


class ClockStepWatch:
    """Tells the steps of ``clock`` against ``monotonic``, reading to reading.

    Args:
        clock: the wall clock (seconds).
        monotonic: a clock no step moves (``time.monotonic``).

    Example:
        >>> wall, mono = [100.0], [5.0]
        >>> watch = ClockStepWatch(lambda: wall[0], lambda: mono[0])
        >>> watch.check(wall[0])
        0.0
        >>> wall[0], mono[0] = 3700.5, 5.5  # an hour forward, half a second later
        >>> watch.check(wall[0])
        3600.0
    """

    def __init__(self, clock: Callable[[], float], monotonic: Callable[[], float]) -> None:
        self.clock = clock
        self.monotonic = monotonic
        self._last: tuple[float, float] | None = None

    def check(self, now: float | None = None) -> float:
        """Seconds the wall clock stepped since the last check (positive: forward), or 0
        when it did not (within ``CLOCK_STEP_S``; the first check has nothing to compare).
        ``now``: the wall clock's reading, when the caller has just taken it."""
        wall = self.clock() if now is None else now
        mono = self.monotonic()
        last, self._last = self._last, (wall, mono)
        if last is None:
            return 0.0
        stepped = (wall - last[0]) - (mono - last[1])
        return stepped if abs(stepped) > CLOCK_STEP_S else 0.0
