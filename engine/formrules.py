"""A form's `required_if` holds on every write that comes from outside (the REST API as well as the
web form), so a record the form would refuse cannot be written around it. A field the form hides at
that moment (its own or its section's `visible_if`) is not required, as in the browser; an
expression that cannot be evaluated counts as visible and not required, as in the browser."""
from __future__ import annotations

from collections.abc import Callable

from . import rules, values
from .errors import RuleError
from .model import Config, Entity


def required_by_form(config: Config, entity: Entity, merged: dict, names_for: Callable[[str], dict],
                     user_id=None) -> list[str]:
    """Fields of `entity` that its form requires for these values but that are empty.
    `names_for(expr)` gives the names an expression may read (fields, linked fields)."""
    form = config.form_for(entity.id)
    if form is None or form.generated:
        return []

    def holds(expr: str, otherwise: bool) -> bool:
        try:
            return bool(rules.evaluate(expr, names_for(expr), user_id))
        except RuleError:
            return otherwise

    missing = []
    for fid, ov in form.overrides.items():
        f = entity.fields.get(fid)
        if f is None or not ov.required_if or not values.empty(merged.get(fid)):
            continue
        section = next((s for s in form.sections if fid in s.fields), None)
        if section is not None and section.visible_if and not holds(section.visible_if, True):
            continue
        if ov.visible_if and not holds(ov.visible_if, True):
            continue
        if holds(ov.required_if, False):
            missing.append(fid)
    return missing
