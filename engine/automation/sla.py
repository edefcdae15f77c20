"""SLA clocks computed from a record's event log, in the working time of a business calendar.

For each SLA policy of an entity and each target (response, resolution): the clock starts when
the record was created; it counts only working time; it stops counting while the record sits in
a pause state; it is met by the first transition (or state) named in `met_by` and starts again
after one named in `reset_by`. The policy (hence the target time) is chosen by rule on the
record's current values, so a priority change or a late pause recomputes the due instant.

`refresh()` recomputes and stores the clocks (sys_sla) and moves the warning and breach timers;
the timers' handlers call it again at their instant and record the warning or the breach once.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import sqlalchemy as sa

from .. import clock, rules
from ..wftables import history
from . import timers
from .spec import DURATION, SlaSpec, duration_seconds
from .tables import sla_clocks

UTC = dt.timezone.utc


@dataclass
class ClockState:
    sla: str
    target: str
    policy: str
    target_seconds: int
    started_at: dt.datetime
    due_at: dt.datetime | None
    warn_at: dt.datetime | None
    paused: bool
    met_at: dt.datetime | None
    met_late: bool


def _aware(naive_utc: dt.datetime) -> dt.datetime:
    return naive_utc.replace(tzinfo=UTC)


def events_of(conn, entity_id: str, record_id: int) -> list:
    return conn.execute(sa.select(history.c.transition, history.c.from_state, history.c.to_state, history.c.at)
                        .where(history.c.entity == entity_id, history.c.record_id == record_id,
                               history.c.event.in_(("transition", "approved", "rejected", "migrated")))
                        .order_by(history.c.at, history.c.id)).all()


def choose_policy(spec: SlaSpec, names: dict, record_label: str):
    for p in spec.policies:
        if not p.when or rules.evaluate(p.when, names, None, rule=f"{spec.id}.{p.name}.when", source=spec.file,
                                        record=record_label):
            return p
    return None


def compute(spec: SlaSpec, cal, wf, record: dict, events: list, names: dict, now: dt.datetime) -> list[ClockState]:
    """The clocks of one record as of `now` (naive UTC), from its events; [] when no policy applies."""
    label = f"{spec.entity} #{record['id']}"
    if spec.when and not rules.evaluate(spec.when, names, None, rule=f"{spec.id}.when", source=spec.file, record=label):
        return []
    policy = choose_policy(spec, names, label)
    if policy is None:
        return []
    pause_states = set(spec.pause_states if spec.pause_states is not None
                       else [s.id for s in wf.states.values() if s.paused])
    start = record["created_at"]
    # the state timeline: (from instant, state)
    first_state = events[0].from_state if events else record.get(wf.field)
    timeline = [(start, first_state or wf.initial)]
    for ev in events:
        if ev.to_state != timeline[-1][1]:
            timeline.append((max(ev.at, start), ev.to_state))
    out = []
    for target in spec.targets:
        seconds = policy.seconds[target.name]
        began, met_at = start, None
        for ev in events:
            hit = ev.transition in target.met_by or (ev.to_state in target.met_by and ev.to_state != ev.from_state)
            if met_at is None and hit:
                met_at = max(ev.at, start)
            elif met_at is not None and (ev.transition in target.reset_by or ev.to_state in target.reset_by):
                met_at, began = None, max(ev.at, start)      # reopened: the target runs again from here
        due = _reach(cal, timeline, began, pause_states, seconds)
        warn = None
        if spec.warn_before:
            if spec.warn_before.endswith("%"):
                lead = seconds * int(spec.warn_before[:-1]) // 100
            else:
                lead = duration_seconds(spec.warn_before) if DURATION.match(spec.warn_before) else 0
            warn = _reach(cal, timeline, began, pause_states, max(0, seconds - lead))
        paused_now = met_at is None and due is None
        met_late = met_at is not None and due is not None and met_at > due
        out.append(ClockState(spec.id, target.name, policy.name, seconds, began, due, None if paused_now else warn,
                              paused_now, met_at, met_late))
    return out


def _reach(cal, timeline, began: dt.datetime, pause_states: set, budget: int) -> dt.datetime | None:
    """When `budget` seconds of working time outside pause states have passed since `began` (naive
    UTC); None while the record sits in a pause state before that. Pauses after it change nothing."""
    remaining = budget
    for i, (t0, state) in enumerate(timeline):
        t1 = timeline[i + 1][0] if i + 1 < len(timeline) else None
        if t1 is not None and t1 <= began:
            continue
        t0 = max(t0, began)
        if state in pause_states:
            if t1 is None:
                return None
            continue
        if t1 is not None:
            work = cal.seconds_between(_aware(t0), _aware(t1))
            if work < remaining:
                remaining -= work
                continue
        return clock.to_utc_naive(cal.add_seconds(_aware(t0), remaining))
    return None


def store_clocks(conn, entity_id: str, record_id: int, spec_id: str, states: list[ClockState],
                 now: dt.datetime) -> dict:
    """Upsert the clocks; keep a recorded breach while it still holds. Returns {target: stored row}."""
    existing = {r["target"]: dict(r) for r in conn.execute(sa.select(sla_clocks).where(
        sla_clocks.c.entity == entity_id, sla_clocks.c.record_id == record_id, sla_clocks.c.sla == spec_id)).mappings()}
    out = {}
    seen = set()
    for st in states:
        seen.add(st.target)
        old = existing.get(st.target)
        breached_at = old["breached_at"] if old else None
        if breached_at is not None and st.due_at is not None and st.due_at > breached_at and st.met_at is None:
            breached_at = None          # the due instant moved past the recorded breach: it no longer holds
        if st.met_late and breached_at is None:
            breached_at = st.met_at
        warned_at = old["warned_at"] if old else None
        if old and (old["started_at"] != st.started_at or (st.warn_at and old["warn_at"] and st.warn_at > old["warn_at"]
                                                          and (warned_at is None or warned_at < st.warn_at))):
            warned_at = None                # restarted (reopened) or moved later: warn again when it comes
        vals = dict(policy=st.policy, target_seconds=st.target_seconds, started_at=st.started_at, due_at=st.due_at,
                    warn_at=st.warn_at, paused=st.paused, met_at=st.met_at, breached_at=breached_at,
                    warned_at=warned_at, updated_at=now)
        if old:
            conn.execute(sla_clocks.update().where(sla_clocks.c.id == old["id"]).values(**vals))
            out[st.target] = {**old, **vals}
        else:
            rid = conn.execute(sla_clocks.insert().values(entity=entity_id, record_id=record_id, sla=spec_id,
                                                          target=st.target, **vals)).inserted_primary_key[0]
            out[st.target] = {"id": rid, "entity": entity_id, "record_id": record_id, "sla": spec_id,
                              "target": st.target, **vals}
    gone = [r["id"] for t, r in existing.items() if t not in seen]
    if gone:
        conn.execute(sla_clocks.delete().where(sla_clocks.c.id.in_(gone)))
    return out


def plan_timers(conn, entity_id: str, record_id: int, spec_id: str, rows: dict) -> None:
    """One warning and one breach timer per running clock that has not warned or breached yet."""
    for target in ("response", "resolution"):
        row = rows.get(target)
        for kind, at_key, done_key in (("sla_warn", "warn_at", "warned_at"), ("sla_breach", "due_at", "breached_at")):
            name = f"sla:{spec_id}:{target}:{kind[4:]}"
            running = row is not None and row["met_at"] is None and not row["paused"] and row["breached_at"] is None
            if running and row.get(at_key) is not None and row.get(done_key) is None:
                timers.schedule(conn, entity_id, record_id, name, kind, row[at_key],
                                {"sla": spec_id, "target": target})
            else:
                timers.cancel(conn, entity_id, record_id, name)


def status_of(row: dict, now: dt.datetime) -> str:
    if row["met_at"] is not None:
        return "breached" if row["breached_at"] is not None else "met"
    if row["breached_at"] is not None or (row["due_at"] is not None and now >= row["due_at"]):
        return "breached"                      # a breach stays a breach while the record waits
    return "paused" if row["paused"] else "running"


def read(conn, entity_id: str, record_id: int) -> list[dict]:
    return [dict(r) for r in conn.execute(sa.select(sla_clocks).where(
        sla_clocks.c.entity == entity_id, sla_clocks.c.record_id == record_id)
        .order_by(sla_clocks.c.sla, sla_clocks.c.id)).mappings()]


def filter_clause(entity_id: str, table, which: str, now: dt.datetime):
    """EXISTS a clock of the record in state `which` (the list filter `?sla=`)."""
    c = sla_clocks.c
    live = sa.and_(c.met_at.is_(None), c.paused.is_(False))
    cond = {
        "breached": sa.or_(c.breached_at.is_not(None), sa.and_(live, c.due_at <= now)),
        "at_risk": sa.and_(live, c.breached_at.is_(None), c.warn_at <= now, c.due_at > now),
        "paused": sa.and_(c.met_at.is_(None), c.paused.is_(True)),
        "running": sa.and_(live, c.breached_at.is_(None), c.due_at > now),
        "met": sa.and_(c.met_at.is_not(None), c.breached_at.is_(None)),
    }[which]
    return sa.exists(sa.select(c.id).where(c.entity == entity_id, c.record_id == table.c.id, cond))


def summary(conn, entity_id: str, ids, now: dt.datetime) -> dict:
    """{record id: the most urgent clock} for list columns: breached first, then the nearest due."""
    ids = [int(i) for i in ids]
    if not ids:
        return {}
    rows = conn.execute(sa.select(sla_clocks).where(sla_clocks.c.entity == entity_id,
                                                    sla_clocks.c.record_id.in_(ids))).mappings().all()
    rank = {"breached": 0, "at_risk": 1, "running": 2, "paused": 3, "met": 4}
    out: dict = {}
    for r in rows:
        st = status_of(r, now)
        if st == "running" and r["warn_at"] is not None and now >= r["warn_at"]:
            st = "at_risk"
        key = (rank[st], r["due_at"] or dt.datetime.max)
        cur = out.get(r["record_id"])
        if cur is None or key < cur["_key"]:
            out[r["record_id"]] = {"status": st, "target": r["target"], "sla": r["sla"], "due_at": r["due_at"],
                                   "_key": key}
    for v in out.values():
        v.pop("_key")
    return out


def compliance(conn, entity_id: str, since: dt.datetime | None, until: dt.datetime | None, now: dt.datetime,
               records=None) -> list:
    """Per SLA and target, for clocks started in [since, until): how many were met in time, breached,
    are still open, and the share met in time of those decided (for reports)."""
    c = sla_clocks.c
    conds = [c.entity == entity_id]
    if records is not None:                      # a SELECT of the record ids the reader may see
        conds.append(c.record_id.in_(records))
    if since is not None:
        conds.append(c.started_at >= since)
    if until is not None:
        conds.append(c.started_at < until)
    out: dict = {}
    for r in conn.execute(sa.select(sla_clocks).where(*conds)).mappings():
        key = (r["sla"], r["target"])
        agg = out.setdefault(key, {"sla": r["sla"], "target": r["target"], "total": 0, "met": 0, "breached": 0,
                                   "open": 0})
        agg["total"] += 1
        st = status_of(r, now)
        agg["met" if st == "met" else "breached" if st == "breached" else "open"] += 1
    for agg in out.values():
        decided = agg["met"] + agg["breached"]
        agg["met_rate"] = round(agg["met"] / decided, 4) if decided else None
    return sorted(out.values(), key=lambda a: (a["sla"], a["target"]))
