"""Actions run on a transition, on entering and on leaving a state — inside its transaction.

set: {field: expression}            write fields of the record
create: entity, values: {f: expr}   create a related record; link_back: field stores its id here;
                                    save_as: name makes its id a name for later actions' expressions
todo: {title, assignee, due}        a to-do in the assignee's inbox
notify: expression (user ids)       a notification with `message`
start_timer / stop_timer            rows in sys_timer (swept by the automation jobs)
Strings in `set`/`values` are expressions: quote literal text ("'active'").
"""
from __future__ import annotations

import datetime as dt
import re

import sqlalchemy as sa
from jinja2.sandbox import SandboxedEnvironment

from . import clock, rules, values
from .errors import RuleError
from .model import label_of
from .systables import users
from .wftables import notifications, tasks, timers

DURATION = re.compile(r"^([0-9]+)([mhdw])$")


def parse_duration(text: str) -> dt.timedelta:
    n, unit = DURATION.match(text).groups()
    return {"m": dt.timedelta(minutes=int(n)), "h": dt.timedelta(hours=int(n)), "d": dt.timedelta(days=int(n)),
            "w": dt.timedelta(weeks=int(n))}[unit]


def add_workdays(start: dt.datetime, delta: dt.timedelta) -> dt.datetime:
    """Add a duration counting Monday–Friday only (whole days; hours and minutes as given)."""
    days, rest = delta.days, delta - dt.timedelta(days=delta.days)
    cur = start
    while days > 0:
        cur += dt.timedelta(days=1)
        if cur.weekday() < 5:
            days -= 1
    return cur + rest


class ActionRunner:
    """Runs a list of actions for one record inside an open transaction."""

    def __init__(self, store, conn, entity, actor, source: str):
        self.store, self.conn, self.entity, self.actor, self.source = store, conn, entity, actor, source
        self.saved: dict = {}

    def names(self, record: dict, expr: str) -> dict:
        names = self.store.rule_names(self.conn, self.entity, record, expr)
        names.update(self.saved)
        return names

    def value(self, record, expr, what):
        if not isinstance(expr, str):
            return expr
        return rules.evaluate(expr, self.names(record, expr), self.actor.id, rule=what, source=self.source,
                              record=f"{self.entity.id} #{record.get('id')}")

    def fields_for(self, record: dict, mapping: dict, what: str) -> dict:
        return {k: self.value(record, v, f"{what}.{k}") for k, v in mapping.items()}

    def run(self, record: dict, actions, what: str) -> dict:
        """Run actions; returns the field changes for the record itself (applied by the caller)."""
        changes: dict = {}
        for i, a in enumerate(actions or ()):
            label = f"{what}[{i}]"
            current = {**record, **changes}
            if "set" in a:
                changes.update(self.fields_for(current, a["set"], label + ".set"))
            elif "create" in a:
                target = self.store.config.entities[a["create"]]
                data = self.fields_for(current, a.get("values") or {}, label + ".values")
                data = {k: v for k, v in data.items() if v is not None}
                created = self.store.create_in_transaction(self.conn, target, data, self.actor, mode="internal",
                                                          trusted=True)
                if a.get("save_as"):
                    self.saved[a["save_as"]] = created["id"]
                if a.get("link_back"):
                    changes[a["link_back"]] = created["id"]
            elif "todo" in a:
                spec = a["todo"]
                assignee = self.value(current, spec.get("assignee", "owner"), label + ".assignee")
                due = self.value(current, spec["due"], label + ".due") if spec.get("due") else None
                title = self._text(current, spec["title"])
                self.conn.execute(tasks.insert().values(
                    entity=self.entity.id, record_id=record["id"], title=title[:255], assignee=assignee,
                    due_on=values.coerce(_DATE, due) if due else None, status="open", created_at=_now()))
            elif "notify" in a:
                for uid, lang in self.recipients(current, a["notify"], label + ".notify"):
                    message = label_of(a.get("message"), lang, f"{self.entity.id} #{record['id']}")
                    self.conn.execute(notifications.insert().values(
                        user_id=uid, entity=self.entity.id, record_id=record["id"],
                        message=self._text(current, message), created_at=_now()))
            elif "email" in a:
                self._email(current, a["email"], label)
            elif "webhook" in a:
                from .automation import outbox
                outbox.enqueue(self.conn, "webhook", {
                    "url": a["webhook"], "secret": a.get("secret", ""),
                    "body": {"event": f"{self.entity.id}.automation", "entity": self.entity.id, "id": record["id"],
                             "rule": what, "record": values.record_to_json(self.store.config, self.entity,
                                                                values.masked(self.entity, current), utc=True)}},
                    self.entity.id, record["id"])
            elif "start_timer" in a:
                self._start_timer(record, a)
            elif "stop_timer" in a:
                self._stop(record, a["stop_timer"])
        return changes

    def recipients(self, record, expr: str, what: str) -> list[tuple[int, str]]:
        """(user id, language) of active users named by a rule giving ids, or `role:NAME` (every active
        user with that role)."""
        if isinstance(expr, str) and expr.startswith("role:"):
            role = expr[5:].strip()
            rows = self.conn.execute(sa.select(users.c.id, users.c.roles, users.c.language)
                                     .where(users.c.active.is_(True))).all()
            return [(r.id, r.language or "en") for r in rows if role in (r.roles or ())]
        found = expr if isinstance(expr, list) else self.value(record, expr, what)
        ids = []
        for v in (found if isinstance(found, (list, tuple, set)) else [found]):
            if v is None or v == "":
                continue
            if isinstance(v, bool):
                raise RuleError(f"{what}: {v!r} is not a user id", rule=what, source=self.source)
            try:
                ids.append(int(v))
            except (TypeError, ValueError):
                raise RuleError(f"{what}: {v!r} is not a user id", rule=what, source=self.source) from None
        if not ids:
            return []
        rows = self.conn.execute(sa.select(users.c.id, users.c.language)
                                 .where(users.c.id.in_(ids), users.c.active.is_(True))).all()
        return [(r.id, r.language or "en") for r in rows]

    def _email(self, record, spec: dict, label: str) -> None:
        """One outbox row per recipient, rendered in the recipient's language (Jinja, sandboxed)."""
        from .automation import outbox
        to = spec["to"].strip()
        addresses: list[tuple[str, str]] = []
        if "@" in to and " " not in to and not to.startswith("role:"):
            addresses.append((to, self.actor.language))           # a literal address
            people = []
        elif to.startswith("role:"):
            people = self.recipients(record, to, label + ".email.to")
        else:                                                      # a rule giving user ids or addresses
            found = self.value(record, to, label + ".email.to")
            found = list(found) if isinstance(found, (list, tuple, set)) else [found]
            addresses += [(v.strip(), self.actor.language) for v in found if isinstance(v, str) and "@" in v]
            people = self.recipients(record, [v for v in found if not (isinstance(v, str) and "@" in v)],
                                     label + ".email.to")
        for uid, lang in people:
            mail = self.conn.execute(sa.select(users.c.email).where(users.c.id == uid)).scalar()
            if mail:
                addresses.append((mail, lang))
        context = {k: v for k, v in record.items() if not isinstance(v, list)}
        context["entity"] = self.entity.id
        for address, lang in addresses:
            subject = render_template(label_of(spec["subject"], lang), context)
            body = render_template(label_of(spec["body"], lang), context)
            outbox.enqueue(self.conn, "email", {"to": address, "subject": subject.strip()[:300], "body": body,
                                                "lang": lang}, self.entity.id, record.get("id"))

    def _start_timer(self, record, a: dict) -> None:
        """A timer due `after` from now, in plain time, Monday–Friday days or a business calendar's
        working time; its `actions` run on the record when it fires."""
        from .automation import timers as durable
        start = _now()
        delta = parse_duration(a.get("after", "1d"))
        cal_id = a.get("calendar", "calendar")
        if cal_id == "workdays":
            due = add_workdays(start, delta)
        elif cal_id == "calendar":
            due = start + delta
        else:
            auto = getattr(self.store, "automation", None)
            if auto is None:
                raise RuleError(f"no business calendar service for calendar {cal_id!r}", source=self.source)
            cal = auto.calendar(self.conn, cal_id)
            due = cal.add_seconds(start.replace(tzinfo=dt.timezone.utc), int(delta.total_seconds()))
        durable.schedule(self.conn, self.entity.id, record["id"], a["start_timer"], "workflow", due,
                         {"actions": [dict(x) for x in a.get("actions", ())], "source": self.source,
                          **({"when": a["when"]} if a.get("when") else {})})

    def _stop(self, record, name):
        self.conn.execute(timers.update().where(timers.c.entity == self.entity.id, timers.c.record_id == record["id"],
                                                timers.c.name == name, timers.c.status == "running")
                          .values(status="stopped"))

    def _text(self, record, template: str) -> str:
        """`{field}` placeholders in titles and messages are filled from the record (in one pass: a
        value that itself reads `{field}` stays as typed)."""
        return fill_placeholders(template, record)


class _DateField:
    value_type = type = "date"


_DATE = _DateField()


def _now():
    return clock.now()


__all__ = ["ActionRunner", "RuleError", "parse_duration", "add_workdays", "sa"]


def render_template(text: str, context: dict) -> str:
    """An admin's message template: Jinja in a sandbox (`{{ subject }}`), or plain `{field}` placeholders."""
    if "{{" in text or "{%" in text:
        return _JINJA.from_string(text).render(**context)
    return fill_placeholders(text, context)


_PLACEHOLDER = re.compile(r"\{(\w+)\}")


def fill_placeholders(text: str, values_: dict) -> str:
    def one(m):
        if m.group(1) not in values_:
            return m.group(0)
        v = values_[m.group(1)]
        return "" if v is None else str(v)
    return _PLACEHOLDER.sub(one, text)


_JINJA = SandboxedEnvironment(autoescape=False, trim_blocks=True)
