"""Row scopes and field permissions from the pack's `access.yaml` (H3, H4), enforced in the store.

```yaml
scopes:                 # per role and entity; an entity a role does not list is not limited for it
  sales:
    customer: team      # own | team | all
    contact: {via: customer}   # follows the linked record (a contact is visible with its customer)
hidden:                 # fields a role does not see (absent on read, 403 on write)
  service_agent:
    contract: [amount]
audit_readers: [auditor]  # roles that read the audit trail, besides administrators
```

A user with several roles gets the widest of them: a row is visible if any role lets them see it,
a field if any role shows it. Administrators see everything. `team`: records owned by the user, by
any user of the same team (`sys_user.team`) or by anyone who reports to the user (`sys_user.manager`). The scope becomes a WHERE clause of every query
the store runs (lists, reads, writes, lookups), so a record out of scope is 404 on every path.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType

import sqlalchemy as sa

from .errors import Forbidden, Problem
from .policy import AdminDeletesOnly
from .systables import users

SCOPES = ("own", "team", "all")


@dataclass(frozen=True)
class AccessSpec:
    scopes: MappingProxyType = field(default_factory=lambda: MappingProxyType({}))   # role -> {entity: scope}
    hidden: MappingProxyType = field(default_factory=lambda: MappingProxyType({}))   # role -> {entity: (fields)}
    audit_readers: tuple = ()          # roles that read the audit trail (besides administrators)
    file: str = ""


def build_access(doc) -> AccessSpec:
    raw = doc.data
    return AccessSpec(
        scopes=MappingProxyType({r: MappingProxyType(dict(m or {})) for r, m in (raw.get("scopes") or {}).items()}),
        hidden=MappingProxyType({r: MappingProxyType({e: tuple(fs) for e, fs in (m or {}).items()})
                                 for r, m in (raw.get("hidden") or {}).items()}),
        audit_readers=tuple(raw.get("audit_readers") or ()), file=doc.file)


def check_access(spec: AccessSpec, doc, entities: dict, roles: set) -> list[Problem]:
    from .schemas import suggest
    out = []
    for i, role in enumerate(spec.audit_readers):
        if roles and role not in roles:
            out.append(doc.problem(("audit_readers", i), f"{role!r} is not a role of the pack{suggest(role, roles)}"))
    for section in ("scopes", "hidden"):
        for role, per_entity in getattr(spec, section).items():
            if roles and role not in roles and role != "admin":
                out.append(doc.problem((section, role), f"{role!r} is not a role of the pack{suggest(role, roles)}"))
            for eid, value in per_entity.items():
                e = entities.get(eid)
                if e is None:
                    out.append(doc.problem((section, role, eid), f"{eid!r} is not an entity{suggest(eid, entities)}"))
                    continue
                if section == "hidden":
                    for i, f in enumerate(value):
                        if f not in e.fields:
                            out.append(doc.problem((section, role, eid, i), f"{eid} has no field {f!r}"
                                                                             f"{suggest(f, list(e.fields))}"))
                elif isinstance(value, dict):
                    link = e.fields.get(value.get("via"))
                    if link is None or link.type != "link":
                        out.append(doc.problem((section, role, eid, "via"), f"`via` must name a link field of {eid}"))
    return out


class AccessPolicy(AdminDeletesOnly):
    """The platform's policy: admins delete; row scopes and hidden fields from access.yaml."""

    def __init__(self, config, tables):
        self.config = config
        self.spec: AccessSpec = getattr(config, "access", None) or AccessSpec()
        self.tables = tables               # entity id -> Table

    # ---- rows ---------------------------------------------------------------------------------
    def _scope_of(self, actor, entity_id: str):
        """The widest scope the actor's roles give for the entity: 'all', 'team', 'own' or a via dict."""
        if actor is None or actor.is_admin:
            return "all"
        if not actor.roles:                  # no role: only its own records where any role is limited
            limited = any(entity_id in rules for rules in self.spec.scopes.values())
            return "own" if limited else "all"
        found = []
        for role in actor.roles:
            rules = self.spec.scopes.get(role)
            if rules is None or entity_id not in rules:
                return "all"
            found.append(rules[entity_id])
        if any(s == "all" for s in found):
            return "all"
        if any(isinstance(s, dict) for s in found) and not any(s == "team" for s in found):
            return next(s for s in found if isinstance(s, dict))
        if any(isinstance(s, dict) for s in found):
            return {**next(s for s in found if isinstance(s, dict)), "or": "team"}
        return "team" if "team" in found else "own"

    def scope(self, entity, actor, table, action: str = "read", depth: int = 0):
        s = self._scope_of(actor, entity.id)
        if s == "all":
            return None
        owned = self._owned(table, actor, s if isinstance(s, str) else s.get("or", "team"))
        if action == "read":                 # an approver reads (never writes) what waits for their decision
            owned = sa.or_(owned, self._asked_to_approve(entity, table, actor))
        if isinstance(s, dict) and depth < 3:
            link = entity.fields[s["via"]]
            target = self.config.entities[link.to]
            tt = self.tables[target.id]
            inner = self.scope(target, actor, tt, action, depth + 1)
            if inner is None:
                return None
            col = table.c[link.id]
            via = sa.and_(col.is_not(None), col.in_(sa.select(tt.c.id).where(inner)))
            if s.get("or"):                  # another role of the user gives its team's records too
                return sa.or_(via, owned)
            return sa.or_(via, sa.and_(col.is_(None), owned))
        return owned

    @staticmethod
    def _asked_to_approve(entity, table, actor):
        """Approvers see the records they were asked to approve, whoever owns them."""
        from .wftables import approval_tasks, requests
        if actor.id is None:
            return sa.false()
        return table.c.id.in_(sa.select(requests.c.record_id).join(
            approval_tasks, approval_tasks.c.request_id == requests.c.id).where(
            requests.c.entity == entity.id, approval_tasks.c.approver == actor.id,
            approval_tasks.c.status == "pending", requests.c.status == "pending"))

    @staticmethod
    def _owned(table, actor, kind: str):
        if actor.id is None:
            return sa.false()
        if kind == "own":
            return table.c.owner == actor.id
        mates = sa.select(users.c.id).where(sa.or_(
            sa.and_(users.c.team.is_not(None),
                    users.c.team == sa.select(users.c.team).where(users.c.id == actor.id).scalar_subquery()),
            users.c.manager == actor.id))            # the same team, and the people who report to the user
        return sa.or_(table.c.owner == actor.id, table.c.owner.in_(mates))

    def may_read_audit(self, actor) -> bool:
        return actor is not None and (actor.is_admin or any(r in self.spec.audit_readers for r in actor.roles))

    # ---- fields -------------------------------------------------------------------------------
    def hidden_fields(self, entity, actor) -> frozenset:
        if actor is None or actor.is_admin or not self.spec.hidden:
            return frozenset()
        sets = []
        for role in actor.roles or tuple(self.spec.hidden):   # no role: hidden wherever any role hides it
            sets.append(set(self.spec.hidden.get(role, {}).get(entity.id, ())))
        return frozenset(set.intersection(*sets)) if sets else frozenset()

    def check_write(self, entity, actor, data) -> None:
        hidden = self.hidden_fields(entity, actor)
        named = sorted(k for k in (data or {}) if k in hidden)
        if named:
            err = Forbidden(f"You may not write {', '.join(named)} of {entity.label_text(actor.language)}.")
            err.fields = {k: "not allowed for your role" for k in named}
            raise err
