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

from . import rules, values
from .errors import RuleError
from .model import label_of
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
        rows = {f.id: record.get(f.id, []) for f in self.entity.table_fields}
        names = self.store._names(self.conn, self.entity, record, rows, expr)
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
                created = self.store._create(self.conn, target, data, self.actor, mode="internal", trusted=True)
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
                users = self.value(current, a["notify"], label + ".notify")
                message = label_of(a.get("message"), self.actor.language, f"{self.entity.id} #{record['id']}")
                for uid in (users if isinstance(users, (list, tuple)) else [users]):
                    if uid:
                        self.conn.execute(notifications.insert().values(
                            user_id=int(uid), entity=self.entity.id, record_id=record["id"],
                            message=self._text(current, message), created_at=_now()))
            elif "start_timer" in a:
                start = _now()
                delta = parse_duration(a.get("after", "1d"))
                due = add_workdays(start, delta) if a.get("calendar") == "workdays" else start + delta
                self._stop(record, a["start_timer"])
                self.conn.execute(timers.insert().values(
                    entity=self.entity.id, record_id=record["id"], name=a["start_timer"], due_at=due,
                    calendar=a.get("calendar", "calendar"), status="running", created_at=start))
            elif "stop_timer" in a:
                self._stop(record, a["stop_timer"])
        return changes

    def _stop(self, record, name):
        self.conn.execute(timers.update().where(timers.c.entity == self.entity.id, timers.c.record_id == record["id"],
                                                timers.c.name == name, timers.c.status == "running")
                          .values(status="stopped"))

    def _text(self, record, template: str) -> str:
        """`{field}` placeholders in titles and messages are filled from the record."""
        out = template
        for k, v in record.items():
            token = "{" + str(k) + "}"
            if token in out:
                out = out.replace(token, "" if v is None else str(v))
        return out


class _DateField:
    value_type = type = "date"


_DATE = _DateField()


def _now():
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None, microsecond=0)


__all__ = ["ActionRunner", "RuleError", "parse_duration", "add_workdays", "sa"]
