"""Config of how floor trajectories become visits, zone dwell, line counts and traits."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, ValidationInfo, field_validator, model_validator

from edge.config.base import StrictModel

# A shopping party's segment is decided by the members who left within this many seconds
# of the first one (they left together): final soon after the party starts leaving, and the
# same whatever period it is counted in (edge.figures.unit_segments).
PARTY_LEAVE_S = 10.0


class VisitConfig(StrictModel):
    """Turning trajectories into visits, zone presence, stops and trait scores."""

    min_duration_s: float = Field(3.0, ge=0)
    """Trajectories shorter than this are fragments, not visits."""
    smoothing_s: float = Field(1.0, ge=0)
    """Width of the centred moving-average window over floor positions."""
    outlier_m: float = Field(0.8, ge=0, le=100)
    """Before the moving average, a floor position further than this from the median of the
    positions around it (over smoothing_s) is replaced by that median: a box that took in a
    neighbour or lost the feet for a frame or two. 0 keeps every position."""
    zone_enter_after_s: float = Field(1.0, ge=0)
    """Seconds continuously inside a zone before presence starts (hysteresis); the stay is then
    dated from the first moment inside."""
    zone_leave_after_s: float = Field(1.0, ge=0)
    """Seconds continuously outside a zone before presence ends (hysteresis); shorter excursions
    count as still inside."""
    stop_speed_mps: float = Field(0.3, gt=0)
    """Below this speed a person is stopped."""
    stop_min_s: float = Field(2.0, gt=0)
    """A stop lasts at least this long."""
    speed_window_s: float = Field(1.0, gt=0)
    """Speeds are measured over this baseline, so that position jitter does not read as motion."""
    glitch_speed_mps: float = Field(10.0, gt=0, le=100)
    """A step between two positions faster than this (m/s; people in a store walk at 1-2 and
    sprint at 7-8) is a tracking glitch (a jump onto something else and back): it adds no path
    and no speed; the walk goes on from where the step landed. Zones and lines still see the
    positions as they are."""
    line_margin_m: float = Field(0.3, ge=0, le=5)
    """A line crossing counts once the person is this far past the line, having been this far on
    the other side (hysteresis against jitter)."""
    line_settle_s: float = Field(2.0, ge=0, le=30)
    """A stay at least line_margin_m on one side of a line that lasts less than this, between stays
    on the other side, is an excursion and counts no crossing: a track that follows someone else
    across for a moment (an id swap and back), or a step over and straight back. A track's first
    and last stays count whatever their length (tracks begin and end near lines)."""
    line_smoothing_s: float = Field(0.5, ge=0, le=30)
    """Line crossings are counted on the visit's path smoothed once more over this many seconds (a
    centred moving average): a swap of ids between two people passing each other moves it less than
    it moves the raw positions."""
    neighbour_distance_m: float = Field(1.0, ge=0, le=20)
    """Zones closer than this are neighbours: going A -> B -> A between neighbours is a
    back-and-forth switch."""
    close_after_s: float = Field(10.0, gt=0)
    """A visit ends when its track has been gone this long; a gap this long inside one track starts
    a new visit."""
    stitch_max_gap_s: float = Field(2.5, ge=0, le=30)
    """Track stitching: a track that starts at most this many seconds after another vanished,
    near where it vanished, continues that person's visit (one person handed to a new track id
    is one visit). 0 turns stitching off; it must stay below close_after_s."""
    stitch_base_m: float = Field(0.5, ge=0, le=10)
    """Track stitching: how far (metres) the new track may start from where the old one
    vanished, besides the walk: floor-position noise."""
    stitch_speed_mps: float = Field(1.2, ge=0, le=10)
    """Track stitching: walking reach over the gap (metres per second), added to
    stitch_base_m."""
    stitch_ambiguity_ratio: float = Field(2.0, ge=1, le=100)
    """Track stitching: a join is refused when another vanished or new track is within this
    many times its distance (two people vanished near each other: better two visits than a
    swap)."""
    swap_jump_speed_mps: float = Field(5.0, ge=0, le=100)
    """Swap repair (edge.visits.swaps): a track whose floor position moves faster than this
    between two samples may have jumped onto someone else. It is cut there only when a new
    track starts, within stitch_max_gap_s, where the person was heading before the jump, and
    nothing else is there. 0 turns swap repair off (so does stitch_max_gap_s 0)."""
    swap_heading_s: float = Field(1.0, gt=0, le=10)
    """Swap repair: where the person was heading is their velocity over this many seconds
    before the jump, carried on at constant speed."""
    swap_base_m: float = Field(0.5, ge=0, le=10)
    """Swap repair: how far (metres) the new track may start from that extrapolation, besides
    stitch_speed_mps times the time since the jump."""
    staff_zone_min_s: float = Field(5.0, ge=0, le=3600)
    """A visit that spends this long in zones of kind 'staff' (back office, behind the counter) is
    an associate's, not a customer's."""
    staff_presence_s: float = Field(1800.0, gt=0)
    """A visit this long (one unbroken track) is an associate's: customers of the store do not stay
    this long."""
    staff_busy_entries: int = Field(10, ge=1)
    """A visit that enters this many destination zones…"""
    staff_busy_s: float = Field(900.0, gt=0)
    """…within at least this many seconds is an associate's (restocking: long and from shelf to
    shelf)."""
    group_entry_window_s: float = Field(5.0, ge=0, le=120)
    """Shopping groups: visits that started within this many seconds of each other may be one group
    (they came in together)."""
    group_distance_m: float = Field(1.5, gt=0, le=10)
    """Shopping groups: two people this close (metres) are walking together."""
    group_together_fraction: float = Field(0.5, gt=0, le=1)
    """Shopping groups: the share of their time in the store together (overlap) that two people
    must spend within group_distance_m."""
    group_min_overlap_s: float = Field(10.0, ge=0, le=3600)
    """Shopping groups: two visits must overlap this long to be compared (a brief meeting is not a
    shopping trip)."""
    group_step_s: float = Field(0.5, gt=0, le=10)
    """Shopping groups: distances are sampled this often over two visits' overlap."""
    segment_spec: str | None = None
    """Segment spec (traits and micro-segments), YAML. Relative paths are resolved next to the site
    file. Default: the shipped models/segments/default.yaml."""
    spec_reload_s: float = Field(5.0, gt=0, le=3600)
    """How often the live service checks the segment spec file for a new version (hot reload)."""

    @model_validator(mode="after")
    def _stitch_gap_below_close_after(self) -> VisitConfig:
        if self.stitch_max_gap_s >= self.close_after_s:
            raise ValueError(
                f"visits.stitch_max_gap_s ({self.stitch_max_gap_s}) must be below "
                f"visits.close_after_s ({self.close_after_s}): a track gone close_after_s "
                "has ended its visit")
        return self

    @field_validator("segment_spec")
    @classmethod
    def _resolve_relative_path(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        path = Path(value).expanduser()
        base_dir = (info.context or {}).get("base_dir")
        if path.is_absolute() or base_dir is None:
            return str(path)
        return str((Path(base_dir) / path).resolve())
