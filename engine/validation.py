"""JSON Schema generated from an entity, used to check API input (and published in OpenAPI).

Errors come back per field, all at once: {"name": "is required", "email": "…"}.
"""
from __future__ import annotations

from functools import lru_cache

import fastjsonschema
from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import best_match

from .model import Entity, Field

NUMERIC_STRING = r"^-?[0-9]+(\.[0-9]+)?$"
MAX_INT = 2 ** 31 - 1              # integer and id columns hold 32 bits on both databases


def field_schema(f: Field, config_entities=None) -> dict:
    t = f.value_type
    s: dict
    if t in ("string", "text", "email", "phone", "url", "autonumber", "state"):
        s = {"type": "string"}
        if f.max_length:
            s["maxLength"] = f.max_length
        if f.min_length:
            s["minLength"] = f.min_length
        elif f.required and t not in ("autonumber", "state"):
            s["minLength"] = 1                  # empty text is no value: "is required"
        if t == "email":
            s["format"] = "email"
        if f.pattern:
            s["pattern"] = f.pattern
    elif t == "select":
        s = {"type": "string", "enum": list(f.option_values)}
    elif t == "multiselect":
        s = {"type": "array", "items": {"type": "string", "enum": list(f.option_values)}, "uniqueItems": True}
    elif t == "integer":
        s = {"type": "integer", "minimum": -MAX_INT, "maximum": MAX_INT}
    elif t in ("decimal", "money", "percent"):
        s = {"anyOf": [{"type": "number"}, {"type": "string", "pattern": NUMERIC_STRING}]}
    elif t == "boolean":
        s = {"type": "boolean"}
    elif t == "date":
        s = {"type": "string", "format": "date"}
    elif t == "datetime":
        s = {"type": "string", "format": "date-time"}
    elif t in ("link", "user"):
        s = {"type": "integer", "minimum": 1, "maximum": MAX_INT}
    elif t == "attachment":
        s = {"type": "object", "properties": {"name": {"type": "string"}, "content_base64": {"type": "string"},
                                              "sha256": {"type": "string"}}}
    elif t == "table":
        s = {"type": "array", "items": {"type": "object"}}
    else:
        s = {}
    if t in ("integer", "decimal", "money", "percent"):
        if f.min is not None:
            s["minimum"] = f.min
        if f.max is not None:
            s["maximum"] = f.max
    s["title"] = f.label.get("en", f.id)
    if f.required:
        return s
    return {"anyOf": [s, {"type": "null"}], "title": s["title"]} if "anyOf" not in s else \
        {"anyOf": s["anyOf"] + [{"type": "null"}], "title": s["title"]}


def input_schema(entity: Entity, partial: bool, children: dict | None = None) -> dict:
    props = {}
    for f in entity.fields.values():
        if f.type == "table" and children and f.of in children:
            props[f.id] = {"type": "array", "items": children[f.of]}
        else:
            props[f.id] = field_schema(f)
        if not f.writable:
            props[f.id] = {**props[f.id], "readOnly": True}
    # clients may send back what they read: system fields are accepted and ignored (readOnly)
    props["version"] = ({"type": "integer", "minimum": 1, "maximum": MAX_INT,
                         "description": "the version you read (or send If-Match)"} if partial
                        else {"type": ["integer", "null"], "readOnly": True})
    schema = {"type": "object", "properties": props, "additionalProperties": False}
    if not partial:
        req = [f.id for f in entity.fields.values() if f.required and f.writable and not f.default and not f.computed]
        if req:
            schema["required"] = req
    return schema


@lru_cache(maxsize=512)
def _validator(entity: Entity, partial: bool, child: Entity | None = None) -> Draft202012Validator:
    return Draft202012Validator(input_schema(entity, partial), format_checker=FormatChecker())


@lru_cache(maxsize=512)
def _fast(entity: Entity, partial: bool):
    """The same schema compiled to Python (fastjsonschema): a quick yes for valid input. Its answer
    is only trusted when it says valid; a no goes to jsonschema for the errors and their messages."""
    schema = {**input_schema(entity, partial), "$schema": "http://json-schema.org/draft-07/schema#"}
    try:
        return fastjsonschema.compile(schema, formats={"email": lambda v: "@" in v,
                                                       "date": _is_date, "date-time": _is_datetime})
    except fastjsonschema.JsonSchemaDefinitionException:   # a pattern it cannot compile: ask jsonschema
        return None


_FORMATS = FormatChecker()


def _is_date(v) -> bool:
    return _FORMATS.conforms(v, "date")


def _is_datetime(v) -> bool:
    return _FORMATS.conforms(v, "date-time")


def _message(error) -> str:
    v = error.validator
    if v == "anyOf" and error.context:
        real = [e for e in error.context if not (isinstance(e.schema, dict) and e.schema.get("type") == "null")]
        if real and all(e.validator != "type" for e in real):
            return _message(best_match(real))
    if v == "required":
        return "is required"
    if v == "additionalProperties":
        return "unknown field"
    if v == "enum":
        return f"must be one of {', '.join(map(str, error.validator_value))}"
    if v == "format":
        return {"email": "is not an e-mail address", "date": "is not a date (YYYY-MM-DD)",
                "date-time": "is not a date and time (YYYY-MM-DDTHH:MM:SS)"}.get(error.validator_value, error.message)
    if v in ("type", "anyOf"):
        want = _wanted(error)
        inst = error.instance
        if isinstance(inst, str) and "number" in want:
            return f"{inst[:40]!r} is not a number"
        got = {"str": "text", "int": "a whole number", "float": "a number", "bool": "true or false",
               "list": "a list", "dict": "an object", "NoneType": "nothing"}.get(type(inst).__name__, "another type")
        return f"expected {want}, got {got}"
    if v == "maxLength":
        return f"at most {error.validator_value} characters"
    if v == "minLength":
        return "is required" if error.instance == "" else f"at least {error.validator_value} characters"
    if v == "minimum":
        return f"must be at least {error.validator_value}"
    if v == "maximum":
        return f"must be at most {error.validator_value}"
    return error.message


def _wanted(error) -> str:
    kinds = []
    for sub in (error.context or [error]):
        t = sub.schema.get("type") if isinstance(sub.schema, dict) else None
        if isinstance(t, str) and t != "null":
            kinds.append({"string": "text", "integer": "a whole number", "number": "a number",
                          "boolean": "true or false", "array": "a list", "object": "an object"}.get(t, t))
    return " or ".join(dict.fromkeys(kinds)) or "another type"


def check_input(entity: Entity, data, partial: bool) -> dict[str, str]:
    """Field errors of a JSON body against the entity's generated schema."""
    if not isinstance(data, dict):
        return {"_body": "expected a JSON object of fields"}
    fast = _fast(entity, partial)
    if fast is not None:
        try:
            fast(data)
            return {}
        except fastjsonschema.JsonSchemaException:
            pass
    errors: dict[str, str] = {}
    for err in _validator(entity, partial).iter_errors(data):
        if err.validator == "additionalProperties":
            for k in data:
                if k not in entity.fields and k != "version":
                    errors.setdefault(k, "unknown field")
            continue
        if err.validator == "required":
            for k in err.validator_value:
                if k not in data:
                    errors.setdefault(k, "is required")
            continue
        key = str(err.absolute_path[0]) if err.absolute_path else "_body"
        errors.setdefault(key, _message(err))
    return errors
