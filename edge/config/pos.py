"""Config of the till (point-of-sale) transaction counts the box receives."""

from __future__ import annotations

from pydantic import Field, field_validator

from edge.config.base import StrictModel


class PosConfig(StrictModel):
    """Transactions per period from the store's till system (counts only, no customer data)."""

    period_s: int = Field(3600, ge=60, le=86_400)
    """Length of a till period in seconds, when the file or push does not give one; periods start on
    multiples of it from midnight, store time."""

    @field_validator("period_s")
    @classmethod
    def _divides_a_day(cls, value: int) -> int:
        if 86_400 % value:
            raise ValueError(f"a till period must divide a day (86400 s), got {value}")
        return value
