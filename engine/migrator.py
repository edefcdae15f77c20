"""Compare the config with the live database, plan the difference, apply it whole or not at all.

Additive steps (new table, new column, new or dropped index, a wider string) apply on their own.
Risky steps (rename, removed field, type change, a field made required while rows are empty,
removed entity) are applied only when the caller allows destructive steps; a removed field's
column is kept, renamed to `_removed_<name>`, until `purge`. The migrator never guesses a
rename: the YAML says `renamed_from:`. After `apply`, `plan` yields no steps.
"""
from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field

import sqlalchemy as sa
from alembic.migration import MigrationContext
from alembic.operations import Operations

from . import search, values
from .db import is_sqlite, writing
from .errors import MigrationRefused
from .model import Config, Field
from .systables import migrations, schema_fields
from .tables import build_metadata

log = logging.getLogger(__name__)

REMOVED = "_removed_"


@dataclass
class Step:
    kind: str
    table: str
    column: str | None = None
    detail: str = ""
    destructive: bool = False
    rows: int = 0
    blockers: list = field(default_factory=list)
    payload: dict = field(default_factory=dict)

    def describe(self) -> str:
        flag = "!" if self.destructive else "+"
        rows = f" ({self.rows} row(s) affected)" if self.rows else ""
        text = f"{flag} {self.kind} {self.table}{'.' + self.column if self.column else ''}: {self.detail}{rows}"
        for b in self.blockers:
            text += f"\n    refused: {b}"
        return text

    def as_dict(self) -> dict:
        return {"kind": self.kind, "table": self.table, "column": self.column, "detail": self.detail,
                "destructive": self.destructive, "rows": self.rows, "blockers": list(self.blockers)}


def summary(steps, digest: str | None = None, shown: int = 20) -> str:
    """'config 1a2b…: 2 step(s), 0 risky: + add_column …; + create_index …' (an audit entry's detail)."""
    steps = list(steps or ())
    head = (f"config {digest}: " if digest else "") + \
        f"{len(steps)} step(s), {sum(1 for s in steps if s.destructive)} risky"
    if not steps:
        return head
    more = f"; … {len(steps) - shown} more" if len(steps) > shown else ""
    return head + ": " + "; ".join(s.describe().split("\n")[0] for s in steps[:shown]) + more


def signature(t: sa.types.TypeEngine) -> tuple:
    """A comparable description of a column type, the same for declared and reflected types."""
    if isinstance(t, sa.types.TypeDecorator):
        t = t.impl_instance
    if isinstance(t, sa.JSON):
        return ("json",)
    if isinstance(t, sa.Text) or (isinstance(t, sa.String) and not getattr(t, "length", None)):
        return ("text",)
    if isinstance(t, sa.String):
        return ("string", t.length)
    if isinstance(t, sa.Boolean):
        return ("boolean",)
    if isinstance(t, sa.Integer):
        return ("integer",)
    if isinstance(t, sa.Numeric) and not isinstance(t, sa.Float):
        return ("numeric", t.precision, t.scale)
    if isinstance(t, sa.Float):
        return ("numeric", None, None)
    if isinstance(t, sa.DateTime):
        return ("datetime",)
    if isinstance(t, sa.Date):
        return ("date",)
    return (type(t).__name__.lower(),)


def _is_widening(old: tuple, new: tuple) -> bool:
    if old[0] == new[0] == "string":
        return (new[1] or 0) >= (old[1] or 0)
    if old[0] == "string" and new[0] == "text":
        return True
    if old[0] == new[0] == "numeric" and None not in old[1:] and None not in new[1:]:
        return new[2] >= old[2] and (new[1] - new[2]) >= (old[1] - old[2])
    return False


class Migrator:
    def __init__(self, engine: sa.Engine, config: Config):
        self.engine, self.config = engine, config
        self.metadata = build_metadata(config)

    # ---- planning -------------------------------------------------------------------------
    def plan(self, conn=None) -> list[Step]:
        if conn is None:
            with self.engine.connect() as c:
                return self._plan(c)
        return self._plan(conn)

    def _fields_by_table(self):
        return {e.table_name: e for e in self.config.entities.values()}

    def _snapshot(self, conn, live_tables) -> dict:
        if schema_fields.name not in live_tables:
            return {}
        return {(r.entity, r.field): r for r in conn.execute(sa.select(schema_fields))}

    def _plan(self, conn) -> list[Step]:
        insp = sa.inspect(conn)
        live_tables = set(insp.get_table_names())
        entity_of = self._fields_by_table()
        snapshot = self._snapshot(conn, live_tables)
        steps: list[Step] = []
        creates = []
        for table in self.metadata.sorted_tables:
            if table.name not in live_tables:
                creates.append(Step("create_table", table.name, detail=f"new table with {len(table.c)} columns",
                                    payload={"table": table}))
                continue
            steps += self._plan_table(conn, insp, table, entity_of.get(table.name), snapshot)
        for name in sorted(live_tables):
            if name.startswith("e_") and name not in self.metadata.tables:
                rows = conn.execute(sa.select(sa.func.count()).select_from(sa.table(name))).scalar()
                steps.append(Step("remove_entity", name, detail=f"entity removed from the config; the table is kept "
                                  f"as {REMOVED}{name}", destructive=True, rows=rows))
        return creates + steps

    def _plan_table(self, conn, insp, table: sa.Table, entity, snapshot) -> list[Step]:
        steps = []
        live_cols = {c["name"]: c for c in insp.get_columns(table.name)}
        renamed_sources = set()
        fields = entity.fields if entity else {}
        count = None

        def row_count():
            nonlocal count
            if count is None:
                count = conn.execute(sa.select(sa.func.count()).select_from(table)).scalar()
            return count

        for col in table.c:
            f = fields.get(col.name)
            if col.name in live_cols:
                continue
            if f is not None and f.renamed_from and f.renamed_from in live_cols:
                renamed_sources.add(f.renamed_from)
                steps.append(Step("rename_column", table.name, f.renamed_from, detail=f"rename to {col.name}",
                                  destructive=True, rows=row_count(), payload={"new": col.name}))
                old_sig = signature(live_cols[f.renamed_from]["type"])
                if old_sig != signature(col.type):
                    steps.append(self._type_step(conn, table, col, f, old_sig, source=f.renamed_from))
                continue
            steps.append(Step("add_column", table.name, col.name, detail=f"new column {signature(col.type)[0]}",
                              payload={"column": col}))
        for name, live in live_cols.items():
            if name in table.c or name.startswith(REMOVED) or name in renamed_sources:
                continue
            n = conn.execute(sa.select(sa.func.count()).select_from(table)
                             .where(sa.column(name).is_not(None))).scalar()
            steps.append(Step("remove_field", table.name, name,
                              detail=f"field removed from the config; the column is kept as {REMOVED}{name} "
                                     "(purge to drop it)", destructive=True, rows=n))
        for col in table.c:
            if col.name not in live_cols:
                continue
            old, new = signature(live_cols[col.name]["type"]), signature(col.type)
            f = fields.get(col.name)
            if old != new:
                if _is_widening(old, new):
                    steps.append(Step("widen_column", table.name, col.name, detail=f"{old} -> {new}",
                                      payload={"type": col.type}))
                else:
                    steps.append(self._type_step(conn, table, col, f, old))
                continue
            snap = snapshot.get((entity.id, col.name)) if entity else None
            if f is not None and snap is not None and snap.type != f.value_type and f.value_type != "computed":
                step = self._semantic_step(conn, table, f, snap.type)
                if step:
                    steps.append(step)
            if f is not None and f.required and snap is not None and not snap.required:
                empty_rows = conn.execute(sa.select(sa.func.count()).select_from(table)
                                          .where(table.c[col.name].is_(None))).scalar()
                literal = f.default is not None and not (isinstance(f.default, str) and "(" in f.default)
                fill = f.default if literal else None
                if empty_rows:
                    steps.append(Step("require_field", table.name, col.name,
                                      detail=(f"now required; empty rows will be filled with the default {fill!r}"
                                              if fill is not None else "now required; these rows stay empty until edited"),
                                      destructive=True, rows=empty_rows, payload={"fill": fill}))
                else:
                    steps.append(Step("note_required", table.name, col.name, detail="now required (no empty rows)"))
        steps += self._plan_indexes(conn, insp, table)
        return steps

    def _bad_rows(self, conn, table, source, check) -> list[str]:
        bad = []
        q = sa.select(table.c.id, sa.column(source)).select_from(table).where(sa.column(source).is_not(None))
        for rid, value in conn.execute(q):
            message = check(value)
            if message:
                bad.append(f"row id={rid} value={value!r}: {message}")
                if len(bad) >= 20:
                    bad.append("… (first 20 shown)")
                    break
        return bad

    def _type_step(self, conn, table, col, f: Field | None, old, source=None) -> Step:
        source = source or col.name
        new = signature(col.type)

        def check(value):
            if f is None:
                return None
            try:
                v = values.coerce(f, value if not isinstance(value, (dict, list)) else value)
            except ValueError as e:
                return str(e)
            if new[0] == "string" and isinstance(v, str) and len(v) > (new[1] or 0):
                return f"longer than {new[1]} characters"
            return values.check_limits(f, v)

        n = conn.execute(sa.select(sa.func.count()).select_from(table).where(sa.column(source).is_not(None))).scalar()
        return Step("change_type", table.name, col.name, detail=f"{old} -> {new}", destructive=True, rows=n,
                    blockers=self._bad_rows(conn, table, source, check), payload={"type": col.type})

    def _semantic_step(self, conn, table, f: Field, old_type: str) -> Step | None:
        def check(value):
            try:
                values.check_limits(f, values.coerce(f, value))
            except ValueError as e:
                return str(e)
            return None
        blockers = self._bad_rows(conn, table, f.id, check)
        n = conn.execute(sa.select(sa.func.count()).select_from(table).where(table.c[f.id].is_not(None))).scalar()
        return Step("change_type", table.name, f.id, detail=f"{old_type} -> {f.value_type} (same column type)",
                    destructive=True, rows=n, blockers=blockers, payload={"semantic": True})

    def _plan_indexes(self, conn, insp, table) -> list[Step]:
        steps = []
        live = {ix["name"]: ix for ix in insp.get_indexes(table.name) if ix["name"]}
        wanted = {ix.name: ix for ix in table.indexes}
        ours = {n for n in live if n.startswith("ix_e_") or n.startswith("uq_e_")}
        for name in sorted(ours - set(wanted)):
            steps.append(Step("drop_index", table.name, detail=name, payload={"name": name}))
        for name in sorted(set(wanted) - set(live)):
            ix = wanted[name]
            blockers = []
            cols = [c.name for c in ix.columns]
            if ix.unique:
                dup = conn.execute(sa.select(*[sa.column(c) for c in cols], sa.func.count().label("n"))
                                   .select_from(table).where(*[sa.column(c).is_not(None) for c in cols])
                                   .group_by(*[sa.column(c) for c in cols]).having(sa.func.count() > 1).limit(20)).all()
                blockers = [f"{dict(zip(cols, r[:-1]))} appears {r[-1]} times" for r in dup]
            steps.append(Step("create_index", table.name, detail=f"{name} on {', '.join(cols)}"
                              + (" (unique)" if ix.unique else ""), blockers=blockers, payload={"index": ix}))
        return steps

    # ---- applying -------------------------------------------------------------------------
    def apply(self, allow_destructive: bool = False, only_safe: bool = False, audit_as=None) -> list[Step]:
        """Apply the plan in one transaction. Returns the steps applied.

        only_safe: apply the additive steps and leave risky ones for later (used at start-up).
        audit_as: an Actor; when steps are applied, a `config.apply` audit entry in the same transaction.
        """
        with writing(self.engine) as conn:
            if conn.dialect.name == "postgresql":
                conn.exec_driver_sql("SET LOCAL statement_timeout = 0")   # an index on a large table takes long
            steps = self._plan(conn)
            risky = [s for s in steps if s.destructive]
            if only_safe:
                steps = [s for s in steps if not s.destructive]
            elif risky and not allow_destructive:
                raise MigrationRefused("The migration has risky steps; review them with `flask crm migrate --plan` "
                                       "and apply with --allow-destructive:", [s.describe() for s in risky])
            blocked = [s for s in steps if s.blockers]
            if blocked:
                raise MigrationRefused("The migration cannot be applied: existing rows do not fit the new config:",
                                       [s.describe() for s in blocked])
            if steps:
                for s in steps:
                    if s.kind == "change_type" and s.column:
                        search.release(conn, s.table, s.column)
                self._execute(conn, steps)
            for what in search.sync(conn, self.config):
                log.info("text search: %s", what)
            if steps or not only_safe:
                self._write_snapshot(conn, partial=only_safe and bool(risky))
            if steps:
                conn.execute(migrations.insert().values(
                    applied_at=dt.datetime.now(dt.timezone.utc).replace(tzinfo=None),
                    config_digest=self.config.digest, steps=[s.as_dict() for s in steps],
                    destructive=any(s.destructive for s in steps)))
                if audit_as is not None:
                    self._audit(conn, steps, audit_as)
        return steps

    def _audit(self, conn, steps: list[Step], actor) -> None:
        from . import audit
        if audit.audit_log.name not in self.metadata.tables:
            return                     # a metadata without the log (engine imported without it)
        audit.append(conn, "config.apply", user_id=actor.id, username=actor.username,
                     detail=summary(steps, self.config.digest))

    def _execute(self, conn, steps: list[Step]):
        ops = Operations(MigrationContext.configure(conn))
        sqlite = is_sqlite(conn)
        order = {"drop_index": 0, "remove_entity": 1, "create_table": 2, "rename_column": 3, "remove_field": 4,
                 "add_column": 5, "widen_column": 6, "change_type": 6, "require_field": 7, "note_required": 8,
                 "create_index": 9}
        created = []
        for s in sorted(steps, key=lambda s: order[s.kind]):
            if s.kind == "drop_index":
                ops.drop_index(s.payload["name"], table_name=s.table)
            elif s.kind == "remove_entity":
                for ix in sa.inspect(conn).get_indexes(s.table):
                    if ix["name"]:
                        ops.drop_index(ix["name"], table_name=s.table)
                ops.rename_table(s.table, self._free_name(conn, s.table, None))
            elif s.kind == "create_table":
                s.payload["table"].create(conn)
                created.append(s.payload["table"])
            elif s.kind == "rename_column":
                with ops.batch_alter_table(s.table) as b:
                    b.alter_column(s.column, new_column_name=s.payload["new"])
            elif s.kind == "remove_field":
                for ix in sa.inspect(conn).get_indexes(s.table):
                    if s.column in ix["column_names"]:
                        ops.drop_index(ix["name"], table_name=s.table)
                with ops.batch_alter_table(s.table) as b:
                    b.alter_column(s.column, new_column_name=self._free_name(conn, s.table, s.column))
            elif s.kind == "add_column":
                col = s.payload["column"]
                new = sa.Column(col.name, col.type, nullable=True)
                if not sqlite:
                    new = col._copy()
                    new.nullable = True
                ops.add_column(s.table, new)
            elif s.kind in ("widen_column", "change_type"):
                if s.payload.get("semantic"):
                    continue
                new_type = s.payload["type"]
                kw = {}
                if not sqlite:
                    kw["postgresql_using"] = f'"{s.column}"::{new_type.compile(dialect=conn.dialect)}'
                with ops.batch_alter_table(s.table) as b:
                    b.alter_column(s.column, type_=new_type, **kw)
            elif s.kind == "require_field":
                if s.payload.get("fill") is not None:
                    t = sa.table(s.table, sa.column(s.column))
                    conn.execute(t.update().where(t.c[s.column].is_(None)).values({s.column: s.payload["fill"]}))
            elif s.kind == "create_index":
                s.payload["index"].create(conn)
        if created and not sqlite:  # links between new tables, now that all of them exist
            self._add_deferred_fks(conn, created)

    @staticmethod
    def _add_deferred_fks(conn, tables):
        for t in tables:
            for fk in t.foreign_key_constraints:
                if fk.use_alter:
                    conn.execute(sa.schema.AddConstraint(fk))

    def _free_name(self, conn, table, column):
        insp = sa.inspect(conn)
        if column is None:
            taken = set(insp.get_table_names())
            base = f"{REMOVED}{table}"
        else:
            taken = {c["name"] for c in insp.get_columns(table)}
            base = f"{REMOVED}{column}"
        name, n = base, 1
        while name in taken:
            n += 1
            name = f"{base}_{n}"
        return name

    def _write_snapshot(self, conn, partial=False):
        existing = {(r.entity, r.field): r for r in conn.execute(sa.select(schema_fields))}
        rows = []
        for e in self.config.entities.values():
            for f in e.fields.values():
                if not f.stored:
                    continue
                old = existing.get((e.id, f.id))
                required = f.required
                if partial and old is not None and f.required and not old.required:
                    required = False  # the risky part was not applied yet
                ftype = f.value_type
                if partial and old is not None and old.type != ftype:
                    ftype = old.type
                rows.append({"entity": e.id, "field": f.id, "type": ftype, "required": required})
        conn.execute(schema_fields.delete())
        if rows:
            conn.execute(schema_fields.insert(), rows)

    def purge_removed(self) -> list[str]:
        """Drop columns and tables kept by earlier removals. Returns what was dropped."""
        dropped = []
        with writing(self.engine) as conn:
            ops = Operations(MigrationContext.configure(conn))
            insp = sa.inspect(conn)
            for name in insp.get_table_names():
                if name.startswith(REMOVED):
                    ops.drop_table(name)
                    dropped.append(name)
                    continue
                cols = [c["name"] for c in insp.get_columns(name) if c["name"].startswith(REMOVED)]
                if cols:
                    with ops.batch_alter_table(name) as b:
                        for c in cols:
                            b.drop_column(c)
                    dropped += [f"{name}.{c}" for c in cols]
        return dropped
