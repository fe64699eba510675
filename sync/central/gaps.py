"""Windows missing from the central store: per store, the holes between its windows.

A box cuts its windows back to back (each starts where the one before ended: multiples
of the window length from midnight UTC, one shorter window bridging a change of length,
docs/mqtt.md), and a window's id is deterministic (``<store>/<start>/<seconds>/
aggregate``). So a store's windows, in order of start, should each begin where the one
before ended; where one begins later, the windows in between never reached the table:
lost (a broker that crashed after acknowledging them to the box, docs/central.md,
*Broker settings*), dead-lettered (``dead_letters``), or not published yet (a box
offline, whose outbox still holds them: they fill the hole when it is back). A box that
has been silent since its last window is not a hole: its last window says since when.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

import psycopg

from sync.contract import aggregate_id, iso_utc

_GAPS = """
SELECT store, extract(epoch FROM prev_end)::float8, extract(epoch FROM window_start)::float8,
       prev_s
FROM (SELECT store, window_start,
             lag(window_start + make_interval(secs => window_s)) OVER w AS prev_end,
             lag(window_s) OVER w AS prev_s
      FROM windows
      WHERE (%(store)s::text IS NULL OR store = %(store)s)
        AND (%(since)s::timestamptz IS NULL OR window_start >= %(since)s)
        AND (%(until)s::timestamptz IS NULL OR window_start < %(until)s)
      WINDOW w AS (PARTITION BY store ORDER BY window_start)) AS ordered
WHERE window_start > prev_end
ORDER BY store, prev_end
"""


@dataclass(frozen=True, slots=True)
class Gap:
    """The windows of ``store`` missing from ``start`` (the end of the window before)
    to ``end`` (the start of the window after), both UTC epoch seconds.

    ``window_s``: the length of the window before the hole; ``windows``: how many windows
    of that length fit in it (the ids a box would have sent, if its window length did not
    change meanwhile).
    """

    store: str
    start: float
    end: float
    window_s: int

    @property
    def windows(self) -> int:
        return math.ceil((self.end - self.start) / self.window_s)

    def window_ids(self) -> list[str]:
        """The ids of the missing windows (the contract's deterministic ids)."""
        return [aggregate_id(self.store, self.start + i * self.window_s, self.window_s)
                for i in range(self.windows)]

    def as_dict(self) -> dict[str, object]:
        return {"store": self.store, "from": iso_utc(self.start), "to": iso_utc(self.end),
                "window_s": self.window_s, "windows": self.windows}


def missing_windows(
    conn: psycopg.Connection,
    *,
    store: str | None = None,
    since: date | None = None,
    until: date | None = None,
) -> list[Gap]:
    """Every hole between a store's first and last stored window (of those that start
    from UTC day ``since`` to the end of UTC day ``until``, when given), by store then
    time."""
    rows = conn.execute(_GAPS, {
        "store": store,
        "since": None if since is None else _midnight(since),
        "until": None if until is None else _midnight(until + timedelta(days=1)),
    }).fetchall()
    return [Gap(name, start, end, window_s) for name, start, end, window_s in rows]


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(0), UTC)
