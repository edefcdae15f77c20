"""Packs side by side (issue 11 part 3): `flask crm pack install | upgrade | uninstall | export | list`
on SQLite and PostgreSQL; every refused pack changes nothing."""
from __future__ import annotations

import shutil
import zipfile
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.conftest import FIXTURES, ROOT

MINI_PACK = "pack: mini\nversion: 1.0.0\nlabel: {en: Mini, zh: 迷你}\nroles:\n  - {id: admin}\n  - {id: staff}\n"
WIDGET = """entity: widget
label: {en: Widget, zh: 部件}
module: extra
fields:
  name: {type: string, required: true, max_length: 140, label: {en: Name, zh: 名称}}
  size: {type: integer, label: {en: Size, zh: 尺寸}}
"""
GADGET = "entity: gadget\nlabel: {en: Gadget, zh: 小工具}\nfields:\n  name: {type: string, label: Name}\n"


def manifest(version="0.1.0", extra=""):
    return f"pack: extra\nversion: {version}\nlabel: {{en: Extra, zh: 附加}}\nmodules:\n" \
           f"  - {{id: extra, label: {{en: Extra, zh: 附加}}}}\n{extra}"


def write_pack(root: Path, files: dict) -> Path:
    if root.exists():
        shutil.rmtree(root)
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text, encoding="utf-8")
    return root


@pytest.fixture
def inst(make_app, tmp_path):
    cfg = tmp_path / "cfg"
    shutil.copytree(FIXTURES / "mini", cfg)
    (cfg / "pack.yaml").write_text(MINI_PACK, encoding="utf-8")
    app, admin, _staff = make_app(cfg)
    client = app.test_client()

    class Inst:
        def api(self, method, path, body=None):
            r = client.open("/api/v1" + path, method=method, json=body, headers={"Authorization": f"Bearer {admin}"})
            return r.status_code, r.get_json(silent=True)

        def crm(self, *args):
            res = app.test_cli_runner().invoke(args=["crm", *map(str, args)])
            app.extensions["crm"]._checked = 0.0     # the next request checks the generation at once
            return res.exit_code, res.output

        def folder(self):
            return {p.relative_to(cfg).as_posix(): p.read_text(encoding="utf-8")
                    for p in sorted(cfg.rglob("*.yaml"))}

        def tables(self):
            return set(sa.inspect(app.extensions["crm"].engine).get_table_names())
    i = Inst()
    i.cfg, i.tmp, i.app = cfg, tmp_path, app
    return i


def test_install_list_uninstall_keeps_data_reinstall_purge(inst):
    src = write_pack(inst.tmp / "extra", {"pack.yaml": manifest(), "entities/widget.yaml": WIDGET})
    code, out = inst.crm("pack", "install", src)
    assert code == 0, out
    assert "create_table e_widget" in out and "Installed extra 0.1.0" in out
    code, out = inst.crm("pack", "list")
    assert out.splitlines()[0].startswith("mini\t1.0.0\town") and "extra\t0.1.0\tinstalled" in out
    s, w = inst.api("POST", "/widget", {"name": "w1", "size": 3})
    assert s == 201 and w["size"] == 3
    code, out = inst.crm("pack", "uninstall", "extra")
    assert code == 0 and "its data is kept" in out, out
    assert inst.api("GET", "/widget")[0] == 404
    assert "entities/widget.yaml" not in inst.folder() and "packs/extra.yaml" not in inst.folder()
    code, out = inst.crm("pack", "install", src)
    assert code == 0, out
    s, lst = inst.api("GET", "/widget")
    assert [x["name"] for x in lst["items"]] == ["w1"]
    code, out = inst.crm("pack", "uninstall", "extra", "--purge")
    assert code == 0 and "dropped _removed_e_widget" in out, out
    assert not {t for t in inst.tables() if "widget" in t}
    inst.crm("pack", "install", src)
    assert inst.api("GET", "/widget")[1]["items"] == []


def test_install_from_zip_and_export_round_trip(inst):
    src = write_pack(inst.tmp / "extra", {"pack.yaml": manifest(), "entities/widget.yaml": WIDGET})
    z = inst.tmp / "extra.zip"
    with zipfile.ZipFile(z, "w") as zf:
        for p in src.rglob("*.yaml"):
            zf.write(p, "extra/" + p.relative_to(src).as_posix())
    assert inst.crm("pack", "install", z)[0] == 0
    out_zip = inst.tmp / "out.zip"
    code, out = inst.crm("pack", "export", "extra", out_zip)
    assert code == 0, out
    with zipfile.ZipFile(out_zip) as zf:
        assert sorted(zf.namelist()) == ["entities/widget.yaml", "pack.yaml"]
        assert zf.read("entities/widget.yaml").decode() == WIDGET


def test_upgrade_keeps_local_changes_and_removes_what_the_new_version_dropped(inst):
    v1 = write_pack(inst.tmp / "v1", {"pack.yaml": manifest(), "entities/widget.yaml": WIDGET,
                                      "entities/gadget.yaml": GADGET})
    assert inst.crm("pack", "install", v1)[0] == 0
    local = WIDGET.replace("fields:\n", "fields:\n  color: {type: string, label: {en: Colour, zh: 颜色}}\n")
    s, _ = inst.api("POST", "/admin/config/apply", {"files": {"entities/widget.yaml": local}, "message": "local colour"})
    assert s == 200
    new_widget = WIDGET + "  weight: {type: decimal, label: {en: Weight, zh: 重量}}\n"
    v2 = write_pack(inst.tmp / "v2", {"pack.yaml": manifest("0.2.0"), "entities/widget.yaml": new_widget})
    code, out = inst.crm("pack", "upgrade", v2)
    assert code == 1 and "remove_entity e_gadget" in out and "risky" in out     # dropping an entity needs consent
    code, out = inst.crm("pack", "upgrade", v2, "--allow-destructive")
    assert code == 0, out
    s, rec = inst.api("POST", "/widget", {"name": "w", "color": "red", "weight": "1.5"})
    assert s == 201 and rec["color"] == "red" and Decimal(str(rec["weight"])) == Decimal("1.5")
    assert "entities/gadget.yaml" not in inst.folder() and inst.api("GET", "/gadget")[0] == 404
    assert "extra\t0.2.0" in inst.crm("pack", "list")[1]


def test_upgrade_conflict_is_listed_and_nothing_changes(inst):
    v1 = write_pack(inst.tmp / "v1", {"pack.yaml": manifest(), "entities/widget.yaml": WIDGET})
    inst.crm("pack", "install", v1)
    local = WIDGET.replace("{en: Size, zh: 尺寸}", "{en: Local size, zh: 本地尺寸}")
    inst.api("POST", "/admin/config/apply", {"files": {"entities/widget.yaml": local}})
    theirs = WIDGET.replace("{en: Size, zh: 尺寸}", "{en: Dimension, zh: 规格}")
    v2 = write_pack(inst.tmp / "v2", {"pack.yaml": manifest("0.2.0"), "entities/widget.yaml": theirs})
    before = inst.folder()
    code, out = inst.crm("pack", "upgrade", v2)
    assert code == 1
    assert "entities/widget.yaml: fields.size.label.en: changed locally and in the new version" in out
    assert inst.folder() == before and "extra\t0.1.0" in inst.crm("pack", "list")[1]


@pytest.mark.parametrize("case, files, message", [
    ("no manifest", {"entities/widget.yaml": WIDGET}, "has no pack.yaml"),
    ("bad version", {"pack.yaml": manifest("one"), "entities/widget.yaml": WIDGET}, "pack.yaml"),
    ("yaml error", {"pack.yaml": manifest(), "entities/widget.yaml": "entity: widget\nfields: [\n"}, "widget.yaml"),
    ("missing dependency", {"pack.yaml": manifest(extra="depends:\n  - {pack: service, version: '>=1.0'}\n"),
                            "entities/widget.yaml": WIDGET}, "pack 'service' is not installed"),
    ("incompatible dependency", {"pack.yaml": manifest(extra="depends:\n  - {pack: mini, version: '>=2.0,<3'}\n"),
                                 "entities/widget.yaml": WIDGET}, "mini >=2.0,<3 is needed; version 1.0.0"),
    ("entity conflict", {"pack.yaml": manifest(), "entities/other_account.yaml":
                         "entity: account\nlabel: Account\nfields:\n  x: {type: string}\n"}, "defined twice"),
    ("file conflict", {"pack.yaml": manifest(), "forms/account.yaml": "form: account\nentity: account\n"
                       "sections: [{fields: [name]}]\n"}, "forms/account.yaml exists already"),
])
def test_bad_packs_are_refused_before_anything_changes(inst, case, files, message):
    before, tables = inst.folder(), inst.tables()
    code, out = inst.crm("pack", "install", write_pack(inst.tmp / "bad", files))
    assert code == 1 and message in out, out
    assert inst.folder() == before and inst.tables() == tables
    assert "extra" not in inst.crm("pack", "list")[1]


def test_downgrade_is_refused(inst):
    inst.crm("pack", "install", write_pack(inst.tmp / "v2", {"pack.yaml": manifest("0.2.0"),
                                                             "entities/widget.yaml": WIDGET}))
    old = write_pack(inst.tmp / "v1", {"pack.yaml": manifest("0.1.0"), "entities/widget.yaml": WIDGET})
    before = inst.folder()
    for cmd in ("upgrade", "install"):
        code, out = inst.crm("pack", cmd, old)
        assert code == 1 and "downgrade" in out, out
    assert inst.folder() == before


def test_a_pack_another_depends_on_is_not_uninstalled(inst):
    inst.crm("pack", "install", write_pack(inst.tmp / "extra", {"pack.yaml": manifest(), "entities/widget.yaml": WIDGET}))
    more = "pack: more\nversion: 1.0.0\nlabel: More\ndepends:\n  - {pack: extra, version: '>=0.1,<1'}\n"
    link = "entity: part\nlabel: Part\nfields:\n  widget: {type: link, to: widget}\n"
    code, out = inst.crm("pack", "install", write_pack(inst.tmp / "more", {"pack.yaml": more, "entities/part.yaml": link}))
    assert code == 0, out
    code, out = inst.crm("pack", "uninstall", "extra")
    assert code == 1 and "pack more depends on extra" in out
    assert inst.api("GET", "/widget")[0] == 200


def test_it_assets_pack_installs_beside_the_crm(make_app, tmp_path, db_url):
    """The shipped non-CRM pack: installed beside the default pack with no code change; a request
    starts in its workflow's first state."""
    if not db_url.startswith("sqlite"):
        pytest.skip("the full default pack is migrated once, on SQLite")
    cfg = tmp_path / "cfg"
    shutil.copytree(ROOT / "config", cfg)
    app, admin, _ = make_app(cfg)
    res = app.test_cli_runner().invoke(args=["crm", "pack", "install", str(ROOT / "packs" / "it_assets")])
    assert res.exit_code == 0, res.output
    app.extensions["crm"]._checked = 0.0
    client = app.test_client()
    h = {"Authorization": f"Bearer {admin}"}
    m = client.post("/api/v1/asset_model", json={"name": "ThinkPad X1", "category": "laptop", "unit_price": "9999"},
                    headers=h)
    assert m.status_code == 201, m.get_json()
    r = client.post("/api/v1/asset_request", json={"model": m.get_json()["id"], "quantity": 2, "reason": "new hires"},
                    headers=h)
    assert r.status_code == 201 and r.get_json()["status"] == "requested"
    assert client.get("/api/v1/customer", headers=h).status_code == 200
    listed = app.test_cli_runner().invoke(args=["crm", "pack", "list"]).output
    assert "crm\t" in listed and "it_assets\t1.0.0\tinstalled" in listed


def test_it_assets_pack_runs_on_its_own():
    from engine.loader import load_config
    cfg = load_config(ROOT / "packs" / "it_assets")
    assert set(cfg.entities) == {"asset_model", "asset_request"}
    assert list(cfg.workflows["asset_request_flow"].states) == ["requested", "approved", "ordered", "delivered",
                                                                 "rejected"]


def test_a_pack_extends_another_packs_entity_and_workflow(inst):
    ext = {"pack.yaml": manifest(extra="depends:\n  - {pack: mini, version: '>=1.0,<2'}\n"),
           "entities/account_extra.yaml": "extends: account\nfields:\n  vip: {type: boolean, label: {en: VIP, zh: 贵宾}}\n",
           "workflows/deal_hold.yaml": "extends: deal_flow\nstates:\n  on_hold: {label: {en: On hold, zh: 暂停}}\n"
                                       "transitions:\n  hold: {from: open, to: on_hold}\n  resume: {from: on_hold, to: open}\n"}
    code, out = inst.crm("pack", "install", write_pack(inst.tmp / "ext", ext))
    assert code == 0 and "add_column e_account.vip" in out, out
    s, acc = inst.api("POST", "/account", {"name": "Acme", "email": "a@acme.example", "vip": True})
    assert s == 201 and acc["vip"] is True
    s, deal = inst.api("POST", "/deal", {"name": "D", "account": acc["id"]})
    s, moved = inst.api("POST", f"/deal/{deal['id']}/transitions/hold", {})
    assert s == 200 and moved["record"]["stage"] == "on_hold", moved
    assert "entity: account" in (inst.cfg / "entities" / "account.yaml").read_text() and \
        "vip" not in (inst.cfg / "entities" / "account.yaml").read_text()      # the CRM's file is not copied
    inst.api("POST", f"/deal/{deal['id']}/transitions/resume", {})
    code, out = inst.crm("pack", "uninstall", "extra")
    assert code == 0, out
    assert inst.api("POST", "/account", {"name": "B", "email": "b@b.example", "vip": True})[0] == 422


def test_an_extension_may_not_redefine_a_field(inst):
    bad = {"pack.yaml": manifest(), "entities/account_extra.yaml": "extends: account\nfields:\n  email: {type: string}\n"}
    before = inst.folder()
    code, out = inst.crm("pack", "install", write_pack(inst.tmp / "bad", bad))
    assert code == 1 and "account already has 'email'" in out, out
    assert inst.folder() == before
