"""Segments (config/segments/*.yaml): saved rule filters of an entity, in the filter syntax of the
list query and of reports (`field`, `field__op`: value, call expressions such as `today()`
evaluated when used). A segment's members are the list's own query with the segment's filters
added: the reader's permission, row scope and hidden fields apply as on any list, so a
salesperson's "high-value customers" are only the ones they may see.

A file with `grading:` is a grading instead (engine/grading.py); both share the folder and the
`segment:` id, so `?segment=` and `flask crm segments grade` name them alike.
"""
from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from . import grading
from .daily import filter_value
from .db import reading
from .errors import BadRequest, Problem
from .model import norm_label
from .query import ListRequest, parse_args
from .reportspec import check_filter, parse_filters
from .schemas import suggest

PARAM = "segment"


@dataclass(frozen=True)
class Segment:
    id: str
    label: dict
    entity: str
    filters: tuple             # ((field, op, value), ...)
    description: dict | None = None
    file: str = ""
    kind = "segment"


def build(doc):
    raw = doc.data
    if raw.get("grading"):
        return grading.build(doc, parse_filters)
    return Segment(id=raw["segment"], label=norm_label(raw.get("label"), raw["segment"]), entity=raw["entity"],
                   filters=parse_filters(raw.get("filter")), file=doc.file,
                   description=norm_label(raw["description"], "") if raw.get("description") else None)


GRADING_KEYS = ("source", "window_days", "field", "scores", "grades", "cron", "timezone")


def check_all(segments: dict, docs_by_id: dict, entities: dict) -> list[Problem]:
    out = []
    for sid, seg in segments.items():
        doc = docs_by_id[("segment", sid)]
        if isinstance(seg, grading.Grading):
            out += grading.check(seg, doc, entities, check_filter)
            continue
        for key in GRADING_KEYS:
            if key in doc.data:
                out.append(doc.problem((key,), f"{key!r} belongs to a grading (`grading: rfm`); a segment is a "
                                               f"filter"))
        e = entities.get(seg.entity)
        if e is None or e.child:
            out.append(doc.problem(("entity",), f"{seg.entity!r} is not an entity{suggest(seg.entity, list(entities))}"))
            continue
        if not seg.filters:
            out.append(doc.problem(("filter",) if "filter" in doc.data else ("segment",),
                                   "a segment needs `filter:` (field: value, field__op: value)"))
        for name, op, value in seg.filters:
            out += check_filter(doc, ("filter", name if op == "eq" else f"{name}__{op}"), e, name, op, value)
    return out


def of_entity(config, entity_id: str) -> list[Segment]:
    return [s for s in getattr(config, "segments", {}).values() if isinstance(s, Segment) and s.entity == entity_id]


def get(config, entity, name: str) -> Segment:
    """The segment `name` of `entity`; 400 naming the segments there are otherwise."""
    seg = getattr(config, "segments", {}).get(name)
    if isinstance(seg, Segment) and seg.entity == entity.id:
        return seg
    have = [s.id for s in of_entity(config, entity.id)]
    if isinstance(seg, grading.Grading):
        why = f"{name!r} is a grading (it writes {seg.entity}.{seg.field}), not a segment; filter by {seg.field}"
    elif seg is not None:
        why = f"the segment {name!r} is a segment of {seg.entity}, not of {entity.id}"
    else:
        why = f"unknown segment {name!r}{suggest(name, have)}"
    raise BadRequest(f"{why}. The segments of {entity.id} are: {', '.join(have) or 'none'}.")


def filters(config, entity, name: str, actor) -> list:
    """The segment's filters as list filters [(field, op, text)], call expressions evaluated now."""
    seg = get(config, entity, name)
    return [(f, op, filter_value(v, actor.id if actor else None)) for f, op, v in seg.filters]


def list_request(config, entity, args, actor) -> ListRequest:
    """`engine.query.parse_args`, plus `?segment=<id>`: the segment's filters join those asked for
    (an entity with a field called `segment` keeps it as a plain filter)."""
    name = None
    if PARAM in args and PARAM not in entity.fields:
        args = args.copy()
        name = (args.pop(PARAM) or "").strip() or None
    req = parse_args(entity, args)
    if name:
        req.filters += filters(config, entity, name, actor)
    return req


def count(store, name: str, actor, entity_id: str | None = None) -> int:
    """How many records of the segment the actor may see (one COUNT under the list's WHERE)."""
    seg = getattr(store.config, "segments", {}).get(name)
    eid = entity_id or (seg.entity if seg is not None else None)
    if eid is None or eid not in store.config.entities:
        raise BadRequest(f"unknown segment {name!r}")
    entity = store.entity(eid)
    req = ListRequest(filters=filters(store.config, entity, name, actor), per_page=1)
    t = store.table(entity)
    conds, _hidden = store.list_conditions(entity, t, req, actor)
    with reading(store.engine) as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(t).where(*conds)).scalar_one()
