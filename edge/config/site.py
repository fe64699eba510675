"""The one config tree of a store: ``site.yaml``."""

from __future__ import annotations

import math
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, ValidationInfo, field_validator, model_validator

from edge.config.base import StrictModel, key_problems
from edge.config.floor import FloorConfig
from edge.config.fusion import FusionConfig
from edge.config.pos import PosConfig
from edge.config.service import FRAME_IN_FLIGHT_S, ServiceConfig
from edge.config.storage import PrivacyConfig, StorageConfig
from edge.config.sync import SyncConfig
from edge.config.vision import CameraConfig, DetectorConfig, FeetConfig, TrackerConfig
from edge.config.visits import PARTY_LEAVE_S, VisitConfig
from edge.config.web import WebConfig
from edge.config.wifi import WifiConfig
from edge.errors import ConfigError

# The camera id of the fused, store-wide tracks in the database (track_points, runs).
STORE_TRACKS_ID = "store"
# The store id calibration/site.example.yaml ships: no service may publish under it.
SKELETON_SITE_ID = "store-0001"
# How the MQTT contract spells a time zone (sync/schemas/aggregate.schema.json, `timezone`,
# since 1.5; a test keeps the two equal): every IANA name matches, and a zone the box
# accepted is never one its own aggregates would be refused for.
TIMEZONE_PATTERN = r"^[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+)*$"
TIMEZONE_MAX_LENGTH = 64


class SiteInfo(StrictModel):
    """Which store this box serves."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,47}$")
    """Store id: part of MQTT topics and aggregate ids."""
    name: str | None = None
    timezone: str = Field("UTC", max_length=TIMEZONE_MAX_LENGTH, pattern=TIMEZONE_PATTERN)
    """IANA time zone for hourly and daily figures; sent with every aggregate (schema 1.5),
    so that the central roll-ups count the store's local days too."""

    @field_validator("id")
    @classmethod
    def _not_the_skeletons(cls, value: str, info: ValidationInfo) -> str:
        # Every service stamps it on what it stores or publishes; a replay may use it.
        if value == SKELETON_SITE_ID and (info.context or {}).get("services"):
            raise ValueError("still the placeholder of the site skeleton; set this store's "
                             "own id (lower-case letters, digits, - and _)")
        return value

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        # The status page, the Wi-Fi windows and the reports all need it; checked here so
        # that check-config refuses what the services would (OSError: "Europe", a folder).
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            raise ValueError("not a known IANA time zone, e.g. Europe/London or UTC") from None
        return value


def check_raw_trajectories_outlast_purges(storage: StorageConfig,
                                         service: ServiceConfig) -> None:
    """Refuse raw trajectories kept less than two purge intervals.

    A purge deletes what would pass its period before the next purge, but never the
    most recent half of it (the visits builder reads recent points:
    ``edge.retention.cutoff``); with ``raw_trajectory_hours`` under twice
    ``service.purge_interval_s`` that half wins, and positions outlive the period the
    store set (1 h kept 1.5 h with an hourly purge, 2 h kept 7 h every 6 h).

    Raises:
        ValidationError: ``storage.raw_trajectory_hours`` x 3600 < 2 x
            ``service.purge_interval_s``, naming both and the fix.
    """
    keep_s = storage.raw_trajectory_hours * 3600
    every_s = service.purge_interval_s
    if keep_s >= 2 * every_s:
        return
    raise key_problems("SiteConfig", [(
        ("storage", "raw_trajectory_hours"),
        f"raw positions kept {storage.raw_trajectory_hours:g} h with a purge every "
        f"{every_s:g} s (service.purge_interval_s) would be kept longer than that: a purge "
        f"keeps at least half the period, so the period must be at least two purge "
        f"intervals; set raw_trajectory_hours to at least {2 * every_s / 3600:g}, or "
        f"service.purge_interval_s to at most {keep_s / 2:g} (then run scripts/install "
        f"again: it sets store-edge-purge.timer to the interval)",
        storage.raw_trajectory_hours,
    )])


class SiteConfig(StrictModel):
    """Everything one box needs to know about its store."""

    site: SiteInfo
    cameras: list[CameraConfig] = Field(default_factory=list)
    detector: DetectorConfig = DetectorConfig()
    tracker: TrackerConfig = TrackerConfig()
    feet: FeetConfig = FeetConfig()
    fusion: FusionConfig = FusionConfig()
    floor: FloorConfig
    visits: VisitConfig = VisitConfig()
    storage: StorageConfig = StorageConfig()
    privacy: PrivacyConfig = PrivacyConfig()
    service: ServiceConfig = ServiceConfig()
    wifi: WifiConfig | None = None
    sync: SyncConfig = SyncConfig()
    pos: PosConfig = PosConfig()
    # Validated even when the file has no web: section, so that the status page's
    # defaults (PIN access) meet the same checks as a written section.
    web: WebConfig = Field(default_factory=dict, validate_default=True)

    @model_validator(mode="after")
    def _unique_camera_ids(self) -> SiteConfig:
        first: dict[str, int] = {}
        for index, camera in enumerate(self.cameras):
            if camera.id == STORE_TRACKS_ID:
                raise key_problems("SiteConfig", [(
                    ("cameras", index, "id"),
                    f"camera id {STORE_TRACKS_ID!r} is reserved for the store-wide tracks of "
                    "several cameras; name the camera after where it looks",
                    camera.id,
                )])
            if camera.id in first:
                raise key_problems("SiteConfig", [(
                    ("cameras", index, "id"),
                    f"camera id {camera.id!r} is already used by cameras[{first[camera.id]}]; "
                    "camera ids must be unique",
                    camera.id,
                )])
            first[camera.id] = index
        return self

    @model_validator(mode="after")
    def _raw_trajectories_outlast_purges(self) -> SiteConfig:
        check_raw_trajectories_outlast_purges(self.storage, self.service)
        return self

    @model_validator(mode="after")
    def _wifi_windows_fit_the_sync_window(self) -> SiteConfig:
        # The published aggregate of a sync window takes the longest Wi-Fi windows that
        # end inside it (sync/aggregate.py, _wifi), the page the longest of the day: a
        # length that does not divide sync.window_s (600 s in 900 s, or 900 s in 600 s)
        # leaves windows no aggregate sends, or has the two show different windows.
        if self.wifi is None or not self.sync.enabled:
            return self
        window_s = self.sync.window_s
        bad = [length for length in self.wifi.windows_s if window_s % length]
        if bad:
            example = sorted({60, window_s}) if window_s % 60 == 0 else [window_s]
            raise key_problems("SiteConfig", [(
                ("wifi", "windows_s"),
                f"every Wi-Fi window length must divide sync.window_s ({window_s} s), so that "
                f"each sync window is made of whole Wi-Fi windows and the page and the "
                f"published aggregates count the same ones; {', '.join(map(str, bad))} s does "
                f"not: use e.g. {example}, or change sync.window_s",
                self.wifi.windows_s,
            )])
        return self

    @property
    def visit_stored_within_s(self) -> float:
        """The longest a visit takes to be stored after its shopper was last seen: their
        track is closed ``visits.close_after_s`` later (``stitch_max_gap_s`` more, in case
        a new track continues it) by the next build (every ``service.visits_interval_s``),
        from positions written every ``service.flush_interval_s`` (after a picture in
        flight; after the fusion's ``latency_s`` where cameras are fused, and the longest
        camera delay it may correct: it waits for a late camera's pictures)."""
        stored = self.service.flush_interval_s + FRAME_IN_FLIGHT_S
        if self.fuses_cameras:
            stored += self.fusion.latency_s + self.longest_camera_delay_s
        return (self.visits.close_after_s + self.visits.stitch_max_gap_s
                + self.service.visits_interval_s + stored)

    @property
    def longest_camera_delay_s(self) -> float:
        """The longest delay the fusion may take off a camera's frame times: learnt up to
        ``fusion.max_camera_delay_s``, or a camera's configured ``stream_delay_s``."""
        configured = max((c.stream_delay_s for c in self.cameras), default=0.0)
        learnt = self.fusion.max_camera_delay_s if self.fusion.learn_camera_delays else 0.0
        return max(configured, learnt)

    @property
    def fusion_lag_s(self) -> float:
        """The most the fusion's instants lag the clock: a camera worker stores a frame up
        to ``service.flush_interval_s`` after taking it, and the fusion waits
        ``fusion.latency_s`` more and the longest camera delay it may correct (0 on a site
        that fuses no cameras)."""
        if not self.fuses_cameras:
            return 0.0
        return (self.service.flush_interval_s + self.fusion.latency_s
                + self.longest_camera_delay_s)

    def settle_warning(self) -> str | None:
        """Why windows would be sent before their visits are stored, if they would."""
        if not self.sync.enabled or not self.cameras:
            return None
        needed = self.visit_stored_within_s + PARTY_LEAVE_S
        if self.sync.settle_s >= needed:
            return None
        return (f"sync.settle_s ({self.sync.settle_s:g} s) is shorter than the {needed:g} s a "
                f"visit can take to be stored after its shopper leaves (visits.close_after_s "
                f"+ visits.stitch_max_gap_s + service.visits_interval_s + "
                f"service.flush_interval_s + {FRAME_IN_FLIGHT_S:g} s"
                f"{' + fusion.latency_s + the longest camera delay' if self.fuses_cameras else ''}"
                f", + {PARTY_LEAVE_S:g} s for a shopping party's companions to leave, which its "
                f"segment waits for): visits that end late in a window would never be sent; set "
                f"sync.settle_s to at least {math.ceil(needed):d}")

    @property
    def fuses_cameras(self) -> bool:
        """Whether this site's cameras are fused into store-wide tracks (two or more)."""
        return len(self.cameras) >= 2

    def camera(self, camera_id: str) -> CameraConfig:
        for camera in self.cameras:
            if camera.id == camera_id:
                return camera
        known = ", ".join(c.id for c in self.cameras) or "none"
        raise ConfigError(f"no camera {camera_id!r} in the site config (cameras: {known})")
