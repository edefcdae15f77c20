"""Who may do what (H1), on which rows (H3) and which fields (H4), from the pack's `access.yaml`.

```yaml
permissions:            # per role: actions per entity ("*" = every entity the role does not list)
  auditor: {"*": [read, export]}
  sales: {"*": [read, create, update, export, assign], product: [read]}
scopes:                 # per role and entity; an entity a role does not list is not limited for it
  sales:
    customer: team      # own | team | region | all
    contact: {via: customer}   # follows the linked record (a contact is visible with its customer)
    ticket: {match: {assignee: me}}   # rows whose field holds the user (me), their team or region code
hidden:                 # fields a role does not see (absent on read, 403 on write)
  service_agent:
    contract: [amount]
readonly:               # fields a role sees but may not change (403 naming the field)
  sales:
    opportunity: [probability]
audit_readers: [auditor]  # roles that read the audit trail, besides administrators
```

Actions: read, create, update, delete, export, import, assign (give a record to someone else:
set or change its owner) and admin (the recycle bin: restore). A role `permissions` does not
list may do what every user could before permissions existed: everything but delete and admin.

A user with several roles gets the widest of them: an action is allowed if any role allows it, a
row is visible if any role lets them see it, a field is hidden (or read-only) only if every role
hides it. Administrators may do everything. Scopes: `own` records the user owns; `team` also
those owned by users of the user's team or of any team below it (`sys_team.parent`), and by
anyone who reports to the user (`sys_user.manager`); `region` those owned by users of the same
`sys_user.region`. The scope becomes a WHERE clause of every query the store runs (lists, reads,
writes, lookups), so a record out of scope is 404 on every path.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType

import sqlalchemy as sa

from .errors import Forbidden, Problem
from .model import label_of
from .policy import AdminDeletesOnly
from .systables import teams, users

SCOPES = ("own", "team", "region", "all")
ACTIONS = ("read", "create", "update", "delete", "export", "import", "assign", "admin")
DEFAULT_ACTIONS = frozenset({"read", "create", "update", "export", "import", "assign"})
ANY_ENTITY = "*"
# Roles every app knows whatever its pack says: their labels when pack.yaml `roles` gives none.
BUILTIN_ROLES = {"admin": {"en": "Administrator", "zh": "管理员"}, "staff": {"en": "Staff", "zh": "员工"}}


def role_label(config, role: str, lang: str = "en") -> str:
    """A role as people read it: its label in pack.yaml `roles` (where roles are configured), else
    the built-in label (admin, staff), else its id. The one source of role labels: the policy's
    refusals, workflow guards, the org admin, the audit and access pages all call it."""
    pack = getattr(config, "pack", None)
    labels = dict(pack.roles) if pack is not None else {}
    return label_of(labels.get(role) or BUILTIN_ROLES.get(role), lang, role)


@dataclass(frozen=True)
class AccessSpec:
    scopes: MappingProxyType = field(default_factory=lambda: MappingProxyType({}))   # role -> {entity: scope}
    hidden: MappingProxyType = field(default_factory=lambda: MappingProxyType({}))   # role -> {entity: (fields)}
    readonly: MappingProxyType = field(default_factory=lambda: MappingProxyType({}))  # role -> {entity: (fields)}
    permissions: MappingProxyType = field(default_factory=lambda: MappingProxyType({}))  # role -> {entity|*: actions}
    audit_readers: tuple = ()          # roles that read the audit trail (besides administrators)
    file: str = ""


def _per_role_fields(raw) -> MappingProxyType:
    return MappingProxyType({r: MappingProxyType({e: tuple(fs) for e, fs in (m or {}).items()})
                             for r, m in (raw or {}).items()})


def build_access(doc) -> AccessSpec:
    raw = doc.data
    return AccessSpec(
        scopes=MappingProxyType({r: MappingProxyType(dict(m or {})) for r, m in (raw.get("scopes") or {}).items()}),
        hidden=_per_role_fields(raw.get("hidden")), readonly=_per_role_fields(raw.get("readonly")),
        permissions=MappingProxyType({r: MappingProxyType({e: frozenset(a or ()) for e, a in (m or {}).items()})
                                      for r, m in (raw.get("permissions") or {}).items()}),
        audit_readers=tuple(raw.get("audit_readers") or ()), file=doc.file)


def merge_access(specs: list) -> tuple[AccessSpec | None, list[Problem]]:
    """One AccessSpec from the folder's access.yaml and those of packs installed beside it
    (access/<pack>.yaml), given as [(spec, doc)]. Each role's rules are the union of every file's;
    the same role and entity set differently in two files is a problem (no pack silently overrides
    another's rule)."""
    if not specs:
        return None, []
    if len(specs) == 1:
        return specs[0][0], []
    problems: list[Problem] = []
    merged: dict = {}
    for section in ("scopes", "hidden", "readonly", "permissions"):
        out: dict = {}
        where: dict = {}
        for spec, doc in specs:
            for role, per_entity in getattr(spec, section).items():
                mine = out.setdefault(role, {})
                for eid, value in per_entity.items():
                    if eid in mine and mine[eid] != value:
                        problems.append(doc.problem((section, role, eid), f"{section} of {role!r} on {eid!r} is "
                                                    f"also set, differently, by {where[(role, eid)]}"))
                        continue
                    mine[eid] = value
                    where.setdefault((role, eid), doc.file)
        merged[section] = MappingProxyType({r: MappingProxyType(m) for r, m in out.items()})
    readers = tuple(dict.fromkeys(r for spec, _doc in specs for r in spec.audit_readers))
    return AccessSpec(audit_readers=readers, file=specs[0][0].file, **merged), problems


def check_access(spec: AccessSpec, doc, entities: dict, roles: set) -> list[Problem]:
    from .schemas import suggest
    out = []
    for i, role in enumerate(spec.audit_readers):
        if roles and role not in roles:
            out.append(doc.problem(("audit_readers", i), f"{role!r} is not a role of the pack{suggest(role, roles)}"))
    for section in ("scopes", "hidden", "readonly", "permissions"):
        for role, per_entity in getattr(spec, section).items():
            if roles and role not in roles and role != "admin":
                out.append(doc.problem((section, role), f"{role!r} is not a role of the pack{suggest(role, roles)}"))
            for eid, value in per_entity.items():
                if section == "permissions" and eid == ANY_ENTITY:
                    continue
                e = entities.get(eid)
                if e is None:
                    out.append(doc.problem((section, role, eid), f"{eid!r} is not an entity{suggest(eid, entities)}"))
                    continue
                if section in ("hidden", "readonly"):
                    for i, f in enumerate(value):
                        if f not in e.fields:
                            out.append(doc.problem((section, role, eid, i), f"{eid} has no field {f!r}"
                                                                             f"{suggest(f, list(e.fields))}"))
                elif section == "scopes" and isinstance(value, dict) and "match" in value:
                    for fid, who in (value.get("match") or {}).items():
                        f = e.fields.get(fid)
                        if f is None or not f.stored:
                            out.append(doc.problem((section, role, eid, "match", fid),
                                                   f"{eid} has no stored field {fid!r}{suggest(fid, list(e.fields))}"))
                        elif who == "me" and f.type not in ("user", "link"):
                            out.append(doc.problem((section, role, eid, "match", fid),
                                                   f"`me` needs a user field; {eid}.{fid} is {f.type}"))
                elif section == "scopes" and isinstance(value, dict):
                    link = e.fields.get(value.get("via"))
                    if link is None or link.type != "link":
                        out.append(doc.problem((section, role, eid, "via"), f"`via` must name a link field of {eid}"))
    return out


class AccessPolicy(AdminDeletesOnly):
    """The platform's policy: actions, row scopes, hidden and read-only fields from access.yaml."""

    def __init__(self, config, tables):
        self.config = config
        self.spec: AccessSpec = getattr(config, "access", None) or AccessSpec()
        self.tables = tables               # entity id -> Table

    # ---- actions ------------------------------------------------------------------------------
    def _role_actions(self, role: str, entity_id: str) -> frozenset:
        rules = self.spec.permissions.get(role)
        if rules is None:
            return DEFAULT_ACTIONS
        return rules.get(entity_id, rules.get(ANY_ENTITY, frozenset()))

    def actions(self, entity_id: str, actor) -> frozenset:
        """Every action the actor's roles allow on the entity (the union over roles)."""
        if actor is None:
            return frozenset()
        if actor.is_admin:
            return frozenset(ACTIONS)
        if not actor.roles:
            return DEFAULT_ACTIONS
        out = set()
        for role in actor.roles:
            out |= self._role_actions(role, entity_id)
        return frozenset(out)

    def role_text(self, roles, lang: str = "en") -> str:
        """Roles as people read them, for refusals: "Sales rep, Manager" ("-" for none)."""
        return ", ".join(role_label(self.config, r, lang) for r in roles) or "-"

    def check(self, entity, action, actor, record=None):
        if actor is None or (actor.id is None and not actor.is_admin):
            raise Forbidden("You must be signed in.")
        if actor.is_admin:
            return
        allowed = self.actions(entity.id, actor)
        if action in ("restore", "purge"):
            if "admin" not in allowed:
                raise Forbidden(f"Only an administrator may {action} {entity.id} records; "
                                "deleted records go to the recycle bin.")
            return
        if action == "delete" and action not in allowed:
            raise Forbidden(f"Only an administrator may delete {entity.id} records; "
                            "deleted records go to the recycle bin.")
        if action not in allowed:
            err = Forbidden(f"Your roles ({self.role_text(actor.roles, actor.language)}) may not {action} "
                            f"{entity.label_text(actor.language)} records.")
            err.action = action
            raise err

    # ---- rows ---------------------------------------------------------------------------------
    def _scope_rules(self, actor, entity_id: str) -> list:
        """The scope each of the actor's roles gives for the entity; ['all'] when one is unlimited."""
        if actor is None or actor.is_admin:
            return ["all"]
        if not actor.roles:                  # no role: only its own records where any role is limited
            limited = any(entity_id in rules for rules in self.spec.scopes.values())
            return ["own"] if limited else ["all"]
        found = []
        for role in actor.roles:
            rules = self.spec.scopes.get(role)
            if rules is None or entity_id not in rules:
                return ["all"]
            found.append(rules[entity_id])
        return found

    def scope(self, entity, actor, table, action: str = "read", depth: int = 0):
        found = self._scope_rules(actor, entity.id)
        if "all" in found:
            return None
        kinds = sorted({s for s in found if isinstance(s, str)})
        vias = [s for s in found if isinstance(s, dict) and "via" in s]
        matches = [s["match"] for s in found if isinstance(s, dict) and "match" in s]
        parts = [self._owned(table, actor, k) for k in kinds] + [self._matched(table, actor, m) for m in matches]
        owned = sa.or_(*(parts or [self._owned(table, actor, "team")]))   # `via` alone falls back to the team
        todo = getattr(entity, "todo", None)
        if todo and actor.id is not None:   # a to-do's assignee works on it like its owner (engine/daily.py)
            owned = sa.or_(owned, table.c[todo["assignee"]] == actor.id)
        if action == "read":                 # an approver reads (never writes) what waits for their decision
            owned = sa.or_(owned, self._asked_to_approve(entity, table, actor))
        if vias and depth < 3:
            link = entity.fields[vias[0]["via"]]
            target = self.config.entities[link.to]
            tt = self.tables[target.id]
            inner = self.scope(target, actor, tt, action, depth + 1)
            if inner is None:
                return None
            col = table.c[link.id]
            via = sa.and_(col.is_not(None), col.in_(sa.select(tt.c.id).where(inner)))
            if kinds or matches:             # another role of the user gives its own scope's records too
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
    def team_members(actor_id):
        """Users of the actor's team and of every team below it, and those who report to the actor."""
        mine = sa.select(users.c.team).where(users.c.id == actor_id).scalar_subquery()
        tree = sa.select(teams.c.id).where(teams.c.id == mine).cte(recursive=True)
        tree = tree.union(sa.select(teams.c.id).where(teams.c.parent == tree.c.id))   # UNION: a cycle ends
        return sa.select(users.c.id).where(sa.or_(
            sa.and_(users.c.team.is_not(None), sa.or_(users.c.team == mine, users.c.team.in_(sa.select(tree.c.id)))),
            users.c.manager == actor_id))

    @staticmethod
    def _matched(table, actor, rule: dict):
        """`{match: {field: me | my_team | my_region}}`: rows whose field holds the user, or the
        user's team or region code (every named field must match)."""
        if actor.id is None:
            return sa.false()
        conds = []
        for fid, who in rule.items():
            if who == "me":
                conds.append(table.c[fid] == actor.id)
            else:
                col = users.c.team if who == "my_team" else users.c.region
                mine = sa.select(col).where(users.c.id == actor.id).scalar_subquery()
                conds.append(sa.and_(table.c[fid].is_not(None), table.c[fid] == mine))
        return sa.and_(*conds)

    @classmethod
    def _owned(cls, table, actor, kind: str):
        if actor.id is None:
            return sa.false()
        if kind == "own":
            return table.c.owner == actor.id
        if kind == "region":
            mine = sa.select(users.c.region).where(users.c.id == actor.id).scalar_subquery()
            peers = sa.select(users.c.id).where(users.c.region.is_not(None), users.c.region == mine)
            return sa.or_(table.c.owner == actor.id, table.c.owner.in_(peers))
        return sa.or_(table.c.owner == actor.id, table.c.owner.in_(cls.team_members(actor.id)))

    def may_read_audit(self, actor) -> bool:
        return actor is not None and (actor.is_admin or any(r in self.spec.audit_readers for r in actor.roles))

    # ---- fields -------------------------------------------------------------------------------
    def _fields_of(self, section, entity, actor) -> frozenset:
        rules = getattr(self.spec, section)
        if actor is None or actor.is_admin or not rules:
            return frozenset()
        sets = []
        for role in actor.roles or tuple(rules):    # no role: limited wherever any role limits it
            sets.append(set(rules.get(role, {}).get(entity.id, ())))
        return frozenset(set.intersection(*sets)) if sets else frozenset()

    def hidden_fields(self, entity, actor) -> frozenset:
        return self._fields_of("hidden", entity, actor)

    def readonly_fields(self, entity, actor) -> frozenset:
        """Fields the actor sees but may not change (hidden ones are not repeated here)."""
        return self._fields_of("readonly", entity, actor) - self.hidden_fields(entity, actor)

    def check_write(self, entity, actor, data) -> None:
        hidden = self.hidden_fields(entity, actor)
        named = sorted(k for k in (data or {}) if k in hidden)
        if named:
            err = Forbidden(f"You may not write {', '.join(named)} of {entity.label_text(actor.language)}.")
            err.fields = {k: "not allowed for your role" for k in named}
            raise err

    def check_changes(self, entity, actor, changed: dict, current: dict | None, given=()) -> None:
        """After a write is prepared: read-only fields it changes, and giving a record away (assign).
        `changed`: the new values that differ (update) or every value set (create, with `given`
        the fields the caller named)."""
        if actor is None or actor.is_admin:
            return
        if current is None:
            named = [k for k in given if k in changed and changed[k] not in (None, "")]
        else:
            named = list(changed)
        locked = sorted(k for k in named if k in self.readonly_fields(entity, actor))
        if locked:
            self._refuse_fields(entity, actor, locked, "read-only for your role")
        owner = changed.get("owner")
        gives_away = ("owner" in changed and current is not None) or (current is None and owner not in (None, actor.id))
        if gives_away and "assign" not in self.actions(entity.id, actor):
            self._refuse_fields(entity, actor, ["owner"], "your roles may not assign records to others")

    @staticmethod
    def _refuse_fields(entity, actor, names, why):
        err = Forbidden(f"You may not change {', '.join(names)} of {entity.label_text(actor.language)}: {why}.")
        err.fields = {k: why for k in names}
        raise err

    # ---- explanation ("view as") --------------------------------------------------------------
    def explain(self, entity, actor) -> dict:
        """What the actor may do with the entity and which role's rule says so (the "view as" page)."""
        roles = tuple(actor.roles) if actor is not None else ()
        if actor is not None and actor.is_admin:
            return {"actions": {a: ["admin"] for a in ACTIONS}, "scope": [("admin", "all")],
                    "hidden": {}, "readonly": {}}
        acts = {a: [] for a in ACTIONS}
        for role in roles or ("",):
            rules = self.spec.permissions.get(role) if role else None
            for a in (self._role_actions(role, entity.id) if role else DEFAULT_ACTIONS):
                acts[a].append(role if rules is not None else f"{role or '-'} (default)")
        scope = []
        for role in roles:
            rule = self.spec.scopes.get(role, {}).get(entity.id, "all")
            if isinstance(rule, str):
                scope.append((role, rule))
            elif "via" in rule:
                scope.append((role, f"via {rule['via']}"))
            else:
                scope.append((role, "match " + ", ".join(f"{f}={w}" for f, w in rule["match"].items())))
        fields = {}
        for section in ("hidden", "readonly"):
            limited = self._fields_of(section, entity, actor)
            fields[section] = {f: [r for r in roles if f in getattr(self.spec, section).get(r, {}).get(entity.id, ())]
                               for f in sorted(limited)}
        return {"actions": acts, "scope": scope or [("-", "own" if self._scope_rules(actor, entity.id) == ["own"]
                                                      else "all")], **fields}
