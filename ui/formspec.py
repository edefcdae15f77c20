"""The sections a form shows: from config/forms, or generated for an entity without a form file."""
from __future__ import annotations

from dataclasses import dataclass, field, replace

from flask_babel import gettext as _

from engine.model import Config, Entity, FieldOverride, label_of


@dataclass
class SectionView:
    key: str
    title: str | None
    columns: int
    fields: list
    visible_if: str | None = None
    collapsed: bool = False
    overrides: dict = field(default_factory=dict)


def form_sections(cfg: Config, entity: Entity, lang: str, hidden=frozenset(), readonly=frozenset()) -> list[SectionView]:
    """The form's sections; fields the user may not see (`hidden`, the store's field permissions) left out,
    fields the user may not change (`readonly`) shown as text."""
    out = _sections(cfg, entity, lang, hidden)
    if readonly:
        for s in out:
            s.overrides = {**s.overrides, **{f.id: replace(s.overrides.get(f.id) or FieldOverride(), readonly=True)
                                             for f in s.fields if f.id in readonly}}
    return out


def _sections(cfg: Config, entity: Entity, lang: str, hidden) -> list[SectionView]:
    form = cfg.form_for(entity.id)
    out = []
    if form is not None and not form.generated:
        shown = set()
        for i, s in enumerate(form.sections):
            fields = [entity.fields[f] for f in s.fields if f in entity.fields and f not in hidden]
            shown.update(f.id for f in fields)
            out.append(SectionView(key=f"s{i}", title=label_of(s.title, lang) if s.title else None,
                                   columns=s.columns, fields=fields, visible_if=s.visible_if,
                                   collapsed=s.collapsed, overrides=dict(form.overrides)))
        return out
    plain = [f for f in entity.user_fields if f.type != "table" and f.id not in hidden]
    out.append(SectionView(key="s0", title=None, columns=2 if len(plain) > 3 else 1, fields=plain))
    for i, f in enumerate([f for f in entity.table_fields if f.id not in hidden], start=1):
        out.append(SectionView(key=f"s{i}", title=f.label_text(lang), columns=1, fields=[f]))
    return out


def override(section: SectionView, fid: str) -> FieldOverride:
    return section.overrides.get(fid) or FieldOverride()


def all_overrides(sections) -> dict:
    out = {}
    for s in sections:
        out.update(s.overrides)
    return out


def generated_title() -> str:
    return _("Details")
