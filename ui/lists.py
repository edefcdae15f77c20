"""List views `/e/<entity>`: columns, sort, per-type filters, search, pages, saved views, bulk
actions and CSV export. The page and its `results` block share one template; htmx swaps the block
and pushes the URL, so every state of a list is a bookmarkable address."""
from __future__ import annotations

import math
import re
from urllib.parse import urlencode

from flask import Response, flash, redirect, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required
from werkzeug.datastructures import MultiDict

from engine import segments
from engine.errors import BadRequest, EngineError
from engine.model import Entity
from engine.query import ListRequest
from platform_ import saved_views

from . import columns as colspec
from .automation import sla_cells, sla_filter_choices
from .columns import title_fields
from .refs import Cells, active_users, state_labels
from .web import actor, bp, config, entity_or_404, hx_redirect, is_htmx, lang, render, runtime, store

PAGE_SIZES = (10, 20, 50, 100, 200)
UI_ARGS = ("lang",)
TEXTY = ("string", "text", "email", "phone", "url", "autonumber")
RANGE = ("integer", "decimal", "money", "percent", "date", "datetime")
EXPORT_LIMIT = 20000


def clean_args(args) -> MultiDict:
    """Request args without empty values and without the UI's own parameters."""
    out = MultiDict()
    for key, value in args.items(multi=True):
        if key in UI_ARGS or value is None or str(value).strip() == "":
            continue
        out.add(key, value)
    return out


def list_request(entity: Entity, args: MultiDict) -> ListRequest:
    """The list's filters, plus `?segment=<id>` (engine/segments.py)."""
    return segments.list_request(config(), entity, args, actor())


def filter_specs(entity: Entity, lng: str) -> list[dict]:
    """One filter per field a person can usefully narrow by, with its kind and parameter names."""
    specs = []
    states = state_labels(entity, lng)
    for f in entity.fields.values():
        if not f.stored or (f.system and f.id not in ("owner", "created_at", "updated_at")):
            continue
        t = f.value_type
        label = f.label_text(lng)
        if t in TEXTY:
            specs.append({"f": f, "kind": "text", "label": label, "param": f"{f.id}__contains"})
        elif t == "select":
            specs.append({"f": f, "kind": "choice", "label": label, "param": f.id,
                          "choices": [(o.value, o.label) for o in f.options]})
        elif t == "state":
            specs.append({"f": f, "kind": "choice", "label": label, "param": f.id,
                          "choices": [(k, {"en": v, "zh": v}) for k, v in states.items()]})
        elif t == "boolean":  # `__in`: engine.query builds `col < True` for plain eq and SQLAlchemy refuses it
            specs.append({"f": f, "kind": "choice", "label": label, "param": f"{f.id}__in",
                          "choices": [("true", {"en": _("Yes"), "zh": _("Yes")}),
                                      ("false", {"en": _("No"), "zh": _("No")})]})
        elif t == "multiselect":
            specs.append({"f": f, "kind": "choice", "label": label, "param": f"{f.id}__contains",
                          "choices": [(o.value, o.label) for o in f.options]})
        elif t in RANGE:
            specs.append({"f": f, "kind": "range", "label": label, "lo": f"{f.id}__gte", "hi": f"{f.id}__lte",
                          "input": {"date": "date", "datetime": "date"}.get(t, "number")})
        elif t == "link":
            specs.append({"f": f, "kind": "link", "label": label, "param": f.id})
        elif t == "user":
            specs.append({"f": f, "kind": "user", "label": label, "param": f.id})
    return specs


def column_choices(entity: Entity):
    """The columns a person may choose: stored fields they may see, the title's field first."""
    hidden = store().hidden_fields(entity, actor())
    out = [f for f in entity.fields.values() if f.stored and f.id not in ("deleted_at", "version") and f.id not in hidden]
    link = colspec.link_field(entity, hidden)
    return ([link] + [f for f in out if f is not link]) if link is not None else out


def has_sla(entity: Entity) -> bool:
    auto = getattr(runtime(), "automation", None)
    return auto is not None and auto.has_sla(entity.id)


def chosen_columns(entity: Entity, args) -> list:
    """The columns asked for (`_cols`), else the defaults that fit the window; the column that links
    to the record is always there. Fields the reader may not see never get a column."""
    hidden = store().hidden_fields(entity, actor())
    wanted = [c for v in args.getlist("_cols") for c in v.split(",") if c]
    cols = list({c: entity.fields[c] for c in wanted
                 if c in entity.fields and entity.fields[c].stored and c not in hidden}.values())
    if not cols:
        return colspec.default_columns(entity, hidden, sla=has_sla(entity))
    link = colspec.link_field(entity, hidden)
    if link is not None and link not in cols:
        cols.insert(0, link)
    return cols


def final_states(entity: Entity) -> frozenset:
    sf = entity.state_field
    wf = config().workflows.get(sf.workflow) if sf is not None else None
    return frozenset(k for k, s in wf.states.items() if s.final) if wf else frozenset()


def totals(entity: Entity, req: ListRequest, cols: list, total: int) -> dict:
    """{field id: formatted sum} of the money columns over the whole filtered set (one query)."""
    money = colspec.money_columns(cols)
    if not money or not total:
        return {}
    from .display import number
    sums = store().totals(entity.id, req, actor(), [f.id for f in money])
    return {f.id: number(sums.get(f.id) or 0, f.scale) for f in money if f.id in sums}


def url_with(base: str, args: MultiDict, **changes) -> str:
    a = MultiDict(args)
    for k, v in changes.items():
        a.setlist(k, [] if v in (None, "") else [v])
    return base + ("?" + urlencode(list(a.items(multi=True))) if a else "")


@bp.get("/e/<entity>")
@login_required
def list_view(entity):
    e = entity_or_404(entity)
    lng = lang()
    args = clean_args(request.args)
    error = None
    try:
        req = list_request(e, args)
        result = store().list(e.id, req, actor())
    except BadRequest as exc:
        error = exc.message
        req = ListRequest(filters=[], per_page=e.per_page)
        result = store().list(e.id, req, actor())
    cols = chosen_columns(e, args)
    items = result["items"]
    cells = Cells(e, items, lng)
    pages = max(1, math.ceil(result["total"] / req.per_page))
    base = url_for("ui.list_view", entity=e.id)
    shown = canonical_args(e, args)
    query = urlencode([(k, v) for k, v in shown.items(multi=True) if k != "page"])
    link_titles = {}
    for spec in filter_specs(e, lng):
        if spec["kind"] == "link" and args.get(spec["param"]):
            try:
                link_titles[spec["param"]] = store().titles(spec["f"].to, [args.get(spec["param"])], actor())
            except (ValueError, EngineError):
                pass
    views = saved_views.list_views(runtime().engine, current_user.actor.id, e.id)
    sla = sla_cells(e, items)          # one summary call for the page's rows; None without an SLA
    link = colspec.link_field(e, store().hidden_fields(e, actor()))
    resp = render("list.html", "results", entity=e, args=args, req=req, result=result, items=items, cols=cols,
                  cells=cells, pages=pages, base=base, query=query, url_with=url_with, error=error,
                  link=link, width_class=colspec.width_class, priority_class=colspec.priority_class,
                  overdue=colspec.overdue(e, items, cols, final_states(e)),
                  sums=totals(e, req, cols, result["total"] if result.get("total_exact", True) else 0), chooser=cols + [f for f in column_choices(e) if f not in cols],
                  specs=filter_specs(e, lng), page_sizes=sorted(set(PAGE_SIZES) | {req.per_page}),
                  users=active_users(), link_titles=link_titles, views=views, sla=sla,
                  segs=segments.of_entity(config(), e.id),
                  sla_choices=sla_filter_choices() if sla is not None else [],
                  filtered=any(k not in ("sort", "page", "per_page", "_cols", "q", "sla") for k in args),
                  title=lambda r: store().title(e, r))
    if is_htmx():  # the address bar shows the short form of this list's state
        resp.headers["HX-Push-Url"] = base + ("?" + urlencode(list(shown.items(multi=True))) if shown else "")
    return resp


def canonical_args(entity: Entity, args: MultiDict) -> MultiDict:
    """The args without what equals the defaults (columns, page size, first page)."""
    out = MultiDict(args)
    cols = [c for v in args.getlist("_cols") for c in v.split(",") if c]
    default_cols = [f.id for f in chosen_columns(entity, MultiDict())]
    if cols == default_cols:
        out.poplist("_cols")
    if out.get("per_page") == str(entity.per_page):
        out.poplist("per_page")
    if out.get("page") == "1":
        out.poplist("page")
    return out


# ---- saved views -------------------------------------------------------------------------
@bp.post("/e/<entity>/views")
@login_required
def save_view(entity):
    e = entity_or_404(entity)
    name = (request.form.get("name") or "").strip()
    query = _clean_query(request.form.get("query"))
    if not name:
        flash(_("Give the view a name."), "error")
    else:
        saved_views.save_view(runtime().engine, current_user.actor.id, e.id, name, query)
        flash(_("View “%(name)s” saved.", name=name), "success")
    return hx_redirect(url_for("ui.list_view", entity=e.id) + ("?" + query if query else ""))


@bp.post("/e/<entity>/views/<int:view_id>/delete")
@login_required
def delete_view(entity, view_id):
    e = entity_or_404(entity)
    if saved_views.delete_view(runtime().engine, current_user.actor.id, view_id):
        flash(_("View deleted."), "info")
    return hx_redirect(url_for("ui.list_view", entity=e.id))


# ---- bulk actions ------------------------------------------------------------------------
def _selected_ids() -> list[int]:
    out = []
    for v in request.form.getlist("ids"):
        try:
            out.append(int(v))
        except ValueError:
            continue
    return out


@bp.post("/e/<entity>/bulk")
@login_required
def bulk(entity):
    e = entity_or_404(entity)
    action = request.form.get("action")
    ids = _selected_ids()
    query = _clean_query(request.form.get("query"))
    back = url_for("ui.list_view", entity=e.id) + ("?" + query if query else "")
    if action in ("export", "export_xlsx"):
        return export_csv(e, ids, MultiDict(_parse_qs(request.form.get("query") or "")),
                          "xlsx" if action == "export_xlsx" else "csv")
    if not ids:
        flash(_("Select at least one row first."), "error")
        return redirect(back)
    a = actor()
    done, failed = 0, []
    for rid in ids:
        try:
            if action == "delete":
                store().delete(e.id, rid, a)
            elif action == "assign":
                store().update(e.id, rid, {"owner": request.form.get("owner") or ""}, a, mode="form")
            else:
                flash(_("Unknown action."), "error")
                return redirect(back)
            done += 1
        except EngineError as exc:
            fields = getattr(exc, "fields", None)
            failed.append(f"#{rid}: {exc.message}" + (f" ({'; '.join(f'{k}: {v}' for k, v in fields.items())})"
                                                       if fields else ""))
    if done:
        msg = _("%(n)d record(s) deleted.", n=done) if action == "delete" else _("%(n)d record(s) assigned.", n=done)
        flash(msg, "success")
    for f in failed[:5]:
        flash(f, "error")
    return redirect(back)


def _parse_qs(query: str):
    from urllib.parse import parse_qsl
    return parse_qsl(query, keep_blank_values=False)


def _clean_query(query: str | None) -> str:
    """A list query from a form, re-encoded: whatever it held (CR, LF, '#', '//'), it stays a query string."""
    return urlencode(_parse_qs(query or ""))


def export_csv(e: Entity, ids: list[int], args: MultiDict, fmt: str = "csv"):
    """The list (or the selected rows) as CSV or XLSX: the chosen columns as displayed, read in
    id-ordered pages (engine/exporter.py) so a long list never sits in memory whole."""
    import os

    from flask import send_file, stream_with_context

    from engine import exporter
    lng = lang()
    a = actor()
    store().check(e.id, "export", a)          # access.yaml `permissions`: 403 for a role without export
    args = clean_args(args)
    cols = chosen_columns(e, args)
    if ids:
        req = ListRequest(filters=[("id", "in", ",".join(map(str, ids)))], per_page=500)
    else:
        req = list_request(e, args)
    chosen = {f.id for f in cols}            # the file has no title column: it gets the title's fields
    cols = [e.fields[t] for t in title_fields(e) if t not in chosen and e.fields[t].stored] + cols
    cols = [f for f in cols if f.id != "id"]
    header = ["ID"] + [f.label_text(lng) for f in cols]
    store().list_conditions(e, store().table(e), req, a)     # a bad filter is an error before the file starts

    def rows():
        for chunk in exporter.records(store(), e.id, req, a, page=500):
            cells = Cells(e, chunk, lng)
            for r in chunk:
                yield [r["id"]] + [_csv_safe(cells.text(f, r)) for f in cols]
    if fmt == "xlsx":
        path = exporter.xlsx_file(header, rows(), e.plural_text(lng))
        resp = send_file(path, mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                         as_attachment=True, download_name=f"{e.id}.xlsx")
        resp.call_on_close(lambda: os.path.exists(path) and os.remove(path))
        return resp
    return Response(stream_with_context(exporter.csv_chunks(header, rows())), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{e.id}.csv"'})


from platform_.csvsafe import FORMULA_START, csv_safe as _csv_safe  # noqa: E402,F401  (shared with the audit export)


# ---- link lookup (autocomplete) ------------------------------------------------------------
@bp.get("/e/<entity>/lookup")
@login_required
def lookup(entity):
    e = entity_or_404(entity)
    q = request.args.get("q") or next((v for k, v in request.args.items() if k.startswith("_lk_")), "")
    q = q.strip()
    target = request.args.get("target") or ""
    res = store().list(e.id, ListRequest(filters=[], q=q or None, per_page=10), actor())
    options = [(r["id"], store().title(e, r)) for r in res["items"]]
    return render("_lookup.html", options=options, target=target, q=q, entity=e)
