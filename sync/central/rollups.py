"""The central schema's roll-up views: migration 2 creates them, migrations 3 and 4 extend
them, migration 5 moves them to the stores' local days (:func:`views_over`).

Migration 2 (``ROLLUPS_SQL``) sums footfall, visits, dwell and the trait and segment mix
per store-day and region-day. Migration 3 (``STORE_TRUTHS_SQL``) adds the store truths
of issue 17; both are built from the same column lists below, so migration 3 restates
migration 2's columns by construction, not by copy.

The boxes publish, since aggregate schema 1.1-1.4 (``sync/schemas/aggregate.schema.json``),
buying units (``visits.groups``), the segment mix by buying units (``segments[].units``),
the checkout queue (``queue``) and till periods with their conversion (``conversion``).
Migration 2's views ignore them; this one replaces the views (``CREATE OR REPLACE
VIEW``: every column of migration 2 stays, in its order, with its type; the new ones
come after), so a database at version 2 keeps its readers.

What the views add, per store-day (``rollup_store_day``) and region-day
(``rollup_region_day``), each a sum of *published* cells only (a suppressed cell is
null and ``sum`` skips it, as in migration 2):

- ``groups``: buying units; ``groups_windows``: windows that published them;
  ``groups_visits``: ``visits.count`` of those windows (``groups / groups_visits`` is
  units per visitor over the same windows).
- ``transactions``: till transactions of the published till periods (a period belongs to
  the day of the window it ended in, as the box publishes it);
  ``transaction_periods``: how many periods. ``conversion_transactions`` and
  ``conversion_visits``: the same sums over the periods whose transactions *and*
  visits are both published; ``conversion_rate`` is their ratio, and
  ``conversion_periods`` says how many periods it covers. A period whose visits were
  withheld keeps its transactions in ``transactions`` but stays out of the rate: pairing
  its transactions with other periods' visits would overstate conversion.
- ``queue_waits``: visits that waited in the queue; ``queue_windows``: windows that
  published it; ``queue_visits``: ``visits.count`` of those windows (the share that
  queued is ``queue_waits / queue_visits``).
- ``queue_length_mean``: people in the queue zones per sample, averaged over the time of
  the windows that published it (each window's mean weighted by its seconds,
  ``queue_length_s``). The box withholds a window's queue length with its waits, so this
  covers only windows in which at least k visits waited (the busier ones): it is the
  mean over ``queue_length_s`` seconds, not over the day (and a mean per sample of the
  site's ``occupancy_sample_s``: a day over which that setting changed mixes sample
  lengths). ``queue_length_max``: the
  largest of the published window maxima (region-day: the largest of any store).

``rollup_store_day_mix`` and ``rollup_region_day_mix`` add ``units`` (buying units
classified in the segment; null for traits) and ``units_groups`` (``visits.groups`` of
the windows that published the segment's units: ``units / units_groups`` is the share
of buying units).

**Not combined, and why.**

- Queue wait percentiles (``wait_p50_s``, ``wait_p90_s``): the median (90th percentile)
  of a day's waits cannot be computed from the windows' medians, and a waits-weighted
  mean of medians is neither a median nor a mean wait. The box publishes no wait sum,
  so there is no mean wait to roll up either. They stay per window in
  ``windows.payload``; the roll-ups carry only the counts (``queue_waits``).
- The per-period ``rate`` of ``conversion``: rates are not summed or averaged; the
  rate is recomputed from the summed transactions and visits.
- Associates (staff) counts: aggregate schema 1.4 publishes none (the box shows
  associates on its status page only), so there is nothing to roll up; a later schema
  version that publishes them needs a later migration.

Migration 4 (``REGION_COLUMNS_SQL``) gives every region view the columns of the store
view it sums, as docs/central.md promises: ``rollup_region_day`` gains
``footfall_in_windows`` and ``visits_windows`` (summed: windows of the region's stores
that published the cell) and ``occupancy_max`` (the largest of any of its stores: the
stores' peaks need not be at the same moment, so they are not added);
``rollup_region_day_dwell`` and ``rollup_region_day_mix`` gain ``windows``.

Migration 5 (:mod:`sync.central.local_day`) re-creates the views with the same columns
over each store's local day instead of the UTC day (:data:`UTC_DAY`, which migrations 2-4
keep: their SQL never changes).

Nothing below k: every term of every sum is a published cell (each ≥ k), so a sum is
null or ≥ k; a max is a published value; the ratios and weighted means are of
published sums. Differences between columns are differences of published figures,
which the boxes already made safe (``x-part-of``, ``x-exclusive``).
"""

from __future__ import annotations


def _cell(path: str) -> str:
    """A window's published integer cell at ``path`` (comma-separated), null if withheld."""
    return f"(w.payload #>> '{{{path}}}')::int"


def _published(path: str) -> str:
    return f"w.payload #>> '{{{path}}}' IS NOT NULL"


def _sums(*columns: str) -> str:
    """``sum(s.column) AS column`` for each of a store roll-up's columns, summed over stores."""
    return ",\n".join(f"       sum(s.{column}) AS {column}" for column in columns)


# The day of a window in migrations 2-4: its UTC day. Migration 5 (sync.central.local_day)
# builds the same columns over the store's local day instead: the column lists below take
# the day's expression, so that the shipped migrations' SQL stays what it was.
UTC_DAY = "(w.window_start AT TIME ZONE 'UTC')::date"


# Migration 2's columns. Migration 3 keeps them first, in order and type: CREATE OR
# REPLACE VIEW refuses to drop, rename or retype a column, and readers of version 2
# keep working.
def store_day_v2(day: str) -> str:
    """Migration 2's ``rollup_store_day`` columns, the day being ``day``."""
    return f"""
       w.store,
       {day} AS day,
       count(*) AS windows,
       min(w.k) AS k,
       sum({_cell("footfall,in")}) AS footfall_in,
       sum({_cell("footfall,out")}) AS footfall_out,
       count(w.payload #>> '{{footfall,in}}') AS footfall_in_windows,
       sum({_cell("visits,count")}) AS visits,
       count(w.payload #>> '{{visits,count}}') AS visits_windows,
       sum({_cell("visits,checkout")}) AS checkout,
       sum({_cell("visits,count")} * (w.payload #>> '{{visits,mean_duration_s}}')::float8)
           / nullif(sum({_cell("visits,count")})
               FILTER (WHERE {_published("visits,mean_duration_s")}), 0) AS mean_duration_s,
       sum({_cell("visits,count")})
           FILTER (WHERE {_published("visits,mean_duration_s")}) AS duration_visits,
       sum({_cell("wifi,passers_by")}) AS passers_by,
       max({_cell("occupancy,max")}) AS occupancy_max"""


def mix_v2(day: str) -> str:
    """Migration 2's ``rollup_store_day_mix`` columns, the day being ``day``."""
    return f"""
       w.store,
       {day} AS day,
       m.kind,
       m.cell ->> 'name' AS name,
       count(*) AS windows,
       sum((m.cell ->> 'scored')::int) AS scored,
       sum((m.cell ->> 'visits')::int) AS visits,
       sum((m.cell ->> 'scored')::int)
           FILTER (WHERE m.cell ->> 'visits' IS NOT NULL) AS visits_of_scored,
       sum((m.cell ->> 'scored')::int * (m.cell ->> 'mean_probability')::float8)
           / nullif(sum((m.cell ->> 'scored')::int)
                    FILTER (WHERE m.cell ->> 'mean_probability' IS NOT NULL), 0)
           AS mean_probability,
       sum((m.cell ->> 'scored')::int)
           FILTER (WHERE m.cell ->> 'mean_probability' IS NOT NULL) AS probability_scored"""


def dwell_v2(day: str) -> str:
    """Migration 2's ``rollup_store_day_dwell`` columns, the day being ``day``."""
    return f"""w.store,
       {day} AS day,
       d.cell ->> 'zone' AS zone,
       count(*) AS windows,
       sum((d.cell ->> 'visits')::int) AS visits,
       sum((d.cell ->> 'visits')::int * (d.cell ->> 'mean_s')::float8)
           / nullif(sum((d.cell ->> 'visits')::int)
                    FILTER (WHERE d.cell ->> 'mean_s' IS NOT NULL), 0) AS mean_s,
       sum((d.cell ->> 'visits')::int)
           FILTER (WHERE d.cell ->> 'mean_s' IS NOT NULL) AS mean_visits"""


_STORE_DAY_V2 = store_day_v2(UTC_DAY)
_MIX_V2 = mix_v2(UTC_DAY)

_REGION_DAY_V2 = f"""
       r.region, s.day,
       count(*) AS stores,
       sum(s.windows) AS windows,
       min(s.k) AS k,
{_sums("footfall_in", "footfall_out", "visits", "checkout")},
       sum(s.mean_duration_s * s.duration_visits) / nullif(sum(s.duration_visits), 0)
           AS mean_duration_s,
{_sums("duration_visits", "passers_by")}"""

_REGION_MIX_V2 = f"""
       r.region, s.day, s.kind, s.name,
       count(*) AS stores,
{_sums("scored", "visits", "visits_of_scored")},
       sum(s.mean_probability * s.probability_scored)
           / nullif(sum(s.probability_scored), 0) AS mean_probability,
       sum(s.probability_scored) AS probability_scored"""

# Migration 3's columns, after migration 2's.
_STORE_DAY_V3 = f"""
       sum({_cell("visits,groups")}) AS groups,
       count(w.payload #>> '{{visits,groups}}') AS groups_windows,
       sum({_cell("visits,count")}) FILTER (WHERE {_published("visits,groups")}) AS groups_visits,
       sum(p.transactions)::bigint AS transactions,
       sum(p.periods)::bigint AS transaction_periods,
       sum(p.paired_transactions)::bigint AS conversion_transactions,
       sum(p.paired_visits)::bigint AS conversion_visits,
       sum(p.paired_transactions)::float8 / nullif(sum(p.paired_visits), 0) AS conversion_rate,
       sum(p.paired)::bigint AS conversion_periods,
       sum({_cell("queue,waits")}) AS queue_waits,
       count(w.payload #>> '{{queue,waits}}') AS queue_windows,
       sum({_cell("visits,count")}) FILTER (WHERE {_published("queue,waits")}) AS queue_visits,
       sum(w.window_s * (w.payload #>> '{{queue,length_mean}}')::float8)
           / nullif(sum(w.window_s) FILTER (WHERE {_published("queue,length_mean")}), 0)
           AS queue_length_mean,
       sum(w.window_s) FILTER (WHERE {_published("queue,length_mean")}) AS queue_length_s,
       max({_cell("queue,length_max")}) AS queue_length_max"""

_MIX_V3 = f"""
       sum((m.cell ->> 'units')::int) AS units,
       sum({_cell("visits,groups")}) FILTER (WHERE m.cell ->> 'units' IS NOT NULL)
           AS units_groups"""

_REGION_DAY_V3 = f"""
{_sums("groups", "groups_windows", "groups_visits", "transactions", "transaction_periods",
       "conversion_transactions", "conversion_visits")},
       sum(s.conversion_transactions)::float8 / nullif(sum(s.conversion_visits), 0)
           AS conversion_rate,
{_sums("conversion_periods", "queue_waits", "queue_windows", "queue_visits")},
       sum(s.queue_length_mean * s.queue_length_s) / nullif(sum(s.queue_length_s), 0)
           AS queue_length_mean,
       sum(s.queue_length_s) AS queue_length_s,
       max(s.queue_length_max) AS queue_length_max"""

_REGION_MIX_V3 = f"""
{_sums("units", "units_groups")}"""

# Migration 4's columns, after migration 3's: what the store views have and the region
# views lacked.
_REGION_DAY_V4 = f"""
{_sums("footfall_in_windows", "visits_windows")},
       max(s.occupancy_max) AS occupancy_max"""

_REGION_DWELL_V2 = """
       r.region, s.day, s.zone,
       count(*) AS stores,
       sum(s.visits) AS visits,
       sum(s.mean_s * s.mean_visits) / nullif(sum(s.mean_visits), 0) AS mean_s,
       sum(s.mean_visits) AS mean_visits"""

# One row per window (aggregates without GROUP BY), so the join multiplies nothing: the
# till periods that ended in the window, their published transactions, and the
# transactions and visits of the periods that published both. Before schema 1.1 a
# window has no ``conversion`` array: no periods.
_PERIODS = """
CROSS JOIN LATERAL (
    SELECT sum((c.cell ->> 'transactions')::int) AS transactions,
           count(c.cell ->> 'transactions') AS periods,
           sum((c.cell ->> 'transactions')::int) FILTER (WHERE c.cell ->> 'visits' IS NOT NULL)
               AS paired_transactions,
           sum((c.cell ->> 'visits')::int) FILTER (WHERE c.cell ->> 'transactions' IS NOT NULL)
               AS paired_visits,
           count(*) FILTER (WHERE c.cell ->> 'transactions' IS NOT NULL
                              AND c.cell ->> 'visits' IS NOT NULL) AS paired
    FROM jsonb_array_elements(CASE jsonb_typeof(w.payload -> 'conversion')
                              WHEN 'array' THEN w.payload -> 'conversion'
                              ELSE '[]'::jsonb END) AS c(cell)
) AS p"""

_TRAITS_AND_SEGMENTS = """
CROSS JOIN LATERAL (
    SELECT 'trait' AS kind, t.cell FROM jsonb_array_elements(w.payload -> 'traits') t(cell)
    UNION ALL
    SELECT 'segment', s.cell FROM jsonb_array_elements(w.payload -> 'segments') s(cell)
) AS m
WHERE m.cell ->> 'scored' IS NOT NULL"""

ROLLUPS_SQL = f"""
CREATE VIEW rollup_store_day AS
SELECT {_STORE_DAY_V2}
FROM windows w
GROUP BY 1, 2;

CREATE VIEW rollup_store_day_dwell AS
SELECT {dwell_v2(UTC_DAY)}
FROM windows w
CROSS JOIN LATERAL jsonb_array_elements(w.payload -> 'dwell') AS d(cell)
WHERE d.cell ->> 'visits' IS NOT NULL
GROUP BY 1, 2, 3;

CREATE VIEW rollup_store_day_mix AS
SELECT {_MIX_V2}
FROM windows w
{_TRAITS_AND_SEGMENTS}
GROUP BY 1, 2, 3, 4;

CREATE VIEW rollup_region_day AS
SELECT {_REGION_DAY_V2}
FROM rollup_store_day s JOIN store_regions r USING (store)
GROUP BY 1, 2;

CREATE VIEW rollup_region_day_dwell AS
SELECT {_REGION_DWELL_V2}
FROM rollup_store_day_dwell s JOIN store_regions r USING (store)
GROUP BY 1, 2, 3;

CREATE VIEW rollup_region_day_mix AS
SELECT {_REGION_MIX_V2}
FROM rollup_store_day_mix s JOIN store_regions r USING (store)
GROUP BY 1, 2, 3, 4;
"""

STORE_TRUTHS_SQL = f"""
CREATE OR REPLACE VIEW rollup_store_day AS
SELECT {_STORE_DAY_V2},{_STORE_DAY_V3}
FROM windows w
{_PERIODS}
GROUP BY 1, 2;

CREATE OR REPLACE VIEW rollup_store_day_mix AS
SELECT {_MIX_V2},{_MIX_V3}
FROM windows w
{_TRAITS_AND_SEGMENTS}
GROUP BY 1, 2, 3, 4;

CREATE OR REPLACE VIEW rollup_region_day AS
SELECT {_REGION_DAY_V2},{_REGION_DAY_V3}
FROM rollup_store_day s JOIN store_regions r USING (store)
GROUP BY 1, 2;

CREATE OR REPLACE VIEW rollup_region_day_mix AS
SELECT {_REGION_MIX_V2},{_REGION_MIX_V3}
FROM rollup_store_day_mix s JOIN store_regions r USING (store)
GROUP BY 1, 2, 3, 4;
"""

REGION_COLUMNS_SQL = f"""
CREATE OR REPLACE VIEW rollup_region_day AS
SELECT {_REGION_DAY_V2},{_REGION_DAY_V3},{_REGION_DAY_V4}
FROM rollup_store_day s JOIN store_regions r USING (store)
GROUP BY 1, 2;

CREATE OR REPLACE VIEW rollup_region_day_dwell AS
SELECT {_REGION_DWELL_V2},
{_sums("windows")}
FROM rollup_store_day_dwell s JOIN store_regions r USING (store)
GROUP BY 1, 2, 3;

CREATE OR REPLACE VIEW rollup_region_day_mix AS
SELECT {_REGION_MIX_V2},{_REGION_MIX_V3},
{_sums("windows")}
FROM rollup_store_day_mix s JOIN store_regions r USING (store)
GROUP BY 1, 2, 3, 4;
"""


def views_over(day: str, join: str, store_day_more: str, region_day_more: str) -> str:
    """SQL that replaces the roll-up views of migration 4 by the same columns over another
    day (migration 5, :mod:`sync.central.local_day`).

    Args:
        day: the day of a window ``w``: an expression of ``w`` and of what ``join`` adds.
        join: what follows ``FROM windows w`` in every store view (e.g. a ``LEFT JOIN``).
        store_day_more: columns appended to ``rollup_store_day`` (an aggregate of ``w``).
        region_day_more: columns appended to ``rollup_region_day`` (an aggregate of the
            store-day rows ``s``).

    The region views read the store views' ``day``, so only ``rollup_region_day``, which
    gains a column, is replaced among them.
    """
    return f"""
CREATE OR REPLACE VIEW rollup_store_day AS
SELECT {store_day_v2(day)},{_STORE_DAY_V3},
       {store_day_more}
FROM windows w
{join}
{_PERIODS}
GROUP BY 1, 2;

CREATE OR REPLACE VIEW rollup_store_day_dwell AS
SELECT {dwell_v2(day)}
FROM windows w
{join}
CROSS JOIN LATERAL jsonb_array_elements(w.payload -> 'dwell') AS d(cell)
WHERE d.cell ->> 'visits' IS NOT NULL
GROUP BY 1, 2, 3;

CREATE OR REPLACE VIEW rollup_store_day_mix AS
SELECT {mix_v2(day)},{_MIX_V3}
FROM windows w
{join}
{_TRAITS_AND_SEGMENTS}
GROUP BY 1, 2, 3, 4;

CREATE OR REPLACE VIEW rollup_region_day AS
SELECT {_REGION_DAY_V2},{_REGION_DAY_V3},{_REGION_DAY_V4},
       {region_day_more}
FROM rollup_store_day s JOIN store_regions r USING (store)
GROUP BY 1, 2;
"""
