"""The engine's state machines: what a user may do with a record now, and doing it in one transaction.

A transition is checked (state, pending approval, role, required fields, guard), then executed:
on_leave actions, the state write (conditional on the version read, so of two racers exactly one
wins), transition actions, the new state's `set` and on_enter actions, and a history row — all
or nothing. Transitions with `approval:` open an approval request instead (see approvals.py).

Definitions are versioned by content hash; each version is stored. A record whose state no longer
exists in the current definition keeps running on the stored version that has it, until it
reaches a state of the current one.
"""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

import sqlalchemy as sa

from . import clock, events, rules, values
from .access import role_label
from .actions import ActionRunner
from .db import reading, writing
from .errors import BadRequest, Conflict, Forbidden, NotFound, RuleError, ValidationFailed
from .loader import build_workflow
from .model import Entity, Transition, Workflow, label_of
from .wftables import definitions, history, requests
from .yamlio import Document


def _now():
    return clock.now()


@dataclass
class Check:
    allowed: bool
    reason: str | None = None
    kind: str | None = None          # role | guard | require | approval | state
    missing: tuple = ()


class Workflows:
    def __init__(self, store):
        self.store = store
        self.config = store.config
        self._old: dict = {}

    # ---- definitions -----------------------------------------------------------------------
    def register_definitions(self) -> None:
        """Store the current version of every workflow (idempotent)."""
        with writing(self.store.engine) as conn:
            have = {(r.workflow, r.version) for r in conn.execute(sa.select(definitions.c.workflow, definitions.c.version))}
            for wf in self.config.workflows.values():
                if (wf.id, wf.version) not in have:
                    conn.execute(definitions.insert().values(workflow=wf.id, version=wf.version,
                                                             definition=_raw(wf), created_at=_now()))

    def definition_for(self, conn, wf: Workflow, state: str | None) -> Workflow:
        """The definition a record in `state` runs on: the current one, or the newest stored one with that state."""
        if state is None or state in wf.states:
            return wf
        key = (wf.id, state)
        if key not in self._old:
            rows = conn.execute(sa.select(definitions).where(definitions.c.workflow == wf.id)
                                .order_by(definitions.c.created_at.desc())).mappings()
            found = None
            for r in rows:
                if state in r["definition"].get("states", {}):
                    found = build_workflow(Document(wf.file, r["definition"], {}))
                    break
            self._old[key] = found
        return self._old[key] or wf

    def in_flight(self) -> list[dict]:
        """Records in states the current definitions no longer have, and the stored version they keep
        running on (`kept_on` None: no stored definition has the state — they would be stranded)."""
        out = []
        with reading(self.store.engine) as conn:
            insp_tables = set(sa.inspect(conn).get_table_names())
            for wf in self.config.workflows.values():
                entity = self.config.entities.get(wf.entity)
                if entity is None or entity.table_name not in insp_tables:
                    continue
                t = self.store.table(entity)
                col = t.c[wf.field]
                rows = conn.execute(sa.select(col, sa.func.count()).where(
                    t.c.deleted_at.is_(None), col.is_not(None), col.not_in(list(wf.states))).group_by(col)).all()
                for state, n in rows:
                    old = self.definition_for(conn, wf, state)
                    out.append({"workflow": wf.id, "entity": entity.id, "state": state, "records": n,
                                "kept_on": old.version if old is not wf else None})
        return out

    def move_state(self, entity_id: str, from_state: str, to_state: str, actor, comment: str | None = None) -> int:
        """An admin's migration: put every record in `from_state` into `to_state` of the current
        definition, with a history row each (event "migrated"); no transition actions run.
        Returns the number of records moved."""
        entity, wf = self._need_workflow(entity_id)
        if not actor.is_admin:
            raise Forbidden("Only an administrator may migrate records between workflow states.")
        if to_state not in wf.states:
            raise ValidationFailed({"to_state": f"{to_state!r} is not a state of {wf.id}; it has "
                                                f"{', '.join(wf.states)}"})
        t = self.store.table(entity)
        col = t.c[wf.field]
        with writing(self.store.engine) as conn:
            rows = conn.execute(sa.select(t.c.id, t.c.version).where(col == from_state, t.c.deleted_at.is_(None))).all()
            now = _now()
            for rid, version in rows:
                conn.execute(t.update().where(t.c.id == rid).values(
                    {wf.field: to_state, "version": version + 1, "updated_at": now, "updated_by": actor.id}))
            if rows:
                conn.execute(history.insert(), [
                    {"entity": entity.id, "record_id": rid, "workflow": wf.id, "wf_version": wf.version,
                     "transition": None, "from_state": from_state, "to_state": to_state, "event": "migrated",
                     "user_id": actor.id, "at": now, "comment": comment} for rid, _v in rows])
        return len(rows)

    def workflow_of(self, entity: Entity) -> Workflow | None:
        f = entity.state_field
        return self.config.workflows.get(f.workflow) if f else None

    def _need_workflow(self, entity_id):
        entity = self.store.entity(entity_id)
        wf = self.workflow_of(entity)
        if wf is None:
            raise NotFound(f"{entity.label_text()} has no workflow.")
        return entity, wf

    # ---- checks ----------------------------------------------------------------------------
    @staticmethod
    def applies(wf: Workflow, t: Transition, state) -> bool:
        """`from: "*"` means any state but a final one; a final state is left only by a transition
        that names it in `from` (e.g. "closed, may be reopened")."""
        st = wf.states.get(state)
        if st is not None and st.final:
            return state in t.sources
        return t.applies_from(state)

    def check(self, conn, entity, wf: Workflow, t: Transition, record: dict, actor, lang="en") -> Check:
        state = record.get(wf.field)
        if not self.applies(wf, t, state):
            return Check(False, f"not possible from state {state!r}", "state")
        pending = conn.execute(sa.select(requests.c.id, requests.c.transition).where(
            requests.c.entity == entity.id, requests.c.record_id == record["id"], requests.c.status == "pending")).first()
        if pending is not None:
            pt = wf.transitions.get(pending.transition)
            what = label_of(pt.label, lang, pending.transition) if pt else pending.transition
            return Check(False, f"等待审批：{what}" if lang.startswith("zh") else f"waiting for approval of “{what}”",
                         "approval")
        if t.roles and not actor.has_role(*t.roles):
            labels = [role_label(self.config, r, lang) for r in t.roles]
            return Check(False, ("需要角色：" if lang.startswith("zh") else "requires role: ")
                         + ("、" if lang.startswith("zh") else ", ").join(labels), "role")
        missing = tuple(f for f in t.require if values.empty(record.get(f)))
        if missing:
            labels = [entity.fields[f].label_text(lang) for f in missing]
            return Check(False, ("请先填写: " if lang.startswith("zh") else "fill in first: ") + ", ".join(labels),
                         "require", missing)
        if t.when:
            names = self.store.rule_names(conn, entity, record, t.when)
            try:
                ok = rules.evaluate(t.when, names, actor.id, rule=f"{wf.id}.{t.id}.when", source=wf.file,
                                    record=f"{entity.id} #{record['id']}")
            except RuleError as e:
                ok, err = False, e.message
            else:
                err = None
            if not ok:
                seen = ", ".join(f"{n}={_show(n, names)}" for n in sorted(rules.names_used(t.when)))
                text = label_of(t.when_message, lang, "") if t.when_message else ""
                reason = (text + " — " if text else "") + f"condition not met: {t.when} ({seen})"
                if lang.startswith("zh"):      # a Chinese reader gets the rule's message, not its field ids
                    reason = text or "条件不满足"
                return Check(False, err or reason, "guard")
        return Check(True)

    def available(self, entity_id: str, rid, actor) -> list[dict]:
        entity, wf = self._need_workflow(entity_id)
        with reading(self.store.engine) as conn:
            record = self.store.fetch(conn, entity, rid)
            self.store.check_scope(conn, entity, actor, record["id"])
            wf = self.definition_for(conn, wf, record.get(wf.field))
            out = []
            for t in wf.transitions.values():
                if not self.applies(wf, t, record.get(wf.field)):
                    continue
                c = self.check(conn, entity, wf, t, record, actor, actor.language)
                target = wf.states.get(t.to)
                out.append({"name": t.id, "label": t.label, "to": t.to,
                            "to_label": target.label if target else {"en": t.to},
                            "allowed": c.allowed, "reason": c.reason, "comment": t.comment,
                            "approval": t.approval is not None})
        return out

    # ---- execution -------------------------------------------------------------------------
    def execute(self, entity_id: str, rid, name: str, actor, comment: str | None = None, version=None) -> dict:
        """Run a transition (or open its approval). Returns {"status": "done"|"pending_approval", …}."""
        entity, wf = self._need_workflow(entity_id)
        comment = (comment or "").strip() or None
        from .store import db_errors
        with db_errors(self.store, entity), writing(self.store.engine) as conn:
            record = self.store.fetch(conn, entity, rid, for_update=True)
            self.store.check_scope(conn, entity, actor, record["id"], "update")
            if version is not None and int(version) != record["version"]:
                raise self.store.conflict(conn, entity, record)
            return self.transition_in(conn, entity, record, name, actor, comment)

    def transition_in(self, conn, entity, record: dict, name: str, actor, comment: str | None = None) -> dict:
        """Check and run transition `name` on `record` (read and locked by the caller) inside `conn`."""
        wf = self.definition_for(conn, self.workflow_of(entity), record.get(self.workflow_of(entity).field))
        t = wf.transitions.get(name)
        if t is None:
            raise NotFound(f"{wf.id} has no transition {name!r}; it has {', '.join(wf.transitions)}.")
        c = self.check(conn, entity, wf, t, record, actor, actor.language)
        if not c.allowed:
            if c.kind == "role":
                raise Forbidden(f"{t.id}: {c.reason}")
            if c.kind == "require":
                raise ValidationFailed({f: "is required for this step" for f in c.missing}, f"{t.id}: {c.reason}")
            if c.kind == "guard":
                raise ValidationFailed({}, f"{t.id}: {c.reason}")
            raise Conflict(f"{t.id} is not possible now: {c.reason}.")
        if t.comment == "required" and not comment:
            raise ValidationFailed({"comment": "a comment is required for this step"}, f"{t.id} needs a comment.")
        if t.approval is not None:
            from .approvals import open_request
            req = open_request(self, conn, entity, wf, t, record, actor, comment)
            return {"status": "pending_approval", "approval": req, "record": record}
        after = self.move(conn, entity, wf, t, record, actor, comment)
        return {"status": "done", "record": after}

    def move(self, conn, entity, wf: Workflow, t: Transition, record: dict, actor, comment, to: str | None = None,
             event: str = "transition") -> dict:
        """Write the new state with every action; the caller holds the transaction."""
        to = to or t.to
        src = record.get(wf.field)
        runner = ActionRunner(self.store, conn, entity, actor, wf.file)
        changes = {}
        old_state = wf.states.get(src)
        if old_state is not None:
            changes.update(runner.run(record, old_state.on_leave, f"{wf.id}.states.{src}.on_leave"))
        if t is not None and event == "transition":
            changes.update(runner.run({**record, **changes}, t.actions, f"{wf.id}.transitions.{t.id}.actions"))
        new_state = self.config.workflows[wf.id].states.get(to) or wf.states.get(to)
        changes[wf.field] = to
        if new_state is not None:
            changes.update(runner.fields_for({**record, **changes}, dict(new_state.set), f"{wf.id}.states.{to}.set"))
            changes.update(self._suggested(runner, wf, record, changes, old_state, new_state, src, to))
            changes.update(runner.run({**record, **changes}, new_state.on_enter, f"{wf.id}.states.{to}.on_enter"))
        try:
            after = self.store.update_in_transaction(conn, entity, record["id"], changes, actor, mode="internal",
                                                      trusted=True, version=record["version"], current=record)
        except ValidationFailed as e:
            raise ValidationFailed(e.fields, f"The record would be invalid after {t.id if t else to}: "
                                             + "; ".join(f"{k}: {v}" for k, v in e.fields.items())) from None
        conn.execute(history.insert().values(
            entity=entity.id, record_id=record["id"], workflow=wf.id, wf_version=wf.version,
            transition=t.id if t else None, from_state=src, to_state=to, event=event, user_id=actor.id,
            at=_now(), comment=comment))
        events.record_transitioned.send(entity.id, conn=conn, store=self.store, record=after, before=record,
                                        actor=actor, transition=t.id if t else None, from_state=src, to_state=to)
        return after

    @staticmethod
    def _suggested(runner, wf, record, changes, old_state, new_state, src, to) -> dict:
        """The new state's `suggest` values for the fields the user has not changed: empty, or still
        holding what the state left behind proposed (a probability typed by hand is kept)."""
        if not new_state.suggest:
            return {}
        current = {**record, **changes}
        proposed = runner.fields_for(current, dict(new_state.suggest), f"{wf.id}.states.{to}.suggest")
        before = dict(old_state.suggest) if old_state is not None else {}
        was = runner.fields_for(record, {k: before[k] for k in proposed if k in before},
                                f"{wf.id}.states.{src}.suggest") if before else {}
        return {k: v for k, v in proposed.items()
                if values.empty(current.get(k)) or (k in was and _same_value(current.get(k), was[k]))}

    def log(self, conn, entity, wf, record, t, actor, event, comment=None):
        conn.execute(history.insert().values(
            entity=entity.id, record_id=record["id"], workflow=wf.id, wf_version=wf.version,
            transition=t.id if t else None, from_state=record.get(wf.field), to_state=record.get(wf.field),
            event=event, user_id=actor.id, at=_now(), comment=comment))

    # ---- reading ---------------------------------------------------------------------------
    def history(self, entity_id: str, rid) -> list[dict]:
        from .systables import users
        with reading(self.store.engine) as conn:
            rows = conn.execute(sa.select(history, users.c.username).outerjoin(users, users.c.id == history.c.user_id)
                                .where(history.c.entity == entity_id, history.c.record_id == int(rid))
                                .order_by(history.c.at, history.c.id)).mappings()
            return [dict(r) for r in rows]

    def path(self, entity_id: str, record: dict) -> list[dict]:
        """States for a stage bar: the main path from the initial state, marked done/current/todo."""
        entity = self.store.entity(entity_id)
        wf = self.workflow_of(entity)
        if wf is None:
            return []
        current = record.get(wf.field)
        order, cur = [], wf.initial
        while cur and cur not in order:       # the main path: prefer a non-final next state
            order.append(cur)
            outs = [t.to for t in wf.transitions.values()
                    if cur in t.sources and t.to in wf.states and t.to not in order]
            nonfinal = [s for s in outs if not wf.states[s].final]
            cur = (nonfinal or outs or [None])[0]
        if current and current not in order:
            order.append(current)
        idx = order.index(current) if current in order else -1
        out = []
        for i, s in enumerate(order):
            st = wf.states.get(s)
            out.append({"state": s, "label": st.label if st else {"en": s}, "color": st.color if st else None,
                        "status": "done" if i < idx else "current" if i == idx else "todo"})
        return out


def _show(name, names):
    """The value a guard saw for one of its names, for the reason shown to the user."""
    base, _, attr = name.partition(".")
    value = names.get(base)
    if attr:
        value = value.get(attr) if hasattr(value, "get") else None
    return repr(values.to_json(None, value))


def _raw(wf: Workflow) -> dict:
    """A stored definition: the parts needed to rebuild the Workflow of an old version."""
    def actions(a):
        return [dict(x) for x in a]
    return {
        "workflow": wf.id, "entity": wf.entity, "field": wf.field, "initial": wf.initial,
        "label": wf.label,
        "states": {s.id: {"label": s.label, **({"color": s.color} if s.color else {}), "final": s.final,
                          "paused": s.paused, **({"sla": dict(s.sla)} if s.sla else {}),
                          "set": dict(s.set), "suggest": dict(s.suggest), "on_enter": actions(s.on_enter), "on_leave": actions(s.on_leave)}
                   for s in wf.states.values()},
        "transitions": {t.id: {"label": t.label, "from": list(t.sources) if len(t.sources) > 1 else t.sources[0],
                               "to": t.to, "roles": list(t.roles), **({"when": t.when} if t.when else {}),
                               **({"when_message": t.when_message} if t.when_message else {}),
                               "require": list(t.require), "comment": t.comment, "actions": actions(t.actions),
                               **({"approval": {"steps": [{k: v for k, v in {
                                   "name": st.name, "label": st.label, "role": st.role, "user_field": st.user_field,
                                   "rule": st.rule, "mode": st.mode, "quorum": st.quorum, "when": st.when,
                                   "escalate_after": st.escalate_after, "escalate_to": st.escalate_to}.items()
                                   if v is not None} for st in t.approval.steps],
                                   **({"reject_to": t.approval.reject_to} if t.approval.reject_to else {}),
                                   "no_self_approval": t.approval.no_self_approval}} if t.approval else {})}
                        for t in wf.transitions.values()},
    }


__all__ = ["Workflows", "BadRequest"]


def _same_value(a, b) -> bool:
    """10, "10" and Decimal("10.00") are the same proposal."""
    if a == b:
        return True
    try:
        return Decimal(str(a)) == Decimal(str(b))
    except (InvalidOperation, ValueError):
        return str(a) == str(b)
