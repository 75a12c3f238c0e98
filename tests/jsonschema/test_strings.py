"""The JSON spelling of string content DFAs (:mod:`constrain.jsonschema.strings`), against
``json.dumps`` / ``json.loads`` as the oracle."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from constrain.grammar.regex import compile_regex, literal_dfa
from constrain.jsonschema.strings import json_literal_dfa, json_string_dfa

_ALPHABET = st.sampled_from(['a', 'b', '"', '\\', '/', '\n', '\t', '\x01', '\x1f', 'é', '€', ' '])
_TEXT = st.lists(_ALPHABET, max_size=6).map("".join)
_CONTENT = ["", "a*", "[ab/]{1,3}", '(?s).{0,2}', "[^a]*", "\\n|\\x01|é€", '"|\\\\']


@settings(max_examples=200, deadline=None)
@given(_TEXT)
def test_literal_spelling_is_the_general_construction(text):
    """``json_literal_dfa`` answers exactly when the literal has one spelling, and then with
    the automaton the general construction builds."""
    d = json_literal_dfa(text)
    one_spelling = not any(c in text for c in '"\\/') and all(ord(c) >= 0x20 for c in text)
    assert (d is not None) == one_spelling
    general = json_string_dfa(literal_dfa(text))
    if d is not None:
        assert d == general
    assert general.matches(json.dumps(text, ensure_ascii=False).encode())


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(_CONTENT), _TEXT, st.booleans())
def test_spellings_decode_to_accepted_values(pattern, text, escape_slash):
    """The canonical spelling (and the one with ``\\/``) is accepted iff the content DFA
    accepts the decoded value; a ``\\u`` escape of a non-control is never accepted."""
    content = compile_regex(pattern)
    d = json_string_dfa(content)
    spelled = json.dumps(text, ensure_ascii=False)
    if escape_slash:
        spelled = spelled.replace("/", "\\/")
    assert json.loads(spelled) == text
    assert d.matches(spelled.encode()) == content.matches(text.encode())
    if "a" in text:
        assert not d.matches(spelled.replace("a", "\\u0061").encode())
