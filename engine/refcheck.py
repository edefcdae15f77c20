"""Checks between files: links, forms, rules and workflows must name things that exist.

Each invariant is a small function that appends problems naming the rule and the offenders.
"""
from __future__ import annotations

import dataclasses
import re
from collections import deque

from . import rules
from .errors import Problem, RuleError
from .model import RESERVED, Entity
from .schemas import suggest

USER_ATTRS = ("id", "username", "full_name", "email", "manager", "roles", "language")
TEXT_TYPES = {"string", "text", "email", "phone", "url"}
NUMBER_TYPES = {"integer", "decimal", "money", "percent"}
TYPE_KEYS = {  # keys that only make sense for some types (computed fields: by their `result`)
    "to": {"link"}, "of": {"table"}, "options": {"select", "multiselect"},
    "format": {"autonumber"}, "workflow": {"state"}, "due": {"date", "datetime"},
    "max_length": TEXT_TYPES, "min_length": TEXT_TYPES, "pattern": TEXT_TYPES,
    "min": NUMBER_TYPES, "max": NUMBER_TYPES, "currency": {"money"},
    "precision": {"decimal", "money", "percent"}, "scale": {"decimal", "money", "percent"},
}
TITLE_RX = re.compile(r"\{([a-z][a-z0-9_]*)\}")


class _Ctx:
    def __init__(self, entities, docs):
        self.entities, self.docs, self.problems = entities, docs, []
        self.broken: set = set()

    def names(self):
        return list(self.entities) + sorted(self.broken)

    def add(self, kind, obj_id, path, message):
        doc = self.docs.get((kind, obj_id))
        if doc is None:
            self.problems.append(Problem(kind, None, None, ".".join(map(str, path)), message))
        else:
            self.problems.append(doc.problem(path, message))

    def expr(self, kind, obj_id, path, expr, entity: Entity | None, extra_names=()):
        """Compile an expression and check that every name it reads exists."""
        try:
            used = rules.names_used(expr)
        except RuleError as e:
            self.add(kind, obj_id, path, f"{expr!r}: {e.message}")
            return
        if entity is None:
            return
        for name in sorted(used):
            base, _, attr = name.partition(".")
            if base in extra_names:
                continue
            f = entity.fields.get(base)
            if f is None:
                self.add(kind, obj_id, path, f"{expr!r} names {base!r}, which is not a field of {entity.id}"
                                             f"{suggest(base, list(entity.fields))}")
                continue
            if not attr:
                continue
            if f.type == "link":
                target = self.entities.get(f.to)
                if target is not None and attr not in target.fields:
                    self.add(kind, obj_id, path, f"{expr!r} names {name!r}, but {f.to} has no field {attr!r}"
                                                 f"{suggest(attr, list(target.fields))}")
            elif f.type == "user":
                if attr not in USER_ATTRS:
                    self.add(kind, obj_id, path, f"{expr!r} names {name!r}; a user has {', '.join(USER_ATTRS)}")
            else:
                self.add(kind, obj_id, path, f"{expr!r} reads {name!r}, but {base!r} is a {f.type} field, not a link")


def _check_fields(ctx: _Ctx, e: Entity, child_users: dict):
    doc = ctx.docs.get(("entity", e.id))
    declared = doc.data.get("fields", {}) if doc is not None else {}
    for fid, raw in declared.items():   # the loader puts system fields over these: check what was written
        if fid in RESERVED and fid != "owner":
            ctx.add("entity", e.id, ("fields", fid), f"{fid!r} is a reserved name (system column); choose another name")
        if fid == "owner" and (e.child or raw.get("type") != "user"):
            ctx.add("entity", e.id, ("fields", fid, "type"),
                    "'owner' is the system owner column and must be of type user (not on a child entity)")
    for f in e.user_fields:
        p = ("fields", f.id)
        if f.encrypted:
            if f.type not in ("string", "text", "email", "phone", "url"):
                ctx.add("entity", e.id, p + ("encrypted",), f"only text fields can be encrypted, not a {f.type} field")
            for key in ("searchable", "unique", "index"):
                if getattr(f, key):
                    ctx.add("entity", e.id, p + (key,), f"an encrypted field cannot be {key}: the database only "
                                                         f"sees ciphertext")
        for key, types in TYPE_KEYS.items():
            value = getattr(f, key, None)
            kind = f.value_type if f.type == "computed" else f.type
            if value is not None and value is not False and value != () and kind not in types:
                ctx.add("entity", e.id, p + (key,), f"{key!r} does not apply to {'an' if kind[0] in 'aeiou' else 'a'} "
                                                    f"{kind} field")
        if f.precision is not None and f.scale is not None and f.scale > f.precision:
            ctx.add("entity", e.id, p + ("scale",), f"scale {f.scale} is greater than precision {f.precision}: "
                                                    f"a number cannot have more decimals than digits")
        if f.min is not None and f.max is not None and f.min > f.max:
            ctx.add("entity", e.id, p + ("min",), f"min {f.min} is greater than max {f.max}")
        if f.type == "link":
            if not f.to:
                ctx.add("entity", e.id, p, "a link field needs 'to: <entity>'")
            elif f.to not in ctx.entities and f.to not in ctx.broken:
                ctx.add("entity", e.id, p + ("to",), f"links to {f.to!r}, which is not an entity"
                                                     f"{suggest(f.to, ctx.names())}")
            elif f.to in ctx.entities and ctx.entities[f.to].child:
                ctx.add("entity", e.id, p + ("to",), f"{f.to!r} is a child entity (rows of a table) and cannot be linked to")
        if f.type == "table":
            if not f.of:
                ctx.add("entity", e.id, p, "a table field needs 'of: <child entity>'")
            elif f.of not in ctx.entities:
                if f.of not in ctx.broken:
                    ctx.add("entity", e.id, p + ("of",), f"{f.of!r} is not an entity{suggest(f.of, ctx.names())}")
            elif not ctx.entities[f.of].child:
                ctx.add("entity", e.id, p + ("of",), f"{f.of!r} must be declared with 'child: true' to be used as rows")
            elif f.of in child_users:
                ctx.add("entity", e.id, p + ("of",), f"{f.of!r} already holds the rows of {child_users[f.of]}; "
                                                     "a child entity belongs to one table field")
            else:
                child_users[f.of] = f"{e.id}.{f.id}"
            if e.child:
                ctx.add("entity", e.id, p, "a child entity cannot itself have table fields")
        if f.type in ("select", "multiselect") and not f.options:
            ctx.add("entity", e.id, p, f"a {f.type} field needs 'options'")
        if f.type == "computed" and not f.compute:
            ctx.add("entity", e.id, p, "a computed field needs 'compute: <expression>'")
        if f.type == "autonumber" and (not f.format or "#" not in f.format):
            ctx.add("entity", e.id, p + ("format",), "an autonumber field needs a format with a run of # for the counter, "
                                                     "e.g. 'CUS-{YYYY}-{#####}'")
        if f.type == "state" and not f.workflow:
            ctx.add("entity", e.id, p, "a state field needs 'workflow: <workflow id>'")
        if f.compute:
            ctx.expr("entity", e.id, p + ("compute",), f.compute, e)
            if f.type == "table":
                ctx.add("entity", e.id, p + ("compute",), "a table field cannot be computed")
        if isinstance(f.default, str) and rules.is_call_expression(f.default):
            ctx.expr("entity", e.id, p + ("default",), f.default, e)
        elif f.default is not None and f.options and f.type == "select" and f.default not in f.option_values:
            ctx.add("entity", e.id, p + ("default",), f"default {f.default!r} is not one of the options "
                                                      f"{', '.join(f.option_values)}{suggest(f.default, f.option_values)}")
        if f.pattern:
            try:
                re.compile(f.pattern)
            except re.error as err:
                ctx.add("entity", e.id, p + ("pattern",), f"not a valid regular expression: {err}")
        if f.renamed_from and f.renamed_from in e.fields:
            ctx.add("entity", e.id, p + ("renamed_from",), f"{f.renamed_from!r} still exists as a field; "
                                                          "a rename needs the old field removed")


def _check_entity_parts(ctx: _Ctx, e: Entity):
    for i, (cols, _unique) in enumerate(e.indexes):
        for c in cols:
            if c not in e.fields or not e.fields[c].stored:
                ctx.add("entity", e.id, ("indexes", i), f"index names {c!r}, which is not a stored field of {e.id}"
                                                        f"{suggest(c, list(e.fields))}")
    for i, r in enumerate(e.rules):
        ctx.expr("entity", e.id, ("rules", i, "check"), r.check, e)
        if r.when:
            ctx.expr("entity", e.id, ("rules", i, "when"), r.when, e)
        if r.field and r.field not in e.fields:
            ctx.add("entity", e.id, ("rules", i, "field"), f"{r.field!r} is not a field of {e.id}{suggest(r.field, list(e.fields))}")
    for c in e.list_columns:
        if c not in e.fields:
            ctx.add("entity", e.id, ("list", "columns"), f"{c!r} is not a field of {e.id}{suggest(c, list(e.fields))}")
    if e.list_sort:
        for part in e.list_sort.split(","):
            name = part.strip().lstrip("-")
            if name not in e.fields:
                ctx.add("entity", e.id, ("list", "sort"), f"{name!r} is not a field of {e.id}{suggest(name, list(e.fields))}")
    for i, group in enumerate((e.duplicates or {}).get("match", ())):
        for c in group:
            if c not in e.fields or not e.fields[c].stored:
                ctx.add("entity", e.id, ("duplicates", "match", i), f"{c!r} is not a stored field of {e.id}"
                                                                   f"{suggest(c, list(e.fields))}")
    if e.title:
        for name in TITLE_RX.findall(e.title):
            if name not in e.fields:
                ctx.add("entity", e.id, ("title",), f"the title names {name!r}, which is not a field of {e.id}"
                                                    f"{suggest(name, list(e.fields))}")


def _check_forms(ctx: _Ctx, forms: dict):
    for form in forms.values():
        e = ctx.entities.get(form.entity)
        if e is None:
            if form.entity not in ctx.broken:
                ctx.add("form", form.id, ("entity",), f"{form.entity!r} is not an entity{suggest(form.entity, list(ctx.entities))}")
            continue
        seen = set()
        for i, s in enumerate(form.sections):
            for j, fid in enumerate(s.fields):
                if fid not in e.fields:
                    ctx.add("form", form.id, ("sections", i, "fields", j),
                            f"{fid!r} is not a field of {e.id}{suggest(fid, list(e.fields))}")
                elif fid in seen:
                    ctx.add("form", form.id, ("sections", i, "fields", j), f"{fid!r} appears twice in the form")
                seen.add(fid)
            if s.visible_if:
                ctx.expr("form", form.id, ("sections", i, "visible_if"), s.visible_if, e)
        for fid, o in form.overrides.items():
            if fid not in e.fields:
                ctx.add("form", form.id, ("fields", fid), f"{fid!r} is not a field of {e.id}{suggest(fid, list(e.fields))}")
            for key in ("visible_if", "required_if"):
                if getattr(o, key):
                    ctx.expr("form", form.id, ("fields", fid, key), getattr(o, key), e)


def _check_actions(ctx, wf, path, actions, e):
    for i, a in enumerate(actions):
        p = path + (i,)
        if "set" in a:
            for fid, expr in a["set"].items():
                if fid not in e.fields:
                    ctx.add("workflow", wf.id, p + ("set", fid), f"{fid!r} is not a field of {e.id}{suggest(fid, list(e.fields))}")
                if isinstance(expr, str):
                    ctx.expr("workflow", wf.id, p + ("set", fid), expr, e)
        elif "create" in a:
            target = ctx.entities.get(a["create"])
            if target is None:
                ctx.add("workflow", wf.id, p + ("create",), f"{a['create']!r} is not an entity{suggest(a['create'], list(ctx.entities))}")
                continue
            for fid, expr in (a.get("values") or {}).items():
                if fid not in target.fields:
                    ctx.add("workflow", wf.id, p + ("values", fid), f"{fid!r} is not a field of {target.id}"
                                                                    f"{suggest(fid, list(target.fields))}")
                if isinstance(expr, str):
                    ctx.expr("workflow", wf.id, p + ("values", fid), expr, e, extra_names=_saved_names(actions[:i]))
            fid = a.get("link_back")
            if fid and fid not in e.fields:
                ctx.add("workflow", wf.id, p + ("link_back",), f"{fid!r} is not a field of {e.id}{suggest(fid, list(e.fields))}")
            name = a.get("save_as")
            if name and name in e.fields:
                ctx.add("workflow", wf.id, p + ("save_as",), f"{name!r} is a field of {e.id}; choose another name")
        elif "todo" in a:
            for key in ("assignee", "due"):
                expr = a["todo"].get(key)
                if expr:
                    ctx.expr("workflow", wf.id, p + ("todo", key), expr, e)


def _saved_names(actions):
    return {a["save_as"] for a in actions if isinstance(a, dict) and a.get("save_as")}


def _check_workflows(ctx: _Ctx, workflows: dict):
    for wf in workflows.values():
        e = ctx.entities.get(wf.entity)
        if e is None:
            if wf.entity not in ctx.broken:
                ctx.add("workflow", wf.id, ("entity",), f"{wf.entity!r} is not an entity{suggest(wf.entity, list(ctx.entities))}")
            continue
        f = e.fields.get(wf.field)
        if f is None:
            ctx.add("workflow", wf.id, ("field",), f"{wf.field!r} is not a field of {e.id}{suggest(wf.field, list(e.fields))}")
        elif f.type != "state" or f.workflow != wf.id:
            ctx.add("workflow", wf.id, ("field",), f"{e.id}.{wf.field} must be declared as "
                                                   f"{{type: state, workflow: {wf.id}}}")
        states = wf.states
        if wf.initial not in states:
            ctx.add("workflow", wf.id, ("initial",), f"initial state {wf.initial!r} is not one of the states "
                                                     f"{', '.join(states)}{suggest(wf.initial, list(states))}")
        for sid, s in states.items():
            _check_actions(ctx, wf, ("states", sid, "on_enter"), s.on_enter, e)
            _check_actions(ctx, wf, ("states", sid, "on_leave"), s.on_leave, e)
            for key, mapping in (("set", s.set), ("suggest", s.suggest)):
                for fid, expr in mapping.items():
                    if fid not in e.fields:
                        ctx.add("workflow", wf.id, ("states", sid, key, fid), f"{fid!r} is not a field of {e.id}")
                    elif isinstance(expr, str):
                        ctx.expr("workflow", wf.id, ("states", sid, key, fid), expr, e)
        for tid, t in wf.transitions.items():
            p = ("transitions", tid)
            for src in t.sources:
                if src != "*" and src not in states:
                    ctx.add("workflow", wf.id, p + ("from",), f"{src!r} is not a state{suggest(src, list(states))}")
            if t.to not in states:
                ctx.add("workflow", wf.id, p + ("to",), f"{t.to!r} is not a state{suggest(t.to, list(states))}")
            if t.when:
                ctx.expr("workflow", wf.id, p + ("when",), t.when, e)
            for fid in t.require:
                if fid not in e.fields:
                    ctx.add("workflow", wf.id, p + ("require",), f"{fid!r} is not a field of {e.id}{suggest(fid, list(e.fields))}")
            _check_actions(ctx, wf, p + ("actions",), t.actions, e)
            if t.approval:
                if t.approval.reject_to and t.approval.reject_to not in states:
                    ctx.add("workflow", wf.id, p + ("approval", "reject_to"), f"{t.approval.reject_to!r} is not a state")
                for i, st in enumerate(t.approval.steps):
                    sp = p + ("approval", "steps", i)
                    if not (st.role or st.user_field or st.rule):
                        ctx.add("workflow", wf.id, sp, "an approval step needs a role, a user_field or a rule")
                    if st.mode == "quorum" and not st.quorum:
                        ctx.add("workflow", wf.id, sp, "mode quorum needs 'quorum: N'")
                    if st.when:
                        ctx.expr("workflow", wf.id, sp + ("when",), st.when, e)
                    if st.rule:
                        ctx.expr("workflow", wf.id, sp + ("rule",), st.rule, e)
                    if st.user_field:
                        ctx.expr("workflow", wf.id, sp + ("user_field",), st.user_field, e)
        # reachability from the initial state
        if wf.initial in states:
            seen, todo = {wf.initial}, deque([wf.initial])
            while todo:
                cur = todo.popleft()
                for t in wf.transitions.values():
                    if t.applies_from(cur) and t.to in states and t.to not in seen:
                        seen.add(t.to)
                        todo.append(t.to)
                    if t.approval and t.approval.reject_to and t.applies_from(cur) and t.approval.reject_to not in seen:
                        seen.add(t.approval.reject_to)
                        todo.append(t.approval.reject_to)
            for sid in states:
                if sid not in seen:
                    ctx.add("workflow", wf.id, ("states", sid), f"state {sid!r} cannot be reached from the initial "
                                                                f"state {wf.initial!r}")


def check_references(entities: dict, forms: dict, workflows: dict, docs: dict, broken: set):
    ctx = _Ctx(entities, docs)
    ctx.broken = set(broken)
    child_users: dict[str, str] = {}
    for e in entities.values():
        _check_fields(ctx, e, child_users)
        _check_entity_parts(ctx, e)
    for e in entities.values():
        if e.child and e.id not in child_users:
            ctx.add("entity", e.id, ("child",), "a child entity must be used by a table field ('of: ...') of another entity")
    _check_forms(ctx, forms)
    _check_workflows(ctx, workflows)
    for e in entities.values():
        for f in e.fields.values():
            if f.type == "state" and f.workflow and f.workflow not in workflows:
                ctx.add("entity", e.id, ("fields", f.id, "workflow"), f"{f.workflow!r} is not a workflow"
                                                                       f"{suggest(f.workflow, list(workflows))}")
    out = {}
    for eid, e in entities.items():
        if e.child and eid in child_users:
            e = dataclasses.replace(e, parent=child_users[eid].split(".")[0])
        out[eid] = e
    return out, ctx.problems
