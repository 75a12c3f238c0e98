"""``parse_partial``: every prefix of a JSON document parses, and what it returns only grows
towards the final value."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, strategies as st

from constrain.decoding.partial_json import MISSING, parse_partial

JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=5), kids, max_size=4),
    max_leaves=12)


def _consistent(partial, final) -> bool:
    """``partial`` could grow into ``final``: same container kinds, keys and items a prefix."""
    if partial is MISSING:
        return True
    if isinstance(final, dict):
        return isinstance(partial, dict) and all(k in final and _consistent(v, final[k]) for k, v in partial.items())
    if isinstance(final, list):
        return (isinstance(partial, list) and len(partial) <= len(final)
                and all(_consistent(p, f) for p, f in zip(partial, final)))
    if isinstance(final, str):
        return isinstance(partial, str) and final.startswith(partial)
    if isinstance(final, bool) or final is None:
        return partial == final
    return isinstance(partial, (int, float))  # a number's digits so far


@given(JSON, st.sampled_from([None, 2]), st.booleans())
def test_every_prefix_parses_and_grows_into_the_value(value, indent, ascii_only):
    text = json.dumps(value, indent=indent, ensure_ascii=ascii_only)
    final = json.loads(text)
    for i in range(len(text) + 1):
        p = parse_partial(text[:i])
        assert _consistent(p, final), (text[:i], p)
    assert parse_partial(text) == final


def test_examples():
    assert parse_partial("") is MISSING
    assert parse_partial('{"name": "Ma') == {"name": "Ma"}
    assert parse_partial('{"name": "Maria", "ag') == {"name": "Maria"}
    assert parse_partial('{"name": "Maria", "age": ') == {"name": "Maria"}
    assert parse_partial('{"name": "Maria", "age": 3') == {"name": "Maria", "age": 3}
    assert parse_partial('{"a": [1, 2, {"b": tr') == {"a": [1, 2, {}]}
    assert parse_partial('{"a": "x\\') == {"a": "x"}  # an escape cut in half waits
    assert parse_partial('{"a": "x\\u00e') == {"a": "x"}
    assert parse_partial('{"a": "x\\u00e9') == {"a": "xé"}
    assert parse_partial('[-') == []
    assert parse_partial('[1e') == [1]
    assert parse_partial("nul") is MISSING


@pytest.mark.parametrize("bad", ['{"a" 1}', "[1 2]", "{1: 2}", '"\\q"', "[1]]", "tru e", "01x"])
def test_not_a_prefix_raises(bad):
    with pytest.raises(ValueError):
        parse_partial(bad)
