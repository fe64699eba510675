"""Config of the local status page (``web:``): where it listens and who may read it.

Secrets are never written in ``site.yaml`` in clear: write ``pin: ${EDGE_WEB_PIN}``
(an environment variable or a systemd credential of that name) or paste the hash
printed by ``edge web hash-secret``.
"""

from __future__ import annotations

import re
import ssl
from typing import Literal

from pydantic import Field, SecretStr, ValidationInfo, field_validator, model_validator

from edge.config.base import (
    StrictModel,
    checks_service,
    existing_file,
    key_problems,
    load_cert_chain,
)

# Format written by ``edge web hash-secret`` (edge/web/auth.py makes and checks it).
HASH_PATTERN = re.compile(r"^pbkdf2_sha256\$\d{4,7}\$[A-Za-z0-9_-]{16,64}\$[A-Za-z0-9_-]{43}$")
PIN_PATTERN = re.compile(r"^\d{4,12}$")
MIN_TOKEN_CHARS = 16
HOST_LABEL = r"[a-z0-9_][a-z0-9_-]{0,62}"
HOST_NAME = re.compile(rf"^(?=.{{1,253}}$){HOST_LABEL}(\.{HOST_LABEL})*$")


def is_secret_hash(value: str) -> bool:
    """Whether ``value`` is a hash from ``edge web hash-secret`` rather than a clear secret."""
    return bool(HASH_PATTERN.match(value))


class WebTlsConfig(StrictModel):
    """HTTPS for the status page. Paths relative to the site file are resolved against it."""

    cert_file: str
    """Certificate of the page (PEM), with any intermediate certificates after it."""
    key_file: str
    """Private key of that certificate (PEM, not encrypted)."""

    @field_validator("cert_file", "key_file")
    @classmethod
    def _existing_file(cls, value: str, info: ValidationInfo) -> str:
        return existing_file(value, info, "TLS")

    @model_validator(mode="after")
    def _usable(self, info: ValidationInfo) -> WebTlsConfig:
        if checks_service(info.context, "web"):
            self.ssl_context()  # files that exist but are no certificate and matching key
        return self

    def ssl_context(self) -> ssl.SSLContext:
        """The server's SSL context.

        Raises:
            ValueError: a certificate or key file that cannot be read or parsed, or a key
                that does not match the certificate.
        """
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        load_cert_chain(context, self.cert_file, self.key_file)
        return context


class WebConfig(StrictModel):
    """The status page for store associates and its IT endpoints."""

    host: str = "0.0.0.0"
    """Address to listen on: 0.0.0.0 for the shop's tablets, 127.0.0.1 for this box only."""
    port: int = Field(8080, ge=1, le=65535)
    """TCP port of the status page."""
    access: Literal["pin", "open-lan"] = "pin"
    """pin: associates enter the store PIN once per tablet; open-lan: anyone on the shop network may
    read the page (choose this only on a closed staff network)."""
    pin: SecretStr | None = None
    """Store PIN (4-12 digits) or its hash from `edge web hash-secret`; write ${EDGE_WEB_PIN} to
    read it from the environment or a systemd credential."""
    admin_token: SecretStr | None = Field(
        None,
        description=f"IT token (at least {MIN_TOKEN_CHARS} characters) or its hash, for the config "
        "view, debug and restart endpoints; sent as `Authorization: Bearer <token>`. "
        "No token: those endpoints are off.",
    )
    metrics_token: SecretStr | None = None
    """Token (or hash) that lets a Prometheus scraper read /metrics without the admin token. In
    open-lan mode /metrics is open."""
    refresh_s: int = Field(15, ge=2, le=600)
    """Seconds between page refreshes."""
    live_window_s: float = Field(5.0, gt=0, le=120)
    """People seen this recently count as in the store now (live cameras)."""
    health_stale_s: float = Field(120.0, gt=0, le=86400)
    """A service that has not reported for this long is shown as silent."""
    session_hours: float = Field(12.0, gt=0, le=24 * 31)
    """Hours a tablet stays signed in after the PIN."""
    login_attempts_per_minute: int = Field(5, ge=1, le=100)
    """Wrong PINs allowed per client per minute before it must wait; the same for wrong admin tokens
    and wrong metrics tokens, each counted apart."""
    pin_failures_per_hour: int = Field(30, ge=1, le=1000)
    """Wrong PINs from all devices together per sliding hour; past it, devices that have not signed
    in before wait (tokens and signed-in tablets do not). Bounds a PIN guess spread over many
    addresses: see docs/web.md."""
    allowed_hosts: list[str] = Field(default_factory=list)
    """Extra host names the page may be reached by (e.g. edge-0042.store.lan). Always allowed:
    addresses, localhost, this box's host name (and NAME.local) and web.host; any other Host header
    is refused (DNS rebinding)."""
    tls: WebTlsConfig | None = None
    """Serve the page over HTTPS with this certificate and key; session cookies are then marked
    Secure."""
    max_request_bytes: int = Field(16_384, ge=1024, le=1_048_576)
    """Largest request body accepted (bytes)."""
    cache_s: float = Field(2.0, ge=0, le=60)
    """Seconds computed figures are reused, so many tablets cost one query."""

    @field_validator("pin")
    @classmethod
    def _pin_digits_or_hash(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        text = value.get_secret_value()
        if not (PIN_PATTERN.match(text) or is_secret_hash(text)):
            raise ValueError(
                "the PIN must be 4 to 12 digits, or a hash printed by `edge web hash-secret`"
            )
        return value

    @field_validator("admin_token", "metrics_token")
    @classmethod
    def _long_token_or_hash(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        text = value.get_secret_value()
        if not is_secret_hash(text) and len(text) < MIN_TOKEN_CHARS:
            raise ValueError(
                f"a token needs at least {MIN_TOKEN_CHARS} characters (got {len(text)}); "
                "make one with: python3 -c 'import secrets; print(secrets.token_urlsafe(24))'"
            )
        return value

    @field_validator("allowed_hosts")
    @classmethod
    def _host_names(cls, names: list[str]) -> list[str]:
        for name in names:
            if not HOST_NAME.match(name.lower()):
                raise ValueError(
                    f"{name!r} is not a host name: give names only, like edge-0042.store.lan "
                    "(no scheme, port or path; addresses are always allowed)"
                )
        return [name.lower() for name in names]

    @model_validator(mode="after")
    def _pin_access_has_a_pin(self, info: ValidationInfo) -> WebConfig:
        # Checked here for the status page's service and for check-config (systemd's
        # ExecStartPre), so both refuse the same config; other commands (a replay,
        # `edge visits import`) do not need the page.
        if checks_service(info.context, "web") and self.access == "pin" and self.pin is None:
            default = "" if "access" in self.model_fields_set else " (the default)"
            raise key_problems("WebConfig", [(
                ("access",),
                f"'pin'{default} needs a PIN but no web.pin is set: add `pin: ${{EDGE_WEB_PIN}}` "
                "to the web: section (and set EDGE_WEB_PIN), or choose `access: open-lan` on a "
                "closed staff network",
                self.access,
            )])
        return self
