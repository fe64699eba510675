"""Config of Wi-Fi probe-request counting (the ``wifi:`` section of site.yaml)."""

from __future__ import annotations

from pydantic import Field, field_validator, model_validator

from edge.config.base import StrictModel
from edge.wifi.anonymize import parse_mac

# 2.4 GHz channels 1-14 and the 5 GHz channel numbers iw accepts.
_VALID_CHANNELS = set(range(1, 15)) | set(range(32, 178, 2))


class WifiConfig(StrictModel):
    """How probe requests become anonymous device and occupancy counts."""

    interface: str | None = Field(None, pattern=r"^[A-Za-z0-9_.-]{1,15}$")
    """Monitor-mode interface the live service listens on (e.g. mon0); set it up with `iw dev wlan1
    interface add mon0 type monitor`."""
    rssi_gate_dbm: float = Field(-70.0, ge=-100, le=0)
    """Frames weaker than this (dBm) are passers-by (street, neighbours): they get no pseudonym,
    only an anonymous tally. Frames with no dBm signal count as weak."""
    exclude_addresses: list[str] = Field(default_factory=list)
    """The store's own devices (PCs, printers, tills) to leave out. Pseudonymized with each day's
    key at capture, never compared raw or stored."""
    pseudonym_bits: int = Field(20, ge=12, le=64)
    """Length of the truncated HMAC pseudonym; 20 bits keep collisions under 1% among 10,000 devices
    a day."""
    trust_la_bit: bool = True
    """Treat globally administered addresses as fixed. Set false only for captures whose addresses a
    publisher re-randomized."""
    min_dwell_s: float = Field(60.0, ge=0, le=3600)
    """A device counts as in store once seen over at least this many seconds; shorter ones (a single
    burst) are brief_devices."""
    link_window_s: float = Field(600.0, gt=0, le=3600)
    """A new randomized address may join a device seen at most this long ago."""
    forget_after_s: float = Field(1800.0, gt=0, le=86400)
    """A device unseen this long has left: its in-memory state is dropped."""
    seq_gap_max: int = Field(64, ge=1, le=2048)
    """Largest forward jump of the 802.11 sequence counter that still links two addresses as one
    device."""
    windows_s: list[int] = Field(default_factory=lambda: [60, 900])
    """Window lengths written to wifi_windows (seconds)."""
    people_per_device: float = Field(1.0, gt=0, le=20)
    """Calibration: people per estimated device (fit it with `edge wifi calibrate` against camera
    counts or manual counts)."""
    channels: list[int] = Field(default_factory=lambda: [1, 6, 11])
    """Channels for live capture; more than one means hopping between them."""
    hop_interval_s: float = Field(1.0, gt=0.05, le=60)
    """Seconds on each channel when hopping."""
    silence_alarm_s: float = Field(300.0, gt=0)
    """Live capture: no probe request for this long marks the sensor degraded."""

    @field_validator("exclude_addresses")
    @classmethod
    def _addresses(cls, values: list[str]) -> list[str]:
        normalized = []
        for value in values:
            address = parse_mac(value)   # raises ValueError with an example
            normalized.append(":".join(f"{byte:02x}" for byte in address))
        return normalized

    @field_validator("windows_s")
    @classmethod
    def _windows(cls, values: list[int]) -> list[int]:
        if not values:
            raise ValueError("give at least one window length, e.g. [60, 900]")
        for value in values:
            if value < 10 or 86400 % value:
                raise ValueError(f"window lengths must divide a day and be >= 10 s, got {value}")
        return sorted(set(values))

    @field_validator("channels")
    @classmethod
    def _channels(cls, values: list[int]) -> list[int]:
        if not values:
            raise ValueError("give at least one channel, e.g. [1, 6, 11]")
        bad = [c for c in values if c not in _VALID_CHANNELS]
        if bad:
            raise ValueError(f"not Wi-Fi channel numbers: {bad}")
        return values

    @model_validator(mode="after")
    def _forget_after_link(self) -> WifiConfig:
        if self.forget_after_s < self.link_window_s:
            raise ValueError("forget_after_s must be at least link_window_s")
        return self

    def excluded_bytes(self) -> list[bytes]:
        return [parse_mac(address) for address in self.exclude_addresses]
