"""`extends:` files: a pack adds fields, rules and indexes to another pack's entity, or states and
transitions to another pack's workflow, without copying its file (docs/config-reference.md §7).

The additions are merged into the extended file's document before the schema check, so the result
is checked like one file; a name the extended file already has is an error, never an override.
"""
from __future__ import annotations

from .schemas import suggest

ADDS = {"entity": {"fields": dict, "rules": list, "indexes": list},
        "workflow": {"states": dict, "transitions": dict}}


def merge(parsed: list, problems: list) -> list:
    """[(kind, Document)] with every extension merged into the document it extends (and dropped)."""
    bases = {(kind, doc.data.get(kind)): doc for kind, doc in parsed if "extends" not in doc.data}
    out = []
    for kind, doc in parsed:
        if kind not in ADDS or "extends" not in doc.data:
            out.append((kind, doc))
            continue
        target = doc.data["extends"]
        base = bases.get((kind, target)) if isinstance(target, str) else None
        if base is None:
            names = [k[1] for k in bases if k[0] == kind and isinstance(k[1], str)]
            problems.append(doc.problem(("extends",), f"extends {kind} {target!r}, which no file defines"
                                                      f"{suggest(str(target), names)}"))
            continue
        for key in doc.data:
            if key != "extends" and key not in ADDS[kind]:
                problems.append(doc.problem((key,), f"an extension of a {kind} may only add "
                                                    f"{', '.join(ADDS[kind])}; {key!r} is not one of them"))
        for key, shape in ADDS[kind].items():
            add = doc.data.get(key)
            if add is None:
                continue
            if not isinstance(add, shape):
                problems.append(doc.problem((key,), f"{key} must be a {'mapping' if shape is dict else 'list'}"))
                continue
            have = base.data.setdefault(key, {} if shape is dict else [])
            if shape is list:
                have.extend(add)
                continue
            for name, value in add.items():
                if name in have:
                    problems.append(doc.problem((key, name), f"{kind} {target} already has {name!r} "
                                                             f"(in {base.file}); an extension only adds"))
                else:
                    have[name] = value
    return out
