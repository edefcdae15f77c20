"""Settings from the environment (and an optional instance/config.py)."""
from __future__ import annotations

import os
import secrets
from pathlib import Path

TRUE = ("1", "true", "yes", "on")
FALSE = ("0", "false", "no", "off")


def load_settings(app) -> None:
    instance = Path(app.instance_path)
    _private_dir(instance)
    app.config.from_pyfile(str(instance / "config.py"), silent=True)
    env = os.environ
    root = Path(app.root_path)
    app.config["DATABASE_URL"] = env.get("DATABASE_URL") or app.config.get("DATABASE_URL") \
        or f"sqlite:///{instance / 'crm.db'}"
    _private_sqlite_file(app.config["DATABASE_URL"], instance)
    app.config["REDIS_URL"] = env.get("REDIS_URL") or app.config.get("REDIS_URL")
    app.config["CRM_CONFIG_DIR"] = env.get("CRM_CONFIG_DIR") or app.config.get("CRM_CONFIG_DIR") or str(root / "config")
    app.config["ATTACHMENTS_DIR"] = env.get("ATTACHMENTS_DIR") or app.config.get("ATTACHMENTS_DIR") \
        or str(instance / "attachments")
    secret = env.get("SECRET_KEY") or app.config.get("SECRET_KEY")
    if not secret:
        secret = _secret_key(instance / "secret_key")
    app.config["SECRET_KEY"] = secret
    app.config.setdefault("MIGRATE_ON_START", env.get("CRM_MIGRATE_ON_START", "1") != "0")
    for key in ("SMTP_HOST", "SMTP_PORT", "SMTP_FROM", "SMTP_FROM_NAME", "SMTP_USER", "SMTP_PASSWORD", "SMTP_TLS",
                "CRM_SWEEP_SECONDS", "CRM_TIMEZONE", "CRM_WEBHOOK_PRIVATE"):
        if env.get(key):
            app.config[key] = env[key]
    if env.get("CRM_BACKGROUND"):
        app.config["CRM_BACKGROUND"] = env["CRM_BACKGROUND"] not in ("0", "false", "no")
    # Largest request body accepted (a 413 past it): CRM_MAX_REQUEST_MB, default 32.
    mb = env.get("CRM_MAX_REQUEST_MB") or app.config.get("CRM_MAX_REQUEST_MB") or 32
    try:
        app.config["MAX_CONTENT_LENGTH"] = int(float(mb) * 1024 * 1024)
    except ValueError:
        raise RuntimeError(f"CRM_MAX_REQUEST_MB={mb!r} is not a number of megabytes") from None
    # Cookies marked Secure always (1), or only for requests that came over HTTPS (unset: the default).
    secure = str(env.get("CRM_SECURE_COOKIES", app.config.get("CRM_SECURE_COOKIES", ""))).strip().lower()
    app.config["CRM_SECURE_COOKIES"] = True if secure in TRUE else (False if secure in FALSE else None)
    # Behind N reverse proxies, trust their X-Forwarded-For/-Proto (client address, HTTPS).
    proxies = env.get("CRM_TRUSTED_PROXIES") or app.config.get("CRM_TRUSTED_PROXIES")
    if proxies and int(proxies) > 0:
        from werkzeug.middleware.proxy_fix import ProxyFix
        n = int(proxies)
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=n, x_port=n)


def _private_dir(path: Path) -> None:
    """instance/ holds the secret key and the SQLite file: readable by the server's user only."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    _tighten(path, 0o700)


def _tighten(path: Path, mode: int) -> None:
    try:
        st = path.stat()
        if st.st_uid == os.getuid() and st.st_mode & 0o777 & ~mode:
            path.chmod(mode)
    except OSError:  # not ours, or a read-only mount: leave it
        pass


def _secret_key(key_file: Path) -> str:
    """The generated secret key, created once with mode 0600 (never readable by others, even briefly)."""
    try:
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        _tighten(key_file, 0o600)
    else:
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(32))
    return key_file.read_text().strip()


def _private_sqlite_file(url: str, instance: Path) -> None:
    """Create a SQLite database file with mode 0600 before SQLite does (it would use the umask);
    SQLite gives its journal and WAL files the same mode. A file in instance/ is tightened if needed."""
    if not url.startswith("sqlite:///"):
        return
    name = url[len("sqlite:///"):].split("?", 1)[0]
    if not name or name == ":memory:" or name.startswith("file:"):
        return
    path = Path(name)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        if path.resolve().parent == instance.resolve():
            _tighten(path, 0o600)
        return
    except OSError:           # a folder that does not exist yet: SQLite reports it when connecting
        return
    os.close(fd)
