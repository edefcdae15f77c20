"""The config language completed (issue 11 part 6): keys that were accepted and ignored now work or
are refused by `check`; a final state may be left by a transition that names it; `sensitive`
fields keep their values out of the audit trail."""
from __future__ import annotations

from decimal import Decimal

import pytest

from engine import audit
from engine.actor import Actor
from engine.audit import AuditTrail
from engine.db import make_engine
from engine.errors import ConfigInvalid, ValidationFailed
from engine.query import ListRequest
from engine.loader import load_config
from engine.migrator import Migrator
from engine.statemachine import Workflows
from engine.store import RecordStore
from tests.engine.test_a7_config import edit, line_of, problems_of

ADMIN = Actor(id=None, username="admin", roles=("admin",))
ACCOUNT = "entities/account.yaml"


@pytest.mark.parametrize("field, message", [
    ("{type: string, scale: 2}", "'scale' does not apply to a string field"),
    ("{type: decimal, precision: 4, scale: 6}", "scale 6 is greater than precision 4"),
    ("{type: string, min: 1}", "'min' does not apply to a string field"),
    ("{type: integer, min_length: 2}", "'min_length' does not apply to an integer field"),
    ("{type: date, pattern: '^2'}", "'pattern' does not apply to a date field"),
    ("{type: string, currency: CNY}", "'currency' does not apply to a string field"),
    ("{type: money, currency: yuan}", "does not match"),
    ("{type: integer, min: 10, max: 1}", "min 10 is greater than max 1"),
])
def test_check_refuses_keys_that_do_not_apply_at_their_line(config_copy, field, message):
    cfg = config_copy()
    edit(cfg / ACCOUNT, "  active: {type: boolean", f"  odd: {field}\n  active: {{type: boolean")
    out = problems_of(cfg)
    line = line_of(cfg / ACCOUNT, "  odd:")
    assert any(f"account.yaml:{line}:" in p and message in p for p in out), out


def test_icon_is_refused_and_description_currency_sensitive_load(config_copy):
    cfg = config_copy()
    edit(cfg / ACCOUNT, "module: customers", "module: customers\nicon: building")
    assert any("unknown key 'icon'" in p for p in problems_of(cfg))
    edit(cfg / ACCOUNT, "icon: building", "description: {en: Companies we sell to, zh: 我们的客户公司}")
    edit(cfg / ACCOUNT, "revenue: {type: money, min: 0}", "revenue: {type: money, min: 0, currency: CNY, sensitive: true}")
    e = load_config(cfg).entities["account"]
    assert e.description == {"en": "Companies we sell to", "zh": "我们的客户公司"}
    assert (e.fields["revenue"].currency, e.fields["revenue"].sensitive) == ("CNY", True)


@pytest.fixture
def reopenable(config_copy, db_url):
    """The mini deal flow where `lost` stays final (for reports and SLAs) but may be reopened."""
    cfg = config_copy()
    wf = cfg / "workflows" / "deal_flow.yaml"
    edit(wf, "  lose: {from: open", "  reopen: {from: lost, to: open}\n  wipe: {from: '*', to: lost}\n  lose: {from: open")
    config = load_config(cfg)
    eng = make_engine(db_url)
    m = Migrator(eng, config)
    m.apply()
    store = RecordStore(eng, config, m.metadata)
    wfs = Workflows(store)
    wfs.register_definitions()
    yield store, wfs
    eng.dispose()


def test_a_final_state_is_left_only_by_a_transition_that_names_it(reopenable):
    store, wfs = reopenable
    acc = store.create("account", {"name": "Acme", "email": "a@acme.example"}, ADMIN)
    deal = store.create("deal", {"name": "D", "account": acc["id"]}, ADMIN)
    wfs.execute("deal", deal["id"], "lose", ADMIN, comment="no budget")
    offered = {t["name"]: t for t in wfs.available("deal", deal["id"], ADMIN)}
    assert "reopen" in offered and offered["reopen"]["allowed"]
    assert "wipe" not in offered and "win" not in offered     # `from: "*"` never leaves a final state
    wfs.execute("deal", deal["id"], "reopen", ADMIN)
    assert store.get("deal", deal["id"], ADMIN)["stage"] == "open"


@pytest.fixture
def sensitive_store(config_copy, db_url):
    cfg = config_copy()
    edit(cfg / ACCOUNT, "revenue: {type: money, min: 0}", "revenue: {type: money, min: 0, sensitive: true}")
    config = load_config(cfg)
    eng = make_engine(db_url)
    m = Migrator(eng, config)
    m.apply()
    store = RecordStore(eng, config, m.metadata)
    trail = AuditTrail(store)
    yield store
    trail.close()
    eng.dispose()


def test_the_audit_trail_records_that_a_sensitive_field_changed_never_its_values(sensitive_store):
    store = sensitive_store
    rec = store.create("account", {"name": "Salary Co", "revenue": "88000.00"}, ADMIN)
    store.update("account", rec["id"], {"revenue": "99000.00"}, ADMIN)
    store.update("account", rec["id"], {"name": "Renamed Co"}, ADMIN)
    got = audit.entries(store.engine, entity="account", record_id=rec["id"])["items"]
    assert [i["action"] for i in got] == ["update", "update", "create"]
    assert got[2]["changes"]["revenue"] == [None, "***"]
    assert got[1]["changes"] == {"revenue": ["***", "***"]}          # the change is there, the values are not
    assert got[0]["changes"] == {"name": ["Salary Co", "Renamed Co"]}
    assert "88000" not in str(got) and "99000" not in str(got)
    assert store.get("account", rec["id"], ADMIN)["revenue"] == Decimal("99000.00")   # the record keeps it


def test_a_bad_currency_code_is_a_config_error(config_copy):
    cfg = config_copy()
    edit(cfg / ACCOUNT, "revenue: {type: money, min: 0}", "revenue: {type: money, min: 0, currency: RMB1}")
    with pytest.raises(ConfigInvalid):
        load_config(cfg)


@pytest.fixture
def form_rules(config_copy, db_url):
    """The mini account form: revenue required for high-level accounts while shown (not for inactive ones)."""
    cfg = config_copy()
    (cfg / "forms" / "account.yaml").write_text(
        "form: account\nentity: account\nsections:\n  - fields: [name, email, level, active, revenue]\n"
        "fields:\n  revenue: {required_if: \"level == 'high'\", visible_if: \"active\"}\n", encoding="utf-8")
    config = load_config(cfg)
    eng = make_engine(db_url)
    m = Migrator(eng, config)
    m.apply()
    yield RecordStore(eng, config, m.metadata)
    eng.dispose()


def test_a_forms_required_if_binds_the_api_too(form_rules):
    store = form_rules
    with pytest.raises(ValidationFailed) as info:
        store.create("account", {"name": "Big", "email": "b@big.example", "level": "high"}, ADMIN)      # API (json)
    assert info.value.fields == {"revenue": "is required"}
    assert store.list("account", ListRequest(filters=[]), ADMIN)["items"] == []                      # nothing saved
    ok = store.create("account", {"name": "Big", "email": "b@big.example", "level": "high", "revenue": "5"}, ADMIN)
    with pytest.raises(ValidationFailed) as info:                  # clearing it later is refused the same way
        store.update("account", ok["id"], {"revenue": None}, ADMIN)
    assert info.value.fields == {"revenue": "is required"}
    assert store.get("account", ok["id"], ADMIN)["revenue"] == Decimal("5")
    # hidden by visible_if: not required, as in the browser; low level: not required
    store.create("account", {"name": "Dormant", "email": "d@x.example", "level": "high", "active": False}, ADMIN)
    store.create("account", {"name": "Small", "email": "s@x.example", "level": "low"}, ADMIN)
    # the engine's own writes (workflow actions, timers) are not held to a form
    store.create("account", {"name": "Internal", "email": "i@x.example", "level": "high"}, ADMIN, mode="internal")


@pytest.fixture
def pack_copy(tmp_path):
    import shutil
    from tests.conftest import ROOT
    dst = tmp_path / "crm"
    shutil.copytree(ROOT / "config", dst)
    return dst


def test_workflow_roles_and_entity_modules_must_be_declared_by_a_pack(pack_copy):
    wf = next(p for p in (pack_copy / "workflows").glob("*.yaml") if "roles: [" in p.read_text(encoding="utf-8"))
    text = wf.read_text(encoding="utf-8")
    wf.write_text(text.replace("roles: [", "roles: [ghost_role, ", 1), encoding="utf-8")
    ent = next(p for p in (pack_copy / "entities").glob("*.yaml") if "\nmodule: " in p.read_text(encoding="utf-8"))
    etext = ent.read_text(encoding="utf-8")
    ent.write_text(etext.replace("\nmodule: ", "\nmodule: ghost_module #", 1), encoding="utf-8")
    out = problems_of(pack_copy)
    assert any(f"{wf.name}:" in p and "'ghost_role' is not a role of the packs" in p for p in out), out
    assert any(f"{ent.name}:" in p and "'ghost_module' is not a module of the packs" in p for p in out), out


def test_access_and_home_files_of_packs_beside_join_the_folders_own(pack_copy):
    """access/<pack>.yaml and home/<pack>.yaml (where `flask crm pack install` puts a pack's own) join
    access.yaml and home.yaml; one role and entity set differently in two files is refused."""
    (pack_copy / "access").mkdir()
    (pack_copy / "home").mkdir()
    (pack_copy / "access" / "extra.yaml").write_text(
        "permissions:\n  sales:\n    holiday: [read]\nscopes:\n  finance:\n    customer: own\n", encoding="utf-8")
    (pack_copy / "home" / "extra.yaml").write_text(
        "lists:\n  extra_holidays:\n    label: {en: Holidays, zh: 假日}\n    entity: holiday\n"
        "roles:\n  sales:\n    show: [extra_holidays]\n", encoding="utf-8")
    cfg = load_config(pack_copy)
    assert cfg.access.scopes["finance"]["customer"] == "own"                     # joined from the pack's file
    assert cfg.access.scopes["sales"]["customer"] == "team"                      # the folder's own kept
    assert cfg.home.roles["sales"].show[-1] == "extra_holidays" and "tasks" in cfg.home.roles["sales"].show
    (pack_copy / "access" / "extra.yaml").write_text(
        "scopes:\n  sales:\n    customer: own\n", encoding="utf-8")                # the CRM says `team`
    out = problems_of(pack_copy)
    assert any("access/extra.yaml:" in p and "scopes of 'sales' on 'customer' is also set, differently, by" in p
               for p in out), out
