"""Assignment rules: who gets a new record (or one that reaches a chosen transition).

Strategies: `round_robin` over the active users of a role (a cursor row remembers the last one,
locked for the transaction, so concurrent creates take turns), `least_open` (the user with the
fewest open records of the entity), `by_field` (a rule gives the user, e.g. the region's
salesperson; `fallback` when it gives none) and `fixed` (one user by name). The first rule whose
`when` holds and which finds a user wins; a value the user already gave is kept.
"""
from __future__ import annotations

import sqlalchemy as sa

from .. import rules
from ..systables import users
from .spec import AssignmentSpec
from .tables import assignment_cursor


def _candidates(conn, role: str) -> list[int]:
    rows = conn.execute(sa.select(users.c.id, users.c.roles).where(users.c.active.is_(True))
                        .order_by(users.c.id)).all()
    return [r.id for r in rows if role in (r.roles or ())]


def _round_robin(conn, rule_id: str, role: str) -> int | None:
    pool = _candidates(conn, role)
    if not pool:
        return None
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    conn.execute(insert(assignment_cursor).values(rule=rule_id, last_user=None).on_conflict_do_nothing())
    q = sa.select(assignment_cursor.c.last_user).where(assignment_cursor.c.rule == rule_id)
    if conn.dialect.name == "postgresql":
        q = q.with_for_update()
    last = conn.execute(q).scalar()
    chosen = next((u for u in pool if last is None or u > last), pool[0])
    conn.execute(assignment_cursor.update().where(assignment_cursor.c.rule == rule_id).values(last_user=chosen))
    return chosen


def _least_open(conn, store, entity, spec: AssignmentSpec) -> int | None:
    pool = _candidates(conn, spec.role)
    if not pool:
        return None
    t = store.table(entity)
    col = t.c[spec.field]
    conds = [t.c.deleted_at.is_(None), col.in_(pool)]
    sf = entity.state_field
    wf = store.config.workflows.get(sf.workflow) if sf else None
    if spec.open_states:
        conds.append(t.c[sf.id].in_(spec.open_states))
    elif wf is not None:
        conds.append(t.c[sf.id].not_in([s.id for s in wf.states.values() if s.final]))
    counts = dict(conn.execute(sa.select(col, sa.func.count()).where(*conds).group_by(col)).all())
    return min(pool, key=lambda u: (counts.get(u, 0), u))


def _active(conn, uid) -> int | None:
    try:
        uid = int(uid)
    except (TypeError, ValueError):
        return None
    return conn.execute(sa.select(users.c.id).where(users.c.id == uid, users.c.active.is_(True))).scalar()


def choose(conn, store, entity, spec: AssignmentSpec, values: dict, names: dict) -> int | None:
    """The user this rule gives the record to, or None (the next rule is tried)."""
    label = f"{entity.id} (new)" if values.get("id") is None else f"{entity.id} #{values['id']}"
    if spec.when and not rules.evaluate(spec.when, names, None, rule=f"{spec.id}.when", source=spec.file, record=label):
        return None
    strategy = spec.strategy
    if strategy == "by_field":
        found = _active(conn, rules.evaluate(spec.value, names, None, rule=f"{spec.id}.value", source=spec.file,
                                             record=label))
        if found is not None or not spec.fallback:
            return found
        strategy = spec.fallback
    if strategy == "fixed":
        return conn.execute(sa.select(users.c.id).where(users.c.username == spec.user, users.c.active.is_(True))).scalar()
    if strategy == "round_robin":
        return _round_robin(conn, spec.id, spec.role)
    if strategy == "least_open":
        return _least_open(conn, store, entity, spec)
    return None


def assign(conn, store, entity, specs, values: dict, given=None) -> tuple[str, int] | None:
    """Fill the assigned field of `values` by the first rule that finds a user: (rule id, user id).
    A value the user gave (`given`: the fields of the request) is kept; a default is not a choice."""
    for spec in specs:
        chosen = spec.field in given if given is not None else values.get(spec.field) not in (None, "")
        if chosen and values.get(spec.field) not in (None, ""):
            continue
        names = store.rule_names(conn, entity, values, spec.when, spec.value)
        uid = choose(conn, store, entity, spec, values, names)
        if uid is not None:
            values[spec.field] = uid
            return spec.id, uid
    return None
