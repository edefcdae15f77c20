"""JSON Schemas of the config language, and errors mapped back to YAML lines.

Every error of a file is reported (iter_errors), with a suggestion of the nearest valid word
for enum values and unknown keys.
"""
from __future__ import annotations

import difflib
import json
from functools import lru_cache
from pathlib import Path

from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match
from referencing import Registry, Resource

from .errors import Problem
from .yamlio import Document

SCHEMA_DIR = Path(__file__).parent / "schemas"
KINDS = ("entity", "form", "workflow", "pack", "calendar", "sla", "assignment", "automation", "access", "home",
         "report", "dashboard")


@lru_cache(maxsize=None)
def _registry() -> Registry:
    resources = []
    for kind in KINDS:
        schema = json.loads((SCHEMA_DIR / f"{kind}.json").read_text(encoding="utf-8"))
        resources.append((f"{kind}.json", Resource.from_contents(schema)))
    return Registry().with_resources(resources)


@lru_cache(maxsize=None)
def schema(kind: str) -> dict:
    return json.loads((SCHEMA_DIR / f"{kind}.json").read_text(encoding="utf-8"))


@lru_cache(maxsize=None)
def validator(kind: str) -> Draft202012Validator:
    return Draft202012Validator(schema(kind), registry=_registry())


def suggest(word, choices) -> str:
    if not isinstance(word, str):
        return ""
    close = difflib.get_close_matches(word, [str(c) for c in choices], n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _describe(error) -> list[tuple[tuple, str]]:
    """Turn one jsonschema error into (path, message) pairs a person can act on."""
    path = tuple(error.absolute_path)
    v = error.validator
    if v in ("oneOf", "anyOf") and error.context:
        # pick the branch that went furthest rather than "is not valid under any of the given schemas"
        sub = best_match(error.context)
        return _describe(sub)
    if v == "enum":
        allowed = error.validator_value
        return [(path, f"{error.instance!r} is not one of {', '.join(map(str, allowed))}"
                       f"{suggest(error.instance, allowed)}")]
    if v == "const":
        return [(path, f"{error.instance!r} is not allowed here; expected {error.validator_value!r}")]
    if v == "additionalProperties" and isinstance(error.instance, dict):
        allowed = list(error.schema.get("properties", {}))
        extra = [k for k in error.instance if k not in allowed]
        return [(path + (k,), f"unknown key {k!r}{suggest(k, allowed)}; expected one of {', '.join(allowed)}")
                for k in extra]
    if v == "required":
        return [(path, error.message.replace("is a required property", "is required here but missing"))]
    if v == "pattern":
        return [(path, f"{error.instance!r} does not match {error.validator_value} "
                       f"(lowercase letters, digits and _, starting with a letter)"
                 if "a-z" in error.validator_value else f"{error.instance!r} does not match {error.validator_value}")]
    if v == "type":
        want = error.validator_value
        return [(path, f"expected {want if isinstance(want, str) else ' or '.join(want)}, got {error.instance!r}")]
    return [(path, error.message)]


def check(doc: Document, kind: str) -> list[Problem]:
    problems = []
    for error in validator(kind).iter_errors(doc.data):
        for path, message in _describe(error):
            problems.append(doc.problem(path, message))
    return problems
