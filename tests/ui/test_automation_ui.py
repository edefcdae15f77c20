"""Automation in the generated UI (issue 7): the notification bell and page, SLA clocks on record
pages and lists, and the administrators' page of failed background jobs — on the default pack."""
from __future__ import annotations

import datetime as dt
import re

import pytest

from engine import clock
from engine.automation import notifications, outbox
from engine.db import writing
from engine.wftables import notifications as notification_table
from platform_.auth import create_user, find_user, get_actor
from tests.conftest import ROOT
from tests.ui.conftest import Client

# Thursday 2025-11-20 10:00 in Shanghai (the standard calendar: 09:00-12:00, 13:00-18:00 Mon-Fri)
T0 = dt.datetime(2025, 11, 20, 2, 0)
PEOPLE = {"agent": ("service_agent",), "agent2": ("service_agent",), "boss": ("service_manager",),
          "staff": ("staff",)}


@pytest.fixture
def app(tmp_path, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path}/auto.db")
    monkeypatch.setenv("CRM_CONFIG_DIR", str(ROOT / "config"))
    monkeypatch.setenv("ATTACHMENTS_DIR", str(tmp_path / "files"))
    monkeypatch.setenv("SECRET_KEY", "automation-ui-test")
    from app import create_app
    app = create_app({"TESTING": True})
    rt = app.extensions["crm"]
    if rt.store is None or "ticket" not in rt.config.entities or not rt.automation.has_sla("ticket"):
        pytest.skip("the default pack does not load or has no ticket SLA")
    rt.ensure_schema()
    create_user(rt.engine, "admin", "admin-Passw0rd", roles=("admin",), full_name="Ada Admin", language="en")
    for name, roles in PEOPLE.items():
        create_user(rt.engine, name, f"{name}-Passw0rd", roles=roles, language="en")
    yield app
    rt.engine.dispose()


@pytest.fixture
def rt(app):
    return app.extensions["crm"]


@pytest.fixture
def frozen():
    """frozen(at) freezes the engine clock for every thread; released after the test."""
    def freeze(at):
        clock.set_global(at)
    try:
        yield freeze
    finally:
        clock.set_global(None)


def login(app, name):
    return Client(app, name, "admin-Passw0rd" if name == "admin" else f"{name}-Passw0rd")


def actor(rt, name):
    return get_actor(rt.engine, find_user(rt.engine, name)["id"])


def uid(rt, name):
    return find_user(rt.engine, name)["id"]


def customer(rt, name="杭州尚祈科技"):
    return rt.store.create("customer", {"name": name, "phone": "+86 571 8888 0001", "email": "it@shangqi.example.cn"},
                           actor(rt, "admin"))


def ticket(rt, subject="水泵异响", priority="p1", assignee="agent", cust=None):
    cust = cust or customer(rt)
    return rt.store.create("ticket", {"subject": subject, "customer": cust["id"], "priority": priority,
                                      "assignee": uid(rt, assignee)}, actor(rt, "admin"))


def add_notes(rt, user, n, entity=None, record_id=None, prefix="Note"):
    """n notifications for `user`, one minute apart (newest last)."""
    with writing(rt.engine) as conn:
        for i in range(1, n + 1):
            conn.execute(notification_table.insert().values(
                user_id=uid(rt, user), entity=entity, record_id=record_id, message=f"{prefix} {i:02d}",
                created_at=T0 + dt.timedelta(minutes=i)))


def text(resp) -> str:
    """What a person reads: the page without tags, whitespace folded."""
    body = resp.get_data(as_text=True)
    body = re.sub(r"<(script|style)\b.*?</\1>", " ", body, flags=re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", body)).strip()


def bell_count(client) -> int:
    r = client.get("/notifications/bell", hx=True)
    assert r.status_code == 200
    m = re.search(r'class="count bell-count" data-unread="(\d+)">([^<]+)<', r.get_data(as_text=True))
    return int(m.group(1)) if m else 0


# ---- notifications ---------------------------------------------------------------------------
def test_bell_shows_the_unread_count_and_drops_after_mark_read(app, rt):
    t = ticket(rt)
    admin = actor(rt, "admin")
    for p in ("p2", "p3"):                     # the priority-change automation tells the assignee
        cur = rt.store.get("ticket", t["id"], admin)
        rt.store.update("ticket", t["id"], {"priority": p, "version": cur["version"]}, admin)
    agent = login(app, "agent")
    page = agent.get("/")
    assert 'id="bell"' in page.get_data(as_text=True)
    assert 'hx-trigger="load, every 30s' in page.get_data(as_text=True)
    assert "Notifications · 2 unread" in page.get_data(as_text=True)     # the bell's label in the top bar
    assert bell_count(agent) == 2
    listing = agent.get("/notifications")
    assert "priority is now p3" in text(listing) and "priority is now p2" in text(listing)
    first = re.search(r'name="id" value="(\d+)"', listing.get_data(as_text=True)).group(1)
    r = agent.post("/notifications/read", {"id": first}, hx=True)
    assert r.status_code == 200 and "<html" not in r.get_data(as_text=True).lower()
    assert r.headers.get("HX-Trigger") == "notificationsChanged"          # the bell refreshes in place
    assert "1 marked as read." in text(r)
    assert bell_count(agent) == 1
    r = agent.post("/notifications/read", {"all": "1"})                     # without JS: redirect + flash
    assert r.status_code == 302
    page = agent.get(r.headers["Location"])
    assert "1 marked as read." in text(page) and "Mark all read" not in text(page)
    assert bell_count(agent) == 0
    assert 'data-unread' not in agent.get("/").get_data(as_text=True)


def test_notifications_are_private(app, rt):
    add_notes(rt, "agent", 3, prefix="For agent")
    add_notes(rt, "boss", 2, prefix="For boss")
    boss = login(app, "boss")
    page = text(boss.get("/notifications"))
    assert "For boss 01" in page and "For boss 02" in page and "For agent" not in page
    assert bell_count(boss) == 2
    agents = notifications.listing(rt.engine, uid(rt, "agent"))["items"]
    # the boss posts the agent's ids: nothing changes for anyone
    r = boss.post("/notifications/read", [("id", str(n["id"])) for n in agents] + [("id", str(2 ** 40)), ("id", "x")],
                  hx=True)
    assert "Nothing to mark as read." in text(r)
    assert notifications.unread_count(rt.engine, uid(rt, "agent")) == 3
    assert bell_count(boss) == 2
    assert bell_count(login(app, "agent")) == 3
    # the inbox shows only one's own notifications too, through the same service
    assert "For agent" not in text(boss.get("/inbox")) and "For boss 02" in text(boss.get("/inbox"))


def test_notifications_page_pages_newest_first_and_filters_unread(app, rt):
    t = ticket(rt, priority="p3")
    add_notes(rt, "agent2", 60, entity="ticket", record_id=t["id"])
    c = login(app, "agent2")
    p1 = c.get("/notifications")
    body = p1.get_data(as_text=True)
    assert body.count('class="note ') == 50
    assert "Page 1 of 2" in text(p1) and "60 in all" in text(p1)
    assert text(p1).index("Note 60") < text(p1).index("Note 59")          # newest first
    assert "Note 10" not in text(p1)
    assert f'href="/e/ticket/{t["id"]}"' in body                           # each links to its record
    assert 'href="/notifications?page=2"' in body
    p2 = c.get("/notifications?page=2")
    assert p2.get_data(as_text=True).count('class="note ') == 10
    assert "Note 10" in text(p2) and "Note 01" in text(p2) and "Note 11" not in text(p2)
    # mark some read: they lose the highlight and leave the "unread only" view
    ids = [n["id"] for n in notifications.listing(rt.engine, uid(rt, "agent2"), page=1, per_page=5)["items"]]
    c.post("/notifications/read?page=1", [("id", str(i)) for i in ids])
    p1 = c.get("/notifications").get_data(as_text=True)
    assert p1.count('class="note note-unread"') == 45 and p1.count('class="note note-read"') == 5
    only = c.get("/notifications?unread=1")
    assert "55 in all" in text(only) and "Note 60" not in text(only) and "Note 55" in text(only)
    part = c.get("/notifications?unread=1&page=2", hx=True)
    assert "<html" not in part.get_data(as_text=True).lower() and "Page 2 of 2" in text(part)
    c.post("/notifications/read", {"all": "1"})
    assert "No unread notifications." in text(c.get("/notifications?unread=1"))
    assert "You have no notifications yet." in text(login(app, "boss").get("/notifications"))


def test_notification_forms_need_csrf_and_a_sign_in(app, rt):
    add_notes(rt, "agent", 2)
    c = login(app, "agent")
    page = c.get("/notifications").get_data(as_text=True)
    forms = re.findall(r"<form[^>]*method=\"post\".*?</form>", page, re.S)
    assert forms and all('name="csrf_token"' in f for f in forms)
    r = c.post("/notifications/read", {"all": "1"}, csrf=False)
    assert r.status_code == 400 and "The form has expired" in text(r)
    assert notifications.unread_count(rt.engine, uid(rt, "agent")) == 2
    anon = app.test_client()
    assert anon.get("/notifications").status_code == 302
    assert anon.get("/notifications/bell").status_code == 204           # the poll changes nothing signed out


def test_notifications_page_in_chinese(app, rt):
    add_notes(rt, "agent", 1, prefix="工单超时")
    c = login(app, "agent")
    page = text(c.get("/notifications?lang=zh"))
    assert "通知" in page and "仅未读" in page and "标为已读" in page and "全部标为已读" in page
    assert "Mark read" not in page


# ---- SLA on the record page -------------------------------------------------------------------
def sla_rows(resp) -> list[str]:
    html = resp.get_data(as_text=True)
    panel = re.search(r'<section class="sla-panel".*?</section>', html, re.S)
    assert panel, "no SLA panel on the page"
    return [re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", row)).strip()
            for row in re.findall(r'<tr class="sla-row.*?</tr>', panel.group(0), re.S)]


def test_record_page_shows_the_sla_panel_in_english_and_chinese(app, rt, frozen):
    frozen(T0)
    t = ticket(rt, priority="p1")                         # response 1 h, resolution 8 h of working time
    c = login(app, "agent")
    frozen(T0 + dt.timedelta(minutes=20))                 # 10:20 Shanghai
    rows = sla_rows(c.get(f"/e/ticket/{t['id']}"))
    assert rows == ["First response Running due 11-20 11:00 40 min working time left",
                    "Resolution Running due 11-21 10:00 7 h 40 min working time left"]
    frozen(T0 + dt.timedelta(minutes=50))                 # 10 min left of 60: under 25 % → at risk
    r = c.get(f"/e/ticket/{t['id']}?lang=zh")
    rows = sla_rows(r)
    assert rows[0] == "首次响应 即将超时 截止 11-20 11:00 剩余工作时间 10 分钟"
    assert rows[1] == "解决 计时中 截止 11-21 10:00 剩余工作时间 7 小时 10 分钟"
    assert "工单服务时效" in text(r) and 'sla-at_risk' in r.get_data(as_text=True)
    # the due instant carries the calendar's offset for machines and people
    assert 'datetime="2025-11-20T11:00:00+08:00"' in r.get_data(as_text=True)
    assert "2025-11-20 11:00 (UTC+08:00)" in r.get_data(as_text=True)


def test_record_page_sla_breached_paused_and_met(app, rt, frozen):
    frozen(T0)
    t = ticket(rt, priority="p1")
    now = T0 + dt.timedelta(hours=3, minutes=5)            # 13:05: 1 h 5 min of working time past 11:00
    frozen(now)
    rt.automation.sweep(now)
    c = login(app, "agent")
    en = sla_rows(c.get(f"/e/ticket/{t['id']}?lang=en"))
    assert en[0] == "First response Breached due 11-20 11:00 overdue by 1 h 5 min"
    zh = sla_rows(c.get(f"/e/ticket/{t['id']}?lang=zh"))
    assert zh[0] == "首次响应 已超时 截止 11-20 11:00 已超时 1 小时 5 分钟"
    agent = actor(rt, "agent")
    rt.workflows.execute("ticket", t["id"], "start", agent)           # meets the response target (late)
    rt.workflows.execute("ticket", t["id"], "wait_customer", agent, comment="请提供照片")
    zh = sla_rows(c.get(f"/e/ticket/{t['id']}?lang=zh"))
    assert zh[0] == "首次响应 已超时 截止 11-20 11:00 已达成（11-20 13:05）"
    assert zh[1] == "解决 已暂停 暂停期间不计截止时间 已暂停"
    en = sla_rows(c.get(f"/e/ticket/{t['id']}?lang=en"))
    assert en[1] == "Resolution Paused no due time while paused paused"
    # a ticket answered in time: met, green
    frozen(T0)
    t2 = ticket(rt, subject="打印机卡纸", priority="p1")
    frozen(T0 + dt.timedelta(minutes=30))
    rt.workflows.execute("ticket", t2["id"], "start", agent)
    r = c.get(f"/e/ticket/{t2['id']}?lang=zh")
    assert sla_rows(r)[0] == "首次响应 已达成 截止 11-20 11:00 已达成（11-20 10:30）"
    assert "sla-met" in r.get_data(as_text=True)
    assert "sla_breach" not in text(r) and "ticket_service" not in text(r)


def test_no_sla_panel_for_entities_without_one(app, rt):
    cust = customer(rt)
    page = login(app, "admin").get(f"/e/customer/{cust['id']}").get_data(as_text=True)
    assert "sla-panel" not in page


# ---- SLA on lists ----------------------------------------------------------------------------
def test_list_shows_the_sla_column_and_filters_breached(app, rt, frozen):
    frozen(T0)
    cust = customer(rt)
    ticket(rt, subject="早上的工单", priority="p1", cust=cust)
    frozen(T0 + dt.timedelta(hours=2))                    # 12:00; the next ticket's clock starts at 13:00
    ticket(rt, subject="中午的工单", priority="p4", cust=cust)
    now = T0 + dt.timedelta(hours=3)                      # 13:00: the first is 1 h past its response target
    frozen(now)
    rt.automation.sweep(now)
    c = login(app, "agent")
    r = c.get("/e/ticket")
    html = r.get_data(as_text=True)
    assert re.search(r'<th scope="col" class="sla-col[^"]*">SLA</th>', html)
    cells = re.findall(r'<td class="sla-col">(.*?)</td>', html, re.S)
    shown = [re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", x)).strip() for x in cells]
    assert sorted(shown) == ["Breached", "Running 16 h left"]
    assert 'title="First response: due 2025-11-20 11:00 (UTC+08:00)"' in html
    # the filter control sets ?sla=
    assert re.search(r'<select id="flt-sla" name="sla"', html)
    for v, label in [("at_risk", "At risk"), ("breached", "Breached"), ("paused", "Paused"), ("running", "Running"),
                     ("met", "Met")]:
        assert f'<option value="{v}" >{label}</option>' in html
    only = c.get("/e/ticket?sla=breached")
    assert "早上的工单" in text(only) and "中午的工单" not in text(only) and "1 found" in text(only)
    assert '<option value="breached" selected>' in only.get_data(as_text=True)
    part = c.get("/e/ticket?sla=met", hx=True)                         # the results block, swapped in place
    assert "<html" not in part.get_data(as_text=True).lower() and "No records match." in text(part)
    assert "中午的工单" not in text(c.get("/e/ticket?sla=breached&q=中午"))
    zh = c.get("/e/ticket?lang=zh")
    assert "时效" in text(zh) and "已超时" in text(zh) and "剩余 16 小时" in text(zh) and "即将超时" in text(zh)


def test_lists_without_an_sla_have_no_sla_column(app, rt):
    customer(rt)
    html = login(app, "admin").get("/e/customer").get_data(as_text=True)
    assert "sla-col" not in html and 'name="sla"' not in html


# ---- background jobs -------------------------------------------------------------------------
LONG = "http://127.0.0.1:1/hooks/" + "x" * 150 + "?<script>alert(1)</script>"


def failed_webhook(rt):
    from engine.automation import webhooks
    from platform_.delivery import dispatch
    webhooks.create(rt.engine, rt.config, {"url": LONG, "events": ["customer.created"], "secret": "s3cret-value"},
                    uid(rt, "admin"))
    cust = customer(rt, "宁波海天贸易")
    counts = dispatch(rt, {})
    assert counts["retry"] == 1
    return cust


def test_jobs_page_is_for_administrators_only(app, rt):
    staff = login(app, "staff")
    r = staff.get("/admin/jobs")
    assert r.status_code == 403 and "Only an administrator may see background jobs." in text(r)
    assert "Background jobs" not in text(staff.get("/"))                 # no link for them either
    assert staff.post("/admin/jobs/webhook/1/retry").status_code == 403
    assert 'href="/admin/jobs"' in login(app, "admin").get("/").get_data(as_text=True)
    assert login(app, "admin").get("/admin/jobs").status_code == 200


def test_jobs_page_lists_a_failed_webhook_and_reruns_it(app, rt):
    from platform_.delivery import dispatch
    admin = login(app, "admin")
    assert "No background job has failed." in text(admin.get("/admin/jobs"))
    cust = failed_webhook(rt)
    row = outbox.problems(rt.engine)[0]
    r = admin.get("/admin/jobs")
    html, page = r.get_data(as_text=True), text(r)
    assert "Webhook call" in page and "Will retry" in page
    assert f'href="/e/customer/{cust["id"]}"' in html and "宁波海天贸易 Customer" in page
    assert "could not be reached" in page
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<details><summary" in html and "…" in page                    # long errors are cut, full text on demand
    assert re.search(r'<td class="num">1</td>', html)                       # attempts
    form = re.search(r'<form method="post" action="(/admin/jobs/webhook/%d/retry)".*?</form>' % row["id"], html, re.S)
    assert form and 'name="csrf_token"' in form.group(0)
    assert admin.post(form.group(1), csrf=False).status_code == 400          # CSRF
    r = admin.post(form.group(1))
    assert r.status_code == 302 and r.headers["Location"].endswith("/admin/jobs")
    page = text(admin.get("/admin/jobs"))
    assert f"Webhook call #{row['id']} will run again now." in page
    after = outbox.get(rt.engine, row["id"])
    assert after["attempts"] == 0 and after["status"] == "pending" and after["last_error"] is None
    assert all(x["id"] != row["id"] for x in outbox.problems(rt.engine))  # back in the queue, off the list
    assert admin.post("/admin/jobs/nothing/1/retry").status_code == 404
    assert admin.post(f"/admin/jobs/webhook/{2 ** 40}/retry").status_code == 404
    r = admin.post(f"/admin/jobs/email/{row['id']}/retry")                  # the wrong kind touches nothing
    assert f"E-mail #{row['id']} is not waiting to be re-run." in text(admin.get(r.headers["Location"]))
    r = admin.post("/admin/jobs/timer/99999/retry")
    assert "Timer #99999 is not waiting to be re-run." in text(admin.get(r.headers["Location"]))
    dispatch(rt, {})                                                         # fails again: listed again
    zh = text(admin.get("/admin/jobs?lang=zh"))
    assert "后台任务" in zh and "Webhook 调用" in zh and "重新运行" in zh and "等待重试" in zh and "宁波海天贸易 客户" in zh


def test_inbox_still_lists_and_clears_notifications(app, rt):
    add_notes(rt, "agent", 2, prefix="Inbox note")
    c = login(app, "agent")
    assert "Inbox note 02" in text(c.get("/inbox"))
    r = c.post("/inbox/notifications/read", {}, hx=True)
    assert "Inbox note" not in text(r) and r.headers.get("HX-Trigger") == "notificationsChanged"
    assert notifications.unread_count(rt.engine, uid(rt, "agent")) == 0
