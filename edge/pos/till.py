"""Validation of till transaction counts, from a CSV file or an HTTP push.

Both go through :func:`parse_periods`: every row is checked before anything is
stored, and the first problem is raised as one line naming where it is (a file's
``FILE:LINE``, a push's ``periods[i]``). Rules:

* ``period_start`` is ISO 8601 (``2024-03-01T10:00:00+01:00``, ``…Z``); without an
  offset it is store time (``site.timezone``);
* a period is known only if it lies on the site's grid of periods: it starts on a
  multiple of its length from midnight, store time, and it has ended (an unparseable
  time, an off-grid start such as 10:20 for hourly periods, or a period still running
  or in the future is an unknown period);
* ``transactions`` is a whole number, zero or more;
* the period length is the row's or file's ``period_s``, else ``pos.period_s``; it
  must divide a day;
* no period twice in one file or push.
"""

from __future__ import annotations

import csv
import datetime as dt
import math
from collections.abc import Iterable
from pathlib import Path
from zoneinfo import ZoneInfo

from edge.errors import DataFormatError
from edge.pos.store import TillPeriod

CLOCK_SKEW_S = 60.0
MAX_TRANSACTIONS = 10_000_000
REQUIRED = ("period_start", "transactions")


def _period_s(value: object, where: str, default: int) -> int:
    if value is None or value == "":
        return default
    try:
        seconds = int(str(value).strip()) if not isinstance(value, bool) else -1
    except ValueError:
        seconds = -1
    if seconds < 60 or 86_400 % seconds:
        raise DataFormatError(f"{where}: period_s {value!r} must be whole seconds, at least 60, "
                              "dividing a day (e.g. 900, 3600)")
    return seconds


def _transactions(value: object, where: str) -> int:
    if isinstance(value, bool):
        count = None
    elif isinstance(value, int):
        count = value
    elif isinstance(value, float) and math.isfinite(value) and value.is_integer():
        count = int(value)
    elif isinstance(value, str) and value.strip().lstrip("-").isdigit():
        count = int(value.strip())
    else:
        count = None
    if count is None:
        raise DataFormatError(f"{where}: transactions {value!r} is not a whole number")
    if count < 0:
        raise DataFormatError(f"{where}: transactions {count} is negative; a till period has "
                              "zero or more transactions")
    if count > MAX_TRANSACTIONS:
        raise DataFormatError(f"{where}: transactions {count} is more than {MAX_TRANSACTIONS}")
    return count


def _start(value: object, where: str, seconds: int, tz: ZoneInfo, now: float) -> float:
    try:
        moment = dt.datetime.fromisoformat(str(value).strip())
    except ValueError:
        raise DataFormatError(f"{where}: unknown period: period_start {value!r} is not an ISO "
                              "8601 time such as 2024-03-01T10:00:00+01:00") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=tz)
    start = moment.timestamp()
    local = moment.astimezone(tz)
    midnight = dt.datetime.combine(local.date(), dt.time(), tz).timestamp()
    if (start - midnight) % seconds:
        raise DataFormatError(
            f"{where}: unknown period: {value} is not the start of a {seconds} s till period "
            f"(periods start on multiples of {seconds} s from midnight, {tz.key})")
    if start + seconds > now + CLOCK_SKEW_S:
        raise DataFormatError(f"{where}: unknown period: the period starting {value} has not "
                              "ended yet")
    return start


def parse_periods(
    rows: Iterable[tuple[str, object, object, object]],
    *,
    default_period_s: int,
    tz: ZoneInfo,
    now: float,
) -> list[TillPeriod]:
    """Validated periods from ``(where, period_start, transactions, period_s or None)`` rows.

    Raises:
        DataFormatError: the first problem, as ``where: what is wrong``; or no rows.
    """
    periods: list[TillPeriod] = []
    first: dict[float, str] = {}
    for where, start_text, count, length in rows:
        seconds = _period_s(length, where, default_period_s)
        start = _start(start_text, where, seconds, tz, now)
        transactions = _transactions(count, where)
        if start in first:
            raise DataFormatError(f"{where}: period {start_text} is already given at "
                                  f"{first[start]}; give each period once")
        first[start] = where
        periods.append(TillPeriod(start, seconds, transactions))
    if not periods:
        raise DataFormatError("no till periods given")
    periods.sort(key=lambda p: p.start)
    for before, after in zip(periods, periods[1:], strict=False):
        if after.start < before.end:
            raise DataFormatError(f"{first[after.start]}: the period overlaps the one at "
                                  f"{first[before.start]}")
    return periods


def read_till_csv(
    path: Path, *, default_period_s: int, tz: ZoneInfo, now: float
) -> list[TillPeriod]:
    """Periods of a till file: header ``period_start,transactions[,period_s]``.

    Raises:
        DataFormatError: the file cannot be read, lacks a column, or a row is invalid.
    """
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as error:
        raise DataFormatError(f"cannot read the till file {path}: {error}") from None
    reader = csv.DictReader(text.splitlines())
    header = [name.strip() for name in reader.fieldnames or []]
    missing = [name for name in REQUIRED if name not in header]
    if missing:
        raise DataFormatError(f"{path}:1: the header needs columns period_start,transactions "
                              f"(optional period_s); missing {', '.join(missing)}")
    reader.fieldnames = header
    rows = []
    for line, row in enumerate(reader, start=2):
        if not any((value or "").strip() for value in row.values() if isinstance(value, str)):
            continue
        rows.append((f"{path}:{line}", row.get("period_start"), row.get("transactions"),
                     row.get("period_s")))
    return parse_periods(rows, default_period_s=default_period_s, tz=tz, now=now)
