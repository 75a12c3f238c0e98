"""Meta-schema checks read the schema's exact ``Decimal`` numbers as JSON numbers."""

from __future__ import annotations

import pytest

from constrain.engine.earley import accepts
from constrain.errors import InvalidSchema
from constrain.jsonschema import compile_json_schema


@pytest.mark.parametrize("dialect", ["2020-12", "2019-09", "7"])
@pytest.mark.parametrize("kw,ok,bad", [("maxLength", b'"ab"', b'"abc"'), ("minLength", b'"ab"', b'"a"'),
                                       ("maxItems", b"[1,2]", b"[1,2,3]"), ("minItems", b"[1,2]", b"[1]")])
def test_integral_floats_are_integers(dialect, kw, ok, bad):
    g = compile_json_schema('{"%s": 2.0}' % kw, dialect=dialect)  # valid since draft 6
    assert accepts(g, ok) and not accepts(g, bad)


@pytest.mark.parametrize("text", ['{"maxLength": 2.5}', '{"maxLength": -1}', '{"minItems": "2"}'])
def test_non_integers_are_still_refused(text):
    with pytest.raises(InvalidSchema) as e:
        compile_json_schema(text)
    assert "/m" in str(e.value)
