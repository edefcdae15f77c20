"""Dashboards: which a user may open, and the figures of a widget — a chart's report narrowed to the
current period, or a KPI tile: this period against the one before (and a target)."""
from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import Decimal

from . import clock
from .errors import Forbidden, NotFound
from .reports import Column, period_bounds, run
from .reportspec import readable


def for_actor(config, actor) -> list:
    """The dashboards the actor's roles are given (all of them for an administrator)."""
    return [d for d in config.dashboards.values() if readable(d, actor)]


def get_dashboard(config, dashboard_id: str, actor):
    d = config.dashboards.get(dashboard_id)
    if d is None:
        raise NotFound(f"There is no dashboard {dashboard_id!r}.")
    if not readable(d, actor):
        raise Forbidden(f"The dashboard {dashboard_id!r} is not for your roles.")
    return d


def period_filters(widget, today=None, back: int = 0) -> list:
    if not widget.date:
        return []
    start, end = period_bounds(widget.period, today or clock.today(), back)
    return [(widget.date, "gte", start.isoformat()), (widget.date, "lt", end.isoformat())]


def widget_args(widget) -> dict:
    return {k: str(v) for k, v in widget.params}


def chart_result(store, widget, actor, today=None):
    """The widget's report rows, in the current period when the widget names a date."""
    return run(store, widget.report, actor, widget_args(widget), period_filters(widget, today))


@dataclass
class Kpi:
    value: object
    previous: object
    change: Decimal | None      # percent against the previous period; None when that was 0 or empty
    target: object = None
    attainment: Decimal | None = None
    field: object = None        # the measured Field (for its scale), None for counts
    filters: list | None = None  # the list filters of the current period (drill-down)


def _pct(a, b) -> Decimal | None:
    if a is None or not b:
        return None
    return (Decimal(str(a)) - Decimal(str(b))) * 100 / Decimal(str(b))


def kpi(store, widget, actor, today=None) -> Kpi:
    rep = store.config.reports[widget.report]
    measure = widget.measure or rep.measures[0].id
    now = run(store, widget.report, actor, widget_args(widget), period_filters(widget, today), group=False)
    before = run(store, widget.report, actor, widget_args(widget), period_filters(widget, today, 1), group=False)
    i = [c.id for c in now.columns].index(measure)
    value, previous = now.rows[0][i], before.rows[0][i]
    if value is None and now.columns[i].fn in ("sum", "count", "distinct"):
        value = Decimal(0)
    target = Decimal(str(widget.target)) if widget.target is not None else None
    attained = (Decimal(str(value or 0)) * 100 / target) if target else None
    return Kpi(value, previous, _pct(value, previous), target, attained, now.columns[i].field, now.filters)


ATTAINMENT = {"en": "Attainment %", "zh": "完成率 %"}


def compare_result(store, widget, actor, today=None):
    """A chart widget's rows with, per group, the figure to reach from another report grouped the same
    way (`compare:`, e.g. targets per salesperson) and the share reached — lowest first, so who is
    behind comes at the top. Groups with a target but nothing achieved are listed too."""
    main = chart_result(store, widget, actor, today)
    rid, mid, date = widget.compare
    other = run(store, rid, actor, {}, period_filters(replace(widget, date=date), today) if date else [])
    ng = len([c for c in main.columns if c.kind == "group"])
    measured = [c.id for c in main.columns].index(widget.measure or main.report.measures[0].id)
    oi = [c.id for c in other.columns].index(mid)
    goal = {tuple(r[:ng]): r[oi] for r in other.rows}
    rows, seen = [], set()
    for r in main.rows:
        key = tuple(r[:ng])
        seen.add(key)
        rows.append(r + [goal.get(key), _share(r[measured], goal.get(key))])
    for key, g in goal.items():
        if key not in seen:
            rows.append(list(key) + [None] * (len(main.columns) - ng) + [g, _share(None, g)])
    rows.sort(key=lambda r: (r[-1] is None, r[-1] or 0))
    ocol = other.columns[oi]
    main.columns += [Column("target", "measure", ocol.label, ocol.field, fn=ocol.fn),
                     Column("attainment", "measure", ATTAINMENT, None, fn="share")]
    if main.totals is not None:
        total_goal = sum((Decimal(str(g)) for g in goal.values() if g is not None), Decimal(0))
        main.totals += [total_goal, _share(main.totals[measured], total_goal)]
    main.rows = rows
    return main


def _share(value, goal) -> Decimal | None:
    if not goal:
        return None
    return (Decimal(str(value or 0)) * 100 / Decimal(str(goal))).quantize(Decimal("0.1"))
