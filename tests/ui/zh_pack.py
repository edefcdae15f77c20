"""The default pack with one record of every top entity, filled with Chinese values only (codes,
e-mail and web addresses aside), a changed field and a workflow step on each, and two people
signed in through the login form: an administrator and a user with every other role.
Shared by the Chinese-everywhere and list tests (module-scoped: one app per test module)."""
from __future__ import annotations

import datetime as dt
import os

import pytest

from engine.errors import ValidationFailed
from platform_.auth import create_user, get_actor
from tests.conftest import ROOT
from tests.ui.conftest import Client

CONFIG = ROOT / "config"


def zh_value(f, n: int):
    """A valid Chinese value for a field (codes and addresses aside)."""
    t = f.value_type
    if t == "string":
        s = f"测试{n}号{f.label_text('zh')}"
        return s[: f.max_length] if f.max_length else s
    if t == "text":
        return "这是一段说明文字。"
    if t == "email":
        return f"zh{n}@example.cn"
    if t == "phone":
        return f"+86 571 8888 {n:04d}"
    if t == "url":
        return f"https://example.cn/{n}"
    if t == "select":
        return f.options[0].value
    if t == "multiselect":
        return [f.options[0].value]
    if t in ("integer", "decimal", "money", "percent"):
        v = max(f.min if f.min is not None else 0, 1 if t == "integer" else 10)
        return str(min(v, f.max) if f.max is not None else v)
    if t == "date":
        return (dt.date.today() - dt.timedelta(days=3)).isoformat()        # a past deadline: highlighted
    if t == "datetime":
        return (dt.datetime.now() - dt.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    if t == "boolean":
        return "true"
    return None


@pytest.fixture(scope="module")
def crm(tmp_path_factory):
    """The default pack with one Chinese record of every entity (and a changed field), admin in zh."""
    tmp = tmp_path_factory.mktemp("zh")
    keys = ("DATABASE_URL", "CRM_CONFIG_DIR", "ATTACHMENTS_DIR", "SECRET_KEY")
    saved = {k: os.environ.get(k) for k in keys}
    os.environ.update(DATABASE_URL=f"sqlite:///{tmp}/zh.db", CRM_CONFIG_DIR=str(CONFIG),
                      ATTACHMENTS_DIR=str(tmp / "files"), SECRET_KEY="zh-test")
    try:
        from app import create_app
        app = create_app({"TESTING": True})
    finally:
        for k, v in saved.items():
            os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)
    rt = app.extensions["crm"]
    assert rt.store is not None, rt.problems
    rt.ensure_schema()
    roles = [r for r, _label in rt.config.pack.roles]
    uid = create_user(rt.engine, "zhadmin", "zh-Admin-Passw0rd!", roles=("admin",), full_name="王管理",
                      language="zh")
    create_user(rt.engine, "zhsales", "zh-Sales-Passw0rd!", roles=tuple(roles[1:]), full_name="李销售",
                language="zh")
    a = get_actor(rt.engine, uid)
    records: dict[str, dict] = {}

    def ensure(eid: str, n: int = 1) -> dict:
        if eid in records:
            return records[eid]
        e = rt.config.entities[eid]
        data = {}
        for f in e.user_fields:
            if not f.writable or f.type == "table" or f.computed or f.value_type in ("state", "autonumber",
                                                                                        "attachment", "user"):
                continue
            if f.value_type == "link":
                if f.required or f.to != eid:
                    data[f.id] = str(ensure(f.to)["id"])
                continue
            data[f.id] = zh_value(f, n)
        for f in e.table_fields:          # one row per table, so record pages show their lines
            child = rt.config.entities[f.of]
            row = {}
            for c in child.user_fields:
                if c.writable and not c.computed and c.type != "table":
                    row[c.id] = str(ensure(c.to)["id"]) if c.value_type == "link" else zh_value(c, n)
            data[f.id] = [{k: v for k, v in row.items() if v is not None}]
        data = {k: v for k, v in data.items() if v is not None}
        try:
            records[eid] = rt.store.create(eid, data, a, mode="form")
        except ValidationFailed as exc:   # a rule wants a date ahead (or after another): try later dates
            for k in exc.fields:
                f = e.fields.get(k)
                if f is not None and f.value_type in ("date", "datetime"):
                    data[k] = (dt.date.today() + dt.timedelta(days=60)).isoformat() + ("T09:00" if f.value_type == "datetime" else "")
            records[eid] = rt.store.create(eid, data, a, mode="form")
        return records[eid]

    for e in rt.config.top_entities:
        ensure(e.id)
    for e in rt.config.top_entities:      # a change in the history, and a step of the workflow
        rec = records[e.id]
        text = next((f for f in e.user_fields if f.value_type == "string" and f.writable and not f.computed
                     and not f.unique), None)
        if text is not None:
            rt.store.update(e.id, rec["id"], {text.id: f"改过的{text.label_text('zh')}"}, a, mode="form")
        if rt.workflows is not None and e.state_field is not None:
            for t in rt.workflows.available(e.id, rec["id"], a):
                if t["allowed"] and not t["approval"] and t["comment"] != "required":
                    try:
                        rt.workflows.execute(e.id, rec["id"], t["name"], a)
                    except Exception:  # noqa: BLE001 - a guard may still refuse; the page shows why
                        continue
                    break
    c = Client(app, "zhadmin", "zh-Admin-Passw0rd!")
    c.sales = Client(app, "zhsales", "zh-Sales-Passw0rd!")
    c.records, c.rt = records, rt
    yield c
    rt.engine.dispose()
