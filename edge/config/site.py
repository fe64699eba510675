"""The one config tree of a store: ``site.yaml``."""

from __future__ import annotations

from pydantic import Field, model_validator

from edge.config.base import StrictModel
from edge.config.floor import FloorConfig
from edge.config.service import ServiceConfig
from edge.config.storage import PrivacyConfig, StorageConfig
from edge.config.sync import SyncConfig
from edge.config.vision import CameraConfig, DetectorConfig, TrackerConfig
from edge.config.visits import VisitConfig
from edge.config.web import WebConfig
from edge.config.wifi import WifiConfig
from edge.errors import ConfigError


class SiteInfo(StrictModel):
    """Which store this box serves."""

    id: str = Field(
        pattern=r"^[a-z0-9][a-z0-9_-]{0,47}$",
        description="Store id: part of MQTT topics and aggregate ids.",
    )
    name: str | None = None
    timezone: str = Field("UTC", description="IANA time zone for hourly and daily figures.")


class SiteConfig(StrictModel):
    """Everything one box needs to know about its store."""

    site: SiteInfo
    cameras: list[CameraConfig] = Field(default_factory=list)
    detector: DetectorConfig = DetectorConfig()
    tracker: TrackerConfig = TrackerConfig()
    floor: FloorConfig
    visits: VisitConfig = VisitConfig()
    storage: StorageConfig = StorageConfig()
    privacy: PrivacyConfig = PrivacyConfig()
    service: ServiceConfig = ServiceConfig()
    wifi: WifiConfig | None = None
    sync: SyncConfig = SyncConfig()
    web: WebConfig = WebConfig()

    @model_validator(mode="after")
    def _unique_camera_ids(self) -> SiteConfig:
        ids = [camera.id for camera in self.cameras]
        repeated = sorted({i for i in ids if ids.count(i) > 1})
        if repeated:
            raise ValueError(f"camera ids must be unique; repeated: {', '.join(repeated)}")
        return self

    def camera(self, camera_id: str) -> CameraConfig:
        for camera in self.cameras:
            if camera.id == camera_id:
                return camera
        known = ", ".join(c.id for c in self.cameras) or "none"
        raise ConfigError(f"no camera {camera_id!r} in the site config (cameras: {known})")
