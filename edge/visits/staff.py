"""Is a visit an associate's? A rule over signals the site declares, no badge, no face.

Associates walking the floor all day would inflate footfall and dwell and pass as
wanderers. A measured visit (one piece of a track) is classified as staff when any
of these holds, checked in this order (the first names the reason):

1. ``staff-zone``: it spent ``visits.staff_zone_min_s`` or more in zones of kind
   ``staff`` (back office, behind the counter);
2. ``staff-door``: it crossed a counting line of kind ``staff``, either way;
3. ``long-presence``: it lasted ``visits.staff_presence_s`` or more;
4. ``shelf-to-shelf``: it entered ``visits.staff_busy_entries`` destination zones or
   more and lasted ``visits.staff_busy_s`` or more (restocking).

A staff visit is left out of visits, traits, footfall, dwell and the aggregates; it is
kept only as a row of ``staff_visits`` (times and the reason). Measured precision and
recall are in docs/visits.md ("Associates").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from edge.config.floor import FloorConfig
from edge.config.visits import VisitConfig
from edge.visits.records import VisitFeatures

StaffReason = Literal["staff-zone", "staff-door", "long-presence", "shelf-to-shelf"]


@dataclass(frozen=True, slots=True)
class StaffVisit:
    """A visit classified as an associate's: what is stored of it (no features, no path).

    Attributes:
        visit_id: random, like a visit's.
        measured: the measured visit (kept in memory only; its times are stored).
        reason: the rule that fired first.
    """

    visit_id: str
    measured: VisitFeatures
    reason: StaffReason


class StaffRule:
    """The staff rule of one site (see the module docstring).

    Args:
        floor: the site floor: its ``staff`` zones and lines.
        config: the site's visit thresholds (``staff_*``).
    """

    def __init__(self, floor: FloorConfig, config: VisitConfig) -> None:
        self.config = config
        self.staff_zones = frozenset(z.id for z in floor.zones if z.kind == "staff")
        self.staff_lines = frozenset(line.id for line in floor.lines if line.kind == "staff")

    def reason(self, measured: VisitFeatures) -> StaffReason | None:
        """Why the visit is an associate's, or ``None`` for a customer's."""
        config = self.config
        features = measured.features
        if self.staff_zones:
            in_staff = sum(s.seconds for s in measured.stays if s.zone_id in self.staff_zones)
            if in_staff >= config.staff_zone_min_s:
                return "staff-zone"
        if any(c.line_id in self.staff_lines for c in measured.crossings):
            return "staff-door"
        duration = float(features["duration_s"])
        if duration >= config.staff_presence_s:
            return "long-presence"
        if (features["zone_entries"] >= config.staff_busy_entries
                and duration >= config.staff_busy_s):
            return "shelf-to-shelf"
        return None
