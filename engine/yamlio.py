"""Read YAML keeping each node's position, rejecting duplicate keys, with strict booleans.

PyYAML silently keeps the last of two equal keys and reads `on`, `no`, `yes` as booleans (YAML
1.1); a state called `on` would become True. Here only `true`/`false` are booleans, and a
duplicate key is an error with its line.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import yaml

from .errors import Problem


class StrictLoader(yaml.SafeLoader):
    pass


# Replace YAML 1.1 booleans (yes/no/on/off/...) with exactly true/false.
StrictLoader.yaml_implicit_resolvers = {
    k: [(tag, rx) for tag, rx in v if tag != "tag:yaml.org,2002:bool"]
    for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
StrictLoader.add_implicit_resolver("tag:yaml.org,2002:bool", re.compile(r"^(?:true|false)$"), list("tf"))

# The same rules over libyaml's C parser when PyYAML has it (parsing a large config 5-10× faster).
if getattr(yaml, "__with_libyaml__", False):
    class _StrictCLoader(yaml.CSafeLoader):
        pass
    _StrictCLoader.yaml_implicit_resolvers = StrictLoader.yaml_implicit_resolvers
    _Parser = _StrictCLoader
else:                                     # pragma: no cover — PyYAML built without libyaml
    _Parser = StrictLoader


Path = tuple  # a document path: ("fields", "phone", "type")


@dataclass
class Document:
    file: str
    data: object
    positions: dict  # Path -> (line, col), 1-based

    def where(self, path: Path) -> tuple[int | None, int | None]:
        path = tuple(path)
        while path:
            if path in self.positions:
                return self.positions[path]
            path = path[:-1]
        return self.positions.get((), (1, 1))

    def problem(self, path: Path, message: str) -> Problem:
        line, col = self.where(path)
        return Problem(self.file, line, col, ".".join(str(p) for p in path), message)


def load(text: str, file: str) -> tuple[Document | None, list[Problem]]:
    """Parse one YAML document. Returns (document or None, problems)."""
    problems: list[Problem] = []
    try:
        loader = _Parser(text)
        try:
            node = loader.get_single_node()
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = mark.line + 1 if mark else None
        col = mark.column + 1 if mark else None
        return None, [Problem(file, line, col, "", f"YAML syntax error: {e.problem or e}")]
    if node is None:
        return None, [Problem(file, 1, 1, "", "the file is empty")]
    positions: dict = {}
    constructor = StrictLoader("")

    def build(n, path):
        positions[path] = (n.start_mark.line + 1, n.start_mark.column + 1)
        if isinstance(n, yaml.MappingNode):
            out = {}
            for k_node, v_node in n.value:
                key = constructor.construct_object(k_node, deep=True)
                if not isinstance(key, (str, int, float, bool)) or key is None:
                    problems.append(Problem(file, k_node.start_mark.line + 1, k_node.start_mark.column + 1,
                                            ".".join(map(str, path)), f"a key must be a plain word, not {key!r}"))
                    continue
                key = str(key) if not isinstance(key, bool) else key
                if key in out:
                    first = positions.get(path + (key,), (None, None))[0]
                    problems.append(Problem(file, k_node.start_mark.line + 1, k_node.start_mark.column + 1,
                                            ".".join(map(str, path + (key,))),
                                            f"duplicate key {key!r} (first defined on line {first})"))
                    continue
                positions[path + (key,)] = (k_node.start_mark.line + 1, k_node.start_mark.column + 1)
                out[key] = build(v_node, path + (key,))
                # keep the key's own line for the entry itself; values nested below have their own
                positions[path + (key,)] = (k_node.start_mark.line + 1, k_node.start_mark.column + 1)
            return out
        if isinstance(n, yaml.SequenceNode):
            return [build(item, path + (i,)) for i, item in enumerate(n.value)]
        return constructor.construct_object(n, deep=True)

    try:
        data = build(node, ())
    except yaml.YAMLError as e:
        return None, [Problem(file, None, None, "", f"YAML error: {e}")]
    return Document(file, data, positions), problems
