"""``property_order="any"`` is exact: every order of a valid object's members is accepted,
a repeated declared name or a missing required one is rejected, and nothing it accepts is
invalid; the default (schema order) accepts a subset of it."""

from __future__ import annotations

import itertools
import json

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from constrain.engine.earley import ByteParser, CompiledParserTables
from constrain.jsonschema import compile_json_schema


def accepts(t, text: str) -> bool:
    p = ByteParser(t)
    return p.feed(text.encode("utf-8")) and p.is_complete()


def dump(pairs) -> str:
    return "{" + ",".join(json.dumps(k) + ":" + json.dumps(v) for k, v in pairs) + "}"


SCHEMAS = [
    {"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "string"}, "c": {"type": "boolean"},
                                      "d": {"type": "null"}},
     "required": ["a", "c"], "additionalProperties": False},
    {"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "string"}},
     "required": ["a", "z"], "additionalProperties": {"type": "integer"}},
    {"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}, "c": {"type": "integer"}},
     "dependentRequired": {"b": ["c"]}, "maxProperties": 2},
    {"allOf": [{"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]},
               {"properties": {"b": {"type": "integer"}, "a": {"minimum": 0}}, "required": ["b"]}]},
]
REQUIRED = [["a", "c"], ["a", "z"], [], ["a", "b"]]
DECLARED = [set("abcd"), set("ab"), set("abc"), set("ab")]
VALUES = {"a": st.integers(-3, 3), "b": st.one_of(st.text("xy", max_size=2), st.integers(0, 3)),
          "c": st.one_of(st.booleans(), st.integers(0, 3)), "d": st.none(), "z": st.integers(0, 3),
          "q": st.integers(0, 3)}


@pytest.fixture(scope="module")
def compiled():
    return [(s, CompiledParserTables(compile_json_schema(s)),
             CompiledParserTables(compile_json_schema(s, property_order="any")),
             jsonschema.Draft202012Validator(s)) for s in SCHEMAS]


@settings(deadline=None, max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), which=st.integers(0, len(SCHEMAS) - 1))
def test_any_order_is_exact(compiled, data, which):
    schema, t_schema, t_any, v = compiled[which]
    names = data.draw(st.lists(st.sampled_from(sorted(VALUES)), unique=True, max_size=5))
    pairs = [(n, data.draw(VALUES[n])) for n in names]
    doc = dict(pairs)
    valid = v.is_valid(doc)
    for perm in itertools.permutations(pairs):
        text = dump(perm)
        ok_any = accepts(t_any, text)
        assert ok_any == valid, (schema, text)
        if accepts(t_schema, text):
            assert valid and ok_any, (schema, text)
    if valid and pairs:
        # a repeated declared name is rejected; so is a missing required name
        declared = [n for n, _ in pairs if n in DECLARED[which]]
        if declared:
            n = declared[0]
            assert not accepts(t_any, dump(pairs + [(n, doc[n])])), (schema, pairs)
        for r in REQUIRED[which]:
            if r in doc:
                assert not accepts(t_any, dump([(k, x) for k, x in pairs if k != r])), (schema, r)


def test_permutations_of_a_required_set():
    s = {"type": "object", "properties": {k: {"type": "integer"} for k in "abcde"}, "required": list("abcde"),
         "additionalProperties": False}
    t = CompiledParserTables(compile_json_schema(s, property_order="any"))
    for perm in itertools.permutations("abcde"):
        assert accepts(t, dump([(k, 1) for k in perm]))
    assert not accepts(t, dump([(k, 1) for k in "abcd"]))
    assert not accepts(t, dump([(k, 1) for k in "abcdea"]))
