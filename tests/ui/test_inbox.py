"""A12 in the browser-facing pages: the approver inbox lists, approves, rejects, delegates in place."""
import pytest

from platform_.auth import create_user
from tests.conftest import FIXTURES
from tests.ui.conftest import Client


@pytest.fixture
def flow_app(tmp_path, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path}/inbox.db")
    monkeypatch.setenv("CRM_CONFIG_DIR", str(FIXTURES / "flow"))
    monkeypatch.setenv("SECRET_KEY", "inbox-test")
    from app import create_app
    app = create_app({"TESTING": True})
    rt = app.extensions["crm"]
    rt.ensure_schema()
    for name, roles in [("clara", ["clerk"]), ("max", ["manager"]), ("mia", ["manager"])]:
        create_user(rt.engine, name, f"{name}-Passw0rd", roles)
    yield app
    rt.engine.dispose()


def submitted(app, title="Pump order", amount=10):
    from engine.actor import Actor
    from platform_.auth import find_user
    rt = app.extensions["crm"]
    clara = find_user(rt.engine, "clara")
    a = Actor(id=clara["id"], username="clara", roles=("clerk",))
    p = rt.store.create("paper", {"title": title, "amount": amount}, a)
    rt.workflows.execute("paper", p["id"], "submit", a)
    rt.workflows.execute("paper", p["id"], "approve", a, comment="please check")
    return p


def test_a12_inbox_lists_and_approves_in_place(flow_app):
    p = submitted(flow_app)
    maxc = Client(flow_app, "max", "max-Passw0rd")
    page = maxc.get("/inbox").get_data(as_text=True)
    assert "Pump order" in page and "please check" in page
    import re
    task = re.search(r'/inbox/(\d+)/approve', page).group(1)
    r = maxc.post(f"/inbox/{task}/approve", {"comment": "fine"}, hx=True)
    body = r.get_data(as_text=True)
    assert r.status_code == 200 and "<html" not in body.lower() and "Approved." in body
    assert "Pump order" not in body.split("Waiting for my approval")[1].split("My tasks")[0]
    assert flow_app.extensions["crm"].store.get("paper", p["id"], _admin(flow_app))["status"] == "approved"
    # mia's task of the same step was skipped: her inbox is empty
    assert "Nothing waits for your approval" in Client(flow_app, "mia", "mia-Passw0rd").get("/inbox").get_data(as_text=True)
    # clara got the follow-up task created on entering 'approved'
    assert "Send Pump order to the customer" in Client(flow_app, "clara", "clara-Passw0rd").get("/inbox").get_data(as_text=True)


def test_a12_reject_needs_comment_and_other_users_cannot_act(flow_app):
    import re
    submitted(flow_app)
    maxc = Client(flow_app, "max", "max-Passw0rd")
    task = re.search(r'/inbox/(\d+)/approve', maxc.get("/inbox").get_data(as_text=True)).group(1)
    r = maxc.post(f"/inbox/{task}/reject", {"comment": ""}, hx=True)
    assert r.status_code == 422 and "comment" in r.get_data(as_text=True).lower()
    clara = Client(flow_app, "clara", "clara-Passw0rd")
    assert clara.post(f"/inbox/{task}/approve", {}, hx=True).status_code == 403
    assert maxc.post(f"/inbox/{task}/approve", {}, csrf=False).status_code in (400, 403)   # CSRF on every form


def test_a12_bulk_approve_and_delegate(flow_app):
    import re
    submitted(flow_app, "One")
    submitted(flow_app, "Two")
    submitted(flow_app, "Three")
    maxc = Client(flow_app, "max", "max-Passw0rd")
    page = maxc.get("/inbox").get_data(as_text=True)
    ids = re.findall(r'name="task_id" value="(\d+)"', page)
    assert len(ids) == 3
    from engine.systables import users
    import sqlalchemy as sa
    with flow_app.extensions["crm"].engine.connect() as c:
        mia = c.execute(sa.select(users.c.id).where(users.c.username == "mia")).scalar()
    r = maxc.post(f"/inbox/{ids[2]}/delegate", {"delegate_to": str(mia)}, hx=True)
    assert "Delegated." in r.get_data(as_text=True)
    r = maxc.post("/inbox/bulk-approve", [("task_id", ids[0]), ("task_id", ids[1])], hx=True)
    assert "2 approved." in r.get_data(as_text=True)
    page = Client(flow_app, "mia", "mia-Passw0rd").get("/inbox").get_data(as_text=True)
    assert "Three" in page and "(delegated)" in page


def _admin(app):
    from engine.actor import Actor
    return Actor(id=None, roles=("admin",))


def test_a12_inbox_count_in_navigation(flow_app):
    submitted(flow_app, "One")
    submitted(flow_app, "Two")
    page = Client(flow_app, "max", "max-Passw0rd").get("/inbox").get_data(as_text=True)
    assert 'class="count"' in page and ">2</mark>" in page


def test_a12_record_page_shows_the_approval_trail(flow_app):
    import re
    p = submitted(flow_app, "Trail paper")
    maxc = Client(flow_app, "max", "max-Passw0rd")
    task = re.search(r'/inbox/(\d+)/approve', maxc.get("/inbox").get_data(as_text=True)).group(1)
    maxc.post(f"/inbox/{task}/reject", {"comment": "价格不对"}, hx=True)
    page = Client(flow_app, "clara", "clara-Passw0rd").get(f"/e/paper/{p['id']}").get_data(as_text=True)
    assert 'class="approval-trail"' in page and "价格不对" in page and "rejected" in page


def test_a12_holiday_cover_from_the_inbox(flow_app):
    import sqlalchemy as sa
    from engine.systables import users
    with flow_app.extensions["crm"].engine.connect() as c:
        mia = c.execute(sa.select(users.c.id).where(users.c.username == "mia")).scalar()
    maxc = Client(flow_app, "max", "max-Passw0rd")
    r = maxc.post("/inbox/cover", {"delegate": str(mia), "starts_on": "2020-01-01", "ends_on": "2099-12-31"}, hx=True)
    assert "go to your colleague" in r.get_data(as_text=True)
    assert maxc.post("/inbox/cover", {"delegate": str(mia), "starts_on": "soon"}, hx=True).status_code == 422
    submitted(flow_app, "While max is away")
    assert "Nothing waits for your approval" in maxc.get("/inbox").get_data(as_text=True)
    page = Client(flow_app, "mia", "mia-Passw0rd").get("/inbox").get_data(as_text=True)
    assert "While max is away" in page
    assert page.count('name="task_id"') == 1                       # mia's own task and max's cover merge


def test_a5_notify_action_reaches_the_inbox(flow_app):
    import re
    submitted(flow_app, "Notify me")
    maxc = Client(flow_app, "max", "max-Passw0rd")
    task = re.search(r'/inbox/(\d+)/approve', maxc.get("/inbox").get_data(as_text=True)).group(1)
    maxc.post(f"/inbox/{task}/approve", {}, hx=True)
    clara = Client(flow_app, "clara", "clara-Passw0rd")
    page = clara.get("/inbox").get_data(as_text=True)
    assert "Notify me was approved" in page
    r = clara.post("/inbox/notifications/read", {}, hx=True)
    assert "Notify me was approved" not in r.get_data(as_text=True)
