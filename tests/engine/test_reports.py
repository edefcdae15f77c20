"""Reports (engine/reports.py): figures on fixed data against hand-computed ones, on SQLite and
PostgreSQL — date buckets, a linked group-by, each measure, totals, parameters, row scopes and
hidden fields; and the config checker's problems at file:line."""
from __future__ import annotations

import datetime as dt
import textwrap
from decimal import Decimal

import pytest

from engine.actor import Actor
from engine.access import AccessPolicy
from engine.db import make_engine
from engine.errors import ConfigInvalid, Forbidden, NotFound
from engine.loader import load_config
from engine.migrator import Migrator
from engine.reports import bucket_bounds, drill_filters, period_bounds, run
from engine.store import RecordStore
from engine.systables import users

ADMIN = Actor(id=None, username="admin", roles=("admin",))
REP = Actor(id=1, username="rep1", roles=("rep",))

FILES = {
    "entities/region.yaml": """
        entity: region
        label: {en: Region, zh: 区域}
        fields:
          name: {type: string, required: true}
    """,
    "entities/client.yaml": """
        entity: client
        label: {en: Client, zh: 客户}
        fields:
          name: {type: string, required: true}
          region: {type: link, to: region, label: {en: Region, zh: 区域}}
    """,
    "entities/sale.yaml": """
        entity: sale
        label: {en: Sale, zh: 销售单}
        fields:
          name: {type: string, required: true}
          client: {type: link, to: client, label: {en: Client, zh: 客户}}
          stage:
            type: select
            label: {en: Stage, zh: 阶段}
            options: [open, won, lost]
          amount: {type: money, label: {en: Amount, zh: 金额}}
          cost: {type: money, label: {en: Cost, zh: 成本}}
          qty: {type: integer}
          closed: {type: date, label: {en: Closed, zh: 成交日期}}
    """,
    "access.yaml": """
        permissions:
          rep:
            "*": [read]
        scopes:
          rep:
            sale: own
        hidden:
          rep:
            sale: [cost]
    """,
    "reports/by_month.yaml": """
        report: by_month
        label: {en: Sales by month, zh: 每月销售}
        entity: sale
        group_by:
          - {field: closed, bucket: month, as: month}
        measures:
          count: {fn: count}
          amount: {fn: sum, field: amount}
    """,
    "reports/by_region.yaml": """
        report: by_region
        entity: sale
        group_by: [client.region]
        measures:
          count: {fn: count}
          amount: {fn: sum, field: amount}
        sort: -amount
    """,
    "reports/measures.yaml": """
        report: measures
        entity: sale
        measures:
          count: {fn: count}
          total: {fn: sum, field: amount}
          average: {fn: avg, field: amount}
          smallest: {fn: min, field: amount}
          largest: {fn: max, field: amount}
          clients: {fn: distinct, field: client}
          first: {fn: min, field: closed}
          last: {fn: max, field: closed}
          units: {fn: sum, field: qty}
    """,
    "reports/won.yaml": """
        report: won
        entity: sale
        filter: {stage: won}
        params:
          since: {field: closed, op: gte}
        group_by: [stage]
        measures:
          amount: {fn: sum, field: amount}
    """,
    "reports/costs.yaml": """
        report: costs
        entity: sale
        group_by: [stage]
        measures:
          cost: {fn: sum, field: cost}
    """,
    "reports/by_created.yaml": """
        report: by_created
        entity: sale
        group_by:
          - {field: created_at, bucket: month}
        measures:
          count: {fn: count}
    """,
    "reports/managers.yaml": """
        report: managers
        entity: sale
        roles: [boss]
        measures:
          count: {fn: count}
    """,
}

# (name, client, stage, amount, cost, qty, closed, owner): regions North (c1), South (c2), none (c3)
SALES = [
    ("A1", 1, "won", "100.00", "10.00", 1, dt.date(2026, 1, 15), 1),
    ("A2", 1, "won", "200.00", "20.00", 2, dt.date(2026, 1, 31), 2),
    ("A3", 2, "won", "50.00", "5.00", 3, dt.date(2026, 2, 1), 1),
    ("A4", 2, "open", "400.00", "40.00", 4, dt.date(2026, 4, 10), 1),
    ("A5", 3, "lost", "25.00", None, 5, dt.date(2025, 12, 30), 2),
    ("A6", 1, "open", None, None, None, None, 1),
]


def write_config(root, files):
    for name, text in files.items():
        p = root / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return root


@pytest.fixture
def rstore(db_url, tmp_path):
    cfg = load_config(write_config(tmp_path / "cfg", FILES))
    eng = make_engine(db_url)
    m = Migrator(eng, cfg)
    m.apply()
    store = RecordStore(eng, cfg, m.metadata)
    store.policy = AccessPolicy(cfg, m.metadata.tables)
    t = {e: store.table(e) for e in ("region", "client", "sale")}
    with eng.begin() as c:
        c.execute(users.insert(), [{"id": 1, "username": "rep1", "roles": ["rep"]},
                                   {"id": 2, "username": "rep2", "roles": ["rep"]}])
        c.execute(t["region"].insert(), [{"id": 1, "name": "North", "version": 1},
                                         {"id": 2, "name": "South", "version": 1}])
        c.execute(t["client"].insert(), [{"id": 1, "name": "C1", "region": 1, "version": 1},
                                         {"id": 2, "name": "C2", "region": 2, "version": 1},
                                         {"id": 3, "name": "C3", "region": None, "version": 1}])
        created = [dt.datetime(2026, 3, 31, 23, 30), dt.datetime(2026, 4, 1, 0, 15)]
        c.execute(t["sale"].insert(), [
            {"name": n, "client": cl, "stage": st, "amount": Decimal(a) if a else None,
             "cost": Decimal(co) if co else None, "qty": q, "closed": d, "owner": o, "version": 1,
             "created_at": created[i % 2]} for i, (n, cl, st, a, co, q, d, o) in enumerate(SALES)])
        # a deleted sale counts nowhere
        c.execute(t["sale"].insert(), [{"name": "gone", "stage": "won", "amount": Decimal("9999"), "owner": 1,
                                        "version": 1, "closed": dt.date(2026, 1, 1),
                                        "deleted_at": dt.datetime(2026, 1, 2)}])
    yield store
    eng.dispose()


def table(result):
    return {tuple(r[:len(result.report.group_by)]): r[len(result.report.group_by):] for r in result.rows}


def test_month_buckets_with_totals(rstore):
    res = run(rstore, "by_month", ADMIN)
    assert [c.id for c in res.columns] == ["month", "count", "amount"]
    assert table(res) == {("2025-12",): [1, Decimal("25.00")], ("2026-01",): [2, Decimal("300.00")],
                          ("2026-02",): [1, Decimal("50.00")], ("2026-04",): [1, Decimal("400.00")],
                          (None,): [1, None]}
    assert res.totals == [None, 6, Decimal("775.00")]


@pytest.mark.parametrize("bucket, expected", [
    ("day", {"2025-12-30": 25, "2026-01-15": 100, "2026-01-31": 200, "2026-02-01": 50, "2026-04-10": 400}),
    ("week", {"2025-12-29": 25, "2026-01-12": 100, "2026-01-26": 250, "2026-04-06": 400}),
    ("quarter", {"2025-Q4": 25, "2026-Q1": 350, "2026-Q2": 400}),
    ("year", {"2025": 25, "2026": 750}),
])
def test_every_date_bucket(rstore, bucket, expected, tmp_path):
    files = dict(FILES)
    files["reports/by_month.yaml"] = FILES["reports/by_month.yaml"].replace("bucket: month", f"bucket: {bucket}")
    cfg = load_config(write_config(tmp_path / f"cfg-{bucket}", files))
    store = RecordStore(rstore.engine, cfg, rstore.metadata)
    got = {r[0]: r[2] for r in run(store, "by_month", ADMIN).rows if r[0] is not None}
    assert got == {k: Decimal(v).quantize(Decimal("0.01")) for k, v in expected.items()}


def test_datetime_bucket(rstore):
    res = run(rstore, "by_created", ADMIN)
    assert table(res) == {("2026-03",): [3], ("2026-04",): [3]}


def test_linked_group_by_joins_the_linked_entity(rstore):
    res = run(rstore, "by_region", ADMIN)
    assert res.rows == [[2, 2, Decimal("450.00")], [1, 3, Decimal("300.00")], [None, 1, Decimal("25.00")]]
    assert drill_filters(res, res.rows[0]) is None   # the list cannot filter by a linked field


def test_each_measure(rstore):
    res = run(rstore, "measures", ADMIN)
    assert [c.id for c in res.columns] == ["count", "total", "average", "smallest", "largest", "clients",
                                           "first", "last", "units"]
    assert res.rows == [[6, Decimal("775.00"), Decimal("155.00"), Decimal("25.00"), Decimal("400.00"), 3,
                         "2025-12-30", "2026-04-10", 15]]


def test_fixed_filter_and_parameter(rstore):
    assert run(rstore, "won", ADMIN).rows == [["won", Decimal("350.00")]]
    res = run(rstore, "won", ADMIN, {"since": "2026-01-20"})
    assert res.rows == [["won", Decimal("250.00")]]
    assert drill_filters(res, res.rows[0]) == [("stage", "won"), ("closed__gte", "2026-01-20"), ("stage", "won")]
    # any list filter of the source entity narrows it further
    assert run(rstore, "won", ADMIN, {"qty__gte": "2"}).rows == [["won", Decimal("250.00")]]


def test_row_scope_and_hidden_fields(rstore):
    res = run(rstore, "by_month", REP)                    # rep 1 owns A1, A3, A4, A6
    assert table(res) == {("2026-01",): [1, Decimal("100.00")], ("2026-02",): [1, Decimal("50.00")],
                          ("2026-04",): [1, Decimal("400.00")], (None,): [1, None]}
    assert res.totals == [None, 4, Decimal("550.00")]
    with pytest.raises(Forbidden):                        # cost is hidden from reps
        run(rstore, "costs", REP)
    assert run(rstore, "costs", ADMIN).totals == [None, Decimal("75.00")]
    with pytest.raises(Forbidden):                        # a report for other roles
        run(rstore, "managers", REP)
    with pytest.raises(NotFound):
        run(rstore, "nope", REP)


def test_drill_down_of_a_bucket(rstore):
    res = run(rstore, "by_month", ADMIN)
    row = next(r for r in res.rows if r[0] == "2026-01")
    assert drill_filters(res, row) == [("closed__gte", "2026-01-01"), ("closed__lt", "2026-02-01")]
    none_row = next(r for r in res.rows if r[0] is None)
    assert drill_filters(res, none_row) == [("closed__isnull", "1")]


def test_period_arithmetic():
    day = dt.date(2026, 2, 18)
    assert period_bounds("month", day) == (dt.date(2026, 2, 1), dt.date(2026, 3, 1))
    assert period_bounds("month", dt.date(2026, 1, 5), back=1) == (dt.date(2025, 12, 1), dt.date(2026, 1, 1))
    assert period_bounds("quarter", day) == (dt.date(2026, 1, 1), dt.date(2026, 4, 1))
    assert period_bounds("year", day, back=1) == (dt.date(2025, 1, 1), dt.date(2026, 1, 1))
    assert period_bounds("week", day) == (dt.date(2026, 2, 16), dt.date(2026, 2, 23))
    assert bucket_bounds("quarter", "2026-Q4") == (dt.date(2026, 10, 1), dt.date(2027, 1, 1))
    assert bucket_bounds("month", "garbage") is None


def _problems(tmp_path, name, text):
    files = dict(FILES)
    files[f"reports/{name}.yaml"] = text
    with pytest.raises(ConfigInvalid) as e:
        load_config(write_config(tmp_path / "bad", files))
    return [str(p) for p in e.value.problems]


def test_unknown_field_is_a_problem_at_file_and_line(tmp_path):
    probs = _problems(tmp_path, "bad", """
        report: bad
        entity: sale
        group_by:
          - client.regoin
        measures:
          amount: {fn: sum, field: amonut}
          words: {fn: avg, field: name}
        sort: -nothing
    """)
    text = "\n".join(probs)
    assert "reports/bad.yaml:4" in text and "client has no field 'regoin'" in text and "did you mean 'region'" in text
    assert "reports/bad.yaml:6" in text and "sale has no field 'amonut'" in text
    assert "reports/bad.yaml:7" in text and "avg needs a number" in text
    assert "reports/bad.yaml:8" in text and "'nothing' is not a column" in text


def test_unknown_key_and_bad_bucket(tmp_path):
    probs = _problems(tmp_path, "bad", """
        report: bad
        entity: sale
        measures:
          count: {fn: count, colour: red}
    """)
    assert any("reports/bad.yaml:4" in p and "unknown key 'colour'" in p for p in probs), probs
    probs = _problems(tmp_path, "bucket", """
        report: bucket
        entity: sale
        group_by:
          - {field: name, bucket: month}
        measures:
          count: {fn: count}
    """)
    assert any("reports/bucket.yaml:4" in p and "a bucket groups a date" in p for p in probs), probs


def test_dashboard_naming_an_unknown_report(tmp_path):
    files = dict(FILES)
    files["dashboards/d.yaml"] = """
        dashboard: d
        widgets:
          - {report: by_mnoth}
          - {report: by_month, chart: kpi, measure: amount}
          - {report: by_month, compare: {report: by_region, measure: amount}}
    """
    with pytest.raises(ConfigInvalid) as e:
        load_config(write_config(tmp_path / "bad", files))
    text = "\n".join(str(p) for p in e.value.problems)
    assert "dashboards/d.yaml:3" in text and "did you mean 'by_month'" in text
    assert "dashboards/d.yaml:4" in text and "needs `date`" in text
    assert "dashboards/d.yaml:5" in text and "by_region must group by the same columns as by_month" in text


def test_default_pack_reports_load():
    from tests.conftest import ROOT
    cfg = load_config(ROOT / "config")
    assert "pipeline_by_stage" in cfg.reports
    assert {"sales", "service", "marketing"} <= set(cfg.dashboards)

