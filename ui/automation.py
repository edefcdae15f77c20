"""What the automation part shows people: the notification bell and page, SLA clocks on record
pages and lists, and the administrator's page of background jobs that failed.

Everything goes through the engine's services (notifications, SLA, outbox, timers); nothing here
names an entity — SLA labels, target labels and entity labels come from the config.
"""
from __future__ import annotations

import datetime as dt
import math
from zoneinfo import ZoneInfo

from flask import abort, current_app, flash, redirect, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from engine import clock
from engine.automation import notifications, outbox, timers
from engine.errors import EngineError, Forbidden
from engine.model import label_of

from . import web
from .web import bp, is_htmx, lang, render

PER_PAGE = 50
ERROR_SHOWN = 140                 # characters of an error shown in the jobs table; the rest on demand
AT_RISK = 0.25                    # a running clock with less than this share of its target left is at risk
SLA_FILTERS = ("at_risk", "breached", "paused", "running", "met")
MAX_ID = 2 ** 31                  # ids are integer columns (32-bit on PostgreSQL)
UTC = dt.timezone.utc


# ---- shared helpers -------------------------------------------------------------------------
def _engine():
    return web.runtime().engine


def _me() -> int:
    return current_user.actor.id


def _automation():
    return getattr(web.runtime(), "automation", None)


def local_zone():
    """Where the company works: CRM_TIMEZONE; else the zone of the business calendars when they share
    one (so times agree with the SLA's); else None, the server's own zone (like engine.clock.today)."""
    names = [current_app.config.get("CRM_TIMEZONE")]
    cfg = web.config()
    zones = {c.raw.get("timezone") for c in cfg.auto.calendars.values()} if cfg is not None else set()
    if len(zones) == 1:
        names.append(zones.pop())
    for name in names:
        if name:
            try:
                return ZoneInfo(name)
            except (KeyError, ValueError):
                continue
    return None


def local_time(naive_utc: dt.datetime | None) -> dt.datetime | None:
    """A stored timestamp (naive UTC) in the local zone, for display."""
    if naive_utc is None:
        return None
    aware = naive_utc.replace(tzinfo=UTC)
    zone = local_zone()
    return aware.astimezone(zone) if zone else aware.astimezone()


def when_text(value: dt.datetime | None) -> str:
    t = local_time(value)
    return t.strftime("%Y-%m-%d %H:%M") if t else ""


def duration_text(seconds: int) -> str:
    """Working time as people say it: '2 h 15 min', '45 min', '8 h'."""
    minutes = abs(int(seconds)) // 60
    h, m = divmod(minutes, 60)
    if h and m:
        return _("%(h)d h %(m)d min", h=h, m=m)
    if h:
        return _("%(h)d h", h=h)
    if m:
        return _("%(m)d min", m=m)
    return _("less than a minute")


def _short(t: dt.datetime) -> str:
    """'11-23 09:30' in the instant's own offset; the year too when it is not this year there."""
    this_year = clock.now().replace(tzinfo=UTC).astimezone(t.tzinfo).year
    return t.strftime("%m-%d %H:%M" if t.year == this_year else "%Y-%m-%d %H:%M")


def _full(t: dt.datetime) -> str:
    off = t.strftime("%z")
    return t.strftime("%Y-%m-%d %H:%M") + (f" (UTC{off[:3]}:{off[3:]})" if off else "")


def _iso(text: str | None) -> dt.datetime | None:
    if not text:
        return None
    try:
        return dt.datetime.fromisoformat(text)
    except ValueError:
        return None


def sla_status_labels() -> dict:
    return {"running": _("Running"), "at_risk": _("At risk"), "breached": _("Breached"), "paused": _("Paused"),
            "met": _("Met")}


def sla_filter_choices() -> list[tuple[str, str]]:
    labels = sla_status_labels()
    return [(v, labels[v]) for v in SLA_FILTERS]


# ---- notifications ----------------------------------------------------------------------------
def unread_count() -> int:
    if not current_user or not current_user.is_authenticated:
        return 0
    try:
        return notifications.unread_count(_engine(), _me())
    except Exception:  # noqa: BLE001 - a count must never break a page
        return 0


@bp.app_context_processor
def _automation_context():
    return {"unread_notifications": unread_count, "sla_badge": sla_badge_class}


def sla_badge_class(status: str) -> str:
    return f"badge sla sla-{status if status in sla_status_labels() else 'running'}"


def _page_args() -> tuple[bool, int]:
    unread = request.values.get("unread") in ("1", "true", "yes", "on")
    try:
        page = max(1, min(int(request.values.get("page") or 1), 10 ** 6))
    except ValueError:
        page = 1
    return unread, page


def page_links(page: int, pages: int) -> list:
    """Page numbers to link, None for a gap: 1 … 4 5 [6] 7 8 … 20."""
    wanted = {1, pages, *range(page - 2, page + 3)}
    out, last = [], 0
    for p in sorted(x for x in wanted if 1 <= x <= pages):
        if p - last > 1:
            out.append(None)
        out.append(p)
        last = p
    return out


def _notes_page(unread: bool, page: int, status: int = 200, message: str | None = None):
    eng = _engine()
    res = notifications.listing(eng, _me(), unread, page, PER_PAGE)
    pages = max(1, math.ceil(res["total"] / PER_PAGE))
    if page > pages:                       # the last page emptied (marked read): show the one before
        page = pages
        res = notifications.listing(eng, _me(), unread, page, PER_PAGE)
    cfg = web.config()
    lng = lang()
    for n in res["items"]:
        rec = n["record"]
        ent = cfg.entities.get(rec["entity"]) if rec else None
        n["entity_label"] = ent.label_text(lng) if ent else ""
        n["href"] = url_for("ui.record", entity=rec["entity"], rid=rec["id"]) if ent and not ent.child else None
        n["when"] = when_text(n["created_at"])

    def link(p, only=unread):
        args = {}
        if only:
            args["unread"] = 1
        if p > 1:
            args["page"] = p
        return url_for("ui.notifications_page", **args)

    resp = render("notifications.html", "notes", status=status, notes=res["items"], total=res["total"],
                  unread_only=unread, page=page, pages=pages, page_links=page_links(page, pages), link=link,
                  unread_total=notifications.unread_count(eng, _me()), message=message)
    resp.headers["Cache-Control"] = "no-store"
    return resp


@bp.get("/notifications")
@login_required
def notifications_page():
    unread, page = _page_args()
    return _notes_page(unread, page)


@bp.get("/notifications/bell")
def notifications_bell():
    """The bell's inside, polled by htmx; signed out it answers 204 so the poll changes nothing."""
    if not current_user.is_authenticated:
        return current_app.make_response(("", 204))
    resp = render("_bell.html")
    resp.headers["Cache-Control"] = "no-store"
    return resp


@bp.post("/notifications/read")
@login_required
def notifications_read():
    """Mark read: the posted `id`s (only the user's own are touched), or all with `all=1`."""
    unread, page = _page_args()
    if request.form.get("all"):
        n = notifications.mark_read(_engine(), _me())
    else:
        ids = []
        for v in request.form.getlist("id"):
            try:
                ids.append(int(v))
            except ValueError:
                continue
        ids = [i for i in ids if 0 < i < MAX_ID][:1000]
        n = notifications.mark_read(_engine(), _me(), ids) if ids else 0
    message = _("%(n)d marked as read.", n=n) if n else _("Nothing to mark as read.")
    if is_htmx():
        resp = _notes_page(unread, page, message=message)
        resp.headers["HX-Trigger"] = "notificationsChanged"
        return resp
    flash(message, "success" if n else "info")
    args = {"unread": 1} if unread else {}
    if page > 1:
        args["page"] = page
    return redirect(url_for("ui.notifications_page", **args))


# ---- SLA on record pages ------------------------------------------------------------------------
def sla_panel(entity, rid: int) -> list[dict]:
    """[{label, rows: [{target, status, status_text, due, due_title, due_iso, relative}]}] per SLA of
    the record; [] when the entity has none (or the clocks cannot be read)."""
    auto = _automation()
    if auto is None or not auto.has_sla(entity.id):
        return []
    try:
        items = auto.sla_items(entity.id, rid, web.actor())
    except EngineError:
        return []
    lng = lang()
    labels = sla_status_labels()
    groups: dict[str, dict] = {}
    for it in items:
        status = it["status"]
        left = it.get("remaining_seconds")
        if status == "running" and left is not None and it.get("target_seconds") \
                and left < AT_RISK * it["target_seconds"]:
            status = "at_risk"
        due = _iso(it.get("due_at"))
        met = _iso(it.get("met_at"))
        if it["status"] == "paused":
            relative = _("paused")
        elif met is not None:
            relative = _("met at %(when)s", when=_short(met))
        elif left is not None and left < 0:
            relative = _("overdue by %(time)s", time=duration_text(left))
        elif it["status"] == "breached":
            relative = _("overdue")
        elif left is not None:
            relative = _("%(time)s working time left", time=duration_text(left))
        else:
            relative = ""
        g = groups.setdefault(it["name"], {"label": label_of(it.get("label"), lng, it["name"]), "rows": []})
        g["rows"].append({"target": label_of(it.get("target_label"), lng, it["target"]), "status": status,
                          "status_text": labels.get(status, status), "due": _short(due) if due else "—",
                          "due_title": _full(due) if due else "", "due_iso": due.isoformat() if due else "",
                          "relative": relative, "met_title": _full(met) if met else ""})
    return list(groups.values())


# ---- SLA on lists ---------------------------------------------------------------------------------
def has_sla(entity) -> bool:
    auto = _automation()
    return auto is not None and auto.has_sla(entity.id)


def sla_cells(entity, items) -> dict | None:
    """{record id: {status, status_text, left, title}} for the list's rows, from one summary call;
    None when the entity has no SLA."""
    auto = _automation()
    if auto is None or not auto.has_sla(entity.id):
        return None
    ids = [r["id"] for r in items]
    summary = auto.sla_summary(entity.id, ids) if ids else {}
    lng = lang()
    labels = sla_status_labels()
    out = {}
    for rid, s in summary.items():
        spec = auto.auto.slas.get(s["sla"])
        target = next((t for t in spec.targets if t.name == s["target"]), None) if spec else None
        tlabel = label_of(target.label, lng, s["target"]) if target else s["target"]
        left, title = "", tlabel
        if s.get("due_local") is not None:
            title = _("%(target)s: due %(when)s", target=tlabel, when=_full(s["due_local"]))
            if s["status"] in ("running", "at_risk") and s.get("remaining_seconds") is not None:
                left = _("%(time)s left", time=duration_text(max(0, s["remaining_seconds"])))
        out[rid] = {"status": s["status"], "status_text": labels.get(s["status"], s["status"]), "left": left,
                    "title": title}
    return out


# ---- background jobs (administrators) -----------------------------------------------------------
def _require_admin():
    if not current_user.actor.is_admin:
        raise Forbidden(_("Only an administrator may see background jobs."))


def _job_kinds() -> dict:
    return {"email": _("E-mail"), "webhook": _("Webhook call"), "sla_warn": _("SLA warning"),
            "sla_breach": _("SLA breach"), "workflow": _("Workflow timer"), "schedule": _("Scheduled rule"),
            "timer": _("Timer")}


def _job_status(kind: str, row: dict) -> str:
    if kind == "timer":
        return _("Failed") if row["status"] == "failed" else _("Will retry")
    return _("Gave up") if row["status"] == "dead" else _("Will retry")


def jobs() -> list[dict]:
    """Failed and retrying e-mails, webhook calls and timers, as the jobs page shows them."""
    eng = _engine()
    cfg = web.config()
    lng = lang()
    kinds = _job_kinds()
    out = []
    for r in outbox.problems(eng):
        p = r.get("payload") or {}
        if r["kind"] == "email":
            what = f"{p.get('to', '')} · {p.get('subject', '')}".strip(" ·")
        else:
            what = str(p.get("url") or "")
        out.append({"kind": r["kind"] if r["kind"] in ("email", "webhook") else "webhook", "id": r["id"],
                    "kind_text": kinds.get(r["kind"], kinds["webhook"]), "what": what, "row": r,
                    "status_text": _job_status("outbox", r)})
    for r in timers.problems(eng):
        out.append({"kind": "timer", "id": r["id"], "kind_text": kinds.get(r.get("kind") or "workflow", kinds["timer"]),
                    "what": _timer_what(cfg, r, lng), "row": r, "status_text": _job_status("timer", r)})
    titles: dict = {}
    for j in out:
        r = j["row"]
        ent = cfg.entities.get(r.get("entity") or "")
        j["record"] = None
        if ent is not None and not ent.child and r.get("record_id"):
            titles.setdefault(ent.id, set()).add(r["record_id"])
            j["record"] = {"entity": ent, "id": r["record_id"]}
    found = {}
    for eid, ids in titles.items():
        try:
            found[eid] = web.store().titles(eid, list(ids))
        except (EngineError, ValueError):
            found[eid] = {}
    for j in out:
        r = j["row"]
        if j["record"]:
            e = j["record"]["entity"]
            j["record"].update(label=e.label_text(lng), title=found.get(e.id, {}).get(r["record_id"]) or f"#{r['record_id']}",
                               href=url_for("ui.record", entity=e.id, rid=r["record_id"]))
        err = r.get("last_error") or ""
        j.update(attempts=r.get("attempts") or 0, error=err, error_short=err if len(err) <= ERROR_SHOWN
                 else err[:ERROR_SHOWN].rstrip() + "…", next_at=when_text(r.get("next_at") or r.get("due_at")),
                 created=when_text(r.get("created_at")))
    out.sort(key=lambda j: j["row"].get("created_at") or dt.datetime.min, reverse=True)
    return out


def _timer_what(cfg, r: dict, lng: str) -> str:
    """A timer described with the config's labels, never its internal name."""
    payload = r.get("payload") or {}
    auto = cfg.auto
    if r.get("kind") in ("sla_warn", "sla_breach"):
        spec = auto.slas.get(payload.get("sla"))
        if spec is not None:
            target = next((t for t in spec.targets if t.name == payload.get("target")), None)
            return label_of(spec.label, lng, spec.id) + (f" · {label_of(target.label, lng, target.name)}" if target else "")
    if r.get("kind") == "schedule":
        a = auto.automations.get(payload.get("automation"))
        if a is not None:
            return label_of(a.label, lng, a.id)
    ent = cfg.entities.get(r.get("entity") or "")
    if ent is not None and ent.state_field is not None:
        wf = cfg.workflows.get(ent.state_field.workflow)
        if wf is not None:
            return label_of(wf.label, lng, wf.id)
    return ""


@bp.get("/admin/jobs")
@login_required
def admin_jobs():
    _require_admin()
    return render("jobs.html", items=jobs())


@bp.post("/admin/jobs/<kind>/<int(max=2147483647):job_id>/retry")
@login_required
def admin_job_retry(kind, job_id):
    _require_admin()
    if kind not in ("timer", "webhook", "email"):
        abort(404)
    found = timers.get(_engine(), job_id) if kind == "timer" else outbox.get(_engine(), job_id)
    label = _job_kinds()[kind]
    if found is None or (kind != "timer" and found["kind"] != kind):
        ok = False
    else:
        ok = timers.retry(_engine(), job_id) if kind == "timer" else outbox.retry(_engine(), job_id)
    if ok:
        flash(_("%(kind)s #%(id)d will run again now.", kind=label, id=job_id), "success")
        if current_app.config.get("CRM_BACKGROUND") and "crm_jobs" in current_app.extensions:
            current_app.extensions["crm_jobs"].kick()
    else:
        flash(_("%(kind)s #%(id)d is not waiting to be re-run.", kind=label, id=job_id), "error")
    return web.hx_redirect(url_for("ui.admin_jobs"))
