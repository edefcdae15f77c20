"""Every list page, one record page per entity and every new-record form of the default pack, in
Chinese: the visible text holds no role, field, state or step id and no English word that is not a
proper name or the user's own data.

The records are made with Chinese values only (codes, e-mail addresses and web addresses aside), so
whatever English is left on a page comes from the pages themselves.
"""
from __future__ import annotations

import datetime as dt
import re
from html.parser import HTMLParser

from platform_.auth import get_actor
from tests.ui.zh_pack import crm  # noqa: F401  (the module's app: the default pack in Chinese)

# words a Chinese page may show: the language switch, a file type, a date format
ALLOWED = {"English", "CSV", "YYYY", "MM", "DD"}
NOT_USER_DATA = [
    re.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)+"),                  # e-mail addresses
    re.compile(r"https?://\S+"),                                # web addresses
    re.compile(r"\b[A-Z]{2,5}-[0-9A-Z]+(-[0-9A-Z]+)*\b"),      # record codes: OPP-202611-00001, R-123
]
WORD = re.compile(r"[A-Za-z][A-Za-z_]+")
SKIP = {"script", "style", "template", "noscript"}
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


class Visible(HTMLParser):
    """The text a person sees: text nodes outside script/style and outside `hidden` elements."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack: list[tuple[str, bool]] = []
        self.parts: list[str] = []

    def _hidden(self) -> bool:
        return any(h for _t, h in self.stack)

    def handle_starttag(self, tag, attrs):
        if tag in VOID:
            return
        a = dict(attrs)
        self.stack.append((tag, tag in SKIP or "hidden" in a or a.get("aria-hidden") == "true"))

    def handle_endtag(self, tag):
        for i in range(len(self.stack) - 1, -1, -1):
            if self.stack[i][0] == tag:
                del self.stack[i:]
                break

    def handle_data(self, data):
        if not self._hidden() and data.strip():
            self.parts.append(data.strip())


def visible_text(html: str) -> str:
    p = Visible()
    p.feed(html)
    return "\n".join(p.parts)


def ids_of(cfg) -> set[str]:
    """Every id a page could leak: roles, fields, states, transitions and approval steps."""
    out = {r for r, _l in cfg.pack.roles}
    for e in cfg.entities.values():
        out |= set(e.fields)
    for wf in cfg.workflows.values():
        out |= set(wf.states) | set(wf.transitions)
        for t in wf.transitions.values():
            out |= {s.name for s in (t.approval.steps if t.approval else ())}
    return out


def problems(html: str, raw_ids: set[str]) -> list[str]:
    text = visible_text(html)
    for rx in NOT_USER_DATA:
        text = rx.sub(" ", text)
    words = set(WORD.findall(text))
    leaked = sorted(w for w in words if w in raw_ids and "_" in w)
    english = sorted(w for w in words - ALLOWED if w not in leaked)
    return [f"raw id {w!r}" for w in leaked] + [f"English {w!r}" for w in english]


def pages(crm):
    for e in crm.rt.config.top_entities:
        yield f"/e/{e.id}?lang=zh"
        yield f"/e/{e.id}/{crm.records[e.id]['id']}?lang=zh"
        yield f"/e/{e.id}/new?lang=zh"


def test_every_page_of_the_default_pack_is_chinese(crm):
    raw = ids_of(crm.rt.config)
    found = {}
    for path in pages(crm):
        r = crm.get(path)
        assert r.status_code == 200, (path, r.status_code)
        bad = problems(r.get_data(as_text=True), raw)
        if bad:
            found[path] = bad
    assert not found, "\n".join(f"{p}: {', '.join(b)}" for p, b in found.items())


def test_a_sales_user_sees_role_labels_not_role_ids(crm):
    """A transition the user may not run says which roles may: by their labels in pack.yaml."""
    cfg = crm.rt.config
    labels = dict(cfg.pack.roles)
    for e in cfg.top_entities:
        if e.state_field is None:
            continue
        body = crm.sales.get(f"/e/{e.id}/{crm.records[e.id]['id']}?lang=zh").get_data(as_text=True)
        text = visible_text(body)
        for role in labels:
            assert not re.search(rf"(?<![\w-]){re.escape(role)}(?![\w-])", text), (e.id, role)
        if "需要角色" in text:
            assert any(lbl.get("zh") in text for lbl in labels.values() if lbl)


def test_overdue_deadline_and_money_totals_on_lists(crm):
    cfg = crm.rt.config
    due = [(e, f) for e in cfg.top_entities for f in e.fields.values() if getattr(f, "due", False)]
    assert due, "the default pack marks its deadlines with due: true"
    from ui.columns import open_record
    for e, f in due:
        rec = crm.rt.store.get(e.id, crm.records[e.id]["id"], get_actor(crm.rt.engine, 1))
        sf = e.state_field
        wf = cfg.workflows.get(sf.workflow) if sf is not None else None
        if not open_record(e, rec, frozenset(k for k, s in wf.states.items() if s.final) if wf else frozenset()):
            continue
        t = crm.rt.store.table(e)               # past the deadline (rules would refuse it through the store)
        with crm.rt.engine.begin() as conn:
            conn.execute(t.update().where(t.c.id == rec["id"]).values({f.id: dt.date.today() - dt.timedelta(days=3)}))
        page = crm.get(f"/e/{e.id}?lang=zh&_cols={f.id}").get_data(as_text=True)
        assert "已超时" in visible_text(page) and "overdue" in page, e.id   # a past deadline of an open record
    money = [e for e in cfg.top_entities if any(f.value_type == "money" for f in e.columns_for_list())]
    assert money
    page = crm.get(f"/e/{money[0].id}?lang=zh").get_data(as_text=True)
    assert "合计" in visible_text(page)


def test_no_space_between_chinese_words(crm):
    for e in crm.rt.config.top_entities:
        text = visible_text(crm.get(f"/e/{e.id}?lang=zh").get_data(as_text=True))
        assert f"新建{e.label_text('zh')}" in text and f"新建 {e.label_text('zh')}" not in text
        form = crm.get(f"/e/{e.id}/new?lang=zh")
        if form.status_code == 200:                       # the new-record page's heading too
            heading = form.get_data(as_text=True).split("<h1>", 1)[1].split("</h1>", 1)[0].strip()
            assert " " not in heading, (e.id, heading)
