"""A schema that cannot be normalised (a complement with no finite form …) but lists its values
(``enum``/``const`` in it or in an ``allOf``/``$ref`` part) compiles to exactly the listed
values ``jsonschema`` validates against the whole sub-schema."""

from __future__ import annotations

import json

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from constrain.engine.earley import ByteParser, CompiledParserTables
from constrain.errors import InvalidSchema, UnsupportedSchemaFeature
from constrain.jsonschema import compile_json_schema


def accepts(g, value) -> bool:
    p = ByteParser(CompiledParserTables(g))
    return p.feed(json.dumps(value, separators=(",", ":")).encode()) and p.is_complete()


def valid(schema, value) -> bool:
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    return cls(schema, format_checker=cls.FORMAT_CHECKER).is_valid(value)


# the complements these need (of a complement of additionalProperties, of propertyNames) have
# no finite form here, so without the listed values they are refused
NOT_AP = {"not": {"not": {"additionalProperties": {"type": "boolean"}, "properties": {"foo": {}}}}}
ONEOF_AP = {"oneOf": [{"propertyNames": {"maxLength": 1}}, {"patternProperties": {"^x": {"type": "string"}}}]}

values = st.recursive(st.none() | st.booleans() | st.integers(-3, 3) | st.sampled_from(["a", "x", ""]),
                      lambda c: st.lists(c, max_size=2) | st.dictionaries(st.sampled_from(["foo", "bar", "x1"]), c,
                                                                           max_size=3), max_leaves=6)


def test_the_complement_alone_is_refused():
    with pytest.raises(UnsupportedSchemaFeature):
        compile_json_schema(NOT_AP)
    with pytest.raises(UnsupportedSchemaFeature):
        compile_json_schema(ONEOF_AP)


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(listed=st.lists(values, min_size=1, max_size=4), other=values, how=st.sampled_from(["enum", "allOf", "ref"]),
       hard=st.sampled_from([NOT_AP, ONEOF_AP]))
def test_listed_values_are_decided_by_jsonschema(listed, other, how, hard):
    if how == "enum":
        schema = dict(hard, enum=listed)
    elif how == "allOf":
        schema = {"allOf": [{"enum": listed}, hard]}
    else:
        schema = {"$defs": {"e": {"enum": listed}}, "$ref": "#/$defs/e", **hard}
    try:
        g = compile_json_schema(schema)
    except UnsupportedSchemaFeature as e:
        assert "accepts no JSON value" in str(e)  # every listed value fails the rest
        assert not any(valid(schema, v) for v in listed)
        return
    for v in listed + [other]:
        assert accepts(g, v) == valid(schema, v), (schema, v)


def test_lenient_mode_records_nothing_once_the_values_decide():
    schema = {"allOf": [{"enum": [{"bar": 1, "foo": 1}, {"bar": True}]}, NOT_AP]}  # keeps {"bar": True}
    g, dropped = compile_json_schema(schema, lenient=True)
    assert dropped == []
    assert not accepts(g, {"bar": 1, "foo": 1}) and not valid(schema, {"bar": 1, "foo": 1})
    assert accepts(g, {"bar": True}) and valid(schema, {"bar": True})


def test_dynamic_references_keep_the_refusal():
    schema = {"$dynamicAnchor": "n", "enum": [{"a": 1}], "not": {"not": {"additionalProperties": {"$dynamicRef": "#n"}}}}
    with pytest.raises(UnsupportedSchemaFeature):
        compile_json_schema(schema)


def test_an_invalid_schema_is_still_an_error():
    with pytest.raises(InvalidSchema):
        compile_json_schema({"enum": [1], "not": {"not": {"additionalProperties": 3}}})
