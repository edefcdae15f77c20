"""H1/H3/H4: a permission matrix generated from the default pack's roles and access.yaml.

For every role of pack.yaml × every entity × every action, the store allows exactly what the
roles file says (a role not listed in `permissions` keeps the documented defaults), and refuses the
rest with 403 — with nothing written. For every role × entity × scope, a record owned by a user
of another team and another region is visible exactly when the scope is `all`. The expectations
are read from the YAML, not written out here, so a change of the roles file is tested as it is.
"""
from __future__ import annotations

import pytest
import sqlalchemy as sa
import yaml

from engine.access import ACTIONS, DEFAULT_ACTIONS, AccessPolicy
from engine.actor import Actor
from engine.demo import generate
from engine.errors import Forbidden, NotFound
from engine.loader import load_config
from engine.migrator import Migrator
from engine.store import RecordStore
from engine.systables import teams, users
from tests.conftest import ROOT

SPEC = yaml.safe_load((ROOT / "config" / "access.yaml").read_text(encoding="utf-8"))
PACK = yaml.safe_load((ROOT / "config" / "pack.yaml").read_text(encoding="utf-8"))
ROLES = [r["id"] for r in PACK["roles"] if r["id"] != "admin"]


def expected_actions(role: str, entity: str) -> set:
    rules = (SPEC.get("permissions") or {}).get(role)
    if rules is None:
        return set(DEFAULT_ACTIONS)
    return set(rules.get(entity, rules.get("*", [])))


def expected_scope(role: str, entity: str):
    return ((SPEC.get("scopes") or {}).get(role) or {}).get(entity, "all")


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    from engine.db import make_engine
    url = "sqlite:///" + str(tmp_path_factory.mktemp("matrix") / "m.db")
    eng = make_engine(url)
    cfg = load_config(ROOT / "config")
    m = Migrator(eng, cfg)
    m.apply()
    tables = {eid: m.metadata.tables[e.table_name] for eid, e in cfg.entities.items()}
    store = RecordStore(eng, cfg, m.metadata, policy=AccessPolicy(cfg, tables))
    with eng.begin() as c:
        c.execute(teams.insert(), [{"id": "hq"}, {"id": "east", "parent": "hq"}, {"id": "west", "parent": "hq"}])
        c.execute(users.insert(), [
            {"id": 1, "username": "owner", "roles": ["sales"], "team": "west", "region": "north", "active": True}]
            + [{"id": 10 + i, "username": role, "roles": [role], "team": "east", "region": "south", "active": True}
               for i, role in enumerate(ROLES)])
    generate(eng, cfg, m.metadata, records=2, seed=3, actor_id=1)   # every record is owned by "owner"
    with eng.begin() as c:
        for e in cfg.top_entities:
            c.execute(tables[e.id].update().values(owner=1))
    yield store, {role: Actor(id=10 + i, username=role, roles=(role,)) for i, role in enumerate(ROLES)}
    eng.dispose()


def first_id(store, entity) -> int:
    t = store.table(store.entity(entity))
    with store.engine.connect() as c:
        return c.execute(sa.select(sa.func.min(t.c.id)).where(t.c.deleted_at.is_(None))).scalar()


def cases():
    cfg = load_config(ROOT / "config")
    return [(role, e.id) for role in ROLES for e in cfg.top_entities]


@pytest.mark.parametrize("role,entity", cases())
def test_h1_each_action_is_allowed_exactly_as_the_roles_file_says(world, role, entity):
    store, actors = world
    actor = actors[role]
    want = expected_actions(role, entity)
    assert store.actions(entity, actor) == frozenset(want), f"{role} on {entity}"
    for action in ACTIONS:
        asked = "restore" if action == "admin" else action      # `admin` is the recycle bin
        if action in want:
            store.check(entity, asked, actor)
        else:
            with pytest.raises(Forbidden):
                store.check(entity, asked, actor)
    # create through the store: refused before anything is validated or written
    before = store.visible_count(entity, Actor(id=None, roles=("admin",)))[1]
    if "create" in want:
        try:
            store.create(entity, {}, actor)
        except Forbidden:                          # pragma: no cover - the failure we look for
            pytest.fail(f"{role} may create {entity} but the store refused")
        except Exception:                          # required fields missing: validation, not permission
            pass
    else:
        with pytest.raises(Forbidden):
            store.create(entity, {}, actor)
        assert store.visible_count(entity, Actor(id=None, roles=("admin",)))[1] == before


@pytest.mark.parametrize("role,entity", cases())
def test_h3_a_record_of_another_team_and_region_is_visible_exactly_under_scope_all(world, role, entity):
    store, actors = world
    actor = actors[role]
    rid = first_id(store, entity)
    if rid is None:
        pytest.skip(f"the demo generator made no {entity}")
    scope = expected_scope(role, entity)
    if not isinstance(scope, str):                # {via: link}: follows the linked record
        link = store.entity(entity).fields[scope["via"]]
        scope = expected_scope(role, link.to)
        rec = store.get(entity, rid, Actor(id=None, roles=("admin",)))
        if rec.get(link.id) is None:
            scope = "team"                        # without the link the row falls back to the team
    if scope == "all" and "read" in expected_actions(role, entity):
        assert store.get(entity, rid, actor)["id"] == rid
    elif "read" in expected_actions(role, entity):
        with pytest.raises(NotFound):
            store.get(entity, rid, actor)
        assert store.visible_count(entity, actor)[0] == 0


def test_h3_team_scope_covers_sub_teams_and_region_scope_the_region(world):
    store, actors = world
    cfg = store.config
    entity = next(e.id for e in cfg.top_entities if expected_scope("sales", e.id) == "team")
    rid = first_id(store, entity)
    with store.engine.begin() as c:                 # the owner joins a sub-team of the viewer's team
        c.execute(teams.insert().values(id="east-1", parent="east"))
        c.execute(users.update().where(users.c.id == 1).values(team="east-1"))
    try:
        assert store.get(entity, rid, actors["sales"])["id"] == rid
        with store.engine.begin() as c:             # a parent cycle does not hang the query
            c.execute(teams.update().where(teams.c.id == "east").values(parent="east-1"))
        assert store.get(entity, rid, actors["sales"])["id"] == rid
    finally:
        with store.engine.begin() as c:
            c.execute(teams.update().where(teams.c.id == "east").values(parent="hq"))
            c.execute(users.update().where(users.c.id == 1).values(team="west"))
    with pytest.raises(NotFound):
        store.get(entity, rid, actors["sales"])
    # a role with scope `region` sees the records of the users of its region only
    policy = store.policy
    region_actor = Actor(id=99, username="r", roles=("regional",))
    with store.engine.begin() as c:
        c.execute(users.insert().values(id=99, username="r", roles=["regional"], region="north", active=True))
    old = policy.spec
    try:
        object.__setattr__(policy, "spec", type(old)(scopes={"regional": {entity: "region"}}))
        assert store.get(entity, rid, region_actor)["id"] == rid
        with store.engine.begin() as c:
            c.execute(users.update().where(users.c.id == 99).values(region="south"))
        with pytest.raises(NotFound):
            store.get(entity, rid, region_actor)
    finally:
        policy.spec = old


def test_h4_read_only_fields_are_refused_by_name_and_nothing_changes(world):
    store, actors = world
    ro = SPEC.get("readonly") or {}
    role, per_entity = next(iter(ro.items()))
    entity, fields = next(iter(per_entity.items()))
    admin = Actor(id=None, roles=("admin",))
    rid = first_id(store, entity)
    actor = actors[role]
    store.update(entity, rid, {"owner": actor.id}, admin)          # bring the record into the role's scope
    before = store.get(entity, rid, admin)
    with pytest.raises(Forbidden) as err:
        store.update(entity, rid, {fields[0]: 12345}, actor)
    assert fields[0] in str(err.value) and fields[0] in err.value.fields
    assert store.get(entity, rid, admin)[fields[0]] == before[fields[0]]
    assert store.get(entity, rid, admin)["version"] == before["version"]
    assert fields[0] in store.readonly_fields(store.entity(entity), actor)


def test_h1_assign_is_needed_to_give_a_record_away(world):
    store, actors = world
    admin = Actor(id=None, roles=("admin",))
    role = next((r for r in ROLES if "update" in expected_actions(r, "task")
                 and "assign" not in expected_actions(r, "task")), None)
    if role is None:
        pytest.skip("no role may update tasks without assigning them")
    actor = actors[role]
    rid = first_id(store, "task") if "task" in store.config.entities else None
    if rid is None:
        pytest.skip("no task entity")
    store.update("task", rid, {"owner": actor.id}, admin)
    with pytest.raises(Forbidden) as err:
        store.update("task", rid, {"owner": 1}, actor)
    assert "owner" in err.value.fields
    assert store.get("task", rid, admin)["owner"] == actor.id


def test_h1_the_actions_list_is_the_documented_one():
    assert set(ACTIONS) == {"read", "create", "update", "delete", "export", "import", "assign", "admin"}
    doc = (ROOT / "docs" / "config-reference.md").read_text(encoding="utf-8")
    for a in ACTIONS:
        assert f"| `{a}` |" in doc


def test_h3_a_rule_scope_shows_the_rows_whose_field_holds_the_user(world):
    store, actors = world
    admin = Actor(id=None, roles=("admin",))
    system = {"owner", "created_by", "updated_by"}
    entity = next(e for e in store.config.top_entities
                  if any(f.type == "user" and f.id not in system for f in e.fields.values()))
    field = next(f.id for f in entity.fields.values() if f.type == "user" and f.id not in system)
    rid = first_id(store, entity.id)
    agent = Actor(id=98, username="m", roles=("matcher",))
    with store.engine.begin() as c:
        c.execute(users.insert().values(id=98, username="m", roles=["matcher"], active=True))
    policy, old = store.policy, store.policy.spec
    try:
        policy.spec = type(old)(scopes={"matcher": {entity.id: {"match": {field: "me"}}}})
        with pytest.raises(NotFound):
            store.get(entity.id, rid, agent)                    # owned by someone else, not assigned to m
        assert store.visible_count(entity.id, agent)[0] == 0
        store.update(entity.id, rid, {field: 98}, admin)
        assert store.get(entity.id, rid, agent)["id"] == rid    # the field now holds the user
        assert store.visible_count(entity.id, agent)[0] == 1
    finally:
        policy.spec = old


def test_h3_the_checker_names_a_bad_rule_scope(tmp_path):
    import shutil
    from engine.errors import ConfigInvalid
    cfg_dir = tmp_path / "config"
    shutil.copytree(ROOT / "config", cfg_dir)
    text = (cfg_dir / "access.yaml").read_text(encoding="utf-8")
    text = text.replace("    lead: team\n", "    lead: {match: {nowhere: me}}\n", 1)
    (cfg_dir / "access.yaml").write_text(text, encoding="utf-8")
    with pytest.raises(ConfigInvalid) as err:
        load_config(cfg_dir)
    said = " ".join(str(p) for p in err.value.problems)
    assert "access.yaml" in said and "nowhere" in said
