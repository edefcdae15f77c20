"""The link pickers of forms: choices narrowed by the link's `filter` (with the values the form
holds now), labelled with its `display` fields, and the values its `fetch` copies when a record
is picked. Both read through the store, so row scopes and hidden fields apply.

A picker in a child-table row sends its name prefix (`lines-<row key>-`): the filter's source
fields and the fetched fields are the same row's.
"""
from __future__ import annotations

import json
import re

from flask import abort, current_app, request
from flask_login import login_required

from engine import linkopts, values
from engine.errors import EngineError
from engine.model import Entity, Field
from engine.query import ListRequest

from . import display
from .refs import display_text, link_labels
from .web import actor, bp, config, render, store

PREFIX_RX = re.compile(r"^(?:[a-z][a-z0-9_]*-[A-Za-z0-9]{1,32}-)?$")
CHOICES = 10


def link_field(entity: str, field: str) -> tuple[Entity, Field]:
    """The link field `field` of `entity` (a child entity too: the rows of a table)."""
    e = config().entities.get(entity)
    f = e.fields.get(field) if e is not None else None
    if f is None or f.value_type != "link":
        abort(404)
    return e, f


def _prefix() -> str:
    p = request.args.get("prefix", "")
    if not PREFIX_RX.match(p):
        abort(400)
    return p


def _source(e: Entity, prefix: str):
    """The form's current value of a field of `e` (this row's, for a row), coerced; None if empty or bad."""
    def get(fid):
        f = e.fields.get(fid)
        if f is None:
            return None
        try:
            return values.coerce(f, request.args.get(prefix + fid, ""))
        except ValueError:
            return None
    return get


def _raw(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(linkopts.as_input(v))


def choices(f: Field, get, q: str | None, per_page: int = CHOICES) -> list[tuple[int, str, str]]:
    """[(id, title, distinguishing text)] of the records the link may point at now."""
    filters = [(fid, "eq", _raw(v)) for fid, v in linkopts.conditions(f, get)]
    res = store().list(f.to, ListRequest(filters=filters, q=q or None, per_page=per_page), actor())
    rows = res["items"]
    target = config().entities[f.to]
    labels = display_text(f, rows) if f.display else {}
    out = []
    for r in rows:
        title = store().title(target, r)
        full = labels.get(r["id"], title)
        out.append((r["id"], full, full[len(title) + 3:] if full != title else ""))
    return out


@bp.get("/e/<entity>/pick/<field>")
@login_required
def pick(entity, field):
    """The choices of a form's link picker: `_lk_<name>` is what was typed, `prefix` the row's
    name prefix, and the filter's source fields come along (hx-include)."""
    e, f = link_field(entity, field)
    prefix = _prefix()
    q = (request.args.get("_lk_" + prefix + f.id) or "").strip()
    try:
        options = choices(f, _source(e, prefix), q)
    except EngineError:
        options = []
    return render("_lookup.html", options=options, target=request.args.get("target", ""), q=q,
                  entity=config().entities[f.to])


@bp.get("/e/<entity>/fetch/<field>")
@login_required
def fetch(entity, field):
    """What picking record `<prefix><field>` fills in: answered as the `linkFetched` event (no swap);
    ui.js fills each field that is empty or still holds what a fetch put there."""
    e, f = link_field(entity, field)
    prefix = _prefix()
    rid = request.args.get(prefix + f.id, "")
    hidden = store().hidden_fields(e, actor()) if not e.child else frozenset()
    got = linkopts.fetched(store(), f, rid, actor(), hidden)
    out = {}
    for dst, v in got.items():
        df = e.fields[dst]
        item = {"value": display.to_input(df, v)}
        if df.value_type == "link":
            item["title"] = link_labels(df, [v], actor()).get(v, "")
        out[prefix + dst] = item
    resp = current_app.make_response(("", 204))
    if out:
        resp.headers["HX-Trigger"] = json.dumps({"linkFetched": {"values": out}})
    return resp


def fetched_inputs(e: Entity, inputs: dict, given) -> dict:
    """A new form opened with links given (`?opportunity=5`, a related list's "New"): the fields
    those links fetch, filled where still empty, with titles for fetched links."""
    hidden = store().hidden_fields(e, actor())
    for f in e.user_fields:
        if f.id not in given or not f.fetch or values.empty(inputs.get(f.id)):
            continue
        for dst, v in linkopts.fetched(store(), f, inputs[f.id], actor(), hidden).items():
            df = e.fields[dst]
            if not values.empty(inputs.get(dst)) and dst in given:
                continue
            inputs[dst] = display.to_input(df, v)
            if df.value_type == "link":
                inputs["_lk_" + dst] = link_labels(df, [v], actor()).get(v, "")
    return inputs


@bp.app_template_global("picker_attrs")
def picker_attrs(f: Field, name: str) -> dict:
    """What a form's picker needs to ask: the endpoints, its name prefix and the params to send."""
    prefix = name[: -len(f.id)] if name.endswith(f.id) else ""
    params = ["_lk_" + name, "target", "prefix"] + [prefix + c.source for c in f.filter if c.source]
    return {"prefix": prefix, "params": ",".join(params)}
