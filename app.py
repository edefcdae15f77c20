"""Create the Flask app (`flask` finds `create_app` from the repo root)."""
from __future__ import annotations

import logging
import warnings

from flask import Flask

import platform_.saved_views  # noqa: F401  (its table joins the system metadata)

from platform_.settings import load_settings

warnings.filterwarnings("ignore", message=".*does \\*not\\* support Decimal objects natively.*")


def create_app(overrides: dict | None = None) -> Flask:
    app = Flask(__name__, instance_relative_config=True, static_folder=None)
    load_settings(app)
    if overrides:
        app.config.update(overrides)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)

    from platform_.runtime import Runtime
    rt = Runtime(app.config["DATABASE_URL"], app.config["CRM_CONFIG_DIR"], app.config["ATTACHMENTS_DIR"],
                 migrate_on_start=bool(app.config["MIGRATE_ON_START"]))
    rt.load()
    app.extensions["crm"] = rt

    from platform_.api import bp as api_bp
    from platform_.cli import crm
    app.register_blueprint(api_bp)
    app.cli.add_command(crm)

    try:
        from ui import init_ui
    except ImportError:  # the UI package is optional for API-only deployments
        init_ui = None
    if init_ui is not None:
        init_ui(app)
    return app
