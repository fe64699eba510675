"""Bounds on an aggregate's numbers that its JSON schema does not set, checked at ingestion.

The schema (``sync/schemas/aggregate.schema.json``) gives most numbers a minimum only:
``visits.mean_duration_s`` of ``1e308`` is a valid message. Stored, such a window broke
the roll-ups of the whole fleet: ``sum(count * mean_duration_s::float8)`` overflows and
``rollup_store_day`` and ``rollup_region_day`` fail (NumericValueOutOfRange), as did an
integer beyond PostgreSQL's ``int``, which the views cast counts to. So the central
worker refuses, as ``invalid`` with the field, its value and the bound, a window with a
number no box can have measured:

- every integer: PostgreSQL's ``int`` (the counts);
- durations (a visit, a zone's dwell, a queue's wait): at most a day, the longest
  window; a path walked: a day at running speed; a share or probability: 0 to 1;
  people, soft counts of visits and ratios of counts: an ``int``, like the counts;
- any other number (the refit's feature sums): at most 10^12 in magnitude.

These bounds are the central side's, not the contract's (docs/central.md): a box never
comes near them, and the schema stays as it is, so no reader of it has to change.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

INT_MAX = 2**31 - 1  # PostgreSQL's int: the roll-up views cast counts to it
DAY_S = 86_400.0  # the longest window (window.seconds), and the longest a visit may last
RUNNING_SPEED_M_S = 3.0  # nobody walks a day faster than this in a store
MAX_MAGNITUDE = 1e12  # any number without a bound of its own


@dataclass(frozen=True, slots=True)
class Bound:
    """The range of a field's values, with what the field measures (for the reason)."""

    low: float
    high: float
    meaning: str


_DURATION = Bound(0.0, DAY_S, "seconds, at most a day")
_SHARE = Bound(0.0, 1.0, "a share")
_PEOPLE = Bound(0.0, float(INT_MAX), "people, at most PostgreSQL's int")
_RATIO = Bound(0.0, float(INT_MAX), "a ratio of counts, at most PostgreSQL's int")
_SOFT_COUNT = Bound(0.0, float(INT_MAX), "a soft count of visits, at most PostgreSQL's int")
_SUM = Bound(-MAX_MAGNITUDE, MAX_MAGNITUDE, "a sum of scaled features")

# Keyed by JSON pointer, ``*`` standing for any array index.
BOUNDS: dict[str, Bound] = {
    "/footfall/capture_rate": _SHARE,
    "/occupancy/mean": _PEOPLE,
    "/occupancy/sample_s": _DURATION,
    "/visits/mean_duration_s": _DURATION,
    "/visits/mean_path_m": Bound(0.0, DAY_S * RUNNING_SPEED_M_S, "metres, a day at 3 m/s"),
    "/dwell/*/mean_s": _DURATION,
    "/dwell/*/p50_s": _DURATION,
    "/dwell/*/p90_s": _DURATION,
    "/traits/*/mean_probability": _SHARE,
    "/segments/*/mean_probability": _SHARE,
    "/wifi/occupancy_estimate": _PEOPLE,
    "/queue/wait_p50_s": _DURATION,
    "/queue/wait_p90_s": _DURATION,
    "/queue/length_mean": _PEOPLE,
    "/conversion/*/rate": _RATIO,
    "/segment_stats/components/*/membership": _SOFT_COUNT,
    "/segment_stats/components/*/sum/*": _SUM,
    "/segment_stats/components/*/sumsq/*": Bound(0.0, MAX_MAGNITUDE, "a sum of squares"),
}


def out_of_bounds(message: Any) -> str | None:
    """Why a (schema-valid) message has a number beyond the bounds above: the first
    such field, its value and its bound; None when every number is within them."""
    return _walk(message, "", "")


def _walk(value: Any, path: str, pattern: str) -> str | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return _check(value, path or "/", pattern)
    items = (value.items() if isinstance(value, dict)
             else enumerate(value) if isinstance(value, list) else ())
    for key, item in items:
        step = "*" if isinstance(value, list) else str(key)
        found = _walk(item, f"{path}/{key}", f"{pattern}/{step}")
        if found is not None:
            return found
    return None


def _check(value: float, path: str, pattern: str) -> str | None:
    bound = BOUNDS.get(pattern)
    if bound is not None:
        if bound.low <= value <= bound.high:
            return None
        return (f"{path} is {value:g}, outside {_number(bound.low)} .. "
                f"{_number(bound.high)} ({bound.meaning})")
    if isinstance(value, int):
        if abs(value) <= INT_MAX:
            return None
        return (f"{path} is larger than the roll-ups' integers ({INT_MAX}): no store "
                "counts that many in one window")
    if abs(value) <= MAX_MAGNITUDE:
        return None
    return f"{path} is {value:g}, beyond the {MAX_MAGNITUDE:g} any number of an aggregate may be"


def _number(value: float) -> str:
    return f"{int(value):,}" if value.is_integer() and abs(value) < 1e15 else f"{value:g}"
