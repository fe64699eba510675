"""Config of the local database and of how long raw data is kept."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, ValidationInfo, field_validator

from edge.config.base import StrictModel


class StorageConfig(StrictModel):
    """The local SQLite database and retention of what it holds."""

    db_path: str | None = None
    """SQLite file; relative paths are under the state directory. Default <state dir>/edge.db."""
    raw_trajectory_hours: float = Field(24.0, gt=0, le=24.0)
    """Hours raw floor trajectories (track points) are kept. At most 24."""
    visit_days: float = Field(8.0, gt=0, le=90)
    """Days anonymous visits are kept, in calendar days of the store's time zone (from the
    same clock time that many days back: an hour more across the night the clocks go
    back). 8 by default: the status page compares each hour with the same hour a week
    earlier, which a week's retention would have half deleted (an hour no longer kept
    shows as "not kept", never as 0)."""
    delivered_aggregate_days: float = Field(30.0, gt=0, le=365)
    """Days aggregates are kept after delivery."""
    min_free_disk_mb: int = Field(200, ge=10)
    """Below this much free disk, raw data stops being written first."""

    @field_validator("db_path")
    @classmethod
    def _keep_path(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        return str(Path(value).expanduser())


class PrivacyConfig(StrictModel):
    """Privacy limits enforced where data leaves the box."""

    min_publishable_count: int = Field(5, ge=2, le=1000)
    """k: no published cell counts fewer than this many visits. Never below 2."""
