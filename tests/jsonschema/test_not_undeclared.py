"""¬additionalProperties / ¬patternProperties (under not, oneOf, if): "some member the shape does
not declare breaks it", an ``ObjC.some`` requirement the object grammar tracks in its states."""

from __future__ import annotations

import json

import jsonschema
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from constrain.engine.earley import ByteParser, CompiledParserTables
from constrain.errors import UnsupportedSchemaFeature
from constrain.jsonschema import compile_json_schema

KEYS = ["a", "b", "xa", "xb", "y"]
scalars = st.sampled_from([None, True, 1, -2, "s", ""])
values = st.one_of(scalars, st.dictionaries(st.sampled_from(KEYS), scalars, max_size=2))
objects = st.dictionaries(st.sampled_from(KEYS), values, max_size=4)
leaf = st.sampled_from([{"type": "integer"}, {"type": "string"}, {"type": "boolean"}, False, True,
                        {"type": "object", "additionalProperties": {"type": "integer"}}, {"minimum": 0}])


@st.composite
def shapes(draw):
    s = {}
    if draw(st.booleans()):
        s["properties"] = draw(st.dictionaries(st.sampled_from(["a", "b"]), leaf, max_size=2))
    if draw(st.booleans()):
        s["patternProperties"] = draw(st.dictionaries(st.sampled_from(["^x", "b$", "^xa$"]), leaf, min_size=1,
                                                      max_size=2))
    s["additionalProperties"] = draw(leaf)
    if draw(st.booleans()):
        s["required"] = draw(st.lists(st.sampled_from(["a", "xa"]), unique=True, max_size=1))
    return s


@st.composite
def schemas(draw):
    a, b = draw(shapes()), draw(shapes())
    how = draw(st.sampled_from(["not", "oneOf", "if", "anyOf-not"]))
    if how == "not":
        return {"type": "object", "not": a}
    if how == "oneOf":
        return {"type": "object", "oneOf": [a, b]}
    if how == "if":
        return {"type": "object", "if": a, "then": b, "else": {"not": b}}
    return {"type": "object", "anyOf": [{"not": a}, b], "properties": {"y": {"type": "string"}}}


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(schema=schemas(), docs=st.lists(objects, min_size=1, max_size=6))
def test_accepts_exactly_what_jsonschema_validates(schema, docs):
    try:
        g = compile_json_schema(schema, property_order="any")
    except UnsupportedSchemaFeature as e:
        # refused by name (e.g. a complement of a complement), never wrong
        assert e.pointer is not None
        return
    t = CompiledParserTables(g)
    val = jsonschema.Draft202012Validator(schema)
    for d in docs:
        p = ByteParser(t)
        got = p.feed(json.dumps(d, separators=(",", ":")).encode()) and p.is_complete()
        assert got == val.is_valid(d), (schema, d)


def test_the_jsb_shapes_compile_and_decide_like_jsonschema():
    # JSONSchemaBench's Synthesized "not additionalProperties" and oneOf-over-objects cases
    cases = [
        ({"not": {"additionalProperties": {"type": "boolean"}, "allOf": [{"properties": {"foo": {}}}]}},
         [{"bar": 1}, {"bar": True}, {"foo": 1}, {"foo": 1, "b": "x"}, 3]),
        ({"oneOf": [{"additionalProperties": False, "properties": {"a": {}}},
                    {"properties": {"b": {"type": "integer"}}}]},
         [{}, {"a": 1}, {"b": 1}, {"a": 1, "b": 1}, {"b": "x"}, {"c": 1}]),
    ]
    for schema, docs in cases:
        t = CompiledParserTables(compile_json_schema(schema))
        val = jsonschema.Draft202012Validator(schema)
        results = []
        for d in docs:
            p = ByteParser(t)
            results.append(p.feed(json.dumps(d, separators=(",", ":")).encode()) and p.is_complete())
        assert results == [val.is_valid(d) for d in docs], (schema, docs)
        assert any(results) and not all(results)
