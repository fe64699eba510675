"""Signed config downlink: ``<prefix>/<store>/config/set`` -> ``config/state``.

A downlink is a JSON envelope ``{"body": "<JSON text>", "signature": "<hex>"}``;
the signature is HMAC-SHA256 over the body's exact UTF-8 bytes with the key
provisioned at install (``sync.downlink_key``). A message is applied only if, in
this order: it is at most 70 kB of UTF-8 JSON nested at most 32 deep (no NaN, no lone
surrogate), the envelope matches its schema, the signature is right, the body
matches its schema and major version, it names this store, it was issued within
``downlink_max_age_s`` of now, its nonce was never seen, it was issued after the
last downlink applied (else "superseded"), and every change is allowed (k >= 2, a
window that divides the day...). All changes and the nonce are then written in one
transaction. Anything else is refused, logged, and changes
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
from typing import Any, cast

import sqlite_utils
from pydantic import ValidationError

from edge.config.sync import SyncConfig
from edge.errors import StorageError
from edge.privacy.overrides import K_FLOOR
from sync import contract
from sync.errors import ContractError, DownlinkRefused, short_reason
from sync.settings import apply_changes, check_changes, last_applied, nonce_seen

log = logging.getLogger(__name__)

MAX_DOWNLINK_BYTES = 70_000
# The largest MQTT packet the box accepts (MQTT 5 Maximum Packet Size, in its CONNECT):
# the broker must not send it anything bigger, so a 20 MB message never reaches its
# memory. Above MAX_DOWNLINK_BYTES, so that a message a little too big still arrives
# and is refused with a reason on config/state.
MAX_INCOMING_PACKET = 256 * 1024


@dataclass(frozen=True, slots=True)
class DownlinkContext:
    """What a handler needs: the database, who we are, the key, the clock and the site's
    own k (a downlinked k may raise it, never go below it)."""

    db: sqlite_utils.Database
    store: str
    key: str | None
    max_age_s: float
    now: float = field(default_factory=time.time)
    site_k: int = K_FLOOR


@dataclass(frozen=True, slots=True)
class DownlinkResult:
    status: str  # "applied", "refused", or "ignored" (the one in force again: not reported)
    reason: str
    nonce: str | None = None
    changed: tuple[str, ...] = ()

    def as_state(self, at: float) -> dict[str, Any]:
        return {"status": self.status, "nonce": self.nonce, "reason": self.reason, "at": at}


def key_bytes(key: str) -> bytes:
    """The HMAC key's bytes: its UTF-8, and bytes that were not UTF-8 in the environment
    variable it came from as they were (Python holds those as surrogate escapes).

    Raises:
        UnicodeEncodeError: a key holding other lone surrogates.
    """
    return key.encode("utf-8", "surrogateescape")


def sign_body(body: dict[str, Any], key: str) -> bytes:
    """The signed envelope of ``body`` (what the central platform publishes)."""
    text = json.dumps(body, separators=(",", ":"), ensure_ascii=False)
    signature = hmac.new(key_bytes(key), text.encode(), hashlib.sha256).hexdigest()
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


def signed_config_set(store: str, changes: dict[str, Any], key: str) -> bytes:
    """A signed config/set message that a box holding ``key`` accepts: the key, the
    envelope, the body and every change pass the box's own checks before it is returned
    (what ``edge sync sign-config`` prints).

    Raises:
        DownlinkRefused: what the box would refuse, and why.
    """
    try:
        SyncConfig.model_validate({"downlink_key": key})
    except ValidationError as error:
        raise DownlinkRefused(f"sync.downlink_key: {error.errors()[0]['msg']}") from None
    payload = sign_body(config_body(store, changes), key)
    check_changes(authenticated_body(payload, key)["set"])
    return payload


def _parse(payload: bytes, what: str) -> Any:
    try:
        return contract.parse_json(payload, what)
    except ContractError as error:
        raise DownlinkRefused(str(error)) from None


def authenticated_body(payload: bytes, key: str) -> dict[str, Any]:
    """The signed, schema-valid body of a config/set message: the checks that need only
    the key (size, UTF-8, nesting, JSON, envelope schema, signature, then the body's
    nesting, JSON, schema and major version).

    Raises:
        DownlinkRefused: why; with the nonce once the body is authentic and has one.
    """
    if len(payload) > MAX_DOWNLINK_BYTES:
        raise DownlinkRefused(f"message of {len(payload)} bytes exceeds {MAX_DOWNLINK_BYTES}")
    envelope = _parse(payload, "message")
    try:
        contract.validate("downlink", envelope)
    except ContractError as error:
        raise DownlinkRefused(str(error)) from None
    # Encodable: parse_json refused lone surrogates, the only str that UTF-8 cannot carry.
    body_bytes = envelope["body"].encode("utf-8")
    try:
        secret = key_bytes(key)
    except UnicodeEncodeError:
        raise DownlinkRefused("sync.downlink_key cannot be encoded as UTF-8") from None
    expected = hmac.new(secret, body_bytes, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected.encode(), envelope["signature"].encode()):
        raise DownlinkRefused("bad signature (wrong key, or the body was altered)")
    body = _parse(body_bytes, "body")
    nonce = body.get("nonce") if isinstance(body, dict) else None
    nonce = nonce if contract.is_nonce(nonce) else None
    try:
        contract.validate("downlink-body", body)
    except ContractError as error:
        raise DownlinkRefused(str(error), nonce) from None
    return cast(dict[str, Any], body)


def screen(payload: bytes, key: str | None) -> DownlinkResult | None:
    """The refusal of a message that could never be applied, or None for an authentic
    one: the checks that need only the key (:func:`authenticated_body`, size first).

    Cheap (at most 70 kB parsed and one HMAC), without the database: the MQTT network
    thread runs it on every message before it keeps anything, so only signed messages
    are queued and no flood of junk can push a valid change out of the queue. Never raises.
    """
    if len(payload) > MAX_DOWNLINK_BYTES:
        return DownlinkResult(
            "refused", f"message of {len(payload)} bytes exceeds {MAX_DOWNLINK_BYTES}"
        )
    if key is None:
        return DownlinkResult("refused", "downlink is disabled on this box (no sync.downlink_key)")
    try:
        authenticated_body(payload, key)
    except DownlinkRefused as error:
        return DownlinkResult("refused", short_reason(str(error)), error.nonce)
    except Exception as error:  # a bug: refuse the message, keep the network thread alive
        log.exception("Could not check a config downlink; refused.")
        return DownlinkResult(
            "refused", short_reason(f"internal error: {type(error).__name__}: {error}")
        )
    return None


class AlreadyInForce(DownlinkRefused):
    """The downlink in force, delivered again (a retained ``config/set`` comes back at
    every connection): nothing to apply, and nothing to report."""


def verify(payload: bytes, ctx: DownlinkContext) -> dict[str, Any]:
    """The authenticated, fresh, never-seen body of a config/set message.

    Raises:
        DownlinkRefused: why it is refused (never half-applied: nothing is written here).
    """
    if ctx.key is None:
        raise DownlinkRefused("downlink is disabled on this box (no sync.downlink_key)")
    body = authenticated_body(payload, ctx.key)
    nonce = body["nonce"]
    if body["store"] != ctx.store:
        raise DownlinkRefused(
            f"addressed to store {body['store']!r}, this is {ctx.store!r}", nonce
        )
    last = last_applied(ctx.db)
    if last is not None and nonce == last[0]:  # before the age: a retained one grows old
        raise AlreadyInForce(f"already in force (nonce {nonce}): delivered again", nonce)
    age = ctx.now - float(body["issued_at"])  # the schema bounds it: a float, finite
    if abs(age) > ctx.max_age_s:
        raise DownlinkRefused(
            f"issued {age:+.0f} s from now, outside +-{ctx.max_age_s:.0f} s (stale, replayed, "
            "or a clock is wrong)",
            nonce,
        )
    if nonce_seen(ctx.db, nonce):
        raise DownlinkRefused(f"nonce {nonce} was already used (replayed message)", nonce)
    if last is not None and float(body["issued_at"]) <= last[1]:
        raise DownlinkRefused(
            f"superseded: issued at {contract.iso_utc(float(body['issued_at']))}, not after "
            f"the downlink in force ({last[0]}, issued at {contract.iso_utc(last[1])})", nonce)
    return body


def handle_config_set(payload: bytes, ctx: DownlinkContext) -> DownlinkResult:
    """Verify a config/set message and apply all its changes atomically, or none.

    Never raises: whatever the message holds, it is applied or refused with one log line
    and a short reason (the service must outlive any message, retained ones included)."""
    nonce = None
    try:
        body = verify(payload, ctx)
        nonce = body["nonce"]
        changes = check_changes(body["set"])
        k = changes.min_publishable_count
        if k is not None and k < ctx.site_k:
            raise DownlinkRefused(
                f"set.min_publishable_count: {k} is below this store's own k ({ctx.site_k}, "
                f"its site config's privacy.min_publishable_count); a downlink may raise k, "
                f"never lower it below what the store set", nonce)
        changed = apply_changes(
            ctx.db, changes, nonce=nonce, issued_at=body["issued_at"], now=ctx.now
        )
    except AlreadyInForce as error:
        log.info("Ignored a config downlink: %s", error)
        return DownlinkResult("ignored", short_reason(str(error)), error.nonce)
    except DownlinkRefused as error:
        reason = short_reason(str(error))
        log.warning("Refused a config downlink: %s", reason)
        return DownlinkResult("refused", reason, error.nonce or nonce)
    except (StorageError, sqlite3.Error) as error:  # the transaction rolled back as a whole
        reason = short_reason(f"not applied: {error}")
        log.error("Could not apply a config downlink (nothing changed): %s", reason)
        return DownlinkResult("refused", reason, nonce)
    except Exception as error:  # a bug; the transaction rolled back, the service lives on
        log.exception("Could not handle a config downlink (nothing changed).")
        return DownlinkResult(
            "refused", short_reason(f"internal error: {type(error).__name__}: {error}"), nonce
        )
    log.info("Applied a config downlink (nonce %s): %s.", nonce, ", ".join(changed))
    return DownlinkResult("applied", "applied " + ", ".join(changed), nonce, tuple(changed))


HANDLERS: dict[str, Callable[[bytes, DownlinkContext], DownlinkResult]] = {
    contract.CONFIG_SET: handle_config_set,
}
