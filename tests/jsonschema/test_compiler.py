"""JSON Schema compiler: soundness against jsonschema on the JSON-Schema-Test-Suite and on
random documents, options, errors, and the path into the mask engine with a real vocabulary."""

from __future__ import annotations

import json
import os
import sys
import warnings

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from constrain.engine.earley import ByteParser, CompiledParserTables
from constrain.errors import ConfigError, ConstrainError, UnsupportedSchemaFeature
from constrain.jsonschema import compile_json_schema, from_pydantic, from_type
from constrain.jsonschema.compiler import SchemaWarning

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SHARED = os.path.abspath(os.path.join(ROOT, "..", "shared"))
sys.path.insert(0, os.path.join(SHARED, "bench"))
sys.path.insert(0, ROOT)


def accepts(tables: CompiledParserTables, text: str) -> bool:
    p = ByteParser(tables)
    return p.feed(text.encode("utf-8")) and p.is_complete()


def tables(schema, **kw) -> CompiledParserTables:
    return CompiledParserTables(compile_json_schema(schema, **kw))


# ----------------------------------------------------------------------------- the suite
SUITE = os.path.join(SHARED, "data", "json-schema-test-suite", "tests")


@pytest.mark.skipif(not os.path.isdir(SUITE), reason="JSON-Schema-Test-Suite not present")
@pytest.mark.parametrize("draft", ["draft2020-12", "draft7"])
def test_suite_never_accepts_an_invalid_instance(draft):
    """Every schema we compile rejects every invalid instance of the suite (0 "under");
    valid instances are accepted at a high rate (compact serialisation, schema order)."""
    import conformance as C

    from bench.conformance_constrain import remotes_registry

    dialect = {"draft7": "7", "draft2019-09": "2019-09"}.get(draft, "2020-12")
    reg = remotes_registry(dialect)
    under, valid, valid_ok, compiled = [], 0, 0, 0
    for case in C.load_jsts(draft):
        try:
            t = tables(case["schema"], dialect=dialect, registry=reg)
        except ConstrainError:
            continue
        compiled += 1
        for x in case["instances"]:
            text = C.dumps(x["data"])
            ok = accepts(t, text)
            if x["valid"]:
                valid += 1
                valid_ok += ok
            elif ok:
                under.append((case["id"], x["description"], text[:60]))
    assert under == []
    assert compiled >= 250
    assert valid_ok / valid >= 0.85, (valid_ok, valid)


# ----------------------------------------------------------------------------- random documents
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-1000, 1000) | st.sampled_from([0.5, -2.25, 1.0, 3.75, 100.125])
    | st.text(alphabet="abcxyz-_ é\n\"\\0123", max_size=6),
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.sampled_from(["a", "b", "c", "id", "x-1", "zz"]),
                                                             kids, max_size=4),
    max_leaves=12,
)

SCHEMAS = [
    {"type": "object", "properties": {"a": {"type": "integer", "minimum": 0}, "b": {"type": "string"}},
     "required": ["a"], "additionalProperties": False},
    {"type": "object", "patternProperties": {"^x-": {"type": "integer"}, "z": {"type": "null"}},
     "additionalProperties": {"type": "boolean"}},
    {"oneOf": [{"type": "integer", "multipleOf": 2}, {"type": "integer", "multipleOf": 3}, {"type": "string"}]},
    {"if": {"type": "object", "required": ["a"]}, "then": {"required": ["b"]}, "else": {"type": "array"}},
    {"not": {"anyOf": [{"type": "string"}, {"type": "object", "required": ["a"]}]}},
    {"type": "array", "items": {"type": ["integer", "null"]}, "contains": {"type": "null"}, "maxContains": 2,
     "minItems": 1, "maxItems": 4},
    {"type": "array", "prefixItems": [{"type": "string"}, {"type": "boolean"}], "items": False},
    {"type": "object", "dependentRequired": {"a": ["b"]}, "dependentSchemas": {"c": {"required": ["id"]}},
     "maxProperties": 3},
    {"$defs": {"node": {"type": "object", "properties": {"a": {"type": "integer"},
                                                         "b": {"type": "array", "items": {"$ref": "#/$defs/node"}}},
                        "additionalProperties": False}}, "$ref": "#/$defs/node"},
    {"enum": [None, 1, "a", [1, "a"], {"a": 1}]},
    {"type": "string", "minLength": 2, "maxLength": 4},
    {"allOf": [{"type": "object", "properties": {"a": {"type": "number"}}},
               {"properties": {"a": {"maximum": 10}}, "required": ["a"]}]},
    {"type": "object", "propertyNames": {"maxLength": 1}, "minProperties": 1},
]


@pytest.fixture(scope="module")
def compiled_schemas():
    out = []
    for s in SCHEMAS:
        out.append((s, tables(s), tables(s, property_order="any"), jsonschema.Draft202012Validator(s)))
    return out


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(doc=json_values, which=st.integers(0, len(SCHEMAS) - 1))
def test_random_documents_sound_and_complete(compiled_schemas, doc, which):
    """accepted ⇒ valid (always); valid ⇒ accepted in any-order mode, except the documented
    narrowing (minProperties counts only declared names when undeclared ones are allowed)."""
    schema, t_schema, t_any, validator = compiled_schemas[which]
    text = json.dumps(doc, ensure_ascii=False, separators=(",", ":"))
    ok = accepts(t_schema, text)
    ok_any = accepts(t_any, text)
    valid = validator.is_valid(doc)
    if ok or ok_any:
        assert valid, (schema, text)
    if valid and "minProperties" not in json.dumps(schema):
        assert ok_any, (schema, text)


# ----------------------------------------------------------------------------- options
def test_whitespace_options():
    s = {"type": "object", "properties": {"a": {"type": "array", "items": {"type": "integer"}}}}
    compact = tables(s)
    assert accepts(compact, '{"a":[1,2]}') and not accepts(compact, '{"a": [1, 2]}')
    spaced = tables(s, separators=(", ", ": "))
    assert accepts(spaced, '{"a": [1, 2]}') and not accepts(spaced, '{"a":[1,2]}')
    flex = tables(s, whitespace="flexible", max_whitespace=2)
    assert accepts(flex, '{ "a" : [ 1 ,2 ] }') and accepts(flex, '{"a":[1,2]}')
    assert accepts(flex, '{\n "a": []\n}')
    assert not accepts(flex, '{"a":   [1]}')  # three spaces: over the bound
    with pytest.raises(ConfigError):
        compile_json_schema(s, separators=(";", ":"))


def test_property_order():
    s = {"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}}, "required": ["a", "b"]}
    assert accepts(tables(s), '{"a":1,"b":2}') and not accepts(tables(s), '{"b":2,"a":1}')
    t = tables(s, property_order="any")
    assert accepts(t, '{"b":2,"a":1}') and accepts(t, '{"a":1,"b":2}')
    assert not accepts(t, '{"a":1,"a":2}') and not accepts(t, '{"a":1}')


def test_string_escapes_are_decoded_before_checking():
    t = tables({"type": "string", "maxLength": 2, "pattern": "^a"})
    assert accepts(t, '"a\\n"') and accepts(t, '"a\\u0001"') and accepts(t, '"aé"')
    assert not accepts(t, '"a\\n\\n"') and not accepts(t, '"\\u0061"') is None
    k = tables({"const": "x\"y"})
    assert accepts(k, '"x\\"y"') and not accepts(k, '"x\\\\"')


def test_recursion_needs_no_unrolling():
    s = {"$defs": {"l": {"anyOf": [{"type": "null"}, {"type": "array", "items": {"$ref": "#/$defs/l"}}]}},
         "$ref": "#/$defs/l"}
    t = tables(s)
    deep = "[" * 200 + "null" + "]" * 200
    assert accepts(t, deep) and not accepts(t, deep[:-1]) and not accepts(t, "[1]")


# ----------------------------------------------------------------------------- errors
@pytest.mark.parametrize("schema, keyword, pointer", [
    ({"properties": {"a": {"$recursiveRef": "#"}}}, "$recursiveRef", "/properties/a/$recursiveRef"),
    ({"$defs": {"x": {"$dynamicAnchor": "n"}, "y": {"$dynamicAnchor": "n"}}, "$dynamicRef": "#n"}, "$dynamicRef",
     "/$dynamicRef"),
    ({"type": "array", "items": {"format": "no-such-format"}}, "format", "/items/format"),
    ({"$ref": "http://example.com/schema.json"}, "$ref", "/$ref"),
    ({"type": "array", "uniqueItems": True}, "uniqueItems", "/uniqueItems"),
    ({"type": "strng"}, "strng", "/type"),
])
def test_refusals_name_the_keyword_and_pointer(schema, keyword, pointer):
    with pytest.raises(UnsupportedSchemaFeature) as e:
        compile_json_schema(schema)
    assert keyword in str(e.value)
    if pointer is not None:
        assert e.value.pointer == pointer


def test_lenient_mode_reports_what_it_dropped():
    s = {"type": "object", "properties": {"a": {"type": "string", "format": "no-such-format"}}}
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        g, dropped = compile_json_schema(s, lenient=True)
    assert [d[:2] for d in dropped] == [("format", "/properties/a/format")]
    assert any(issubclass(x.category, SchemaWarning) for x in w)
    assert accepts(CompiledParserTables(g), '{"a":"anything"}')


def test_empty_language_is_an_error():
    with pytest.raises(UnsupportedSchemaFeature, match="no JSON value"):
        compile_json_schema({"type": "integer", "minimum": 3, "maximum": 2})
    with pytest.raises(UnsupportedSchemaFeature, match="not valid JSON"):
        compile_json_schema("{not json")


# ----------------------------------------------------------------------------- other inputs
def test_pydantic_and_type_hints():
    pydantic = pytest.importorskip("pydantic")
    from typing import Literal

    from typing_extensions import TypedDict

    class Item(pydantic.BaseModel):
        name: str
        qty: int = 1
        tags: list[Literal["a", "b"]] = []

    t = CompiledParserTables(from_pydantic(Item))
    assert accepts(t, '{"name":"x","qty":2,"tags":["a"]}') and accepts(t, '{"name":"x"}')
    assert not accepts(t, '{"name":"x","tags":["c"]}') and not accepts(t, '{"qty":2}')

    class TD(TypedDict):
        k: int

    t2 = CompiledParserTables(from_type(list[TD]))
    assert accepts(t2, '[{"k":1},{"k":2}]') and not accepts(t2, '[{"k":"1"}]')


def test_pydantic_sets_of_strings_are_unique(smol_vocab):
    # set[str] is uniqueItems over free strings: the grammar allows duplicates, the value check not
    pytest.importorskip("pydantic")
    from constrain.engine.matcher import Matcher

    g = from_type(set[str])
    assert g.value_check is not None
    m = Matcher(g, smol_vocab)
    assert m.accept_bytes(b'["a","b"]') and m.is_complete()
    m.reset()
    assert m.accept_bytes(b'["a",') and not m.accept_bytes(b'"a"') and m.accept_bytes(b'"ab"]')


def test_schema_grammar_drives_the_matcher_with_a_real_vocabulary(smol_hf, smol_vocab):
    """Token-by-token walk of a document: every mask equals the trie oracle's, every token of
    the real tokenization is allowed when it comes, EOS only at the end."""
    import numpy as np

    from constrain.engine.bitmask import allocate_token_bitmask, bitmask_to_bool
    from constrain.engine.matcher import Matcher
    from constrain.testing.naive import trie_mask

    s = {"type": "object", "properties": {"name": {"type": "string", "maxLength": 8},
                                          "age": {"type": "integer", "minimum": 0, "maximum": 150},
                                          "tags": {"type": "array", "items": {"enum": ["a", "bc"]}, "maxItems": 3}},
         "required": ["name", "age"], "additionalProperties": False}
    m = Matcher(compile_json_schema(s), smol_vocab)
    doc = '{"name":"Ann Lee","age":42,"tags":["bc","a"]}'
    eos = smol_vocab.eos_ids[0]
    bm = allocate_token_bitmask(1, smol_vocab.n_vocab)
    for tok in smol_hf.encode(doc, add_special_tokens=False).ids:
        m.fill_next_token_bitmask(bm)
        mask = bitmask_to_bool(bm[0], smol_vocab.n_vocab)
        assert np.array_equal(mask, trie_mask(m.parser, smol_vocab)), m.output
        assert mask[tok] and not mask[eos]
        assert m.accept_token(tok)
    m.fill_next_token_bitmask(bm)
    assert bitmask_to_bool(bm[0], smol_vocab.n_vocab)[eos]
    assert m.accept_token(eos) and m.is_finished()
