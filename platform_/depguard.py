"""Dependency guard (issue 11 part 5): a change that removes or renames an entity, a field or a
workflow state is refused while any file of the folder (forms, rules, workflows, SLAs, automations,
reports, home, access, other packs' files) still uses it — listing every place, not only the first.

It reads the candidate folder as plain YAML (it must work when the new config does not load) and
compares it with the loaded current config. Texts meant for people (labels, messages, help) are
not uses.
"""
from __future__ import annotations

import re
from pathlib import Path

import yaml

PEOPLE_TEXT = {"label", "message", "help", "description", "plural", "placeholder", "when_message", "title_label",
               "en", "zh", "author"}


def _docs(root: Path) -> dict:
    out = {}
    for p in sorted(root.rglob("*.y*ml")):
        rel = p.relative_to(root).as_posix()
        if any(part.startswith(".") for part in p.relative_to(root).parts):
            continue
        try:
            data = yaml.safe_load(p.read_text(encoding="utf-8"))
        except (yaml.YAMLError, OSError, UnicodeDecodeError):
            continue
        if isinstance(data, dict):
            out[rel] = data
    return out


def _walk(node, path=()):
    """(path, string value) of every string in the document except people's texts."""
    if isinstance(node, dict):
        for k, v in node.items():
            if str(k) in PEOPLE_TEXT:
                continue
            yield from _walk(v, path + (str(k),))
            if isinstance(k, str):
                yield path + (k,), k     # a key names something too (form field overrides, set: {...})
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _walk(v, path + (str(i),))
    elif isinstance(node, str):
        yield path, node


def _uses(text: str, name: str) -> bool:
    return text == name or re.search(rf"(?<![\w.'\"]){re.escape(name)}(?![\w'\"])", text) is not None \
        or f"'{name}'" in text or f'"{name}"' in text or f"{{{name}}}" in text


def _places(docs, name, entity=None, skip_file=None, keys=None, exact_only=False):
    out = []
    for rel, data in docs.items():
        if rel == skip_file:
            continue
        if entity is not None and data.get("entity") != entity and data.get("extends") != entity:
            continue
        for path, text in _walk(data):
            if keys is not None and (not path or path[-1] not in keys):
                continue
            if (text == name) if exact_only else _uses(text, name):
                out.append(f"{rel}: {'.'.join(path)}")
    return sorted(set(out))


def removed_in_use(old, staged, files: dict) -> list[str]:
    """Problems for every entity, field or state of `old` (a loaded Config) missing from the
    candidate folder `staged` while something there still names it."""
    root = Path(staged)
    docs = _docs(root)
    new_entities = {d["entity"]: (rel, d) for rel, d in docs.items()
                    if rel.startswith("entities/") and isinstance(d.get("entity"), str)}
    new_workflows = {d["workflow"]: (rel, d) for rel, d in docs.items()
                     if rel.startswith("workflows/") and isinstance(d.get("workflow"), str)}
    problems = []
    for eid, e in old.entities.items():
        if eid not in new_entities:
            where = _places(docs, eid, keys={"to", "of", "entity", "extends"}, exact_only=True)
            if where:
                problems.append(f"entity {eid!r} is removed but still used in: " + "; ".join(where))
            continue
        rel, raw = new_entities[eid]
        fields = raw.get("fields") if isinstance(raw.get("fields"), dict) else {}
        renamed = {f.get("renamed_from") for f in fields.values() if isinstance(f, dict)}
        for fid, f in e.fields.items():
            if f.system or fid in fields:
                continue
            where = _places(docs, fid, entity=eid)
            own = {k: v for k, v in raw.items() if k != "fields"}
            own_fields = {k: {kk: vv for kk, vv in v.items() if kk != "renamed_from"}
                          for k, v in fields.items() if isinstance(v, dict)}
            where += _places({rel: {**own, "fields": own_fields}}, fid)
            where = [w for w in where if not w.startswith(f"{rel}: fields.{fid}")]
            verb = "renamed" if fid in renamed else "removed"
            if where:
                problems.append(f"field {eid}.{fid} is {verb} but still used in: " + "; ".join(sorted(set(where))))
    for wid, wf in old.workflows.items():
        if wid not in new_workflows:
            continue
        rel, raw = new_workflows[wid]
        states = raw.get("states") if isinstance(raw.get("states"), dict) else {}
        for sid in wf.states:
            if sid in states:
                continue
            where = _places({rel: {k: v for k, v in raw.items() if k != "states"}}, sid, exact_only=True)
            where += _places({r: d for r, d in docs.items() if r != rel}, sid, entity=wf.entity)
            if where:
                problems.append(f"state {sid!r} of workflow {wid} is removed but still used in: "
                                + "; ".join(sorted(set(where))))
    return problems
