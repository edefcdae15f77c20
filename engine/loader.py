"""Read a config folder into a checked, frozen Config; report every problem of every file at once."""
from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from types import MappingProxyType

from . import schemas, yamlio
from .errors import ConfigInvalid, Problem
from .model import (Approval, ApprovalStep, Config, Entity, Field, FieldOverride, Form, Option, Pack,
                    Rule, Section, State, Transition, Workflow, norm_label)
from . import daily
from . import extends
from . import linkopts
from .access import build_access, check_access, merge_access
from .automation import spec as automation_spec
from .packrefs import check_pack_ids
from .refcheck import check_references
from . import reportspec
from . import segments as segmentspec

SYSTEM_FIELDS = (
    ("id", "integer", {"en": "ID", "zh": "编号"}),
    ("version", "integer", {"en": "Version", "zh": "版本"}),
    ("created_at", "datetime", {"en": "Created at", "zh": "创建时间"}),
    ("created_by", "user", {"en": "Created by", "zh": "创建人"}),
    ("updated_at", "datetime", {"en": "Updated at", "zh": "更新时间"}),
    ("updated_by", "user", {"en": "Updated by", "zh": "更新人"}),
    ("deleted_at", "datetime", {"en": "Deleted at", "zh": "删除时间"}),
)
OWNER_LABEL = {"en": "Owner", "zh": "负责人"}
FOLDERS = (("entities", "entity"), ("forms", "form"), ("workflows", "workflow"), ("calendars", "calendar"),
           ("slas", "sla"), ("assignments", "assignment"), ("automations", "automation"),
           ("reports", "report"), ("dashboards", "dashboard"), ("segments", "segment"))


def _read_documents(root: Path, problems: list[Problem]):
    docs = []  # (kind, Document)
    manifest = root / "pack.yaml"
    if manifest.exists():
        docs.append(("pack", manifest))
    if (root / "packs").is_dir():  # manifests of packs installed beside the folder's own (flask crm pack)
        docs += [("pack", p) for p in sorted((root / "packs").iterdir()) if p.suffix in (".yaml", ".yml")]
    for kind in ("access", "home"):   # the folder's own file, then those of packs installed beside it
        if (root / f"{kind}.yaml").exists():
            docs.append((kind, root / f"{kind}.yaml"))
        if (root / kind).is_dir():
            docs += [(kind, p) for p in sorted((root / kind).iterdir()) if p.suffix in (".yaml", ".yml")]
    for folder, kind in FOLDERS:
        d = root / folder
        if d.is_dir():
            docs += [(kind, p) for p in sorted(d.iterdir()) if p.suffix in (".yaml", ".yml")]
    out, parsed = [], []
    for kind, path in docs:
        shown = str(path)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            problems.append(Problem(shown, None, None, "", f"cannot read the file: {e}"))
            continue
        doc, errs = yamlio.load(text, shown)
        problems += errs
        if doc is None:
            continue
        if not isinstance(doc.data, dict):
            problems.append(doc.problem((), f"a {kind} file must be a mapping of keys, not {type(doc.data).__name__}"))
            continue
        parsed.append((kind, doc))
    for kind, doc in extends.merge(parsed, problems):
        errs = schemas.check(doc, kind)
        problems += errs
        out.append((kind, doc, not errs))
    return out


def _field(entity: str, fid: str, raw: dict) -> Field:
    opts = []
    for o in raw.get("options", ()):
        if isinstance(o, str):
            opts.append(Option(o, norm_label(None, o)))
        else:
            opts.append(Option(o["value"], norm_label(o.get("label"), o["value"]), o.get("color")))
    ftype = raw["type"]
    value_type = raw.get("result", "decimal") if ftype == "computed" else ftype
    scale = raw.get("scale")
    if scale is None and value_type in ("money", "percent"):
        scale = 2
    if scale is None and value_type == "decimal":
        scale = 4
    return Field(
        id=fid, type=ftype, entity=entity, label=norm_label(raw.get("label"), fid),
        required=raw.get("required", False), default=raw.get("default"), unique=raw.get("unique", False),
        index=raw.get("index", False), searchable=raw.get("searchable", False),
        readonly=raw.get("readonly", False), in_list=raw.get("in_list", False), due=raw.get("due", False),
        sensitive=raw.get("sensitive", False), encrypted=raw.get("encrypted", False), max_length=raw.get("max_length"),
        currency=raw.get("currency"),
        min_length=raw.get("min_length"), pattern=raw.get("pattern"), min=raw.get("min"), max=raw.get("max"),
        precision=raw.get("precision"), scale=scale, options=tuple(opts), to=raw.get("to"), of=raw.get("of"),
        compute=raw.get("compute"), result=raw.get("result"), format=raw.get("format"),
        workflow=raw.get("workflow"), renamed_from=raw.get("renamed_from"),
        help=norm_label(raw["help"], fid) if raw.get("help") else None, demo=raw.get("demo"),
        accept=tuple(raw.get("accept", ())), max_size_mb=raw.get("max_size_mb"),
        **linkopts.field_keys(raw),
    )


def _entity(doc: yamlio.Document) -> Entity:
    raw = doc.data
    eid = raw["entity"]
    fields = {}
    fields["id"] = Field("id", "integer", SYSTEM_FIELDS[0][2], entity=eid, system=True, readonly=True)
    for fid, fraw in raw["fields"].items():
        fields[fid] = _field(eid, fid, fraw)
    if not raw.get("child"):  # rows of a table field carry only id, parent_id and idx
        owner_raw = raw["fields"].get("owner")
        fields["owner"] = Field("owner", "user", norm_label(owner_raw.get("label"), "owner") if owner_raw else OWNER_LABEL,
                                entity=eid, system=True, default="current_user()", index=True,
                                in_list=bool(owner_raw and owner_raw.get("in_list")))
        for fid, ftype, label in SYSTEM_FIELDS[1:]:
            fields[fid] = Field(fid, ftype, label, entity=eid, system=True, readonly=True)
    indexes = []
    for ix in raw.get("indexes", ()):
        if isinstance(ix, list):
            indexes.append((tuple(ix), False))
        else:
            indexes.append((tuple(ix["fields"]), ix.get("unique", False)))
    rules = []
    for i, r in enumerate(raw.get("rules", ())):
        line, _ = doc.where(("rules", i))
        rules.append(Rule(name=r.get("name", f"rule_{i + 1}"), check=r["check"],
                          message=norm_label(r["message"], "invalid"), field=r.get("field"),
                          when=r.get("when"), source=f"{doc.file}:{line}"))
    lst = raw.get("list", {})
    return Entity(
        id=eid, label=norm_label(raw["label"], eid), fields=MappingProxyType(fields),
        plural=norm_label(raw["plural"], eid) if raw.get("plural") else None, module=raw.get("module"),
        title=raw.get("title"), child=raw.get("child", False), indexes=tuple(indexes), rules=tuple(rules),
        description=norm_label(raw["description"], eid) if raw.get("description") else None,
        list_columns=tuple(lst.get("columns", ())), list_sort=lst.get("sort"), per_page=lst.get("per_page", 50),
        file=doc.file, order=raw.get("position", 0), demo_weight=(raw.get("demo") or {}).get("weight"),
        **daily.entity_keys(raw),
        duplicates=MappingProxyType(dict(raw["duplicates"])) if raw.get("duplicates") else None,
    )


def _form(doc: yamlio.Document) -> Form:
    raw = doc.data
    sections = tuple(Section(fields=tuple(s["fields"]), title=norm_label(s["title"], "section") if s.get("title") else None,
                             columns=s.get("columns", 1), collapsed=s.get("collapsed", False),
                             visible_if=s.get("visible_if")) for s in raw["sections"])
    overrides = {k: FieldOverride(visible_if=v.get("visible_if"), required_if=v.get("required_if"),
                                  readonly=v.get("readonly", False),
                                  placeholder=norm_label(v["placeholder"], k) if v.get("placeholder") else None,
                                  help=norm_label(v["help"], k) if v.get("help") else None)
                 for k, v in raw.get("fields", {}).items()}
    return Form(id=raw["form"], entity=raw["entity"], sections=sections, overrides=MappingProxyType(overrides),
                label=norm_label(raw["label"], raw["form"]) if raw.get("label") else None, file=doc.file)


def build_workflow(doc: yamlio.Document) -> Workflow:
    raw = doc.data
    states = {}
    for sid, s in raw["states"].items():
        s = s or {}
        states[sid] = State(id=sid, label=norm_label(s.get("label"), sid), color=s.get("color"),
                            final=s.get("final", False), paused=s.get("paused", False),
                            set=MappingProxyType(dict(s.get("set", {}))),
                            suggest=MappingProxyType(dict(s.get("suggest", {}))), on_enter=tuple(s.get("on_enter", ())),
                            on_leave=tuple(s.get("on_leave", ())),
                            sla=MappingProxyType(s["sla"]) if s.get("sla") else None)
    transitions = {}
    for tid, t in raw["transitions"].items():
        src = t["from"]
        sources = tuple(src) if isinstance(src, list) else (src,)
        approval = None
        if t.get("approval"):
            a = t["approval"]
            steps = tuple(ApprovalStep(name=st.get("name", f"step_{i + 1}"),
                                       label=norm_label(st.get("label"), st.get("name", f"step {i + 1}")),
                                       role=st.get("role"), user_field=st.get("user_field"), rule=st.get("rule"),
                                       mode=st.get("mode", "any"), quorum=st.get("quorum"), when=st.get("when"),
                                       escalate_after=st.get("escalate_after"), escalate_to=st.get("escalate_to"))
                          for i, st in enumerate(a["steps"]))
            approval = Approval(steps=steps, reject_to=a.get("reject_to"),
                                no_self_approval=a.get("no_self_approval", False))
        transitions[tid] = Transition(
            id=tid, label=norm_label(t.get("label"), tid), sources=sources, to=t["to"],
            roles=tuple(t.get("roles", ())), when=t.get("when"),
            when_message=norm_label(t["when_message"], tid) if t.get("when_message") else None,
            require=tuple(t.get("require", ())), comment=t.get("comment", "optional"),
            actions=tuple(t.get("actions", ())), approval=approval)
    digest = hashlib.sha256(json.dumps(raw, sort_keys=True, default=str).encode()).hexdigest()[:12]
    return Workflow(id=raw["workflow"], entity=raw["entity"], field=raw["field"], initial=raw["initial"],
                    states=MappingProxyType(states), transitions=MappingProxyType(transitions),
                    label=norm_label(raw.get("label"), raw["workflow"]), file=doc.file, version=digest)


def _pack(doc: yamlio.Document) -> Pack:
    raw = doc.data
    return Pack(id=raw["pack"], version=raw["version"], label=norm_label(raw["label"], raw["pack"]),
                description=norm_label(raw["description"], "") if raw.get("description") else None,
                depends=tuple((d["pack"], d.get("version")) for d in raw.get("depends", ())),
                modules=tuple((m["id"], norm_label(m["label"], m["id"])) for m in raw.get("modules", ())),
                roles=tuple((r["id"], norm_label(r.get("label"), r["id"])) for r in raw.get("roles", ())))


def _with_installed(pack: Pack | None, installed: list) -> Pack | None:
    """The folder's own pack with the modules and roles of the packs installed beside it."""
    if not installed or pack is None:
        return pack
    modules, roles = dict(pack.modules), dict(pack.roles)
    for p in installed:
        for mid, label in p.modules:
            modules.setdefault(mid, label)
        for rid, label in p.roles:
            roles.setdefault(rid, label)
    return dataclasses.replace(pack, modules=tuple(modules.items()), roles=tuple(roles.items()))


def load_config(directory: str | Path) -> Config:
    """Load and check a config folder. Raises ConfigInvalid listing every problem found."""
    root = Path(directory)
    problems: list[Problem] = []
    if not root.is_dir():
        raise ConfigInvalid([Problem(str(root), None, None, "", "the config folder does not exist")])
    documents = _read_documents(root, problems)
    entities, forms, workflows, pack = {}, {}, {}, None
    installed: list[Pack] = []
    access_docs, home_docs = [], []     # (spec, doc): merged once every file is read
    docs_by_id = {}
    builders = {"entity": (_entity, entities), "form": (_form, forms), "workflow": (build_workflow, workflows)}
    auto_built: dict = {kind: {} for kind in automation_spec.BUILDERS}
    for kind, bucket in auto_built.items():
        builders[kind] = (automation_spec.BUILDERS[kind], bucket)
    reports, dashboards = {}, {}
    builders["report"] = (reportspec.build_report, reports)
    builders["dashboard"] = (reportspec.build_dashboard, dashboards)
    segments: dict = {}
    builders["segment"] = (segmentspec.build, segments)
    for kind, doc, valid in documents:
        if not valid:
            # keep going: references into a broken file are not reported twice
            key = doc.data.get(kind) if isinstance(doc.data, dict) else None
            if kind == "entity" and isinstance(key, str):
                entities.setdefault(key, None)
            continue
        if kind == "pack":
            if Path(doc.file).parent.name == "packs":
                installed.append(_pack(doc))
            else:
                pack = _pack(doc)
            continue
        if kind == "access":
            access_docs.append((build_access(doc), doc))
            continue
        if kind == "home":
            home_docs.append((daily.build_home(doc), doc))
            continue
        build, bucket = builders[kind]
        obj = build(doc)
        if bucket.get(obj.id) is not None:
            problems.append(doc.problem((kind,), f"{kind} {obj.id!r} is defined twice (also in {bucket[obj.id].file})"))
            continue
        bucket[obj.id] = obj
        docs_by_id[(kind, obj.id)] = doc
    declares_modules = bool(pack and pack.modules)   # a folder that names none keeps groups titled from ids
    pack = _with_installed(pack, installed)
    broken = {k for k, v in entities.items() if v is None}
    entities = {k: v for k, v in entities.items() if v is not None}
    entities, more = check_references(entities, forms, workflows, docs_by_id, broken)
    problems += more
    problems += automation_spec.check_automation(auto_built, entities, workflows, docs_by_id)
    problems += daily.check_entities(entities, workflows, docs_by_id)
    problems += linkopts.check(entities, docs_by_id)
    role_ids = {r for r, _ in pack.roles} if pack else set()
    for spec, doc in home_docs:
        problems += daily.check_home(spec, doc, entities, role_ids)
    home, more = daily.merge_homes(home_docs)
    problems += more
    problems += reportspec.check_all(reports, dashboards, docs_by_id, entities,
                                     {r for r, _ in pack.roles} if pack else set())
    problems += segmentspec.check_all(segments, docs_by_id, entities)
    problems += check_pack_ids(entities, workflows, docs_by_id, {r for r, _ in pack.roles} if pack else set(),
                               {m for m, _ in pack.modules} if declares_modules else set())
    for spec, doc in access_docs:
        problems += check_access(spec, doc, entities, role_ids)
    access, more = merge_access(access_docs)
    problems += more
    if problems:
        raise ConfigInvalid(problems)
    digest = hashlib.sha256()
    for kind, doc, _ in documents:
        digest.update(json.dumps(doc.data, sort_keys=True, default=str).encode())
    ordered = dict(sorted(entities.items(), key=lambda kv: (kv[1].order, kv[0])))
    return Config(directory=str(root), entities=MappingProxyType(ordered), forms=MappingProxyType(forms),
                  workflows=MappingProxyType(workflows), pack=pack, digest=digest.hexdigest()[:16],
                  access=access, home=home, packs=tuple(x for x in (pack, *installed) if x is not None),
                  reports=MappingProxyType(reports),
                  dashboards=MappingProxyType(dict(sorted(dashboards.items(), key=lambda kv: (kv[1].position, kv[0])))),
                  segments=MappingProxyType(segments),
                  automation=automation_spec.AutomationConfig(
                      **{plural: MappingProxyType(auto_built[kind]) for kind, plural in
                         (("calendar", "calendars"), ("sla", "slas"), ("assignment", "assignments"),
                          ("automation", "automations"))}))
