"""The MQTT contract with the central platform: topics, ids and versioned JSON schemas.

Every message that leaves the box and every downlink that enters it is validated
against a JSON schema shipped in ``sync/schemas/`` (documented in docs/mqtt.md).
``schema_version`` is ``MAJOR.MINOR``: a receiver accepts any minor version of the
major it knows; additions bump the minor, anything that breaks a reader bumps the
major.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from importlib import resources
from typing import Any

from jsonschema import Draft202012Validator

from sync.errors import ContractError, short_reason

SCHEMA_VERSION = "1.0"
SCHEMA_MAJOR = SCHEMA_VERSION.split(".")[0]
# 1.1 added the optional ``queue`` and ``conversion`` sections (issue 17); 1.2 the
# optional ``segment_stats`` of the window that closes a day (issue 16); 1.3 the optional
# ``visits.groups`` (shopping groups, issue 17); 1.4 the optional ``segments[].units``
# (the segment mix by buying units, issue 17); 1.5 the optional ``timezone`` (the store's
# IANA zone, so that the central roll-ups count its local days).
AGGREGATE_SCHEMA_VERSION = "1.5"
AGGREGATE_KIND = "aggregate"

# Topic suffixes under <prefix>/<store>/ (Frigate's layout: available, stats, .../set -> .../state).
AVAILABLE = "available"
AGGREGATES = "aggregates"
STATS = "stats"
CONFIG_SET = "config/set"
CONFIG_STATE = "config/state"
ONLINE, OFFLINE = "online", "offline"

# Far deeper than any message of the contract (a downlinked segment spec nests about 9
# levels), far shallower than the recursion limit of the parser and the validators.
MAX_JSON_DEPTH = 32
_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKET = re.compile(r"[\[\]{}]")


@dataclass(frozen=True, slots=True)
class Topics:
    """The topics of one store under a prefix."""

    prefix: str
    store: str

    def __call__(self, suffix: str) -> str:
        return f"{self.prefix}/{self.store}/{suffix}"

    def suffix_of(self, topic: str) -> str | None:
        """The suffix of ``topic`` if it belongs to this store, else None."""
        base = f"{self.prefix}/{self.store}/"
        return topic[len(base) :] if topic.startswith(base) else None


@cache
def schema(name: str) -> dict[str, Any]:
    """The JSON schema ``sync/schemas/<name>.schema.json`` (aggregate, downlink, state, stats)."""
    text = resources.files("sync").joinpath("schemas", f"{name}.schema.json").read_text()
    loaded: dict[str, Any] = json.loads(text)
    Draft202012Validator.check_schema(loaded)
    return loaded


@cache
def _validator(name: str, *, open_ended: bool = False) -> Draft202012Validator:
    loaded = schema(name)
    return Draft202012Validator(_allow_more_properties(loaded) if open_ended else loaded)


def _allow_more_properties(node: Any) -> Any:
    """``node`` with every ``additionalProperties: false`` dropped: the fields it knows
    are checked as before, and fields added by a later minor version pass."""
    if isinstance(node, dict):
        return {key: _allow_more_properties(value) for key, value in node.items()
                if not (key == "additionalProperties" and value is False)}
    if isinstance(node, list):
        return [_allow_more_properties(item) for item in node]
    return node


def _is_later_minor(name: str, version: object) -> bool:
    """Whether an aggregate's ``version`` is a minor version newer than this build's
    (:data:`AGGREGATE_SCHEMA_VERSION`): sent by a box upgraded before its receiver.
    Aggregates only: a downlink stays strict, since a box must not half-apply settings
    it does not know."""
    if name != "aggregate" or not isinstance(version, str):
        return False
    major, _, minor = version.partition(".")
    known = AGGREGATE_SCHEMA_VERSION.split(".")[1]
    return major == SCHEMA_MAJOR and minor.isdigit() and int(minor) > int(known)


def validate(name: str, message: Any) -> None:
    """Check ``message`` against schema ``name``.

    An aggregate of a later minor version than this build knows (a box upgraded before
    the central workers) is checked on the fields this build knows, and the fields the
    later version added pass: additions bump only the minor. At this build's version or
    below, an unknown field is an error.

    Raises:
        ContractError: naming the first offending field, e.g. ``window.seconds: 0 is less
            than the minimum of 1``; or an unsupported major ``schema_version``.
    """
    version = message.get("schema_version") if isinstance(message, dict) else None
    if isinstance(version, str) and version.split(".")[0] != SCHEMA_MAJOR:
        raise ContractError(
            f"{name} message has schema_version {version!r}; this box speaks {SCHEMA_MAJOR}.x"
        )
    validator = _validator(name, open_ended=_is_later_minor(name, version))
    errors = sorted(validator.iter_errors(message), key=lambda e: list(e.absolute_path))
    if errors:
        first = errors[0]
        where = ".".join(str(p) for p in first.absolute_path) or "(top level)"
        more = f" (and {len(errors) - 1} more problems)" if len(errors) > 1 else ""
        # first.message quotes the offending value, which may be the whole payload.
        raise ContractError(
            f"{name} message is invalid at {short_reason(where, 80)}: "
            f"{short_reason(first.message, 120)}{more}"
        )


def nesting_depth(text: str) -> int:
    """How deeply arrays and objects nest in JSON ``text``, found without parsing it
    (brackets inside strings do not count), so a hostile message never recurses."""
    depth = deepest = 0
    for bracket in _BRACKET.findall(_JSON_STRING.sub("", text)):
        if bracket in "[{":
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {short_reason(text, 24)} is out of range")
    return value


def parse_json(payload: bytes, what: str, *, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """Decode a JSON message from the network, refusing anything the rest of the code
    could choke on: bytes that are not UTF-8, nesting deeper than ``max_depth``, NaN or
    infinite numbers, integers of thousands of digits, lone surrogate escapes
    (``"\\ud800"`` decodes to a string that cannot be encoded back to UTF-8), and NUL
    characters (``"\\u0000"``, which PostgreSQL's text and jsonb cannot hold).

    Raises:
        ContractError: one short line saying which of these ``what`` is.
    """
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ContractError(f"{what} is not UTF-8 text: {error}") from None
    depth = nesting_depth(text)
    if depth > max_depth:
        raise ContractError(f"{what} is nested {depth} levels deep, more than {max_depth}")
    try:
        value = json.loads(text, parse_constant=_no_constant, parse_float=_finite)
    except (ValueError, RecursionError) as error:  # JSONDecodeError is a ValueError
        raise ContractError(f"{what} is not JSON: {short_reason(str(error), 120)}") from None
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise ContractError(
            f"{what} holds a lone surrogate escape (\\ud800-\\udfff), which is not Unicode text"
        ) from None
    if "u0000" in text and _holds_nul(value):
        raise ContractError(
            f"{what} holds a NUL character (\\u0000), which no text column can store")
    return value


def _holds_nul(value: Any) -> bool:
    """Whether a NUL character is in any string or key of ``value`` (PostgreSQL's text and
    jsonb refuse it: a message holding one can be stored nowhere, so it is refused here,
    before it can stop a batch of good ones)."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any("\x00" in key or _holds_nul(item) for key, item in value.items())
    if isinstance(value, list):
        return any(_holds_nul(item) for item in value)
    return False


@cache
def _pattern(schema_name: str, field: str) -> re.Pattern[str]:
    return re.compile(schema(schema_name)["properties"][field]["pattern"])


def is_store_id(text: str) -> bool:
    """Whether ``text`` is a store id as the contract spells it (the schemas' ``store``):
    also a single topic level with no wildcard."""
    return _pattern("aggregate", "store").fullmatch(text) is not None


def is_nonce(text: object) -> bool:
    """Whether ``text`` is a downlink nonce as the contract spells it."""
    return isinstance(text, str) and _pattern("downlink-body", "nonce").fullmatch(text) is not None


def canonical_json(message: Any) -> bytes:
    """Compact, key-sorted UTF-8 JSON: the bytes that are signed, stored and published."""
    return json.dumps(
        message, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode()


def iso_utc(epoch_s: float) -> str:
    """``2024-03-01T10:15:00Z`` (whole seconds; windows start on whole seconds)."""
    return datetime.fromtimestamp(epoch_s, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso_utc(text: str) -> float:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()


def aggregate_id(store: str, window_start: float, window_s: int, kind: str = AGGREGATE_KIND) -> str:
    """Deterministic id of an aggregate: the same window always gets the same id, so a
    receiver de-duplicates redeliveries by it."""
    stamp = datetime.fromtimestamp(window_start, UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{store}/{stamp}/{window_s}/{kind}"
