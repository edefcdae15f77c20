"""Studio: a transition's rules in the workflow designer — roles, require, when / when_message,
comment and an approval with steps — written as section 6 of docs/config-reference.md has them.

Keys the designer does not show (actions, a step's `rule`, `when`, `quorum`, escalation) are kept.
"""
from __future__ import annotations

import re

from flask_babel import gettext as _

from .studio_yaml import EditError, label

COMMENT = ("optional", "required", "none")
MODES = ("any", "all")
EXTRA_STEPS = 1         # blank step rows offered below an approval's steps


def role_choices(pack_roles, used=()) -> list[tuple[str, object]]:
    """[(role id, label)]: the packs' roles, then any other role already named (kept, shown)."""
    out = [(r, lbl) for r, lbl in pack_roles if r != "admin"]
    known = {r for r, _l in out}
    out += [(r, _("Administrator") if r == "admin" else None) for r in dict.fromkeys(used) if r not in known]
    return out


def user_field_choices(entity: dict) -> list[str]:
    """User fields of the entity (and the system owner) and their managers: `owner`, `owner.manager`."""
    names = [] if entity.get("child") else ["owner"]
    names += [f for f, s in (entity.get("fields") or {}).items()
              if isinstance(s, dict) and s.get("type") == "user" and f not in names]
    return [x for f in names for x in (f, f + ".manager")]


def _list(form, key: str) -> list[str]:
    """Checked values; a value may itself be comma-separated (as an API client would send it)."""
    return [p.strip() for v in form.getlist(key) for p in v.split(",") if p.strip()]


def _steps(form, old_steps: list) -> list[dict]:
    count = form.get("step_count", "0")
    count = int(count) if count.isdigit() and int(count) < 50 else 0
    out = []
    for i in range(count):
        old = dict(old_steps[i]) if i < len(old_steps) and isinstance(old_steps[i], dict) else {}
        get = lambda k: (form.get(f"step_{i}_{k}") or "").strip()   # noqa: E731
        if form.get(f"step_{i}_remove"):
            continue
        name, who, mode = get("name"), get("who"), get("mode")
        en, zh = get("label_en"), get("label_zh")
        if not (old or name or who or en or zh):
            continue                                   # a blank row left blank
        step = {k: v for k, v in old.items() if k not in ("name", "label", "role", "user_field", "mode")}
        head = {}
        if name:
            head["name"] = name
        if en or zh:
            head["label"] = label(en, zh, name or f"step_{i + 1}")
        if who.startswith("role:"):
            head["role"] = who[5:]
        elif who.startswith("user_field:"):
            head["user_field"] = who[11:]
        if mode and mode != "any":
            head["mode"] = mode
        if mode != "quorum":
            step.pop("quorum", None)
        out.append({**head, **step})
    return out


def apply(t: dict, form) -> dict:
    """The transition `t` with the rules and approval from the designer's form."""
    t = dict(t)
    for key, values in (("roles", _list(form, "roles")), ("require", _list(form, "require"))):
        if values:
            t[key] = list(dict.fromkeys(values))
        else:
            t.pop(key, None)
    guard = (form.get("when") or "").strip()
    if guard:
        t["when"] = guard
    else:
        t.pop("when", None)
    en, zh = (form.get("when_message_en") or "").strip(), (form.get("when_message_zh") or "").strip()
    if (en or zh) and not guard:
        raise EditError(_("A message for the guard needs a guard."), "when_message")
    if en or zh:
        t["when_message"] = label(en, zh, zh)
    else:
        t.pop("when_message", None)
    comment = form.get("comment", "")
    if comment in COMMENT:
        t["comment"] = comment
    elif comment == "":
        t.pop("comment", None)
    else:
        raise EditError(_("Choose whether a comment is optional, required or not offered."), "comment")
    if form.get("approval"):
        old = dict(t.get("approval") or {})
        appr = {k: v for k, v in old.items() if k not in ("reject_to", "no_self_approval", "steps")}
        reject = (form.get("reject_to") or "").strip()
        head = {}
        if reject:
            head["reject_to"] = reject
        if form.get("no_self_approval"):
            head["no_self_approval"] = True
        steps = _steps(form, list(old.get("steps") or []))
        if not steps:
            raise EditError(_("An approval needs at least one step."), "approval")
        t["approval"] = {**head, "steps": steps, **appr}
    else:
        t.pop("approval", None)
    order = ("from", "to", "label", "roles", "require", "when", "when_message", "comment", "approval")
    return {**{k: t[k] for k in order if k in t}, **{k: v for k, v in t.items() if k not in order}}


PROBLEM_KEY = re.compile(r"transitions\.(?P<tid>[a-z][a-z0-9_]*)\.(?P<key>[a-z_]+)(?:\.steps\.(?P<step>\d+))?")


def split_problems(problems: list[str]) -> tuple[dict, list[str]]:
    """({transition id: {input: message}}, the rest): a step's message goes to `step_<n>`."""
    errors: dict = {}
    rest = []
    for p in problems:
        m = PROBLEM_KEY.search(p)
        if not m:
            rest.append(p)
            continue
        key = f"step_{m['step']}" if m["key"] == "approval" and m["step"] is not None else m["key"]
        mine = errors.setdefault(m["tid"], {})
        msg = p[m.start("key"):]
        mine[key] = (mine[key] + " " + msg) if key in mine else msg
    return errors, rest
