"""Settings from the environment (and an optional instance/config.py)."""
from __future__ import annotations

import os
import secrets
from pathlib import Path


def load_settings(app) -> None:
    instance = Path(app.instance_path)
    instance.mkdir(parents=True, exist_ok=True)
    app.config.from_pyfile(str(instance / "config.py"), silent=True)
    env = os.environ
    root = Path(app.root_path)
    app.config["DATABASE_URL"] = env.get("DATABASE_URL") or app.config.get("DATABASE_URL") \
        or f"sqlite:///{instance / 'crm.db'}"
    app.config["REDIS_URL"] = env.get("REDIS_URL") or app.config.get("REDIS_URL")
    app.config["CRM_CONFIG_DIR"] = env.get("CRM_CONFIG_DIR") or app.config.get("CRM_CONFIG_DIR") or str(root / "config")
    app.config["ATTACHMENTS_DIR"] = env.get("ATTACHMENTS_DIR") or app.config.get("ATTACHMENTS_DIR") \
        or str(instance / "attachments")
    secret = env.get("SECRET_KEY") or app.config.get("SECRET_KEY")
    if not secret:
        key_file = instance / "secret_key"
        if not key_file.exists():
            key_file.write_text(secrets.token_hex(32))
            key_file.chmod(0o600)
        secret = key_file.read_text().strip()
    app.config["SECRET_KEY"] = secret
    app.config.setdefault("MIGRATE_ON_START", env.get("CRM_MIGRATE_ON_START", "1") != "0")
    for key in ("SMTP_HOST", "SMTP_PORT", "SMTP_FROM", "SMTP_FROM_NAME", "SMTP_USER", "SMTP_PASSWORD", "SMTP_TLS",
                "CRM_SWEEP_SECONDS", "CRM_TIMEZONE"):
        if env.get(key):
            app.config[key] = env[key]
    if env.get("CRM_BACKGROUND"):
        app.config["CRM_BACKGROUND"] = env["CRM_BACKGROUND"] not in ("0", "false", "no")
