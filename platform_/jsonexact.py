"""The app's JSON provider: like Flask's, but a Decimal is written as a JSON number with exactly its
digits (money never passes through a float on its way out)."""
from __future__ import annotations

import json
from decimal import Decimal

import simplejson
from flask.json.provider import DefaultJSONProvider


class ExactJSONProvider(DefaultJSONProvider):
    def dumps(self, obj, **kwargs):
        kwargs.setdefault("default", self.default)
        kwargs.setdefault("ensure_ascii", self.ensure_ascii)
        kwargs.setdefault("sort_keys", self.sort_keys)
        return simplejson.dumps(obj, use_decimal=True, **kwargs)

    def loads(self, s, **kwargs):
        """Numbers with a fraction are read as Decimal, so a money value arrives with all its digits."""
        kwargs.setdefault("parse_float", Decimal)
        return json.loads(s, **kwargs)
