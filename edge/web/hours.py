"""The real hours of a store-time day, clock changes included.

A day is not always 24 hours of ``00:00`` to ``23:00``. On the day the clocks go back
(Europe/London, last Sunday of October) the hour from 01:00 comes twice, and the day
has 25 hours; on the day they go forward it has no 01:00 at all, and 23 hours. Binning
times by ``datetime.hour`` merged the two real hours of the first into one row and
invented an empty row for the second. Here each hour is bounded by the epoch seconds of
its start and of the next one's, so an hour holds what happened in it and nothing else.
"""

from __future__ import annotations

import bisect
import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

REPEAT_MARK = " (2nd)"


@dataclass(frozen=True, slots=True)
class LocalHour:
    """One real hour of a store-time day: ``[start, end)`` in epoch seconds.

    ``hour`` is what the clock read (0-23); ``repeat`` is true for the second time the
    clock read it, after the clocks went back.
    """

    hour: int
    repeat: bool
    start: float
    end: float

    @property
    def key(self) -> tuple[int, bool]:
        """What lines the hour up with the same hour of another day: the clock's hour."""
        return self.hour, self.repeat

    @property
    def label(self) -> str:
        return hour_label(self.hour, self.repeat)


def hour_label(hour: int, repeat: bool) -> str:
    """``01:00``, or ``01:00 (2nd)`` for the hour the clocks went back into."""
    return f"{hour:02d}:00{REPEAT_MARK if repeat else ''}"


def day_hours(day: dt.date, tz: ZoneInfo) -> list[LocalHour]:
    """The hours the clock of ``tz`` showed on ``day``, in time order.

    An hour that did not exist (the clocks went forward over it) is left out; one the
    clocks went back into is there twice, its second time ``repeat``. The first starts
    at the day's first moment and the last ends at the next day's.
    """
    starts: list[tuple[float, int, bool]] = []
    for hour in range(24):
        for fold in (0, 1):
            wall = dt.datetime.combine(day, dt.time(hour, fold=fold), tz)
            t = wall.timestamp()
            back = dt.datetime.fromtimestamp(t, tz)
            # A wall time the clocks skipped does not come back as itself: no such hour.
            if back.replace(tzinfo=None) != wall.replace(tzinfo=None, fold=0):
                continue
            if any(t == seen for seen, _, _ in starts):
                continue  # an ordinary hour: fold 1 is the same moment as fold 0
            starts.append((t, hour, back.fold == 1))
    starts.sort()
    first = dt.datetime.combine(day, dt.time(), tz).timestamp()
    end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), tz).timestamp()
    if not starts or starts[0][0] > first:  # a day that begins past midnight (skipped)
        wall = dt.datetime.fromtimestamp(first, tz)
        starts.insert(0, (first, wall.hour, bool(wall.fold)))
    bounds = [t for t, _, _ in starts] + [end]
    return [LocalHour(hour=hour, repeat=repeat, start=bounds[i], end=bounds[i + 1])
            for i, (_, hour, repeat) in enumerate(starts)]


def count_by_hour(times: list[float] | tuple[float, ...], hours: list[LocalHour]
                  ) -> dict[tuple[int, bool], int]:
    """How many of ``times`` fall in each of ``hours`` (by :attr:`LocalHour.key`);
    times outside them are not counted."""
    starts = [h.start for h in hours]
    counts: dict[tuple[int, bool], int] = {}
    for t in times:
        i = bisect.bisect_right(starts, t) - 1
        if i >= 0 and t < hours[i].end:
            key = hours[i].key
            counts[key] = counts.get(key, 0) + 1
    return counts


def first_hour_from(hours: list[LocalHour], t: float, end: float) -> float:
    """The start of the first of ``hours`` that begins at or after ``t``; ``end`` if none."""
    return next((h.start for h in hours if h.start >= t), end)


def clock_change(hours: list[LocalHour]) -> str | None:
    """What the clocks did on the day of ``hours``, in words for the page; None on a
    day of 24 ordinary hours."""
    repeated = [h for h in hours if h.repeat]
    if repeated:
        first = repeated[0]
        return (f"the clocks went back, so the hour from {hour_label(first.hour, False)} "
                f"came twice: {hour_label(first.hour, False)} and {first.label}")
    skipped = sorted(set(range(24)) - {h.hour for h in hours})
    if skipped:
        return (f"the clocks went forward, so there was no "
                f"{' or '.join(hour_label(hour, False) for hour in skipped)} hour")
    return None
