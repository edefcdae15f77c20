"""What a page needs to show references as words: link titles, user names, state labels."""
from __future__ import annotations

from flask import g

from engine.model import Entity, Field, label_of
from platform_ import directory
from platform_.lookups import rows_by_id

from .web import actor, config, runtime, store


def title_field(entity: Entity) -> str | None:
    """The field a record's title is made of, when the title is exactly one field."""
    if entity.title:
        t = entity.title.strip()
        if t.startswith("{") and t.endswith("}") and t[1:-1] in entity.fields:
            return t[1:-1]
        return None
    return next((k for k in ("name", "title", "subject", "code") if k in entity.fields), None)


def user_names() -> dict:
    cached = g.get("_user_names")
    if cached is None:
        rows = directory.everyone(runtime().engine)
        cached = {r["id"]: (r["full_name"] or r["username"]) for r in rows}
        g._active_users = [(r["id"], r["full_name"] or r["username"], r["username"]) for r in rows if r["active"]]
        g._user_names = cached
    return cached


def active_users() -> list:
    user_names()
    return g._active_users


def link_titles(entity: Entity, records) -> dict:
    """{link field id: {record id: title}} for the link fields of `entity` in `records` (with the
    link's distinguishing `display` fields)."""
    out = {}
    for f in entity.fields.values():
        if f.value_type != "link":
            continue
        ids = {r.get(f.id) for r in records if r.get(f.id) is not None}
        out[f.id] = link_labels(f, ids) if ids else {}
    return out


def display_text(f: Field, rows, lang: str | None = None) -> dict:
    """{id: "title · code · spec"} of linked records (full rows) for link field `f`."""
    from .display import fmt
    from .web import lang as request_lang
    lang = lang or request_lang()
    target = config().entities[f.to]
    hidden = store().hidden_fields(target, actor()) if f.display else frozenset()
    shown = [target.fields[d] for d in f.display if d in target.fields and d not in hidden]
    titles = {d.id: store().titles(d.to, {r.get(d.id) for r in rows if r.get(d.id) is not None})
              for d in shown if d.value_type == "link"}
    out = {}
    for r in rows:
        extra = [fmt(d, r.get(d.id), lang, titles.get(d.id), user_names()) for d in shown]
        out[r["id"]] = " · ".join([store().title(target, r)] + [x for x in extra if x])
    return out


def link_labels(f: Field, ids, who=None) -> dict:
    """{id: label} of the records link field `f` points at: the title, and its `display` fields.
    With `who` (an actor), only records in that actor's row scope."""
    if not f.display:
        return store().titles(f.to, ids, who)
    ids = {int(i) for i in ids if i is not None and str(i).strip().isdigit()}
    if not ids:
        return {}
    return display_text(f, rows_by_id(store(), config().entities[f.to], ids, who))


def state_labels(entity: Entity, lang: str) -> dict:
    sf = entity.state_field
    if sf is None:
        return {}
    wf = config().workflows.get(sf.workflow) or config().workflow_for(entity.id, sf.id)
    if wf is None:
        return {}
    return {sid: label_of(s.label, lang, sid) for sid, s in wf.states.items()}


def state_colors(entity: Entity) -> dict:
    sf = entity.state_field
    wf = config().workflows.get(sf.workflow) if sf is not None else None
    return {sid: s.color for sid, s in wf.states.items()} if wf else {}


class Cells:
    """Formats the fields of many records of one entity with shared lookups (one query per link)."""

    def __init__(self, entity: Entity, records, lang: str):
        from .display import fmt
        self.entity, self.lang, self._fmt = entity, lang, fmt
        self.titles = link_titles(entity, records)
        self.users = user_names()
        self.states = state_labels(entity, lang)
        self.colors = state_colors(entity)

    def text(self, f, record) -> str:
        return self._fmt(f, record.get(f.id), self.lang, self.titles.get(f.id), self.users, self.states)

    def href(self, f, record) -> str | None:
        v = record.get(f.id)
        if v is None:
            return None
        if f.value_type == "link":
            return f"/e/{f.to}/{v}"
        if f.value_type == "attachment" and isinstance(v, dict) and v.get("sha256"):
            return f"/files/{v['sha256']}"
        return None

    def color(self, f, record) -> str | None:
        from .display import option_color
        v = record.get(f.id)
        if f.value_type == "state":
            return self.colors.get(v)
        if f.value_type == "select":
            return option_color(f, v)
        return None
