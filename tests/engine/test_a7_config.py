"""A7: config is checked against JSON Schemas; every error names file, line, path and what was expected."""
from pathlib import Path

import pytest

from engine.errors import ConfigInvalid
from engine.loader import load_config
from tests.conftest import FIXTURES, ROOT


def problems_of(path) -> list[str]:
    with pytest.raises(ConfigInvalid) as info:
        load_config(path)
    return [str(p) for p in info.value.problems]


def edit(path: Path, old: str, new: str):
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def line_of(path: Path, needle: str) -> int:
    return next(i for i, l in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if needle in l)


def test_a7_mini_fixture_loads():
    cfg = load_config(FIXTURES / "mini")
    assert set(cfg.entities) == {"account", "deal", "deal_line"}
    assert cfg.entities["deal_line"].parent == "deal"
    assert cfg.entities["account"].fields["owner"].system


def test_a7_shipped_default_pack_loads():
    cfg = load_config(ROOT / "config")
    for e in ("region", "dealer", "customer", "contact", "lead", "opportunity", "product", "quote", "contract",
              "order", "payment", "activity", "task", "ticket", "kb_article", "campaign"):
        assert e in cfg.entities, e
    assert cfg.entities["customer"].fields["name"].required
    assert cfg.entities["customer"].fields["email"].type == "email"
    assert all(e.label.get("zh") for e in cfg.entities.values())


def test_a7_type_typo_names_file_line_and_suggests(config_copy):
    cfg = config_copy()
    f = cfg / "entities" / "account.yaml"
    edit(f, "email: {type: email", "email: {type: emial")
    out = problems_of(cfg)
    line = line_of(f, "emial")
    assert any(f"account.yaml:{line}:" in p and "fields.email.type" in p and "did you mean 'email'" in p
               for p in out), out


def test_a7_every_error_is_reported_at_once(config_copy):
    cfg = config_copy()
    edit(cfg / "workflows" / "deal_flow.yaml", "comment: required", "comment: requird")
    edit(cfg / "entities" / "deal.yaml", "to: account", "to: acount")
    edit(cfg / "forms" / "account.yaml", "[name, email, level, revenue]", "[name, emial, level, revenue]")
    edit(cfg / "entities" / "deal.yaml", "coalesce(probability, 0) / 100", "coalesce(probabilty, 0) / 100")
    out = problems_of(cfg)
    text = "\n".join(out)
    assert "'requird' is not one of required, optional, none (did you mean 'required'?)" in text
    assert "links to 'acount', which is not an entity (did you mean 'account'?)" in text
    assert "'emial' is not a field of account (did you mean 'email'?)" in text
    assert "names 'probabilty', which is not a field of deal (did you mean 'probability'?)" in text
    assert len(out) >= 4


def test_a7_unknown_key_suggests(config_copy):
    cfg = config_copy()
    edit(cfg / "entities" / "account.yaml", "max_length: 100", "max_lenght: 100")
    assert any("unknown key 'max_lenght' (did you mean 'max_length'?)" in p for p in problems_of(cfg))


def test_a7_duplicate_keys_are_rejected_with_both_lines(config_copy):
    cfg = config_copy()
    f = cfg / "entities" / "account.yaml"
    edit(f, "  email: {type: email, searchable: true}\n",
         "  email: {type: email, searchable: true}\n  email: {type: string}\n")
    out = problems_of(cfg)
    assert any("duplicate key 'email'" in p and f"first defined on line {line_of(f, 'email: {type: email')}" in p
               for p in out), out


def test_a7_only_true_false_are_booleans(config_copy):
    cfg = config_copy()
    edit(cfg / "entities" / "account.yaml", "searchable: true, index: true", "searchable: yes, index: true")
    out = problems_of(cfg)
    assert any("fields.name.searchable" in p and "expected boolean, got 'yes'" in p for p in out), out


def test_a7_state_named_on_stays_a_string(config_copy):
    cfg = config_copy()
    wf = cfg / "workflows" / "deal_flow.yaml"
    edit(wf, "  lost: {label", "  on: {label: {en: On, zh: 开}}\n  lost: {label")
    edit(wf, "  lose: {from: open", "  park: {from: open, to: on}\n  lose: {from: open")
    loaded = load_config(cfg)
    assert "on" in loaded.workflows["deal_flow"].states


def test_a7_yaml_syntax_error_has_a_line(config_copy):
    cfg = config_copy()
    f = cfg / "entities" / "deal.yaml"
    f.write_text(f.read_text() + "  broken: {type: string\n", encoding="utf-8")
    out = problems_of(cfg)
    assert any("deal.yaml:" in p and "YAML syntax error" in p for p in out), out


def test_a7_workflow_checks(config_copy):
    cfg = config_copy()
    wf = cfg / "workflows" / "deal_flow.yaml"
    edit(wf, "win: {from: open, to: won", "win: {from: opne, to: won")
    edit(wf, "  lose: {from: open", "  revive: {from: lost, to: open}\n  lose: {from: open")
    edit(wf, "initial: open", "initial: open\n")
    out = "\n".join(problems_of(cfg))
    assert "'opne' is not a state (did you mean 'open'?)" in out
    assert "final state" not in out      # a final state may be left by a transition naming it (reopen)


def test_a7_unreachable_state_is_an_error(config_copy):
    cfg = config_copy()
    edit(cfg / "workflows" / "deal_flow.yaml", "  won: {label", "  limbo: {label: {en: Limbo}}\n  won: {label")
    out = "\n".join(problems_of(cfg))
    assert "state 'limbo' cannot be reached from the initial state 'open'" in out


def test_a7_expression_syntax_error_is_located(config_copy):
    cfg = config_copy()
    f = cfg / "entities" / "deal.yaml"
    edit(f, "compute: \"sum(lines, 'amount')\"", "compute: \"sum(lines, 'amount'\"")
    out = problems_of(cfg)
    assert any(f"deal.yaml:{line_of(f, 'sum(lines')}:" in p and "syntax error" in p for p in out), out


def test_a7_rule_cannot_reach_python_internals(config_copy):
    cfg = config_copy()
    edit(cfg / "entities" / "account.yaml", 'check: "email or revenue"', 'check: "name.__class__"')
    assert any("no access to '__class__'" in p for p in problems_of(cfg))


def test_a7_system_field_names_cannot_be_declared(config_copy):
    cfg = config_copy()
    edit(cfg / "entities" / "account.yaml", "fields:\n",
         "fields:\n  version: {type: string}\n  owner: {type: string}\n")
    out = "\n".join(problems_of(cfg))
    assert "fields.version: 'version' is a reserved name" in out
    assert "'owner' is the system owner column and must be of type user" in out


def test_a2_computed_decimal_keeps_four_decimals_by_default(config_copy):
    cfg = config_copy()
    edit(cfg / "entities" / "deal.yaml", "fields:\n",
         "fields:\n  ratio: {type: computed, result: decimal, compute: \"coalesce(probability, 0) / 3\"}\n")
    loaded = load_config(cfg)
    assert loaded.entities["deal"].fields["ratio"].scale == 4
    assert loaded.entities["deal"].fields["weighted"].scale == 2
