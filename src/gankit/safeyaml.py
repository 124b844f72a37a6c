"""YAML from users (config files, run folders' config.yaml, --set overrides), parsed safely.

`load` is yaml.safe_load with limits checked while composing, before any Python object is built: an
alias bomb ("billion laughs": a few hundred bytes that expand to gigabytes), an alias to a node that
contains it, and deep nesting raise YAMLLimit.
"""
from __future__ import annotations

import yaml

MAX_NODES, MAX_DEPTH = 100_000, 32


class YAMLLimit(yaml.YAMLError):
    """A YAML document over the limits; its message says which."""


class LimitedLoader(yaml.SafeLoader):
    """SafeLoader tracking each node's size with aliases expanded (what building or printing it would
    cost) and the nesting depth."""

    def __init__(self, stream):
        super().__init__(stream)
        self._sizes: dict[int, int] = {}  # id(node) -> values in it, aliases expanded
        self._depth = 0

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            node = super().compose_node(parent, index)
            if id(node) not in self._sizes:
                raise YAMLLimit("an alias (*name) refers to a node that contains it")
            return node
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise YAMLLimit(f"it is nested more than {MAX_DEPTH} levels deep")
        node = super().compose_node(parent, index)
        self._depth -= 1
        kids = node.value if isinstance(node, yaml.SequenceNode) else (
            [n for pair in node.value for n in pair] if isinstance(node, yaml.MappingNode) else [])
        size = 1 + sum(self._sizes[id(k)] for k in kids)
        if size > MAX_NODES:
            raise YAMLLimit(f"it expands to more than {MAX_NODES} values (through anchors &name and aliases *name)")
        self._sizes[id(node)] = size
        return node


def load(text: str):
    """yaml.safe_load(text) within the limits; raises YAMLLimit or another yaml.YAMLError."""
    return yaml.load(text, Loader=LimitedLoader)  # a SafeLoader: builds plain data only
