"""Segments and RFM grading (engine/segments.py, engine/grading.py), on SQLite and PostgreSQL:
members of a saved filter under the reader's row scope, config problems at file:line, grades
hand-computed on fixed data, re-grading after the orders change, and the nightly run through the
automation scheduler with a frozen clock."""
from __future__ import annotations

import datetime as dt
import textwrap
from decimal import Decimal

import pytest
import sqlalchemy as sa
from werkzeug.datastructures import MultiDict

from engine import clock, grading, segments
from engine.access import AccessPolicy
from engine.actor import Actor
from engine.db import make_engine
from engine.errors import BadRequest, ConfigInvalid
from engine.loader import load_config
from engine.migrator import Migrator
from engine.store import RecordStore
from engine.systables import users

ADMIN = Actor(id=None, username="admin", roles=("admin",))
REP1 = Actor(id=1, username="rep1", roles=("rep",))
TODAY = dt.datetime(2026, 6, 30, 12, 0)          # naive UTC; the window starts 2025-06-30

FILES = {
    "entities/client.yaml": """
        entity: client
        label: {en: Client, zh: 客户}
        fields:
          name: {type: string, required: true}
          grade:
            type: select
            label: {en: Grade, zh: 等级}
            options: [high, medium, low]
          note: {type: string}
    """,
    "entities/sale.yaml": """
        entity: sale
        label: {en: Sale, zh: 销售单}
        fields:
          name: {type: string}
          client: {type: link, to: client}
          stage: {type: select, options: [open, won, lost]}
          amount: {type: money}
          closed: {type: date}
    """,
    "access.yaml": """
        permissions:
          rep:
            "*": [read, update]
        scopes:
          rep:
            client: own
            sale: own
    """,
    "segments/top.yaml": """
        segment: top_clients
        label: {en: Top clients, zh: 重要客户}
        entity: client
        filter: {grade: high}
    """,
    "segments/recent_big.yaml": """
        segment: recent_big
        entity: sale
        filter:
          amount__gte: 1000
          closed__gte: "add_days(today(), -30)"
    """,
    "segments/value.yaml": """
        segment: client_value
        grading: rfm
        label: {en: Client value, zh: 客户价值}
        entity: client
        field: grade
        source: {entity: sale, link: client, date: closed, amount: amount, filter: {stage: won}}
        window_days: 365
        cron: "0 3 * * *"
        timezone: UTC
    """,
}

# client -> [(closed, amount)], all won and inside the window. Hand-computed with 9 graded clients
# (score = 1 + floor(3 × clients with a strictly lower value / 9)):
#        last        R | orders F | sum    M | total grade
#   C1   2026-06-20  3 |   4    3 |  900   3 |   9   high
#   C2   2026-06-10  3 |   1    1 | 5000   3 |   7   high
#   C3   2026-05-01  3 |   3    3 |  600   2 |   8   high
#   C4   2026-04-01  2 |   3    3 |  300   2 |   7   high
#   C5   2026-03-01  2 |   1    1 |  100   1 |   4   low
#   C6   2026-01-01  2 |   2    2 |  200   1 |   5   medium
#   C7   2025-12-01  1 |   2    2 |  700   3 |   6   medium
#   C8   2025-10-01  1 |   1    1 |   50   1 |   3   low
#   C9   2025-08-01  1 |   1    1 |  400   2 |   4   low
#   C10  no sale in the window: the lowest grade, low
SALES = {
    1: [("2026-06-20", 300), ("2026-05-01", 200), ("2026-03-01", 200), ("2025-09-01", 200)],
    2: [("2026-06-10", 5000)],
    3: [("2026-05-01", 200), ("2026-02-01", 200), ("2025-11-01", 200)],
    4: [("2026-04-01", 100), ("2026-01-01", 100), ("2025-10-01", 100)],
    5: [("2026-03-01", 100)],
    6: [("2026-01-01", 100), ("2025-12-01", 100)],
    7: [("2025-12-01", 350), ("2025-11-01", 350)],
    8: [("2025-10-01", 50)],
    9: [("2025-08-01", 400)],
}
EXPECTED = {1: "high", 2: "high", 3: "high", 4: "high", 5: "low", 6: "medium", 7: "medium", 8: "low", 9: "low",
            10: "low"}
REP1_OWNS = {1, 2, 5}


def write_config(root, files):
    for name, text in files.items():
        p = root / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return root


def seed(store, owners=None):
    """Clients C1..C10 and their sales; rep1 owns C1, C2, C5 (owners: the two users' ids, made here
    when not given)."""
    t, s = store.table("client"), store.table("sale")
    eng = store.engine
    with eng.begin() as c:
        if owners is None:
            c.execute(users.insert(), [{"id": 1, "username": "rep1", "roles": ["rep"]},
                                       {"id": 2, "username": "rep2", "roles": ["rep"]}])
            owners = (1, 2)
        mine, theirs = owners
        c.execute(t.insert(), [{"id": i, "name": f"C{i}", "owner": mine if i in REP1_OWNS else theirs, "version": 1}
                               for i in range(1, 11)])
        rows = [{"client": cid, "stage": "won", "amount": Decimal(a), "closed": dt.date.fromisoformat(d),
                 "owner": mine if cid in REP1_OWNS else theirs, "version": 1}
                for cid, sales in SALES.items() for d, a in sales]
        rows += [  # none of these counts: lost, before the window, deleted
            {"client": 8, "stage": "lost", "amount": Decimal(9999), "closed": dt.date(2026, 6, 25), "owner": theirs},
            {"client": 5, "stage": "won", "amount": Decimal(9999), "closed": dt.date(2025, 6, 1), "owner": mine},
            {"client": 9, "stage": "won", "amount": Decimal(9999), "closed": dt.date(2026, 6, 29), "owner": theirs,
             "deleted_at": dt.datetime(2026, 6, 29, 10)},
        ]
        c.execute(s.insert(), [{"deleted_at": None, "version": 1, **r} for r in rows])


@pytest.fixture
def sstore(db_url, tmp_path):
    cfg = load_config(write_config(tmp_path / "cfg", FILES))
    eng = make_engine(db_url)
    m = Migrator(eng, cfg)
    m.apply()
    store = RecordStore(eng, cfg, m.metadata)
    store.policy = AccessPolicy(cfg, m.metadata.tables)
    seed(store)
    yield store
    eng.dispose()


def grades(store) -> dict:
    t = store.table("client")
    with store.engine.connect() as c:
        return dict(c.execute(sa.select(t.c.id, t.c.grade).order_by(t.c.id)).all())


def names(result) -> list:
    return sorted(r["name"] for r in result["items"])


# ---- grading ---------------------------------------------------------------------------------
def test_rfm_grades_match_the_hand_computed_ones(sstore):
    g = sstore.config.segments["client_value"]
    with clock.frozen(TODAY):
        result = grading.run(sstore, g, ADMIN)
    assert result == {"graded": 10, "changed": 10}
    assert grades(sstore) == EXPECTED
    with clock.frozen(TODAY):                       # nothing changed: nothing written again
        assert grading.run(sstore, g, ADMIN) == {"graded": 10, "changed": 0}
    client = sstore.get("client", 1, ADMIN)
    assert client["version"] == 2                   # written once, through the store


def test_regrading_follows_new_orders(sstore):
    g = sstore.config.segments["client_value"]
    with clock.frozen(TODAY):
        grading.run(sstore, g, ADMIN)
        sstore.create("sale", {"client": 8, "stage": "won", "amount": "6000", "closed": "2026-06-29"}, ADMIN)
        result = grading.run(sstore, g, ADMIN)
    # C8 is now the most recent and the biggest buyer (R3 F2 M3 = 8); the others move down a place:
    # C4's amount falls to the lowest third (R2 F3 M1 = 6), C6's last order to the oldest third
    # (R1 F2 M1 = 4); C3 (R2 F3 M2 = 7) stays high, C7 (R1 F2 M2 = 5) medium.
    assert result["changed"] == 3
    assert grades(sstore) == {**EXPECTED, 8: "high", 4: "medium", 6: "low"}


def test_the_window_moves_with_the_clock(sstore):
    g = sstore.config.segments["client_value"]
    with clock.frozen(dt.datetime(2027, 6, 30, 12)):   # only C1's 2026-06-20 and C2's 2026-06-10 remain
        grading.run(sstore, g, ADMIN)
    # C1 (2 clients graded): R 1+floor(3×1/2)=2, F 1, M 1 → 4; C2: R 1, F 1, M 2 → 4: both low
    assert set(grades(sstore).values()) == {"low"}


# ---- segments ---------------------------------------------------------------------------------
def test_segment_members_follow_the_readers_row_scope(sstore):
    with clock.frozen(TODAY):
        grading.run(sstore, sstore.config.segments["client_value"], ADMIN)
    client = sstore.entity("client")
    everyone = sstore.list("client", segments.list_request(sstore.config, client, MultiDict({"segment": "top_clients"}),
                                                            ADMIN), ADMIN)
    assert names(everyone) == ["C1", "C2", "C3", "C4"]
    mine = sstore.list("client", segments.list_request(sstore.config, client, MultiDict({"segment": "top_clients"}),
                                                        REP1), REP1)
    assert names(mine) == ["C1", "C2"]
    assert segments.count(sstore, "top_clients", REP1) == 2
    assert segments.count(sstore, "top_clients", ADMIN) == 4
    # the segment adds to the filters asked for
    both = segments.list_request(sstore.config, client, MultiDict({"segment": "top_clients", "name": "C3"}), ADMIN)
    assert names(sstore.list("client", both, ADMIN)) == ["C3"]


def test_segment_call_expressions_are_evaluated_when_used(sstore):
    sale = sstore.entity("sale")
    req = segments.list_request(sstore.config, sale, MultiDict({"segment": "recent_big"}), ADMIN)
    def members(at):
        with clock.frozen(at):
            req = segments.list_request(sstore.config, sale, MultiDict({"segment": "recent_big"}), ADMIN)
            return sorted((r["client"], r["amount"]) for r in sstore.list("sale", req, ADMIN)["items"])
    # 1000 or more, closed in the last 30 days (the lost 9999 of C8 counts: the segment asks no stage)
    assert members(TODAY) == [(2, Decimal("5000.00")), (8, Decimal("9999.00"))]
    assert members(dt.datetime(2026, 7, 12, 12)) == [(8, Decimal("9999.00"))]
    assert members(dt.datetime(2026, 8, 1, 12)) == []


@pytest.mark.parametrize("name, entity, words", [
    ("nope", "client", ["unknown segment 'nope'", "top_clients"]),
    ("top_client", "client", ["did you mean 'top_clients'"]),
    ("recent_big", "client", ["a segment of sale, not of client"]),
    ("client_value", "client", ["is a grading", "filter by grade"]),
])
def test_an_unknown_or_foreign_segment_is_refused_with_a_message(sstore, name, entity, words):
    with pytest.raises(BadRequest) as e:
        segments.list_request(sstore.config, sstore.entity(entity), MultiDict({"segment": name}), ADMIN)
    for w in words:
        assert w in e.value.message


# ---- config problems at file:line ---------------------------------------------------------------
def problems(tmp_path, files):
    with pytest.raises(ConfigInvalid) as e:
        load_config(write_config(tmp_path / "bad", {**FILES, **files}))
    return "\n".join(str(p) for p in e.value.problems)


def test_a_segment_naming_an_unknown_entity_or_field_is_a_config_error_at_its_line(tmp_path):
    text = problems(tmp_path, {
        "segments/a.yaml": """
            segment: a
            entity: clinet
            filter: {grade: high}
        """,
        "segments/b.yaml": """
            segment: b
            entity: client
            filter:
              grade: high
              grdae__in: "high,low"
        """,
        "segments/c.yaml": """
            segment: c
            entity: client
            filter: {grade__near: high}
        """,
    })
    assert "segments/a.yaml:2" in text and "'clinet' is not an entity (did you mean 'client'?)" in text
    assert "segments/b.yaml:5" in text and "client has no field 'grdae' (did you mean 'grade'?)" in text
    assert "segments/c.yaml:3" in text and "unknown operator 'near'" in text


def test_a_bad_grading_is_a_config_error_at_its_line(tmp_path):
    text = problems(tmp_path, {
        "segments/value.yaml": """
            segment: client_value
            grading: rfm
            entity: client
            field: note
            source: {entity: sale, link: client, date: stage, amount: amount}
            grades: {top: 7, low: 0}
            cron: "61 3 * * *"
        """,
        "segments/other.yaml": """
            segment: other
            grading: rfm
            entity: client
            field: grade
            source:
              entity: sale
              link: client
              date: closed
              amount: amonut
        """,
    })
    assert "segments/value.yaml:4" in text and "client.note is a string field" in text
    assert "segments/value.yaml:5" in text and "sale.stage is a select field; expected a date" in text
    assert "segments/value.yaml:7" in text and "'61 3 * * *' is not a valid cron line" in text
    assert "segments/other.yaml:9" in text and "sale has no field 'amonut' (did you mean 'amount'?)" in text


def test_grade_values_must_be_options_of_the_field(tmp_path):
    text = problems(tmp_path, {"segments/value.yaml": """
        segment: client_value
        grading: rfm
        entity: client
        field: grade
        source: {entity: sale, link: client, date: closed, amount: amount}
        grades: {high: 7, middling: 5, low: 0}
    """})
    assert "segments/value.yaml:6" in text and "'middling' is not an option of client.grade" in text


def test_a_segment_needs_a_filter_and_a_grading_its_source(tmp_path):
    text = problems(tmp_path, {
        "segments/a.yaml": "segment: a\nentity: client\n",
        "segments/b.yaml": "segment: b\ngrading: rfm\nentity: client\nfield: grade\n",
    })
    assert "segments/a.yaml:1" in text and "a segment needs `filter:`" in text
    assert "segments/b.yaml:1" in text and "a grading needs `source:`" in text


# ---- the nightly run through the automation scheduler ------------------------------------------------
def test_the_scheduled_grading_runs_through_the_automation_sweep(db_url, tmp_path):
    from tests.engine.test_automation_kit import Stack
    s = Stack(db_url, write_config(tmp_path / "cfg", FILES))
    try:
        seed(s.store, owners=(s.user("rep1", ["rep"]).id, s.user("rep2", ["rep"]).id))
        with clock.frozen(dt.datetime(2026, 6, 30, 1, 0)):
            s.auto.sweep()                                  # plans the next run: 03:00 UTC
        assert set(grades(s.store).values()) == {None}
        [timer] = s.timers(entity="_schedule")
        assert (timer["name"], timer["due_at"]) == ("schedule:grade:client_value", dt.datetime(2026, 6, 30, 3, 0))
        with clock.frozen(dt.datetime(2026, 6, 30, 2, 59)):
            assert s.auto.sweep().fired == 0
        assert set(grades(s.store).values()) == {None}
        with clock.frozen(dt.datetime(2026, 6, 30, 3, 0, 30)):
            assert s.auto.sweep().fired == 1
        assert grades(s.store) == EXPECTED
        running = [t for t in s.timers(entity="_schedule") if t["status"] == "running"]
        assert [t["due_at"] for t in running] == [dt.datetime(2026, 7, 1, 3, 0)]     # and again tomorrow
    finally:
        s.close()
