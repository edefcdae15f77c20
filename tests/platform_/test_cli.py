"""The `flask crm` commands of DESIGN.md, run as a user runs them (CliRunner on the real app)."""
import re
import shutil

import pytest

from tests.conftest import FIXTURES, ROOT


@pytest.fixture
def cli(tmp_path, monkeypatch):
    def make(config_dir=ROOT / "config", db=None):
        monkeypatch.setenv("DATABASE_URL", db or f"sqlite:///{tmp_path}/cli.db")
        monkeypatch.setenv("CRM_CONFIG_DIR", str(config_dir))
        monkeypatch.setenv("SECRET_KEY", "cli")
        from app import create_app
        app = create_app({"TESTING": True})
        runner = app.test_cli_runner()

        def run(*args, code=0):
            r = runner.invoke(args=["crm", *args], catch_exceptions=False)
            assert r.exit_code == code, r.output
            return r.output
        run.app = app
        return run
    return make


def test_cli_check_init_users_tokens_demo(cli, db_url):
    run = cli(db=db_url)
    from engine.loader import load_config
    cfg = load_config(ROOT / "config")
    assert f"OK ({len(cfg.entities)} entities, {len(cfg.forms)} forms, {len(cfg.workflows)} workflows)" in run("check")
    assert "Database ready" in run("init")
    assert "User boss created" in run("user", "create", "boss", "--password", "boss-Passw0rd", "--role", "admin")
    assert "already exists" in run("user", "create", "boss", "--password", "boss-Passw0rd", code=1)
    assert "at least 10" in run("user", "create", "shorty", "--password", "x", code=1)
    out = run("token", "create", "--user", "boss")
    token = out.strip().splitlines()[-1]
    assert re.fullmatch(r"crm_[A-Za-z0-9_-]{40,}", token)
    out = run("demo", "--records", "10")
    assert "customer 10" in out and "demo_sales_manager" in out
    assert "already has records" in run("demo", "--records", "10", "--if-empty")
    client = run.app.test_client()
    r = client.get("/api/v1/customer?per_page=1", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200 and r.get_json()["total"] == 10
    assert "demo_finance" in run("user", "list")


def test_cli_check_bad_config_names_every_problem(cli, tmp_path):
    bad = tmp_path / "bad"
    shutil.copytree(FIXTURES / "mini", bad)
    f = bad / "entities" / "account.yaml"
    f.write_text(f.read_text().replace("type: email", "type: emial").replace("max_length: 100", "max_lenght: 100"))
    run = cli(FIXTURES / "mini")
    out = run("check", str(bad), code=1)
    assert "account.yaml:6:" in out and "account.yaml:7:" in out and "did you mean 'email'" in out


def test_cli_migrate_plan_and_apply(cli, tmp_path):
    cfg = tmp_path / "cfg"
    shutil.copytree(FIXTURES / "mini", cfg)
    run = cli(cfg)
    run("init")
    assert "nothing to do" in run("migrate", "--plan")
    acc = cfg / "entities" / "account.yaml"
    acc.write_text(acc.read_text().replace("  tags: {type: multiselect, options: [a, b, c]}\n", "")
                   .replace("fields:\n", "fields:\n  fax: {type: phone}\n"))
    run2 = cli(cfg)
    plan = run2("migrate", "--plan")
    assert "+ add_column e_account.fax" in plan and "! remove_field e_account.tags" in plan
    assert "allow-destructive" in run2("migrate", "--apply", code=1)
    out = run2("migrate", "--apply", "--allow-destructive")
    assert "Applied." in out
    assert "nothing to do" in run2("migrate", "--plan")
    assert "dropped e_account._removed_tags" in run2("migrate", "--purge", "--allow-destructive")


def test_cli_backup_restore(cli, tmp_path):
    run = cli(FIXTURES / "mini")
    run("init")
    run("user", "create", "a", "--password", "a-Passw0rd", "--role", "admin")
    run("demo", "--records", "5", "--no-users")
    out = run("backup", str(tmp_path / "b.zip"))
    assert "Backup written" in out
    other = cli(FIXTURES / "mini", db=f"sqlite:///{tmp_path}/other.db")
    other("init")
    assert "Restored" in other("restore", str(tmp_path / "b.zip"), "--yes")
    from engine.query import ListRequest
    from engine.actor import SYSTEM_ACTOR
    store = other.app.extensions["crm"].store
    assert store.list("account", ListRequest(filters=[]), SYSTEM_ACTOR)["total"] == 5


def test_a5_migrate_lists_records_in_flight_and_refuses_to_strand(cli, tmp_path):
    import sqlalchemy as sa
    from engine.actor import SYSTEM_ACTOR
    cfg = tmp_path / "flow"
    shutil.copytree(FIXTURES / "flow", cfg)
    run = cli(cfg)
    run("init")
    rt = run.app.extensions["crm"]
    p = rt.store.create("paper", {"title": "in flight", "amount": 5}, SYSTEM_ACTOR)
    rt.workflows.execute("paper", p["id"], "submit", SYSTEM_ACTOR)
    wf = cfg / "workflows" / "paper_flow.yaml"
    text = wf.read_text().replace("  review: {label: {en: In review, zh: 审核中}, color: blue}\n", "")
    wf.write_text(text.replace("submit: {from: draft, to: review,", "submit: {from: draft, to: approved,")
                  .replace("    from: review\n    to: approved\n", "    from: draft\n    to: approved\n"))
    run2 = cli(cfg)
    plan = run2("migrate", "--plan")
    assert "1 record(s) in state 'review'" in plan and "keep running on stored version" in plan
    with rt.engine.begin() as c:
        c.execute(sa.text("update e_paper set status = 'limbo'"))
    out = run2("migrate", "--apply", code=1)
    assert "state 'limbo', which no version of paper_flow has" in out and "Refused" in out
    assert "is not a state" in run2("workflow", "move", "paper", "limbo", "nowhere", code=1)
    assert "Moved 1 paper record(s)" in run2("workflow", "move", "paper", "limbo", "draft")
    assert "Refused" not in run2("migrate", "--apply")                    # exit 0: nobody is stranded now
    hist = run2.app.extensions["crm"].workflows.history("paper", p["id"])
    assert hist[-1]["event"] == "migrated" and hist[-1]["to_state"] == "draft"
