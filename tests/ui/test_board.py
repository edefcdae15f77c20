"""The board `/e/<entity>/board`: one column per state with the count and the money sum, cards with
title and summary fields, in the user's scope; a move runs the transition through the engine like
the record page's buttons, and a refused move answers 4xx with the reason, the record unchanged."""
import re

import pytest

from tests.ui.daily_app import actor, client, daily  # noqa: F401  (fixture)


@pytest.fixture
def pitches(daily):
    rt = daily.extensions["crm"]
    sid, sue = actor(daily, "sid"), actor(daily, "sue")
    c = rt.store.create("client", {"name": "Hangzhou Tea 杭州茶业"}, sid)
    made = {}
    for name, who, value, client_id, moves in [
            ("Tea order", sid, 1200, c["id"], ["make_offer"]), ("Kettle", sid, 300, c["id"], []),
            ("Cups", sid, 0, None, []), ("Sue's deal", sue, 9000, None, [])]:
        p = rt.store.create("pitch", {"name": name, "client": client_id, "value": value}, who)
        for m in moves:
            rt.workflows.execute("pitch", p["id"], m, who)
        made[name] = p
    return made


def column(page, state):
    return page.split(f'data-state="{state}"')[1].split("</section>")[0]


def stage(daily, rid):
    return daily.extensions["crm"].store.get("pitch", rid, actor(daily, "admin"))["stage"]


def test_columns_counts_sums_and_cards_in_scope(daily, pitches):
    page = client(daily, "sid").get("/e/pitch/board").get_data(as_text=True)
    assert [s for s in re.findall(r'<section class="board-column[^"]*" aria-label="([^"]+)"', page)] == \
        ["Idea", "Offer", "Signed", "Dropped"]
    idea, offer = column(page, "idea"), column(page, "offer")
    assert '<span class="board-count" title="Records">2</span>' in idea and "300.00" in idea
    assert "Kettle" in idea and "Cups" in idea and "Sue&#39;s deal" not in page     # a seller's own pitches
    assert "Tea order" in offer and "1,200.00" in offer and "Hangzhou Tea 杭州茶业" in offer   # summary: client
    assert "Margin" not in page                                                     # hidden for sellers
    assert f'href="/e/pitch/{pitches["Tea order"]["id"]}"' in offer
    admin = client(daily, "admin").get("/e/pitch/board").get_data(as_text=True)
    assert "Sue&#39;s deal" in admin and "9,300.00" in column(admin, "idea")
    zh = client(daily, "sid").get("/e/pitch/board?lang=zh").get_data(as_text=True)
    assert 'aria-label="想法"' in zh and "提案看板" in zh


def test_filters_mine_and_search(daily, pitches):
    admin = client(daily, "admin")
    assert "Tea order" not in admin.get("/e/pitch/board?owner=me").get_data(as_text=True)
    page = admin.get("/e/pitch/board?q=kett").get_data(as_text=True)
    assert "Kettle" in page and "Tea order" not in page
    bad = admin.get("/e/pitch/board?nofield=1").get_data(as_text=True)
    assert "unknown filter field" in bad and "Tea order" in bad                     # a bad filter says so


def test_the_list_links_to_its_board_and_a_board_needs_stages(daily, pitches):
    sid = client(daily, "sid")
    assert 'href="/e/pitch/board"' in sid.get("/e/pitch").get_data(as_text=True)
    assert "/board" not in sid.get("/e/client").get_data(as_text=True).split("<main")[1]
    r = sid.get("/e/client/board")
    assert r.status_code == 404 and "no stages" in r.get_data(as_text=True)


def move(c, rid, to, **extra):
    return c.post("/e/pitch/board/move", {"rid": str(rid), "to": to, **extra})


def test_a_move_runs_the_transition(daily, pitches):
    sid = client(daily, "sid")
    rid = pitches["Kettle"]["id"]
    r = move(sid, rid, "offer")
    assert r.status_code == 200 and r.get_json()["ok"] and r.get_json()["message"] == "Moved to Offer."
    assert stage(daily, rid) == "offer"
    hist = daily.extensions["crm"].workflows.history("pitch", rid)
    assert [h["transition"] for h in hist if h["event"] == "transition"] == ["make_offer"]


def test_refused_moves_say_why_and_change_nothing(daily, pitches):
    sid = client(daily, "sid")
    cups = pitches["Cups"]["id"]
    r = move(sid, cups, "offer")                                    # required field missing
    assert r.status_code == 422 and "fill in first: Client" in r.get_json()["message"]
    assert stage(daily, cups) == "idea"
    r = move(sid, cups, "signed")                                   # no transition leads there
    assert r.status_code == 409 and r.get_json()["message"] == "No step leads from Idea to Signed."
    r = move(sid, cups, "dropped")                                  # a comment is required: asked for
    assert r.status_code == 422 and r.get_json()["need_comment"] and "needs a comment" in r.get_json()["message"]
    assert stage(daily, cups) == "idea"
    r = move(sid, cups, "dropped", comment="no budget")
    assert r.status_code == 200 and stage(daily, cups) == "dropped"
    r = move(sid, pitches["Sue's deal"]["id"], "offer")             # out of the seller's scope
    assert r.status_code == 404 and stage(daily, pitches["Sue's deal"]["id"]) == "idea"
    r = move(sid, cups, "nowhere")
    assert r.status_code == 400 and "not a stage" in r.get_json()["message"]
    assert sid.post("/e/pitch/board/move", {"rid": str(cups), "to": "idea"}, csrf=False).status_code == 400


def test_a_guard_refuses_and_an_approval_keeps_the_card(daily, pitches):
    rt = daily.extensions["crm"]
    sid = client(daily, "sid")
    tea = pitches["Tea order"]["id"]
    rt.store.update("pitch", tea, {"value": 0}, actor(daily, "sid"))
    r = move(sid, tea, "signed")
    assert r.status_code == 422 and "Give the pitch a value first" in r.get_json()["message"]
    assert stage(daily, tea) == "offer"
    rt.store.update("pitch", tea, {"value": 1200}, actor(daily, "sid"))
    r = move(sid, tea, "signed")
    assert r.status_code == 200 and r.get_json()["status"] == "pending_approval"
    assert "sent for approval" in r.get_json()["message"] and stage(daily, tea) == "offer"
    assert "Tea order" in client(daily, "bo").get("/inbox").get_data(as_text=True)
    r = move(sid, tea, "dropped", comment="x")                      # waiting for approval: refused
    assert r.status_code == 409 and "waiting for approval" in r.get_json()["message"]


def test_a_stale_card_is_refused(daily, pitches):
    rt = daily.extensions["crm"]
    sid = client(daily, "sid")
    kettle = rt.store.get("pitch", pitches["Kettle"]["id"], actor(daily, "sid"))
    rt.store.update("pitch", kettle["id"], {"value": 310}, actor(daily, "sid"))
    r = move(sid, kettle["id"], "offer", version=str(kettle["version"]))
    assert r.status_code == 409 and stage(daily, kettle["id"]) == "idea"
