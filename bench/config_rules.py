#!/usr/bin/env python3
"""Benchmark: loading and checking a 200-entity config, and rule evaluation against Python.

- config: 200 generated entities (12 fields each, links between them, a rule, a list, a form and a
  workflow for every tenth) written to a temp folder, then `load_config` (YAML, JSON Schema checks,
  cross-references, expressions) timed — the target is ≤ 1 s.
- rules: a typical check (`amount > 0 and (discount is None or discount <= 30) and stage != 'lost'`)
  evaluated through the rule engine (sandboxed simpleeval, Decimal arithmetic) against the same
  expression as a Python lambda, per evaluation.

    .venv/bin/python bench/config_rules.py [--entities 200] [--json]
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

RULE = "amount > 0 and (discount is None or discount <= 30) and stage != 'lost'"


def write_config(folder: Path, n: int) -> None:
    (folder / "entities").mkdir(parents=True)
    (folder / "forms").mkdir()
    (folder / "workflows").mkdir()
    (folder / "pack.yaml").write_text("pack: bench\nversion: 1.0.0\nlabel: {en: Bench, zh: 基准}\n", encoding="utf-8")
    for i in range(n):
        link = f"  parent: {{type: link, to: e{i - 1:03d}, label: {{en: Parent, zh: 上级}}}}\n" if i else ""
        wf = i % 10 == 0
        state = f"  stage: {{type: state, workflow: w{i:03d}, label: {{en: Stage, zh: 阶段}}}}\n" if wf else ""
        (folder / "entities" / f"e{i:03d}.yaml").write_text(
            f"entity: e{i:03d}\nlabel: {{en: Entity {i}, zh: 实体{i}}}\ntitle: \"{{name}}\"\n"
            f"list: {{columns: [name, code, amount], sort: \"-created_at\"}}\nfields:\n"
            f"  name: {{type: string, required: true, max_length: 140, searchable: true, label: {{en: Name, zh: 名称}}}}\n"
            f"  code: {{type: autonumber, format: \"E{i:03d}-{{#####}}\", label: {{en: Code, zh: 编号}}}}\n"
            f"  email: {{type: email, label: {{en: E-mail, zh: 邮箱}}}}\n"
            f"  phone: {{type: phone, index: true, label: {{en: Phone, zh: 电话}}}}\n"
            f"  amount: {{type: money, min: 0, label: {{en: Amount, zh: 金额}}}}\n"
            f"  discount: {{type: percent, label: {{en: Discount, zh: 折扣}}}}\n"
            f"  net: {{type: money, compute: \"coalesce(amount, 0) * (100 - coalesce(discount, 0)) / 100\", "
            f"label: {{en: Net, zh: 净额}}}}\n"
            f"  level: {{type: select, options: [a, b, c], default: a, label: {{en: Level, zh: 级别}}}}\n"
            f"  due: {{type: date, label: {{en: Due, zh: 到期}}}}\n"
            f"  owner_note: {{type: text, label: {{en: Note, zh: 备注}}}}\n"
            f"  active: {{type: boolean, default: true, label: {{en: Active, zh: 启用}}}}\n"
            + link + state +
            "rules:\n  - name: discount_cap\n    check: \"discount is None or discount <= 30\"\n"
            "    message: {en: At most 30 %, zh: 折扣不超过30%}\n", encoding="utf-8")
        (folder / "forms" / f"e{i:03d}.yaml").write_text(
            f"form: e{i:03d}\nentity: e{i:03d}\nsections:\n  - title: {{en: Main, zh: 基本}}\n"
            "    fields: [name, email, phone, amount, discount, level, due]\n", encoding="utf-8")
        if wf:
            (folder / "workflows" / f"w{i:03d}.yaml").write_text(
                f"workflow: w{i:03d}\nentity: e{i:03d}\nfield: stage\ninitial: open\nstates:\n"
                "  open: {label: {en: Open, zh: 开放}}\n  done: {label: {en: Done, zh: 完成}, final: true}\n"
                "transitions:\n  finish: {from: open, to: done, label: {en: Finish, zh: 完成}, "
                "when: \"amount > 0\"}\n", encoding="utf-8")


def measure_config(n: int, repeat: int = 3) -> dict:
    from engine.loader import load_config
    folder = Path(tempfile.mkdtemp(prefix="crm-bench-config-")) / "config"
    write_config(folder, n)
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        cfg = load_config(folder)
        samples.append(time.perf_counter() - t0)
    assert len(cfg.entities) == n
    return {"config_entities": n, "config_load_s": round(min(samples), 3),
            "config_load_median_s": round(statistics.median(samples), 3)}


def measure_rules(repeat: int = 20000) -> dict:
    from engine import rules
    names = {"amount": Decimal("1200.50"), "discount": Decimal("12"), "stage": "open"}
    fn = eval("lambda amount, discount, stage: " + RULE)    # noqa: S307 — the baseline, a fixed string
    assert rules.evaluate(RULE, names) == fn(**names)
    t0 = time.perf_counter()
    for _ in range(repeat):
        rules.evaluate(RULE, names)
    engine_s = (time.perf_counter() - t0) / repeat
    t0 = time.perf_counter()
    for _ in range(repeat):
        fn(**names)
    python_s = (time.perf_counter() - t0) / repeat
    return {"rule_us": round(engine_s * 1e6, 2), "rule_python_us": round(python_s * 1e6, 3),
            "rule_ratio_python": round(engine_s / python_s, 1)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--entities", type=int, default=200)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    out = measure_config(args.entities) | measure_rules()
    print(f"config: {out['config_entities']} entities loaded and checked in {out['config_load_s']:.3f} s (best of 3)")
    print(f"rules: {out['rule_us']:.1f} µs per evaluation, Python lambda {out['rule_python_us']:.2f} µs "
          f"(ratio {out['rule_ratio_python']})")
    if args.json:
        print(json.dumps(out))


if __name__ == "__main__":
    main()
