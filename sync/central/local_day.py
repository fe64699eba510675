"""Migration 5: the roll-ups count each store's local day, not the UTC day.

A store's business day is its local day: a New York store open until 21:00 has its
evening after 19:00 (00:00 UTC in winter) in the next UTC day, and a region spanning
time zones mixed different hours of its stores under one date. Since aggregate schema
1.5 every window names its store's IANA time zone (``timezone``, the box's
``site.timezone``); ingestion stores it in ``windows.timezone``.

**Which zone a window is counted in** (:data:`ZONE`):

1. the zone the window names (schema 1.5 on): the box's zone when it aggregated the
   window, so a store whose zone changes (a box first left at the default UTC, then set
   to its real zone) has each window in the day its box counted it in; no window is
   counted twice or lost, and the day of the change is longer or shorter than 24 hours;
2. else, for a window of a box older than 1.5, the store's zone in ``store_timezones``:
   ingestion records there the zone the store's windows name (a window that names another
   zone than the recorded one and starts after the window that recorded it replaces it),
   and the central team may set it for a store whose boxes are all older than 1.5 (a
   row with ``since`` null, replaced by the first window that names a zone); so once a
   box is upgraded, its earlier windows move to its local days too;
3. else UTC: the day the roll-ups had before this migration.

**Which local day** (:data:`LOCAL_DAY`): the one the window's middle falls in. The box
cuts windows at multiples of their length from midnight UTC (docs/mqtt.md), so with
whole-hour offsets and windows of an hour or less, every window lies inside one local
day. Otherwise a window straddles local midnight: 2-hour windows at UTC-5 or UTC+1,
hourly windows in India (UTC+5:30), daily windows anywhere but UTC, the one shorter
window that bridges a change of window length. Its visits cannot be split between the
two days (the box published one count, at least k), so the whole window goes to the
day that holds most of it, and a middle exactly at local midnight to the day that
begins there. Daylight saving changes need nothing more: a local day is from midnight
to midnight, 23 or 25 hours on the change days (92 or 100 windows of 15 minutes), and
``windows`` says how many the day has.

Storage stays by UTC day (the partitions of ``windows``); only the roll-up views
change, with the same columns (``CREATE OR REPLACE VIEW``: readers of version 4 keep
working; ``day`` keeps its name and type and now means the store's local day), and
``rollup_store_day`` and ``rollup_region_day`` gain ``timezone``: the zone(s) of the
day's windows (``, ``-separated when a store's zone changed that day, or a region's
stores are in several zones).

PostgreSQL computes the days, so it must know every zone stored: a ``CHECK``
(:func:`known_zone`) makes it refuse a row with a zone it does not know, and the
ingestion dead-letters that row alone (``refused``) instead of storing a value that
would make every roll-up query fail. (The ingest worker screens the zones with Python's
zone data first: ``invalid``.)
"""

from __future__ import annotations

from collections.abc import Sequence

import psycopg

from sync.central.rollups import views_over

# The zone a window is counted in: its own, else its store's, else UTC.
ZONE = "coalesce(w.timezone, z.timezone, 'UTC')"
# The local day of the middle of window w in that zone.
LOCAL_DAY = f"((w.window_start + w.window_s * interval '0.5 second') AT TIME ZONE {ZONE})::date"
STORE_ZONE_JOIN = "LEFT JOIN store_timezones z ON z.store = w.store"
# A region-day's zones: every zone of its store-days (each one or a list), once, in order.
REGION_ZONES = """array_to_string(ARRAY(
           SELECT DISTINCT zone
           FROM unnest(string_to_array(string_agg(s.timezone, ', '), ', ')) AS zone
           ORDER BY zone), ', ') AS timezone"""


def known_zone(column: str) -> str:
    """A condition PostgreSQL cannot evaluate for a zone it does not know (it raises
    ``time zone "…" not recognized``): a ``CHECK`` that refuses such a row."""
    return f"(timestamptz '2000-01-01 00:00:00+00' AT TIME ZONE {column}) IS NOT NULL"


LOCAL_DAY_SQL = f"""
ALTER TABLE windows ADD COLUMN timezone text;
-- A worker of version 4 stores a 1.5 window with its zone in the payload only.
UPDATE windows SET timezone = payload ->> 'timezone'
WHERE payload ->> 'timezone' IN (SELECT name FROM pg_timezone_names);
ALTER TABLE windows ADD CONSTRAINT windows_timezone_known
    CHECK (timezone IS NULL OR {known_zone("timezone")});

CREATE TABLE store_timezones (
    store text PRIMARY KEY,
    timezone text NOT NULL CONSTRAINT store_timezones_known CHECK ({known_zone("timezone")}),
    since timestamptz,
    updated_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO store_timezones (store, timezone, since)
SELECT DISTINCT ON (store) store, timezone, window_start
FROM windows
WHERE timezone IS NOT NULL
ORDER BY store, window_start DESC;
{views_over(
    LOCAL_DAY,
    STORE_ZONE_JOIN,
    f"string_agg(DISTINCT {ZONE}, ', ' ORDER BY {ZONE}) AS timezone",
    REGION_ZONES,
)}"""

_STORE_ZONES = "SELECT store, timezone, since FROM store_timezones WHERE store = ANY(%s)"
_RECORD_ZONE = """
INSERT INTO store_timezones AS s (store, timezone, since)
VALUES (%s, %s, to_timestamp(%s))
ON CONFLICT (store) DO UPDATE
SET timezone = EXCLUDED.timezone, since = EXCLUDED.since, updated_at = now()
WHERE s.timezone <> EXCLUDED.timezone AND (s.since IS NULL OR s.since < EXCLUDED.since)
"""


def record_zones(conn: psycopg.Connection, windows: Sequence[tuple[str, str, float]]) -> None:
    """Record in ``store_timezones`` the zone that stores' newly stored windows name
    (``(store, zone, window start)`` each), in the caller's transaction.

    A store's zone changes when a window names another zone and starts after the window
    that recorded the current one (``since``; a zone set by hand has none). The rows
    are read first and only a change is written, so that workers committing windows of
    the same stores at once do not queue on their rows' locks for nothing; written in
    store order, so that two such workers never deadlock.
    """
    newest: dict[str, tuple[float, str]] = {}
    for store, zone, start in windows:
        if store not in newest or start > newest[store][0]:
            newest[store] = (start, zone)
    if not newest:
        return
    known = {store: (zone, since) for store, zone, since in
             conn.execute(_STORE_ZONES, [sorted(newest)]).fetchall()}
    changes = []
    for store, (start, zone) in sorted(newest.items()):
        current, since = known.get(store, (None, None))
        if current is None or (current != zone and (since is None or since.timestamp() < start)):
            changes.append((store, zone, start))
    if changes:
        with conn.cursor() as cursor:
            cursor.executemany(_RECORD_ZONE, changes)
