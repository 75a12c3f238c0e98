"""Draft 4's "integer" is a literal without fraction or exponent (``5.0`` is not one there,
as jsonschema's Draft4Validator says); later drafts accept every integral value."""

from __future__ import annotations

import json

import jsonschema
import pytest

from constrain.engine.earley import accepts
from constrain.jsonschema import compile_json_schema

DOCS = [b"5", b"-3", b"0", b"-0", b"5.0", b"-0.0", b"1e1", b"10", b"11", b"2.5"]
SCHEMA = {"type": "integer", "minimum": -3, "maximum": 10}


@pytest.mark.parametrize("dialect,cls", [("4", jsonschema.Draft4Validator), ("7", jsonschema.Draft7Validator),
                                         ("2020-12", jsonschema.Draft202012Validator)])
def test_integer_agrees_with_jsonschema(dialect, cls):
    g = compile_json_schema(SCHEMA, dialect=dialect)
    for d in DOCS:
        assert accepts(g, d) == cls(SCHEMA).is_valid(json.loads(d)), (dialect, d)
