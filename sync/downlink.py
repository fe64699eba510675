"""Signed config downlink: ``<prefix>/<store>/config/set`` -> ``config/state``.

A downlink is a JSON envelope ``{"body": "<JSON text>", "signature": "<hex>"}``;
the signature is HMAC-SHA256 over the body's exact UTF-8 bytes with the key
provisioned at install (``sync.downlink_key``). A message is applied only if, in
this order: the envelope matches its schema, the signature is right, the body
matches its schema and major version, it names this store, it was issued within
``downlink_max_age_s`` of now, its nonce was never seen, and every change is
allowed (k >= 2, a window that divides the day...). All changes and the nonce are
then written in one transaction. Anything else is refused, logged, and changes
nothing.

:data:`HANDLERS` maps topic suffixes to handlers; the service subscribes to
exactly its keys, so a handler cannot exist without its subscription.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import sqlite_utils

from edge.errors import StorageError
from sync import contract
from sync.errors import ContractError, DownlinkRefused
from sync.settings import apply_changes, check_changes, nonce_seen

log = logging.getLogger(__name__)

MAX_DOWNLINK_BYTES = 70_000


@dataclass(frozen=True, slots=True)
class DownlinkContext:
    """What a handler needs: the database, who we are, the key and the clock."""

    db: sqlite_utils.Database
    store: str
    key: str | None
    max_age_s: float
    now: float = field(default_factory=time.time)


@dataclass(frozen=True, slots=True)
class DownlinkResult:
    status: str  # "applied" or "refused"
    reason: str
    nonce: str | None = None
    changed: tuple[str, ...] = ()

    def as_state(self, at: float) -> dict[str, Any]:
        return {"status": self.status, "nonce": self.nonce, "reason": self.reason, "at": at}


def sign_body(body: dict[str, Any], key: str) -> bytes:
    """The signed envelope of ``body`` (what the central platform publishes)."""
    text = json.dumps(body, separators=(",", ":"), ensure_ascii=False)
    signature = hmac.new(key.encode(), text.encode(), hashlib.sha256).hexdigest()
    return json.dumps({"body": text, "signature": signature}).encode()


def config_body(
    store: str, changes: dict[str, Any], *, issued_at: float | None = None, nonce: str | None = None
) -> dict[str, Any]:
    """A config/set body with a fresh nonce and the current time."""
    return {
        "schema_version": contract.SCHEMA_VERSION,
        "store": store,
        "issued_at": time.time() if issued_at is None else issued_at,
        "nonce": nonce or secrets.token_urlsafe(18),
        "set": changes,
    }


def _parse(payload: bytes, what: str) -> Any:
    try:
        return json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise DownlinkRefused(f"{what} is not JSON: {error}") from None


def verify(payload: bytes, ctx: DownlinkContext) -> dict[str, Any]:
    """The authenticated, fresh, never-seen body of a config/set message.

    Raises:
        DownlinkRefused: why it is refused (never half-applied: nothing is written here).
    """
    if ctx.key is None:
        raise DownlinkRefused("downlink is disabled on this box (no sync.downlink_key)")
    if len(payload) > MAX_DOWNLINK_BYTES:
        raise DownlinkRefused(f"message of {len(payload)} bytes exceeds {MAX_DOWNLINK_BYTES}")
    envelope = _parse(payload, "message")
    try:
        contract.validate("downlink", envelope)
    except ContractError as error:
        raise DownlinkRefused(str(error)) from None
    expected = hmac.new(ctx.key.encode(), envelope["body"].encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, envelope["signature"]):
        raise DownlinkRefused("bad signature (wrong key, or the body was altered)")
    body = _parse(envelope["body"].encode(), "body")
    try:
        contract.validate("downlink-body", body)
    except ContractError as error:
        raise DownlinkRefused(str(error)) from None
    if body["store"] != ctx.store:
        raise DownlinkRefused(f"addressed to store {body['store']!r}, this is {ctx.store!r}")
    age = ctx.now - body["issued_at"]
    if abs(age) > ctx.max_age_s:
        raise DownlinkRefused(
            f"issued {age:+.0f} s from now, outside +-{ctx.max_age_s:.0f} s (stale, replayed, "
            "or a clock is wrong)"
        )
    if nonce_seen(ctx.db, body["nonce"]):
        raise DownlinkRefused(f"nonce {body['nonce']} was already used (replayed message)")
    return body


def handle_config_set(payload: bytes, ctx: DownlinkContext) -> DownlinkResult:
    """Verify a config/set message and apply all its changes atomically, or none."""
    nonce = None
    try:
        body = verify(payload, ctx)
        nonce = body["nonce"]
        changes = check_changes(body["set"])
        changed = apply_changes(
            ctx.db, changes, nonce=nonce, issued_at=body["issued_at"], now=ctx.now
        )
    except DownlinkRefused as error:
        log.warning("Refused a config downlink: %s", error)
        return DownlinkResult("refused", str(error), nonce)
    except (StorageError, sqlite3.Error) as error:  # the transaction rolled back as a whole
        log.error("Could not apply a config downlink (nothing changed): %s", error)
        return DownlinkResult("refused", f"not applied: {error}", nonce)
    log.info("Applied a config downlink (nonce %s): %s.", nonce, ", ".join(changed))
    return DownlinkResult("applied", "applied " + ", ".join(changed), nonce, tuple(changed))


HANDLERS: dict[str, Callable[[bytes, DownlinkContext], DownlinkResult]] = {
    contract.CONFIG_SET: handle_config_set,
}
