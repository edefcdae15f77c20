"""Schema builder: each entity of a Config becomes a SQLAlchemy Core table.

Names: table `e_<entity>`; index `ix_<table>_<cols>`; unique index `uq_<table>_<cols>`.
A child entity (rows of a `table` field) gets `parent_id` (FK to the parent's table) and `idx`.
"""
from __future__ import annotations

import sqlalchemy as sa

from .model import Config, Entity, Field
from . import wftables  # noqa: F401  (registers the workflow tables on SYSTEM)
from . import audit as _audit_tables  # noqa: F401  (the audit trail)
from .automation import tables as _automation_tables  # noqa: F401  (and the automation tables)
from . import importlog as _import_tables  # noqa: F401  (imports: progress and saved mappings)
from .systables import SYSTEM

DEFAULT_LENGTH = {"string": 255, "email": 254, "phone": 64, "url": 1024, "select": 100, "autonumber": 64, "state": 64}
NO_BOOL_CONSTRAINT = sa.Boolean(create_constraint=False)


def column_type(f: Field) -> sa.types.TypeEngine:
    t = f.value_type
    if f.encrypted:
        from .crypto import EncryptedText
        return EncryptedText()
    if t in DEFAULT_LENGTH:
        return sa.String(f.max_length or DEFAULT_LENGTH[t]) if t in ("string", "email", "phone", "url") \
            else sa.String(DEFAULT_LENGTH[t])
    if t == "text":
        return sa.Text()
    if t == "integer":
        return sa.Integer()
    if t == "money":
        return sa.Numeric(f.precision or 18, f.scale if f.scale is not None else 2, asdecimal=True)
    if t == "percent":
        return sa.Numeric(f.precision or 9, f.scale if f.scale is not None else 2, asdecimal=True)
    if t == "decimal":
        return sa.Numeric(f.precision or 18, f.scale if f.scale is not None else 4, asdecimal=True)
    if t == "boolean":
        return sa.Boolean(create_constraint=False)
    if t == "date":
        return sa.Date()
    if t == "datetime":
        return sa.DateTime()
    if t in ("multiselect", "attachment"):
        return sa.JSON()
    if t in ("link", "user"):
        return sa.Integer()
    raise ValueError(f"no column type for {t}")


def index_name(table: str, cols, unique=False) -> str:
    name = f"{'uq' if unique else 'ix'}_{table}_{'_'.join(cols)}"
    if len(name) > 60:  # PostgreSQL truncates at 63
        import hashlib
        name = name[:50] + "_" + hashlib.sha1(name.encode()).hexdigest()[:8]
    return name


def _columns(e: Entity, config: Config):
    cols = [sa.Column("id", sa.Integer, primary_key=True, autoincrement=True)]
    if e.child:
        parent = config.entities[e.parent]
        cols += [sa.Column("parent_id", sa.Integer, sa.ForeignKey(f"{parent.table_name}.id"), nullable=False),
                 sa.Column("idx", sa.Integer, nullable=False, default=0)]
    else:
        cols += [sa.Column("version", sa.Integer, nullable=False, default=1),
                 sa.Column("created_at", sa.DateTime),
                 sa.Column("created_by", sa.Integer, sa.ForeignKey("sys_user.id")),
                 sa.Column("updated_at", sa.DateTime),
                 sa.Column("updated_by", sa.Integer, sa.ForeignKey("sys_user.id")),
                 sa.Column("owner", sa.Integer, sa.ForeignKey("sys_user.id")),
                 sa.Column("deleted_at", sa.DateTime)]
    for f in e.user_fields:
        if not f.stored or f.id == "owner":
            continue
        args = []
        if f.value_type == "link" and f.to in config.entities:
            # use_alter: links may form cycles (a lead links its opportunity and back); PostgreSQL
            # gets these constraints after all new tables exist, SQLite inline.
            args.append(sa.ForeignKey(f"{config.entities[f.to].table_name}.id", use_alter=True,
                                      deferrable=True, initially="IMMEDIATE",
                                      name=index_name(e.table_name, [f.id]).replace("ix_", "fk_", 1)))
        elif f.value_type == "user":
            args.append(sa.ForeignKey("sys_user.id"))
        cols.append(sa.Column(f.id, column_type(f), *args, nullable=True))
    return cols


def list_sort_column(e: Entity) -> str:
    """The column of the entity's default list order (its first sort key), or the id."""
    first = (e.list_sort or "").split(",")[0].strip().lstrip("-+")
    f = e.fields.get(first)
    return first if f is not None and f.stored and f.value_type not in ("multiselect", "attachment", "table") else "id"


def _indexes(e: Entity, table: sa.Table):
    """Indexes derived from the config. A field lists are filtered by (links, users, states, fields
    marked `index`) is indexed together with `deleted_at` and the list's default sort column, so
    "this owner's / this stage's records, newest first" is one index range: the page is read in
    order, and the (capped) count never touches the table."""
    wanted = []  # (cols tuple, unique)
    if e.child:
        wanted.append((("parent_id",), False))
    else:
        wanted += [(("deleted_at",), False), (("created_at",), False)]
    sort = list_sort_column(e)

    def filtered(col):
        return (col, "deleted_at") + ((sort,) if sort != col else ())
    if not e.child:
        wanted.append((filtered("owner"), False))
    for f in e.user_fields:
        if not f.stored or f.id == "owner":
            continue
        if f.unique or f.type == "autonumber":
            wanted.append(((f.id,), True))
        elif f.index or f.value_type in ("link", "user", "state"):
            wanted.append(((f.id,) if e.child else filtered(f.id), False))
    for cols, unique in e.indexes:
        wanted.append((tuple(cols), unique))
    seen = set()
    for cols, unique in wanted:
        name = index_name(table.name, cols, unique)
        if name in seen:
            continue
        seen.add(name)
        sa.Index(name, *[table.c[c] for c in cols], unique=unique)


def build_metadata(config: Config) -> sa.MetaData:
    """A fresh MetaData holding the system tables and one table per entity of the config."""
    md = sa.MetaData()
    for t in SYSTEM.tables.values():
        t.to_metadata(md)
    # parents before children so foreign keys resolve in creation order
    for e in sorted(config.entities.values(), key=lambda e: e.child):
        t = sa.Table(e.table_name, md, *_columns(e, config))
        _indexes(e, t)
    return md
