"""The shell: sign in and out, language, dashboard, global search, attachment downloads."""
from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from flask import abort, current_app, flash, redirect, request, send_file, session, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required, login_user, logout_user

from engine.query import ListRequest
from platform_ import signin
from platform_.auth import check_password, end_sessions

from . import files, i18n
from .refs import Cells
from .web import actor, bp, config, lang, may, render, runtime, safe_next, set_user_language, store, user_from_row


@bp.route("/login", methods=["GET", "POST"])
def login():
    nxt = safe_next(request.values.get("next"), url_for("ui.dashboard"))
    error = None
    username = ""
    if request.method == "POST":
        engine = runtime().engine
        username = (request.form.get("username") or "").strip()
        address = request.remote_addr
        lock = signin.lock_for(engine, username, address)
        if lock is not None:
            signin.record(engine, username, address, "throttled", lock_by=lock.by)
            return _throttled(lock, username, nxt)
        outcome, row = check_password(engine, username, request.form.get("password") or "")
        signin.record(engine, username, address, outcome)
        if outcome == "disabled":
            error = _("This account has been disabled. Ask an administrator to enable it again.")
        elif outcome != "ok":
            error = _("Wrong user name or password.")
        else:
            user = user_from_row(row)
            if session.get("lang") and not user.lang:
                set_user_language(user.actor.id, session["lang"])
                user.lang = session["lang"]
            session.clear()                # no state from before sign-in (session fixation)
            login_user(user, remember=bool(request.form.get("remember")))
            if user.lang:
                session["lang"] = user.lang
            return redirect(nxt)
    return render("login.html", status=200 if error is None else 401, error=error, username=username, next=nxt)


def _throttled(lock, username: str, nxt: str):
    """429: too many failed sign-ins for this name (or from this address); when to try again."""
    seconds = lock.seconds_left()
    minutes = max(1, (seconds + 59) // 60)
    zone = current_app.config.get("CRM_TIMEZONE")
    at = lock.until.replace(tzinfo=dt.timezone.utc).astimezone(ZoneInfo(zone) if zone else None).strftime("%H:%M")
    if lock.by == "user":
        error = _("Too many failed sign-ins for this user name. Try again in %(minutes)d minutes (after %(time)s).",
                  minutes=minutes, time=at)
    else:
        error = _("Too many failed sign-ins from your network address. Try again in %(minutes)d minutes (after %(time)s).",  # noqa: E501
                  minutes=minutes, time=at)
    resp = render("login.html", status=429, error=error, username=username, next=nxt)
    resp.headers["Retry-After"] = str(seconds)
    return resp


@bp.route("/logout", methods=["GET", "POST"])
def logout():
    if request.method == "POST":
        if current_user.is_authenticated:
            end_sessions(runtime().engine, current_user.actor.id)   # a copy of the cookie is signed out too
            signin.signed_out(runtime().engine, current_user.actor, request.remote_addr)
        lang_choice = session.get("lang")
        session.clear()
        logout_user()                      # after clear(): it marks the remember-me cookie for deletion
        if lang_choice:
            session["lang"] = lang_choice
        flash(_("You have signed out."), "info")
        return redirect(url_for("ui.login"))
    return render("logout.html")


@bp.post("/lang")
def set_lang():
    code = i18n.normalize(request.form.get("lang")) or "en"
    session["lang"] = code
    if current_user.is_authenticated:
        set_user_language(current_user.actor.id, code)
    return redirect(safe_next(request.form.get("next"), url_for("ui.dashboard")))


@bp.get("/search")
@login_required
def search():
    q = (request.args.get("q") or "").strip()
    groups = []
    if q:
        lng = lang()
        a = actor()
        for e in config().top_entities:
            if not any(f.stored for f in e.searchable_fields) or not may(e.id):
                continue
            res = store().list(e.id, ListRequest(filters=[], q=q, per_page=10), a)
            if res["items"]:
                cells = Cells(e, res["items"], lng)
                cols = e.columns_for_list()[:3]
                groups.append({"entity": e, "label": e.plural_text(lng), "total": res["total"], "cols": cols,
                               "cells": cells,
                               "rows": [(r["id"], store().title(e, r), r) for r in res["items"]]})
    return render("search.html", "results", q=q, groups=groups)


@bp.get("/files/<sha>")
@login_required
def file(sha):
    """A stored file, for a user who may read a record that holds it (or who just uploaded it); else 404."""
    try:
        path = runtime().attachments.path(sha)
    except ValueError:
        abort(404)
    if not path.exists() or not files.may_download(sha, actor()):
        abort(404)
    name = "".join(c for c in (request.args.get("name") or "") if c.isprintable() and c not in "/\\")[:200]
    return send_file(path, as_attachment=True, download_name=name.strip() or sha[:12])
