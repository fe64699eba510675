"""k-anonymity of published aggregates: suppress small cells, and check before sending.

Which fields count visits is said once, in the contract's JSON schema
(``sync/schemas/aggregate.schema.json``), not in a second list here:

- ``x-visit-count``: an integer count of visits (or people). Published only if >= k,
  else null. Zero is a count below k too: "nobody in the window had trait X" is
  also a disclosure about everybody.
- ``x-derived-from``: a figure computed from counts (a mean, a percentile, a rate);
  null whenever one of them is null. Names are sibling fields, or ``/a/b``
  pointers from the message root.
- ``x-drop-when-null``: array items whose named count is null are left out whole.

:func:`suppress` applies the rules; :func:`assert_k_anonymous` checks them
independently on the exact bytes about to leave the box (the publish path calls it
on every message) and raises :class:`PrivacyError` on any violation.
"""

from __future__ import annotations

import copy
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

from sync.contract import schema
from sync.errors import PrivacyError

MIN_K = 2


def _resolve(node: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    """Merge a ``$ref`` (local ``#/$defs/...`` only) with its sibling keywords."""
    while "$ref" in node:
        target: Any = root
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = {**target, **{key: value for key, value in node.items() if key != "$ref"}}
    return node


def _objects(
    node: dict[str, Any], instance: Any, root: dict[str, Any], path: str = ""
) -> Iterator[tuple[str, dict[str, Any], dict[str, Any]]]:
    """Yield ``(path, object, its resolved schema)`` for every object in ``instance``,
    parents before children."""
    node = _resolve(node, root)
    if isinstance(instance, dict) and "properties" in node:
        yield path, instance, node
        for key, child in node["properties"].items():
            if key in instance:
                yield from _objects(child, instance[key], root, f"{path}/{key}")
    elif isinstance(instance, list) and "items" in node:
        for index, item in enumerate(instance):
            yield from _objects(node["items"], item, root, f"{path}/{index}")


def _arrays(
    node: dict[str, Any], instance: Any, root: dict[str, Any]
) -> Iterator[tuple[list[Any], dict[str, Any]]]:
    """Yield ``(array, resolved item schema)`` for every array in ``instance``."""
    node = _resolve(node, root)
    if isinstance(instance, dict) and "properties" in node:
        for key, child in node["properties"].items():
            if key in instance:
                yield from _arrays(child, instance[key], root)
    elif isinstance(instance, list) and "items" in node:
        yield instance, _resolve(node["items"], root)
        for item in instance:
            yield from _arrays(node["items"], item, root)


def _fields(
    message: dict[str, Any], keyword: str
) -> Iterator[tuple[str, dict[str, Any], str, dict[str, Any]]]:
    """Yield ``(path, object, key, field schema)`` for every present field carrying ``keyword``."""
    root = schema("aggregate")
    for path, obj, node in _objects(root, message, root):
        for key, child in node["properties"].items():
            spec = _resolve(child, root)
            if keyword in spec and key in obj:
                yield f"{path}/{key}", obj, key, spec


def _pointer(message: dict[str, Any], pointer: str) -> Any:
    value: Any = message
    for part in pointer.strip("/").split("/"):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def _bases_null(message: dict[str, Any], obj: dict[str, Any], bases: list[str]) -> bool:
    return any(
        (_pointer(message, base) if base.startswith("/") else obj.get(base)) is None
        for base in bases
    )


def _section(path: str) -> str:
    return path.strip("/").split("/")[0]


def suppress(full: dict[str, Any], k: int) -> dict[str, Any]:
    """The publishable form of an exact message: every visit count below ``k`` nulled,
    figures derived from it nulled, emptied cells dropped, and the number of
    suppressed cells per section recorded in ``suppressed``. ``full`` is not modified.

    Applying it again with a larger k tightens an already suppressed message.
    """
    if k < MIN_K:
        raise PrivacyError(f"k must be at least {MIN_K}, got {k}")
    message = copy.deepcopy(full)
    counts: dict[str, int] = defaultdict(int, message.get("suppressed") or {})
    for path, obj, key, _ in list(_fields(message, "x-visit-count")):
        value = obj[key]
        if value is not None and value < k:
            obj[key] = None
            counts[_section(path)] += 1
    root = schema("aggregate")
    for array, item_schema in list(_arrays(root, message, root)):
        field = item_schema.get("x-drop-when-null")
        if field:
            array[:] = [item for item in array if item.get(field) is not None]
    for _, obj, key, spec in list(_fields(message, "x-derived-from")):
        if _bases_null(message, obj, spec["x-derived-from"]):
            obj[key] = None
    message["k"] = max(k, message.get("k") or 0)
    message["suppressed"] = {
        section: counts[section] for section in sorted(counts) if counts[section]
    }
    return message


def violations(message: dict[str, Any], k: int) -> list[str]:
    """Every way ``message`` breaks k-anonymity at ``k``, as ``/path: reason`` strings."""
    problems = []
    if k < MIN_K:
        problems.append(f"k={k} is below the floor of {MIN_K}")
    if not isinstance(message.get("k"), int) or message["k"] < k:
        problems.append(f"/k: message claims k={message.get('k')!r}, the box enforces {k}")
    for path, obj, key, _ in _fields(message, "x-visit-count"):
        value = obj[key]
        if value is None:
            continue
        if not isinstance(value, int) or isinstance(value, bool) or value < k:
            problems.append(f"{path}: counts {value!r} visits, fewer than k={k}")
    for path, obj, key, spec in _fields(message, "x-derived-from"):
        if obj[key] is not None and _bases_null(message, obj, spec["x-derived-from"]):
            problems.append(f"{path}: derived from a suppressed count but published")
    return problems


def assert_k_anonymous(message: dict[str, Any], k: int) -> None:
    """Raise :class:`PrivacyError` unless every visit-counting cell of ``message`` is >= k.

    This is the last check before bytes leave the box.
    """
    problems = violations(message, k)
    if problems:
        shown = "; ".join(problems[:5]) + (
            f"; and {len(problems) - 5} more" if len(problems) > 5 else ""
        )
        raise PrivacyError(f"aggregate {message.get('id')!r} is not {k}-anonymous: {shown}")
