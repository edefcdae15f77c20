"""Studio API (issue 11 part 2): plan, apply, versions, restore, conflicts, reload in every process,
and the dependency guard (part 5)."""
from __future__ import annotations

import shutil

import pytest

from tests.conftest import FIXTURES

NEW_FIELD = "  wechat_id: {type: string, max_length: 64, label: {en: WeChat ID, zh: 微信号}}\n"


@pytest.fixture
def studio(make_app, tmp_path):
    cfg = tmp_path / "cfg"
    shutil.copytree(FIXTURES / "mini", cfg)
    app, admin, staff = make_app(cfg)
    client = app.test_client()

    def call(method, path, body=None, token=admin):
        r = client.open("/api/v1" + path, method=method, json=body, headers={"Authorization": f"Bearer {token}"})
        return r.status_code, r.get_json(silent=True)
    call.app, call.cfg, call.staff = app, cfg, staff
    return call


def account_text(cfg):
    return (cfg / "entities" / "account.yaml").read_text(encoding="utf-8")


def with_wechat(text):
    return text.replace("fields:\n", "fields:\n" + NEW_FIELD, 1)


def create_with_wechat(studio):
    return studio("POST", "/account", {"name": "Acme", "email": "a@acme.example", "wechat_id": "wx_acme"})


def test_plan_shows_steps_and_changes_nothing(studio):
    before = account_text(studio.cfg)
    s, plan = studio("POST", "/admin/config/plan", {"files": {"entities/account.yaml": with_wechat(before)}})
    assert s == 200 and plan["problems"] == []
    assert any(st["kind"] == "add_column" and st["column"] == "wechat_id" for st in plan["steps"])
    assert account_text(studio.cfg) == before
    assert create_with_wechat(studio)[0] == 422


def test_apply_serves_the_field_and_is_listed_with_its_message(studio):
    s, out = studio("POST", "/admin/config/apply", {"files": {"entities/account.yaml": with_wechat(account_text(studio.cfg))},
                                                    "message": "add wechat"})
    assert s == 200 and out["version"] == 2
    s, rec = create_with_wechat(studio)
    assert s == 201 and rec["wechat_id"] == "wx_acme"
    s, versions = studio("GET", "/admin/config/versions")
    items = versions["items"]
    assert [(i["version"], i["message"], i["user"]) for i in items[:2]] == [
        (2, "add wechat", "admin"), (1, "initial configuration", "system")]
    s, v2 = studio("GET", "/admin/config/versions/2")
    assert "wechat_id" in v2["files"]["entities/account.yaml"]


def test_invalid_change_is_refused_with_problems_and_nothing_changes(studio):
    before = account_text(studio.cfg)
    bad = before.replace("fields:\n", "fields:\n  wechat_id: {type: strin}\n", 1)
    s, out = studio("POST", "/admin/config/apply", {"files": {"entities/account.yaml": bad}, "message": "typo"})
    assert s == 422
    assert any("entities/account.yaml" in p and "strin" in p for p in out["error"]["problems"])
    assert account_text(studio.cfg) == before
    s, versions = studio("GET", "/admin/config/versions")
    assert [i["message"] for i in versions["items"]] == ["initial configuration"]
    assert create_with_wechat(studio)[0] == 422


@pytest.mark.parametrize("path", ["../outside.yaml", "/etc/x.yaml", "entities/x.txt", ".hidden/x.yaml"])
def test_paths_outside_the_folder_are_refused(studio, path):
    s, out = studio("POST", "/admin/config/apply", {"files": {path: "entity: x\n"}})
    assert s == 400 and path in " ".join(out["error"]["problems"])


def test_stale_base_version_is_a_conflict(studio):
    text = with_wechat(account_text(studio.cfg))
    assert studio("POST", "/admin/config/apply", {"files": {"entities/account.yaml": text}, "base_version": 1})[0] == 200
    other = account_text(studio.cfg).replace("fields:\n", "fields:\n  skype: {type: string}\n", 1)
    s, out = studio("POST", "/admin/config/apply", {"files": {"entities/account.yaml": other}, "base_version": 1})
    assert s == 409 and "version 2" in out["error"]["message"]
    assert "skype" not in account_text(studio.cfg)


def test_restore_needs_consent_for_risky_steps_then_removes_the_field(studio):
    studio("POST", "/admin/config/apply", {"files": {"entities/account.yaml": with_wechat(account_text(studio.cfg))}})
    s, out = studio("POST", "/admin/config/versions/1/restore", {})
    assert s == 422 and any("wechat_id" in p for p in out["error"]["problems"])
    assert "wechat_id" in account_text(studio.cfg)
    s, out = studio("POST", "/admin/config/versions/1/restore", {"allow_destructive": True})
    assert s == 200 and out == {"version": 3, "restored": 1}
    assert "wechat_id" not in account_text(studio.cfg)
    assert create_with_wechat(studio)[0] == 422
    assert studio("POST", "/admin/config/versions/99/restore", {})[0] == 404


def test_only_admins(studio):
    assert studio("POST", "/admin/config/plan", {"files": {}}, token=studio.staff)[0] == 403
    assert studio("GET", "/admin/config/versions", token=studio.staff)[0] == 403


def test_another_process_serves_the_change(studio, monkeypatch):
    """A second app on the same database and folder (another web or worker process) reloads when
    the generation moves; its once-a-second throttle is reset instead of waited for."""
    from app import create_app
    other = create_app({"TESTING": True})
    rt2 = other.extensions["crm"]
    assert "wechat_id" not in rt2.config.entities["account"].fields
    studio("POST", "/admin/config/apply", {"files": {"entities/account.yaml": with_wechat(account_text(studio.cfg))}})
    rt2._checked = 0.0
    try:
        r = other.test_client().get("/api/v1/openapi.json")
        assert "wechat_id" in r.get_data(as_text=True)
        assert "wechat_id" in rt2.config.entities["account"].fields
    finally:
        rt2.engine.dispose()


def test_migrate_apply_reaches_running_processes(studio):
    from platform_ import configstore
    rt = studio.app.extensions["crm"]
    before = configstore.generation(rt.engine)
    path = studio.cfg / "entities" / "account.yaml"
    path.write_text(with_wechat(path.read_text(encoding="utf-8")), encoding="utf-8")
    res = studio.app.test_cli_runner().invoke(args=["crm", "migrate", "--apply"])
    assert res.exit_code == 0, res.output
    assert configstore.generation(rt.engine) == before + 1
    rt._checked = 0.0
    assert create_with_wechat(studio)[0] == 201
    items = studio("GET", "/admin/config/versions")[1]["items"]
    assert items[0]["message"] == "changes made outside the studio"


def test_removing_a_used_field_lists_every_place(studio):
    text = account_text(studio.cfg)
    without_email = "\n".join(line for line in text.splitlines() if not line.strip().startswith("email:")) + "\n"
    s, out = studio("POST", "/admin/config/plan", {"files": {"entities/account.yaml": without_email}})
    guard = [p for p in out["problems"] if p.startswith("field account.email")]
    assert guard and "forms/account.yaml" in guard[0] and "entities/account.yaml: rules" in guard[0]
    s, out = studio("POST", "/admin/config/apply", {"files": {"entities/account.yaml": without_email},
                                                    "allow_destructive": True})
    assert s == 422 and "email:" in account_text(studio.cfg)


def test_removing_a_used_state_lists_every_place(studio):
    wf = (studio.cfg / "workflows" / "deal_flow.yaml").read_text(encoding="utf-8")
    no_won = "\n".join(line for line in wf.splitlines() if not line.strip().startswith("won:")) + "\n"
    s, out = studio("POST", "/admin/config/plan", {"files": {"workflows/deal_flow.yaml": no_won}})
    guard = [p for p in out["problems"] if p.startswith("state 'won'")]
    assert guard and "workflows/deal_flow.yaml: transitions.win.to" in guard[0]


def test_removing_a_linked_entity_lists_the_links(studio):
    s, out = studio("POST", "/admin/config/plan", {"files": {"entities/account.yaml": None,
                                                             "forms/account.yaml": None}})
    guard = [p for p in out["problems"] if p.startswith("entity 'account'")]
    assert guard and "entities/deal.yaml: fields.account.to" in guard[0]
