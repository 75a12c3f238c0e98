"""A fast structural pre-check of a schema against its dialect's meta-schema.

Every compile checks the schema against the dialect's meta-schema (``{"required": "a"}`` is
refused by name and pointer).  With ``jsonschema`` that walk resolves a ``$dynamicRef`` into
seven vocabulary meta-schemas at every sub-schema: 5-10 ms for a 40-property schema, a fifth
of its whole compile.  The meta-schemas of drafts 6, 7, 2019-09 and 2020-12 only ask simple
things of the keywords nearly every schema uses (a type, a non-negative integer, a unique
string array, sub-schemas), so :func:`meta_valid` checks those directly and answers:

* ``True``: the meta-schema accepts the schema (exactly: every constraint the meta-schema
  puts on a keyword present is checked, and keywords the dialect's meta-schema does not name
  are unconstrained by it);
* ``None``: the schema uses a keyword this check does not model (``$anchor``,
  ``dependencies``, ``$vocabulary``, ...), a draft-4 schema, a non-finite number, or it is
  nested very deeply; or it found a violation.  The caller then runs ``jsonschema``, which
  decides and words the error.

So a ``True`` must never disagree with ``jsonschema``; ``tests/jsonschema/test_meta_fast.py``
checks that on random schemas and on the JSON-Schema-Test-Suite.
"""

from __future__ import annotations

from decimal import Decimal

_TYPES = frozenset({"array", "boolean", "integer", "null", "number", "object", "string"})

#: keywords each dialect's meta-schema constrains (the union of its vocabularies' "properties")
_COMMON = frozenset({
    "$id", "$schema", "$ref", "title", "description", "default", "examples", "multipleOf", "maximum",
    "exclusiveMaximum", "minimum", "exclusiveMinimum", "maxLength", "minLength", "pattern", "additionalItems",
    "items", "maxItems", "minItems", "uniqueItems", "contains", "maxProperties", "minProperties", "required",
    "additionalProperties", "definitions", "properties", "patternProperties", "dependencies", "propertyNames",
    "const", "enum", "type", "format", "allOf", "anyOf", "oneOf", "not"})
_D7 = _COMMON | {"$comment", "readOnly", "contentMediaType", "contentEncoding", "if", "then", "else"}
_D2019 = (_D7 | {"$anchor", "$recursiveRef", "$recursiveAnchor", "$vocabulary", "$defs", "unevaluatedItems",
                 "unevaluatedProperties", "dependentSchemas", "contentSchema", "maxContains", "minContains",
                 "dependentRequired", "deprecated", "writeOnly"})
_D2020 = (_D2019 - {"additionalItems"}) | {"prefixItems", "$dynamicRef", "$dynamicAnchor"}
KNOWN = {6: _COMMON, 7: _D7, 2019: _D2019, 2020: _D2020}

_SUB = frozenset({"additionalItems", "contains", "additionalProperties", "propertyNames", "not", "if", "then",
                  "else", "unevaluatedItems", "unevaluatedProperties", "contentSchema"})
_MAP = frozenset({"properties", "patternProperties", "definitions", "$defs", "dependentSchemas"})
_ARR = frozenset({"allOf", "anyOf", "oneOf", "prefixItems"})
_NONNEG = frozenset({"maxLength", "minLength", "maxItems", "minItems", "maxProperties", "minProperties",
                     "maxContains", "minContains"})
_NUM = frozenset({"maximum", "exclusiveMaximum", "minimum", "exclusiveMinimum"})
_STR = frozenset({"$schema", "$ref", "$comment", "title", "description", "pattern", "format", "contentMediaType",
                  "contentEncoding", "$recursiveRef", "$dynamicRef"})
_BOOL = frozenset({"uniqueItems", "readOnly", "writeOnly", "deprecated"})
_ANY = frozenset({"default", "const"})
_LIST = frozenset({"examples", "enum"})

_MAX_DEPTH = 200


class _Unknown(Exception):
    """Not modelled here: leave the decision to ``jsonschema``."""


def meta_valid(schema, draft: int) -> bool | None:
    """``True`` when ``draft``'s meta-schema accepts ``schema``, ``None`` when undecided here
    (see the module docstring)."""
    known = KNOWN.get(draft)
    if known is None:
        return None
    try:
        return True if _schema(schema, known, draft, 0) else None
    except _Unknown:
        return None


def _schema(s, known, draft: int, depth: int) -> bool:
    if isinstance(s, bool):
        return True
    if not isinstance(s, dict):
        return False
    if depth > _MAX_DEPTH:
        raise _Unknown
    for k, v in s.items():
        if k not in known:
            if not isinstance(k, str):
                raise _Unknown
            continue
        if k in _SUB:
            if not _schema(v, known, draft, depth + 1):
                return False
        elif k in _MAP:
            if not isinstance(v, dict):
                return False
            for x in v.values():
                if not _schema(x, known, draft, depth + 1):
                    return False
        elif k in _ARR:
            if not _schema_array(v, known, draft, depth):
                return False
        elif k == "items":
            if draft == 2020 or not isinstance(v, list):
                if not _schema(v, known, draft, depth + 1):
                    return False
            elif not _schema_array(v, known, draft, depth):
                return False
        elif k in _NONNEG:
            if not _nonneg_int(v):
                return False
        elif k in _NUM:
            if not _number(v):
                return False
        elif k == "multipleOf":
            if not _number(v) or not v > 0:
                return False
        elif k in _STR:
            if not isinstance(v, str):
                return False
        elif k in _BOOL:
            if not isinstance(v, bool):
                return False
        elif k in _LIST:
            if not isinstance(v, list):
                return False
        elif k in _ANY:
            continue
        elif k == "type":
            if isinstance(v, str):
                if v not in _TYPES:
                    return False
            elif not (isinstance(v, list) and v and all(isinstance(t, str) and t in _TYPES for t in v)
                      and len(set(v)) == len(v)):
                return False
        elif k == "required":
            if not _string_array(v):
                return False
        elif k == "dependentRequired":
            if not isinstance(v, dict) or not all(_string_array(x) for x in v.values()):
                return False
        elif k == "$id":
            if not isinstance(v, str):
                return False
            if draft >= 2019 and "#" in v[:-1]:  # pattern ^[^#]*#?$
                return False
        else:  # $anchor, dependencies, $vocabulary, $recursiveAnchor, $dynamicAnchor
            raise _Unknown
    return True


def _schema_array(v, known, draft: int, depth: int) -> bool:
    return isinstance(v, list) and len(v) > 0 and all(_schema(x, known, draft, depth + 1) for x in v)


def _string_array(v) -> bool:
    return isinstance(v, list) and all(isinstance(x, str) for x in v) and len(set(v)) == len(v)


def _number(v) -> bool:
    if isinstance(v, bool):
        return False
    if isinstance(v, Decimal):
        if not v.is_finite():
            raise _Unknown
        return True
    if isinstance(v, float) and v != v:  # NaN: comparisons decide nothing
        raise _Unknown
    return isinstance(v, (int, float))


def _nonneg_int(v) -> bool:
    """A JSON Schema integer (draft 6 on: ``2.0`` is one) that is at least 0."""
    if not _number(v):
        return False
    if isinstance(v, int):
        return v >= 0
    if isinstance(v, Decimal):
        return v >= 0 and v == v.to_integral_value()
    return v >= 0 and float(v).is_integer()
