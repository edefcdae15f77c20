"""Forecast reports (`forecast:` in config/reports, engine/reports.py `forecast`): per month the won
amount (actuals), the probability-weighted open pipeline from the current month on, and a
least-squares trend of the last complete months — checked against figures computed by hand on fixed
data (today is 2026-06-15), on SQLite and PostgreSQL; and the config checker's problems at file:line."""
from __future__ import annotations

import datetime as dt
import textwrap
from decimal import Decimal

import pytest

from engine import clock
from engine.access import AccessPolicy
from engine.actor import Actor
from engine.db import make_engine
from engine.errors import ConfigInvalid, Forbidden
from engine.loader import load_config
from engine.migrator import Migrator
from engine.reports import linear_trend, period_index, period_text, run
from engine.store import RecordStore
from engine.systables import users

ADMIN = Actor(id=None, username="admin", roles=("admin",))
REP = Actor(id=1, username="rep1", roles=("rep",))
TODAY = dt.date(2026, 6, 15)

FILES = {
    "entities/deal.yaml": """
        entity: deal
        label: {en: Deal, zh: 交易}
        fields:
          name: {type: string, required: true}
          stage: {type: select, options: [open, won, lost]}
          amount: {type: money, label: {en: Amount, zh: 金额}}
          weighted: {type: money, label: {en: Weighted, zh: 加权金额}}
          closes: {type: date, label: {en: Closes, zh: 成交日期}}
    """,
    "access.yaml": """
        permissions:
          rep:
            "*": [read]
        scopes:
          rep:
            deal: own
    """,
    "reports/won.yaml": """
        report: won
        entity: deal
        filter: {stage: won}
        group_by:
          - {field: closes, bucket: month, as: month}
        measures:
          amount: {fn: sum, field: amount, label: {en: Won, zh: 赢单}}
          count: {fn: count}
    """,
    "reports/forecast.yaml": """
        report: forecast
        label: {en: Forecast, zh: 预测}
        entity: deal
        filter: {stage: open}
        group_by:
          - {field: closes, bucket: month, as: month}
        measures:
          weighted: {fn: sum, field: weighted, label: {en: Weighted pipeline, zh: 加权在途}}
          amount: {fn: sum, field: amount}
        forecast:
          actual: {report: won, measure: amount}
          trend: {periods: 3}
        chart: {type: bar, y: weighted}
    """,
    "reports/bosses.yaml": """
        report: bosses
        entity: deal
        roles: [boss]
        filter: {stage: won}
        group_by:
          - {field: closes, bucket: month}
        measures:
          amount: {fn: sum, field: amount}
    """,
    "reports/guarded.yaml": """
        report: guarded
        entity: deal
        group_by:
          - {field: closes, bucket: month}
        measures:
          amount: {fn: sum, field: amount}
        forecast:
          actual: {report: bosses, measure: amount}
    """,
}

# (name, stage, amount, weighted, closes, owner)
DEALS = [
    ("W1", "won", "100.00", None, dt.date(2026, 1, 20), 1),
    ("W2", "won", "300.00", None, dt.date(2026, 3, 5), 2),
    ("W3", "won", "200.00", None, dt.date(2026, 4, 1), 1),
    ("W4", "won", "150.00", None, dt.date(2026, 4, 30), 2),
    ("W5", "won", "500.00", None, dt.date(2026, 5, 31), 1),
    ("W6", "won", "80.00", None, dt.date(2026, 6, 2), 2),          # this month: shown, not fitted
    ("L1", "lost", "999.00", None, dt.date(2026, 5, 10), 1),       # lost: nowhere
    ("O1", "open", "1000.00", "500.00", dt.date(2026, 6, 20), 1),  # probability 50 %
    ("O2", "open", "200.00", "50.00", dt.date(2026, 6, 25), 2),    # 25 %
    ("O3", "open", "400.00", "40.00", dt.date(2026, 8, 1), 1),     # 10 %
    ("O4", "open", "300.00", "150.00", dt.date(2026, 5, 20), 1),   # overdue: before this month, left out
    ("O5", "open", "700.00", "70.00", None, 1),                    # no close date: no period
]


def write_config(root, files):
    for name, text in files.items():
        p = root / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return root


@pytest.fixture
def fstore(db_url, tmp_path, monkeypatch):
    monkeypatch.setattr(clock, "today", lambda: TODAY)
    cfg = load_config(write_config(tmp_path / "cfg", FILES))
    eng = make_engine(db_url)
    m = Migrator(eng, cfg)
    m.apply()
    store = RecordStore(eng, cfg, m.metadata)
    store.policy = AccessPolicy(cfg, m.metadata.tables)
    t = store.table("deal")
    with eng.begin() as c:
        c.execute(users.insert(), [{"id": 1, "username": "rep1", "roles": ["rep"]},
                                   {"id": 2, "username": "rep2", "roles": ["rep"]}])
        c.execute(t.insert(), [{"name": n, "stage": st, "amount": Decimal(a), "weighted": Decimal(w) if w else None,
                                "closes": d, "owner": o, "version": 1} for n, st, a, w, d, o in DEALS])
    yield store
    eng.dispose()


def D(text):
    return None if text is None else Decimal(text)


def test_actuals_pipeline_and_trend_by_hand(fstore):
    res = run(fstore, "forecast", ADMIN)
    assert [c.id for c in res.columns] == ["month", "actual", "weighted", "amount", "trend"]
    assert [c.kind for c in res.columns] == ["group", "measure", "measure", "measure", "measure"]
    # trend: least squares over March..May = 300, 350, 500 → slope 100 a month, 283.33 in March
    expected = [
        ["2026-01", "100.00", None, None, None],
        ["2026-02", "0", None, None, None],              # no won deal: 0, the month still shown
        ["2026-03", "300.00", None, None, "283.33"],
        ["2026-04", "350.00", None, None, "383.33"],
        ["2026-05", "500.00", None, None, "483.33"],     # O4 (overdue, May) is not pipeline
        ["2026-06", "80.00", "550.00", "1200.00", "583.33"],
        ["2026-07", None, None, None, "683.33"],
        ["2026-08", None, "40.00", "400.00", "783.33"],
    ]
    assert res.rows == [[r[0], *map(D, r[1:])] for r in expected]
    assert res.totals == [None, Decimal("1330.00"), Decimal("590.00"), Decimal("1600.00"), None]
    assert res.columns[-1].type == "money" and res.columns[1].label == {"en": "Won", "zh": "赢单"}
    assert res.columns[-1].label["zh"] == "趋势"


def test_filters_narrow_actuals_and_pipeline_alike(fstore):
    res = run(fstore, "forecast", ADMIN, {"owner": "1"})
    rows = {r[0]: r[1:] for r in res.rows}
    # owner 1: won Jan 100, Apr 200, May 500; fitted March..May = 0, 200, 500 → slope 250, mean 233.33
    assert rows["2026-03"] == [Decimal(0), None, None, Decimal("-16.67")]
    assert rows["2026-05"] == [Decimal("500.00"), None, None, Decimal("483.33")]
    assert rows["2026-06"] == [Decimal(0), Decimal("500.00"), Decimal("1000.00"), Decimal("733.33")]
    assert rows["2026-08"] == [None, Decimal("40.00"), Decimal("400.00"), Decimal("1233.33")]


def test_row_scope_holds_for_both_reports(fstore):
    res = run(fstore, "forecast", REP)               # rep1 sees his own deals only: as owner=1
    assert res.rows == run(fstore, "forecast", ADMIN, {"owner": "1"}).rows


def test_actuals_from_a_report_the_user_may_not_run_are_refused(fstore):
    with pytest.raises(Forbidden):
        run(fstore, "guarded", REP)


def test_no_history_no_trend(fstore, monkeypatch):
    monkeypatch.setattr(clock, "today", lambda: dt.date(2026, 2, 10))
    res = run(fstore, "forecast", ADMIN, {"owner": "2"})     # owner 2's first won deal is in March
    assert all(r[-1] is None for r in res.rows)
    assert res.rows[0] == ["2026-02", None, None, None, None]


def test_trend_and_period_arithmetic():
    assert linear_trend([(0, 1), (1, 3), (2, 5)]) == (Decimal(1), Decimal(2))
    assert linear_trend([(5, 7)]) is None
    for bucket, day, text in (("month", dt.date(2026, 12, 31), "2026-12"), ("quarter", dt.date(2026, 11, 2), "2026-Q4"),
                              ("year", dt.date(2026, 3, 1), "2026"), ("week", dt.date(2026, 11, 26), "2026-11-23"),
                              ("day", dt.date(2026, 2, 28), "2026-02-28")):
        i = period_index(bucket, day)
        assert period_text(bucket, i) == text
        assert period_index(bucket, dt.date(2027, 1, 5)) > i
    assert period_text("month", period_index("month", dt.date(2026, 12, 1)) + 1) == "2027-01"
    assert period_text("quarter", period_index("quarter", dt.date(2026, 12, 1)) + 1) == "2027-Q1"


def _problems(tmp_path, name, text):
    files = dict(FILES)
    files[f"reports/{name}.yaml"] = text
    with pytest.raises(ConfigInvalid) as e:
        load_config(write_config(tmp_path / name, files))
    return "\n".join(str(p) for p in e.value.problems)


def test_config_problems_at_file_and_line(tmp_path):
    text = _problems(tmp_path, "bad", """
        report: bad
        entity: deal
        group_by:
          - {field: closes, bucket: quarter}
        measures:
          amount: {fn: sum, field: amount}
        forecast:
          actual: {report: won, measure: amonut, as: amount}
    """)
    assert "reports/bad.yaml:8" in text and "won must group by one date field with bucket quarter" in text
    assert "'amonut' is not a measure of won" in text and "did you mean 'amount'" in text
    assert "'amount' is already a column of bad" in text
    text = _problems(tmp_path, "flat", """
        report: flat
        entity: deal
        group_by: [stage]
        measures:
          count: {fn: count}
        forecast:
          actual: {report: wno, measure: amount}
    """)
    assert "reports/flat.yaml:3" in text and "a forecast groups by exactly one date field" in text
    text = _problems(tmp_path, "short", """
        report: short
        entity: deal
        group_by:
          - {field: closes, bucket: month}
        measures:
          count: {fn: count}
        forecast:
          actual: {report: wno, measure: amount}
    """)
    assert "reports/short.yaml:8" in text and "'wno' is not a report" in text and "did you mean 'won'" in text
    text = _problems(tmp_path, "one", """
        report: one
        entity: deal
        group_by:
          - {field: closes, bucket: month}
        measures:
          count: {fn: count}
        forecast:
          actual: {report: won, measure: amount}
          trend: {periods: 1}
    """)
    assert "reports/one.yaml:9" in text and "less than the minimum of 2" in text


def test_the_default_pack_forecast_loads():
    from tests.conftest import ROOT
    cfg = load_config(ROOT / "config")
    rep = cfg.reports["sales_forecast"]
    assert rep.forecast.report == "won_revenue" and rep.forecast.measure == "amount"
    assert "sales_forecast" in [w.report for w in cfg.dashboards["sales"].widgets]
