"""Config of the sync service: which MQTT broker gets the store's aggregates, and how.

Secrets (the broker password, the downlink signing key) are never written in the
file: write ``${NAME}`` and provide ``NAME`` as an environment variable or a
systemd credential (see :mod:`edge.config.loader`).
"""

from __future__ import annotations

import ssl

from pydantic import Field, ValidationInfo, field_validator, model_validator

from edge.config.base import StrictModel, checks_service, existing_file, load_cert_chain

DAY_S = 86_400


def check_window_s(value: int) -> int:
    """Windows tile the UTC day, so their length must divide 86,400 s."""
    if DAY_S % value:
        raise ValueError(
            f"window_s must divide a day (86400 s) so windows align to midnight UTC, got {value}; "
            "use e.g. 300, 600, 900, 1800 or 3600"
        )
    return value


class TlsConfig(StrictModel):
    """TLS to the broker. Paths relative to the site file are resolved against it."""

    ca_file: str | None = None
    """CA bundle (PEM) that signed the broker's certificate; None = system CAs."""
    cert_file: str | None = None
    """Client certificate (PEM), for brokers that ask."""
    key_file: str | None = None
    """Private key of the client certificate (PEM)."""
    insecure_skip_hostname_check: bool = False
    """Accept a broker certificate issued for another host name. Only for labs."""

    @field_validator("ca_file", "cert_file", "key_file")
    @classmethod
    def _existing_file(cls, value: str | None, info: ValidationInfo) -> str | None:
        return None if value is None else existing_file(value, info, "TLS")

    @model_validator(mode="after")
    def _cert_needs_key(self, info: ValidationInfo) -> TlsConfig:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("tls.cert_file and tls.key_file go together: give both or neither")
        if checks_service(info.context, "sync"):
            self.ssl_context()  # files that exist but are no CA bundle, certificate or key
        return self

    def ssl_context(self) -> ssl.SSLContext:
        """The client's SSL context.

        Raises:
            ValueError: a CA, certificate or key file that cannot be read or parsed.
        """
        try:
            context = ssl.create_default_context(cafile=self.ca_file)
        except (OSError, ssl.SSLError) as error:
            raise ValueError(
                f"tls.ca_file {self.ca_file}: not a readable PEM CA bundle ({error})"
            ) from None
        if self.cert_file:
            load_cert_chain(context, self.cert_file, self.key_file)
        if self.insecure_skip_hostname_check:
            context.check_hostname = False
        return context


class MqttConfig(StrictModel):
    """The broker of the central platform."""

    host: str = Field("localhost", min_length=1)
    """Broker host name or address."""
    port: int = Field(1883, ge=1, le=65535)
    """1883 plain, 8883 for TLS by convention."""
    client_id: str | None = Field(None, max_length=64)
    """MQTT client id; default edge-<store id>. Unique per box."""
    username: str | None = None
    """Broker user; usually the store id."""
    password: str | None = None
    """Broker password. Write ${NAME}, never the value."""
    tls: TlsConfig | None = None
    """TLS settings; None = plain TCP (labs only)."""
    topic_prefix: str = Field("store-edge", pattern=r"^[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*$")
    """Topics are <prefix>/<store id>/...; unique per deployment, like Frigate's."""
    keepalive_s: int = Field(60, ge=5, le=3600)
    """MQTT keep-alive interval."""
    reconnect_min_s: int = Field(1, ge=1, le=300)
    """First wait before reconnecting."""
    reconnect_max_s: int = Field(120, ge=1, le=3600)
    """Longest wait between reconnection attempts."""

    @model_validator(mode="after")
    def _password_needs_user(self) -> MqttConfig:
        if self.password is not None and self.username is None:
            raise ValueError("mqtt.password is set but mqtt.username is not")
        if self.reconnect_max_s < self.reconnect_min_s:
            raise ValueError("mqtt.reconnect_max_s must be at least reconnect_min_s")
        return self


class SyncConfig(StrictModel):
    """Aggregation windows, the MQTT broker, the outbox and the signed downlink."""

    enabled: bool = True
    """Run the sync service at all."""
    window_s: int = Field(900, ge=1, le=DAY_S)
    """Aggregation window (seconds); 900 = 15 min. Must divide a day."""
    settle_s: float = Field(120.0, ge=0, le=3600)
    """Wait this long after a window ends before aggregating it, so visits that end in it (written
    visits.close_after_s + visits.stitch_max_gap_s after their track vanished) are already
    stored."""
    occupancy_sample_s: float = Field(1.0, gt=0, le=60)
    """Occupancy is the number of tracks seen per sample of this length."""
    mqtt: MqttConfig = MqttConfig()
    downlink_key: str | None = Field(None, min_length=32)
    """HMAC-SHA256 key for signed config downlinks, provisioned at install (write ${NAME}). None =
    downlink disabled."""
    downlink_max_age_s: float = Field(300.0, ge=10, le=86_400)
    """Refuse downlinks issued longer ago (or further ahead) than this; nonces are remembered this
    long to refuse replays."""
    outbox_max_pending: int = Field(10_000, ge=10, le=1_000_000)
    """Most undelivered aggregates kept; beyond, the oldest are dropped (alarm)."""
    retry_initial_s: float = Field(5.0, gt=0, le=600)
    """First retry delay of a publish."""
    retry_max_s: float = Field(300.0, gt=0, le=86_400)
    """Longest retry delay."""
    ack_timeout_s: float = Field(30.0, gt=0, le=3600)
    """A publish not acknowledged (PUBACK) within this turns health degraded; it stays queued in the
    MQTT client, which sends it again after a reconnection."""
    stats_interval_s: float = Field(60.0, ge=1, le=86_400)
    """How often health stats go out."""
    poll_s: float = Field(1.0, gt=0, le=60)
    """Main loop period."""
    homeassistant_discovery: bool = False
    """Announce footfall and occupancy sensors by Home Assistant MQTT discovery."""
    discovery_prefix: str = Field("homeassistant", pattern=r"^[A-Za-z0-9_-]+$")
    """Home Assistant's discovery prefix."""

    @field_validator("window_s")
    @classmethod
    def _window_divides_day(cls, value: int) -> int:
        return check_window_s(value)

    @model_validator(mode="after")
    def _consistent(self) -> SyncConfig:
        if self.retry_max_s < self.retry_initial_s:
            raise ValueError("retry_max_s must be at least retry_initial_s")
        if self.occupancy_sample_s > self.window_s:
            raise ValueError("occupancy_sample_s must not exceed window_s")
        return self
