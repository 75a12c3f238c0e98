"""uniqueItems: exact when every item is one of a small finite set of scalar values, refused
by name and pointer otherwise."""

from __future__ import annotations

import itertools
import json

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from constrain.engine.earley import ByteParser, CompiledParserTables
from constrain.errors import UnsupportedSchemaFeature
from constrain.hypothesis import from_schema
from constrain.jsonschema import compile_json_schema
from constrain.jsonschema.unique import finite_words, number_values
from constrain.grammar.regex import compile_regex


def accepts(t, text: str) -> bool:
    p = ByteParser(t)
    return p.feed(text.encode("utf-8")) and p.is_complete()


def tables(schema, **kw):
    return CompiledParserTables(compile_json_schema(schema, **kw))


# schema, the finite set of item values it draws from (a superset of what it allows)
FINITE = [
    ({"type": "array", "items": {"type": "boolean"}, "uniqueItems": True}, [True, False]),
    ({"type": "array", "items": {"enum": [1, "a", None, 2.5, True]}, "uniqueItems": True, "minItems": 2},
     [1, "a", None, 2.5, True]),
    ({"type": "array", "items": {"type": "integer", "minimum": -1, "maximum": 3}, "uniqueItems": True,
      "maxItems": 3}, [-1, 0, 1, 2, 3]),
    ({"prefixItems": [{"type": "boolean"}, {"const": "x"}], "items": False, "uniqueItems": True},
     [True, False, "x"]),
    ({"prefixItems": [{"enum": [1, 2]}], "items": {"enum": [1, 2, 3]}, "uniqueItems": True}, [1, 2, 3]),
    ({"type": "array", "items": {"enum": ["a", "b", "c", "d"]}, "uniqueItems": True,
      "contains": {"enum": ["a", "b"]}, "minContains": 1, "maxContains": 1}, ["a", "b", "c", "d"]),
    ({"allOf": [{"items": {"type": ["string", "null"]}, "uniqueItems": True},
                {"type": "array", "items": {"anyOf": [{"pattern": "^[xy]$"}, {"type": "null"}]}}],
      "maxItems": 2}, ["x", "y", None]),
    ({"type": "array", "items": {"type": "string", "pattern": "^(ab?|c)$"}, "uniqueItems": True},
     ["a", "ab", "c"]),
]


def _arrays(universe, n_max):
    """Every array of up to n_max items drawn from universe (duplicates included)."""
    for n in range(n_max + 1):
        yield from itertools.product(universe, repeat=n)


@pytest.mark.parametrize("schema, universe", FINITE, ids=[str(i) for i in range(len(FINITE))])
def test_finite_unique_arrays_are_exact(schema, universe):
    """Over every array of the finite set (and equal-value respellings like 1.0 for 1), the
    grammar accepts exactly what jsonschema validates: every unique valid array, no duplicate."""
    t = tables(schema)
    v = jsonschema.Draft202012Validator(schema)
    n_max = min(len(universe) + 1, 5)
    for arr in _arrays(universe, n_max):
        text = json.dumps(list(arr), separators=(",", ":"))
        assert accepts(t, text) == v.is_valid(list(arr)), (schema, text)


def test_equal_values_count_as_duplicates():
    t = tables({"type": "array", "items": {"enum": [1, "\n", True]}, "uniqueItems": True})
    assert accepts(t, '[1,"\\n",true]') and accepts(t, '[1.0,"\\u000a"]')
    assert not accepts(t, "[1,1.0]") and not accepts(t, '["\\n","\\u000a"]') and not accepts(t, "[1.00,1]")
    assert accepts(t, "[true,1]")  # true and 1 are different JSON values


@settings(deadline=None, max_examples=60, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), which=st.integers(0, len(FINITE) - 1))
def test_everything_generated_validates(data, which):
    schema, _ = FINITE[which]
    value = data.draw(from_schema(schema))
    jsonschema.validate(value, schema, cls=jsonschema.Draft202012Validator)


@pytest.mark.parametrize("schema, pointer", [
    ({"type": "array", "uniqueItems": True}, "/uniqueItems"),
    ({"items": {"type": "integer"}, "uniqueItems": True}, "/uniqueItems"),
    ({"properties": {"tags": {"items": {"type": ["string", "integer"]}, "uniqueItems": True}}},
     "/properties/tags/uniqueItems"),
    ({"items": {"type": "string", "maxLength": 3}, "uniqueItems": True}, "/uniqueItems"),
    ({"items": {"enum": [[1], [2]]}, "uniqueItems": True}, "/uniqueItems"),
    ({"items": {"type": "integer", "minimum": 0, "maximum": 1000}, "uniqueItems": True}, "/uniqueItems"),
    ({"$defs": {"u": {"uniqueItems": True}}, "allOf": [{"$ref": "#/$defs/u"}]}, "#/$defs/u/uniqueItems"),
])
def test_infinite_item_languages_are_refused_by_name(schema, pointer):
    with pytest.raises(UnsupportedSchemaFeature) as e:
        compile_json_schema(schema)
    assert "uniqueItems" in str(e.value)
    assert e.value.pointer == pointer


def test_too_many_sets_of_values_are_refused():
    s = {"type": "array", "items": {"enum": list(range(40))}, "uniqueItems": True}
    with pytest.raises(UnsupportedSchemaFeature, match="uniqueItems"):
        compile_json_schema(s)
    # a small maxItems keeps the sets few: compiles
    t = tables(dict(s, maxItems=2))
    assert accepts(t, "[3,39]") and not accepts(t, "[3,3]") and not accepts(t, "[1,2,3]")


def test_unique_items_without_array_part_needs_nothing():
    # the array part is intersected away by type: nothing to enforce, nothing refused
    t = tables({"type": "string", "uniqueItems": True})
    assert accepts(t, '"x"')
    t = tables({"type": "array", "maxItems": 1, "uniqueItems": True})
    assert accepts(t, "[[1]]")


def test_lenient_mode_records_an_infinite_unique_items():
    g, dropped = compile_json_schema({"items": {"type": "integer"}, "uniqueItems": True}, lenient=True)
    assert [d[:2] for d in dropped] == [("uniqueItems", "/uniqueItems")]


def test_finite_words_and_number_values():
    assert finite_words(compile_regex("a(b|c)?"), 10) == [b"a", b"ab", b"ac"]
    assert finite_words(compile_regex("ab*"), 10) is None
    assert finite_words(compile_regex("[a-z]{2}"), 100) is None  # 676 words > limit
    from constrain.jsonschema.numbers import number_dfa
    from fractions import Fraction

    vals = number_values(number_dfa(integer=True, minimum=Fraction(-1), maximum=Fraction(1)))
    assert sorted(v for v, _ in vals) == [-1, 0, 1]
    zero = dict(vals)[Fraction(0)]
    assert zero.matches(b"0") and zero.matches(b"-0") and zero.matches(b"0.0") and not zero.matches(b"1")
