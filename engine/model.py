"""The config as frozen dataclasses: what the loader produces and every builder consumes."""
from __future__ import annotations

from functools import cached_property
from dataclasses import dataclass, field
from types import MappingProxyType

SYSTEM_COLUMNS = ("id", "version", "created_at", "created_by", "updated_at", "updated_by", "owner", "deleted_at")
RESERVED = frozenset(SYSTEM_COLUMNS) | {"parent_id", "idx", "q", "sort", "page", "per_page", "fields"}

NUMERIC_TYPES = frozenset({"integer", "decimal", "money", "percent"})
TEXT_TYPES = frozenset({"string", "text", "email", "phone", "url", "select", "autonumber", "state"})


def label_of(label: dict | None, lang: str = "en", fallback: str = "") -> str:
    if not label:
        return fallback
    if lang.startswith("zh"):
        return label.get("zh") or label.get("en") or fallback
    return label.get("en") or label.get("zh") or fallback


def norm_label(value, fallback: str) -> dict:
    if value is None:
        text = fallback.replace("_", " ").capitalize()
        return {"en": text, "zh": text}
    if isinstance(value, str):
        return {"en": value, "zh": value}
    return {"en": value.get("en", fallback), "zh": value.get("zh") or value.get("en", fallback)}


@dataclass(frozen=True)
class Option:
    value: str
    label: dict
    color: str | None = None


@dataclass(frozen=True, eq=False)
class Field:
    id: str
    type: str
    label: dict
    entity: str = ""
    required: bool = False
    default: object = None
    unique: bool = False
    index: bool = False
    searchable: bool = False
    readonly: bool = False
    in_list: bool = False
    due: bool = False                  # a deadline: lists highlight it when past on an open record
    sensitive: bool = False            # the audit trail records that it changed, never its values
    encrypted: bool = False            # stored AES-GCM (engine/crypto.py)
    currency: str | None = None        # money: an ISO 4217 code shown with the amount
    max_length: int | None = None
    min_length: int | None = None
    pattern: str | None = None
    min: float | None = None
    max: float | None = None
    precision: int | None = None
    scale: int | None = None
    options: tuple = ()
    to: str | None = None
    of: str | None = None
    compute: str | None = None
    result: str | None = None
    format: str | None = None
    workflow: str | None = None
    renamed_from: str | None = None
    help: dict | None = None
    demo: object = None
    system: bool = False
    accept: tuple = ()
    max_size_mb: float | None = None
    filter: tuple = ()                 # link: engine.linkopts.LinkFilter conditions on the chosen record
    fetch: tuple = ()                  # link: ((field here, field of the chosen record), …) copied on pick
    display: tuple = ()                # link: fields of the chosen record shown beside its title

    @cached_property
    def value_type(self) -> str:
        """The type of the stored value (a computed field stores its result type)."""
        if self.type == "computed":
            return self.result or "decimal"
        return self.type

    @cached_property
    def stored(self) -> bool:
        return self.type != "table"

    @cached_property
    def computed(self) -> bool:
        return self.compute is not None

    @cached_property
    def writable(self) -> bool:
        """Can a client set this field directly?"""
        return not (self.system or self.computed or self.readonly
                    or self.type in ("autonumber", "state")) or self.id == "owner"

    @cached_property
    def option_values(self) -> tuple:
        return tuple(o.value for o in self.options)

    def label_text(self, lang="en") -> str:
        return label_of(self.label, lang, self.id)


@dataclass(frozen=True)
class Rule:
    name: str
    check: str
    message: dict
    field: str | None = None
    when: str | None = None
    source: str = ""


@dataclass(frozen=True, eq=False)
class Entity:
    id: str
    label: dict
    fields: MappingProxyType
    plural: dict | None = None
    module: str | None = None
    title: str | None = None
    description: dict | None = None    # shown under the list page's heading
    child: bool = False
    indexes: tuple = ()          # tuple of (fields tuple, unique bool)
    rules: tuple = ()
    list_columns: tuple = ()
    list_sort: str | None = None
    per_page: int = 50
    file: str = ""
    order: int = 0
    demo_weight: float | None = None
    parent: str | None = None    # for a child entity: the entity whose table field holds it
    summary: tuple = ()          # key fields shown beside the title (inbox rows, board cards)
    todo: MappingProxyType | None = None   # a to-do list: {assignee, due, status, done} (engine/daily.py)
    board_sum: str | None = None           # the money field a board column adds up (default: the first)
    duplicates: MappingProxyType | None = None  # import: {match: [[field, …], …], on_duplicate} (engine/importer.py)

    @property
    def table_name(self) -> str:
        return f"e_{self.id}"

    def label_text(self, lang="en") -> str:
        return label_of(self.label, lang, self.id)

    def plural_text(self, lang="en") -> str:
        return label_of(self.plural or self.label, lang, self.id)

    # Worked out once per entity (an entity is immutable; every write asks for these lists).
    @cached_property
    def stored_fields(self):
        return tuple(f for f in self.fields.values() if f.stored)

    @cached_property
    def user_fields(self):
        """Fields declared in config (not system columns), in order."""
        return tuple(f for f in self.fields.values() if not f.system)

    @cached_property
    def table_fields(self):
        return tuple(f for f in self.fields.values() if f.type == "table")

    @property
    def searchable_fields(self):
        found = [f for f in self.fields.values() if f.searchable]
        if not found and "name" in self.fields:
            found = [self.fields["name"]]
        return found

    @property
    def state_field(self):
        return next((f for f in self.fields.values() if f.type == "state"), None)

    def columns_for_list(self):
        if self.list_columns:
            return [self.fields[c] for c in self.list_columns if c in self.fields]
        cols = [f for f in self.user_fields if f.in_list and f.stored]
        if not cols:
            cols = [f for f in self.user_fields if f.stored and f.type not in ("text", "attachment", "multiselect")][:5]
        return cols


@dataclass(frozen=True)
class Section:
    fields: tuple
    title: dict | None = None
    columns: int = 1
    collapsed: bool = False
    visible_if: str | None = None


@dataclass(frozen=True)
class FieldOverride:
    visible_if: str | None = None
    required_if: str | None = None
    readonly: bool = False
    placeholder: dict | None = None
    help: dict | None = None


@dataclass(frozen=True, eq=False)
class Form:
    id: str
    entity: str
    sections: tuple
    overrides: MappingProxyType = field(default_factory=lambda: MappingProxyType({}))
    label: dict | None = None
    file: str = ""
    generated: bool = False


@dataclass(frozen=True, eq=False)
class State:
    id: str
    label: dict
    color: str | None = None
    final: bool = False
    paused: bool = False
    set: MappingProxyType = field(default_factory=lambda: MappingProxyType({}))
    # values proposed on entering the state: applied only where the field is empty or still holds
    # what the previous state proposed, so a value the user typed is kept
    suggest: MappingProxyType = field(default_factory=lambda: MappingProxyType({}))
    on_enter: tuple = ()
    on_leave: tuple = ()
    sla: MappingProxyType | None = None

    def label_text(self, lang="en"):
        return label_of(self.label, lang, self.id)


@dataclass(frozen=True)
class ApprovalStep:
    name: str
    label: dict
    role: str | None = None
    user_field: str | None = None
    rule: str | None = None
    mode: str = "any"
    quorum: int | None = None
    when: str | None = None
    escalate_after: str | None = None
    escalate_to: str | None = None


@dataclass(frozen=True)
class Approval:
    steps: tuple
    reject_to: str | None = None
    no_self_approval: bool = False


@dataclass(frozen=True, eq=False)
class Transition:
    id: str
    label: dict
    sources: tuple               # state ids, or ("*",) for any
    to: str
    roles: tuple = ()
    when: str | None = None
    when_message: dict | None = None
    require: tuple = ()
    comment: str = "optional"
    actions: tuple = ()
    approval: Approval | None = None

    def applies_from(self, state: str | None) -> bool:
        return "*" in self.sources or state in self.sources

    def label_text(self, lang="en"):
        return label_of(self.label, lang, self.id)


@dataclass(frozen=True, eq=False)
class Workflow:
    id: str
    entity: str
    field: str
    initial: str
    states: MappingProxyType
    transitions: MappingProxyType
    label: dict | None = None
    file: str = ""
    version: str = ""            # content hash of the definition


@dataclass(frozen=True)
class Pack:
    id: str
    version: str
    label: dict
    description: dict | None = None
    depends: tuple = ()
    modules: tuple = ()          # tuple of (id, label)
    roles: tuple = ()            # tuple of (id, label)


@dataclass(frozen=True)
class Config:
    directory: str
    entities: MappingProxyType
    forms: MappingProxyType
    workflows: MappingProxyType
    pack: Pack | None = None
    digest: str = ""
    automation: object = None          # engine.automation.spec.AutomationConfig (calendars, SLAs, …)
    access: object = None              # engine.access.AccessSpec (row scopes, hidden fields)
    home: object = None                # engine.daily.HomeSpec (what each role's home page shows)
    packs: tuple = ()                  # every Pack of the folder: pack.yaml first, then packs/*.yaml (installed)
    reports: MappingProxyType = field(default_factory=lambda: MappingProxyType({}))     # reportspec.Report by id
    dashboards: MappingProxyType = field(default_factory=lambda: MappingProxyType({}))  # reportspec.Dashboard by id
    segments: MappingProxyType = field(default_factory=lambda: MappingProxyType({}))    # segments.Segment / grading.Grading by id

    @property
    def auto(self):
        """The automation config (calendars, SLAs, assignment, triggers); empty when none is set."""
        if self.automation is None:
            from .automation.spec import AutomationConfig
            return AutomationConfig()
        return self.automation

    def entity(self, name: str) -> Entity:
        return self.entities[name]

    def form_for(self, entity: str) -> Form | None:
        return next((f for f in self.forms.values() if f.entity == entity), None)

    def workflow_for(self, entity: str, field: str | None = None) -> Workflow | None:
        return next((w for w in self.workflows.values()
                     if w.entity == entity and (field is None or w.field == field)), None)

    def links_to(self, entity: str):
        """(entity, field) pairs of every link field pointing at `entity`."""
        return [(e, f) for e in self.entities.values() for f in e.fields.values()
                if f.type == "link" and f.to == entity]

    @property
    def top_entities(self):
        return [e for e in self.entities.values() if not e.child]
