"""J1: no N+1. A list page of 50 rows with link titles, a record page with its related lists and the
API list issue the same number of SQL statements whatever the data: counted, with 3 rows and with 60."""
from __future__ import annotations

from contextlib import contextmanager

import sqlalchemy as sa

from .conftest import Client


@contextmanager
def counting(engine):
    seen: list[str] = []

    def before(conn, cursor, statement, parameters, context, executemany):
        # the API token's lookup is cached for seconds, and every process asks at most once a second
        # whether another one changed the config: whether these run depends on the clock
        clocked = "sys_token" in statement or "sys_config_state" in statement
        if not clocked and statement.strip().upper() not in ("BEGIN", "BEGIN IMMEDIATE", "COMMIT"):
            seen.append(statement)
    sa.event.listen(engine, "before_cursor_execute", before)
    try:
        yield seen
    finally:
        sa.event.remove(engine, "before_cursor_execute", before)


def fill(app, orgs: int, per_org: int):
    """`orgs` organisations, each with `per_org` people and deals (distinct links on every row)."""
    from engine.actor import Actor
    rt = app.extensions["crm"]
    admin = Actor(id=1, username="admin", roles=("admin",))
    org_ids = rt.store.create_many("org", [{"name": f"机构 {i}"} for i in range(orgs)], admin)
    rt.store.create_many("person", [{"name": f"联系人 {o}-{k}", "org": o} for o in org_ids for k in range(per_org)], admin)
    rt.store.create_many("deal", [{"name": f"商机 {o}-{k}", "org": o, "lines": [{"item": "A", "quantity": 1, "price": 5}]}
                                  for o in org_ids for k in range(per_org)], admin)
    return org_ids


def statements(app, client, path) -> int:
    engine = app.extensions["crm"].engine
    client.get(path)                                   # caches warm (config, titles of the header)
    with counting(engine) as seen:
        r = client.get(path)
    assert r.status_code == 200, r.get_data(as_text=True)[:300]
    return len(seen)


def test_j1_list_and_record_pages_issue_a_fixed_number_of_statements(app, tmp_path):
    admin = Client(app, "admin", "admin-Passw0rd")
    small = fill(app, 3, 1)
    few = {p: statements(app, admin, p) for p in ("/e/person?per_page=50", "/e/deal?per_page=50",
                                                   f"/e/org/{small[0]}")}
    big = fill(app, 30, 2)[-1]                          # 60 more people and deals, 30 more organisations
    many = {p: statements(app, admin, p) for p in ("/e/person?per_page=50", "/e/deal?per_page=50")}
    many[f"/e/org/{small[0]}"] = statements(app, admin, f"/e/org/{big}")   # an organisation with 2 + 2 related
    assert list(many.values()) == list(few.values()), (few, many)


def test_j1_the_api_list_issues_a_fixed_number_of_statements(app):
    from platform_ import auth
    rt = app.extensions["crm"]
    token = auth.create_token(rt.engine, "admin")
    c = app.test_client()
    h = {"Authorization": f"Bearer {token}"}

    def count(path):
        c.get(path, headers=h)
        with counting(rt.engine) as seen:
            r = c.get(path, headers=h)
        assert r.status_code == 200
        return len(seen), len(r.get_json()["items"])

    fill(app, 2, 1)
    few = count("/api/v1/deal?per_page=50")
    fill(app, 30, 2)
    many = count("/api/v1/deal?per_page=50")
    assert few[1] == 2 and many[1] == 50
    assert few[0] == many[0], (few, many)
