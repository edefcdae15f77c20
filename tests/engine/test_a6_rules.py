"""A6: one rule language on simpleeval — parsed once, sandboxed, documented functions."""
import datetime as dt
from decimal import Decimal

import pytest

from engine import rules
from engine.errors import RuleError


def test_a6_functions_and_names():
    names = {"amount": Decimal("100.50"), "probability": Decimal("30"), "stage": "won",
             "closed": dt.date(2026, 1, 1), "lines": [{"amount": Decimal("1.10")}, {"amount": Decimal("2.20")}],
             "customer": {"level": "high"}, "name": "Haitian"}
    assert rules.evaluate("amount * probability / 100", names) == Decimal("30.15")
    assert rules.evaluate("stage in ('won', 'lost')", names) is True
    assert rules.evaluate("sum(lines, 'amount')", names) == Decimal("3.30")
    assert rules.evaluate("customer.level == 'high'", names) is True
    assert rules.evaluate("days_between(closed, add_days(closed, 10))", names) == 10
    assert rules.evaluate("upper(name) + lower('X')", names) == "HAITIANx"
    assert rules.evaluate("contains(name, 'tia')", names) is True
    assert rules.evaluate("coalesce(None, '', 3)", names) == 3
    assert rules.evaluate("round(2.345, 2)", names) == Decimal("2.35")  # decimal literals: exact money
    assert rules.evaluate("0.1 + 0.2 == 0.3", names) is True
    assert rules.evaluate("amount * (1 - 10 / 100)", names) == Decimal("90.45")   # int division stays exact
    assert rules.evaluate("current_user()", names, user_id=42) == 42
    assert rules.evaluate("today()", names) == dt.date.today()
    assert rules.evaluate("max(1, 5, 3) - min(4, 2)", names) == 3
    assert rules.evaluate("len(lines)", names) == 2


@pytest.mark.parametrize("expr", [
    "__import__('os')", "name.__class__", "open('/etc/passwd')", "(1).real", "name.upper()",
    "lambda: 1", "eval('1')", "getattr(name, 'x')",
])
def test_a6_sandbox_refuses(expr):
    with pytest.raises(RuleError):
        rules.evaluate(expr, {"name": "x"})


def test_a6_bounded_size():
    with pytest.raises(RuleError, match="longer than"):
        rules.parse("1 + " * 600 + "1")
    with pytest.raises(RuleError, match="too large"):
        rules.parse("+".join(["a"] * 300))
    with pytest.raises(RuleError):
        rules.evaluate("9 ** 9 ** 9", {})


def test_a6_parsed_once_and_cached():
    rules.parse.cache_clear()
    for _ in range(50):
        rules.evaluate("a + 1", {"a": 1})
    assert rules.parse.cache_info().misses == 1


def test_a6_runtime_failure_names_rule_file_and_record():
    with pytest.raises(RuleError) as info:
        rules.evaluate("amount / 0", {"amount": 1}, rule="ratio", source="config/entities/x.yaml:12",
                       record="deal #7")
    msg = str(info.value)
    assert "ratio" in msg and "x.yaml:12" in msg and "deal #7" in msg


def test_a6_names_used():
    assert rules.names_used("customer.level == 'a' and amount > 0 and sum(lines, 'x')") == \
        {"customer.level", "amount", "lines"}


def test_a6_default_call_expression_detection():
    assert rules.is_call_expression("today()")
    assert rules.is_call_expression("add_days(today(), 3)")
    assert not rules.is_call_expression("open")
    assert not rules.is_call_expression("Sales (North)")
