"""Mutation testing, one module at a time (mutmut 3): `make mutate MODULE=engine/values.py`.

Why one module at a time: mutmut 3 runs, for each mutant, the tests that called the mutated function.
Mutating all of engine/ against all tests takes hours on a 2-core machine; one module against the
fast tests that cover it stays within minutes. Each module gets its own work directory
(build/mutation/.work/<module>/) holding symlinks to the project and a pyproject.toml whose
[tool.mutmut] is the project's plus `only_mutate` and the test files of that module, so mutmut's
copy (<work>/mutants/) and its cached results stay per module and runs of different modules do not
reset each other. The copy holds only engine/, platform_/, ui/, config/, packs/, tests/ and app.py:
never .venv/ or instance/.

Writes build/mutation/<module without .py>.md: the counts and the diff of every surviving mutant,
with the known equivalent ones (EQUIVALENT below) listed apart with their reason.

Usage: python scripts/mutate.py [--max-children N] [--fresh] [--no-retest] [MODULE ...]
(no MODULE: every module in TESTS; docs/testing.md)
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "build" / "mutation"
LINKED = ("engine", "platform_", "ui", "config", "packs", "tests", "app.py")

# module -> the fast test files that cover it (SQLite only; markers are filtered in [tool.mutmut]).
# A module not listed here uses tests/engine/test_mutation_<name>.py plus every test file under
# tests/engine or tests/platform_ that imports it by name.
TESTS = {
    "engine/values.py": ["tests/engine/test_mutation_values.py", "tests/engine/test_a1_a2_store.py",
                         "tests/engine/test_import.py", "tests/engine/test_export.py"],
    "engine/query.py": ["tests/engine/test_mutation_query.py", "tests/engine/test_a1_a2_store.py",
                        "tests/engine/test_export.py"],
    "engine/access.py": ["tests/engine/test_h1_permission_matrix.py", "tests/engine/test_reports.py"],
    "engine/rules.py": ["tests/engine/test_a6_rules.py"],
    "engine/statemachine.py": ["tests/engine/test_a5_a12_workflows.py"],
}

# Surviving mutants that cannot change behaviour, with the reason (reviewed by hand; a mutant's
# number changes when its function is edited, so re-check this list after such an edit).
EQUIVALENT: dict[str, str] = {
    # engine/values.py
    "engine.values.x__decimal__mutmut_6": "a Decimal input through str() is the same Decimal again",
    "engine.values.x__decimal__mutmut_38": "at the boundary the digit count after quantize refuses the same "
                                           "numbers with the same message",
    "engine.values.x__decimal__mutmut_39": "a looser early check: the digit count after quantize (or quantize's "
                                           "own failure) refuses the same numbers with the same message",
    "engine.values.x__decimal__mutmut_47": "quantize uses only the exponent of its argument: 2e-2 and 1e-2 round alike",
    "engine.values.x_coerce__mutmut_146": "Python >= 3.11 (requires-python) reads a trailing Z in fromisoformat itself",
    "engine.values.x_coerce__mutmut_147": "Python >= 3.11 (requires-python) reads a trailing Z in fromisoformat itself",
    "engine.values.x_masked__mutmut_5": "every Field has `encrypted`: getattr's default is never used",
    "engine.values.x_masked__mutmut_8": "every Field has `encrypted`: getattr's default is never used",
    "engine.values.x_masked__mutmut_11": "every Field has `encrypted`: getattr's default is never used",
    "engine.values.x_masked__mutmut_15": "an equal copy instead of the same dict; every caller only reads it",
    "engine.values.x_record_to_json__mutmut_14": "a child entity cannot have table fields (refcheck), so the "
                                                 "nested call never reads config",
    "engine.values.x_record_to_json__mutmut_25": "to_json does not use its field argument",
    # engine/query.py
    "engine.query.x__value__mutmut_22": "where_clauses handles every filter of a file field before _value",
    "engine.query.x__value__mutmut_23": "where_clauses handles every filter of a file field before _value",
    "engine.query.x_where_clauses__mutmut_160": "the same rows through LIKE instead of the text index "
                                               "(only the speed differs)",
    "engine.query.x_where_clauses__mutmut_161": "the same rows through LIKE instead of the text index "
                                               "(only the speed differs)",
    "engine.query.x_where_clauses__mutmut_165": "the same rows through LIKE instead of the text index "
                                               "(only the speed differs)",
    "engine.query.x_where_clauses__mutmut_166": "the same rows through LIKE instead of the text index "
                                               "(only the speed differs)",
    "engine.query.x_order_by__mutmut_51": "the id tie-breaker is added a second time: a repeated ORDER BY "
                                          "key changes no order",
    "engine.query.x_order_by__mutmut_52": "the id tie-breaker is added a second time: a repeated ORDER BY "
                                          "key changes no order",
    "engine.query.x_order_by__mutmut_53": "the id tie-breaker is added a second time: a repeated ORDER BY "
                                          "key changes no order",
    "engine.query.x_order_by__mutmut_54": "the id tie-breaker is added a second time: a repeated ORDER BY "
                                          "key changes no order",
    "engine.query.x_order_by__mutmut_55": "the id tie-breaker is added a second time: a repeated ORDER BY "
                                          "key changes no order",
    "engine.query.x_order_by__mutmut_56": "the id tie-breaker is added a second time: a repeated ORDER BY "
                                          "key changes no order",
}


def module_tests(module: str) -> list[str]:
    if module in TESTS:
        tests = TESTS[module]
    else:
        name = Path(module).stem
        dotted = module[:-3].replace("/", ".")
        pkg, _, _ = dotted.rpartition(".")
        rx = re.compile(rf"\b{re.escape(dotted)}\b|from {re.escape(pkg)} import [^\n]*\b{re.escape(name)}\b")
        tests = [f"tests/engine/test_mutation_{name}.py"]
        for d in ("tests/engine", "tests/platform_"):
            tests += [str(p.relative_to(ROOT)) for p in sorted((ROOT / d).glob("test_*.py"))
                      if rx.search(p.read_text(encoding="utf-8"))]
    found = [t for t in dict.fromkeys(tests) if (ROOT / t).exists()]
    if not found:
        sys.exit(f"no test file found for {module}: add it to TESTS in scripts/mutate.py")
    return found


def _toml_section(values: dict) -> str:
    # JSON strings, numbers, booleans and lists of them are valid TOML values.
    return "[tool.mutmut]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in values.items())


def prepare(module: str, tests: list[str]) -> tuple[Path, bool]:
    """The module's work directory: symlinks to the project and a pyproject.toml for mutmut; and
    whether that configuration is the one of the last run (if not, mutmut re-runs every mutant)."""
    work = OUT / ".work" / module[:-3].replace("/", ".")
    work.mkdir(parents=True, exist_ok=True)
    for name in LINKED:
        link = work / name
        if not link.is_symlink():
            link.symlink_to(ROOT / name)
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    base = tomllib.loads(text).get("tool", {}).get("mutmut", {})
    # drop the project's [tool.mutmut] section and append this module's (the rest, e.g. pytest's
    # markers, stays as it is: mutmut copies this file into mutants/ and pytest reads it there)
    text = re.sub(r"(?ms)^\[tool\.mutmut\]\n.*?(?=^\[|\Z)", "", text)
    base = {**base, "only_mutate": [module], "pytest_add_cli_args_test_selection": tests}
    new = text.rstrip() + "\n\n" + _toml_section(base)
    old = work / "pyproject.toml"
    same = old.exists() and tomllib.loads(old.read_text(encoding="utf-8"))["tool"]["mutmut"] == base
    old.write_text(new, encoding="utf-8")
    return work, same


def mutmut(work: Path, *args: str, capture: bool = True) -> str:
    exe = Path(sys.executable).with_name("mutmut")
    res = subprocess.run([str(exe), *args], cwd=work, text=True, capture_output=capture)
    if res.returncode != 0 and args[0] != "run":
        sys.exit(f"mutmut {' '.join(args)} failed:\n{res.stdout}\n{res.stderr}")
    return res.stdout if capture else ""


def results(work: Path) -> dict[str, str]:
    out = mutmut(work, "results", "--all", "true")
    return dict(m.groups() for m in re.finditer(r"^\s*(\S+): (.+)$", out, re.M))


def report(module: str, tests: list[str], work: Path, seconds: float, cmd: str) -> Path:
    statuses = results(work)
    counts: dict[str, int] = {}
    for s in statuses.values():
        counts[s] = counts.get(s, 0) + 1
    survivors = sorted((k for k, s in statuses.items() if s == "survived"), key=_natural)
    equivalent = [k for k in survivors if k in EQUIVALENT]
    open_ = [k for k in survivors if k not in EQUIVALENT]
    diff = diffs(work, module, survivors)
    lines = [f"# Mutation testing: {module}", "",
             f"- command: `{cmd}`", f"- tests: {', '.join(f'`{t}`' for t in tests)}",
             f"- run time: {seconds:.0f} s (this invocation: new or changed mutants, plus a re-test of those "
             "not killed last time; a mutant killed before is not run again)",
             f"- mutants: {len(statuses)}; "
             + "; ".join(f"{s}: {n}" for s, n in sorted(counts.items(), key=lambda x: -x[1])),
             f"- survivors: {len(survivors)} ({len(equivalent)} known equivalent, {len(open_)} to look at)",
             "", "A survivor is a change to the code that no selected test noticed: either a missing test "
             "(add one that asserts the behaviour) or an equivalent mutant (list it in EQUIVALENT in "
             "scripts/mutate.py with the reason).", ""]
    lines += ["## Survivors to look at", ""] + (["None."] if not open_ else [])
    for k in open_:
        lines += [f"### {k}", "", "```diff", diff[k], "```", ""]
    lines += ["", "## Equivalent survivors", ""] + (["None."] if not equivalent else [])
    for k in equivalent:
        lines += [f"### {k}", "", f"Equivalent: {EQUIVALENT[k]}", "", "```diff", diff[k], "```", ""]
    others = sorted((k, s) for k, s in statuses.items() if s not in ("killed", "survived"))
    if others:
        lines += ["", "## Other outcomes (no tests, timeout, ...)", ""] + [f"- {k}: {s}" for k, s in others]
    path = OUT / (module[:-3] + ".md")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines).rstrip() + "\n", encoding="utf-8")
    return path


# `mutmut show NAME` for many mutants in one process (one `mutmut show` per survivor costs seconds each)
_DIFFS = """import json, sys
from mutmut.mutation.diff_apply import get_diff_for_mutant
json.dump({n: get_diff_for_mutant(n, path=sys.argv[1]) for n in sys.argv[2:]}, sys.stdout)
"""


def diffs(work: Path, module: str, names: list[str]) -> dict[str, str]:
    if not names:
        return {}
    res = subprocess.run([sys.executable, "-c", _DIFFS, module, *names], cwd=work, text=True, capture_output=True)
    if res.returncode == 0:
        return {k: v.strip() for k, v in json.loads(res.stdout).items()}
    # another mutmut version: fall back to its command line
    return {n: "\n".join(mutmut(work, "show", n).splitlines()[1:]).strip() for n in names}


def _natural(key: str):
    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", key)]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("modules", nargs="*", help="e.g. engine/values.py (default: every module in TESTS)")
    ap.add_argument("--max-children", type=int, default=1, help="parallel mutant runs (default 1: a shared machine)")
    ap.add_argument("--fresh", action="store_true", help="forget cached results of these modules first")
    ap.add_argument("--no-retest", action="store_true", help="keep last run's verdicts of surviving mutants")
    a = ap.parse_args(argv)
    for module in a.modules or list(TESTS):
        module = module.removeprefix("./")
        if not (module.endswith(".py") and module.split("/")[0] in ("engine", "platform_")
                and (ROOT / module).is_file()):
            sys.exit(f"{module}: not a module under engine/ or platform_/")
        tests = module_tests(module)
        work, same = prepare(module, tests)
        if a.fresh:
            shutil.rmtree(work / "mutants", ignore_errors=True)
        # mutmut keeps a cached verdict even when tests were added since; re-test the ones that were
        # not killed last time, so a new test shows up in the report at once
        again = [] if a.no_retest or not same or not (work / "mutants" / "mutmut-stats.json").exists() else \
            [k for k, s in results(work).items() if s not in ("killed", "not checked")]
        cmd = f"mutmut run --max-children {a.max_children}"
        print(f"== {module}: {cmd} (in {work.relative_to(ROOT)}) with {' '.join(tests)}", flush=True)
        start = time.monotonic()
        exe = [str(Path(sys.executable).with_name("mutmut")), "run", "--max-children", str(a.max_children)]
        env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
        rc = subprocess.run(exe, cwd=work, env=env).returncode
        if rc == 0 and again:
            print(f"== {module}: re-testing {len(again)} mutants not killed last time", flush=True)
            rc = subprocess.run(exe + again, cwd=work, env=env).returncode
        seconds = time.monotonic() - start
        if rc != 0:
            print(f"mutmut run exited {rc}", file=sys.stderr)
            return rc
        path = report(module, tests, work, seconds, f"make mutate MODULE={module}")
        print(f"   report: {path.relative_to(ROOT)} ({seconds:.0f} s)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
