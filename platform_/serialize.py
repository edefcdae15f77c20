"""Records to JSON-ready dicts: ISO dates, numbers for decimals, child rows nested."""
from __future__ import annotations

from engine.values import record_to_json as record_json

__all__ = ["record_json"]
