"""C8/E1 assignment rules, on SQLite and PostgreSQL: the default pack's ticket round robin over
active service agents and B4 lead routing by region (by_field with a round-robin fallback), plus
least_open, fixed and assignment on a transition (tests/fixtures/config/auto_assign); an
assignment leaves an "assigned" history row; concurrent creates take turns.
"""
from __future__ import annotations

import threading
from collections import Counter

import pytest

from engine.actor import SYSTEM_ACTOR
from tests.engine.test_automation_kit import FIXTURES, automation_templates, sh, stack  # noqa: F401 - fixtures

MONDAY = sh("2026-11-23 10:00")


@pytest.fixture
def pack(stack):
    s = stack()
    with s.at(MONDAY):
        s.customer = s.store.create("customer", {"name": "Acme", "phone": "021-5555"}, s.admin)
    return s


def new_ticket(s, actor, **values):
    with s.at(MONDAY):
        return s.store.create("ticket", {"subject": "Help", "customer": s.customer["id"], **values}, actor)


# ---- ticket round robin ------------------------------------------------------------------------
def test_nine_tickets_go_to_three_agents_in_turn(pack):
    agents = [pack.user(f"agent{i}", ["service_agent"]) for i in range(3)]
    pack.user("boss", ["service_manager"])                       # not an agent: never chosen
    desk = pack.user("desk", ["staff"])
    got = [new_ticket(pack, desk)["assignee"] for _ in range(9)]
    ids = [a.id for a in agents]
    assert got == ids * 3
    assert Counter(got) == {i: 3 for i in ids}


def test_an_assignment_is_written_to_the_history(pack):
    agent = pack.user("agent", ["service_agent"])
    desk = pack.user("desk", ["staff"])
    t = new_ticket(pack, desk)
    [row] = pack.history("ticket", t["id"], event="assigned")
    assert row["comment"] == f"ticket_round_robin → user #{agent.id}"
    assert (row["from_state"], row["to_state"], row["user_id"]) == ("new", "new", desk.id)
    assert row["at"] == pack.store.get("ticket", t["id"], pack.admin)["created_at"]
    # the assignment is part of the create: one version, not a second write
    assert t["version"] == 1
    # and it does not count as a state change for the SLA clocks
    assert pack.sla("ticket", t["id"], MONDAY)["response"]["status"] == "running"


def test_an_inactive_agent_is_skipped(pack):
    a1 = pack.user("agent1", ["service_agent"])
    a2 = pack.user("agent2", ["service_agent"], active=False)
    a3 = pack.user("agent3", ["service_agent"])
    desk = pack.user("desk", ["staff"])
    got = [new_ticket(pack, desk)["assignee"] for _ in range(4)]
    assert got == [a1.id, a3.id, a1.id, a3.id]
    assert a2.id not in got
    # an agent leaving between two tickets is skipped from then on
    pack.deactivate(a1)
    assert [new_ticket(pack, desk)["assignee"] for _ in range(2)] == [a3.id, a3.id]


def test_an_explicit_assignee_is_kept_and_does_not_move_the_turn(pack):
    a1 = pack.user("agent1", ["service_agent"])
    a2 = pack.user("agent2", ["service_agent"])
    desk = pack.user("desk", ["staff"])
    first = new_ticket(pack, desk)
    chosen = new_ticket(pack, desk, assignee=a1.id)
    assert (first["assignee"], chosen["assignee"]) == (a1.id, a1.id)
    assert pack.history("ticket", chosen["id"], event="assigned") == []
    assert new_ticket(pack, desk)["assignee"] == a2.id


def test_without_agents_the_ticket_is_created_unassigned(pack):
    pack.user("boss", ["service_manager"])
    pack.user("gone", ["service_agent"], active=False)
    desk = pack.user("desk", ["staff"])
    t = new_ticket(pack, desk)
    assert t["assignee"] is None and t["status"] == "new" and t["code"]
    assert pack.store.get("ticket", t["id"], pack.admin)["assignee"] is None
    assert pack.history("ticket", t["id"], event="assigned") == []
    # once an agent exists the next ticket gets one
    agent = pack.user("agent", ["service_agent"])
    assert new_ticket(pack, desk)["assignee"] == agent.id


def test_eight_threads_creating_tickets_share_them_evenly(pack):
    agents = [pack.user(f"agent{i}", ["service_agent"]) for i in range(3)]
    desk = pack.user("desk", ["staff"])
    per_thread, errors, made = 3, [], []
    gate = threading.Barrier(8)

    def worker():
        try:
            gate.wait(timeout=10)
            for _ in range(per_thread):
                made.append(new_ticket(pack, desk))
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=120)
    assert errors == []
    assert len(made) == 8 * per_thread
    share = Counter(t["assignee"] for t in made)
    assert set(share) == {a.id for a in agents}
    assert max(share.values()) - min(share.values()) <= 1
    assert len({t["code"] for t in made}) == len(made)
    assert sum(len(pack.history("ticket", t["id"], event="assigned")) for t in made) == len(made)


# ---- leads by region (B4) ---------------------------------------------------------------------
@pytest.fixture
def sales(pack):
    s = pack
    s.rep = s.user("rep_east", ["sales"])
    s.s1 = s.user("sales1", ["sales"])
    s.s2 = s.user("sales2", ["sales"])
    with s.at(MONDAY):
        s.east = s.store.create("region", {"name": "East China", "sales_rep": s.rep.id}, s.admin)
        s.west = s.store.create("region", {"name": "West China"}, s.admin)
    return s


def new_lead(s, actor, **values):
    with s.at(MONDAY):
        return s.store.create("lead", {"name": "Li Lei", "company": "Lei Pumps", **values}, actor)


def test_a_lead_from_a_region_with_a_salesperson_goes_to_that_salesperson(sales):
    # a lead entered by the system (web form, import) has no owner of its own
    lead = new_lead(sales, SYSTEM_ACTOR, region=sales.east["id"])
    assert lead["owner"] == sales.rep.id
    [row] = sales.history("lead", lead["id"], event="assigned")
    assert row["comment"] == f"lead_by_region → user #{sales.rep.id}"


def test_a_lead_from_a_region_without_a_salesperson_goes_round_robin_over_sales(sales):
    got = [new_lead(sales, SYSTEM_ACTOR, region=sales.west["id"])["owner"] for _ in range(3)]
    assert got == [sales.rep.id, sales.s1.id, sales.s2.id]
    # no region at all: the fallback too
    assert new_lead(sales, SYSTEM_ACTOR)["owner"] == sales.rep.id


def test_an_inactive_regional_salesperson_falls_back_to_the_round_robin(sales):
    sales.deactivate(sales.rep)
    got = [new_lead(sales, SYSTEM_ACTOR, region=sales.east["id"])["owner"] for _ in range(3)]
    assert got == [sales.s1.id, sales.s2.id, sales.s1.id]


def test_an_explicit_owner_of_a_lead_is_kept(sales):
    lead = new_lead(sales, SYSTEM_ACTOR, region=sales.east["id"], owner=sales.s2.id)
    assert lead["owner"] == sales.s2.id
    assert sales.history("lead", lead["id"], event="assigned") == []


def test_a_lead_typed_in_by_a_colleague_still_goes_to_the_regions_salesperson(sales):
    desk = sales.user("front_desk", ["staff"])
    lead = new_lead(sales, desk, region=sales.east["id"])
    assert lead["owner"] == sales.rep.id


# ---- least_open, fixed, on a transition (fixture auto_assign) --------------------------------
@pytest.fixture
def cases(stack):
    s = stack(FIXTURES / "auto_assign")
    s.a1 = s.user("ann", ["agent"])
    s.a2 = s.user("bob", ["agent"])
    s.a3 = s.user("cat", ["agent"])
    s.vera = s.user("vera", ["senior"])
    s.boss = s.user("boss", ["manager"])
    s.clerk = s.user("clerk", ["staff"])
    return s


def new_case(s, **values):
    with s.at(MONDAY):
        return s.store.create("case", {"title": "A case", **values}, s.clerk)


def test_least_open_gives_the_case_to_the_agent_with_the_fewest_open_cases(cases):
    s = cases
    for _ in range(2):
        new_case(s, handler=s.a1.id)
    new_case(s, handler=s.a2.id)
    for _ in range(3):                                     # closed cases do not count
        c = new_case(s, handler=s.a3.id)
        s.move("case", c["id"], "close", s.admin, MONDAY)
    deleted = new_case(s, handler=s.a2.id)                 # nor deleted ones
    with s.at(MONDAY):
        s.store.delete("case", deleted["id"], s.admin)
    # open: ann 2, bob 1, cat 0
    assert new_case(s)["handler"] == s.a3.id
    # open: ann 2, bob 1, cat 1 -> a tie goes to the first user (bob before cat)
    assert new_case(s)["handler"] == s.a2.id
    # ann 2, bob 2, cat 1
    assert new_case(s)["handler"] == s.a3.id
    # all tied at 2 open cases: in user order
    assert [new_case(s)["handler"] for _ in range(3)] == [s.a1.id, s.a2.id, s.a3.id]


def test_least_open_skips_inactive_agents(cases):
    s = cases
    s.deactivate(s.a1)
    assert [new_case(s)["handler"] for _ in range(4)] == [s.a2.id, s.a3.id, s.a2.id, s.a3.id]


def test_a_fixed_rule_with_a_condition_comes_first_and_gives_way_when_its_user_is_inactive(cases):
    s = cases
    vip = new_case(s, kind="vip")
    assert vip["handler"] == s.vera.id
    [row] = s.history("case", vip["id"], event="assigned")
    assert row["comment"] == f"case_vip → user #{s.vera.id}"
    assert new_case(s)["handler"] == s.a1.id              # not a VIP case: least_open
    s.deactivate(s.vera)
    fallback = new_case(s, kind="vip")
    assert fallback["handler"] == s.a2.id                  # ann has one open case already
    assert s.history("case", fallback["id"], event="assigned")[0]["comment"].startswith("case_least_open")


def test_an_assignment_on_a_transition_fills_the_field_when_the_transition_runs(cases):
    s = cases
    c = new_case(s)
    assert c["reviewer"] is None                            # the rule is on `escalate`, not on create
    after = s.move("case", c["id"], "escalate", s.clerk, sh("2026-11-23 11:00"))
    assert after["stage"] == "escalated"
    stored = s.store.get("case", c["id"], s.admin)
    assert stored["reviewer"] == s.boss.id and stored["handler"] == c["handler"]
    rows = s.history("case", c["id"], event="assigned")
    assert [r["comment"] for r in rows] == [f"case_least_open → user #{c['handler']}",
                                            f"case_escalation → user #{s.boss.id}"]
    assert rows[1]["to_state"] == "escalated"
