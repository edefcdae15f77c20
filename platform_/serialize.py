"""Records to JSON-ready dicts for the API: ISO dates, datetimes in UTC with their zone (`…Z`), child
rows nested, and decimals kept exact (Decimal), written as JSON numbers digit for digit by the app's
JSON provider (platform_/jsonexact.py)."""
from __future__ import annotations

from engine.values import record_to_json


def record_json(config, entity, rec: dict) -> dict:
    return record_to_json(config, entity, rec, exact=True, utc=True)


__all__ = ["record_json"]
