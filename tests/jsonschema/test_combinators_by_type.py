"""oneOf / not / if complemented type by type: a branch's object part (additionalProperties,
which has no complement here) is never complemented when only its scalars overlap, or when the
sibling keywords rule objects out.  Sound and complete against jsonschema on random documents."""

from __future__ import annotations

import json

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from constrain.engine.earley import ByteParser, CompiledParserTables
from constrain.errors import UnsupportedSchemaFeature
from constrain.jsonschema import compile_json_schema


def accepts(t, text):
    p = ByteParser(t)
    return p.feed(text.encode("utf-8")) and p.is_complete()


STAGE = {"properties": {"type": {"enum": ["stage"]}, "props": {"type": "string"}}, "required": ["type", "props"],
         "additionalProperties": False}
TEASER = {"properties": {"type": {"enum": ["teaser"]}, "n": {"type": "integer"}}, "required": ["type"],
          "additionalProperties": False}

SCHEMAS = [
    # branches overlap on every non-object (no "type"), their objects are disjoint by "type"
    {"oneOf": [STAGE, TEASER]},
    {"type": "array", "items": {"oneOf": [STAGE, TEASER]}},
    # overlapping objects, but the sibling "type" keeps strings only: nothing to complement in objects
    {"type": "string", "oneOf": [{"additionalProperties": False, "minLength": 2}, {"maxLength": 3}]},
    {"type": ["integer", "null"], "not": {"additionalProperties": {"type": "string"}, "minimum": 5}},
    {"type": "number", "if": {"additionalProperties": False, "maximum": 0}, "then": {"multipleOf": 2},
     "else": {"multipleOf": 3}},
    # numbers overlap and are complemented; objects are disjoint
    {"oneOf": [{"type": ["integer", "object"], "properties": {"a": {"type": "null"}}, "required": ["a"],
                "additionalProperties": False},
               {"type": ["number", "object"], "minimum": 2, "required": ["b"], "additionalProperties": False}]},
]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-8, 8) | st.sampled_from([0.5, 2.0, 3.0, -1.5])
    | st.sampled_from(["", "a", "ab", "abc", "abcd", "stage", "teaser"]),
    lambda kids: st.lists(kids, max_size=3) | st.dictionaries(
        st.sampled_from(["type", "props", "n", "a", "b"]), kids | st.sampled_from(["stage", "teaser"]), max_size=3),
    max_leaves=8,
)


@pytest.fixture(scope="module")
def compiled():
    # property_order="any": the drawn objects list their members in any order (the default, schema order, refuses
    # {"props":..,"type":..} by design, which is not what this test is about)
    return [(s, CompiledParserTables(compile_json_schema(s, property_order="any")), jsonschema.Draft202012Validator(s))
            for s in SCHEMAS]


@settings(deadline=None, max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(doc=json_values, which=st.integers(0, len(SCHEMAS) - 1))
def test_sound_and_complete(compiled, doc, which):
    schema, t, v = compiled[which]
    text = json.dumps(doc, separators=(",", ":"))
    assert accepts(t, text) == v.is_valid(doc), (schema, text)


def test_known_instances():
    t = CompiledParserTables(compile_json_schema({"oneOf": [STAGE, TEASER]}))
    assert accepts(t, '{"type":"stage","props":"x"}') and accepts(t, '{"type":"teaser"}')
    assert not accepts(t, '{"type":"stage"}') and not accepts(t, "null") and not accepts(t, '"x"')


def test_object_overlap_is_made_disjoint_through_undeclared_members():
    # ¬additionalProperties = "some undeclared member breaks it" (ObjC.some, tests/jsonschema/test_not_undeclared.py)
    s = {"type": "object", "oneOf": [{"additionalProperties": False, "properties": {"key": {"type": "string"}}},
                                     {"additionalProperties": False, "properties": {"keys": {"type": "array"}}}]}
    t = CompiledParserTables(compile_json_schema(s))
    assert accepts(t, '{"key":"a"}') and accepts(t, '{"keys":[]}')
    assert not accepts(t, "{}")  # both branches match
    assert not accepts(t, '{"key":"a","keys":[]}') and not accepts(t, '{"x":1}')
    # a complement of such a complement stays refused by name
    with pytest.raises(UnsupportedSchemaFeature) as e:
        compile_json_schema({"not": s})
    assert "complement" in str(e.value)
