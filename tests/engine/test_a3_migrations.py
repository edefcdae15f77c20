"""A3: schema evolution — additive steps apply, risky ones wait for confirmation, nothing is lost."""
import pytest
import sqlalchemy as sa

from engine.errors import ConfigInvalid, MigrationRefused
from engine.loader import load_config
from engine.migrator import Migrator
from engine.store import RecordStore
from tests.engine.conftest import ADMIN


def edit(path, old, new):
    text = path.read_text(encoding="utf-8")
    assert old in text, old
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def setup(engine_db, cfg_dir):
    cfg = load_config(cfg_dir)
    m = Migrator(engine_db, cfg)
    m.apply()
    assert m.plan() == []
    return RecordStore(engine_db, cfg, m.metadata)


def reload(engine_db, cfg_dir):
    return Migrator(engine_db, load_config(cfg_dir))


def kinds(steps):
    return [(s.kind, s.table, s.column) for s in steps]


def cols(engine_db, table):
    return {c["name"] for c in sa.inspect(engine_db).get_columns(table)}


def test_a3_additive_changes_apply_and_plan_is_then_empty(engine_db, config_copy):
    d = config_copy()
    store = setup(engine_db, d)
    store.create("account", {"name": "A", "email": "a@b.cn"}, ADMIN)
    edit(d / "entities" / "account.yaml", "fields:\n", "fields:\n  website: {type: url, index: true}\n")
    (d / "entities" / "note.yaml").write_text(
        "entity: note\nlabel: {en: Note, zh: 备注}\nfields:\n  body: {type: text}\n  account: {type: link, to: account}\n",
        encoding="utf-8")
    m = reload(engine_db, d)
    plan = m.plan()
    assert ("create_table", "e_note", None) in kinds(plan)
    assert ("add_column", "e_account", "website") in kinds(plan)
    assert any(s.kind == "create_index" and "ix_e_account_website" in s.detail for s in plan)
    assert not any(s.destructive for s in plan)
    m.apply()
    assert m.plan() == []
    assert "website" in cols(engine_db, "e_account")


def test_a3_removed_field_is_kept_until_purge(engine_db, config_copy):
    d = config_copy()
    store = setup(engine_db, d)
    store.create("account", {"name": "A", "email": "keep@me.cn"}, ADMIN)
    edit(d / "entities" / "account.yaml", "  email: {type: email, searchable: true}\n", "")
    edit(d / "entities" / "account.yaml", 'check: "email or revenue"', 'check: "revenue or name"')
    edit(d / "forms" / "account.yaml", "[name, email, level, revenue]", "[name, level, revenue]")
    m = reload(engine_db, d)
    plan = m.plan()
    step = next(s for s in plan if s.kind == "remove_field")
    assert step.destructive and step.rows == 1 and step.column == "email"
    with pytest.raises(MigrationRefused, match="allow-destructive"):
        m.apply()
    assert "email" in cols(engine_db, "e_account")          # refused means unchanged
    m.apply(allow_destructive=True)
    assert m.plan() == []
    assert "_removed_email" in cols(engine_db, "e_account")
    with engine_db.connect() as c:
        assert c.execute(sa.text("select _removed_email from e_account")).scalar() == "keep@me.cn"
    assert m.purge_removed() == ["e_account._removed_email"]
    assert "_removed_email" not in cols(engine_db, "e_account")


def test_a3_removing_a_field_still_used_is_refused_with_the_places(engine_db, config_copy):
    d = config_copy()
    setup(engine_db, d)
    edit(d / "entities" / "account.yaml", "  email: {type: email, searchable: true}\n", "")
    with pytest.raises(ConfigInvalid) as info:
        load_config(d)
    text = str(info.value)
    assert "forms/account.yaml" in text and "'email' is not a field of account" in text
    assert "entities/account.yaml" in text and "names 'email'" in text


def test_a3_rename_is_declared_never_guessed(engine_db, config_copy):
    d = config_copy()
    store = setup(engine_db, d)
    rec = store.create("account", {"name": "A", "email": "a@b.cn", "revenue": 10}, ADMIN)
    acc = d / "entities" / "account.yaml"
    edit(acc, "  revenue: {type: money, min: 0}", "  turnover: {type: money, min: 0, renamed_from: revenue}")
    edit(acc, 'check: "email or revenue"', 'check: "email or turnover"')
    edit(d / "forms" / "account.yaml", "level, revenue]", "level, turnover]")
    m = reload(engine_db, d)
    plan = m.plan()
    assert ("rename_column", "e_account", "revenue") in kinds(plan)
    assert not any(s.kind in ("add_column", "remove_field") for s in plan)
    m.apply(allow_destructive=True)
    assert m.plan() == []
    store2 = RecordStore(engine_db, m.config, m.metadata)
    assert float(store2.get("account", rec["id"], ADMIN)["turnover"]) == 10.0


def test_a3_type_change_refused_when_rows_do_not_convert(engine_db, config_copy):
    d = config_copy()
    store = setup(engine_db, d)
    acc = store.create("account", {"name": "A", "email": "a@b.cn"}, ADMIN)
    store.create("deal", {"name": "12", "account": acc["id"]}, ADMIN)
    bad = store.create("deal", {"name": "twelve", "account": acc["id"]}, ADMIN)
    edit(d / "entities" / "deal.yaml", "  name: {type: string, required: true}", "  name: {type: integer, required: true}")
    m = reload(engine_db, d)
    step = next(s for s in m.plan() if s.kind == "change_type")
    assert step.destructive and step.rows == 2
    assert any(f"id={bad['id']}" in b and "twelve" in b for b in step.blockers)
    with pytest.raises(MigrationRefused, match="twelve"):
        m.apply(allow_destructive=True)
    # fix the data, then it converts
    store.update("deal", bad["id"], {"name": "13"}, ADMIN)
    m.apply(allow_destructive=True)
    assert m.plan() == []
    with engine_db.connect() as c:
        assert sorted(c.execute(sa.text("select name from e_deal")).scalars()) == [12, 13]


def test_a3_required_on_empty_rows_is_risky_and_fills_default(engine_db, config_copy):
    d = config_copy()
    store = setup(engine_db, d)
    store.create("account", {"name": "A", "email": "a@b.cn"}, ADMIN)
    store.create("account", {"name": "B", "email": "b@b.cn", "revenue": 5}, ADMIN)
    edit(d / "entities" / "account.yaml", "  revenue: {type: money, min: 0}", "  revenue: {type: money, min: 0, required: true, default: 0}")
    m = reload(engine_db, d)
    step = next(s for s in m.plan() if s.kind == "require_field")
    assert step.destructive and step.rows == 1
    m.apply(allow_destructive=True)
    assert m.plan() == []
    with engine_db.connect() as c:
        assert c.execute(sa.text("select count(*) from e_account where revenue is null")).scalar() == 0


def test_a3_unique_index_refused_on_duplicates(engine_db, config_copy):
    d = config_copy()
    store = setup(engine_db, d)
    store.create("account", {"name": "Same", "email": "a@b.cn"}, ADMIN)
    store.create("account", {"name": "Same", "email": "b@b.cn"}, ADMIN)
    edit(d / "entities" / "account.yaml", "searchable: true, index: true", "searchable: true, unique: true")
    m = reload(engine_db, d)
    with pytest.raises(MigrationRefused, match="Same"):
        m.apply()


def test_a3_migration_commits_whole_or_not_at_all(engine_db, config_copy):
    """A plan with an additive step and a refused one changes nothing at all."""
    d = config_copy()
    store = setup(engine_db, d)
    store.create("account", {"name": "Same", "email": "a@b.cn"}, ADMIN)
    store.create("account", {"name": "Same", "email": "b@b.cn"}, ADMIN)
    edit(d / "entities" / "account.yaml", "fields:\n", "fields:\n  fax: {type: phone}\n")
    edit(d / "entities" / "account.yaml", "searchable: true, index: true", "searchable: true, unique: true")
    m = reload(engine_db, d)
    with pytest.raises(MigrationRefused):
        m.apply()
    assert "fax" not in cols(engine_db, "e_account")


def test_a3_removed_entity_table_is_kept(engine_db, config_copy):
    d = config_copy()
    setup(engine_db, d)
    (d / "entities" / "note.yaml").write_text("entity: note\nlabel: Note\nfields:\n  body: {type: text}\n")
    m = reload(engine_db, d)
    m.apply()
    RecordStore(engine_db, m.config, m.metadata).create("note", {"body": "hello"}, ADMIN)
    (d / "entities" / "note.yaml").unlink()
    m = reload(engine_db, d)
    step = next(s for s in m.plan() if s.kind == "remove_entity")
    assert step.destructive and step.rows == 1
    m.apply(allow_destructive=True)
    assert m.plan() == []
    assert "_removed_e_note" in sa.inspect(engine_db).get_table_names()


def test_a3_startup_applies_only_the_safe_part(engine_db, config_copy):
    d = config_copy()
    store = setup(engine_db, d)
    store.create("account", {"name": "A", "email": "a@b.cn"}, ADMIN)
    edit(d / "entities" / "account.yaml", "fields:\n", "fields:\n  fax: {type: phone}\n")
    edit(d / "entities" / "account.yaml", "  tags: {type: multiselect, options: [a, b, c]}\n", "")
    m = reload(engine_db, d)
    applied = m.apply(only_safe=True)
    assert [s.kind for s in applied] == ["add_column"]
    assert [s.kind for s in m.plan()] == ["remove_field"]
