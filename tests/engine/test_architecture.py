"""Inner interfaces (issue 12), read from the source with `ast` (no app, no database):

- ui/ reaches data only through platform_ and engine services: it imports neither SQLAlchemy nor
  a table (engine.systables, engine.tables, engine.wftables, or any Table another module defines);
- no module of engine/, platform_/ or ui/ uses another module's private names: no
  `from engine.x import _name` (nor platform_, ui, or relative), and no `obj._attr` unless `obj` is
  `self`, `cls`, `super()` or a name the module itself defines.

test_layering.py beside this one keeps Flask out of engine/ and pack entities out of generic code.
"""
from __future__ import annotations

import ast
import importlib
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[2]
LAYERS = ("engine", "platform_", "ui")
TABLE_MODULES = {"engine.systables", "engine.tables", "engine.wftables"}

# Private names of other libraries that are their documented or only way to do something.
THIRD_PARTY_PRIVATE = {
    "_getframe",            # sys._getframe: the caller's frame
    "_asdict", "_replace", "_fields", "_make",   # namedtuple's public API is spelled with a leading _
    "_get_current_object",  # werkzeug LocalProxy (current_app, request): the real object behind the proxy
}
# (file, expression) pairs allowed one by one.
ALLOWED = {
    ("engine/migrator.py", "col._copy"),    # SQLAlchemy Column._copy(): Column.copy() is deprecated for it
}
# Per-request caches a module keeps on Flask's `g` / `request`: allowed when the module sets them itself.
REQUEST_OBJECTS = {"g", "request"}



def _modules(*layers):
    for layer in layers:
        for p in sorted((ROOT / layer).rglob("*.py")):
            yield p.relative_to(ROOT).as_posix(), ast.parse(p.read_text(encoding="utf-8"))


def _dunder(name: str) -> bool:
    return name.startswith("__") and name.endswith("__")


def _own_names(tree: ast.Module) -> set:
    """Names the module defines at its top level (functions, classes, assignments)."""
    out = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            out.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            out |= {n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)}
    return out


def _request_caches(tree: ast.Module) -> set:
    """`g._x` / `request._x` the module assigns: its own per-request caches."""
    return {f"{t.value.id}.{t.attr}" for node in ast.walk(tree) if isinstance(node, ast.Assign)
            for t in node.targets if isinstance(t, ast.Attribute) and isinstance(t.value, ast.Name)
            and t.value.id in REQUEST_OBJECTS}


def private_crossings(rel: str, tree: ast.Module) -> list[str]:
    """Every use in one module of another module's private name, as source text."""
    own, caches, out = _own_names(tree), _request_caches(tree), []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            ours = node.level > 0 or (node.module or "").split(".")[0] in LAYERS
            for a in node.names:
                if ours and a.name.startswith("_") and not _dunder(a.name):
                    out.append(f"from {'.' * node.level}{node.module or ''} import {a.name}")
        elif isinstance(node, ast.Attribute) and node.attr.startswith("_") and not _dunder(node.attr):
            base, text = node.value, ast.unparse(node)
            if isinstance(base, ast.Name) and (base.id in ("self", "cls") or base.id in own):
                continue
            if isinstance(base, ast.Call) and isinstance(base.func, ast.Name) and base.func.id == "super":
                continue
            if node.attr in THIRD_PARTY_PRIVATE or (rel, text) in ALLOWED or text in caches:
                continue
            out.append(text)
    return out


def _is_table(module: str, name: str) -> bool:
    try:
        return isinstance(getattr(importlib.import_module(module), name, None), sa.Table)
    except ImportError:
        return False


def data_imports(tree: ast.Module) -> list[str]:
    """SQLAlchemy and table imports of one module, as source text."""
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name.split(".")[0] == "sqlalchemy" or a.name in TABLE_MODULES:
                    out.append(f"import {a.name}")
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            mod = node.module
            for a in node.names:
                if (mod.split(".")[0] == "sqlalchemy" or mod in TABLE_MODULES
                        or f"{mod}.{a.name}" in TABLE_MODULES
                        or (mod.split(".")[0] in ("engine", "platform_") and _is_table(mod, a.name))):
                    out.append(f"from {mod} import {a.name}")
    return out


def test_ui_reaches_data_only_through_services():
    found = [(rel, line) for rel, tree in _modules("ui") for line in data_imports(tree)]
    assert found == []


def test_no_module_uses_another_modules_private_names():
    found = [(rel, text) for rel, tree in _modules(*LAYERS) for text in private_crossings(rel, tree)]
    assert found == []


def test_the_checks_catch_what_they_are_for():
    """Each check flags the lines it exists for (and lets the allowed ones through)."""
    bad = ast.parse("import sqlalchemy as sa\nfrom engine.systables import users\n"
                    "from engine import wftables\nfrom engine.audit import audit_log\n"
                    "from engine.audit import entries\n")
    assert data_imports(bad) == ["import sqlalchemy", "from engine.systables import users",
                                 "from engine import wftables", "from engine.audit import audit_log"]
    src = ("from engine.store import _integrity_error\nfrom .records import _shown\nfrom . import _x as y\n"
           "from collections import _private_ok\n"
           "def _mine(): pass\n"
           "class C:\n    def f(self, store, other):\n"
           "        self._a; cls._b; super()._c(); _mine._d; store._read; other.thing._e\n"
           "        sys._getframe(); row._asdict(); g._cache = 1; g._cache; g._elsewhere\n")
    assert private_crossings("ui/x.py", ast.parse(src)) == [
        "from engine.store import _integrity_error", "from .records import _shown", "from . import _x",
        "store._read", "other.thing._e", "g._elsewhere"]
