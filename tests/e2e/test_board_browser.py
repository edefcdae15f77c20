"""The board in a real browser: drag a card one stage on (the transition runs, the counts follow),
and a refused drag snaps back with the reason in view."""
from __future__ import annotations

import datetime as dt

import pytest

from tests.e2e.conftest import shot

pytestmark = pytest.mark.e2e


@pytest.fixture
def deals(live):
    base, app, _roles, cfg = live
    e = cfg.entities.get("opportunity")
    if e is None or e.state_field is None or "customer" not in cfg.entities:
        pytest.skip("the default pack does not load; the board scenario drives its opportunity pipeline")
    from engine.actor import Actor
    from platform_.auth import find_user
    rt = app.extensions["crm"]
    admin = Actor(id=find_user(rt.engine, "admin")["id"], username="admin", roles=("admin",))
    cust = rt.store.create("customer", {"name": "看板客户 Board E2E", "email": "board@example.cn"}, admin)
    close = (dt.date.today() + dt.timedelta(days=30)).isoformat()
    fresh = rt.store.create("opportunity", {"name": "Board drag 拖动商机", "customer": cust["id"],
                                            "expected_close": close}, admin)
    empty = rt.store.create("opportunity", {"name": "Board no lines 无明细", "customer": cust["id"],
                                            "expected_close": close}, admin)
    rt.workflows.execute("opportunity", empty["id"], "show_intent", admin)
    rt.workflows.execute("opportunity", empty["id"], "propose", admin)
    return rt, admin, fresh, empty


def card(pg, rid):
    return pg.locator(f".board-card[data-id='{rid}']")


def drag(pg, rid, state):
    source = card(pg, rid)
    target = pg.locator(f"[data-column='{state}']")
    source.scroll_into_view_if_needed()
    box, goal = source.bounding_box(), target.bounding_box()
    pg.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    pg.mouse.down()
    pg.mouse.move(box["x"] + box["width"] / 2 + 10, box["y"] + box["height"] / 2 + 10, steps=5)
    pg.mouse.move(goal["x"] + goal["width"] / 2, goal["y"] + 20, steps=15)
    pg.mouse.up()


def test_drag_a_card_one_stage_and_a_refused_drag_snaps_back(page, deals):
    rt, admin, fresh, empty = deals
    page.goto(page.base + "/e/opportunity/board?lang=en")
    page.wait_for_load_state("networkidle")
    assert card(page, fresh["id"]).locator("xpath=ancestor::ol").get_attribute("data-column") == "potential"
    # the page itself never scrolls sideways: the board scrolls in its own box
    assert page.evaluate("document.documentElement.scrollWidth") <= page.evaluate("window.innerWidth")

    with page.expect_response(lambda r: r.request.method == "GET" and "/board" in r.url):
        drag(page, fresh["id"], "intent")          # a move, then the board's refresh replaces it
    page.wait_for_function("!document.querySelector('.htmx-request, .htmx-swapping, .htmx-settling')")
    page.wait_for_selector("#board-message:has-text('Moved to Intent.')")
    page.wait_for_selector(f"[data-column='intent'] .board-card[data-id='{fresh['id']}']")
    assert rt.store.get("opportunity", fresh["id"], admin)["stage"] == "intent"

    drag(page, empty["id"], "negotiation")
    message = page.locator("#board-message")
    message.wait_for(state="visible")
    page.wait_for_selector("#board-message:has-text('Add product lines first')")
    assert message.get_attribute("role") == "alert"
    assert card(page, empty["id"]).locator("xpath=ancestor::ol").get_attribute("data-column") == "proposal"
    assert rt.store.get("opportunity", empty["id"], admin)["stage"] == "proposal"
    shot(page, "board")
    page.goto(page.base + "/")
    page.wait_for_load_state("networkidle")
    assert page.locator("#home-tasks").is_visible() and page.locator(".figures").is_visible()
    shot(page, "home")


def test_a_card_moves_with_the_keyboard_and_a_refused_key_move_snaps_back(page, deals):
    """→ on a focused card runs the same transition as a drop on the next column; focus stays on it."""
    rt, admin, fresh, empty = deals
    cust = rt.store.create("customer", {"name": "键盘客户 Keyboard E2E", "email": "keys@example.cn"}, admin)
    key_deal = rt.store.create("opportunity", {"name": "Keyboard 键盘商机", "customer": cust["id"],
                                               "expected_close": (dt.date.today() + dt.timedelta(days=30)).isoformat()},
                               admin)
    page.goto(page.base + "/e/opportunity/board?lang=en")
    page.wait_for_load_state("networkidle")
    assert "press ← or →" in page.locator("#board-keys").inner_text()
    c = card(page, key_deal["id"])
    assert c.get_attribute("aria-describedby") == "board-keys"
    c.focus()
    with page.expect_response(lambda r: r.request.method == "GET" and "/board" in r.url):
        page.keyboard.press("ArrowRight")
    page.wait_for_selector("#board-message:has-text('Moved to Intent.')")
    page.wait_for_selector(f"[data-column='intent'] .board-card[data-id='{key_deal['id']}']")
    assert rt.store.get("opportunity", key_deal["id"], admin)["stage"] == "intent"
    page.wait_for_function(f"document.activeElement && document.activeElement.getAttribute('data-id') == '{key_deal['id']}'")

    with page.expect_response(lambda r: r.request.method == "GET" and "/board" in r.url):
        page.keyboard.press("ArrowLeft")         # ← runs the workflow's step back
    page.wait_for_selector(f"[data-column='potential'] .board-card[data-id='{key_deal['id']}']")
    assert rt.store.get("opportunity", key_deal["id"], admin)["stage"] == "potential"
    page.wait_for_function("!document.querySelector('.htmx-request, .htmx-swapping, .htmx-settling')")

    refused = card(page, empty["id"])            # no product lines: the move to negotiation is refused
    refused.focus()
    page.keyboard.press("ArrowRight")
    page.wait_for_selector("#board-message:has-text('Add product lines first')")
    assert card(page, empty["id"]).locator("xpath=ancestor::ol").get_attribute("data-column") == "proposal"
    assert rt.store.get("opportunity", empty["id"], admin)["stage"] == "proposal"
