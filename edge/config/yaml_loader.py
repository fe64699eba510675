"""The YAML loader of every config file: PyYAML's safe loader, refusing duplicate keys
and hostile documents.

PyYAML keeps the last of two equal keys in a mapping without a word, so a second
``name:`` under ``site:`` silently replaced the first. YAML 1.2 says keys are unique;
:class:`UniqueKeyLoader` holds to that and names the key and both lines.

It also refuses, at the line that causes it, what would exhaust the box instead of
failing: aliases that expand past :data:`MAX_NODES` values (a 430-byte "billion
laughs" file took 27 s and 3.4 GB before a MemoryError), nesting deeper than
:data:`MAX_DEPTH` (a RecursionError), and integers longer than Python converts (a
ValueError). Every one is a ``yaml.MarkedYAMLError``, reported like a syntax error.
"""

from __future__ import annotations

import sys
from typing import Any

import yaml

MERGE_TAG = "tag:yaml.org,2002:merge"
# Values (keys, scalars, lists, mappings) in a document once its aliases are expanded.
# The shipped site and segment spec have under 400; the budget keeps every later walk
# (line index, secrets, validation) well under a second and a few MB.
MAX_NODES = 20_000
# Nesting, aliases expanded. The shipped files nest 7 deep; every walk of a document
# recurses, so this also keeps them far from Python's recursion limit.
MAX_DEPTH = 32


def format_key_path(path: tuple[Any, ...]) -> str:
    """``("cameras", 0, "source")`` as ``cameras[0].source``."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def check_unique_keys(node: yaml.Node | None, path: tuple[Any, ...] = ()) -> None:
    """Raise a ``yaml.MarkedYAMLError`` at the second of two equal keys of a mapping."""
    seen_nodes: set[int] = set()

    def walk(node: yaml.Node, path: tuple[Any, ...]) -> None:
        if id(node) in seen_nodes:  # an alias: already checked (and may be recursive)
            return
        seen_nodes.add(id(node))
        if isinstance(node, yaml.MappingNode):
            first_lines: dict[tuple[str, str], int] = {}
            for key_node, value_node in node.value:
                if isinstance(key_node, yaml.ScalarNode) and key_node.tag != MERGE_TAG:
                    key = (key_node.tag, key_node.value)
                    line = key_node.start_mark.line + 1
                    if key in first_lines:
                        raise yaml.constructor.ConstructorError(
                            problem=f"duplicate key {format_key_path((*path, key_node.value))} "
                            f"(first on line {first_lines[key]}); keep one of them",
                            problem_mark=key_node.start_mark,
                        )
                    first_lines[key] = line
                walk(value_node, (*path, key_node.value))
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                walk(item, (*path, index))

    if node is not None:
        walk(node, path)


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return list(node.value) if isinstance(node, yaml.SequenceNode) else []


def _refuse(problem: str, mark: Any) -> yaml.MarkedYAMLError:
    return yaml.composer.ComposerError(problem=problem, problem_mark=mark)


class UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses a mapping with the same key twice, and documents
    past :data:`MAX_NODES` or :data:`MAX_DEPTH` (see the module docstring).

    Use as ``yaml.load(text, Loader=UniqueKeyLoader)`` or
    ``yaml.compose(text, Loader=UniqueKeyLoader)``.
    """

    def __init__(self, stream: Any) -> None:
        super().__init__(stream)
        self._depth = 0
        # id(node) -> (values, depth) of each composed node with its aliases expanded.
        # Shared nodes are counted once per reference without walking them again.
        self._expanded: dict[int, tuple[int, int]] = {}

    def fetch_flow_collection_start(self, TokenClass: Any) -> None:  # noqa: N803 (PyYAML's)
        # Refused as soon as scanned: the scanner's bookkeeping of 5,000 open brackets
        # alone takes seconds, long before the composer sees the depth.
        if self.flow_level >= MAX_DEPTH:
            raise yaml.scanner.ScannerError(
                problem=f"nested more than {MAX_DEPTH} levels deep; a config is far flatter",
                problem_mark=self.get_mark())
        super().fetch_flow_collection_start(TokenClass)

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent):
            node = super().compose_node(parent, index)
            if node is None or id(node) not in self._expanded:  # still being composed
                raise _refuse(f"alias *{event.anchor} refers to a node that contains it; "
                              "a config cannot be recursive", event.start_mark)
            self._check_size(node, event.start_mark, f"alias *{event.anchor}")
            return node
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise _refuse(f"nested more than {MAX_DEPTH} levels deep; a config is far flatter",
                          event.start_mark)
        try:
            node = super().compose_node(parent, index)
        finally:
            self._depth -= 1
        if node is not None:
            children = [self._expanded[id(child)] for child in _children(node)]
            self._expanded[id(node)] = (1 + sum(size for size, _ in children),
                                        1 + max((depth for _, depth in children), default=0))
            self._check_size(node, event.start_mark, "this value")
        return node

    def _check_size(self, node: yaml.Node, mark: Any, what: str) -> None:
        size, depth = self._expanded[id(node)]
        if size > MAX_NODES:
            raise _refuse(f"{what} expands to more than {MAX_NODES:,} values (aliases "
                          "included); a config is far smaller: remove the aliases that repeat "
                          "it", mark)
        if self._depth + depth > MAX_DEPTH:
            raise _refuse(f"{what} nests more than {MAX_DEPTH} levels deep once its aliases "
                          "are expanded; a config is far flatter", mark)

    def get_single_node(self) -> yaml.Node | None:
        node = super().get_single_node()
        check_unique_keys(node)
        return node

    def construct_yaml_int(self, node: yaml.ScalarNode) -> int:
        try:
            return super().construct_yaml_int(node)
        except ValueError:  # longer than sys.get_int_max_str_digits(): no config number is
            raise yaml.constructor.ConstructorError(
                problem=f"an integer of {len(node.value):,} characters; Python reads at "
                f"most {sys.get_int_max_str_digits():,} digits and no setting needs that many",
                problem_mark=node.start_mark) from None


UniqueKeyLoader.add_constructor("tag:yaml.org,2002:int", UniqueKeyLoader.construct_yaml_int)
