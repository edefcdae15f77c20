"""The shell: sign in and out, language, dashboard, global search, attachment downloads."""
from __future__ import annotations

from flask import abort, flash, redirect, request, send_file, session, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required, login_user, logout_user

from engine.query import ListRequest
from platform_.auth import authenticate

from . import i18n
from .refs import Cells
from .web import User, actor, bp, config, lang, load_user_row, render, runtime, safe_next, set_user_language, store


@bp.route("/login", methods=["GET", "POST"])
def login():
    nxt = safe_next(request.values.get("next"), url_for("ui.dashboard"))
    error = None
    username = ""
    if request.method == "POST":
        username = (request.form.get("username") or "").strip()
        a = authenticate(runtime().engine, username, request.form.get("password") or "")
        if a is None:
            error = _("Wrong user name or password.")
        else:
            row = load_user_row(a.id)
            user = User(a, i18n.normalize(row["language"]) if row else None)
            if session.get("lang") and not user.lang:
                set_user_language(a.id, session["lang"])
                user.lang = session["lang"]
            login_user(user, remember=bool(request.form.get("remember")))
            if user.lang:
                session["lang"] = user.lang
            return redirect(nxt)
    return render("login.html", status=200 if error is None else 401, error=error, username=username, next=nxt)


@bp.route("/logout", methods=["GET", "POST"])
def logout():
    if request.method == "POST":
        logout_user()
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


@bp.get("/")
@login_required
def dashboard():
    cfg = config()
    lng = lang()
    a = actor()
    cards = []
    for e in cfg.top_entities:
        try:
            total = store().list(e.id, ListRequest(filters=[], per_page=1), a)["total"]
            mine = store().list(e.id, ListRequest(filters=[("owner", "eq", "me")], per_page=1), a)["total"]
        except Exception:  # noqa: BLE001 - a card that cannot count still links to its list
            total = mine = None
        cards.append({"id": e.id, "label": e.plural_text(lng), "module": e.module, "total": total, "mine": mine})
    return render("dashboard.html", cards=cards)


@bp.get("/search")
@login_required
def search():
    q = (request.args.get("q") or "").strip()
    groups = []
    if q:
        lng = lang()
        a = actor()
        for e in config().top_entities:
            if not any(f.stored for f in e.searchable_fields):
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
    try:
        path = runtime().attachments.path(sha)
    except ValueError:
        abort(404)
    if not path.exists():
        abort(404)
    name = request.args.get("name") or sha[:12]
    return send_file(path, as_attachment=True, download_name=name)
