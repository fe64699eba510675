"""k-anonymity of published aggregates: suppress small cells, and check before sending.

Which fields count visits is said once, in the contract's JSON schema
(``sync/schemas/aggregate.schema.json``), not in a second list here:

- ``x-visit-count``: an integer count of visits (or people). Published only if >= k,
  else null. Zero is a count below k too: "nobody in the window had trait X" is
  also a disclosure about everybody.
- ``x-soft-count``: a sum of memberships (a soft count of visits, such as the segment
  statistics' ``membership``), under the same rule as ``x-visit-count``.
- ``x-derived-from``: a figure computed from counts (a mean, a percentile, a rate);
  null whenever one of them is null. Names are sibling fields, or ``/a/b``
  pointers from the message root.
- ``x-part-of``: a count that is part of a published total (a sibling field, or a
  ``/a/b`` pointer): it is also withheld when the rest of that total is 1 to k-1
  ("19 of 21 visits went to the till" says 2 did not).
- ``x-exclusive`` (on array items): ``{"count": field, "total": ref}``, or a list of
  them (``segments`` counts visits against ``visits.count`` and buying units against
  ``visits.groups``): no visit (unit) is in two items; once an item's count is
  withheld, what the published items leave of the total must be >= k too, else the
  smallest published item is withheld as well (the rules are in
  :mod:`edge.privacy.small_counts`, which the status page applies too). When the
  total itself is withheld, so is every item's count: their sum would give it back.
  A set may also be a difference, ``{"count": [minuend, subtrahend], "total": [ref,
  ref]}`` (``segments``: ``visits - units``, the people who came with someone, of
  ``/visits/count - /visits/groups``): what the published differences leave of the
  total difference (the people of no clear type or a hidden segment who came with
  someone) must be 0 or >= k, else the smallest published difference's subtrahend
  is withheld too. It comes after the sets of its two counts.
- ``x-drop-when-null``: array items whose named count is null are left out whole.

:func:`suppress` applies the rules; :func:`assert_k_anonymous` checks them
independently on the exact bytes about to leave the box (the publish path calls it
on every message) and raises :class:`PrivacyError` on any violation.
"""

from __future__ import annotations

import copy
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from edge.privacy.small_counts import (
    apart_problem,
    difference_problem,
    is_small,
    residual_problem,
    withheld,
    withheld_apart,
    withheld_differences,
)
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
    node: dict[str, Any], instance: Any, root: dict[str, Any], path: str = ""
) -> Iterator[tuple[str, list[Any], dict[str, Any]]]:
    """Yield ``(path, array, resolved item schema)`` for every array in ``instance``."""
    node = _resolve(node, root)
    if isinstance(instance, dict) and "properties" in node:
        for key, child in node["properties"].items():
            if key in instance:
                yield from _arrays(child, instance[key], root, f"{path}/{key}")
    elif isinstance(instance, list) and "items" in node:
        yield path, instance, _resolve(node["items"], root)
        for index, item in enumerate(instance):
            yield from _arrays(node["items"], item, root, f"{path}/{index}")


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


def _lookup(message: dict[str, Any], obj: dict[str, Any], ref: str) -> Any:
    """A sibling field of ``obj``, or a ``/a/b`` pointer from the message root."""
    return _pointer(message, ref) if ref.startswith("/") else obj.get(ref)


def _bases_null(message: dict[str, Any], obj: dict[str, Any], bases: list[str]) -> bool:
    return any(_lookup(message, obj, base) is None for base in bases)


def _apart_sets(message: dict[str, Any]) -> Iterator[tuple[str, list[Any], str]]:
    """``(path, array, field)`` for every array whose items' ``field`` is marked
    ``x-apart`` (rule 5 of :mod:`edge.privacy.small_counts`)."""
    root = schema("aggregate")
    for path, array, item_schema in _arrays(root, message, root):
        field = item_schema.get("x-apart")
        if field:
            yield path, array, field


@dataclass(frozen=True, slots=True)
class _ExclusiveSet:
    """One set of ``x-exclusive`` cells: the count field of the items of an array, or
    the difference of two (``[minuend, subtrahend]``), against a total (or the same
    difference of two totals; None when one of them is withheld)."""

    path: str
    items: list[dict[str, Any]]
    fields: tuple[str, ...]
    total: Any

    @property
    def difference(self) -> bool:
        return len(self.fields) == 2

    @property
    def withheld_field(self) -> str:
        """The field a withheld cell nulls: the count, or the difference's subtrahend."""
        return self.fields[-1]

    def cell(self, item: dict[str, Any]) -> Any:
        """The item's count (None where withheld), or the difference of its two."""
        values: list[Any] = [item.get(field) for field in self.fields]
        if not all(_is_number(value) for value in values):
            return None
        return values[0] - values[1] if self.difference else values[0]


def _exclusive_sets(message: dict[str, Any]) -> Iterator[_ExclusiveSet]:
    """Every set of exclusive cells in ``message`` (arrays whose items carry the field)."""
    root = schema("aggregate")
    for path, array, item_schema in _arrays(root, message, root):
        specs = item_schema.get("x-exclusive") or []
        for spec in [specs] if isinstance(specs, dict) else specs:
            fields = tuple([spec["count"]] if isinstance(spec["count"], str) else spec["count"])
            refs = [spec["total"]] if isinstance(spec["total"], str) else spec["total"]
            if not array or not any(fields[-1] in item for item in array):
                continue
            totals = [_lookup(message, array[0], ref) for ref in refs]
            total = None if any(value is None for value in totals) else (
                totals[0] - totals[1] if len(totals) == 2 else totals[0])
            yield _ExclusiveSet(path, array, fields, total)


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
    for keyword in ("x-visit-count", "x-soft-count"):
        for path, obj, key, _ in list(_fields(message, keyword)):
            value = obj[key]
            if value is not None and value < k:
                obj[key] = None
                counts[_section(path)] += 1
    for path, obj, key, spec in list(_fields(message, "x-part-of")):
        total = _lookup(message, obj, spec["x-part-of"])
        if obj[key] is not None and withheld({key: obj[key]}, k, total=total):
            obj[key] = None
            counts[_section(path)] += 1
    for path, items, apart in list(_apart_sets(message)):
        values = {str(i): item.get(apart) for i, item in enumerate(items)}
        for name in withheld_apart(values, k):
            items[int(name)][apart] = None
            counts[_section(path)] += 1
    for cells_set in list(_exclusive_sets(message)):
        # In schema order: a difference set comes after the sets of its two counts.
        cells = {str(i): cells_set.cell(item) for i, item in enumerate(cells_set.items)}
        if cells_set.difference:
            hide = withheld_differences(cells, k, total=cells_set.total)
        elif cells_set.total is None:
            hide = set(cells)
        else:
            hide = withheld(cells, k, total=cells_set.total, exclusive=True)
        for name in hide:
            item = cells_set.items[int(name)]
            if item.get(cells_set.withheld_field) is not None:
                item[cells_set.withheld_field] = None
                counts[_section(cells_set.path)] += 1
    root = schema("aggregate")
    for _, array, item_schema in list(_arrays(root, message, root)):
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
    for path, obj, key, _ in _fields(message, "x-soft-count"):
        value = obj[key]
        if value is not None and (not _is_number(value) or value < k):
            problems.append(f"{path}: sums the memberships of {value!r} visits, fewer than k={k}")
    for path, obj, key, spec in _fields(message, "x-part-of"):
        total = _lookup(message, obj, spec["x-part-of"])
        value = obj[key]
        if isinstance(value, int) and isinstance(total, int) and is_small(
            total - value, k, zero_is_small=False
        ):
            problems.append(f"{path}: {total} - {value} = {total - value} visits can be "
                            f"worked out, fewer than k={k}")
    for path, items, field in _apart_sets(message):
        problem = apart_problem([item[field] for item in items
                                 if _is_number(item.get(field))], k)
        if problem:
            problems.append(f"{path}: {field}: {problem}")
    for cells_set in _exclusive_sets(message):
        path, items, field = cells_set.path, cells_set.items, cells_set.withheld_field
        shown = [cell for cell in map(cells_set.cell, items) if cell is not None]
        if cells_set.total is None and shown:
            problems.append(f"{path}: {field} published while their total is withheld")
        elif isinstance(cells_set.total, int) and cells_set.difference:
            problem = difference_problem(shown, cells_set.total, k)
            if problem:
                problems.append(f"{path}: {' - '.join(cells_set.fields)}: {problem}")
        elif isinstance(cells_set.total, int):
            problem = residual_problem(shown, cells_set.total, k,
                                       any_withheld=len(shown) < len(items))
            if problem:
                problems.append(f"{path}: {problem}")
    for path, obj, key, spec in _fields(message, "x-derived-from"):
        if obj[key] is not None and _bases_null(message, obj, spec["x-derived-from"]):
            problems.append(f"{path}: derived from a suppressed count but published")
    return problems


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


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
