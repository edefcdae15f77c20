"""List queries: filters (`field`, `field__op`), text search, sort and pages as SQLAlchemy expressions.

Values from the request are coerced through the field's type first, so nothing the user typed is
ever formatted into SQL.
"""
from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from . import search, values
from .errors import BadRequest
from .model import Entity
from .schemas import suggest

OPS = ("eq", "ne", "lt", "lte", "gt", "gte", "in", "contains", "isnull")
MAX_PER_PAGE = 500
MAX_SEARCH = 200     # characters of a ?q= search text
COUNT_CAP = 10_000   # a list counts its matches up to here ("10,000+"); `?count=exact` counts them all


@dataclass
class ListRequest:
    filters: list          # [(field, op, raw value)]
    q: str | None = None
    sort: str | None = None
    page: int = 1
    per_page: int = 50
    deleted: bool = False  # the recycle bin
    sla: str | None = None  # ?sla=at_risk|breached|paused|running|met (a filter hook of the automation part)
    exact_count: bool = False  # ?count=exact: count every match, not only up to COUNT_CAP


SLA_FILTERS = ("at_risk", "breached", "paused", "running", "met")


def parse_args(entity: Entity, args, reserved=("q", "sort", "page", "per_page", "deleted", "format")) -> ListRequest:
    """From request args (a mapping of str → str or list) to a ListRequest; 400 on bad input."""
    filters = []
    sla = None
    for key in args:
        raw = args.getlist(key) if hasattr(args, "getlist") else [args[key]]
        if "\x00" in key or any("\x00" in str(v) for v in raw):
            raise BadRequest(f"{key.replace(chr(0), '')[:40]!r} contains a NUL character, which no value may hold")
    if "sla" in args and "sla" not in entity.fields:
        sla = args.get("sla") or None
        if sla is not None and sla not in SLA_FILTERS:
            raise BadRequest(f"unknown SLA filter {sla!r}; use one of {', '.join(SLA_FILTERS)}")
        reserved = (*reserved, "sla")
    exact = False
    if "count" in args and "count" not in entity.fields:
        if args.get("count") not in ("exact", "capped", ""):
            raise BadRequest(f"count must be exact or capped, not {str(args.get('count'))[:20]!r}")
        exact = args.get("count") == "exact"
        reserved = (*reserved, "count")
    for key in args:
        if key in reserved or key.startswith("_"):
            continue
        name, _, op = key.partition("__")
        op = op or "eq"
        if name not in entity.fields or not entity.fields[name].stored:
            raise BadRequest(f"unknown filter field {name!r} on {entity.id}{suggest(name, list(entity.fields))}")
        if op not in OPS:
            raise BadRequest(f"unknown filter operator {op!r}; use one of {', '.join(OPS)}")
        raw = args.getlist(key) if hasattr(args, "getlist") else [args[key]]
        for v in raw:
            filters.append((name, op, v))

    def intarg(name, default, lo, hi):
        raw = args.get(name)
        if raw in (None, ""):
            return default
        try:
            n = int(raw)
        except ValueError:
            raise BadRequest(f"{name} must be a whole number, not {raw!r}") from None
        if not lo <= n <= hi:
            raise BadRequest(f"{name} must be between {lo} and {hi}")
        return n

    deleted = str(args.get("deleted", "")).lower()
    if deleted not in ("1", "true", "only", "0", "false", ""):
        raise BadRequest(f"deleted must be 1, true or only (the recycle bin) or 0 or false, not {deleted[:20]!r}")
    q = (args.get("q") or "").strip() or None
    if q is not None and len(q) > MAX_SEARCH:
        raise BadRequest(f"a search text has at most {MAX_SEARCH} characters; this one has {len(q)}")
    return ListRequest(filters=filters, q=q, sort=args.get("sort") or None,
                       page=intarg("page", 1, 1, 10 ** 7), per_page=intarg("per_page", entity.per_page, 1, MAX_PER_PAGE),
                       deleted=deleted in ("1", "true", "only"), sla=sla, exact_count=exact)


def _value(entity: Entity, name: str, raw, actor_id):
    f = entity.fields[name]
    if f.value_type in ("user",) and str(raw) in ("me", "@me"):
        return actor_id
    try:
        v = values.coerce(f, raw) if f.value_type not in ("multiselect", "attachment") else str(raw)
    except ValueError as e:
        raise BadRequest(f"filter {name}: {e}") from None
    return v


def where_clauses(entity: Entity, table: sa.Table, req: ListRequest, actor_id=None, dialect: str | None = None,
                  fts_ready: bool = False) -> list:
    """The filters and the text search of `req` (engine/search.py: `dialect` and `fts_ready` pick
    the text index)."""
    out = []
    for name, op, raw in req.filters:
        col = table.c[name]
        f = entity.fields[name]
        if f.encrypted and op != "isnull":
            raise BadRequest(f"{name} is encrypted: it can only be filtered by {name}__isnull")
        if f.value_type == "attachment" and op not in ("isnull", "contains"):
            if str(raw).strip() or op not in ("eq", "ne"):
                raise BadRequest(f"{name} is a file: filter it by {name}__isnull or {name}__contains (its name)")
            out.append(col.is_(None) if op == "eq" else col.is_not(None))
            continue
        if op == "isnull":
            out.append(col.is_(None) if str(raw).lower() in ("1", "true") else col.is_not(None))
            continue
        if op == "in":
            items = [_value(entity, name, x, actor_id) for x in str(raw).split(",") if x.strip()]
            out.append(col.in_(items))
            continue
        if op == "contains":
            if f.value_type == "multiselect":
                out.append(sa.cast(col, sa.Text).contains(f'"{raw}"', autoescape=True))
            else:
                out.append(sa.cast(col, sa.String).icontains(str(raw), autoescape=True))
            continue
        v = _value(entity, name, raw, actor_id)
        if f.value_type == "multiselect":
            has = sa.cast(col, sa.Text).contains(f'"{v}"', autoescape=True)
            out.append(has if op == "eq" else sa.or_(col.is_(None), ~has))   # `ne`: records without any too
            continue
        if v is None:
            out.append(col.is_(None) if op == "eq" else col.is_not(None))
            continue
        if f.value_type == "boolean" and op not in ("eq", "ne"):
            raise BadRequest(f"filter {name}: a boolean takes = or __ne, not __{op}")
        out.append(_compare(col, op, v))
    if req.q:
        found = search.clause(entity, table, req.q, dialect, fts_ready)
        if found is not None:
            out.append(found)
    return out


def _compare(col, op: str, v):
    """Build only the comparison asked for (a boolean column refuses `<` even when unused)."""
    if op == "eq":
        return col == v
    if op == "ne":
        return sa.or_(col != v, col.is_(None))
    return {"lt": col.__lt__, "lte": col.__le__, "gt": col.__gt__, "gte": col.__ge__}[op](v)


def order_by(entity: Entity, table: sa.Table, sort: str | None) -> list:
    sort = sort or entity.list_sort or "-id"
    out = []
    for part in sort.split(","):
        part = part.strip()
        if not part:
            continue
        desc = part.startswith("-")
        name = part.lstrip("-+")
        f = entity.fields.get(name)
        if f is None or not f.stored or f.value_type in ("multiselect", "attachment") or f.encrypted:
            raise BadRequest(f"cannot sort by {name!r}" + (" (it is encrypted)" if f is not None and f.encrypted
                                                           else suggest(name, list(entity.fields))))
        col = table.c[name]
        out.append(col.desc() if desc else col.asc())
    if not any(str(o).split(" ")[0].endswith(".id") for o in out):
        out.append(table.c.id.desc() if sort.strip().startswith("-") else table.c.id.asc())
    return out
