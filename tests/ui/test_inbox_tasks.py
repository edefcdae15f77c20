"""The inbox lists the to-dos of every entity marked `todo:` (regression: "My tasks (0)" while the
user had open and in-progress tasks), approval rows carry the record's key fields, the requester's
name and the step's label, and "Requested by me" shows where each request stands."""
import datetime as dt
import re

from engine import clock
from tests.ui.daily_app import actor, client, daily  # noqa: F401  (fixture)


def chores(app):
    rt = app.extensions["crm"]
    admin, sid, sue = actor(app, "admin"), actor(app, "sid"), actor(app, "sue")
    today = clock.today()
    made = {}
    for title, doer, state, due in [("Call Mr Wang 回访王先生", sid, "todo", today),
                                    ("Send the quote 寄送报价", sid, "doing", today - dt.timedelta(days=3)),
                                    ("Someday", sid, "todo", None),
                                    ("Already finished", sid, "finished", today),
                                    ("Sue's own chore", sue, "todo", today)]:
        made[title] = rt.store.create("chore", {"title": title, "doer": doer.id, "state": state,
                                                "due": due.isoformat() if due else None}, admin)
    return made


def tasks_section(page: str) -> str:
    return page.split("My tasks")[1].split("</ul>")[0] if "My tasks" in page else ""


def test_open_and_in_progress_todos_assigned_by_someone_else_are_listed(daily):
    chores(daily)
    page = client(daily, "sid").get("/inbox").get_data(as_text=True)
    mine = tasks_section(page)
    assert "My tasks <small>(3)</small>" in page
    for title in ("Call Mr Wang 回访王先生", "Send the quote 寄送报价", "Someday"):
        assert title in mine
    assert "Already finished" not in page and "Sue&#39;s own chore" not in page
    assert "3 days overdue" in mine                          # the overdue one says by how much
    assert mine.index("寄送报价") < mine.index("回访王先生") < mine.index("Someday")   # earliest due first


def test_the_header_counts_the_todos_and_done_closes_one(daily):
    made = chores(daily)
    sid = client(daily, "sid")
    assert re.search(r'class="count"[^>]*>3<', sid.get("/inbox").get_data(as_text=True))
    rid = made["Call Mr Wang 回访王先生"]["id"]
    r = sid.post(f"/inbox/todo/chore/{rid}/done", hx=True)
    assert r.status_code == 200 and "Task done." in r.get_data(as_text=True)
    assert "回访王先生" not in tasks_section(r.get_data(as_text=True))
    assert daily.extensions["crm"].store.get("chore", rid, actor(daily, "admin"))["state"] == "finished"
    # someone else's to-do is not theirs to close: refused, unchanged
    other = made["Sue's own chore"]["id"]
    assert sid.post(f"/inbox/todo/chore/{other}/done", hx=True).status_code in (404, 409)
    assert daily.extensions["crm"].store.get("chore", other, actor(daily, "admin"))["state"] == "todo"


def requested(app, value=12000, discount=15):
    rt = app.extensions["crm"]
    sid = actor(app, "sid")
    c = rt.store.create("client", {"name": "Hangzhou Tea 杭州茶业"}, sid)
    p = rt.store.create("pitch", {"name": "Tea order", "client": c["id"], "value": value, "discount": discount}, sid)
    rt.workflows.execute("pitch", p["id"], "make_offer", sid)
    rt.workflows.execute("pitch", p["id"], "sign", sid, comment="please")
    return p


def test_approval_rows_carry_key_fields_requester_name_and_step_label(daily):
    p = requested(daily)
    bo = client(daily, "bo")
    page = bo.get("/inbox").get_data(as_text=True)
    row = page.split("Waiting for my approval")[1].split("My tasks")[0]
    assert "Pitch: Tea order" in row
    assert "Hangzhou Tea 杭州茶业" in row and "12,000.00" in row and "15.00 %" in row   # summary: client, value, discount
    assert "Sid Seller" in row and ">sid<" not in row                                 # the name, not the login
    assert "The boss" in row and ">chief<" not in row                                 # the step's label, not its id
    assert "Asks to move Offer → Signed" in row
    zh = bo.get("/inbox?lang=zh").get_data(as_text=True)
    assert "申请从「报价」转到「已签约」" in zh and "经理" in zh
    bo.get("/inbox?lang=en")                                  # the language choice sticks to the user
    task = re.search(r"/inbox/(\d+)/approve", page).group(1)
    r = bo.post(f"/inbox/{task}/approve", {"comment": "ok"}, hx=True)
    assert "Approved." in r.get_data(as_text=True)
    assert daily.extensions["crm"].store.get("pitch", p["id"], actor(daily, "admin"))["stage"] == "signed"


def test_requested_by_me_shows_the_status_of_each_request(daily):
    requested(daily)
    sid = client(daily, "sid")
    tab = sid.get("/inbox?tab=requests").get_data(as_text=True)
    assert "Requested by me" in tab and "Pitch: Tea order" in tab
    assert "Waiting for a decision" in tab and "The boss · Bo Boss" in tab
    bo = client(daily, "bo")
    task = re.search(r"/inbox/(\d+)/reject", bo.get("/inbox").get_data(as_text=True)).group(1)
    bo.post(f"/inbox/{task}/reject", {"comment": "too cheap"}, hx=True)
    tab = sid.get("/inbox?tab=requests").get_data(as_text=True)
    assert "Rejected" in tab and "Waiting for a decision" not in tab
    assert "已驳回" in sid.get("/inbox?tab=requests&lang=zh").get_data(as_text=True)


def test_withdraw_from_the_requests_tab(daily):
    p = requested(daily)
    sid = client(daily, "sid")
    rid = re.search(r"/inbox/requests/(\d+)/withdraw", sid.get("/inbox?tab=requests").get_data(as_text=True)).group(1)
    r = sid.post(f"/inbox/requests/{rid}/withdraw", {"tab": "requests"}, hx=True)
    assert "Request withdrawn." in r.get_data(as_text=True) and "Withdrawn" in r.get_data(as_text=True)
    assert client(daily, "bo").get("/inbox").get_data(as_text=True).count("Tea order") == 0
    assert daily.extensions["crm"].store.get("pitch", p["id"], actor(daily, "admin"))["stage"] == "offer"


def test_the_button_that_asks_for_approval_says_so(daily):
    rt = daily.extensions["crm"]
    sid = actor(daily, "sid")
    c = rt.store.create("client", {"name": "Ningbo Port"}, sid)
    p = rt.store.create("pitch", {"name": "Crane", "client": c["id"], "value": 5}, sid)
    rt.workflows.execute("pitch", p["id"], "make_offer", sid)
    page = client(daily, "sid").get(f"/e/pitch/{p['id']}").get_data(as_text=True)
    assert "Request approval: Sign" in page and "⧗" not in page
    zh = client(daily, "sid").get(f"/e/pitch/{p['id']}?lang=zh").get_data(as_text=True)
    assert "提交审批：签约" in zh
    rt.workflows.execute("pitch", p["id"], "sign", sid)
    page = client(daily, "sid").get(f"/e/pitch/{p['id']}?lang=en").get_data(as_text=True)
    assert "waiting for approval of “Sign”" in page and "request #" not in page
    assert "等待审批：签约" in client(daily, "sid").get(f"/e/pitch/{p['id']}?lang=zh").get_data(as_text=True)
