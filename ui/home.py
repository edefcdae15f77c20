"""The home page `/`: the signed-in user's day — to-dos due today, overdue and soon, approvals
waiting for them, their own open requests, records they changed lately, the lists and key figures
their roles are given in `home.yaml` (engine/daily.py). A fixed number of queries per block, all
through the store, so row scopes and hidden fields hold."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal
from urllib.parse import urlencode

from flask import url_for
from flask_login import current_user, login_required

from engine import clock
from engine.aggregate import totals
from engine.daily import HomeSpec, filter_value, resolve_mine
from engine.errors import EngineError, RuleError
from engine.model import label_of
from engine.query import ListRequest
from platform_ import recent

from . import inbox, todos
from .display import number
from .refs import Cells
from .web import actor, bp, config, lang, render, runtime, store

TODO_DAYS = 7        # the home lists to-dos due up to a week ahead (the inbox lists them all)
RECENT = 8


def _filters(entity, spec, user_id) -> list:
    out = [(name, op, filter_value(value, user_id)) for name, op, value in spec.filters]
    mine = resolve_mine(entity, spec.mine)
    if mine:
        out.append((mine, "eq", "me"))
    return out


def _list_url(entity, filters) -> str:
    args = [(name if op == "eq" else f"{name}__{op}", value) for name, op, value in filters]
    return url_for("ui.list_view", entity=entity.id) + ("?" + urlencode(args) if args else "")


def figure_blocks(spec: HomeSpec, names) -> list[dict]:
    cfg, a, lng = config(), actor(), lang()
    out = []
    for name in names:
        fig = spec.figures.get(name)
        e = cfg.entities.get(fig.entity) if fig else None
        if e is None:
            continue
        try:
            filters = _filters(e, fig, a.id)
            res = totals(store(), e.id, ListRequest(filters=filters), a, sum_field=fig.sum)
        except (EngineError, RuleError):       # a role that may not read it does not see the figure
            continue
        got = res.get(None) or {"count": 0, "sum": None}
        if fig.sum and fig.sum in store().hidden_fields(e, a):
            continue
        total = got["sum"] if got["sum"] is not None else Decimal(0)
        value = number(total, e.fields[fig.sum].scale) if fig.sum else number(got["count"], 0)
        out.append({"id": name, "label": label_of(fig.label, lng, name), "value": value, "count": got["count"],
                    "sum": bool(fig.sum), "url": _list_url(e, filters)})
    return out


def list_block(spec: HomeSpec, name: str) -> dict | None:
    cfg, a, lng = config(), actor(), lang()
    lst = spec.lists.get(name)
    e = cfg.entities.get(lst.entity) if lst else None
    if e is None:
        return None
    today = clock.today()
    try:
        filters = _filters(e, lst, a.id)
        if lst.date:
            filters.append((lst.date, "lt", (today + dt.timedelta(days=lst.days + 1)).isoformat()))
        res = store().list(e.id, ListRequest(filters=filters, sort=lst.sort or lst.date or "-updated_at",
                                             per_page=lst.limit), a)
    except (EngineError, RuleError):
        return None
    cells = Cells(e, res["items"], lng)
    rows = []
    for r in res["items"]:
        when = r.get(lst.date) if lst.date else None
        when = when.date() if isinstance(when, dt.datetime) else when
        rows.append({"title": store().title(e, r), "href": url_for("ui.record", entity=e.id, rid=r["id"]),
                     "summary": inbox.summary_pairs(e, r, cells, lng), "date": when,
                     "overdue_days": (today - when).days if when is not None and when < today else 0})
    shown = [f for f in filters if not (lst.date and f[0] == lst.date and f[1] == "lt")]
    return {"kind": "list", "id": name, "label": label_of(lst.label, lng, name), "rows": rows,
            "total": res["total"], "url": _list_url(e, shown)}


def recent_records(limit: int = RECENT) -> list[dict]:
    """Records the user created, changed or moved lately (from the audit trail), newest first;
    only those still there and in the user's scope."""
    cfg, a, lng = config(), actor(), lang()
    rows = recent.touched_by(runtime().engine, current_user.actor.id, limit * 2)
    by_entity: dict = {}
    for ent, rid, _at in rows:
        e = cfg.entities.get(ent)
        if e is not None and not e.child:
            by_entity.setdefault(ent, []).append(rid)
    found: dict = {}
    for ent, ids in by_entity.items():
        try:
            res = store().list(ent, ListRequest(filters=[("id", "in", ",".join(map(str, ids)))], per_page=len(ids)), a)
        except EngineError:
            continue
        for r in res["items"]:
            found[(ent, r["id"])] = store().title(cfg.entities[ent], r)
    out = []
    for ent, rid, at in rows:
        if (ent, rid) in found:
            out.append({"entity_label": cfg.entities[ent].label_text(lng), "title": found[(ent, rid)],
                        "href": url_for("ui.record", entity=ent, rid=rid), "at": at})
    return out[:limit]


def blocks_for(spec: HomeSpec, show) -> list[dict]:
    out = []
    wfs = getattr(runtime(), "workflows", None)
    for name in show:
        if name == "tasks":
            out.append({"kind": "tasks", "id": name, "rows": todos.open_todos(within_days=TODO_DAYS, limit=50)})
        elif name == "approvals" and wfs is not None:
            from engine import approvals
            out.append({"kind": "approvals", "id": name,
                        "rows": inbox.with_records(approvals.pending_for(wfs, actor(), limit=20))})
        elif name == "requests" and wfs is not None:
            out.append({"kind": "requests", "id": name, "rows": inbox.my_requests(only_open=True, limit=20)})
        elif name == "recent":
            out.append({"kind": "recent", "id": name, "rows": recent_records()})
        else:
            block = list_block(spec, name)
            if block is not None:
                out.append(block)
    return out


@bp.get("/")
@login_required
def dashboard():
    spec = config().home or HomeSpec()
    a = actor()
    role = spec.for_roles(a.roles, a.is_admin)
    return render("home.html", figures=figure_blocks(spec, role.figures), blocks=blocks_for(spec, role.show),
                  today=clock.today())
