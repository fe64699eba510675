"""Effective sync settings: the site config, overlaid by downlink overrides.

Overrides live in the ``sync_overrides`` table (one row per key, JSON value) so
every service reads the same values after a restart: the sync service reads k
and the window length; a ``segment_spec`` is validated like the visits service
would, then written to :func:`edge.visits.spec.downlinked_spec_path`, which the
visits service hot-reloads. A downlink's changes are written in one transaction with
its nonce: all of them are applied, or none.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

import sqlite_utils
import yaml
from pydantic import Field, ValidationError, field_validator

from edge.config import SiteConfig
from edge.config.base import StrictModel
from edge.config.sync import check_window_s
from edge.privacy.settings import K_SETTING as K_AUDIT_SETTING
from edge.privacy.store import last_value, record_change
from edge.visits.spec import SpecError, downlinked_spec_path, parse_spec
from sync.errors import DownlinkRefused

K_KEY, WINDOW_KEY, SEGMENT_SPEC_KEY = "min_publishable_count", "window_s", "segment_spec"


class OverrideChanges(StrictModel):
    """What a downlink may change. Same bounds as the site config, stricter where the
    central platform must not be able to weaken privacy or flood the link."""

    min_publishable_count: int | None = Field(None, ge=2, le=1000, description="k; never below 2.")
    window_s: int | None = Field(
        None, ge=60, le=86_400, description="Aggregation window; divides a day; at least 60 s."
    )
    segment_spec: dict[str, Any] | None = Field(
        None, description="A versioned segment spec, handed to the visits service as is."
    )

    @field_validator("window_s")
    @classmethod
    def _divides_day(cls, value: int | None) -> int | None:
        return None if value is None else check_window_s(value)

    @field_validator("segment_spec")
    @classmethod
    def _valid_spec(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        """The whole spec is validated here, as the visits service would, so a spec that
        could not be used is refused before anything is applied."""
        if value is None:
            return None
        try:
            spec = parse_spec(json.dumps(value), source="downlink segment_spec")
        except SpecError as error:
            raise ValueError(str(error)) from None
        if spec.classifier is not None:
            raise ValueError("a downlinked segment spec cannot name a classifier model file")
        return value


@dataclass(frozen=True, slots=True)
class SyncSettings:
    """What the sync service uses now."""

    k: int
    window_s: int
    segment_spec_version: str | None
    updated_at: float | None

    def as_state(self) -> dict[str, Any]:
        return {
            K_KEY: self.k,
            WINDOW_KEY: self.window_s,
            "segment_spec_version": self.segment_spec_version,
        }


def read_overrides(db: sqlite_utils.Database) -> dict[str, Any]:
    """Every override set by downlink, key -> value."""
    return {
        key: json.loads(value) for key, value in db.execute("select key, value from sync_overrides")
    }


def effective_settings(db: sqlite_utils.Database, site: SiteConfig) -> SyncSettings:
    overrides = read_overrides(db)
    updated = db.execute("select max(updated_at) from sync_overrides").fetchone()[0]
    spec = overrides.get(SEGMENT_SPEC_KEY)
    return SyncSettings(
        # k is never below the floor, whatever a row says (the table is local, but be sure).
        k=max(2, int(overrides.get(K_KEY, site.privacy.min_publishable_count))),
        window_s=int(overrides.get(WINDOW_KEY, site.sync.window_s)),
        segment_spec_version=spec.get("spec_version") if isinstance(spec, dict) else None,
        updated_at=updated,
    )


def check_changes(changes: dict[str, Any]) -> OverrideChanges:
    """Validate a downlink's ``set`` object.

    Raises:
        DownlinkRefused: naming the offending key and why.
    """
    try:
        return OverrideChanges.model_validate(changes)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "set"
        message = first["msg"].removeprefix("Value error, ")
        raise DownlinkRefused(f"set.{where}: {message} (got {first.get('input')!r})") from None


def apply_changes(
    db: sqlite_utils.Database, changes: OverrideChanges, *, nonce: str, issued_at: float, now: float
) -> list[str]:
    """Persist every change and the nonce in one transaction; return the keys changed."""
    values = changes.model_dump(exclude_none=True)
    with db.atomic():
        if K_KEY in values:
            _audit_k(db, values[K_KEY], nonce, now)
        if SEGMENT_SPEC_KEY in values:
            # Written inside the transaction: if the file cannot be written, nothing is applied.
            _write_spec_file(values[SEGMENT_SPEC_KEY])
        for key, value in values.items():
            db.execute(
                "insert into sync_overrides (key, value, updated_at, nonce) values (?, ?, ?, ?) "
                "on conflict(key) do update set value = excluded.value, "
                "updated_at = excluded.updated_at, nonce = excluded.nonce",
                [key, json.dumps(value, sort_keys=True), now, nonce],
            )
        remember_nonce(db, nonce, issued_at, now)
    return sorted(values)


def _audit_k(db: sqlite_utils.Database, k: int, nonce: str, now: float) -> None:
    """A downlinked k goes into the privacy audit log, in the transaction that applies it.

    The value before is the last one the log holds (each service records the k in
    force when it starts), else the previous override."""
    recorded, old = last_value(db, K_AUDIT_SETTING)
    if not recorded:
        old = read_overrides(db).get(K_KEY)
    if old != k:
        record_change(db, K_AUDIT_SETTING, old, k, f"downlink {nonce}", now)


def _write_spec_file(spec: dict[str, Any]) -> None:
    """Hand a downlinked spec to the visits service, which hot-reloads it (atomic replace)."""
    path = downlinked_spec_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".part")
    temporary.write_text(yaml.safe_dump(spec, sort_keys=False))
    os.replace(temporary, path)


def remember_nonce(db: sqlite_utils.Database, nonce: str, issued_at: float, now: float) -> None:
    db.execute(
        "insert into sync_downlink_nonces (nonce, issued_at, received_at) values (?, ?, ?)",
        [nonce, issued_at, now],
    )


def nonce_seen(db: sqlite_utils.Database, nonce: str) -> bool:
    return (
        db.execute("select 1 from sync_downlink_nonces where nonce = ?", [nonce]).fetchone()
        is not None
    )


def forget_nonces(db: sqlite_utils.Database, before: float) -> int:
    """Nonces older than the freshness window can go: such messages are refused as stale."""
    with db.atomic():
        return db.execute("delete from sync_downlink_nonces where issued_at < ?", [before]).rowcount
