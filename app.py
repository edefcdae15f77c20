"""Create the Flask app (`flask` finds `create_app` from the repo root)."""
from __future__ import annotations

import logging
import warnings

from flask import Flask

import platform_.saved_views  # noqa: F401  (its table joins the system metadata)
import platform_.signin  # noqa: F401  (sign-in attempts, ditto)

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
                 migrate_on_start=bool(app.config["MIGRATE_ON_START"]), instance_dir=app.instance_path)
    rt.load()
    app.extensions["crm"] = rt

    from engine import clock
    clock.set_timezone(app.config.get("CRM_TIMEZONE"))

    from platform_.api import bp as api_bp
    from platform_.cli import crm
    from platform_.health import bp as health_bp
    from platform_.jobs import after_request_kick, make_jobs
    app.register_blueprint(api_bp)
    app.register_blueprint(health_bp)
    app.cli.add_command(crm)
    app.config.setdefault("CRM_BACKGROUND", not app.config.get("TESTING"))
    app.extensions["crm_jobs"] = make_jobs(app)

    @app.before_request
    def _follow_config_changes():
        rt.follow()             # another process applied a config change: serve it within a second

    @app.before_request
    def _start_background_jobs():
        if app.config["CRM_BACKGROUND"]:
            app.extensions["crm_jobs"].start()

    @app.after_request
    def _kick_background_jobs(response):
        after_request_kick(app)
        return response

    try:
        from ui import init_ui
    except ImportError:  # the UI package is optional for API-only deployments
        init_ui = None
    if init_ui is not None:
        init_ui(app)
    return app
