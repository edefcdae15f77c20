"""The one rule language: simpleeval expressions, parsed once, evaluated in a small sandbox.

Names are the record's fields; a linked record's fields are reached with a dot
(`customer.level`); a `table` field is a list of row mappings. Only the functions of
FUNCTIONS can be called, attribute access works only on records (never on Python objects), float
literals become Decimal so money stays exact, and expressions are bounded in length and size.
"""
from __future__ import annotations

import ast
import datetime as dt
import threading
from collections.abc import Mapping
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from functools import lru_cache

import simpleeval
from simpleeval import EvalWithCompoundTypes

from . import clock
from .errors import RuleError

MAX_EXPR_LENGTH = 2000
MAX_NODES = 400


def _as_date(v):
    if v is None or isinstance(v, dt.date):
        return v.date() if isinstance(v, dt.datetime) else v
    return dt.date.fromisoformat(str(v)[:10])


def _num(v):
    if isinstance(v, (int, Decimal)) and not isinstance(v, bool):
        return v
    if isinstance(v, float):
        return Decimal(repr(v))
    if v is None:
        return None
    try:
        return Decimal(str(v))
    except InvalidOperation:
        raise TypeError(f"{v!r} is not a number")


def _sum(rows, field=None):
    total = Decimal(0)
    for r in rows or ():
        v = r.get(field) if field is not None else r
        if v not in (None, ""):
            total += _num(v)
    return total


def _coalesce(*values):
    for v in values:
        if v not in (None, ""):
            return v
    return None


def _round(x, n=0):
    """Commercial rounding (half up), not Python's banker's rounding: round(2.345, 2) == 2.35."""
    if x is None:
        return None
    q = _num(x).quantize(Decimal(1).scaleb(-int(n)), rounding=ROUND_HALF_UP) if isinstance(_num(x), Decimal) \
        else _num(x)
    return int(q) if int(n) <= 0 and isinstance(q, Decimal) else q


def _minmax(fn):
    def inner(*args):
        vals = [a for a in (args[0] if len(args) == 1 and isinstance(args[0], (list, tuple)) else args)
                if a is not None]
        return fn(vals) if vals else None
    return inner


def _contains(text, part):
    if text is None or part is None:
        return False
    if isinstance(text, (list, tuple)):
        return part in text
    return str(part).lower() in str(text).lower()


_calendars: list = [None]       # cid -> BusinessCalendar, set by the automation service


def set_calendar_provider(provider) -> None:
    """Where `add_business_hours`/`add_business_days` find calendars (with their holidays)."""
    _calendars[0] = provider


def _business(kind: str):
    def fn(start, amount, calendar="standard"):
        if start is None or amount is None:
            return None
        if _calendars[0] is None:
            raise RuleError(f"{kind}: no business calendar is configured")
        try:
            cal = _calendars[0](str(calendar))
        except Exception as e:  # noqa: BLE001 - an unknown calendar is the rule's error
            raise RuleError(f"{kind}: {getattr(e, 'message', e)}") from None
        if isinstance(start, dt.datetime):
            aware = start.replace(tzinfo=dt.timezone.utc) if start.tzinfo is None else start
        else:                                   # a date: the start of that day in the calendar's zone
            aware = dt.datetime.combine(_as_date(start), dt.time(0), tzinfo=cal.tz)
        out = cal.add_hours(aware, _num(amount)) if kind == "add_business_hours" else cal.add_days(aware, int(amount))
        return clock.to_utc_naive(out)
    return fn


_aggregates: list = [None]      # fn(entity, link_field, record_id, amount_field, date_field, months)


def set_aggregate_provider(provider) -> None:
    """Where `monthly_sums` reads linked records (set by the automation service)."""
    _aggregates[0] = provider


def _monthly_sums(entity, link_field, record_id, amount_field, date_field, months=3):
    """Sums of `amount_field` of the `entity` records linked to `record_id` by `link_field`, per calendar
    month, for the `months` complete months before this one, oldest first."""
    if _aggregates[0] is None:
        raise RuleError("monthly_sums: not available here")
    months = int(months)
    if not 1 <= months <= 36:
        raise RuleError("monthly_sums: months must be between 1 and 36")
    if record_id is None:
        return [Decimal(0)] * months
    return _aggregates[0](str(entity), str(link_field), int(record_id), str(amount_field), str(date_field), months)


def _falling(values, times=None):
    """True when each value is lower than the one before, `times` times in a row (default: all)."""
    vals = [_num(v) if v is not None else Decimal(0) for v in (values or [])]
    steps = len(vals) - 1 if times is None else int(times)
    if steps < 1 or len(vals) < steps + 1:
        return False
    tail = vals[-(steps + 1):]
    return all(b < a for a, b in zip(tail, tail[1:]))


FUNCTIONS = {
    "monthly_sums": _monthly_sums,
    "falling": _falling,
    "add_business_hours": _business("add_business_hours"),
    "add_business_days": _business("add_business_days"),
    "today": lambda: clock.today(),
    "now": lambda: clock.now(),
    "days_between": lambda a, b: None if a is None or b is None else (_as_date(b) - _as_date(a)).days,
    "add_days": lambda d, n: None if d is None else _as_date(d) + dt.timedelta(days=int(n)),
    "date": _as_date,
    "lower": lambda s: None if s is None else str(s).lower(),
    "upper": lambda s: None if s is None else str(s).upper(),
    "contains": _contains,
    "len": lambda s: 0 if s is None else len(s),
    "round": _round,
    "min": _minmax(min),
    "max": _minmax(max),
    "abs": lambda x: None if x is None else abs(_num(x)),
    "sum": _sum,
    "coalesce": _coalesce,
    "empty": lambda v: v in (None, "", [], ()),
    "str": lambda v: "" if v is None else str(v),
    "int": lambda v: None if v is None else int(_num(v)),
    "current_user": None,  # bound per evaluation to the acting user's id
}
FUNCTION_NAMES = frozenset(FUNCTIONS)
CONSTANTS = {"True": True, "False": False, "None": None, "true": True, "false": False, "null": None}


def _div(a, b):
    """Division stays exact: 1 / 100 is Decimal('0.01'), never a float that Decimal refuses to mix with."""
    if isinstance(a, (int, Decimal)) and isinstance(b, (int, Decimal)) and not isinstance(a, bool):
        return Decimal(a) / Decimal(b)
    return a / b


class _Sandbox(EvalWithCompoundTypes):
    """simpleeval with calls limited to FUNCTIONS and attribute access limited to records."""

    def __init__(self, **kw):
        super().__init__(**kw)
        self.operators[ast.Div] = _div

    def _eval_call(self, node):
        if not isinstance(node.func, ast.Name):
            raise simpleeval.FeatureNotAvailable("only the rule functions can be called")
        return super()._eval_call(node)

    def _eval_attribute(self, node):
        if node.attr.startswith("_"):
            raise simpleeval.FeatureNotAvailable(f"no access to {node.attr!r}")
        base = self._eval(node.value)
        if base is None:
            return None  # an empty link: customer.level is empty too
        if isinstance(base, Mapping):
            return base.get(node.attr)
        raise simpleeval.FeatureNotAvailable(f"'.{node.attr}' works only on linked records")

    def _eval_constant(self, node):
        if isinstance(node.value, float):
            return Decimal(repr(node.value))
        return super()._eval_constant(node)


_local = threading.local()


def _sandbox() -> _Sandbox:
    sb = getattr(_local, "sandbox", None)
    if sb is None:
        sb = _Sandbox(functions=dict(FUNCTIONS))
        _local.sandbox = sb
    return sb


@lru_cache(maxsize=8192)
def parse(expr: str) -> ast.AST:
    """Parse an expression once (cached); raise RuleError with the position of a syntax error."""
    if not isinstance(expr, str) or not expr.strip():
        raise RuleError("an expression must be a non-empty string")
    if len(expr) > MAX_EXPR_LENGTH:
        raise RuleError(f"the expression is longer than {MAX_EXPR_LENGTH} characters")
    try:
        tree = ast.parse(expr.strip(), mode="eval").body
    except SyntaxError as e:
        raise RuleError(f"syntax error at column {e.offset}: {e.msg}") from None
    count = 0
    for n in ast.walk(tree):
        count += 1
        if isinstance(n, (ast.Lambda, ast.NamedExpr, ast.Starred, ast.Await, ast.Yield, ast.YieldFrom)):
            raise RuleError(f"{type(n).__name__.lower()} is not allowed in a rule")
        if isinstance(n, ast.Attribute) and n.attr.startswith("_"):
            raise RuleError(f"no access to {n.attr!r}")
        if isinstance(n, ast.Call) and not (isinstance(n.func, ast.Name) and n.func.id in FUNCTION_NAMES):
            fname = n.func.id if isinstance(n.func, ast.Name) else ast.unparse(n.func)
            raise RuleError(f"unknown function {fname!r}; the rule functions are {', '.join(sorted(FUNCTION_NAMES))}")
    if count > MAX_NODES:
        raise RuleError(f"the expression is too large ({count} nodes, at most {MAX_NODES})")
    return tree


def names_used(expr: str) -> set[str]:
    """Record names an expression reads: 'amount', 'customer.level' (one dot deep), 'lines'."""
    tree = parse(expr)
    out = set()
    bound = set()
    for n in ast.walk(tree):
        if isinstance(n, ast.comprehension):
            for t in ast.walk(n.target):
                if isinstance(t, ast.Name):
                    bound.add(t.id)
    bases = {id(n.value) for n in ast.walk(tree) if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name)}
    for n in ast.walk(tree):
        if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name):
            out.add(f"{n.value.id}.{n.attr}")
        elif isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load) and id(n) not in bases:
            if n.id in FUNCTION_NAMES or n.id in CONSTANTS or n.id in bound:
                continue
            out.add(n.id)
    return out


def evaluate(expr: str, names: Mapping, user_id=None, *, rule: str | None = None,
             source: str | None = None, record: str | None = None):
    """Evaluate an expression against names; raise RuleError naming the rule, file and record."""
    tree = parse(expr)
    sb = _sandbox()
    sb.names = _Names(names)
    sb.functions["current_user"] = lambda: user_id
    try:
        return sb.eval(expr, previously_parsed=tree)
    except RuleError:
        raise
    except TypeError as e:
        raise RuleError(f"cannot evaluate {expr!r}: {e}", rule, source, record) from None
    except Exception as e:  # simpleeval's own errors, ZeroDivision, bad dates …
        raise RuleError(f"cannot evaluate {expr!r}: {type(e).__name__}: {e}", rule, source, record) from None


class _Names(dict):
    """Record values as names; unknown names are None-valued only when declared by the caller."""

    def __init__(self, values: Mapping):
        super().__init__(CONSTANTS)
        self.values = values

    def __contains__(self, key):
        return dict.__contains__(self, key) or key in self.values

    def __getitem__(self, key):
        if dict.__contains__(self, key):
            return dict.__getitem__(self, key)
        return self.values[key]


def is_call_expression(value) -> bool:
    """A default written as a function call (`today()`, `add_days(today(), 7)`) is evaluated."""
    if not isinstance(value, str) or "(" not in value:
        return False
    try:
        tree = parse(value)
    except RuleError:
        return False
    return isinstance(tree, ast.Call)
