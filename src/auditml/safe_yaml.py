"""YAML for config files: PyYAML's safe loader, with the limits a careless or hostile file needs.

``yaml.safe_load`` already refuses Python objects, but it is not safe in every other way:

- it composes nodes recursively, so ~500 levels of nesting end in a ``RecursionError``;
- aliases share one object per anchor, so a 481-byte "billion laughs" file loads instantly into
  a structure that expands to 10^9 values as soon as anything walks it (a ``repr`` in an error
  message took 5.7 GB of memory);
- a key given twice in one mapping silently keeps the last value.

:func:`load_yaml` refuses each of these with a :class:`RefusedYaml` naming the line.
"""

from __future__ import annotations

from typing import Any

import yaml
from yaml.events import AliasEvent
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

# A full config is about four levels deep and a few hundred values; these limits leave a wide
# margin for per-attack settings while staying far from Python's recursion limit and from
# structures whose walk (validation, error messages) costs noticeable time or memory.
MAX_DEPTH = 32
MAX_VALUES = 10_000
MAX_BYTES = 1_000_000

_MERGE_TAG = "tag:yaml.org,2002:merge"


class RefusedYaml(yaml.YAMLError):
    """Valid YAML that a config file may not contain; ``problem`` and ``problem_mark`` as in
    PyYAML's own errors."""

    def __init__(self, problem: str, problem_mark: yaml.Mark | None) -> None:
        super().__init__(problem)
        self.problem, self.problem_mark = problem, problem_mark


class _LimitedLoader(yaml.SafeLoader):
    """SafeLoader that counts nesting depth and alias expansion while composing, and refuses
    duplicate keys while constructing."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0
        # id(node) -> how many values the node stands for once every alias in it is expanded.
        # Composition is linear in the text, so the bomb is caught before anything expands it.
        self._expanded: dict[int, int] = {}

    def compose_node(self, parent: Node | None, index: Any) -> Node:
        mark = self.peek_event().start_mark
        is_alias = self.check_event(AliasEvent)
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise RefusedYaml(f"nested more than {MAX_DEPTH} levels deep", mark)
        try:
            node = super().compose_node(parent, index)
        finally:
            self._depth -= 1
        if is_alias:
            if id(node) not in self._expanded:
                raise RefusedYaml("an alias refers to the value that contains it", mark)
            return node
        size = 1
        if isinstance(node, SequenceNode):
            size += sum(self._expanded[id(child)] for child in node.value)
        elif isinstance(node, MappingNode):
            size += sum(
                self._expanded[id(key)] + self._expanded[id(value)] for key, value in node.value
            )
        if size > MAX_VALUES:
            raise RefusedYaml(
                f"aliases expand this value to {size} values, more than the {MAX_VALUES} a "
                "config may hold",
                mark,
            )
        self._expanded[id(node)] = size
        return node

    def construct_object(self, node: Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep=deep)
        except (ValueError, TypeError, OverflowError) as error:
            # A scalar can match a tag's pattern but not its range (2024-13-45 as a date, an
            # int of 5000 digits); PyYAML then raises a bare error that names no line.
            kind = str(node.tag).rsplit(":", 1)[-1]
            value = node.value if isinstance(node, ScalarNode) else kind
            raise RefusedYaml(
                f"cannot read {_short(value)} as {kind}: {str(error).split(';')[0]}",
                node.start_mark,
            ) from None

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        if isinstance(node, MappingNode):
            first_line: dict[Any, int] = {}
            for key_node, _ in node.value:
                if key_node.tag == _MERGE_TAG:
                    continue  # a merge key's entries may be overridden by explicit ones
                key = self.construct_object(key_node, deep=True)
                try:
                    earlier = first_line.get(key)
                except TypeError:
                    continue  # unhashable: PyYAML's own construction reports it
                if earlier is not None:
                    raise RefusedYaml(
                        f"duplicate key {_short(key)} (first at line {earlier + 1}); keep one",
                        key_node.start_mark,
                    )
                first_line[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep=deep)


def _short(key: Any) -> str:
    """A key as an error quotes it: repr, at most 60 characters."""
    try:
        text = repr(key)
    except ValueError:  # an int too long to print (Python caps int -> str at 4300 digits)
        return f"<int of {key.bit_length()} bits>"
    return text if len(text) <= 60 else text[:60] + "…"


def load_yaml(text: str) -> Any:
    """Parse one YAML document, or raise ``yaml.YAMLError`` (:class:`RefusedYaml` for limits)."""
    if len(text) > MAX_BYTES:
        raise RefusedYaml(
            f"the file has {len(text)} characters; a config has at most {MAX_BYTES}", None
        )
    loader = _LimitedLoader(text)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()
