"""What every studio page needs: the admin check, the admin's drafts and saving a checked draft."""
from __future__ import annotations

from flask_babel import gettext as _
from flask_login import current_user

from engine.errors import Forbidden, NotFound
from platform_ import configstore, studio_drafts

from . import studio_yaml
from .web import actor, runtime


def admin():
    """The acting admin; anyone else gets the 403 page (anonymous users are sent to sign in first)."""
    a = actor()
    if not a.is_admin:
        raise Forbidden(_("Only an administrator may use the studio."))
    return a


def engine():
    return runtime().engine


def uid() -> int:
    return current_user.actor.id


def drafts() -> dict:
    return studio_drafts.all_for(engine(), uid())


def files() -> dict:
    """The config folder as this admin's drafts would make it."""
    return studio_yaml.workspace(runtime(), drafts())


def folder_text(path: str) -> str | None:
    return configstore.read_folder(runtime().config_dir).get(path)


def plan(change: dict) -> dict:
    """The configstore plan of `change` ({path: text | None}); a bad path is a problem, not a 500."""
    try:
        return configstore.plan(runtime(), change)
    except configstore.Refused as e:
        return {"problems": e.problems or [e.message], "steps": []}


def save(path: str, text: str | None, must_be_clean: bool = True) -> list[str]:
    """Keep `text` as the draft of `path`. With `must_be_clean`, an edit that brings new problems
    into the configuration is not kept: those problems are returned (empty list: saved)."""
    mine = drafts()
    if must_be_clean:
        after = plan({**mine, path: text})["problems"]
        if after:
            before = set(plan(mine)["problems"]) if mine else set()
            new = [p for p in after if p not in before]
            if new:
                return new
    studio_drafts.put(engine(), uid(), path, text, folder_text(path))
    return []


def text_of(kind: str, ident: str) -> tuple[str, dict]:
    """(path, parsed data) of an entity, form or workflow as the drafts make it; 404 when missing."""
    ws = files()
    path = studio_yaml.find(ws, kind, ident)
    if path is None:
        kinds = {"entity": _("entity"), "form": _("form"), "workflow": _("workflow")}
        raise NotFound(_("There is no %(kind)s called %(name)s.", kind=kinds.get(kind, kind), name=ident))
    try:
        return path, studio_yaml.parse(ws[path], path)
    except studio_yaml.EditError as e:
        raise NotFound(_("%(path)s does not read as YAML: %(problem)s", path=path, problem=e.message))
