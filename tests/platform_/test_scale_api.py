"""Issue 13 (J1–J3) through the API: the bulk write endpoint, capped list counts, and text search
kept in step with every write — on SQLite (FTS5 trigram) and PostgreSQL (pg_trgm)."""
from __future__ import annotations

import sqlalchemy as sa

from engine import audit, search


def count(api, path="/account"):
    return api("GET", path + ("&" if "?" in path else "?") + "count=exact")[1]["total"]


def rt_of(api):
    return api.app.extensions["crm"]


# ---- bulk (J3) --------------------------------------------------------------------------------
def test_j3_bulk_creates_all_in_order_with_numbers_audit_and_events(api):
    records = [{"name": f"批量 {i}", "email": f"b{i}@x.example"} for i in range(30)]
    st, body = api("POST", "/account/bulk", {"records": records})
    assert st == 201, body
    assert body["created"] == 30 and body["updated"] == 0 and len(body["ids"]) == 30
    got = [api("GET", f"/account/{rid}")[1] for rid in body["ids"]]
    assert [r["name"] for r in got] == [f"批量 {i}" for i in range(30)]           # ids in the order sent
    codes = [r["code"] for r in got]
    assert len(set(codes)) == 30 and codes == sorted(codes)                        # one block of numbers
    assert all(r["level"] == "low" and r["active"] is True and r["version"] == 1 for r in got)   # defaults
    st, log = api("GET", "/audit?entity=account&action=create&per_page=100")
    assert st == 200 and {e["record"] for e in log["items"]} == set(body["ids"])
    ok, why, n = audit.verify(rt_of(api).engine)
    assert ok, why


def test_j3_bulk_is_all_or_nothing_with_every_rows_errors(api):
    before = count(api)
    records = [{"name": "fine", "email": "f@x.example"}, {"name": ""}, {"name": "x", "email": "not-mail"},
               {"name": "y", "email": "y@x.example", "owner": 999999}, {"name": "z", "revenue": 5, "bogus": 1}]
    st, body = api("POST", "/account/bulk", {"records": records})
    assert st == 422
    fields = body["error"]["fields"]
    assert fields["1.name"] == "is required"
    assert fields["2.email"] == "is not an e-mail address"
    assert "does not exist" in fields["3.owner"]
    assert fields["4.bogus"] == "unknown field"
    assert "0.name" not in fields and "4 of 5 records are invalid" in body["error"]["message"]
    assert count(api) == before                                                    # nothing saved


def test_j3_bulk_rules_and_links_are_checked_per_row(api):
    st, acc = api("POST", "/account", {"name": "Acme", "email": "a@x.example"})
    st, body = api("POST", "/account/bulk", {"records": [{"name": "no mail, no revenue"}]})
    assert st == 422 and body["error"]["fields"]["0.email"] == "Give an e-mail or a revenue"
    st, body = api("POST", "/deal/bulk", {"records": [{"name": "d1", "account": acc["id"]},
                                                      {"name": "d2", "account": 987654}]})
    assert st == 422 and set(body["error"]["fields"]) == {"1.account"}
    assert api("GET", "/deal")[1]["total"] == 0
    st, body = api("POST", "/deal/bulk", {"records": [
        {"name": "d1", "account": acc["id"], "lines": [{"item": "A", "quantity": 2, "price": "10.50"}]},
        {"name": "d2", "account": acc["id"], "probability": 50}]})
    assert st == 201
    d1 = api("GET", f"/deal/{body['ids'][0]}")[1]
    assert d1["amount"] == 21 and d1["lines"][0]["amount"] == 21 and d1["stage"]   # children, computed, state
    assert d1["account_level"] == "low"                                             # a linked value in a rule


def test_j3_bulk_updates_with_versions_and_rolls_back_together(api):
    ids = api("POST", "/account/bulk", {"records": [{"name": f"u{i}", "email": f"u{i}@x.example"}
                                                    for i in range(3)]})[1]["ids"]
    st, body = api("POST", "/account/bulk", {"records": [{"id": ids[0], "version": 1, "name": "u0 new"},
                                                         {"name": "brand new", "email": "n@x.example"}]})
    assert st == 201 and body["updated_ids"] == [ids[0]] and body["created"] == 1
    st, body = api("POST", "/account/bulk", {"records": [{"id": ids[1], "version": 1, "name": "u1 new"},
                                                         {"id": ids[0], "version": 1, "name": "stale"},
                                                         {"id": "x"}]})
    assert st == 422
    assert "version" in body["error"]["fields"]["1.id"] or "changed" in body["error"]["fields"]["1.id"]
    assert body["error"]["fields"]["2.id"] == "must be the id of a record, a whole number"
    assert api("GET", f"/account/{ids[1]}")[1]["name"] == "u1"                      # the good update rolled back
    assert api("GET", f"/account/{ids[0]}")[1]["name"] == "u0 new"


def test_j3_bulk_refuses_bad_bodies_with_a_reason(api):
    for body, text in (({}, "records"), ({"records": []}, "records"), ({"records": "x"}, "records"),
                       ({"records": [{}] * 5001}, "At most 5000")):
        st, got = api("POST", "/account/bulk", body)
        assert st == 400 and text in got["error"]["message"], got
    st, got = api("POST", "/account/bulk", {"records": [1, "x"]})
    assert st == 422 and got["error"]["fields"]["0._body"] == "expected a JSON object of fields"
    st, got = api("POST", "/nope/bulk", {"records": [{}]})
    assert st in (404, 405)
    st, got = api.staff("POST", "/account/bulk", {"records": [{"name": "s", "email": "s@x.example"}]}, token=False)
    assert st == 401


def test_j3_bulk_unique_values_checked_against_the_table_and_the_batch(make_app, config_copy):
    folder = config_copy("mini")
    path = folder / "entities" / "account.yaml"
    path.write_text(path.read_text().replace("email: {type: email, searchable: true}",
                                             "email: {type: email, searchable: true, unique: true}"))
    app, token, _ = make_app(folder)
    c = app.test_client()
    h = {"Authorization": f"Bearer {token}"}
    assert c.post("/api/v1/account", json={"name": "a", "email": "taken@x.example"}, headers=h).status_code == 201
    r = c.post("/api/v1/account/bulk", headers=h, json={"records": [
        {"name": "b", "email": "taken@x.example"}, {"name": "c", "email": "twice@x.example"},
        {"name": "d", "email": "twice@x.example"}]})
    assert r.status_code == 422
    f = r.get_json()["error"]["fields"]
    assert "already used" in f["0.email"] and "more than one record of this batch" in f["2.email"]
    assert "1.email" not in f
    assert c.get("/api/v1/account?count=exact", headers=h).get_json()["total"] == 1


# ---- capped counts (J1) -----------------------------------------------------------------------
def test_j1_list_counts_up_to_a_cap_and_exactly_on_demand(api, monkeypatch):
    monkeypatch.setattr("engine.store.COUNT_CAP", 5)
    api("POST", "/account/bulk", {"records": [{"name": f"c{i}", "email": f"c{i}@x.example"} for i in range(12)]})
    st, body = api("GET", "/account?per_page=2")
    assert (body["total"], body["total_exact"], len(body["items"])) == (5, False, 2)
    st, body = api("GET", "/account?per_page=5&page=3")                   # the page asked for is counted to
    assert (body["total"], body["total_exact"]) == (12, True) and len(body["items"]) == 2
    st, body = api("GET", "/account?per_page=2&count=exact")
    assert (body["total"], body["total_exact"]) == (12, True)
    st, body = api("GET", "/account?name__contains=c1&per_page=2")         # c1, c10, c11
    assert (body["total"], body["total_exact"]) == (3, True)
    st, body = api("GET", "/account?count=all")
    assert st == 400 and "count must be exact or capped" in body["error"]["message"]


# ---- search (J2) ------------------------------------------------------------------------------
def test_j2_search_finds_fragments_in_both_languages_and_follows_writes(api):
    names = ["上海华东科技有限公司", "北京华北贸易有限公司", "Acme Trading Ltd", "acme industrial", "100% Cotton_Co"]
    ids = api("POST", "/account/bulk", {"records": [{"name": n, "email": f"m{i}@mail{i}.example"}
                                                    for i, n in enumerate(names)]})[1]["ids"]

    def found(q):
        st, body = api("GET", "/account", query_string={"q": q, "per_page": 50})
        assert st == 200, body
        return sorted(r["name"] for r in body["items"])

    assert found("华东科技") == ["上海华东科技有限公司"]
    assert found("有限公司") == ["上海华东科技有限公司", "北京华北贸易有限公司"]
    assert found("华北") == ["北京华北贸易有限公司"]                       # two characters: the scan path
    assert found("ACME") == ["Acme Trading Ltd", "acme industrial"]        # case-insensitive
    assert found("me trad") == ["Acme Trading Ltd"]                        # mid-word, with a space
    assert found("mail3.ex") == ["acme industrial"]                        # another searchable field
    assert found("100%") == ["100% Cotton_Co"] and found("n_C") == ["100% Cotton_Co"]   # wildcards literal
    assert found('"quoted') == [] and found("不存在的公司") == []
    rec = api("GET", f"/account/{ids[2]}")[1]
    assert api("PATCH", f"/account/{ids[2]}", {"name": "Zenith Holdings", "version": rec["version"]})[0] == 200
    assert found("acme") == ["acme industrial"] and found("zenith hold") == ["Zenith Holdings"]
    assert api("DELETE", f"/account/{ids[3]}", headers={"If-Match": "1"})[0] == 204
    assert found("acme") == []
    assert api("POST", f"/account/{ids[3]}/restore", headers={"If-Match": "2"})[0] == 200
    assert found("acme") == ["acme industrial"]


def test_j2_rows_written_outside_the_store_are_found_by_the_index(api):
    """The index is kept by the database (triggers / a GIN index), so an import or a SQL fix finds its way in."""
    rt = rt_of(api)
    t = rt.store.table("account")
    with rt.engine.begin() as conn:
        conn.execute(t.insert().values(name="深圳前海微众银行", version=1, created_at=sa.func.now(),
                                       updated_at=sa.func.now()))
    body = api("GET", "/account", query_string={"q": "前海微众"})[1]
    assert [r["name"] for r in body["items"]] == ["深圳前海微众银行"]


def test_j2_the_text_index_exists_and_is_used(api):
    rt = rt_of(api)
    entity = rt.config.entities["account"]
    with rt.engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            assert search.fts_ready(conn, entity)
            cols = [r[1] for r in conn.exec_driver_sql(f"PRAGMA table_info({search.fts_table(entity)})")]
            assert cols == ["name", "email"]
            t = rt.store.table(entity)
            clause = search.clause(entity, t, "华东科技", "sqlite", True)
            plan = " ".join(str(r[-1]) for r in conn.execute(sa.text("EXPLAIN QUERY PLAN " + str(
                sa.select(t.c.id).where(clause).compile(conn, compile_kwargs={"literal_binds": True})))))
            assert "VIRTUAL TABLE INDEX" in plan, plan
        else:
            names = set(conn.execute(sa.text("SELECT indexname FROM pg_indexes WHERE schemaname = current_schema()"
                                             " AND tablename = 'e_account'")).scalars())
            assert {"trgm_e_account_name", "trgm_e_account_email"} <= names


def test_j2_a_field_made_unsearchable_leaves_the_index_and_a_new_one_joins(make_app, config_copy):
    folder = config_copy("mini")
    path = folder / "entities" / "account.yaml"
    app, token, _ = make_app(folder)
    rt = app.extensions["crm"]
    entity = rt.config.entities["account"]
    path.write_text(path.read_text().replace("email: {type: email, searchable: true}", "email: {type: email}")
                    .replace("code: {type: autonumber,", "code: {type: autonumber, searchable: true,"))
    from engine.loader import load_config
    from engine.migrator import Migrator
    config = load_config(folder)
    Migrator(rt.engine, config).apply()
    with rt.engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            cols = [r[1] for r in conn.exec_driver_sql(f"PRAGMA table_info({search.fts_table(entity)})")]
            assert cols == ["name", "code"]
        else:
            names = set(conn.execute(sa.text("SELECT indexname FROM pg_indexes WHERE schemaname = current_schema()"
                                             " AND tablename = 'e_account'")).scalars())
            assert "trgm_e_account_code" in names and "trgm_e_account_email" not in names


# ---- bad input at scale ----------------------------------------------------------------------
def test_j1_a_search_text_past_its_limit_is_refused_with_the_reason(api):
    st, body = api("GET", "/account", query_string={"q": "长" * 10_000})
    assert st == 400 and "at most 200 characters" in body["error"]["message"]
    st, body = api("GET", "/account", query_string={"q": "长" * 200})
    assert st == 200 and body["total"] == 0


def test_j1_a_statement_past_the_timeout_is_a_400_with_the_reason(db_url, monkeypatch):
    """PostgreSQL stops a statement past CRM_STATEMENT_TIMEOUT_MS; the request gets a clear 400."""
    if not db_url.startswith("postgresql"):
        import pytest
        pytest.skip("the statement timeout is PostgreSQL's (SQLite has no server to stall)")
    monkeypatch.setenv("CRM_STATEMENT_TIMEOUT_MS", "100")
    from engine.db import make_engine, reading
    from engine.errors import QueryTimeout
    eng = make_engine(db_url)
    try:
        with reading(eng) as conn:
            assert conn.exec_driver_sql("SELECT 1").scalar() == 1
        try:
            with reading(eng) as conn:
                conn.exec_driver_sql("SELECT pg_sleep(2)")
        except QueryTimeout as e:
            assert "stopped this request after 0.1 s" in e.message
        else:
            raise AssertionError("the statement was not stopped")
    finally:
        eng.dispose()
