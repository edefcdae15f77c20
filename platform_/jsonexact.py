"""The app's JSON provider: like Flask's, but a Decimal is written as a JSON number with exactly its
digits (money never passes through a float on its way out)."""
from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import simplejson
from flask.json.provider import DefaultJSONProvider


def _default(o):
    """Datetimes that reach the encoder raw are naive UTC: RFC 3339 with `Z` (Flask's default would
    write an HTTP date); dates as YYYY-MM-DD; everything else as Flask does."""
    if isinstance(o, dt.datetime):
        text = o.replace(microsecond=0).isoformat()
        return text + "Z" if o.tzinfo is None else text
    if isinstance(o, dt.date):
        return o.isoformat()
    return DefaultJSONProvider.default(o)


class ExactJSONProvider(DefaultJSONProvider):
    default = staticmethod(_default)

    def dumps(self, obj, **kwargs):
        kwargs.setdefault("default", self.default)
        kwargs.setdefault("ensure_ascii", self.ensure_ascii)
        kwargs.setdefault("sort_keys", self.sort_keys)
        return simplejson.dumps(obj, use_decimal=True, **kwargs)

    def loads(self, s, **kwargs):
        """Numbers with a fraction are read as Decimal, so a money value arrives with all its digits."""
        kwargs.setdefault("parse_float", Decimal)
        return json.loads(s, **kwargs)
