"""uniqueItems over strings with infinitely many values: the grammar allows duplicates and the
matcher's tracker (:class:`constrain.grammar.checks.DistinctCheck`) rejects the byte that
closes one.  Checked against ``jsonschema`` on whole documents, and mask against
``try_accept`` over the whole SmolLM2 vocabulary (the mask's quote-token shortcut)."""

from __future__ import annotations

import json
import pickle

import jsonschema
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from constrain.engine.matcher import Matcher
from constrain.errors import UnsupportedSchemaFeature
from constrain.hypothesis import from_schema
from constrain.jsonschema import compile_json_schema

TAGS = {"type": "object", "properties": {
    "tags": {"type": "array", "items": {"type": "string"}, "uniqueItems": True},
    "plain": {"type": "array", "items": {"type": "string"}},
    "m": {"type": "object", "additionalProperties": {
        "type": "array", "items": {"type": "string", "pattern": "^[a-c]+$"}, "uniqueItems": True}},
}}
SCHEMAS = [
    TAGS,
    {"type": "array", "items": {"type": "string", "minLength": 1}, "uniqueItems": True, "maxItems": 5},
    {"type": "array", "prefixItems": [{"const": "x"}], "items": {"type": "string"}, "uniqueItems": True},
    {"type": "array", "items": {"type": "array", "items": {"type": "string"}, "uniqueItems": True}},
    {"$defs": {"u": {"type": "array", "items": {"type": "string", "pattern": "@"}, "uniqueItems": True}},
     "properties": {"a": {"$ref": "#/$defs/u"}, "b": {"items": {"$ref": "#/$defs/u"}}}},
]

# (the grammar spells a string's characters raw, with the short escapes or \u00XX for control
# characters; "/" and "\/" are two spellings of one value, so are "\n" and "\u000a")
strings = st.sampled_from(["a", "b", "ab", "\u00e9", "a\"b", "\\", "x@y.z", "c", "/", "a/b", "\n"])


def _accepts(m: Matcher, data: bytes) -> bool:
    m.reset()
    return m.accept_bytes(data) and m.is_complete()


def _mask_and_try_accept(m: Matcher, prefix: bytes, vocab):
    """After ``prefix``: the mask (the check's quote-token shortcut included) and the answer of
    ``try_accept`` for every token of the vocabulary, as two ``bool[n_vocab]``."""
    m.reset()
    assert m.accept_bytes(prefix), prefix
    mask = m.next_token_mask()[: vocab.n_vocab]
    return mask, np.array([m.try_accept(t) for t in range(vocab.n_vocab)])


def _docs():
    arr = st.lists(strings, max_size=4)
    return st.one_of(
        st.fixed_dictionaries({}, optional={"tags": arr, "plain": arr,
                                            "m": st.dictionaries(st.sampled_from(["k", "j"]), arr, max_size=2)}),
        arr, st.lists(arr, max_size=3),
        st.fixed_dictionaries({}, optional={"a": arr, "b": st.lists(arr, max_size=2)}),
        st.lists(st.sampled_from(["x", "y", "x"]), max_size=4))


@pytest.mark.parametrize("i", range(len(SCHEMAS)))
@settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))
@given(doc=_docs(), escape=st.booleans())
def test_accepts_exactly_what_jsonschema_validates(smol_vocab, i, doc, escape):
    schema = SCHEMAS[i]
    g = compile_json_schema(schema, property_order="any")
    assert g.value_check is not None
    text = json.dumps(doc, separators=(",", ":"), ensure_ascii=False)
    if escape:
        text = text.replace("/", "\\/").replace("\\n", "\\u000a")
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    valid = cls(schema, format_checker=cls.FORMAT_CHECKER).is_valid(doc)
    assert _accepts(Matcher(g, smol_vocab), text.encode()) == valid, text


def test_equal_values_in_other_spellings_are_duplicates(smol_vocab):
    m = Matcher(compile_json_schema(SCHEMAS[1]), smol_vocab)
    assert not _accepts(m, b'["a/","a\\/"]')
    assert not _accepts(m, b'["\\u000a","\\n"]')
    assert _accepts(m, b'["a","\\/","ab","\\u000a/"]')
    # a prefix of an earlier item, and items of other arrays, are not duplicates
    m2 = Matcher(compile_json_schema(SCHEMAS[3]), smol_vocab)
    assert _accepts(m2, b'[["a","ab"],["a"],["ab","a"]]')
    assert not _accepts(m2, b'[["a"],["b","b"]]')


def test_generated_documents_have_distinct_items():
    schema = SCHEMAS[0]
    seen = []

    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
    @given(from_schema(schema, debug=True))
    def run(v):
        seen.append(v)

    run()
    assert seen


@pytest.mark.parametrize("prefix", [
    b'{"tags":["ab","a","',
    b'{"tags":["ab","a","a',
    b'{"tags":["ab","a"',
    b'{"tags":["x"],"m":{"k":["a","b"],"j":["a","b","',
    b'{"plain":["a","',
    b'{"tags":["ab\\"","a\\',
    b'{"tags":[',
    b'{"tags":["a",',
    b'{"m":{"k":["a"],"j":',
])
def test_mask_equals_try_accept_over_the_vocabulary(smol_vocab, prefix):
    mask, ref = _mask_and_try_accept(Matcher(compile_json_schema(TAGS), smol_vocab), prefix, smol_vocab)
    assert np.array_equal(mask, ref), np.flatnonzero(mask != ref)[:10]
    assert ref.any()  # never a dead end
    if prefix == b'{"tags":["ab","a","a':
        quote = smol_vocab.token_bytes  # the closing quote of a third "a" is gone, "ab" closing too
        assert not any(ref[t] and quote(t).startswith(b'"') for t in range(smol_vocab.n_vocab))


def test_rollback_copy_and_tokens(smol_vocab, smol_hf):
    g = compile_json_schema(SCHEMAS[1])
    m = Matcher(g, smol_vocab)
    ids = smol_hf.encode('["alpha","beta","alpha"]', add_special_tokens=False).ids
    k = m.validate_tokens(ids)
    assert 0 < k < len(ids)  # stops at the token closing the second "alpha"
    assert m.accept_tokens(ids[:k])
    c = m.copy()
    m.rollback(k)
    assert m.accept_tokens(smol_hf.encode('["alpha","gamma"]', add_special_tokens=False).ids)
    assert m.is_complete()
    assert not c.accept_tokens(ids[k:])  # the copy kept its own items
    assert c.accept_tokens(smol_hf.encode('2"]', add_special_tokens=False).ids) and c.is_complete()


def test_mixed_shapes_at_one_path_are_refused():
    s = {"anyOf": [{"type": "array", "items": {"type": "string"}, "uniqueItems": True, "maxItems": 2},
                   {"type": "array", "items": {"type": "string"}, "minItems": 3}]}
    with pytest.raises(UnsupportedSchemaFeature) as e:
        compile_json_schema(s)
    assert "uniqueItems" in str(e.value) and e.value.pointer == "/anyOf/0/uniqueItems"
    g, dropped = compile_json_schema(s, lenient=True)
    assert g.value_check is None and [d[0] for d in dropped] == ["uniqueItems"]
    # both shapes unique: one check for the path
    s2 = {"anyOf": [dict(s["anyOf"][0]), dict(s["anyOf"][1], uniqueItems=True)]}
    assert compile_json_schema(s2).value_check is not None


@pytest.mark.parametrize("items,why", [
    ({"type": "string", "maxLength": 3}, "maxLength"),
    ({"type": "string", "pattern": "^(ab|c)+x$"}, "finitely many completions"),
    ({"type": ["string", "null"]}, "not only strings"),
    ({"type": "object"}, "not only strings"),
    ({"type": "string", "format": "email"}, "finitely many completions"),  # a@[127.0.0.1] ends there
])
def test_items_with_finite_continuations_stay_refused(items, why):
    with pytest.raises(UnsupportedSchemaFeature, match=why):
        compile_json_schema({"type": "array", "items": items, "uniqueItems": True})


def test_grammar_identity_and_pickling():
    g = compile_json_schema(SCHEMAS[1])
    plain = compile_json_schema(dict(SCHEMAS[1], uniqueItems=False))
    assert g.fingerprint != plain.fingerprint  # a store/tables cache never mixes them
    g2 = pickle.loads(pickle.dumps(g))
    assert g2.fingerprint == g.fingerprint and g2.value_check.fingerprint == g.value_check.fingerprint


def test_infilling_checker_refuses_a_grammar_with_a_value_check():
    from constrain.diffusion.checker import InfillChecker

    with pytest.raises(UnsupportedSchemaFeature, match="value check"):
        InfillChecker(compile_json_schema(SCHEMAS[1]))


# ---------------------------------------------------------------- objects in any order
# more declared names than MAX_ANY_ORDER: the grammar repeats members, the check keeps keys
# distinct and required names present
BIG = {f"k{i}": {"type": "integer"} for i in range(12)}
BIG.update({"name": {"type": "string"}, "nat": {"type": "string"}, "na/me": {"type": "boolean"}})
BAGS = [
    {"type": "object", "properties": BIG, "required": ["k3", "name"], "additionalProperties": False},
    {"type": "object", "properties": BIG, "required": ["nat"], "minProperties": 3,
     "patternProperties": {"^x": {"type": "null"}}, "additionalProperties": False},
    {"type": "object", "properties": BIG, "additionalProperties": {"type": "string"}},
    {"type": "array", "items": {"type": "object", "properties": BIG, "required": ["k0"],
                                "additionalProperties": False}},
]
_keys = st.sampled_from(sorted(BIG) + ["x", "xa", "other"])
_vals = st.sampled_from([1, "s", None, True])


def _members(draw_list):
    return "{" + ",".join(json.dumps(k) + ":" + json.dumps(v) for k, v in draw_list) + "}"


@pytest.mark.parametrize("i", range(len(BAGS)))
@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(members=st.lists(st.tuples(_keys, _vals), max_size=6), n=st.integers(1, 3), escape=st.booleans(),
       data=st.data())
def test_big_any_order_objects_accept_exactly_the_valid_ones(smol_vocab, i, members, n, escape, data):
    schema = BAGS[i]
    inner = schema.get("items", schema)
    if data.draw(st.booleans()):  # mostly valid: the required names, with fitting values, somewhere
        need = [(r, {"integer": 1, "string": "s", "boolean": True}[inner["properties"][r]["type"]])
                for r in inner.get("required", [])]
        members = data.draw(st.permutations(need + [m for m in members if m[0] not in dict(need)]))
    g = compile_json_schema(schema, property_order="any")
    assert g.value_check is not None and any(b is not None for b in g.value_check.bags)
    obj = _members(members)
    text = "[" + ",".join([obj] * n) + "]" if schema["type"] == "array" else obj
    if escape:
        text = text.replace("/", "\\/")
    keys = [k for k, _ in members]
    value = json.loads(text)
    cls = jsonschema.Draft202012Validator
    # a repeated key is never written (JSON would keep the last one; constrain keeps keys distinct)
    valid = len(set(keys)) == len(keys) and cls(schema, format_checker=cls.FORMAT_CHECKER).is_valid(value)
    assert _accepts(Matcher(g, smol_vocab), text.encode()) == valid, text


@pytest.mark.parametrize("prefix", [
    b'{"k3":1,"na',          # "name" and "nat" left
    b'{"name":"a","na',      # only "nat" left
    b'{"name":"a","na\\',    # "na/me" through its escaped spelling
    b'{"k3":1,"',
    b'{"k3":1',
    b'{"k3":1,"name":"ab',
    b'{"k3":1,"name":',
    b'{"k0":1,"k1":2,"k2":3,"k3":4,"k4":5,"k5":6,"k6":7,"k7":8,"k8":9,"k9":0,"k10":1,"k11":2,"name":"",'
    b'"nat":"","na/me":true',  # every name used: no "," any more
])
def test_bag_mask_equals_try_accept_over_the_vocabulary(smol_vocab, prefix):
    mask, ref = _mask_and_try_accept(Matcher(compile_json_schema(BAGS[0], property_order="any"), smol_vocab),
                                     prefix, smol_vocab)
    assert np.array_equal(mask, ref), np.flatnonzero(mask != ref)[:10]
    assert ref.any()  # never a dead end


def test_bag_rejections_name_the_reason(smol_vocab):
    m = Matcher(compile_json_schema(BAGS[0], property_order="any"), smol_vocab)
    assert not _accepts(m, b'{"k3":1,"name":"x","k3":2}')  # repeated key
    assert not _accepts(m, b'{"k3":1}')                    # a required name missing
    assert not _accepts(m, b'{}')
    assert _accepts(m, b'{"k11":5,"name":"x","k3":1}')
    m.reset()
    assert m.accept_bytes(b'{"name":"a","nat":"b",')
    assert not m.accept_bytes(b'"na"') and not m.accept_bytes(b'"nam')


def test_big_objects_sharing_a_path_with_other_shapes_keep_schema_order(smol_vocab):
    s = {"anyOf": [BAGS[0], {"type": "object", "properties": {"z": {"type": "integer"}}, "required": ["z"]}]}
    g = compile_json_schema(s, property_order="any")
    assert g.value_check is None  # the tracker could not tell the two objects apart by path
    m = Matcher(g, smol_vocab)
    assert _accepts(m, json.dumps({"k3": 1, "name": "x"}, separators=(",", ":")).encode())
    assert not _accepts(m, json.dumps({"name": "x", "k3": 1}, separators=(",", ":")).encode())  # schema order


# ---------------------------------------------------------------- finite item sets, too many for the grammar
LANGS = [f"L{i}" for i in range(70)] + ["A/B", "A"]  # over unique.MAX_VALUES: checked by the tracker


def test_large_finite_item_sets_are_checked(smol_vocab):
    s = {"type": "array", "items": {"enum": LANGS}, "uniqueItems": True}
    g = compile_json_schema(s)
    assert g.value_check is not None and g.value_check.finite[0] is not None
    m = Matcher(g, smol_vocab)
    assert _accepts(m, b'["L1","L10","A","A/B"]')
    assert not _accepts(m, b'["L1","L10","L1"]')
    assert not _accepts(m, b'["A\\/B","A/B"]')
    # a partial item only unused values extend; a "," only while a value is left
    m.reset()
    assert m.accept_bytes(b'["A","A/B",')
    assert not m.accept_bytes(b'"A"') and m.accept_bytes(b'"L')
    small = {"type": "array", "items": {"type": "string", "enum": ["ab", "a", "b", "c", "d", "e", "f", "g", "h", "i",
                                                                      "j", "k", "l", "m", "n", "o", "p", "q", "r"]},
             "uniqueItems": True}
    g2 = compile_json_schema(small)  # 19 values: too many sets of used values for grammar states
    assert g2.value_check is not None
    m2 = Matcher(g2, smol_vocab)
    every = b'[' + b",".join(b'"%s"' % v.encode() for v in small["items"]["enum"])
    assert m2.accept_bytes(every) and not m2.accept_bytes(b",")  # all 19 used: no "," left
    assert m2.accept_bytes(b"]") and m2.is_complete()
    for prefix in [b'["a","ab",', b'["a","ab","', b'["ab","a","b","c","d","e","f","g","h","i","j","k","l","m","n",'
                   b'"o","p","q","r"', b'["b","']:
        mask, ref = _mask_and_try_accept(m2, prefix, smol_vocab)
        assert np.array_equal(mask, ref), (prefix, np.flatnonzero(mask != ref)[:10])
        assert ref.any()


def test_min_items_beyond_the_values_is_refused():
    with pytest.raises(UnsupportedSchemaFeature, match="minItems"):
        compile_json_schema({"type": "array", "items": {"enum": LANGS}, "uniqueItems": True, "minItems": 100})


def test_shapes_with_the_same_names_share_a_path(smol_vocab):
    # anyOf over required sets: two shapes, one set of names; the grammar tracks each shape's
    # required names, the check keeps keys distinct
    s = {"type": "object", "properties": BIG, "additionalProperties": False,
         "anyOf": [{"required": ["k1", "k2"]}, {"required": ["name"]}]}
    g = compile_json_schema(s, property_order="any")
    assert g.value_check is not None and any(b is not None for b in g.value_check.bags)
    m = Matcher(g, smol_vocab)
    val = jsonschema.Draft202012Validator(s)
    for doc in [{"k2": 1, "k1": 2}, {"k3": 1, "name": "x"}, {"k3": 1}, {"nat": "a", "k2": 1, "k1": 1, "name": "q"}]:
        text = json.dumps(doc, separators=(",", ":")).encode()
        assert _accepts(m, text) == val.is_valid(doc), doc
    assert not _accepts(m, b'{"k1":1,"k2":2,"k1":3}')


# ---------------------------------------------------------------- maxLength counted by the check
# a pattern/format with a maxLength whose product automaton would be too large: the grammar keeps
# the content (and a small minLength), the tracker counts code points up to maxLength
COUNTED = {"type": "object", "properties": {
    "at": {"type": "string", "pattern": "@", "maxLength": 300},
    "words": {"type": "string", "pattern": "^(?:\\S+\\s+){0,49}\\S+$", "maxLength": 280, "minLength": 3},
    "list": {"type": "array", "items": {"type": "string", "pattern": "^[a-z]+(-[a-z]+)*$", "maxLength": 260}},
}}


@settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))
@given(n=st.integers(0, 320), ch=st.sampled_from(["a", "\u00e9", "\n", "a ", "b-"]), key=st.sampled_from(
    ["at", "words", "list"]), at=st.booleans())
def test_counted_max_length_is_exact(smol_vocab, n, ch, key, at):
    g = compile_json_schema(COUNTED)
    assert g.value_check is not None and any(x is not None for x in g.value_check.strings)
    text = (ch * n)[:n]
    if at:
        text = text[: max(0, n - 1)] + "@"
    doc = {key: [text] if key == "list" else text}
    val = jsonschema.Draft202012Validator(COUNTED)
    data = json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()
    assert _accepts(Matcher(g, smol_vocab), data) == val.is_valid(doc), (key, n, ch)


@pytest.mark.parametrize("prefix", [b'{"at":"' + b"a" * 296, b'{"at":"' + b"a" * 299, b'{"words":"' + b"x" * 278,
                                    b'{"words":"x\\', b'{"list":["ab-' + b"c" * 250, b'{"at":"a@'])
def test_counted_mask_equals_try_accept(smol_vocab, prefix):
    mask, ref = _mask_and_try_accept(Matcher(compile_json_schema(COUNTED), smol_vocab), prefix, smol_vocab)
    assert np.array_equal(mask, ref), np.flatnonzero(mask != ref)[:10]
    assert ref.any()
