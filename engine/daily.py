"""Daily work: the entity keys `summary`, `todo` and `board`, and the pack's `home.yaml`.

`todo:` marks an entity as a to-do list (whose item, due when, open or done), so the home page and
the inbox find a pack's tasks without naming them. `home.yaml` says which lists and key figures
each role's home page shows (docs/config-reference.md, "Home pages").
"""
from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType

from . import rules
from .errors import Problem, RuleError
from .model import NUMERIC_TYPES, norm_label
from .query import OPS

BUILTIN_BLOCKS = ("tasks", "approvals", "requests", "recent")
DEFAULT_SHOW = BUILTIN_BLOCKS


@dataclass(frozen=True)
class HomeList:
    id: str
    label: dict
    entity: str
    date: str | None = None
    days: int = 7
    mine: str | None = None          # the user field that must be the signed-in user, or None
    filters: tuple = ()              # ((field, op, value or call expression), ...)
    sort: str | None = None
    limit: int = 10


@dataclass(frozen=True)
class Figure:
    id: str
    label: dict
    entity: str
    sum: str | None = None           # None: a count
    mine: str | None = None
    filters: tuple = ()


@dataclass(frozen=True)
class RoleHome:
    show: tuple = DEFAULT_SHOW
    figures: tuple = ()


@dataclass(frozen=True)
class HomeSpec:
    lists: MappingProxyType = field(default_factory=lambda: MappingProxyType({}))
    figures: MappingProxyType = field(default_factory=lambda: MappingProxyType({}))
    roles: MappingProxyType = field(default_factory=lambda: MappingProxyType({}))
    default: RoleHome = RoleHome()
    file: str = ""

    def for_roles(self, roles, is_admin: bool = False) -> RoleHome:
        """The home of a user with these roles: each listed role's blocks and figures, in order,
        without repeats; `default` when none of the roles is listed."""
        names = list(roles or ())
        if is_admin and "admin" not in names:
            names.insert(0, "admin")
        found = [self.roles[r] for r in names if r in self.roles]
        if not found:
            return self.default
        show = tuple(dict.fromkeys(b for h in found for b in h.show))
        figures = tuple(dict.fromkeys(f for h in found for f in h.figures))
        return RoleHome(show=show, figures=figures)


# ---- entity keys ------------------------------------------------------------------------
def entity_keys(raw: dict) -> dict:
    """The Entity constructor arguments of the daily-work keys of an entity document."""
    todo = raw.get("todo")
    return {"summary": tuple(raw.get("summary", ())),
            "todo": MappingProxyType(dict(todo)) if todo else None,
            "board_sum": (raw.get("board") or {}).get("sum")}


def _values_of(workflows, f) -> tuple | None:
    if f.value_type == "select":
        return f.option_values
    if f.value_type == "state":
        wf = workflows.get(f.workflow) if f.workflow else None
        return tuple(wf.states) if wf else None
    return None


def done_values(entity, workflows) -> tuple:
    """The status values that close an item of a to-do entity: `todo.done`, else the final states."""
    todo = entity.todo or {}
    if todo.get("done"):
        return tuple(todo["done"])
    f = entity.fields.get(todo.get("status") or "")
    if f is not None and f.value_type == "state":
        wf = workflows.get(f.workflow) if f.workflow else None
        return tuple(s.id for s in wf.states.values() if s.final) if wf else ()
    return ()


def open_values(entity, workflows) -> tuple | None:
    """The status values of an open item (None: the entity has no status, every item is open)."""
    todo = entity.todo or {}
    f = entity.fields.get(todo.get("status") or "")
    if f is None:
        return None
    allowed = _values_of(workflows, f) or ()
    done = set(done_values(entity, workflows))
    return tuple(v for v in allowed if v not in done)


def check_entities(entities: dict, workflows: dict, docs_by_id: dict) -> list[Problem]:
    from .schemas import suggest
    out = []
    for e in entities.values():
        doc = docs_by_id.get(("entity", e.id))
        if doc is None:
            continue

        def need(path, fid, kinds, what):
            f = e.fields.get(fid)
            if f is None:
                out.append(doc.problem(path, f"{e.id} has no field {fid!r}{suggest(fid, list(e.fields))}"))
                return None
            if kinds and f.value_type not in kinds:
                out.append(doc.problem(path, f"{fid!r} is a {f.value_type} field; {what}"))
                return None
            return f

        for i, fid in enumerate(e.summary):
            f = need(("summary", i), fid, None, "")
            if f is not None and not f.stored:
                out.append(doc.problem(("summary", i), f"{fid!r} is a table; a summary shows single values"))
        if e.board_sum:
            need(("board", "sum"), e.board_sum, NUMERIC_TYPES, "a board adds up a number or money field")
        if e.todo:
            need(("todo", "assignee"), e.todo["assignee"], ("user",), "`assignee` must be a user field")
            need(("todo", "due"), e.todo["due"], ("date", "datetime"), "`due` must be a date or datetime field")
            status = None
            if e.todo.get("status"):
                status = need(("todo", "status"), e.todo["status"], ("select", "state"),
                              "`status` must be a select or state field")
            if e.todo.get("done") and not e.todo.get("status"):
                out.append(doc.problem(("todo", "done"), "`done` needs `status`: the field whose values it names"))
            if status is not None:
                allowed = _values_of(workflows, status) or ()
                for i, v in enumerate(e.todo.get("done") or ()):
                    if allowed and v not in allowed:
                        out.append(doc.problem(("todo", "done", i), f"{v!r} is not a value of {status.id}; it has "
                                                                   f"{', '.join(allowed)}{suggest(v, allowed)}"))
                if status.value_type == "select" and not e.todo.get("done"):
                    out.append(doc.problem(("todo",), f"`done` is required with a select status: the values of "
                                                      f"{status.id} that close an item ({', '.join(allowed)})"))
    return out


# ---- home.yaml --------------------------------------------------------------------------
def _filters(raw) -> tuple:
    out = []
    for key, value in (raw or {}).items():
        name, _, op = key.partition("__")
        out.append((name, op or "eq", value))
    return tuple(out)


def _mine(raw) -> str | None:
    if raw is True:
        return ""                      # resolved later: the to-do assignee, else owner
    return raw or None


def build_home(doc) -> HomeSpec:
    raw = doc.data
    lists = {k: HomeList(id=k, label=norm_label(v.get("label"), k), entity=v["entity"], date=v.get("date"),
                         days=v.get("days", 7), mine=_mine(v.get("mine")), filters=_filters(v.get("filter")),
                         sort=v.get("sort"), limit=v.get("limit", 10))
             for k, v in (raw.get("lists") or {}).items()}
    figures = {k: Figure(id=k, label=norm_label(v.get("label"), k), entity=v["entity"], sum=v.get("sum"),
                         mine=_mine(v.get("mine")), filters=_filters(v.get("filter")))
               for k, v in (raw.get("figures") or {}).items()}
    roles = {r: RoleHome(show=tuple(v.get("show", DEFAULT_SHOW)), figures=tuple(v.get("figures", ())))
             for r, v in (raw.get("roles") or {}).items()}
    default = roles.pop("default", RoleHome())
    return HomeSpec(lists=MappingProxyType(lists), figures=MappingProxyType(figures),
                    roles=MappingProxyType(roles), default=default, file=doc.file)


def merge_homes(specs: list) -> tuple[HomeSpec, list[Problem]]:
    """One HomeSpec from the folder's home.yaml and those of packs installed beside it
    (home/<pack>.yaml), given as [(spec, doc)]: lists and figures side by side (one id defined
    differently twice is a problem), a role listed in several files sees every file's blocks, and
    `default` comes from the first file (the folder's own)."""
    if not specs:
        return HomeSpec(), []
    if len(specs) == 1:
        return specs[0][0], []
    problems: list[Problem] = []
    lists: dict = {}
    figures: dict = {}
    roles: dict = {}
    for spec, doc in specs:
        for kind, bucket, mine in (("lists", lists, spec.lists), ("figures", figures, spec.figures)):
            for key, item in mine.items():
                if key in bucket and bucket[key] != item:
                    problems.append(doc.problem((kind, key), f"{kind[:-1]} {key!r} is also defined, differently, "
                                                             f"by another pack's home file"))
                    continue
                bucket[key] = item
        for role, home in spec.roles.items():
            was = roles.get(role)
            roles[role] = home if was is None else RoleHome(
                show=tuple(dict.fromkeys(was.show + home.show)), figures=tuple(dict.fromkeys(was.figures + home.figures)))
    first = specs[0][0]
    return HomeSpec(lists=MappingProxyType(lists), figures=MappingProxyType(figures), roles=MappingProxyType(roles),
                    default=first.default, file=first.file), problems


def resolve_mine(entity, mine: str | None) -> str | None:
    """`mine: true` means the to-do assignee of a to-do entity, else the owner."""
    if mine is None:
        return None
    if mine == "":
        return (entity.todo or {}).get("assignee") or "owner"
    return mine


def check_home(spec: HomeSpec, doc, entities: dict, roles: set) -> list[Problem]:
    from .schemas import suggest
    out = []

    def entity_of(path, eid):
        e = entities.get(eid)
        if e is None or e.child:
            out.append(doc.problem(path, f"{eid!r} is not an entity{suggest(eid, list(entities))}"))
        return e if e is not None and not e.child else None

    def field_of(path, e, fid, kinds, what):
        f = e.fields.get(fid)
        if f is None or not f.stored:
            out.append(doc.problem(path, f"{e.id} has no field {fid!r}{suggest(fid, list(e.fields))}"))
            return None
        if kinds and f.value_type not in kinds:
            out.append(doc.problem(path, f"{e.id}.{fid} is a {f.value_type} field; {what}"))
        return f

    def filters(section, key, e, items):
        for name, op, value in items:
            path = (section, key, "filter", f"{name}__{op}" if op != "eq" else name)
            if field_of(path, e, name, None, "") is None:
                continue
            if op not in OPS:
                out.append(doc.problem(path, f"unknown operator {op!r}; use one of {', '.join(OPS)}"
                                             f"{suggest(op, OPS)}"))
            if isinstance(value, str) and "(" in value:
                try:
                    rules.parse(value)
                except RuleError as err:
                    out.append(doc.problem(path, f"cannot read {value!r}: {err.message}"))

    def mine(section, key, e, value):
        fid = resolve_mine(e, value)
        if fid is not None:
            field_of((section, key, "mine"), e, fid, ("user",), "`mine` names a user field")

    for key, lst in spec.lists.items():
        e = entity_of(("lists", key, "entity"), lst.entity)
        if e is None:
            continue
        if lst.date:
            field_of(("lists", key, "date"), e, lst.date, ("date", "datetime"), "`date` must be a date field")
        mine("lists", key, e, lst.mine)
        filters("lists", key, e, lst.filters)
        for part in (lst.sort or "").split(","):
            name = part.strip().lstrip("-+")
            if name:
                field_of(("lists", key, "sort"), e, name, None, "")
    for key, fig in spec.figures.items():
        e = entity_of(("figures", key, "entity"), fig.entity)
        if e is None:
            continue
        if fig.sum:
            field_of(("figures", key, "sum"), e, fig.sum, NUMERIC_TYPES, "`sum` adds up a number or money field")
        mine("figures", key, e, fig.mine)
        filters("figures", key, e, fig.filters)
    blocks = set(BUILTIN_BLOCKS) | set(spec.lists)
    for role, home in [("default", spec.default), *spec.roles.items()]:
        if role != "default" and roles and role not in roles and role != "admin":
            out.append(doc.problem(("roles", role), f"{role!r} is not a role of the pack{suggest(role, roles)}"))
        for i, b in enumerate(home.show):
            if b not in blocks:
                out.append(doc.problem(("roles", role, "show", i),
                                       f"{b!r} is neither a list of this file nor one of {', '.join(BUILTIN_BLOCKS)}"
                                       f"{suggest(b, blocks)}"))
        for i, f in enumerate(home.figures):
            if f not in spec.figures:
                out.append(doc.problem(("roles", role, "figures", i),
                                       f"{f!r} is not a figure of this file{suggest(f, list(spec.figures))}"))
    return out


def filter_value(value, user_id=None):
    """A filter value of home.yaml as the list query takes it: call expressions (`today()`,
    `add_days(today(), 30)`) are evaluated now, booleans and numbers become text."""
    if rules.is_call_expression(value):
        value = rules.evaluate(value, {}, user_id, rule="home filter")
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)
