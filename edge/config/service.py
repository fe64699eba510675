"""Config of the long-running services (camera workers, purge, health)."""

from __future__ import annotations

from pydantic import Field

from edge.config.base import StrictModel

# The longest a camera's picture waits between being read and being analysed (the reader's
# queue): positions older than the flush interval plus this are stored.
FRAME_IN_FLIGHT_S = 1.0


class ServiceConfig(StrictModel):
    """How the live services behave when cameras, disks and networks misbehave."""

    stall_timeout_s: float = Field(20.0, gt=0, le=600)
    """A camera with no frame for this long is reconnected (Frigate uses 20 s)."""
    reconnect_backoff_initial_s: float = Field(0.5, gt=0, le=60)
    """First wait before reconnecting a camera."""
    reconnect_backoff_max_s: float = Field(2.0, gt=0, le=300)
    """Longest wait between reconnection attempts: a camera that comes back is picked up within
    about this long."""
    health_interval_s: float = Field(5.0, gt=0, le=300)
    """How often each service records its health."""
    flush_interval_s: float = Field(2.0, gt=0, le=60)
    """Most seconds tracked positions wait in memory before being written."""
    visits_interval_s: float = Field(30.0, gt=0, le=3600)
    """How often finished tracks are turned into visits."""
    purge_interval_s: float = Field(3600.0, ge=60, le=6 * 3600)
    """How often the retention purge runs (`edge run`, and store-edge-purge.timer: scripts/install
    sets the timer to it, so run it again after a change). Each purge also deletes what would pass
    its retention period before the next, so raw data never outlives it."""
