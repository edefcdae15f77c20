"""The generated web UI: every page is built from the loaded config, nothing names an entity.

`init_ui(app)` wires Flask-Login, Flask-WTF's CSRFProtect, Flask-Babel and flask-htmx into the
app and registers the `ui` blueprint (shell, lists, record pages, forms).
"""
from __future__ import annotations

from flask import Flask


def init_ui(app: Flask) -> None:
    from flask_babel import Babel
    from flask_htmx import HTMX
    from flask_wtf.csrf import CSRFProtect

    from . import i18n, security, web
    from . import automation, forms, inbox, lists, records, shell  # noqa: F401  (routes register on web.bp)
    from . import org  # noqa: F401  (users, teams and regions for administrators)
    from . import audit_view  # noqa: F401  (the auditor's page /audit)
    from . import board, home  # noqa: F401  (daily work: the board and the home page)
    from . import access_view  # noqa: F401  (the administrator's "view as" page)
    from . import reports  # noqa: F401  (reports and dashboards: /reports, /dashboards)
    from . import imports  # noqa: F401  (the import page /e/<entity>/import)
    from . import studio  # noqa: F401  (the admin studio /admin: designers, changes, history)

    app.config.setdefault("WTF_CSRF_TIME_LIMIT", None)  # a form left open all day still saves
    app.config.setdefault("WTF_CSRF_SSL_STRICT", False)
    security.configure_cookies(app)
    directory = i18n.compile_catalogs()
    Babel(app, locale_selector=i18n.babel_locale, default_translation_directories=str(directory))
    HTMX(app)
    csrf = CSRFProtect(app)
    api = app.blueprints.get("api")
    if api is not None:
        csrf.exempt(api)  # the API authenticates with bearer tokens, not cookies
    web.login_manager.init_app(app)
    app.register_blueprint(web.bp)
    web.register_error_pages(app)
    app.jinja_env.autoescape = True
