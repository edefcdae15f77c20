"""Kanban boards `/e/<entity>/board` for any entity with a state field: one column per state of its
workflow with the count and the sum of a money field, cards with the title and summary fields.
Dragging a card posts to `/e/<entity>/board/move`, which runs the transition leading there through
the same engine call as the record page's buttons (roles, required fields, guards, comments,
approvals); a refused move answers 4xx with the reason and the record stays as it was."""
from __future__ import annotations

from decimal import Decimal
from urllib.parse import urlencode

from flask import jsonify, request, url_for
from flask_babel import gettext as _
from flask_login import login_required
from werkzeug.datastructures import MultiDict

from engine.aggregate import totals
from engine.errors import BadRequest, Conflict, EngineError, Forbidden, NotFound, ValidationFailed
from engine.model import label_of
from engine.query import ListRequest, parse_args

from .display import number
from .inbox import summary_pairs
from .refs import Cells
from .web import actor, bp, config, entity_or_404, lang, render, runtime, store

CARDS = 50                 # cards shown per column; the column's list has the rest
UI_ARGS = ("lang", "sort", "page", "per_page", "_cols")


def _workflow(e):
    sf = e.state_field
    wf = config().workflows.get(sf.workflow) if sf is not None and sf.workflow else None
    if wf is None and sf is not None:
        wf = config().workflow_for(e.id, sf.id)
    if wf is None:
        raise NotFound(_("%(what)s has no stages to show on a board.", what=e.plural_text(lang())))
    return sf, wf


def sum_field(e):
    """The field a column adds up: `board: {sum: …}`, else the first money field the user may see."""
    hidden = store().hidden_fields(e, actor())
    if e.board_sum:
        return e.fields[e.board_sum] if e.board_sum not in hidden else None
    return next((f for f in e.fields.values() if f.value_type == "money" and f.stored and f.id not in hidden), None)


def _args():
    out = MultiDict()
    for key, value in request.args.items(multi=True):
        if key in UI_ARGS or value is None or str(value).strip() == "":
            continue
        out.add(key, value)
    return out


@bp.get("/e/<entity>/board")
@login_required
def board(entity):
    e = entity_or_404(entity)
    sf, wf = _workflow(e)
    lng, a = lang(), actor()
    args = _args()
    error = None
    try:
        req = parse_args(e, args)
        if any(name == sf.id for name, _op, _v in req.filters):
            raise BadRequest(_("A board shows every stage; filter the list by %(field)s instead.",
                               field=sf.label_text(lng)))
    except BadRequest as exc:
        error, args = exc.message, MultiDict()
        req = ListRequest(filters=[])
    money = sum_field(e)
    groups = totals(store(), e.id, req, a, group_by=sf.id, sum_field=money.id if money else None)
    columns, cards = [], []
    for sid, st in wf.states.items():
        got = groups.get(sid, {"count": 0, "sum": None})
        rows = []
        if got["count"]:
            rows = store().list(e.id, ListRequest(filters=[*req.filters, (sf.id, "eq", sid)], q=req.q, sla=req.sla,
                                                  sort=e.list_sort or "-updated_at", per_page=CARDS), a)["items"]
        cards += rows
        columns.append({"state": sid, "label": label_of(st.label, lng, sid), "color": st.color, "final": st.final,
                        "count": got["count"], "rows": rows,
                        "sum": number(got["sum"] if got["sum"] is not None else Decimal(0), money.scale)
                        if money else None,
                        "more_url": url_for("ui.list_view", entity=e.id, **{sf.id: sid}, **args.to_dict(flat=False))})
    cells = Cells(e, cards, lng)
    for col in columns:
        col["cards"] = [{"id": r["id"], "version": r["version"], "title": store().title(e, r),
                         "href": url_for("ui.record", entity=e.id, rid=r["id"]),
                         "summary": summary_pairs(e, r, cells, lng)} for r in col.pop("rows")]
    query = urlencode(list(args.items(multi=True)))
    return render("board.html", "board", entity=e, columns=columns, money=money, error=error, args=args,
                  state_field=sf, query=query,
                  list_url=url_for("ui.list_view", entity=e.id) + ("?" + query if query else ""),
                  board_url=url_for("ui.board", entity=e.id) + ("?" + query if query else ""))


def _refused(status: int, message: str, chosen: dict | None = None, **extra):
    """A refusal as JSON; the engine's "<transition id>: reason" reads "<step label>: reason"."""
    if chosen is not None and message.startswith(f"{chosen['name']}: "):
        message = label_of(chosen["label"], lang(), chosen["name"]) + ": " + message[len(chosen["name"]) + 2:]
    return jsonify({"ok": False, "message": message, **extra}), status


@bp.post("/e/<entity>/board/move")
@login_required
def board_move(entity):
    """Move a card: run the transition from the record's state to `to` (the first one allowed,
    when several lead there). JSON {ok, status, message}; 4xx with the reason when refused."""
    e = entity_or_404(entity)
    sf, wf = _workflow(e)
    lng = lang()
    wfs = getattr(runtime(), "workflows", None)
    to = request.form.get("to") or ""
    rid = request.form.get("rid") or ""
    if not rid.isdigit() or wfs is None:
        return _refused(400, _("Say which card moves."))
    if to not in wf.states:
        return _refused(400, _("%(state)s is not a stage of this board.", state=to[:64]))
    comment = (request.form.get("comment") or "").strip() or None
    version = request.form.get("version") or None
    if version is not None and not version.isdigit():
        version = None
    chosen = None
    try:
        rec = store().get(e.id, int(rid), actor())
        here = rec.get(sf.id)
        if here == to:
            return jsonify({"ok": True, "status": "unchanged", "message": ""})
        options = [t for t in wfs.available(e.id, rec["id"], actor()) if t["to"] == to]
        if not options:
            src = wf.states.get(here)
            return _refused(409, _("No step leads from %(src)s to %(dst)s.",
                                   src=label_of(src.label, lng, here) if src else (here or "∅"),
                                   dst=label_of(wf.states[to].label, lng, to)))
        chosen = next((t for t in options if t["allowed"]), options[0])
        result = wfs.execute(e.id, rec["id"], chosen["name"], actor(), comment=comment, version=version)
    except ValidationFailed as exc:
        if "comment" in exc.fields and chosen is not None:
            return _refused(422, _("“%(step)s” needs a comment. Why?", step=label_of(chosen["label"], lng, chosen["name"])),
                            need_comment=True)
        detail = "; ".join(f"{e.fields[k].label_text(lng) if k in e.fields else k}: {v}" for k, v in exc.fields.items())
        return _refused(422, exc.message if not detail or exc.message.endswith(detail) else f"{exc.message} ({detail})",
                        chosen)
    except Forbidden as exc:
        return _refused(403, exc.message, chosen)
    except NotFound as exc:
        return _refused(404, exc.message)
    except Conflict as exc:
        return _refused(409, exc.message, chosen)
    except EngineError as exc:
        return _refused(400, exc.message)
    step = label_of(chosen["label"], lng, chosen["name"])
    if isinstance(result, dict) and result.get("status") == "pending_approval":
        return jsonify({"ok": True, "status": "pending_approval",
                        "message": _("“%(step)s” was sent for approval; the card stays until it is approved.",
                                     step=step)})
    return jsonify({"ok": True, "status": "done",
                    "message": _("Moved to %(dst)s.", dst=label_of(wf.states[to].label, lng, to))})
