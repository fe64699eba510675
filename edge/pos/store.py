"""The ``pos_periods`` table: transactions per till period, counts only.

One row per period, keyed by its start (epoch seconds). Storing a period again
replaces its count (a till correction); a period of another length that overlaps a
stored one is refused, so stored periods never overlap.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlite_utils
from sqlite_utils.migrations import Migrations

from edge.errors import DataFormatError

MIGRATIONS = Migrations("edge.pos")


@MIGRATIONS()
def m001_pos_periods(db: sqlite_utils.Database) -> None:
    db.table("pos_periods").create(
        {
            "period_start": float,   # epoch seconds
            "period_s": int,
            "transactions": int,
            "source": str,           # "import" or "push"
            "received_at": float,
        },
        pk="period_start",
    )


@dataclass(frozen=True, slots=True)
class TillPeriod:
    """Transactions counted by the tills in ``[start, start + seconds)``."""

    start: float
    seconds: int
    transactions: int

    @property
    def end(self) -> float:
        return self.start + self.seconds


@dataclass(frozen=True, slots=True)
class Stored:
    """What :func:`store_periods` did."""

    stored: int
    replaced: int


def store_periods(
    db: sqlite_utils.Database, periods: Sequence[TillPeriod], *, source: str, now: float
) -> Stored:
    """Write validated periods in one transaction; a stored period is replaced.

    Raises:
        DataFormatError: a period overlaps a stored period of another length; nothing
            is written.
    """
    with db.atomic():
        replaced = 0
        for period in periods:
            clash = db.execute(
                "select period_start, period_s from pos_periods where period_start < ? "
                "and period_start + period_s > ? and not (period_start = ? and period_s = ?) "
                "limit 1",
                (period.end, period.start, period.start, period.seconds),
            ).fetchone()
            if clash is not None:
                raise DataFormatError(
                    f"the till period starting {period.start:.0f} ({period.seconds} s) overlaps "
                    f"a stored period of {clash[1]} s; send periods of the stored length"
                )
            replaced += db.execute("select count(*) from pos_periods where period_start = ?",
                                   (period.start,)).fetchone()[0]
        db.table("pos_periods").upsert_all(
            [{"period_start": p.start, "period_s": p.seconds, "transactions": p.transactions,
              "source": source, "received_at": now} for p in periods],
            pk="period_start",
        )
    return Stored(len(periods), int(replaced))


def read_periods(conn: Any, start: float, end: float) -> list[TillPeriod]:
    """Stored periods lying wholly in ``[start, end)`` (a ``sqlite3`` connection or a
    ``sqlite_utils`` database), in time order."""
    return [
        TillPeriod(float(a), int(b), int(c))
        for a, b, c in conn.execute(
            "select period_start, period_s, transactions from pos_periods "
            "where period_start >= ? and period_start + period_s <= ? order by period_start",
            (start, end),
        )
    ]
