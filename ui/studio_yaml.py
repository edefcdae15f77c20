"""YAML text in, YAML text out: the edits the studio's designers make to config files.

Designers load a file with the engine's strict YAML reader, change the dict and dump it again
(PyYAML, keys in their order, Chinese kept as is). Comments in an edited file are lost; the raw
editor (/admin/files/...) keeps them. Nothing here names an entity of any pack.
"""
from __future__ import annotations

import os
import re
from functools import lru_cache

import yaml

from engine import schemas, yamlio
from platform_ import configstore

IDENT = re.compile(r"^[a-z][a-z0-9_]{0,47}$")
FIELD_TYPES = ("string", "text", "integer", "decimal", "money", "percent", "boolean", "date", "datetime",
               "email", "phone", "url", "select", "multiselect", "link", "user", "table", "autonumber",
               "attachment", "state")
PROBLEM = re.compile(r"^(?P<path>[^:\s]+\.ya?ml):(?P<line>\d+)(?::(?P<col>\d+))?:\s*(?P<msg>.*)$", re.S)


class EditError(ValueError):
    """A designer edit that cannot be made; `field` names the form input it is about."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.message, self.field = message, field


def workspace(rt, drafts: dict) -> dict:
    """{path: text} of the config folder with the admin's drafts laid over it."""
    files = configstore.read_folder(rt.config_dir)
    for path, text in drafts.items():
        if text is None:
            files.pop(path, None)
        else:
            files[path] = text
    return files


def parse(text: str, path: str = "file.yaml"):
    doc, problems = yamlio.load(text or "", path)
    if problems or doc is None:
        raise EditError("; ".join(str(p) for p in problems) or f"{path} is empty")
    return doc.data


FLOW_WIDTH = 120


class _Dumper(yaml.SafeDumper):
    """Block style for the file's skeleton; a mapping or list below it that fits on one line stays
    on one line (`phone: {type: phone, label: {en: Phone, zh: 电话}}`), as people write these files."""

    root_done = False


def _fits(data) -> bool:
    flow = yaml.safe_dump(data, default_flow_style=True, allow_unicode=True, sort_keys=False, width=10**6).strip()
    return len(flow) <= FLOW_WIDTH and "\n" not in flow


def _style(dumper, data) -> bool:
    if not dumper.root_done:
        dumper.root_done = True
        return False
    return _fits(data)


_Dumper.add_representer(dict, lambda d, data: d.represent_mapping(
    "tag:yaml.org,2002:map", list(data.items()), flow_style=_style(d, data)))
_Dumper.add_representer(list, lambda d, data: d.represent_sequence(
    "tag:yaml.org,2002:seq", data, flow_style=_style(d, data)))


def dump(data) -> str:
    """YAML text of `data`, keys in their order, Chinese as is, short parts on one line."""
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=4096)


def _docs(files: dict):
    for path, text in files.items():
        try:
            data = yaml.load(text, Loader=yamlio.StrictLoader)  # noqa: S506 - the engine's safe loader
        except yaml.YAMLError:
            continue
        if isinstance(data, dict):
            yield path, data


@lru_cache(maxsize=None)
def _keys(kind: str) -> frozenset:
    return frozenset(schemas.schema(kind)["properties"])


def is_kind(data: dict, kind: str) -> bool:
    """Whether a parsed file is an entity, form or workflow: its id key, its body, only that kind's keys
    (an SLA or a report also names an `entity`)."""
    body = {"entity": ("fields", dict), "form": ("sections", list), "workflow": ("states", dict)}[kind]
    return (isinstance(data.get(kind), str) and isinstance(data.get(body[0]), body[1])
            and set(data) <= _keys(kind))


def find(files: dict, kind: str, ident: str) -> str | None:
    """The path of the entity, form (by its entity) or workflow file called `ident`."""
    key = "entity" if kind == "form" else kind
    for path, data in _docs(files):
        if is_kind(data, kind) and data.get(key) == ident:
            return path
    return None


def listing(files: dict, kind: str) -> list[tuple[str, str, dict]]:
    """[(id, path, data)] of every entity or workflow file, by id."""
    return sorted(((data[kind], path, data) for path, data in _docs(files) if is_kind(data, kind)),
                  key=lambda t: (t[0], t[1]))


def problem_rows(problems: list[str]) -> list[dict]:
    """Plan problems as {path, line, col, message} (line None when the problem names no place)."""
    rows = []
    for p in problems:
        m = PROBLEM.match(str(p))
        if m:
            rows.append({"path": m["path"], "line": int(m["line"]), "col": m["col"], "message": m["msg"]})
        else:
            rows.append({"path": None, "line": None, "col": None, "message": str(p)})
    return rows


def label(en: str, zh: str, fallback: str) -> dict:
    en, zh = (en or "").strip(), (zh or "").strip()
    out = {"en": en or fallback}
    if zh:
        out["zh"] = zh
    return out


def ident(value: str, what: str, field: str = "id") -> str:
    from flask_babel import gettext as _
    value = (value or "").strip()
    if not IDENT.match(value):
        msg = _("%(what)s “%(value)s” is not valid: use lowercase letters, digits and _, starting with a letter.")
        raise EditError(msg % {"what": what, "value": value}, field)
    return value


def move(seq: list, index: int, delta: int) -> list:
    j = index + delta
    if 0 <= index < len(seq) and 0 <= j < len(seq):
        seq[index], seq[j] = seq[j], seq[index]
    return seq


def move_key(d: dict, key, delta: int) -> dict:
    keys = list(d)
    if key not in d:
        return d
    move(keys, keys.index(key), delta)
    return {k: d[k] for k in keys}


def rel(rt, absolute: str) -> str | None:
    if not absolute:
        return None
    r = os.path.relpath(absolute, rt.config_dir)
    return None if r.startswith("..") else r.replace(os.sep, "/")
