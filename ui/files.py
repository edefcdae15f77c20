"""Who may download a stored file: someone who may read a record that holds it.

Files are stored once by content hash; `/files/<sha>` serves one only to a signed-in user who can
read at least one non-deleted record whose attachment field (or a child row's) references that
hash — each candidate is read through the store's `get`, so row scopes and policies apply — or
who uploaded it in this session (a form shown again before saving links its new file).
"""
from __future__ import annotations

from flask import session

from engine.actor import Actor
from engine.errors import EngineError
from platform_ import filerefs

from .web import config, store

UPLOADS_KEY = "_uploads"
KEEP_UPLOADS = 10
CANDIDATES = 25          # records checked per field before giving up


def remember_upload(sha: str) -> None:
    """This session uploaded the file `sha` (kept for the last few uploads only)."""
    kept = [s for s in session.get(UPLOADS_KEY, []) if s != sha]
    session[UPLOADS_KEY] = (kept + [sha])[-KEEP_UPLOADS:]


def _holds(value, sha: str) -> bool:
    return isinstance(value, dict) and value.get("sha256") == sha


def may_download(sha: str, actor: Actor) -> bool:
    if sha in session.get(UPLOADS_KEY, []):
        return True
    cfg, st = config(), store()
    for entity in cfg.entities.values():
        fields = [f for f in entity.fields.values() if f.value_type == "attachment" and f.stored]
        if not fields:
            continue
        for f in fields:
            for rid in filerefs.holders(st, entity, f.id, sha, CANDIDATES):
                if _readable_with(entity, f, rid, sha, actor):
                    return True
    return False


def _readable_with(entity, f, rid, sha: str, actor: Actor) -> bool:
    """Can `actor` read record `rid` (the parent, for a child entity), and does it hold `sha`?"""
    cfg, st = config(), store()
    try:
        if not entity.child:
            return _holds(st.get(entity.id, rid, actor).get(f.id), sha)
        parent = cfg.entities[entity.parent]
        rec = st.get(parent.id, rid, actor)
    except EngineError:             # not found, deleted, out of scope or not allowed
        return False
    for table_field in parent.table_fields:
        if table_field.of == entity.id:
            if any(_holds(row.get(f.id), sha) for row in rec.get(table_field.id) or []):
                return True
    return False
