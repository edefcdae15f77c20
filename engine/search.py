"""Text search at scale: the `?q=` of lists and the global search, as an index kept in step with writes.

- SQLite: one FTS5 table per entity (`fts_e_<entity>`, trigram tokenizer, external content: it
  holds the index only) over the entity's searchable text fields, filled and kept current by
  triggers on the entity's table, so every write path (store, import, raw SQL) updates it.
- PostgreSQL: a pg_trgm GIN index per searchable text field (`trgm_e_<entity>_<field>`); `ILIKE
  '%…%'` uses it.

Both find any fragment of 3 characters or more, Chinese or English, case-insensitively. Shorter
fragments (a two-character Chinese name) fall back to a scan, which the list's capped count and
page limit keep bounded. `sync()` is idempotent: it builds what is missing, rebuilds what no longer
matches the config (and triggers a table rebuild dropped), and removes what no entity needs.
"""
from __future__ import annotations

import hashlib
import logging

import sqlalchemy as sa

from .model import Config, Entity

log = logging.getLogger(__name__)

TEXT_TYPES = ("string", "text", "email", "phone", "url", "autonumber", "select", "state")
MIN_INDEXED = 3          # trigrams: shorter fragments cannot use the index


def indexed_fields(entity: Entity) -> list:
    """The searchable fields a text index covers (stored text, never encrypted)."""
    return [f for f in entity.searchable_fields
            if f.stored and f.value_type in TEXT_TYPES and not getattr(f, "encrypted", False)]


def fts_table(entity: Entity) -> str:
    return f"fts_{entity.table_name}"


def trgm_index(table: str, field_id: str) -> str:
    name = f"trgm_{table}_{field_id}"
    if len(name) > 63:                            # PostgreSQL's identifier limit
        name = name[:54] + "_" + hashlib.sha1(name.encode()).hexdigest()[:8]
    return name


def _q(name: str) -> str:
    """Quote an identifier from the config (already checked to be [a-z][a-z0-9_]*)."""
    return '"' + name.replace('"', '""') + '"'


# ---- keeping the index ------------------------------------------------------------------------
def sync(conn, config: Config) -> list[str]:
    """Bring the text indexes in line with `config` inside the caller's transaction; returns what
    was built or removed (for logs)."""
    if conn.dialect.name == "sqlite":
        return _sync_sqlite(conn, config)
    if conn.dialect.name == "postgresql":
        return _sync_postgresql(conn, config)
    return []


def _wanted(config: Config) -> dict:
    return {fts_table(e): (e, [f.id for f in indexed_fields(e)]) for e in config.entities.values()
            if not e.child and indexed_fields(e)}


def _fts_sql(entity: Entity, cols: list[str]) -> tuple[str, list[str]]:
    name, table = fts_table(entity), entity.table_name
    columns = ", ".join(_q(c) for c in cols)
    new = ", ".join(f"new.{_q(c)}" for c in cols)
    old = ", ".join(f"old.{_q(c)}" for c in cols)
    create = (f"CREATE VIRTUAL TABLE {_q(name)} USING fts5({columns}, content={_q(table)}, "
              f"content_rowid='id', tokenize='trigram')")
    triggers = [
        f"CREATE TRIGGER {_q(name + '_ai')} AFTER INSERT ON {_q(table)} BEGIN "
        f"INSERT INTO {_q(name)}(rowid, {columns}) VALUES (new.id, {new}); END",
        f"CREATE TRIGGER {_q(name + '_ad')} AFTER DELETE ON {_q(table)} BEGIN "
        f"INSERT INTO {_q(name)}({_q(name)}, rowid, {columns}) VALUES ('delete', old.id, {old}); END",
        f"CREATE TRIGGER {_q(name + '_au')} AFTER UPDATE OF {columns} ON {_q(table)} BEGIN "
        f"INSERT INTO {_q(name)}({_q(name)}, rowid, {columns}) VALUES ('delete', old.id, {old}); "
        f"INSERT INTO {_q(name)}(rowid, {columns}) VALUES (new.id, {new}); END",
    ]
    return create, triggers


def _sync_sqlite(conn, config: Config) -> list[str]:
    rows = conn.exec_driver_sql("SELECT type, name, sql FROM sqlite_master WHERE name LIKE 'fts\\_e\\_%' ESCAPE '\\'")
    tables, triggers = {}, {}
    for kind, name, sql in rows:
        if kind == "table" and sql and sql.upper().startswith("CREATE VIRTUAL TABLE"):
            tables[name] = sql
        elif kind == "trigger":
            triggers[name] = sql
    tables_now = set(conn.exec_driver_sql("SELECT name FROM sqlite_master WHERE type = 'table'").scalars())
    done = []
    wanted = _wanted(config)
    for name in set(tables) - set(wanted):
        _drop_fts(conn, name)
        done.append(f"dropped {name}")
    for name, (entity, cols) in wanted.items():
        if entity.table_name not in tables_now:
            continue                                  # its table is not created yet
        create, trig = _fts_sql(entity, cols)
        if tables.get(name) == create and all(triggers.get(n) == t for n, t in zip(_trigger_names(name), trig)):
            continue
        _drop_fts(conn, name)
        conn.exec_driver_sql(create)
        for t in trig:
            conn.exec_driver_sql(t)
        conn.exec_driver_sql(f"INSERT INTO {_q(name)}({_q(name)}) VALUES ('rebuild')")
        done.append(f"built {name} ({', '.join(cols)})")
    return done


def release(conn, table: str, column: str) -> None:
    """Before a column changes type: its text index goes (PostgreSQL refuses to retype a column a
    trigram index covers); `sync` builds it again after the change if the field is still searchable."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(f"DROP INDEX IF EXISTS {_q(trgm_index(table, column))}")
    elif conn.dialect.name == "sqlite":
        _drop_fts(conn, f"fts_{table}")


def _trigger_names(name: str) -> list[str]:
    return [name + "_ai", name + "_ad", name + "_au"]


def _drop_fts(conn, name: str) -> None:
    for t in _trigger_names(name):
        conn.exec_driver_sql(f"DROP TRIGGER IF EXISTS {_q(t)}")
    conn.exec_driver_sql(f"DROP TABLE IF EXISTS {_q(name)}")


def _trgm_schema(conn) -> str | None:
    """The schema pg_trgm lives in, installing it (into public) when this database lacks it;
    None when it cannot be installed (search then scans)."""
    q = sa.text("SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace "
                "WHERE e.extname = 'pg_trgm'")
    found = conn.execute(q).scalar()
    if found:
        return found
    try:
        with conn.begin_nested():
            conn.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS pg_trgm SCHEMA public")
    except sa.exc.DBAPIError as e:               # no privilege, or another process raced us
        log.info("pg_trgm not installed: %s", str(getattr(e, "orig", e)).splitlines()[0])
    return conn.execute(q).scalar()


def _sync_postgresql(conn, config: Config) -> list[str]:
    schema = _trgm_schema(conn)
    if schema is None:
        return []
    existing = set(conn.execute(sa.text(
        "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema() AND indexname LIKE 'trgm\\_e\\_%'"
    )).scalars())
    tables_now = set(conn.execute(sa.text(
        "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")).scalars())
    wanted = {}
    for entity, cols in _wanted(config).values():
        if entity.table_name in tables_now:
            for c in cols:
                wanted[trgm_index(entity.table_name, c)] = (entity.table_name, c)
    done = []
    for name in existing - set(wanted):
        conn.exec_driver_sql(f"DROP INDEX IF EXISTS {_q(name)}")
        done.append(f"dropped {name}")
    for name, (table, col) in wanted.items():
        if name in existing:
            continue
        conn.exec_driver_sql(f"CREATE INDEX {_q(name)} ON {_q(table)} USING gin ({_q(col)} {_q(schema)}.gin_trgm_ops)")
        done.append(f"built {name}")
    return done


# ---- using it ---------------------------------------------------------------------------------
def _like_pattern(text: str) -> str:
    return "%" + text.replace("/", "//").replace("%", "/%").replace("_", "/_") + "%"


def clause(entity: Entity, table: sa.Table, text: str, dialect: str | None, fts_ready: bool = False):
    """The WHERE clause of a text search for `text` over the entity's searchable fields."""
    fields = [f for f in entity.searchable_fields if f.stored]
    if not fields:
        return None
    indexed = {f.id for f in indexed_fields(entity)}
    parts = []
    if dialect == "sqlite" and fts_ready and len(text) >= MIN_INDEXED and indexed:
        fts = sa.table(fts_table(entity), sa.column("rowid"))
        phrase = '"' + text.replace('"', '""') + '"'
        parts.append(table.c.id.in_(sa.select(fts.c.rowid).where(
            sa.literal_column(_q(fts_table(entity))).op("MATCH")(sa.bindparam("fts_q", phrase, unique=True)))))
        rest = [f for f in fields if f.id not in indexed]
    else:
        rest = fields
    pattern = _like_pattern(text)
    for f in rest:
        col = table.c[f.id]
        if f.value_type not in TEXT_TYPES:
            col = sa.cast(col, sa.String)
        if dialect == "postgresql":
            parts.append(col.ilike(pattern, escape="/"))       # pg_trgm's GIN index answers ILIKE
        else:
            parts.append(col.icontains(text, autoescape=True))
    return sa.or_(*parts)


def fts_ready(conn, entity: Entity) -> bool:
    """Does this SQLite database hold the entity's FTS table (built by `sync`)?"""
    return conn.exec_driver_sql("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?",
                                (fts_table(entity),)).first() is not None
