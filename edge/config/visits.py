"""Config of how floor trajectories become visits and zone dwell."""

from __future__ import annotations

from pydantic import Field

from edge.config.base import StrictModel


class VisitConfig(StrictModel):
    """Turning trajectories into visits, zone presence and stops."""

    min_duration_s: float = Field(
        3.0, ge=0, description="Trajectories shorter than this are fragments, not visits."
    )
    smoothing_s: float = Field(
        1.0, ge=0, description="Width of the moving-average window over floor positions."
    )
    zone_enter_after_s: float = Field(
        1.0, ge=0, description="Seconds inside a zone before presence starts (hysteresis)."
    )
    zone_leave_after_s: float = Field(
        1.0, ge=0, description="Seconds outside a zone before presence ends (hysteresis)."
    )
    stop_speed_mps: float = Field(0.3, gt=0, description="Below this speed a person is stopped.")
    stop_min_s: float = Field(2.0, gt=0, description="A stop lasts at least this long.")
    close_after_s: float = Field(
        10.0, gt=0, description="A visit ends when its track has been gone this long."
    )
