"""Options of a link field: which records it may point at (`filter`), what it copies from the
chosen record (`fetch`) and which fields tell records with the same title apart (`display`).

    contact: {type: link, to: contact, filter: {customer: customer}}       # same customer as here
    product: {type: link, to: product, filter: {active: true}, fetch: {unit_price: price},
              display: [code, spec]}

A filter value that is a name is a field of this record (of the same row, for a child entity);
`true`, `false`, a number or `{value: ...}` is a constant. An empty source field leaves its
condition out. The store checks filters on every write: this module connects to its
`record_created` / `record_updated` signals, which run inside the write's transaction, so a
refused value rolls the whole write back (ValidationFailed naming the field, nothing saved).
A link or a source that did not change is not checked again (old data stays editable).
`fill()` copies fetched values into a new record's input before the store sees it (computed
fields then use them); the UI does the same live in the form.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

import sqlalchemy as sa

from . import events, values
from .errors import EngineError, Problem, ValidationFailed
from .model import Entity, Field, label_of

TEXT_KINDS = frozenset({"string", "text", "email", "phone", "url", "autonumber"})
NUMBER_KINDS = frozenset({"decimal", "money"})


@dataclass(frozen=True)
class LinkFilter:
    field: str                 # a field of the linked entity
    source: str | None = None  # a field of this record whose value it must equal …
    value: object = None       # … or this constant


def field_keys(raw: dict) -> dict:
    """The Field keyword arguments of a field's `filter`, `fetch` and `display` (for the loader)."""
    out = {}
    if raw.get("filter"):
        out["filter"] = tuple(
            LinkFilter(k, source=v) if isinstance(v, str) else
            LinkFilter(k, value=v["value"] if isinstance(v, dict) else v) for k, v in raw["filter"].items())
    if raw.get("fetch"):
        out["fetch"] = tuple((k, v) for k, v in raw["fetch"].items())
    if raw.get("display"):
        out["display"] = tuple(raw["display"])
    return out


# ---- the config checker -------------------------------------------------------------------
def _kind(f: Field) -> str:
    t = f.value_type
    if t in TEXT_KINDS:
        return "text"
    if t in NUMBER_KINDS:
        return "number"
    if t == "link":
        return f"link to {f.to}"
    return t


def check(entities: dict, docs_by_id: dict) -> list[Problem]:
    """Problems of every link's filter, fetch and display, naming the file and the key path."""
    from .schemas import suggest
    out: list[Problem] = []
    for e in entities.values():
        doc = docs_by_id.get(("entity", e.id))
        for f in e.user_fields:
            if not (f.filter or f.fetch or f.display):
                continue
            p = ("fields", f.id)

            def add(path, message):
                out.append(doc.problem(path, message) if doc is not None else
                           Problem(e.file or e.id, None, None, ".".join(map(str, path)), message))
            if f.type != "link":
                for key in ("filter", "fetch", "display"):
                    if getattr(f, key):
                        add(p + (key,), f"{key!r} applies to link fields only, not to a {f.type} field")
                continue
            target = entities.get(f.to)
            if target is None:
                continue  # the link itself is reported
            for c in f.filter:
                path = p + ("filter", c.field)
                tf = target.fields.get(c.field)
                if tf is None or not tf.stored:
                    add(path, f"{c.field!r} is not a field of {target.id}{suggest(c.field, list(target.fields))}")
                    continue
                if c.source is not None:
                    sf = e.fields.get(c.source)
                    if sf is None or not sf.stored:
                        add(path, f"{c.source!r} is not a field of {e.id}{suggest(c.source, list(e.fields))}; "
                                  f"write a constant as {{value: {c.source}}}")
                    elif sf.id == f.id:
                        add(path, "a link cannot filter by its own value")
                    elif _kind(sf) != _kind(tf):
                        add(path, f"{e.id}.{sf.id} ({_kind(sf)}) cannot be compared with {target.id}.{tf.id} "
                                  f"({_kind(tf)})")
                else:
                    try:
                        if values.coerce(tf, c.value) is None:
                            raise ValueError("an empty value")
                    except ValueError as err:
                        add(path, f"{c.value!r} is not a value of {target.id}.{tf.id} ({tf.value_type}): {err}")
            for dst, src in f.fetch:
                path = p + ("fetch", dst)
                df, sf = e.fields.get(dst), target.fields.get(src)
                if df is None:
                    add(path, f"{dst!r} is not a field of {e.id}{suggest(dst, list(e.fields))}")
                elif not df.writable or df.type == "table" or df.id == f.id:
                    add(path, f"{dst!r} cannot be filled: it is {'computed' if df.computed else 'not editable'}")
                    df = None
                if sf is None or not sf.stored:
                    add(path, f"{src!r} is not a field of {target.id}{suggest(src, list(target.fields))}")
                elif df is not None and _kind(df) != _kind(sf):
                    add(path, f"fetches {target.id}.{src} ({_kind(sf)}) into {e.id}.{dst} ({_kind(df)}): "
                              f"the types differ")
            for i, name in enumerate(f.display):
                df = target.fields.get(name)
                if df is None or not df.stored:
                    add(p + ("display", i), f"{name!r} is not a field of {target.id}"
                                            f"{suggest(name, list(target.fields))}")
    return out


# ---- conditions -------------------------------------------------------------------------------
def conditions(f: Field, get) -> list[tuple[str, object]]:
    """[(field of the linked entity, required value)] of a link's filter; `get(source field id)`
    returns this record's value (None: the condition is left out)."""
    out = []
    for c in f.filter:
        v = c.value if c.source is None else get(c.source)
        if not values.empty(v):
            out.append((c.field, v))
    return out


def _same(tf: Field, want, got) -> bool:
    try:
        want = values.coerce(tf, want)
    except ValueError:
        return False
    if isinstance(want, Decimal) or isinstance(got, Decimal):
        try:
            return Decimal(str(want)) == Decimal(str(got))
        except ArithmeticError:
            return False
    return want == got


MESSAGES = {  # (en, zh) when the value must equal a field here / a constant
    "source": ("{title} cannot be chosen here: its {field} must be the same as this record's {want}",
               "不能选择「{title}」：其{field}须与本记录的{want}一致"),
    "value": ("{title} cannot be chosen here: its {field} must be {want}", "不能选择「{title}」：其{field}须为{want}"),
}


def refusal(store, conn, entity: Entity, f: Field, record: dict, lang: str) -> str | None:
    """Why the record's value of link `f` breaks its filter (None when it satisfies it)."""
    rid = record.get(f.id)
    conds = conditions(f, lambda s: record.get(s))
    if rid is None or not conds:
        return None
    target = store.config.entities[f.to]
    t = store.table(target)
    row = conn.execute(sa.select(t).where(t.c.id == rid)).mappings().first()
    if row is None:
        return None  # a missing link is the store's own error
    zh = lang.startswith("zh")
    for fid, want in conds:
        tf = target.fields[fid]
        if _same(tf, want, row.get(fid)):
            continue
        c = next(x for x in f.filter if x.field == fid)
        if c.source is not None:
            kind, want = "source", entity.fields[c.source].label_text(lang)
        else:
            kind, want = "value", _constant_text(tf, c.value, lang)
        return MESSAGES[kind][1 if zh else 0].format(title=store.title(target, row),
                                                     field=tf.label_text(lang), want=want)
    return None


def _constant_text(tf: Field, v, lang: str) -> str:
    if isinstance(v, bool):
        return ("是" if v else "否") if lang.startswith("zh") else ("yes" if v else "no")
    for o in tf.options:
        if o.value == v:
            return label_of(o.label, lang, o.value)
    return str(v)


def _changed(f: Field, now: dict, before: dict | None) -> bool:
    if before is None:
        return True
    keys = [f.id] + [c.source for c in f.filter if c.source]
    return any(now.get(k) != before.get(k) for k in keys)


def record_errors(store, conn, entity: Entity, record: dict, before: dict | None, lang: str) -> dict:
    """{field or table.row.field: message} of every changed link that breaks its filter."""
    errors = {}
    for f in entity.user_fields:
        if f.filter and _changed(f, record, before) and (m := refusal(store, conn, entity, f, record, lang)):
            errors[f.id] = m
    for tf in entity.table_fields:
        child = store.config.entities[tf.of]
        links = [cf for cf in child.user_fields if cf.filter]
        if not links:
            continue
        old_rows = (before or {}).get(tf.id) or []
        for i, row in enumerate(record.get(tf.id) or []):
            for cf in links:
                if any(not _changed(cf, row, old) for old in old_rows):
                    continue
                if (m := refusal(store, conn, child, cf, row, lang)):
                    errors[f"{tf.id}.{i}.{cf.id}"] = m
    return errors


def _on_write(sender, conn=None, store=None, record=None, before=None, actor=None, **_kw):
    entity = store.config.entities.get(sender) if store is not None else None
    if entity is None or record is None:
        return
    has_filter = any(f.filter for f in entity.user_fields) or any(
        cf.filter for tf in entity.table_fields for cf in store.config.entities[tf.of].user_fields)
    if not has_filter:
        return
    errors = record_errors(store, conn, entity, record, before, getattr(actor, "language", None) or "en")
    if errors:
        raise ValidationFailed(errors)


events.record_created.connect(_on_write, priority=5)
events.record_updated.connect(_on_write, priority=5)


# ---- fetch ------------------------------------------------------------------------------------
def as_input(v):
    """A stored value as the store accepts it back in any mode (JSON-safe)."""
    if isinstance(v, Decimal):
        return str(v)
    if isinstance(v, (dt.date, dt.datetime)):
        return v.isoformat()
    return v


def fetched(store, f: Field, rid, actor, hidden=frozenset()) -> dict:
    """{field here: value} that link `f` copies from record `rid` (what the actor may read of it)."""
    if not f.fetch or values.empty(rid):
        return {}
    try:
        rec = store.get(f.to, int(rid), actor)
    except (EngineError, ValueError, TypeError):
        return {}
    return {dst: rec[src] for dst, src in f.fetch if src in rec and dst not in hidden and rec[src] is not None}


def fill(store, entity: Entity, data, actor) -> dict:
    """A new record's input with the fields its links fetch filled in where they are empty
    (top-level fields and child rows), before it goes to the store."""
    if not isinstance(data, dict):
        return data
    hidden = store.hidden_fields(entity, actor)
    cache: dict = {}

    def into(ent, target: dict, hidden_here):
        for f in ent.user_fields:
            if not f.fetch or values.empty(target.get(f.id)):
                continue
            if all(not values.empty(target.get(dst)) for dst, _src in f.fetch):
                continue
            key = (f.id, ent.id, str(target.get(f.id)))
            if key not in cache:
                cache[key] = fetched(store, f, target.get(f.id), actor, hidden_here)
            for dst, v in cache[key].items():
                if values.empty(target.get(dst)):
                    target[dst] = as_input(v)

    data = dict(data)
    into(entity, data, hidden)
    for tf in entity.table_fields:
        rows = data.get(tf.id)
        if isinstance(rows, list):
            child = store.config.entities[tf.of]
            filled = []
            for row in rows:
                if isinstance(row, dict):
                    row = dict(row)
                    into(child, row, frozenset())
                filled.append(row)
            data[tf.id] = filled
    return data
