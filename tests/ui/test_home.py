"""The home page `/` is the user's day: to-dos due today and overdue (highlighted, with how many
days), follow-ups, approvals waiting, own requests, recent records and the role's key figures from
home.yaml — within the user's row scope, with a fixed number of queries whatever the data size."""
import datetime as dt
import shutil

import pytest
import sqlalchemy as sa

from engine import clock
from engine.errors import ConfigInvalid
from engine.loader import load_config
from tests.ui.daily_app import CONFIG, actor, client, daily  # noqa: F401  (fixture)


def seed(app, n_extra=0):
    rt = app.extensions["crm"]
    admin, sid, sue = actor(app, "admin"), actor(app, "sid"), actor(app, "sue")
    today = clock.today()
    rt.store.create("chore", {"title": "Bar today 回访王先生", "doer": sid.id, "due": today.isoformat()}, admin)
    rt.store.create("chore", {"title": "Bar overdue 寄送报价", "doer": sid.id, "state": "doing",
                              "due": (today - dt.timedelta(days=3)).isoformat()}, admin)
    rt.store.create("chore", {"title": "Finished yesterday", "doer": sid.id, "state": "finished",
                              "due": (today - dt.timedelta(days=1)).isoformat()}, admin)
    rt.store.create("chore", {"title": "Sue's chore", "doer": sue.id, "due": today.isoformat()}, admin)
    rt.store.create("chore", {"title": "Far away", "doer": sid.id, "due": (today + dt.timedelta(days=40)).isoformat()},
                    admin)
    c = rt.store.create("client", {"name": "Call back Hangzhou 杭州", "call_back": (today + dt.timedelta(days=2)).isoformat()}, sid)
    rt.store.create("client", {"name": "Sue's client", "call_back": today.isoformat()}, sue)
    for name, who, value, stage in [("Sid idea", sid, 1000, None), ("Sid offer", sid, 2500, "make_offer"),
                                    ("Sue idea", sue, 7000, None)]:
        p = rt.store.create("pitch", {"name": name, "client": c["id"] if who is sid else None, "value": value}, who)
        if stage:
            rt.workflows.execute("pitch", p["id"], stage, who)
    for i in range(n_extra):
        rt.store.create("chore", {"title": f"Extra {i}", "doer": sid.id, "due": today.isoformat()}, admin)
        rt.store.create("pitch", {"name": f"Extra pitch {i}", "value": 1}, sue)
    return c


def test_a_sellers_day(daily):
    seed(daily)
    page = client(daily, "sid").get("/").get_data(as_text=True)
    assert "Bar today 回访王先生" in page and "Bar overdue 寄送报价" in page
    tasks = page.split('id="home-tasks"')[1].split("</article>")[0]
    assert "Overdue" in tasks and "3 days overdue" in tasks and 'class="overdue"' in tasks
    assert tasks.index("寄送报价") < tasks.index("Due today") < tasks.index("回访王先生")
    assert "Finished yesterday" not in page and "Sue&#39;s chore" not in page and "Far away" not in page
    follow = page.split('id="home-call_backs"')[1].split("</article>")[0]
    assert "Clients to call back" in follow and "Call back Hangzhou 杭州" in follow and "Sue&#39;s client" not in follow
    # key figures of the role: my open pipeline (own pitches in idea/offer) and the pitches in scope
    pipeline = page.split('id="figure-my_pipeline"')[1].split("</a>")[0]
    assert "3,500.00" in pipeline
    assert ">2<" in page.split('id="figure-all_pitches"')[1].split("</a>")[0]      # a seller's scope: own pitches
    recent = page.split('id="home-recent"')[1].split("</article>")[0]
    assert "Sid offer" in recent and "Sue idea" not in recent


def test_the_boss_sees_approvals_with_key_fields_and_scope_wide_figures(daily):
    c = seed(daily)
    rt = daily.extensions["crm"]
    sid = actor(daily, "sid")
    p = rt.store.create("pitch", {"name": "Tea order", "client": c["id"], "value": 12000, "discount": 5}, sid)
    rt.workflows.execute("pitch", p["id"], "make_offer", sid)
    rt.workflows.execute("pitch", p["id"], "sign", sid)
    page = client(daily, "bo").get("/").get_data(as_text=True)
    block = page.split('id="home-approvals"')[1].split("</article>")[0]
    assert "Pitch: Tea order" in block and "12,000.00" in block and "Sid Seller" in block and "The boss" in block
    assert ">4<" in page.split('id="figure-all_pitches"')[1].split("</a>")[0]      # every pitch
    assert "figure-my_pipeline" not in page                                         # not the boss's figure
    mine = client(daily, "sid").get("/").get_data(as_text=True)
    requests = mine.split('id="home-requests"')[1].split("</article>")[0]
    assert "Pitch: Tea order" in requests and "Bo Boss" in requests


def test_chinese_home(daily):
    seed(daily)
    page = client(daily, "sid").get("/?lang=zh").get_data(as_text=True)
    assert "逾期 3 天" in page and "我的任务" in page and "待回访客户" in page and "我的提案金额" in page


def test_figures_link_to_the_filtered_list(daily):
    seed(daily)
    sid = client(daily, "sid")
    page = sid.get("/").get_data(as_text=True)
    href = page.split('id="figure-my_pipeline"')[0].rsplit('href="', 1)[1].split('"')[0].replace("&amp;", "&")
    listing = sid.get(href).get_data(as_text=True)
    assert "Sid offer" in listing and "Sid idea" in listing and "Sue idea" not in listing


def count_queries(app, fn):
    import time
    app.extensions["crm"]._checked = time.monotonic() + 3600   # the reload check runs by the clock, not the data
    engine = app.extensions["crm"].engine
    seen = []

    def note(conn, cursor, statement, *a):
        seen.append(statement)
    sa.event.listen(engine, "before_cursor_execute", note)
    try:
        fn()
    finally:
        sa.event.remove(engine, "before_cursor_execute", note)
    return len(seen)


def test_a_fixed_number_of_queries_whatever_the_data(daily, tmp_path):
    seed(daily)
    sid = client(daily, "sid")
    sid.get("/")
    few = count_queries(daily, lambda: sid.get("/"))
    seed(daily, n_extra=40)
    many = count_queries(daily, lambda: sid.get("/"))
    assert many == few


def test_without_home_yaml_everyone_gets_the_default_blocks(tmp_path, monkeypatch):
    plain = tmp_path / "pack"
    shutil.copytree(CONFIG, plain)
    (plain / "home.yaml").unlink()
    cfg = load_config(plain)
    home = cfg.home.for_roles(("seller",))
    assert home.show == ("tasks", "approvals", "requests", "recent") and home.figures == ()


@pytest.mark.parametrize("text, wanted", [
    ("lists: {x: {entity: pitchh}}\n", "'pitchh' is not an entity (did you mean 'pitch'?)"),
    ("lists: {x: {entity: pitch, date: name}}\n", "pitch.name is a string field; `date` must be a date field"),
    ("figures: {x: {entity: pitch, sum: name}}\n", "`sum` adds up a number or money field"),
    ("figures: {x: {entity: pitch, filter: {valu__gte: 3}}}\n", "pitch has no field 'valu' (did you mean 'value'?)"),
    ("figures: {x: {entity: pitch, filter: {value__bigger: 3}}}\n", "unknown operator 'bigger'"),
    ("roles: {sellr: {show: [tasks]}}\n", "'sellr' is not a role of the pack (did you mean 'seller'?)"),
    ("roles: {seller: {show: [taks]}}\n", "'taks' is neither a list of this file nor one of tasks"),
    ("roles: {seller: {figures: [nope]}}\n", "'nope' is not a figure of this file"),
    ("roles: {seller: {shwo: [tasks]}}\n", "unknown key 'shwo' (did you mean 'show'?)"),
])
def test_home_yaml_problems_are_clear(tmp_path, text, wanted):
    bad = tmp_path / "pack"
    shutil.copytree(CONFIG, bad)
    (bad / "home.yaml").write_text(text, encoding="utf-8")
    with pytest.raises(ConfigInvalid) as err:
        load_config(bad)
    assert wanted in str(err.value) and "home.yaml:1" in str(err.value)


@pytest.mark.parametrize("line, wanted", [
    ("todo: {assignee: title, due: due, status: state, done: [finished]}", "`assignee` must be a user field"),
    ("todo: {assignee: doer, due: title, status: state, done: [finished]}", "`due` must be a date or datetime field"),
    ("todo: {assignee: doer, due: due, status: state, done: [finishd]}", "'finishd' is not a value of state"),
    ("todo: {assignee: doer, due: due, status: state}", "`done` is required with a select status"),
])
def test_todo_marker_problems_are_clear(tmp_path, line, wanted):
    bad = tmp_path / "pack"
    shutil.copytree(CONFIG, bad)
    chore = bad / "entities" / "chore.yaml"
    text = chore.read_text(encoding="utf-8")
    chore.write_text("\n".join(line if x.startswith("todo:") else x for x in text.splitlines()) + "\n", encoding="utf-8")
    with pytest.raises(ConfigInvalid) as err:
        load_config(bad)
    assert wanted in str(err.value) and "chore.yaml:6" in str(err.value)

