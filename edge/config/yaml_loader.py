"""The YAML loader of every config file: PyYAML's safe loader, refusing duplicate keys.

PyYAML keeps the last of two equal keys in a mapping without a word, so a second
``name:`` under ``site:`` silently replaced the first. YAML 1.2 says keys are unique;
:class:`UniqueKeyLoader` holds to that and names the key and both lines.
"""

from __future__ import annotations

from typing import Any

import yaml

MERGE_TAG = "tag:yaml.org,2002:merge"


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


class UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses a mapping with the same key twice.

    Use as ``yaml.load(text, Loader=UniqueKeyLoader)`` or
    ``yaml.compose(text, Loader=UniqueKeyLoader)``.
    """

    def get_single_node(self) -> yaml.Node | None:
        node = super().get_single_node()
        check_unique_keys(node)
        return node
