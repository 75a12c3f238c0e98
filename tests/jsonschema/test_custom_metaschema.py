"""A ``$schema`` naming a custom meta-schema the caller's registry holds: its dialect is the
meta-schema's own ``$schema``; unknown required vocabularies are refused."""

from __future__ import annotations

import pytest
import referencing
import referencing.jsonschema

from constrain.engine.earley import accepts
from constrain.errors import UnsupportedSchemaFeature
from constrain.jsonschema import compile_json_schema

D2020 = "https://json-schema.org/draft/2020-12/schema"


def registry(*metas):
    return referencing.Registry().with_resources(
        [(m["$id"], referencing.Resource.from_contents(m, default_specification=referencing.jsonschema.DRAFT202012))
         for m in metas])


NO_VALIDATION = {"$schema": D2020, "$id": "http://x/no-validation",
                 "$vocabulary": {"https://json-schema.org/draft/2020-12/vocab/applicator": True,
                                 "https://json-schema.org/draft/2020-12/vocab/core": True}}
OPTIONAL_CUSTOM = {"$schema": D2020, "$id": "http://x/optional",
                   "$vocabulary": {"https://json-schema.org/draft/2020-12/vocab/validation": True,
                                   "http://x/vocab/custom": False}}
REQUIRED_CUSTOM = {"$schema": D2020, "$id": "http://x/required",
                   "$vocabulary": {"http://x/vocab/custom": True}}
CHAINED = {"$schema": "http://x/optional", "$id": "http://x/chained"}
DRAFT7_META = {"$schema": "http://json-schema.org/draft-07/schema#", "$id": "http://x/d7"}


def test_custom_meta_schema_takes_its_dialect():
    reg = registry(NO_VALIDATION, OPTIONAL_CUSTOM, CHAINED)
    g = compile_json_schema({"$schema": "http://x/optional", "type": "number"}, registry=reg)
    assert accepts(g, b"20") and not accepts(g, b'"foobar"')
    g = compile_json_schema({"$schema": "http://x/chained", "type": "number"}, registry=reg)
    assert accepts(g, b"20")
    # validation switched off: enforcing minimum anyway only narrows (sound); applicators still apply
    g = compile_json_schema({"$schema": "http://x/no-validation",
                             "properties": {"bad": False, "n": {"minimum": 10}}}, registry=reg)
    assert accepts(g, b'{"n":20}') and not accepts(g, b'{"bad":1}')


def test_custom_meta_schema_of_draft7_uses_draft7_rules():
    reg = registry(DRAFT7_META)
    # draft 7: siblings of $ref are ignored, items as an array is tuple validation
    g = compile_json_schema({"$schema": "http://x/d7", "items": [{"type": "integer"}], "additionalItems": False},
                            registry=reg)
    assert accepts(g, b"[1]") and not accepts(g, b"[1,2]")


def test_unknown_required_vocabulary_is_refused():
    with pytest.raises(UnsupportedSchemaFeature) as e:
        compile_json_schema({"$schema": "http://x/required"}, registry=registry(REQUIRED_CUSTOM))
    assert "http://x/vocab/custom" in str(e.value) and e.value.pointer == "/$schema"


def test_unknown_meta_schema_without_registry_is_refused():
    with pytest.raises(UnsupportedSchemaFeature, match=r"unknown \$schema dialect") as e:
        compile_json_schema({"$schema": "http://x/optional"})
    assert e.value.pointer == "/$schema"
    self_ref = {"$schema": "http://x/self", "$id": "http://x/self"}
    with pytest.raises(UnsupportedSchemaFeature, match=r"unknown \$schema dialect"):
        compile_json_schema({"$schema": "http://x/self"}, registry=registry(self_ref))
