"""Records to JSON-ready dicts: ISO dates, numbers for decimals, child rows nested."""
from __future__ import annotations

from engine.model import Config, Entity
from engine.values import to_json


def record_json(config: Config, entity: Entity, rec: dict) -> dict:
    out = {}
    for k, v in rec.items():
        f = entity.fields.get(k)
        if f is not None and f.type == "table" and isinstance(v, list):
            child = config.entities[f.of]
            out[k] = [record_json(config, child, row) for row in v]
        else:
            out[k] = to_json(f, v)
    return out
