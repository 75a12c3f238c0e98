"""OpenAPI's numeric formats: int32/int64 are exact integer ranges, float/double any number;
none of them constrains strings (and no other format name is accepted silently)."""

from __future__ import annotations

import pytest

from constrain.engine.earley import accepts
from constrain.errors import UnsupportedSchemaFeature
from constrain.jsonschema import compile_json_schema


@pytest.mark.parametrize("fmt,bits", [("int32", 32), ("int64", 64)])
def test_integer_formats_are_exact_ranges(fmt, bits):
    lo, hi = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    g = compile_json_schema({"type": "integer", "format": fmt})
    for v, ok in ((lo, True), (hi, True), (lo - 1, False), (hi + 1, False), (0, True)):
        assert accepts(g, str(v).encode()) == ok, v
    assert accepts(g, b"7.0") and not accepts(g, b"7.5")  # integers in JSON Schema's sense
    # the tighter of the format's range and the keywords applies
    g = compile_json_schema({"type": "integer", "format": fmt, "minimum": 3, "maximum": 10 ** 30})
    assert not accepts(g, b"2") and accepts(g, b"3") and accepts(g, str(hi).encode())
    assert not accepts(g, str(hi + 1).encode())


def test_float_formats_and_strings():
    g = compile_json_schema({"type": "number", "format": "double"})
    assert accepts(g, b"1.5e300") and accepts(g, b"-0.25")
    g = compile_json_schema({"type": ["string", "integer"], "format": "int32"})
    assert accepts(g, b'"anything"') and accepts(g, b"12") and not accepts(g, b"4294967296")


def test_unknown_formats_are_still_refused():
    with pytest.raises(UnsupportedSchemaFeature) as e:
        compile_json_schema({"type": "string", "format": "color"})
    assert "color" in str(e.value) and "/format" in str(e.value)
