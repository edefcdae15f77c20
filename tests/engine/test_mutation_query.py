"""List filters, search, sort and pages as a person uses them: which rows come back, and the message
when a request is refused.

Written against the survivors of `make mutate MODULE=engine/query.py` (docs/testing.md).
"""
from __future__ import annotations

import pytest

from engine.errors import BadRequest
from engine.query import MAX_PER_PAGE, MAX_SEARCH, parse_args, where_clauses
from tests.engine.conftest import ADMIN


class Args(dict):
    """Request args as Flask gives them: one key may carry several values."""

    def getlist(self, k):
        v = self[k]
        return v if isinstance(v, list) else [v]

    def get(self, k, default=None):
        v = super().get(k, default)
        return v[0] if isinstance(v, list) else v


def lst(store, entity="account", **args):
    return store.list(entity, parse_args(store.entity(entity), Args(args)), ADMIN)


def names(store, entity="account", **args):
    return [r["name"] for r in lst(store, entity, **args)["items"]]


def refusal(store, entity="account", **args) -> str:
    with pytest.raises(BadRequest) as e:
        lst(store, entity, **args)
    return str(e.value)


@pytest.fixture
def accounts(mini_store):
    rows = [
        {"name": "Alpha", "email": "a@x.cn", "level": "high", "revenue": "100", "since": "2024-01-10",
         "active": True, "tags": ["a", "b"]},
        {"name": "Beta", "email": "b@x.cn", "level": "low", "revenue": "200", "since": "2024-02-10",
         "active": False, "tags": ["b"]},
        {"name": "Gamma", "email": "g@y.cn", "level": "low", "revenue": "300", "since": "2024-03-10",
         "active": True, "tags": ["c"]},
        {"name": "Delta", "email": "d@y.cn", "level": "high", "revenue": None, "active": True},
    ]
    for r in rows:
        mini_store.create("account", r, ADMIN)
    return mini_store


# --- filters -------------------------------------------------------------------------------------

def test_equality_and_not_equal_filters(accounts):
    assert names(accounts, level="high", sort="name") == ["Alpha", "Delta"]
    assert names(accounts, level__eq="low", sort="name") == ["Beta", "Gamma"]
    assert names(accounts, level__ne="high", sort="name") == ["Beta", "Gamma"]
    # "not 100" includes the record without a revenue
    assert names(accounts, revenue__ne="100", sort="name") == ["Beta", "Delta", "Gamma"]


def test_range_filters_are_strict_or_inclusive_as_named(accounts):
    assert names(accounts, revenue__lt="200", sort="name") == ["Alpha"]
    assert names(accounts, revenue__lte="200", sort="name") == ["Alpha", "Beta"]
    assert names(accounts, revenue__gt="200", sort="name") == ["Gamma"]
    assert names(accounts, revenue__gte="200", sort="name") == ["Beta", "Gamma"]
    assert names(accounts, since__gte="2024-02-10", since__lt="2024-03-10") == ["Beta"]


def test_in_filter_matches_any_listed_value_and_ignores_blank_items(accounts):
    assert names(accounts, revenue__in="100, 300,,", sort="name") == ["Alpha", "Gamma"]
    assert names(accounts, name__in="Beta", sort="name") == ["Beta"]


def test_isnull_filter(accounts):
    assert names(accounts, revenue__isnull="true") == ["Delta"]
    assert names(accounts, revenue__isnull="1") == ["Delta"]
    assert names(accounts, revenue__isnull="TRUE") == ["Delta"]
    assert names(accounts, revenue__isnull="false", sort="name") == ["Alpha", "Beta", "Gamma"]


def test_contains_is_case_insensitive_on_text_and_exact_on_tags(accounts):
    assert names(accounts, email__contains="Y.CN", sort="name") == ["Delta", "Gamma"]
    assert names(accounts, name__contains="%") == []               # a wildcard is a plain character
    assert names(accounts, tags__contains="b", sort="name") == ["Alpha", "Beta"]
    assert names(accounts, tags="b", sort="name") == ["Alpha", "Beta"]
    # "not tagged b" includes the record without any tag, as `ne` does on every other field
    assert names(accounts, tags__ne="b", sort="name") == ["Delta", "Gamma"]


def test_boolean_filter(accounts):
    assert names(accounts, active="false") == ["Beta"]
    assert names(accounts, active__ne="false", sort="name") == ["Alpha", "Delta", "Gamma"]
    assert refusal(accounts, active__gt="false") == "filter active: a boolean takes = or __ne, not __gt"


def test_empty_filter_value_means_no_value(accounts):
    assert names(accounts, revenue="") == ["Delta"]
    assert names(accounts, revenue__ne="", sort="name") == ["Alpha", "Beta", "Gamma"]


def test_several_values_of_one_filter_all_apply(accounts):
    assert names(accounts, level__ne=["high", "low"]) == []
    assert names(accounts, revenue__gte=["100", "200"], sort="name") == ["Beta", "Gamma"]


def test_me_filter_on_a_user_field_means_the_caller(accounts):
    # ADMIN has no user id: "me" is no user, so no record is owned by "me"
    assert names(accounts, owner__isnull="false") == []
    assert names(accounts, owner="me", sort="name") == ["Alpha", "Beta", "Delta", "Gamma"]


def test_filter_refusals_name_the_problem(accounts):
    assert refusal(accounts, nope="1").startswith("unknown filter field 'nope' on account")
    assert refusal(accounts, name__like="A") == \
        "unknown filter operator 'like'; use one of eq, ne, lt, lte, gt, gte, in, contains, isnull"
    assert refusal(accounts, revenue="lots") == "filter revenue: 'lots' is not a number"
    assert refusal(accounts, revenue__in="1,x") == "filter revenue: 'x' is not a number"
    assert refusal(accounts, "deal", lines="x").startswith("unknown filter field 'lines' on deal")


def test_reserved_and_underscore_args_are_not_filters(accounts):
    assert len(names(accounts, _="123", format="csv")) == 4


# --- request args --------------------------------------------------------------------------------

def test_nul_character_is_refused_in_keys_and_values(accounts):
    assert refusal(accounts, name="A\x00") == "'name' contains a NUL character, which no value may hold"
    assert refusal(accounts, **{"na\x00me": "A"}) == "'name' contains a NUL character, which no value may hold"


def test_paging(accounts):
    r = lst(accounts, sort="name", per_page="2", page="2")
    assert [x["name"] for x in r["items"]] == ["Delta", "Gamma"]
    assert (r["page"], r["per_page"], r["total"]) == (2, 2, 4)
    assert lst(accounts, page="", per_page="")["per_page"] == 50      # the entity's page size
    assert lst(accounts, per_page=str(MAX_PER_PAGE))["per_page"] == MAX_PER_PAGE
    assert lst(accounts, page="1")["page"] == 1
    assert refusal(accounts, page="0") == "page must be between 1 and 10000000"
    assert refusal(accounts, per_page=str(MAX_PER_PAGE + 1)) == f"per_page must be between 1 and {MAX_PER_PAGE}"
    assert refusal(accounts, per_page="0") == f"per_page must be between 1 and {MAX_PER_PAGE}"
    assert refusal(accounts, page="two") == "page must be a whole number, not 'two'"


def test_count_modes(accounts):
    assert lst(accounts, count="exact")["total_exact"] is True
    assert lst(accounts, count="capped")["total"] == 4
    assert lst(accounts, count="")["total"] == 4
    assert refusal(accounts, count="all") == "count must be exact or capped, not 'all'"


def test_recycle_bin(accounts):
    gone = lst(accounts, name="Beta")["items"][0]
    accounts.delete("account", gone["id"], ADMIN)
    assert names(accounts, deleted="only") == ["Beta"]
    assert names(accounts, deleted="1") == ["Beta"]
    assert names(accounts, deleted="TRUE") == ["Beta"]
    assert names(accounts, deleted="0", sort="name") == ["Alpha", "Delta", "Gamma"]
    assert names(accounts, deleted="false", sort="name") == ["Alpha", "Delta", "Gamma"]
    assert refusal(accounts, deleted="yes") == \
        "deleted must be 1, true or only (the recycle bin) or 0 or false, not 'yes'"


def test_sla_filter_is_checked_before_use(accounts):
    assert refusal(accounts, sla="late") == \
        "unknown SLA filter 'late'; use one of at_risk, breached, paused, running, met"
    req = parse_args(accounts.entity("account"), Args(sla="breached"))
    assert req.sla == "breached" and req.filters == []
    assert parse_args(accounts.entity("account"), Args(sla="")).sla is None


def test_search_text(accounts):
    assert names(accounts, q="  gamma  ") == ["Gamma"]
    assert parse_args(accounts.entity("account"), Args(q="   ")).q is None
    assert len(names(accounts, q="x" * MAX_SEARCH)) == 0
    assert refusal(accounts, q="x" * (MAX_SEARCH + 1)) == \
        f"a search text has at most {MAX_SEARCH} characters; this one has {MAX_SEARCH + 1}"


# --- sort ----------------------------------------------------------------------------------------

def test_sort_ascending_descending_and_by_several_fields(accounts):
    assert names(accounts, sort="name") == ["Alpha", "Beta", "Delta", "Gamma"]
    assert names(accounts, sort="+name") == ["Alpha", "Beta", "Delta", "Gamma"]
    assert names(accounts, sort="-name") == ["Gamma", "Delta", "Beta", "Alpha"]
    assert names(accounts, sort="level, -name") == ["Delta", "Alpha", "Gamma", "Beta"]
    assert names(accounts, sort="-level,,name") == ["Beta", "Gamma", "Alpha", "Delta"]


def test_default_sort_is_newest_first_and_ties_follow_the_sort_direction(accounts):
    assert names(accounts) == ["Delta", "Gamma", "Beta", "Alpha"]
    assert names(accounts, sort="id") == ["Alpha", "Beta", "Gamma", "Delta"]
    assert names(accounts, sort="level") == ["Alpha", "Delta", "Beta", "Gamma"]        # ties: oldest first
    assert names(accounts, sort="-level") == ["Gamma", "Beta", "Delta", "Alpha"]       # ties: newest first


def test_sort_refusals(accounts):
    assert refusal(accounts, sort="nope").startswith("cannot sort by 'nope'")
    assert refusal(accounts, sort="tags").startswith("cannot sort by 'tags'")
    assert refusal(accounts, sort="Xname").startswith("cannot sort by 'Xname'")
    assert refusal(accounts, "deal", sort="lines").startswith("cannot sort by 'lines'")


def test_where_clauses_of_a_request_without_filters_or_search_is_empty(mini_store):
    ent = mini_store.entity("account")
    req = parse_args(ent, Args())
    assert where_clauses(ent, mini_store.table(ent), req) == []


def test_nul_character_in_any_value_of_a_repeated_arg_or_a_plain_mapping(accounts):
    assert refusal(accounts, name=["A", "B\x00"]) == "'name' contains a NUL character, which no value may hold"
    ent = accounts.entity("account")
    with pytest.raises(BadRequest) as e:
        parse_args(ent, {"name": "A\x00"})
    assert str(e.value) == "'name' contains a NUL character, which no value may hold"
    assert parse_args(ent, {"name": "Alpha"}).filters == [("name", "eq", "Alpha")]     # a plain dict works
    long_key = "k" * 50 + "\x00"
    assert refusal(accounts, **{long_key: "1"}) == f"'{'k' * 40}' contains a NUL character, which no value may hold"


def test_me_is_the_caller_only_on_user_fields(accounts):
    accounts.create("account", {"name": "me", "email": "me@x.cn"}, ADMIN)
    assert names(accounts, name="me") == ["me"]
    assert names(accounts, owner="@me", sort="name") == names(accounts, owner="me", sort="name")
    assert len(names(accounts, owner="@me")) == 5


def test_a_list_counts_exactly_only_when_asked(accounts):
    ent = accounts.entity("account")
    assert parse_args(ent, Args()).exact_count is False
    assert parse_args(ent, Args(count="exact")).exact_count is True


def test_fields_named_sla_or_count_are_filters_not_list_options():
    from types import MappingProxyType

    from engine.model import Entity, Field
    ent = Entity(id="ticket", label={"en": "Ticket"}, fields=MappingProxyType({
        "sla": Field(id="sla", type="string", label={"en": "SLA"}),
        "count": Field(id="count", type="integer", label={"en": "Count"})}))
    req = parse_args(ent, Args(sla="late", count="3"))
    assert req.filters == [("sla", "eq", "late"), ("count", "eq", "3")]
    assert req.sla is None and req.exact_count is False


# --- encrypted and file fields, on a plain table ---------------------------------------------------

@pytest.fixture
def vault():
    """An entity with an encrypted field and a file field, and its table with three rows."""
    import sqlalchemy as sa
    from types import MappingProxyType

    from engine.model import Entity, Field
    ent = Entity(id="vault", label={"en": "Vault"}, fields=MappingProxyType({
        "id": Field(id="id", type="integer", label={"en": "ID"}, system=True),
        "name": Field(id="name", type="string", label={"en": "Name"}, searchable=True),
        "secret": Field(id="secret", type="string", label={"en": "Secret"}, encrypted=True),
        "file": Field(id="file", type="attachment", label={"en": "File"}),
        "owner": Field(id="owner", type="user", label={"en": "Owner"}),
        "labels": Field(id="labels", type="multiselect", label={"en": "Labels"})}))
    md = sa.MetaData()
    t = sa.Table("vault", md, sa.Column("id", sa.Integer, primary_key=True), sa.Column("name", sa.String(50)),
                 sa.Column("secret", sa.Text), sa.Column("file", sa.JSON(none_as_null=True)),
                 sa.Column("owner", sa.Integer), sa.Column("labels", sa.JSON(none_as_null=True)))
    eng = sa.create_engine("sqlite://")
    md.create_all(eng)
    with eng.begin() as c:
        c.execute(t.insert(), [
            {"id": 1, "name": "one", "secret": "enc:1", "file": {"name": "Report.PDF"}, "owner": 7, "labels": ["a_c"]},
            {"id": 2, "name": "two", "secret": None, "file": None, "owner": None, "labels": ["abc", "xyz"]},
            {"id": 3, "name": "three", "secret": "enc:3", "file": {"name": "photo.png"}, "owner": 8,
             "labels": ["vip2"]}])

    def rows(actor_id=None, **args):
        req = parse_args(ent, Args(args))
        with eng.connect() as c:
            q = sa.select(t.c.name).where(*where_clauses(ent, t, req, actor_id, dialect="sqlite")).order_by(t.c.id)
            return [r[0] for r in c.execute(q)]
    yield ent, t, rows
    eng.dispose()


def test_encrypted_field_filters_only_by_isnull(vault):
    ent, t, rows = vault
    assert rows(secret__isnull="true") == ["two"]
    assert rows(secret__isnull="false") == ["one", "three"]
    for op in ("", "__ne", "__contains", "__in"):
        with pytest.raises(BadRequest) as e:
            rows(**{f"secret{op}": "enc:1"})
        assert str(e.value) == "secret is encrypted: it can only be filtered by secret__isnull"


def test_file_field_filters_by_presence_or_name(vault):
    ent, t, rows = vault
    assert rows(file__contains="report") == ["one"]
    assert rows(file__isnull="true") == ["two"]
    assert rows(file="") == ["two"]                    # "no file"
    assert rows(file__ne="") == ["one", "three"]
    for key, value in (("file", "a.pdf"), ("file__gt", ""), ("file__in", "x")):
        with pytest.raises(BadRequest) as e:
            rows(**{key: value})
        assert str(e.value) == "file is a file: filter it by file__isnull or file__contains (its name)"


def test_search_on_a_table_without_a_text_index(vault):
    ent, t, rows = vault
    assert rows(q="thr") == ["three"]


def test_encrypted_and_file_fields_cannot_be_sorted(vault):
    from engine.query import order_by
    ent, t, rows = vault
    with pytest.raises(BadRequest) as e:
        order_by(ent, t, "-secret")
    assert str(e.value) == "cannot sort by 'secret' (it is encrypted)"
    with pytest.raises(BadRequest) as e:
        order_by(ent, t, "file")
    assert str(e.value).startswith("cannot sort by 'file'") and "encrypted" not in str(e.value)
    with pytest.raises(BadRequest) as e:
        order_by(ent, t, "nmae")
    assert str(e.value).startswith("cannot sort by 'nmae'") and "name" in str(e.value)   # a suggestion


def test_me_is_the_calling_user(vault):
    ent, t, rows = vault
    assert rows(actor_id=7, owner="me") == ["one"]
    assert rows(actor_id=8, owner__in="me,7") == ["one", "three"]


def test_tags_match_whole_tags_exactly_and_wildcards_are_plain_characters(vault):
    ent, t, rows = vault
    assert rows(labels="a_c") == ["one"]                  # "_" is not "any character": "abc" does not match
    assert rows(labels__contains="a_c") == ["one"]
    assert rows(labels__ne="a_c") == ["two", "three"]
    assert rows(labels__contains="vip") == []             # a whole tag: "vip" is not "vip2"
    assert rows(labels="vip2") == ["three"]


def test_every_filter_applies_whatever_comes_before_it(accounts, vault):
    # each kind of filter first, then one more: the second must still narrow the rows
    assert names(accounts, sort="name", level="high") == ["Alpha", "Delta"]
    assert names(accounts, revenue__isnull="false", level="high") == ["Alpha"]
    assert names(accounts, revenue__in="100,200", level="low") == ["Beta"]
    assert names(accounts, email__contains="x.cn", level="low") == ["Beta"]
    assert names(accounts, tags__contains="b", level="low") == ["Beta"]
    assert names(accounts, tags="b", level="high") == ["Alpha"]
    assert names(accounts, revenue="", level="low") == []
    assert names(accounts, revenue__gte="100", level="low", sort="name") == ["Beta", "Gamma"]
    ent, t, rows = vault
    assert rows(file__ne="", name="three") == ["three"]


def test_long_bad_values_are_cut_in_the_message_and_a_near_field_name_is_suggested(accounts):
    assert refusal(accounts, count="x" * 30) == f"count must be exact or capped, not {'x' * 20!r}"
    assert refusal(accounts, deleted="y" * 30) == \
        f"deleted must be 1, true or only (the recycle bin) or 0 or false, not {'y' * 20!r}"
    assert refusal(accounts, nmae="x") == "unknown filter field 'nmae' on account (did you mean 'name'?)"
