"""Effective sync settings: the site config, overlaid by downlink overrides.

Overrides live in the ``sync_overrides`` table, stored by :mod:`edge.privacy.overrides`
(the status page and the services' audit read the k in force there too): the sync
service reads k and the window length; a ``segment_spec`` is validated like the visits
service would, then written to :func:`edge.visits.spec.downlinked_spec_path`, which the
visits service hot-reloads. A downlink's changes are written in one transaction with
its nonce, and the spec file is renamed into place only once that transaction is
committed: all of them are applied, or none.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlite_utils
import yaml
from pydantic import Field, ValidationError, field_validator

from edge.config import SiteConfig
from edge.config.base import StrictModel
from edge.config.sync import check_window_s
from edge.errors import StorageError
from edge.privacy.overrides import (
    K_KEY,
    SEGMENT_SPEC_KEY,
    WINDOW_KEY,
    delete_override,
    k_of,
    last_update,
    override_rows,
    put_override,
    read_overrides,
)
from edge.privacy.settings import K_SETTING as K_AUDIT_SETTING
from edge.privacy.store import last_value, record_change
from edge.visits.spec import SegmentSpec, SpecError, downlinked_spec_path, parse_spec
from sync.errors import DownlinkRefused, short_reason
from sync.outbox import read_state, write_state

# sync_state key: {"nonce", "issued_at"} of the last downlink applied. A downlink is
# applied only if issued after it, so messages delivered out of order (a retry, a slow
# path, a retained message) never put back an older config over a newer one.
LAST_APPLIED = "downlink_last_applied"


# docs/mqtt.md recommends a broker message_size_limit of 70,000 bytes, and the aggregate
# that closes a day carries the spec's segment_stats. A downlinked spec may fill at most
# this much of that message with what it decides (trait and segment cells, the day's
# statistics), leaving the rest to the site's zones, transitions and the window's figures
# (4-5 kB on the demo). Before, a 28.7 kB spec of 100 components x 20 features made an
# 85,257-byte day message the broker refuses, and the publisher retried it for ever.
SPEC_AGGREGATE_BUDGET_BYTES = 40_000
NUMBER_BYTES = 24        # a float as JSON with its separator, at the longest
TRAIT_CELL_BYTES = 96    # {"mean_probability":…,"name":"","scored":…,"visits":…}, plus name
SEGMENT_CELL_BYTES = 224  # a segments[] cell with units, plus a segment_stats component's keys


def spec_aggregate_bytes(spec: SegmentSpec) -> int:
    """An upper bound of the bytes ``spec`` puts into the aggregate that closes a day: a
    cell per trait (the affinity traits counted once per tag the spec names) and per
    segment, and per segment ``2 x features`` numbers of ``segment_stats``."""
    traits = [*spec.traits, *(f"affinity_{tag}" for tag in spec.tags if spec.affinity)]
    size = sum(TRAIT_CELL_BYTES + len(name) for name in traits)
    if spec.segments is not None:
        features = spec.segments.features
        size += sum(len(name) + 3 for name in features)
        size += sum(SEGMENT_CELL_BYTES + 2 * len(c.name) + 2 * len(features) * NUMBER_BYTES
                    for c in spec.segments.components)
    return size


class OverrideChanges(StrictModel):
    """What a downlink may change. Same bounds as the site config, stricter where the
    central platform must not be able to weaken privacy or flood the link."""

    min_publishable_count: int | None = Field(None, ge=2, le=1000, description="k; never below 2.")
    window_s: int | None = Field(
        None, ge=60, le=86_400, description="Aggregation window; divides a day; at least 60 s."
    )
    segment_spec: dict[str, Any] | None = Field(
        None, description="A versioned segment spec, handed to the visits service as is; an "
        "explicit null clears the downlinked spec (back to the site's or the shipped one)."
    )

    @property
    def clears_spec(self) -> bool:
        """Whether the downlink sets ``segment_spec: null``: remove the downlinked spec."""
        return SEGMENT_SPEC_KEY in self.model_fields_set and self.segment_spec is None

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
        size = spec_aggregate_bytes(spec)
        if size > SPEC_AGGREGATE_BUDGET_BYTES:
            components = len(spec.segments.components) if spec.segments else 0
            features = len(spec.segments.features) if spec.segments else 0
            raise ValueError(
                f"too big for the aggregates: up to {size:,} bytes in the day-closing message "
                f"({components} segments x {features} features, {len(spec.traits)} traits), "
                f"over {SPEC_AGGREGATE_BUDGET_BYTES:,} of the 70,000-byte broker limit")
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


def effective_settings(db: sqlite_utils.Database, site: SiteConfig) -> SyncSettings:
    overrides = read_overrides(db)
    spec = overrides.get(SEGMENT_SPEC_KEY)
    return SyncSettings(
        k=k_of(overrides, site),
        window_s=int(overrides.get(WINDOW_KEY, site.sync.window_s)),
        segment_spec_version=spec.get("spec_version") if isinstance(spec, dict) else None,
        updated_at=last_update(db),
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
        value = first.get("input")
        # Quote a value, not a whole segment spec (the reason is one short line).
        got = "" if isinstance(value, dict | list) else f" (got {short_reason(repr(value), 40)})"
        raise DownlinkRefused(f"set.{where}: {message}{got}") from None


def apply_changes(
    db: sqlite_utils.Database, changes: OverrideChanges, *, nonce: str, issued_at: float, now: float
) -> list[str]:
    """Persist every change and the nonce, all or nothing; return the keys changed.

    ``segment_spec: null`` clears the downlinked spec: its row then holds null and the
    file is removed once the rows are committed (the visits service reloads the site's
    or the shipped spec).

    A segment spec is written to a temporary file first, the rows are committed in one
    transaction, and only then is the file renamed into place (the visits service
    never sees a spec whose transaction rolled back). If even that rename fails, the rows
    are put back as they were. The temporary file is removed in every case.

    Raises:
        StorageError: the spec file cannot be written or put in place (nothing applied).
        sqlite3.Error: the transaction failed (nothing applied).
    """
    values = changes.model_dump(exclude_none=True)
    if changes.clears_spec:
        # Kept as a row holding null (when and by which nonce it was cleared), as every
        # change is; the visits service sees the file go and reloads the site's spec.
        values[SEGMENT_SPEC_KEY] = None
    staged = (_stage_spec_file(values[SEGMENT_SPEC_KEY])
              if values.get(SEGMENT_SPEC_KEY) is not None else None)
    try:
        with db.atomic():
            before = override_rows(db, list(values)), last_value(db, K_AUDIT_SETTING)
            previous = read_state(db, LAST_APPLIED)
            if K_KEY in values:
                _audit_k(db, values[K_KEY], nonce, now)
            for key, value in values.items():
                put_override(db, key, json.dumps(value, sort_keys=True), now, nonce)
            remember_nonce(db, nonce, issued_at, now)
            write_state(db, LAST_APPLIED, {"nonce": nonce, "issued_at": issued_at})
        if staged is not None:
            try:
                os.replace(staged, downlinked_spec_path())
            except OSError as error:
                _restore(db, before, values, nonce, now)
                with db.atomic():  # the undone downlink is not the one in force
                    write_state(db, LAST_APPLIED, previous)
                raise StorageError(
                    f"cannot put the segment spec in place at {downlinked_spec_path()}: {error}"
                ) from None
        elif changes.clears_spec:
            try:
                downlinked_spec_path().unlink(missing_ok=True)
            except OSError as error:
                _restore(db, before, values, nonce, now)
                with db.atomic():
                    write_state(db, LAST_APPLIED, previous)
                raise StorageError(
                    f"cannot remove the downlinked segment spec {downlinked_spec_path()}: "
                    f"{error}") from None
    finally:
        if staged is not None:
            staged.unlink(missing_ok=True)
    return sorted(values)


def _stage_spec_file(spec: dict[str, Any]) -> Path:
    """Write a downlinked spec next to where the visits service reads it, under a
    temporary name (renamed into place once the rows are committed)."""
    path = downlinked_spec_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write(yaml.safe_dump(spec, sort_keys=False))
    except OSError as error:
        raise StorageError(f"cannot write the segment spec to {path.parent}: {error}") from None
    return Path(name)


def _restore(
    db: sqlite_utils.Database,
    before: tuple[dict[str, tuple[Any, ...]], tuple[bool, Any]],
    values: dict[str, Any],
    nonce: str,
    now: float,
) -> None:
    """Undo a committed downlink whose spec file could not be put in place: the rows as
    they were, and a k change reversed in the audit log. The nonce stays used."""
    rows, audited = before
    with db.atomic():
        for key in values:
            if key in rows:
                put_override(db, key, *rows[key])
            else:
                delete_override(db, key)
        if last_value(db, K_AUDIT_SETTING) != audited:
            record_change(
                db, K_AUDIT_SETTING, values[K_KEY], audited[1], f"downlink {nonce} undone", now
            )


def _audit_k(db: sqlite_utils.Database, k: int, nonce: str, now: float) -> None:
    """A downlinked k goes into the privacy audit log, in the transaction that applies it.

    The value before is the last one the log holds (each service records the k in
    force when it starts), else the previous override."""
    recorded, old = last_value(db, K_AUDIT_SETTING)
    if not recorded:
        old = read_overrides(db).get(K_KEY)
    if old != k:
        record_change(db, K_AUDIT_SETTING, old, k, f"downlink {nonce}", now)


def last_applied(db: sqlite_utils.Database) -> tuple[str, float] | None:
    """The nonce and ``issued_at`` of the last downlink applied (None: none yet)."""
    value = read_state(db, LAST_APPLIED)
    return None if value is None else (str(value["nonce"]), float(value["issued_at"]))


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
