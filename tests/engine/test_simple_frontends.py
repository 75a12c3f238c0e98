"""Regex and choice grammars through the parser, checked against Python's re."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, strategies as st

from constrain.engine.earley import ByteParser, CompiledParserTables, accepts
from constrain.errors import GrammarError
from constrain.grammar import from_choices, from_regex

PATTERNS = [r"[a-z]+@[a-z]+\.(com|org)", r"-?(0|[1-9][0-9]*)(\.[0-9]+)?", r"(ab|c)*", r"x?", r"[αβγ]{1,3}🦙?"]


@pytest.mark.parametrize("pattern", PATTERNS)
@given(data=st.data())
def test_regex_grammar_matches_re(pattern, data):
    t = CompiledParserTables(from_regex(pattern))
    s = data.draw(st.one_of(st.from_regex(pattern, fullmatch=True), st.text(alphabet="abc@.-0123456789αβγ🦙x", max_size=10)))
    b = s.encode()
    assert accepts(t, b) == (re.fullmatch(pattern, s) is not None)
    if re.fullmatch(pattern, s):
        p = ByteParser(t)
        for i in range(len(b)):  # every prefix of a match is viable
            assert p.feed(b[i:i + 1]) and p.is_viable()


def test_choices():
    g = from_choices(["yes", "no", "not sure", ""])
    for w, ok in [(b"yes", True), (b"no", True), (b"not sure", True), (b"", True), (b"not", False), (b"ye", False)]:
        assert accepts(g, w) == ok, w
    p = ByteParser(CompiledParserTables(g))
    assert p.feed(b"no") and p.is_complete() and p.is_viable() and p.feed(b"t ") and not p.is_complete()
    with pytest.raises(GrammarError, match="empty"):
        from_choices([])
