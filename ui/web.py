"""The `ui` blueprint and what every view needs: the runtime, the acting user, page-or-fragment rendering."""
from __future__ import annotations

import dataclasses
import logging
from urllib.parse import urlsplit

from flask import Blueprint, current_app, g, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import LoginManager, UserMixin, current_user
from flask_wtf.csrf import CSRFError, generate_csrf
from jinja2_fragments.flask import render_block
from werkzeug.exceptions import HTTPException

from engine.actor import Actor
from engine.errors import BadRequest, Forbidden, NotFound
from engine.model import label_of
from platform_ import directory
from platform_.auth import actor_from_row, session_epoch

from . import display, i18n, security

log = logging.getLogger(__name__)

bp = Blueprint("ui", __name__, template_folder="templates", static_folder="static",
               static_url_path="/static/ui")
login_manager = LoginManager()
login_manager.login_view = "ui.login"
login_manager.login_message = None


class User(UserMixin):
    """A signed-in person: the engine's Actor plus the language they chose (None: not chosen).

    `get_id()` — what the session and the remember-me cookie keep — is "<user id>:<session epoch>",
    so bumping the user's epoch (sign-out, disabling) ends every copy of either server-side."""

    def __init__(self, actor: Actor, lang: str | None, epoch: int = 0):
        self.actor, self.lang, self.epoch = actor, lang, epoch
        self.id = str(actor.id)

    def get_id(self) -> str:
        return f"{self.actor.id}:{self.epoch}"

    @property
    def display_name(self) -> str:
        return self.actor.full_name or self.actor.username


def load_user_row(user_id):
    try:
        uid = int(user_id)
    except (TypeError, ValueError):
        return None
    return directory.active_user(runtime().engine, uid)


def user_from_row(row) -> User:
    return User(actor_from_row(row), i18n.normalize(row["language"]), session_epoch(row))


@login_manager.user_loader
def _load_user(session_id):
    """The user of a session or remember-me cookie made in the user's current epoch; else nobody."""
    uid, sep, epoch = str(session_id or "").partition(":")
    if not sep or not epoch.isdigit():
        return None                  # a cookie from before sessions carried their epoch
    row = load_user_row(uid)
    if row is None or session_epoch(row) != int(epoch):
        return None
    return user_from_row(row)


def runtime():
    return current_app.extensions["crm"]


def config():
    return runtime().config


def store():
    return runtime().store


def actor() -> Actor:
    """The acting user, speaking the language of this request (store messages follow it)."""
    a = current_user.actor
    lang = i18n.current_lang()
    return a if a.language == lang else dataclasses.replace(a, language=lang)


def lang() -> str:
    return i18n.current_lang()


def may(entity_id: str, action: str = "read") -> bool:
    """Whether the signed-in user's roles allow `action` on the entity (access.yaml `permissions`):
    pages offer only what the store will then allow."""
    cache = g.setdefault("_may", {})
    if entity_id not in cache:
        cache[entity_id] = store().actions(entity_id, actor())
    return action in cache[entity_id]


def is_htmx() -> bool:
    return request.headers.get("HX-Request") == "true" and request.headers.get("HX-History-Restore-Request") != "true"


def render(template: str, block: str | None = None, status: int = 200, **ctx):
    """The whole page, or only `block` when htmx asks (same template, named block)."""
    if block and is_htmx():
        body = render_block(template, block, **ctx)
    else:
        body = render_template(template, **ctx)
    resp = current_app.make_response((body, status))
    resp.vary.add("HX-Request")
    return resp


def entity_or_404(name: str):
    e = config().entities.get(name) if config() else None
    if e is None or e.child:
        raise NotFound(_("There is no list called %(name)s.", name=name))
    return e


def safe_next(target: str | None, default: str) -> str:
    """`target` when it is a path on this site, else `default`.

    Only a relative path starting with one "/" is honoured; browsers drop TAB, CR and LF inside a
    URL and read "\\" as "/", so "/\t/evil.example" or "/\\evil.example" would leave the site: any
    control character or backslash sends the user to `default`."""
    if not isinstance(target, str) or not target.startswith("/") or target.startswith("//"):
        return default
    if "\\" in target or any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in target):
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return default
    return target


# ---- per request ------------------------------------------------------------------------
@bp.before_app_request
def _prepare():
    if request.path.startswith(("/api/", "/static/")) or request.path in ("/healthz", "/readyz"):
        return None                   # the API and the probes answer JSON, whatever the UI's state
    rt = runtime()
    if rt.store is None:
        return render("error.html", status=503, code=503, title=_("The configuration does not load"),
                      message="; ".join(str(p) for p in rt.problems[:5]))
    rt.ensure_schema()
    wanted = i18n.normalize(request.args.get("lang"))
    if wanted:
        from flask import session
        session["lang"] = wanted
        if current_user.is_authenticated and current_user.lang != wanted:
            set_user_language(current_user.actor.id, wanted)
            current_user.lang = wanted
    return None


def set_user_language(user_id, code: str) -> None:
    from platform_.auth import set_language
    set_language(runtime().engine, user_id, code)


@bp.after_app_request
def _headers(resp):
    return security.add_security_headers(resp)


@bp.app_context_processor
def _context():
    cfg = config()
    lng = lang() if request else "en"
    return {
        "lang": lng,
        "html_lang": i18n.HTML_LANG[lng],
        "L": lambda label, fallback="": label_of(label, lng, fallback),
        "nav": navigation(cfg, lng) if cfg is not None and current_user and current_user.is_authenticated else [],
        "csrf_token": generate_csrf,
        "fmt": display.fmt,
        "may": may if current_user and current_user.is_authenticated else (lambda *_a: False),
        "words": i18n.words,             # "新建" + "客户" → "新建客户", "New" + "Customer" → "New Customer"
        "has_workflows": getattr(runtime(), "workflows", None) is not None,
        # the brand is the config folder's own pack (pack.yaml label), not a hard-coded "CRM"
        "brand": label_of(cfg.pack.label, lng, "CRM") if cfg is not None and cfg.pack is not None else "CRM",
    }


def navigation(cfg, lng):
    """[(module label, [(entity id, plural label)])] in pack order, then the modules it does not name."""
    cached = g.get("_nav")
    if cached is not None:
        return cached
    labels = dict(cfg.pack.modules) if cfg.pack else {}
    order = list(labels)
    groups: dict = {}
    for e in cfg.top_entities:
        if not may(e.id):
            continue
        key = e.module or ""
        groups.setdefault(key, []).append((e.id, e.plural_text(lng)))
        if key not in order:
            order.append(key)
    out = []
    for key in order:
        if key not in groups:
            continue
        if key in labels:
            title = label_of(labels[key], lng, key)
        elif key:
            title = key.replace("_", " ").capitalize()
        else:
            title = _("Other")
        out.append((key, title, groups[key]))
    g._nav = out
    return out


# ---- errors -------------------------------------------------------------------------------
def _wants_json() -> bool:
    return request.path.startswith("/api/")


def register_error_pages(app) -> None:
    titles = {400: lambda: _("Bad request"), 403: lambda: _("Not allowed"), 404: lambda: _("Not found"),
              405: lambda: _("Not allowed"), 413: lambda: _("Too large"), 429: lambda: _("Too many attempts"),
              500: lambda: _("Something went wrong"), 503: lambda: _("Unavailable")}

    def page(code: int, message: str | None = None):
        if _wants_json():
            return jsonify({"error": {"code": {404: "not_found", 403: "forbidden", 405: "method_not_allowed",
                                               413: "too_large"}
                                      .get(code, "error"), "message": message or str(code)}}), code
        title = titles.get(code, titles[500])()
        return render("error.html", status=code, code=code, title=title, message=message)

    @app.errorhandler(NotFound)
    def _nf(e):
        return page(404, e.message)

    @app.errorhandler(Forbidden)
    def _fb(e):
        return page(403, e.message)

    @app.errorhandler(BadRequest)
    def _br(e):
        return page(400, e.message)

    @app.errorhandler(CSRFError)
    def _csrf(e):
        return page(400, _("The form has expired or did not come from this site. Reload the page and try again."))

    @app.errorhandler(HTTPException)
    def _http(e):
        if e.code == 404:
            return page(404, _("There is nothing at this address."))
        if e.code == 403:
            return page(403, _("You may not open this page."))
        if e.code == 413:
            return page(413, _("The request is larger than the limit of %(mb)s MB.", mb=security.max_request_mb()))
        if e.code == 405:   # RFC 9110: a 405 names the methods the address does take
            resp = current_app.make_response(page(405, _("This action is not allowed here.")))
            resp.headers["Allow"] = ", ".join(getattr(e, "valid_methods", None) or ())
            return resp
        if e.code and e.code < 500:
            return page(e.code, e.description)
        return page(e.code or 500, _("The server could not handle this request. It has been logged."))

    @app.errorhandler(Exception)
    def _crash(e):
        if isinstance(e, HTTPException):
            return _http(e)
        log.exception("unhandled error on %s %s", request.method, request.path)
        return page(500, _("The server could not handle this request. It has been logged."))


def hx_redirect(url: str):
    """Go to `url`: a real redirect, or HX-Location for htmx so the page changes without a reload."""
    if is_htmx():
        resp = current_app.make_response(("", 204))
        resp.headers["HX-Redirect"] = url
        return resp
    return redirect(url)


def url_lang(code: str) -> str:
    args = request.args.to_dict(flat=False)
    args["lang"] = [code]
    return url_for(request.endpoint or "ui.dashboard", **(request.view_args or {}), **args)


@login_manager.unauthorized_handler
def _unauthorized():
    target = url_for("ui.login", next=request.full_path.rstrip("?") if request.method == "GET" else None)
    if is_htmx():
        resp = current_app.make_response(("", 401))
        resp.headers["HX-Redirect"] = target
        return resp
    return redirect(target)
