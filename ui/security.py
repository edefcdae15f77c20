"""Browser-facing hardening: response headers (CSP and friends), cookie flags, the request size limit.

The pages load only the vendored htmx, pico.css, ui.css and ui.js from /static/ui: there is no
inline script, style element, style attribute or event-handler attribute, and htmx runs with
`allowEval: false` (see base.html), so the policy allows scripts and styles from this site only.
Colours from the config (badges, stages) are `data-color` attributes that ui.js applies.
"""
from __future__ import annotations

from flask import Flask, current_app, request

CSP = "; ".join([
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",          # pico.css draws its icons as data: SVGs
    "font-src 'self'",
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'self'",
    "form-action 'self'",
    "frame-ancestors 'none'",
])

DEFAULT_MAX_REQUEST_MB = 32


def max_request_mb() -> float:
    limit = current_app.config.get("MAX_CONTENT_LENGTH")
    return round(limit / (1024 * 1024), 1) if limit else DEFAULT_MAX_REQUEST_MB


def add_security_headers(resp):
    """Every answer: nosniff, no framing, same-origin referrers; pages and files also get the CSP."""
    h = resp.headers
    h.setdefault("X-Content-Type-Options", "nosniff")
    h.setdefault("Referrer-Policy", "same-origin")
    h.setdefault("X-Frame-Options", "DENY")
    if request.path.startswith("/api/"):
        h.setdefault("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
    else:
        h.setdefault("Content-Security-Policy", CSP)
    return resp


def configure_cookies(app: Flask) -> None:
    """Session and remember-me cookies: HttpOnly, SameSite=Lax, and Secure over HTTPS.

    Flask pre-defines SESSION_COOKIE_SAMESITE as None, so `setdefault` would never apply: an
    explicit value from instance/config.py is kept, None becomes Lax."""
    cfg = app.config
    for key in ("SESSION_COOKIE_SAMESITE", "REMEMBER_COOKIE_SAMESITE"):
        if not cfg.get(key):
            cfg[key] = "Lax"
    cfg["SESSION_COOKIE_HTTPONLY"] = True
    cfg["REMEMBER_COOKIE_HTTPONLY"] = True
    if cfg.get("CRM_SECURE_COOKIES") is True:
        cfg["SESSION_COOKIE_SECURE"] = True
        cfg["REMEMBER_COOKIE_SECURE"] = True
    app.wsgi_app = SecureCookies(app.wsgi_app, always=bool(cfg.get("CRM_SECURE_COOKIES")))


class SecureCookies:
    """WSGI middleware: mark every cookie Secure when the request came over HTTPS (or always when
    CRM_SECURE_COOKIES is on). Put ProxyFix in front (CRM_TRUSTED_PROXIES) behind a TLS proxy."""

    def __init__(self, wsgi_app, always: bool = False):
        self.wsgi_app, self.always = wsgi_app, always

    def __call__(self, environ, start_response):
        def secure_start_response(status, headers, exc_info=None):
            # read the scheme now: a ProxyFix inside this middleware has set it by the time the app answers
            if not (self.always or environ.get("wsgi.url_scheme") == "https"):
                return start_response(status, headers, exc_info) if exc_info else start_response(status, headers)
            fixed = []
            for name, value in headers:
                if name.lower() == "set-cookie" and "secure" not in [p.strip().lower() for p in value.split(";")[1:]]:
                    value += "; Secure"
                fixed.append((name, value))
            return start_response(status, fixed, exc_info) if exc_info else start_response(status, fixed)

        return self.wsgi_app(environ, secure_start_response)
