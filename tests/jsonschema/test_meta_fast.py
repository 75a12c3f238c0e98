"""The fast meta-schema pre-check (:mod:`constrain.jsonschema.meta`) against ``jsonschema``
itself: a ``True`` is never wrong, and schemas made of the keywords it models are decided
without ``jsonschema`` whenever they are valid."""

from __future__ import annotations

import glob
import json
import os
from decimal import Decimal

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from constrain.jsonschema.meta import KNOWN, meta_valid

_CLS = {6: jsonschema.Draft6Validator, 7: jsonschema.Draft7Validator, 2019: jsonschema.Draft201909Validator,
        2020: jsonschema.Draft202012Validator}
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DATA = os.path.abspath(os.path.join(ROOT, "..", "shared", "data"))


def _jsonschema_valid(schema, draft) -> bool:
    from constrain.jsonschema.resolve import _plain_numbers

    cls = _CLS[draft]
    return not list(cls(cls.META_SCHEMA).iter_errors(_plain_numbers(schema)))


@pytest.mark.parametrize("draft", sorted(_CLS))
def test_known_keywords_are_the_meta_schemas_properties(draft):
    """``KNOWN`` is exactly the set of keywords the dialect's meta-schema (with its
    vocabularies) constrains, read from the meta-schema documents jsonschema ships."""
    from jsonschema_specifications import REGISTRY

    meta = _CLS[draft].META_SCHEMA
    docs = [meta] + [REGISTRY.contents(meta["$id"].rsplit("/", 1)[0] + "/" + r["$ref"])
                     for r in meta.get("allOf", []) if "$ref" in r]
    names = set()
    for d in docs:
        names |= set(d.get("properties", {}))
    assert KNOWN[draft] == names


_TYPES = ["array", "boolean", "integer", "null", "number", "object", "string"]
_NUMS = st.one_of(st.integers(-3, 5), st.sampled_from([Decimal("2.0"), Decimal("1.5"), Decimal("-0.5"), 0.0, 2.5,
                                                      Decimal("1e400"), Decimal("1e-400")]))
_ANYV = st.one_of(st.none(), st.booleans(), _NUMS, st.text(max_size=3), st.lists(st.text(max_size=2), max_size=3))


def _schemas():
    """Schema-like objects: each keyword's value is well-formed or not (a wrong type, a
    negative length, a repeated type, an empty combinator list)."""
    def build(sub):
        kw = {
            "type": st.one_of(st.sampled_from(_TYPES), st.lists(st.sampled_from(_TYPES), max_size=3), _ANYV),
            "properties": st.one_of(st.dictionaries(st.text(max_size=2), sub, max_size=3), _ANYV),
            "patternProperties": st.dictionaries(st.sampled_from(["^a", "b"]), sub, max_size=2),
            "$defs": st.dictionaries(st.text(max_size=2), sub, max_size=2),
            "definitions": st.dictionaries(st.text(max_size=2), sub, max_size=2),
            "items": st.one_of(sub, st.lists(sub, max_size=2)),
            "prefixItems": st.lists(sub, max_size=2),
            "additionalProperties": st.one_of(sub, _ANYV),
            "additionalItems": sub,
            "not": sub, "if": sub, "then": sub, "else": sub, "contains": sub, "propertyNames": sub,
            "anyOf": st.lists(sub, max_size=2), "oneOf": st.lists(sub, max_size=2), "allOf": st.lists(sub, max_size=2),
            "required": st.one_of(st.lists(st.sampled_from(["a", "b", "c"]), max_size=3), _ANYV),
            "dependentRequired": st.dictionaries(st.text(max_size=1), st.lists(st.sampled_from(["a", "b"]), max_size=2),
                                                 max_size=2),
            "minLength": _NUMS, "maxLength": _NUMS, "minItems": _NUMS, "maxItems": _NUMS, "minProperties": _NUMS,
            "maxContains": _NUMS, "minimum": st.one_of(_NUMS, _ANYV), "exclusiveMaximum": _NUMS,
            "multipleOf": _NUMS,
            "enum": st.one_of(st.lists(_ANYV, max_size=3), _ANYV), "const": _ANYV, "default": _ANYV,
            "examples": _ANYV,
            "pattern": st.one_of(st.text(max_size=3), _ANYV), "format": _ANYV, "title": _ANYV, "$comment": _ANYV,
            "description": st.text(max_size=3), "$ref": _ANYV, "$schema": st.just("x"),
            "$id": st.sampled_from(["a", "a#", "#b", "a#b", "", "#"]),
            "uniqueItems": _ANYV, "readOnly": st.booleans(), "deprecated": _ANYV, "writeOnly": _ANYV,
            "x-custom": _ANYV,
        }
        return st.one_of(st.booleans(), st.fixed_dictionaries({}, optional=kw))
    return st.recursive(st.fixed_dictionaries({}), build, max_leaves=12)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(_schemas(), st.sampled_from(sorted(_CLS)))
def test_agrees_with_jsonschema(schema, draft):
    fast = meta_valid(schema, draft)
    truth = _jsonschema_valid(schema, draft)
    assert fast in (True, None)
    if fast:
        assert truth, "the fast check accepted a schema the meta-schema refuses"
    else:  # every keyword here is modelled: undecided only when it is invalid
        assert not truth, "the fast check left a valid schema to jsonschema"


def _corpus():
    files = glob.glob(os.path.join(DATA, "json-schema-test-suite", "tests", "*", "*.json"))
    files += glob.glob(os.path.join(DATA, "jsonschemabench-dev", "*", "*.json"))
    return sorted(files)


@pytest.mark.skipif(not os.path.isdir(DATA), reason="shared data not present")
def test_corpora_never_disagree():
    """Every schema of the JSON-Schema-Test-Suite (its dialect) and of the JSONSchemaBench
    sample (2020-12): a fast ``True`` is a schema jsonschema accepts."""
    n_fast = n = 0
    for path in _corpus():
        with open(path, encoding="utf-8") as f:
            doc = json.load(f, parse_float=Decimal)
        draft = 7 if "/draft7/" in path else 2020
        schemas = [g["schema"] for g in doc] if isinstance(doc, list) else [doc.get("schema", doc)]
        for s in schemas:
            n += 1
            if meta_valid(s, draft):
                n_fast += 1
                assert _jsonschema_valid(s, draft), path
    assert n > 500 and n_fast > n // 2
