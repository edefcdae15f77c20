import pytest

from tests.conftest import FIXTURES


@pytest.fixture
def make_app(db_url, tmp_path, monkeypatch):
    """An app on a fresh database with a config folder; returns (app, admin token). Each app's
    connection pool is closed afterwards, so a long PostgreSQL run does not pile up idle clients."""
    made = []

    def make(config_dir=FIXTURES / "mini"):
        monkeypatch.setenv("DATABASE_URL", db_url)
        monkeypatch.setenv("CRM_CONFIG_DIR", str(config_dir))
        monkeypatch.setenv("ATTACHMENTS_DIR", str(tmp_path / "files"))
        monkeypatch.setenv("SECRET_KEY", "test")
        from app import create_app
        from platform_ import auth
        app = create_app({"TESTING": True, "WTF_CSRF_ENABLED": False})
        rt = app.extensions["crm"]
        rt.ensure_schema()
        auth.create_user(rt.engine, "admin", "admin-Passw0rd", ["admin"])
        auth.create_user(rt.engine, "sam", "sam-Passw0rd!", ["staff"])
        made.append(rt)
        return app, auth.create_token(rt.engine, "admin"), auth.create_token(rt.engine, "sam")
    yield make
    for rt in made:
        rt.engine.dispose()


@pytest.fixture
def api(make_app):
    app, token, staff_token = make_app()
    client = app.test_client()

    class Api:
        def __init__(self, tok):
            self.tok = tok

        def __call__(self, method, path, body=None, token=True, **kw):
            headers = {"Authorization": f"Bearer {self.tok}"} if token else {}
            headers.update(kw.pop("headers", {}))
            r = client.open("/api/v1" + path, method=method, json=body, headers=headers, **kw)
            return r.status_code, r.get_json(silent=True)

    a = Api(token)
    a.staff = Api(staff_token)
    a.app = app
    return a
