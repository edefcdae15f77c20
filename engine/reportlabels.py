"""Words for a report's group values: state and option labels, link titles, user names — so
pages and the API show "Proposal" or "华东", never `proposal` or `7`. One query per column."""
from __future__ import annotations

import sqlalchemy as sa

from .db import reading
from .model import label_of
from .systables import users


def column_label(col, lang: str) -> str:
    return label_of(col.label, lang, col.id)


def _state_labels(config, f, lang):
    wf = config.workflows.get(f.workflow) if f.workflow else None
    wf = wf or config.workflow_for(f.entity, f.id)
    return {sid: label_of(s.label, lang, sid) for sid, s in wf.states.items()} if wf else {}


def value_labels(store, result, lang: str = "en", actor=None) -> dict:
    """{column id: {value: text}} for the group columns of `result` whose values need words."""
    out = {}
    for i, c in enumerate(result.columns):
        if c.kind != "group" or c.field is None or c.bucket:
            continue
        f, vals = c.field, {r[i] for r in result.rows if r[i] is not None}
        t = f.value_type
        if t == "state":
            names = _state_labels(store.config, f, lang)
        elif t == "select":
            names = {o.value: label_of(o.label, lang, o.value) for o in f.options}
        elif t == "boolean":
            names = {True: "是" if lang == "zh" else "Yes", False: "否" if lang == "zh" else "No"}
        elif t == "link" and vals:
            names = store.titles(f.to, vals)
        elif t == "user" and vals:
            with reading(store.engine) as conn:
                rows = conn.execute(sa.select(users.c.id, users.c.username, users.c.full_name)
                                    .where(users.c.id.in_([v for v in vals if isinstance(v, int)]))).all()
            names = {r.id: r.full_name or r.username for r in rows}
        else:
            continue
        out[c.id] = {v: names.get(v, str(v)) for v in vals}
    return out


def none_label(lang: str) -> str:
    return "（空）" if lang == "zh" else "(none)"


def cell_text(result, labels, i, v, lang) -> str:
    """A group value as a person reads it."""
    c = result.columns[i]
    if v is None:
        return none_label(lang)
    return str(labels.get(c.id, {}).get(v, v))
