"""Approvals (A12): sequential steps, each by role, by a user field or by a rule; any/all/quorum;
no self-approval; steps with `when`; reject back to a state; delegation (once or for a date range);
withdraw by the requester. The transition completes when the last required step approves.
"""
from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from . import clock, rules, values
from .db import reading, writing
from .errors import Conflict, Forbidden, NotFound, ValidationFailed
from .systables import users
from .wftables import approval_tasks, delegations, requests


def _now():
    return clock.now()


def _names(wfs, conn, entity, record, expr):
    return wfs.store.rule_names(conn, entity, record, expr)


def _step_applies(wfs, conn, entity, record, step, actor) -> bool:
    if not step.when:
        return True
    return bool(rules.evaluate(step.when, _names(wfs, conn, entity, record, step.when), actor.id,
                               rule=f"approval step {step.name}.when", record=f"{entity.id} #{record['id']}"))


def approvers(wfs, conn, entity, record, step, requester_id, no_self: bool) -> list[tuple[int, int | None]]:
    """[(approver, delegated_from)] for a step, with holiday cover applied."""
    ids: list[int] = []
    if step.role:
        for r in conn.execute(sa.select(users.c.id, users.c.roles).where(users.c.active.is_(True))):
            if step.role in (r.roles or ()):
                ids.append(r.id)
    if step.user_field or step.rule:
        expr = step.user_field or step.rule
        v = rules.evaluate(expr, _names(wfs, conn, entity, record, expr), requester_id,
                           rule=f"approval step {step.name}", record=f"{entity.id} #{record['id']}")
        for x in (v if isinstance(v, (list, tuple)) else [v]):
            if x is not None:
                ids.append(int(x))
    today = clock.today()
    out, seen = [], set()
    for uid in ids:
        cover = conn.execute(sa.select(delegations.c.delegate).where(
            delegations.c.user_id == uid, delegations.c.starts_on <= today, delegations.c.ends_on >= today)).scalar()
        who, origin = (cover, uid) if cover else (uid, None)
        if no_self and who == requester_id:
            continue
        if who not in seen:
            seen.add(who)
            out.append((who, origin))
    return out


def _open_step(wfs, conn, entity, record, t, req_id, start: int, requester_id) -> int | None:
    """Create the tasks of the first applicable step from `start`; None when no step is left."""
    from .actor import Actor
    steps = t.approval.steps
    for i in range(start, len(steps)):
        step = steps[i]
        if not _step_applies(wfs, conn, entity, record, step, Actor(id=requester_id)):
            continue
        people = approvers(wfs, conn, entity, record, step, requester_id, t.approval.no_self_approval)
        if not people:
            raise ValidationFailed({}, f"Approval step {step.name!r} has no one who can approve it "
                                       f"(role {step.role or '-'}, field {step.user_field or '-'}).")
        now = _now()
        conn.execute(approval_tasks.insert(), [
            {"request_id": req_id, "step": i, "step_name": step.name, "approver": uid, "delegated_from": origin,
             "status": "pending", "created_at": now} for uid, origin in people])
        conn.execute(requests.update().where(requests.c.id == req_id).values(step=i))
        return i
    return None


def open_request(wfs, conn, entity, wf, t, record, actor, comment) -> dict:
    rid = conn.execute(requests.insert().values(
        entity=entity.id, record_id=record["id"], workflow=wf.id, wf_version=wf.version, transition=t.id,
        requester=actor.id, status="pending", step=0, comment=comment, created_at=_now())).inserted_primary_key[0]
    step = _open_step(wfs, conn, entity, record, t, rid, 0, actor.id)
    wfs.log(conn, entity, wf, record, t, actor, "approval_requested", comment)
    if step is None:  # every step's condition is false: nothing to approve
        conn.execute(requests.update().where(requests.c.id == rid).values(status="approved", closed_at=_now()))
        after = wfs.move(conn, entity, wf, t, record, actor, comment)
        return {"id": rid, "status": "approved", "record": after}
    return {"id": rid, "status": "pending", "step": step}


def _task(conn, task_id, actor, lock=True):
    if _user_id(task_id) is None:            # the same bounds as an id
        raise NotFound(f"Approval task #{task_id} does not exist.")
    row = conn.execute(sa.select(approval_tasks, requests.c.entity, requests.c.record_id, requests.c.workflow,
                                 requests.c.transition, requests.c.requester, requests.c.status.label("req_status"))
                       .join(requests, requests.c.id == approval_tasks.c.request_id)
                       .where(approval_tasks.c.id == int(task_id))).mappings().first()
    if row is None:
        raise NotFound(f"Approval task #{task_id} does not exist.")
    if row["approver"] != actor.id:
        raise Forbidden("You are not an approver of this step.")
    if row["status"] != "pending" or row["req_status"] != "pending":
        raise Conflict(f"This approval step was already {row['status'] if row['status'] != 'pending' else row['req_status']}.")
    return row


def _context(wfs, conn, row):
    entity = wfs.store.entity(row["entity"])
    wf = wfs.config.workflows[row["workflow"]]
    record = wfs.store.fetch(conn, entity, row["record_id"], for_update=True)
    wf = wfs.definition_for(conn, wf, record.get(wf.field))
    return entity, wf, wf.transitions[row["transition"]], record


def decide(wfs, task_id, actor, decision: str, comment=None, delegate_to=None) -> dict:
    comment = (comment or "").strip() or None
    with writing(wfs.store.engine) as conn:
        row = _task(conn, task_id, actor)
        entity, wf, t, record = _context(wfs, conn, row)
        now = _now()
        if decision == "delegate":
            if delegate_to in (None, ""):
                raise ValidationFailed({"delegate_to": "choose the user to delegate to"})
            uid = _user_id(delegate_to)
            target = conn.execute(sa.select(users.c.id).where(users.c.id == uid, users.c.active.is_(True))).scalar() \
                if uid is not None else None
            if target is None or target == actor.id:
                raise ValidationFailed({"delegate_to": "not an active user other than you"})
            if t.approval.no_self_approval and target == row["requester"]:
                raise ValidationFailed({"delegate_to": "the requester may not approve their own request"},
                                       "This step cannot be delegated to the person who asked for it.")
            conn.execute(approval_tasks.update().where(approval_tasks.c.id == row["id"]).values(
                status="delegated", acted_at=now, comment=comment))
            conn.execute(approval_tasks.insert().values(
                request_id=row["request_id"], step=row["step"], step_name=row["step_name"], approver=target,
                delegated_from=actor.id, status="pending", created_at=now))
            wfs.log(conn, entity, wf, record, t, actor, "approval_delegated", comment)
            return {"status": "delegated", "request": row["request_id"]}
        if decision == "reject":
            if not comment:
                raise ValidationFailed({"comment": "say why you reject"}, "A rejection needs a comment.")
            conn.execute(approval_tasks.update().where(approval_tasks.c.id == row["id"]).values(
                status="rejected", acted_at=now, comment=comment))
            _close(conn, row["request_id"], "rejected", wfs)
            wfs.log(conn, entity, wf, record, t, actor, "approval_rejected", comment)
            after = record
            if t.approval.reject_to and t.approval.reject_to != record.get(wf.field):
                after = wfs.move(conn, entity, wf, None, record, actor, comment, to=t.approval.reject_to,
                                 event="rejected")
            return {"status": "rejected", "request": row["request_id"], "record": after}
        if decision != "approve":
            raise ValidationFailed({"decision": "approve, reject or delegate"})
        if t.approval.no_self_approval and actor.id == row["requester"]:
            raise Forbidden("You asked for this approval; someone else must decide it.")
        conn.execute(approval_tasks.update().where(approval_tasks.c.id == row["id"]).values(
            status="approved", acted_at=now, comment=comment))
        wfs.log(conn, entity, wf, record, t, actor, "approved", comment)
        step = t.approval.steps[row["step"]]
        states = [r.status for r in conn.execute(sa.select(approval_tasks.c.status).where(
            approval_tasks.c.request_id == row["request_id"], approval_tasks.c.step == row["step"],
            approval_tasks.c.status.in_(("pending", "approved"))))]
        approved = states.count("approved")
        done = {"any": approved >= 1, "all": "pending" not in states,
                "quorum": approved >= (step.quorum or 1)}[step.mode]
        if not done:
            return {"status": "approved_step_open", "request": row["request_id"], "approved": approved}
        conn.execute(approval_tasks.update().where(approval_tasks.c.request_id == row["request_id"],
                                                   approval_tasks.c.step == row["step"],
                                                   approval_tasks.c.status == "pending").values(status="skipped"))
        nxt = _open_step(wfs, conn, entity, record, t, row["request_id"], row["step"] + 1, row["requester"])
        if nxt is not None:
            return {"status": "next_step", "request": row["request_id"], "step": nxt}
        _close(conn, row["request_id"], "approved", wfs)
        after = wfs.move(conn, entity, wf, t, record, actor, comment)
        return {"status": "approved", "request": row["request_id"], "record": after}


DECIDED = {"approved": {"en": "Your request “{what}” for {entity} #{id} was approved.",
                        "zh": "您提交的“{what}”申请（{entity} #{id}）已通过。"},
           "rejected": {"en": "Your request “{what}” for {entity} #{id} was rejected.",
                        "zh": "您提交的“{what}”申请（{entity} #{id}）已被驳回。"}}


def _close(conn, req_id, status, wfs=None):
    conn.execute(requests.update().where(requests.c.id == req_id).values(status=status, closed_at=_now()))
    if status in DECIDED and wfs is not None:
        _tell_requester(wfs, conn, req_id, status)
    conn.execute(approval_tasks.update().where(approval_tasks.c.request_id == req_id,
                                               approval_tasks.c.status == "pending").values(status="cancelled"))


def withdraw(wfs, request_id, actor, comment=None) -> dict:
    if _user_id(request_id) is None:
        raise NotFound(f"Approval request #{request_id} does not exist.")
    with writing(wfs.store.engine) as conn:
        req = conn.execute(sa.select(requests).where(requests.c.id == int(request_id))).mappings().first()
        if req is None:
            raise NotFound(f"Approval request #{request_id} does not exist.")
        if req["requester"] != actor.id and not actor.is_admin:
            raise Forbidden("Only the requester may withdraw this request.")
        if req["status"] != "pending":
            raise Conflict(f"The request is already {req['status']}.")
        _close(conn, req["id"], "withdrawn")
        entity = wfs.store.entity(req["entity"])
        wf = wfs.config.workflows[req["workflow"]]
        record = wfs.store.fetch(conn, entity, req["record_id"])
        wfs.log(conn, entity, wf, record, wf.transitions.get(req["transition"]), actor, "approval_withdrawn", comment)
        return {"status": "withdrawn", "request": req["id"]}


def pending_for(wfs, actor, entity: str | None = None, limit: int = 200) -> list[dict]:
    q = (sa.select(approval_tasks.c.id, approval_tasks.c.step_name, approval_tasks.c.created_at,
                   approval_tasks.c.delegated_from, requests.c.id.label("request_id"), requests.c.entity,
                   requests.c.record_id, requests.c.transition, requests.c.comment, requests.c.workflow,
                   users.c.username.label("requester"), users.c.full_name.label("requester_name"))
         .join(requests, requests.c.id == approval_tasks.c.request_id)
         .outerjoin(users, users.c.id == requests.c.requester)
         .where(approval_tasks.c.approver == actor.id, approval_tasks.c.status == "pending",
                requests.c.status == "pending"))
    if entity:
        q = q.where(requests.c.entity == entity)
    with reading(wfs.store.engine) as conn:
        return [dict(r) for r in conn.execute(q.order_by(approval_tasks.c.created_at).limit(limit)).mappings()]


def requested_by(wfs, actor, limit: int = 50) -> list[dict]:
    """The actor's own approval requests, newest first, with the step waiting now and, while the
    request is open, the names of the people it waits for."""
    with reading(wfs.store.engine) as conn:
        reqs = [dict(r) for r in conn.execute(sa.select(requests).where(requests.c.requester == actor.id)
                                              .order_by(requests.c.id.desc()).limit(limit)).mappings()]
        open_ids = [r["id"] for r in reqs if r["status"] == "pending"]
        waiting: dict = {}
        if open_ids:
            for row in conn.execute(
                    sa.select(approval_tasks.c.request_id, approval_tasks.c.step_name, users.c.username,
                              users.c.full_name)
                    .join(users, users.c.id == approval_tasks.c.approver)
                    .where(approval_tasks.c.request_id.in_(open_ids), approval_tasks.c.status == "pending")
                    .order_by(approval_tasks.c.id)).mappings():
                w = waiting.setdefault(row["request_id"], {"step_name": row["step_name"], "approvers": []})
                w["approvers"].append(row["full_name"] or row["username"])
    for r in reqs:
        w = waiting.get(r["id"], {})
        r["step_name"] = w.get("step_name")
        r["approvers"] = w.get("approvers", [])
    return reqs


def trail(wfs, entity_id: str, rid) -> list[dict]:
    """Every approval request of a record with its tasks, newest first."""
    with reading(wfs.store.engine) as conn:
        reqs = [dict(r) for r in conn.execute(sa.select(requests).where(
            requests.c.entity == entity_id, requests.c.record_id == int(rid)).order_by(requests.c.id.desc())).mappings()]
        for r in reqs:
            r["tasks"] = [dict(x) for x in conn.execute(
                sa.select(approval_tasks, users.c.username).outerjoin(users, users.c.id == approval_tasks.c.approver)
                .where(approval_tasks.c.request_id == r["id"]).order_by(approval_tasks.c.step, approval_tasks.c.id)).mappings()]
    return reqs


def set_delegation(wfs, actor, delegate: int, starts_on: dt.date, ends_on: dt.date) -> int:
    if ends_on < starts_on:
        raise ValidationFailed({"ends_on": "must not be before the start"})
    with writing(wfs.store.engine) as conn:
        ok = conn.execute(sa.select(users.c.id).where(users.c.id == int(delegate), users.c.active.is_(True))).scalar()
        if ok is None or int(delegate) == actor.id:
            raise ValidationFailed({"delegate": "not an active user other than you"})
        return conn.execute(delegations.insert().values(user_id=actor.id, delegate=int(delegate), starts_on=starts_on,
                                                        ends_on=ends_on)).inserted_primary_key[0]


def escalate_overdue(wfs, now: dt.datetime | None = None) -> int:
    """Escalate pending steps older than their `escalate_after`: add approvers from `escalate_to`
    (a role, or an expression giving user ids such as `owner.manager`). Idempotent: a step is
    escalated once. Returns the number of steps escalated. The automation jobs call this."""
    from .actor import SYSTEM_ACTOR
    from .actions import parse_duration
    now = now or _now()
    count = 0
    with writing(wfs.store.engine) as conn:
        open_steps = conn.execute(
            sa.select(requests.c.id, requests.c.entity, requests.c.record_id, requests.c.workflow,
                      requests.c.transition, requests.c.step, requests.c.requester,
                      sa.func.min(approval_tasks.c.created_at).label("since"))
            .join(approval_tasks, sa.and_(approval_tasks.c.request_id == requests.c.id,
                                          approval_tasks.c.step == requests.c.step))
            .where(requests.c.status == "pending")
            .group_by(requests.c.id, requests.c.entity, requests.c.record_id, requests.c.workflow,
                      requests.c.transition, requests.c.step, requests.c.requester)).mappings().all()
        for req in open_steps:
            wf = wfs.config.workflows.get(req["workflow"])
            entity = wfs.config.entities.get(req["entity"])
            if wf is None or entity is None:
                continue
            record = wfs.store.fetch(conn, entity, req["record_id"], include_deleted=True)
            wf = wfs.definition_for(conn, wf, record.get(wf.field))
            t = wf.transitions.get(req["transition"])
            if t is None or t.approval is None or req["step"] >= len(t.approval.steps):
                continue
            step = t.approval.steps[req["step"]]
            if not step.escalate_after or not step.escalate_to:
                continue
            if req["since"] + parse_duration(step.escalate_after) > now:
                continue
            already = conn.execute(sa.select(approval_tasks.c.id).where(
                approval_tasks.c.request_id == req["id"], approval_tasks.c.step == req["step"],
                approval_tasks.c.step_name == f"{step.name}:escalated")).first()
            if already:
                continue
            target = step.escalate_to
            if target.isidentifier() and target not in entity.fields:
                ids = [r.id for r in conn.execute(sa.select(users.c.id, users.c.roles).where(users.c.active.is_(True)))
                       if target in (r.roles or ())]
            else:
                v = rules.evaluate(target, _names(wfs, conn, entity, record, target), req["requester"],
                                   rule=f"approval step {step.name}.escalate_to", record=f"{entity.id} #{record['id']}")
                ids = [int(x) for x in (v if isinstance(v, (list, tuple)) else [v]) if x]
            if ids:
                conn.execute(approval_tasks.insert(), [
                    {"request_id": req["id"], "step": req["step"], "step_name": f"{step.name}:escalated",
                     "approver": uid, "status": "pending", "created_at": now} for uid in ids])
                wfs.log(conn, entity, wf, record, t, SYSTEM_ACTOR, "approval_escalated",
                        f"waiting longer than {step.escalate_after}")
                count += 1
    return count


def _tell_requester(wfs, conn, req_id, status) -> None:
    """A requester hears, in their language, when their approval request is decided."""
    from .model import label_of
    from .wftables import notifications
    req = conn.execute(sa.select(requests).where(requests.c.id == req_id)).mappings().first()
    if req is None or req["requester"] is None:
        return
    lang = conn.execute(sa.select(users.c.language).where(users.c.id == req["requester"])).scalar() or "en"
    zh = lang.startswith("zh")
    entity = wfs.config.entities.get(req["entity"])
    wf = wfs.config.workflows.get(req["workflow"])
    t = wf.transitions.get(req["transition"]) if wf else None
    what = label_of(t.label, lang, req["transition"]) if t else req["transition"]
    text = DECIDED[status]["zh" if zh else "en"].format(
        what=what, entity=label_of(entity.label, lang, req["entity"]) if entity else req["entity"], id=req["record_id"])
    conn.execute(notifications.insert().values(user_id=req["requester"], entity=req["entity"],
                                               record_id=req["record_id"], message=text, created_at=_now()))


def _user_id(value) -> int | None:
    """A user id from a form or JSON value: a whole number (never a boolean), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if 0 < value <= values.MAX_ID else None
    if isinstance(value, str) and value.strip().isdigit():
        n = int(value.strip())
        return n if 0 < n <= values.MAX_ID else None
    return None
