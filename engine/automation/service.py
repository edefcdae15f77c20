"""The automation service of one record store: what happens by itself when records change and
when time passes.

It subscribes to the store's events (inside each write transaction) and, in a fixed order:
runs the initial state's `on_enter` on create (its `set` is applied by the store, before computed
fields), applies assignment rules, runs triggers
(on create, on change of fields, on entering a state), recomputes SLA clocks and their timers, and
fans the event out to webhook subscriptions through the outbox. `sweep(now)` is the clock's side:
due timers (SLA warnings and breaches, workflow timers, scheduled rules) and approval escalation.
"""
from __future__ import annotations

import datetime as dt
import logging
import time
from decimal import Decimal

import sqlalchemy as sa

from .. import clock, events, grading, rules, values
from ..actions import ActionRunner
from ..actor import SYSTEM_ACTOR
from ..db import reading, writing
from ..errors import NotFound
from ..wftables import history
from . import assignment, sla, timers, webhooks
from .calendar import BusinessCalendar, calendar_from_config

log = logging.getLogger(__name__)
HOLIDAY_TTL = 60      # seconds a calendar's holidays are cached (written here: dropped at once)
MAX_DEPTH = 4          # triggers that change records that fire triggers … stop here
SCHEDULE_ENTITY = "_schedule"


class Automation:
    def __init__(self, store, workflows):
        self.store, self.workflows = store, workflows
        self.config = store.config
        self.auto = store.config.auto
        self._calendars: dict[str, tuple[BusinessCalendar, float]] = {}
        self._holiday_entities = {c.holiday_entity for c in self.auto.calendars.values() if c.holiday_entity}
        store.automation = self
        if self.auto.slas:
            store.filter_hooks["sla"] = lambda entity, table, which: sla.filter_clause(
                entity.id, table, which, clock.now()) if self.auto.slas_for(entity.id) else sa.false()
        self._receivers = [(events.record_creating, self._creating), (events.record_created, self._created),
                           (events.record_updated, self._updated), (events.record_transitioned, self._transitioned),
                           (events.record_deleted, self._deleted), (events.record_restored, self._restored)]
        for signal, fn in self._receivers:
            signal.connect(fn, priority=50, batch=self._created_many if fn == self._created else None)
        if self.auto.calendars:
            rules.set_calendar_provider(self._provide_calendar)
        rules.set_aggregate_provider(self._monthly_sums)

    def close(self) -> None:
        """Stop listening (a reloaded config brings a new service)."""
        for signal, fn in self._receivers:
            signal.disconnect(fn)

    # ---- calendars -----------------------------------------------------------------------------
    def calendar(self, conn, cid: str) -> BusinessCalendar:
        """The business calendar with this year's holidays and make-up days as entered in its entity."""
        spec = self.auto.calendars.get(cid)
        if spec is None:
            raise NotFound(f"There is no calendar {cid!r}; the calendars are {', '.join(self.auto.calendars) or 'none'}.")
        cached = self._calendars.get(cid)
        if cached is not None and time.monotonic() - cached[1] < HOLIDAY_TTL:
            return cached[0]
        base = calendar_from_config(cid, dict(spec.raw))
        entity = self.config.entities.get(spec.holiday_entity) if spec.holiday_entity else None
        if entity is not None:
            t = self.store.table(entity)
            rows = conn.execute(sa.select(t.c[spec.holiday_date], t.c[spec.holiday_working])
                                .where(t.c.deleted_at.is_(None), t.c[spec.holiday_date].is_not(None))).all()
            base = base.with_days({_as_day(d): bool(w) for d, w in rows})
        self._calendars[cid] = (base, time.monotonic())
        return base

    def _provide_calendar(self, cid: str) -> BusinessCalendar:
        """For the rule functions add_business_hours/add_business_days."""
        with reading(self.store.engine) as conn:
            return self.calendar(conn, cid)

    def _monthly_sums(self, entity_id, link_field, record_id, amount_field, date_field, months) -> list:
        """For the rule function monthly_sums: names are checked against the config, values bound."""
        from ..errors import RuleError
        e = self.config.entities.get(entity_id)
        if e is None or e.child:
            raise RuleError(f"monthly_sums: {entity_id!r} is not an entity")
        kinds = {link_field: ("link", "user"), amount_field: ("money", "decimal", "integer", "percent"),
                 date_field: ("date", "datetime")}
        for name, allowed in kinds.items():
            f = e.fields.get(name)
            if f is None or not f.stored or f.value_type not in allowed:
                raise RuleError(f"monthly_sums: {entity_id}.{name} is not a {' or '.join(allowed)} field")
        today = clock.today()
        first = dt.date(today.year, today.month, 1)
        starts = []
        y, m = first.year, first.month
        for _ in range(months):
            y, m = (y - 1, 12) if m == 1 else (y, m - 1)
            starts.append(dt.date(y, m, 1))
        starts.reverse()
        t = self.store.table(e)
        lo = starts[0] if e.fields[date_field].value_type == "date" else dt.datetime.combine(starts[0], dt.time(0))
        hi = first if e.fields[date_field].value_type == "date" else dt.datetime.combine(first, dt.time(0))
        sums = {s: Decimal(0) for s in starts}
        with reading(self.store.engine) as conn:
            for d, amount in conn.execute(sa.select(t.c[date_field], t.c[amount_field]).where(
                    t.c[link_field] == record_id, t.c.deleted_at.is_(None), t.c[date_field] >= lo,
                    t.c[date_field] < hi)):
                key = dt.date(d.year, d.month, 1)
                if key in sums and amount is not None:
                    sums[key] += Decimal(amount)
        return [sums[s] for s in starts]

    def _holidays_changed(self, entity_id: str, conn=None) -> None:
        """A holiday record was written: calendars built on that entity are read again, and (in the
        same transaction) every open SLA clock on those calendars is recomputed, so due instants,
        panels, filters and timers follow the new day off or make-up day at once."""
        changed = {cid for cid, spec in self.auto.calendars.items() if spec.holiday_entity == entity_id}
        for cid in changed:
            self._calendars.pop(cid, None)
        if conn is None:
            return
        now = clock.now()
        for spec in self.auto.slas.values():
            if spec.calendar not in changed:
                continue
            entity = self.config.entities.get(spec.entity)
            open_ids = [r[0] for r in conn.execute(sa.select(sla.sla_clocks.c.record_id).distinct().where(
                sla.sla_clocks.c.entity == spec.entity, sla.sla_clocks.c.sla == spec.id,
                sla.sla_clocks.c.met_at.is_(None)))]
            for rid in open_ids:
                try:
                    record = self.store.fetch(conn, entity, rid)
                except NotFound:
                    continue
                self.refresh_sla(conn, entity, record, now)

    def due(self, cid: str, start: dt.datetime, hours=None, days=None) -> dt.datetime:
        with reading(self.store.engine) as conn:
            cal = self.calendar(conn, cid)
        if days is not None:
            return cal.add_days(start, int(days))
        return cal.add_hours(start, hours)

    # ---- store events ----------------------------------------------------------------------------
    def _mine(self, store, conn) -> bool:
        return store is self.store and conn.info.get("crm_depth", 0) <= MAX_DEPTH

    def _creating(self, sender, conn, store, values, actor, given=frozenset(), context=None, **_):
        if not self._mine(store, conn):
            return
        entity = self.config.entities[sender]
        got = assignment.assign(conn, self.store, entity, self.auto.assignments_for(entity.id, "create"), values,
                                given)
        if context is not None:
            context["assigned"] = got

    def _created_many(self, sender, items, conn, store, actor, **_):
        """A bulk create: each record as `_created` handles one, webhook subscriptions read once."""
        if not self._mine(store, conn):
            return
        subs = webhooks.subscribers(conn, f"{sender}.created")
        for it in items:
            self._created(sender, conn, store, it["record"], actor, context=it.get("context"), subscriptions=subs)

    def _created(self, sender, conn, store, record, actor, context=None, subscriptions=None, **_):
        if not self._mine(store, conn):
            return
        entity = self.config.entities[sender]
        got = (context or {}).get("assigned")
        if got:
            self._log_assignment(conn, entity, record, got, actor)
        wf = self.workflows.workflow_of(entity)
        if wf is not None and record.get(wf.field) == wf.initial and wf.states[wf.initial].on_enter:
            runner = ActionRunner(self.store, conn, entity, actor, wf.file)
            changes = runner.run(record, wf.states[wf.initial].on_enter, f"{wf.id}.states.{wf.initial}.on_enter")
            self._write_quietly(conn, entity, record, changes)
        for a in self.auto.automations_for(entity.id, "create"):
            self._trigger(conn, entity, a, record, actor)
        self._after_change(conn, entity, record, "created", subscriptions)

    def _updated(self, sender, conn, store, record, before, actor, **_):
        if not self._mine(store, conn):
            return
        entity = self.config.entities[sender]
        for a in self.auto.automations_for(entity.id, "change"):
            if any(before.get(f) != record.get(f) for f in a.fields):
                self._trigger(conn, entity, a, record, actor)
        self._after_change(conn, entity, record, "updated")

    def _transitioned(self, sender, conn, store, record, actor, transition=None, to_state=None, **_):
        if not self._mine(store, conn):
            return
        entity = self.config.entities[sender]
        specs = self.auto.assignments_for(entity.id, transition) if transition else []
        if specs:
            vals = {**record, **{s.field: None for s in specs}}
            got = assignment.assign(conn, self.store, entity, specs, vals)
            if got and record.get(specs[0].field) != got[1]:
                field = next(s.field for s in specs if s.id == got[0])
                record = self.store.update_in_transaction(conn, entity, record["id"], {field: got[1]},
                                                          SYSTEM_ACTOR, mode="internal", trusted=True, version=None)
                self._log_assignment(conn, entity, record, got, actor)
        for a in self.auto.automations_for(entity.id, "enter"):
            if a.state == to_state:
                self._trigger(conn, entity, a, record, actor)
        self._after_change(conn, entity, record, "transition")

    def _restored(self, sender, conn, store, record, **_):
        """A restored record's clocks run again (its timers were stopped when it was deleted)."""
        if not self._mine(store, conn):
            return
        entity = self.config.entities[sender]
        if entity.id in self._holiday_entities:
            self._holidays_changed(entity.id, conn)
        if self.auto.slas_for(entity.id):
            self.refresh_sla(conn, entity, record, clock.now())

    def _deleted(self, sender, conn, store, record, **_):
        if store is not self.store:
            return
        entity = self.config.entities[sender]
        if entity.id in self._holiday_entities:
            self._holidays_changed(entity.id, conn)
        for row in timers.running(conn, entity.id, record["id"]):
            timers.cancel(conn, entity.id, record["id"], row["name"])
        webhooks.fan_out(conn, "deleted", entity.id, record["id"],
                         values.record_to_json(self.config, entity, values.masked(entity, {**record,
                                                                                             "deleted_at": clock.now()}),
                                               utc=True))

    def _after_change(self, conn, entity, record, event, subscriptions=None):
        if entity.id in self._holiday_entities:
            self._holidays_changed(entity.id, conn)
        if self.auto.slas_for(entity.id):
            self.refresh_sla(conn, entity, record, clock.now())
        webhooks.fan_out(conn, event, entity.id, record["id"],
                         lambda: values.record_to_json(self.config, entity, values.masked(entity, record), utc=True),
                         subscriptions)

    def _log_assignment(self, conn, entity, record, got, actor):
        rule, uid = got
        wf = self.workflows.workflow_of(entity)
        state = record.get(wf.field) if wf else None
        conn.execute(history.insert().values(
            entity=entity.id, record_id=record["id"], workflow=wf.id if wf else "-", wf_version=wf.version if wf else None,
            transition=None, from_state=state, to_state=state, event="assigned", user_id=actor.id if actor else None,
            at=clock.now(), comment=f"{rule} → user #{uid}"))

    def _write_quietly(self, conn, entity, record, changes):
        """Field changes of the initial state's on_enter: part of the create, not a second version."""
        changes = {k: v for k, v in _coerced(entity, changes).items() if k in entity.fields and record.get(k) != v}
        if changes:
            t = self.store.table(entity)
            conn.execute(t.update().where(t.c.id == record["id"]).values(**changes))
            record.update(changes)

    # ---- actions -------------------------------------------------------------------------------
    def run_actions(self, conn, entity, record: dict, actions, actor, source: str, what: str) -> dict:
        """Run actions on a stored record: field changes are saved as an update, transitions run last."""
        plain = [a for a in actions if "transition" not in a]
        moves = [a for a in actions if "transition" in a]
        conn.info["crm_depth"] = conn.info.get("crm_depth", 0) + 1
        try:
            runner = ActionRunner(self.store, conn, entity, actor, source)
            changes = runner.run(record, plain, what)
            if changes:
                record = self.store.update_in_transaction(conn, entity, record["id"], changes, actor,
                                                          mode="internal", trusted=True, version=None)
            for a in moves:
                record = self.store.fetch(conn, entity, record["id"], for_update=True)
                result = self.workflows.transition_in(conn, entity, record, a["transition"], actor, a.get("comment"))
                record = result["record"]
        finally:
            conn.info["crm_depth"] -= 1
        return record

    def _trigger(self, conn, entity, a, record, actor):
        if a.when:
            names = self.store.rule_names(conn, entity, record, a.when)
            if not rules.evaluate(a.when, names, actor.id if actor else None, rule=f"{a.id}.when", source=a.file,
                                  record=f"{entity.id} #{record['id']}"):
                return
        self.run_actions(conn, entity, record, a.actions, actor or SYSTEM_ACTOR, a.file, f"{a.id}.actions")

    # ---- SLA -----------------------------------------------------------------------------------
    def refresh_sla(self, conn, entity, record, now, plan=True) -> dict:
        """Recompute and store every SLA clock of a record; returns {(sla, target): row}."""
        out = {}
        wf = self.workflows.workflow_of(entity)
        events_ = sla.events_of(conn, entity.id, record["id"])
        for spec in self.auto.slas_for(entity.id):
            names = self.store.rule_names(conn, entity, record, spec.when, *(p.when for p in spec.policies))
            cal = self.calendar(conn, spec.calendar)
            states = sla.compute(spec, cal, wf, record, events_, names, now)
            rows = sla.store_clocks(conn, entity.id, record["id"], spec.id, states, now)
            if plan:
                sla.plan_timers(conn, entity.id, record["id"], spec.id, rows)
            out.update({(spec.id, t): r for t, r in rows.items()})
        return out

    def sla_items(self, entity_id: str, rid, actor) -> list[dict]:
        entity = self.store.entity(entity_id)
        self.store.get(entity_id, rid, actor)           # the reader's permission and scope
        now = clock.now()
        with reading(self.store.engine) as conn:
            rows = sla.read(conn, entity.id, int(rid))
        if not rows and self.auto.slas_for(entity.id):
            with writing(self.store.engine) as conn:
                self.refresh_sla(conn, entity, self.store.fetch(conn, entity, rid), now)
                rows = sla.read(conn, entity.id, int(rid))
        out = []
        with reading(self.store.engine) as conn:
            for r in rows:
                spec = self.auto.slas.get(r["sla"])
                if spec is None:
                    continue
                cal = self.calendar(conn, spec.calendar)
                tz = cal.tz
                target = next((t for t in spec.targets if t.name == r["target"]), None)
                status = sla.status_of(r, now)
                item = {"name": r["sla"], "label": spec.label, "target": r["target"],
                        "target_label": target.label if target else {"en": r["target"]}, "policy": r["policy"],
                        "status": status, "due_at": _iso(r["due_at"], tz), "started_at": _iso(r["started_at"], tz),
                        "met_at": _iso(r["met_at"], tz), "breached_at": _iso(r["breached_at"], tz),
                        "target_seconds": r["target_seconds"], "remaining_seconds": None}
                if status in ("running", "breached") and r["due_at"] is not None and r["met_at"] is None:
                    item["remaining_seconds"] = _working_left(cal, now, r["due_at"])
                out.append(item)
        return out

    def sla_summary(self, entity_id: str, ids) -> dict:
        """{record id: {"status", "target", "sla", "due_at" (naive UTC), "due_local" (aware, the calendar's
        zone), "remaining_seconds" (working time; negative when overdue; None when met or paused)}} of the
        most urgent clock of each record, for list columns."""
        now = clock.now()
        with reading(self.store.engine) as conn:
            out = sla.summary(conn, entity_id, ids, now)
            for item in out.values():
                spec = self.auto.slas.get(item["sla"])
                item["due_local"] = item["remaining_seconds"] = None
                if spec is None or item["due_at"] is None:
                    continue
                cal = self.calendar(conn, spec.calendar)          # cached by the service
                item["due_local"] = item["due_at"].replace(tzinfo=dt.timezone.utc).astimezone(cal.tz)
                if item["status"] in ("running", "at_risk", "breached"):
                    item["remaining_seconds"] = _working_left(cal, now, item["due_at"])
        return out

    def has_sla(self, entity_id: str) -> bool:
        return bool(self.auto.slas_for(entity_id))

    # ---- time ----------------------------------------------------------------------------------
    def sweep(self, now: dt.datetime | None = None) -> timers.SweepResult:
        """Everything due at `now`: scheduled rules are planned, due timers fire, overdue approval
        steps escalate."""
        now = clock.to_utc_naive(now) if now else clock.now()
        self.plan_schedules(now)
        handlers = {"workflow": self._fire_workflow, "sla_warn": self._fire_sla, "sla_breach": self._fire_sla,
                    "schedule": self._fire_schedule}
        result = timers.fire_due(self.store.engine, handlers, now, lock=self._lock_record)
        try:
            from ..approvals import escalate_overdue
            with clock.frozen(now):
                escalate_overdue(self.workflows, now)
        except Exception:  # noqa: BLE001 - logged; the next sweep tries again
            log.exception("approval escalation failed")
        return result

    def _lock_record(self, conn, row) -> None:
        """Lock the timer's record before the timer row (PostgreSQL; SQLite writers queue anyway)."""
        entity = self.config.entities.get(row["entity"])
        if entity is None or conn.dialect.name != "postgresql":
            return
        t = self.store.table(entity)
        conn.execute(sa.select(t.c.id).where(t.c.id == row["record_id"]).with_for_update())

    def plan_schedules(self, now: dt.datetime) -> int:
        """A running timer for the next run of every scheduled rule that has none (catch-up: a run
        missed while the server was down fires once, then the schedule continues from now)."""
        planned = 0
        with writing(self.store.engine) as conn:
            if conn.dialect.name == "postgresql":          # one planner at a time (SQLite writers queue anyway)
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(7341001)"))
            have = {r.name for r in conn.execute(sa.select(timers.timers.c.name).where(
                timers.timers.c.entity == SCHEDULE_ENTITY, timers.timers.c.status == "running"))}
            for a in self.auto.automations.values():
                if a.on != "schedule" or not a.enabled or f"schedule:{a.id}" in have:
                    continue
                timers.schedule(conn, SCHEDULE_ENTITY, 0, f"schedule:{a.id}", "schedule", _next_run(a, now),
                                {"automation": a.id})
                planned += 1
            for g in grading.scheduled(self.config):       # gradings with their own `cron:` (engine/grading.py)
                if f"schedule:grade:{g.id}" not in have:
                    timers.schedule(conn, SCHEDULE_ENTITY, 0, f"schedule:grade:{g.id}", "schedule", _next_run(g, now),
                                    {"grading": g.id})
                    planned += 1
        return planned

    def _fire_schedule(self, conn, row, now):
        if "grading" in (row["payload"] or {}):
            g = self.config.segments.get(row["payload"]["grading"])
            if isinstance(g, grading.Grading) and g.cron:
                grading.run(self.store, g, SYSTEM_ACTOR, conn)
                timers.schedule(conn, SCHEDULE_ENTITY, 0, f"schedule:grade:{g.id}", "schedule", _next_run(g, now),
                                {"grading": g.id})
            return
        a = self.auto.automations.get((row["payload"] or {}).get("automation"))
        if a is None or not a.enabled:
            return
        entity = self.config.entities[a.entity]
        t = self.store.table(entity)
        ids = [r.id for r in conn.execute(sa.select(t.c.id).where(t.c.deleted_at.is_(None)).order_by(t.c.id))]
        with clock.in_zone(a.timezone):                  # today() is the rule's own day
            self._run_schedule(conn, a, entity, ids, now)
        timers.schedule(conn, SCHEDULE_ENTITY, 0, f"schedule:{a.id}", "schedule", _next_run(a, now),
                        {"automation": a.id})

    def _run_schedule(self, conn, a, entity, ids, now):
        for rid in ids:
            record = self.store.fetch(conn, entity, rid)
            if a.when:
                names = self.store.rule_names(conn, entity, record, a.when)
                if not rules.evaluate(a.when, names, None, rule=f"{a.id}.when", source=a.file,
                                      record=f"{entity.id} #{rid}"):
                    continue
            self.run_actions(conn, entity, record, a.actions, SYSTEM_ACTOR, a.file, f"{a.id}.actions")

    def _fire_workflow(self, conn, row, now):
        entity = self.config.entities.get(row["entity"])
        actions = (row["payload"] or {}).get("actions") or []
        if entity is None or not actions:
            return
        try:
            record = self.store.fetch(conn, entity, row["record_id"], for_update=True)
        except NotFound:
            return
        payload = row["payload"] or {}
        when = payload.get("when")
        if when and not rules.evaluate(when, self.store.rule_names(conn, entity, record, when), None,
                                       rule=f"timer {row['name']}.when", source=payload.get("source", ""),
                                       record=f"{entity.id} #{record['id']}"):
            return                                  # the condition no longer holds when the timer falls due
        self.run_actions(conn, entity, record, actions, SYSTEM_ACTOR, payload.get("source", ""),
                         f"timer {row['name']}")

    def _fire_sla(self, conn, row, now):
        entity = self.config.entities.get(row["entity"])
        payload = row["payload"] or {}
        spec = self.auto.slas.get(payload.get("sla"))
        if entity is None or spec is None:
            return
        try:
            record = self.store.fetch(conn, entity, row["record_id"], for_update=True)
        except NotFound:
            return
        rows = self.refresh_sla(conn, entity, record, now, plan=False)
        r = rows.get((spec.id, payload.get("target")))
        live = r is not None and r["met_at"] is None and not r["paused"] and r["breached_at"] is None
        if row["kind"] == "sla_breach" and live and r["due_at"] is not None and now >= r["due_at"]:
            conn.execute(sla.sla_clocks.update().where(sla.sla_clocks.c.id == r["id"]).values(breached_at=r["due_at"]))
            r["breached_at"] = r["due_at"]
            self.run_actions(conn, entity, record, spec.on_breach, SYSTEM_ACTOR, spec.file,
                             f"{spec.id}.on_breach ({r['target']})")
        elif row["kind"] == "sla_warn" and live and r["warn_at"] is not None and now >= r["warn_at"] \
                and r["warned_at"] is None and r["due_at"] is not None and now < r["due_at"]:
            conn.execute(sla.sla_clocks.update().where(sla.sla_clocks.c.id == r["id"]).values(warned_at=now))
            r["warned_at"] = now
            self.run_actions(conn, entity, record, spec.on_warning, SYSTEM_ACTOR, spec.file,
                             f"{spec.id}.on_warning ({r['target']})")
        for sid in {k[0] for k in rows}:
            sla.plan_timers(conn, entity.id, record["id"], sid, {t: x for (s2, t), x in rows.items() if s2 == sid})

def _next_run(a, now: dt.datetime) -> dt.datetime:
    from zoneinfo import ZoneInfo

    from croniter import croniter
    zone = ZoneInfo(a.timezone) if a.timezone else dt.timezone.utc
    local = now.replace(tzinfo=dt.timezone.utc).astimezone(zone)
    return clock.to_utc_naive(croniter(a.cron, local).get_next(dt.datetime))


def _coerced(entity, changes: dict) -> dict:
    out = {}
    for k, v in changes.items():
        f = entity.fields.get(k)
        try:
            out[k] = values.coerce(f, v) if f is not None and v is not None else v
        except (ValueError, TypeError):
            out[k] = v
    return out


def _working_left(cal, now: dt.datetime, due: dt.datetime) -> int:
    """Working seconds from `now` to `due` (naive UTC); negative when the due instant has passed."""
    a, b = now.replace(tzinfo=dt.timezone.utc), due.replace(tzinfo=dt.timezone.utc)
    return cal.seconds_between(a, b) if b > a else -cal.seconds_between(b, a)


def _iso(value: dt.datetime | None, tz) -> str | None:
    if value is None:
        return None
    return value.replace(tzinfo=dt.timezone.utc).astimezone(tz).isoformat()


def _as_day(value) -> dt.date:
    return value.date() if isinstance(value, dt.datetime) else value
