"""Studio drafts: each admin's unapplied file edits, kept in a small table until Apply.

A draft is {path under the config folder: YAML text, or None to delete the file}. Drafts live in
`ui_studio_draft` (its own metadata, created on first use) rather than the session cookie, which
is too small for whole YAML files. Applying goes through platform_/configstore.py.
"""
from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from engine.db import reading, writing
from . import configstore

META = sa.MetaData()
drafts = sa.Table(
    "ui_studio_draft", META,
    sa.Column("user_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("path", sa.String(300), primary_key=True),
    sa.Column("text", sa.Text, nullable=True),       # None: delete the file
    sa.Column("updated_at", sa.DateTime),
)
_ready: set = set()


def _ensure(engine):
    if id(engine) not in _ready:
        META.create_all(engine, checkfirst=True)
        _ready.add(id(engine))


def all_for(engine, user_id: int) -> dict:
    _ensure(engine)
    with reading(engine) as conn:
        rows = conn.execute(sa.select(drafts.c.path, drafts.c.text).where(drafts.c.user_id == user_id)
                            .order_by(drafts.c.path)).all()
    return {r.path: r.text for r in rows}


def put(engine, user_id: int, path: str, text: str | None, folder_text: str | None = None) -> None:
    """Keep `text` as the draft of `path`; a draft equal to the folder's text is dropped."""
    configstore.check_files({path: text})
    _ensure(engine)
    with writing(engine) as conn:
        conn.execute(drafts.delete().where(drafts.c.user_id == user_id, drafts.c.path == path))
        if text != folder_text:
            conn.execute(drafts.insert().values(user_id=user_id, path=path, text=text,
                                                updated_at=dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)))


def drop(engine, user_id: int, path: str | None = None) -> None:
    """Discard one draft, or every draft of the user (path None)."""
    _ensure(engine)
    cond = drafts.c.user_id == user_id
    if path is not None:
        cond = sa.and_(cond, drafts.c.path == path)
    with writing(engine) as conn:
        conn.execute(drafts.delete().where(cond))
