"""Role and module ids must be ones the packs declare (pack.yaml `roles:` and `modules:` of the
config folder's own pack and the packs installed beside it). A typo in a role silently locks
everyone out of a transition; a typo in a module silently makes a new navigation group."""
from __future__ import annotations

from .errors import Problem
from .schemas import suggest

ALWAYS = {"admin"}      # administrators exist in every installation (flask crm user create --role admin)


def check_pack_ids(entities: dict, workflows: dict, docs: dict, roles: set, modules: set) -> list[Problem]:
    """Problems for workflow roles (transitions, approval steps) and entity modules that no pack
    declares. Empty `roles` / `modules` (a folder whose own pack declares none) skip that check."""
    out: list[Problem] = []

    def add(kind, obj_id, path, message):
        doc = docs.get((kind, obj_id))
        out.append(doc.problem(path, message) if doc is not None
                   else Problem(kind, None, None, ".".join(map(str, path)), message))

    if roles:
        known = roles | ALWAYS
        for wf in workflows.values():
            for tid, t in wf.transitions.items():
                for i, role in enumerate(t.roles):
                    if role not in known:
                        add("workflow", wf.id, ("transitions", tid, "roles", i),
                            f"{role!r} is not a role of the packs{suggest(role, sorted(roles))}")
                for i, step in enumerate(t.approval.steps if t.approval else ()):
                    if step.role and step.role not in known:
                        add("workflow", wf.id, ("transitions", tid, "approval", "steps", i, "role"),
                            f"{step.role!r} is not a role of the packs{suggest(step.role, sorted(roles))}")
    if modules:
        for e in entities.values():
            if e.module and e.module not in modules:
                add("entity", e.id, ("module",),
                    f"{e.module!r} is not a module of the packs (pack.yaml `modules:`){suggest(e.module, sorted(modules))}")
    return out
