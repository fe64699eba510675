"""Shapes of the figures the status page shows and the REST API returns.

Every model holds aggregates only: counts, durations, shares, grid cells. None
has a field for a visit, a track, a device or a position of one person, so no
endpoint can return one by mistake.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class Figures(BaseModel):
    """Base of every response: immutable, unknown fields refused."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class Occupancy(Figures):
    """How many people are in the store now, or at the last moment with data."""

    people: int | None = Field(description="People counted; null when there is no data at all.")
    as_of: float | None = Field(description="Epoch seconds of the moment counted.")
    as_of_text: str | None = Field(description="That moment in store time, for people.")
    live: bool = Field(description="True when cameras reported within the live window.")
    window_s: float = Field(description="Live: people seen in this many seconds count "
                            "(web.live_window_s, plus how far behind the clock the counting "
                            "across cameras stores positions: it waits for late cameras).")
    associates: int = Field(
        0, description="Associates on the floor at that moment, counted apart: not in "
        "``people`` (a track is an associate's once the staff rule has classified it)."
    )
    cameras: Literal["working", "partial", "down", "unknown"] = Field(
        "unknown", description="The cameras now, from their health reports: working (every "
        "camera reports ok, so no one seen means nobody in view), partial (a camera or the "
        "counting across cameras is not working: ``people`` misses the people it would see, "
        "or holds them where last seen), down (no camera works: people cannot be counted), "
        "unknown (no service has reported at all). A configured camera that has never "
        "reported while other services do (its service stopped at start) is not working.")
    cameras_down: list[str] = Field(
        default_factory=list, description="The cameras (or the counting across cameras) "
        "not working now, by name.")
    held: bool = Field(False, description="The counting across cameras keeps people where a "
                       "camera that sends no pictures last saw them (it reports some held).")
    down_since: float | None = Field(
        None, description="Epoch seconds: since when the cameras not working have sent no "
        "picture (their last picture's age), or, when none works and none says so, the last "
        "moment anyone was counted.")
    down_since_text: str | None = None


CompareMissing = Literal["not_kept", "not_counted"]


class HourCount(Figures):
    """One hour of the chart, lined up with the same hour a week before by what the
    clock read (edge.web.hours)."""

    hour: int = Field(ge=0, le=23, description="Hour of the day, store time: what the "
                      "clock read.")
    repeat: bool = Field(False, description="The second time the clock read this hour: "
                         "the clocks went back (on the day shown or on the compared day).")
    label: str = Field(description="01:00; the repeated hour 01:00 (2nd).")
    start: float | None = Field(None, description="Epoch seconds: when this hour began on "
                                "the day shown; null when that day had no such hour.")
    absent: Literal["day", "compare_day"] | None = Field(
        None, description="Which of the two days had no such hour (the clocks went forward "
        "over it, or only the other day went back into it): its count is null, not 0.")
    today: int | None = Field(ge=0, description="Visits that ended in this hour on the day "
                              "shown; null for an hour that has not begun yet, or is older "
                              "than the visits are kept.")
    last_week: int | None = Field(ge=0, description="The same hour on the same weekday a week "
                                  "earlier; null when that hour is older than the visits are "
                                  "kept (``visit_days``): its visits may be deleted.")


class Footfall(Figures):
    """Visits per hour of one day against the same weekday one week earlier; a visit
    counts in the hour it ended (the shopper left), as in the MQTT aggregates
    (edge.figures)."""

    day: dt.date
    compare_day: dt.date
    total: int
    compare_total: int | None = Field(
        description="Visits on the compared day; null unless all of that day is still kept "
        "and the box was counting then (compare_missing).")
    compare_missing: CompareMissing | None = Field(
        None, description="Why the compared day has no figures: not_kept (older than "
        "visit_days: the purge may have deleted its visits), not_counted (the box recorded "
        "its first visit after that day: it was not counting yet). Null when it has them.")
    visit_days: float = Field(description="Days visits are kept (storage.visit_days).")
    kept_from: float | None = Field(
        None, description="Epoch seconds: on a day partly older than visit_days, the start of "
        "the first hour whose visits are all kept. total then counts the visits from then "
        "(at least that many came that day), and so do the zone, mix and party figures, the "
        "queue's waits and conversion (the till periods that start from then); null when "
        "the whole day is kept (or none of it).")
    kept_from_text: str | None = None
    day_kept: bool = Field(True, description="Whether every visit of the day shown is still "
                           "kept; false for a day partly or wholly older than visit_days "
                           "(its hours before then are null).")
    hours: list[HourCount] = Field(
        description="Hours from the first to the last with visits on either day (at least "
        "9-18), each a real hour: on the day the clocks go back the hour from 01:00 is two "
        "rows (01:00 and 01:00 (2nd)); on the day they go forward there is no 01:00 of "
        "that day (a row only for the other day's count of it, absent: day)."
    )
    clock_change: str | None = Field(
        None, description="What the clocks did on the day shown, in words; null on a day "
        "of 24 ordinary hours.")
    compare_clock_change: str | None = Field(
        None, description="What the clocks did on the compared day, in words.")
    entrance_in: int = Field(description="Entrance line crossings inwards on the day shown.")
    entrance_out: int = Field(description="Entrance line crossings outwards on the day shown.")
    latest_day_with_visits: dt.date | None = Field(description="Most recent day with any visit.")
    associates: int = Field(
        0, description="Associates on the floor on the day shown: the most visits classified "
        "as staff (edge.visits.staff) at one moment. They are left out of every other figure."
    )
    groups: int | None = Field(
        None, description="Buying units among the day's visitors: shopping groups (people who "
        "came in and walked together, edge.visits.groups; someone alone is a group of one). "
        "Null when hidden by the k rules (groups_hidden_reason) or with no visitors."
    )
    groups_hidden_reason: Literal["few", "nearly_all", "worked_out"] | None = Field(
        None, description="Why groups is hidden: few (fewer than k groups) or nearly_all "
        "(fewer than k visitors came with someone: it would single them out)."
    )


class HeatCell(Figures):
    x: float = Field(description="West edge of the cell, floor metres.")
    y: float = Field(description="South edge of the cell, floor metres.")
    dwell_s: float = Field(description="Time people spent in the cell, summed (seconds).")
    level: float = Field(ge=0, le=1, description="dwell_s relative to the busiest cell.")


class ZoneShape(Figures):
    id: str
    name: str
    kind: str
    polygon: list[tuple[float, float]]


HeatmapCoverage = Literal["whole_day", "partial", "not_kept"]


class Heatmap(Figures):
    """Where people spent time, on grid cells of the floor plan.

    Cells crossed by fewer than ``min_people`` people are left out, so a lone
    walker's path never shows.
    """

    day: dt.date
    bounds: tuple[tuple[float, float], tuple[float, float]]
    cell_m: float
    min_people: int
    cells: list[HeatCell]
    hidden_cells: int = Field(description="Cells with some dwell but fewer than min_people people.")
    max_dwell_s: float
    zones: list[ZoneShape]
    kept_hours: float = Field(description="Hours raw positions are kept "
                              "(storage.raw_trajectory_hours).")
    coverage: HeatmapCoverage = Field(
        "whole_day", description="whole_day; partial (the day's raw positions before "
        "covers_from have been deleted, kept_hours after they were recorded); not_kept (all "
        "of them have been).")
    covers_from: float | None = Field(
        None, description="With partial coverage, the epoch seconds from which the map covers "
        "the day; else null.")
    covers_from_text: str | None = Field(None, description="covers_from as store time.")


HiddenReason = Literal["few", "nearly_all", "worked_out"]
HIDDEN_REASON = (
    "Why a figure is hidden: few (fewer than k visits), nearly_all (all but fewer than k "
    "of the day's visits: it would single out the few who were not), worked_out (it would "
    "let a hidden group be worked out from the figures shown); null if shown."
)


class ZoneDwell(Figures):
    """Time spent in one zone. Counts below k are hidden (``suppressed``)."""

    zone_id: str
    name: str
    kind: str
    visitors: int | None = Field(
        description="Visits that spent time here; null if fewer than k, or if the day's "
                    "other visits number 1 to k-1.")
    typical_dwell_s: float | None = Field(description="Median time per visitor (seconds).")
    total_dwell_s: float | None
    suppressed: bool
    hidden_reason: HiddenReason | None = Field(None, description=HIDDEN_REASON)


class ZoneDwellList(Figures):
    day: dt.date
    min_count: int
    zones: list[ZoneDwell]


class MixItem(Figures):
    name: str
    label: str
    visits: int | None = Field(
        description="Visits with this trait or segment; null if fewer than k, or "
                    "if it would let a group of fewer than k be worked out."
    )
    scored: int | None = Field(
        None, description="The day's visits scored for it, as the aggregates' `scored`: for a "
        "trait, those long enough to judge (the spec's trait_evidence.min_duration_s; a "
        "shorter visit has no traits); every visit for a segment. Null, with the trait's "
        "visits, when the visits not judged number 1 to k-1 (or the judged ones fewer "
        "than k), as the aggregates withhold it.")
    share: float | None = Field(description="visits / scored, 0-1 (for a segment, of the day's "
                                "visits); null if hidden.")
    suppressed: bool
    hidden_reason: HiddenReason | None = Field(None, description=HIDDEN_REASON)
    units: int | None = Field(
        None, description="Segments only: shopping parties (buying units, as footfall's "
        "groups) of this segment, each party counted once with its members' mean "
        "memberships (edge.figures.unit_segments); null for a trait, without shopping "
        "groups, or when hidden by the k rules (units_hidden_reason)."
    )
    units_share: float | None = Field(
        None, description="Share of the day's shopping parties, 0-1; null when units is.")
    units_hidden_reason: HiddenReason | None = Field(None, description=HIDDEN_REASON)
    spec_versions: list[str] | None = Field(
        None, description="The segment spec versions that scored this trait or segment on "
        "the day's visits, in the order they came in (see Mix.spec_versions); null when "
        "hidden. A name under only some of the day's versions was added, renamed or "
        "dropped when the definitions changed.")


class SpecVersionUse(Figures):
    """A segment spec version that classified some of the day's visits."""

    version: str
    first_visit_t: float = Field(
        description="When the first of the day's visits it classified ended (epoch seconds).")
    first_visit_text: str = Field(description="The same, as the page's clock time (HH:MM).")
    last_visit_t: float = Field(
        description="When the last of the day's visits it classified ended (epoch seconds).")


class Mix(Figures):
    """Shopper traits and segments of one day's visits (a trait counts at p >= 0.5), and
    the segments by shopping party (each group counted once)."""

    day: dt.date
    total_visits: int
    min_count: int
    traits: list[MixItem]
    segments: list[MixItem]
    traits_scored: int | None = Field(
        None, description="The day's visits long enough to have traits (the most any trait "
        "scored); fewer than total_visits when some were too short to judge. Null without "
        "traits.")
    total_units: int | None = Field(
        None, description="The day's shopping parties (footfall's groups); null without "
        "shopping groups or when hidden by the k rules (then every segment's units is too).")
    segments_rest: int | None = Field(
        None, description="The day's visits in no segment shown: those with no clear type "
        "(no segment's membership reaches 0.5), and those of hidden segments. 0 or at least "
        "min_count (the k rules make it so); null without segments.")
    units_rest: int | None = Field(
        None, description="As segments_rest, for shopping parties (of total_units); null when "
        "total_units is.")
    spec_versions: list[SpecVersionUse] = Field(
        default_factory=list, description="The segment spec versions that classified the "
        "day's visits (traits and segments), in the order they came in. Several when the "
        "definitions changed during the day (a downlinked spec, a refit): each visit is then "
        "counted by the definitions it was classified under, so a renamed segment shows under "
        "both names and a segment redefined under the same name adds both definitions.")
    definitions_note: str | None = Field(
        None, description="With several spec_versions, the sentence the page shows: when the "
        "definitions changed and what the mix counts; null otherwise.")


class Wifi(Figures):
    """Phones counted by the Wi-Fi sensor on one day (counts only)."""

    day: dt.date
    windows: int = Field(description="Counting windows written, heard or not (a window in "
                         "which the sensor heard no frame at all counts in none of the figures).")
    window_s: int | None
    passers_by: int | None = Field(description="Weak-signal bursts over the day: phones "
                                   "passing the store (a slow one may count twice).")
    arrived_devices: int | None = Field(
        description="Phones that came in: each counted once, in the first window it was in "
        "the store. Null when a window of the day was written before arrivals were counted.")
    in_store_devices: int | None = Field(
        description="Peak: the most phones in the store during one window of the day (as "
        "the MQTT aggregate's wifi.in_store_devices). Not a count of phones that came in.")
    capture_rate: float | None = Field(
        description="The share of passers-by who came in: in / (in + passers_by). On a site "
        "that counts at its door (an entrance line) `in` is the door's in-crossings, as head "
        "office's footfall.capture_rate; else the phones that came in (capture_basis). Null "
        "when that count is unknown or both are 0.")
    capture_basis: Literal["door", "phones"] | None = Field(
        None, description="What capture_rate counts as coming in: door (the entrance's "
        "in-crossings) or phones (phones that came in, on a site with no door line).")
    latest_occupancy_estimate: float | None
    latest_window_text: str | None
    silent_since: float | None = Field(
        None, description="Epoch seconds: the sensor has heard no frame at all since then (its "
        "latest windows are empty: an adapter unplugged or deaf). Those windows are unknown, "
        "not zero: they count in no figure, and the figures are null when no window was heard.")
    silent_since_text: str | None = None
    door_in: int | None = Field(
        None, description="The door's in-crossings the capture rate counts: those within the "
        "windows the sensor heard (as each MQTT window pairs its own), not the whole day's; "
        "null on a site with no entrance line.")
    covered_text: str | None = Field(
        None, description="The times the windows heard cover, e.g. 15:00-18:00: what the "
        "Wi-Fi figures and the capture rate count.")


class Queue(Figures):
    """The checkout queue: people in it now, and waits from joining it to reaching a till.

    Waits count visits that ended on the day (from ``footfall.kept_from`` on a day partly
    purged; and, for ``recent_wait_s``, in the last hour); each wait figure is null when
    fewer than k visits waited.
    """

    configured: bool = Field(description="The site has a queue zone and a checkout zone.")
    waiting_now: int | None = Field(
        description="People whose latest position (live window) is in a queue zone; null "
                    "when the cameras are not live.")
    waited: int | None = Field(description="Visits that queued and reached a till; null if hidden.")
    wait_p50_s: float | None = Field(description="Median wait (seconds).")
    wait_p90_s: float | None = Field(description="90th percentile of the waits (seconds).")
    recent_wait_s: float | None = Field(
        description="Median wait of visits that ended in the last hour, if k or more waited.")
    suppressed: bool
    hidden_reason: HiddenReason | None = Field(None, description=HIDDEN_REASON)


class Conversion(Figures):
    """Till transactions against visits, over the day's till periods.

    Visits are those that ended inside the periods the tills reported.
    """

    periods: int = Field(description="Till periods of the day with a transaction count (on "
                         "a day partly purged, those starting at or after footfall.kept_from).")
    transactions: int | None = Field(description="Transactions; null if fewer than k.")
    visits: int | None = Field(description="Visits that ended in those periods; null if fewer "
                                           "than k.")
    rate: float | None = Field(description="transactions / visits; null if either is hidden.")
    suppressed: bool


FigureValue = float | int | bool | str | None


class ComponentHealth(Figures):
    component: str
    kind: Literal["camera", "wifi", "sync", "fusion", "other"]
    name: str
    status: Literal["ok", "degraded", "down", "silent", "not_started"] = Field(
        description="silent: no report for web.health_stale_s; not_started: a camera (or the "
        "counting across cameras) the site config has that has never reported.")
    message: str
    updated_at: float | None = Field(description="Epoch seconds of the last report; null "
                                     "when it has never reported.")
    age_s: float | None = Field(description="Seconds since the component last reported; "
                                "null when it has never reported.")
    figures: dict[str, FigureValue] = Field(description="Known figures only (fps, backlog...).")


class SystemHealth(Figures):
    version: str
    model: str | None = Field(description="Detector model in use.")
    cpu_percent: float
    disk_free_bytes: int | None
    disk_total_bytes: int | None
    disk_free_percent: float | None
    database_bytes: int | None
    uptime_s: float


class DebugModeOn(Figures):
    """An engineer's debug mode that lifts a privacy guard, on right now."""

    name: str = Field(description="e.g. no-blur, debug-raw-pcap.")
    detail: str = Field(description="What it writes where, in plain words.")
    started_at: float


class Health(Figures):
    components: list[ComponentHealth] = Field(
        description="What the site config runs: each service's last report, and each camera "
        "(and the counting across cameras) that has never reported.")
    not_configured: list[ComponentHealth] = Field(
        default_factory=list,
        description="Last reports of services the site config no longer has (a camera removed "
        "or renamed, the counting across cameras of a site now with one camera, another Wi-Fi "
        "interface): kept, shown apart, never counted.")
    system: SystemHealth
    debug_modes: list[DebugModeOn] = Field(
        default_factory=list,
        description="Debug modes on now (frames or raw addresses being kept): normally none.")


class DataState(Figures):
    """Whether the database could be read; what to do when it could not."""

    status: Literal["ok", "missing", "empty"]
    message: str | None


class Summary(Figures):
    """Everything on the status page, in one response."""

    site_id: str
    site_name: str
    generated_at: float
    generated_text: str
    data: DataState
    occupancy: Occupancy
    footfall: Footfall
    heatmap: Heatmap
    zones: ZoneDwellList
    mix: Mix
    wifi: Wifi
    queue: Queue
    conversion: Conversion
    health: Health
    replays: int = Field(0, description=(
        "Replays of recordings (`edge replay`: demos, tests) among the day's figures; "
        "0 when they all come from the live cameras."))


class Problem(Figures):
    """An error, in one plain sentence."""

    detail: str
