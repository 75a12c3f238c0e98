"""Lark grammar features users write, each checked against Lark itself on every short string.

Templates, ``?rule`` inlining, ``[]`` / ``?`` / ``*`` / ``+`` / ``~n`` / ``~n..m`` repetition,
case-insensitive literals and regex flags, ``%import common.*``, ``%ignore``, terminals built
from other terminals, and priorities where they change what a maximal-munch lexer picks.  The
reference is Lark's Earley parser with the complete dynamic lexer (the language of the grammar,
every cut) or, for the priority grammars, LALR with the basic/contextual lexer that the header
line names.
"""

from __future__ import annotations

import itertools

import pytest
from lark import Lark
from lark.exceptions import LarkError

from constrain.engine.earley import CompiledParserTables, accepts
from constrain.grammar import from_lark

FEATURES = {
    "template": ('start: sep{item, ","}\nsep{x, s}: x (s x)*\nitem: "a" | "b"', "ab,"),
    "inline_rule": ('start: x x\n?x: "a" | y\ny: "b" "b"?', "ab"),
    "maybe_brackets": ('start: "a" ["b"] "c"?', "abc"),
    "repeat_exact": ('start: "a"~3', "ab"),
    "repeat_range": ('start: ("a" | "b")~2..3 "c"', "abc"),
    "term_repeat": ("start: A\nA: /[ab]/~1..2 \"c\"", "abc"),
    "case_insensitive": ('start: "ab"i B\nB: /c+/i', "abcAC"),
    "import_common": ('%import common.INT\n%import common.WS\nstart: INT ("+" INT)*\n%ignore WS', "12+ "),
    "terminal_of_terminals": ('start: NUM\nNUM: DIGIT+ ("." DIGIT+)?\nDIGIT: "0".."2"', "01."),
    "ignore_between": ('start: "a" "b"\n%ignore /x+/', "abx"),
    "alias_and_nested": ('start: (x | y)+ -> top\nx: "a" -> ax\ny: "(" start? ")"', "a()"),
}


def _strings(alphabet: str, max_len: int):
    for n in range(max_len + 1):
        for tup in itertools.product(alphabet, repeat=n):
            yield "".join(tup)


@pytest.mark.parametrize("key", sorted(FEATURES))
def test_feature_language_equals_lark(key):
    src, alphabet = FEATURES[key]
    tables = CompiledParserTables(from_lark(src, lexing="all"))
    lark = Lark(src, parser="earley", lexer="dynamic_complete")
    max_len = 6 if len(alphabet) <= 3 else 5
    n_accepted = 0
    for w in _strings(alphabet, max_len):
        try:
            lark.parse(w)
            theirs = True
        except LarkError:
            theirs = False
        ours = accepts(tables, w.encode())
        assert ours == theirs, (key, w, ours, theirs)
        n_accepted += theirs
    assert n_accepted > 0  # the comparison saw words of the language, not only rejections


PRIORITY = {
    # a keyword outranks an identifier of the same length (Lark's basic lexer: literal > regex):
    # "if" is never a NAME, so a lone "if" is rejected
    "keyword_vs_name": ("// start: start  parser: lalr  lexer: basic\nstart: NAME (\" \" NAME)* | IF NAME\n"
                        "IF: \"if\"\nNAME: /[a-z]+/", "if "),
    # an explicit terminal priority decides a same-length tie between two regexes: "b" is always
    # an A, so "ab" (A then B) is rejected although B matches "b"
    "explicit_priority": ("// start: start  parser: lalr  lexer: basic\nstart: A B\nA.2: /[ab]/\nB: /[bc]/", "abc"),
}


@pytest.mark.parametrize("key", sorted(PRIORITY))
def test_priorities_follow_larks_lexer(key):
    src, alphabet = PRIORITY[key]
    tables = CompiledParserTables(from_lark(src))
    lark = Lark(src, parser="lalr", lexer="basic")
    dynamic = Lark(src, parser="earley", lexer="dynamic_complete")
    n_accepted = n_differs = 0
    for w in _strings(alphabet, 4):
        try:
            lark.parse(w)
            theirs = True
        except LarkError:
            theirs = False
        assert accepts(tables, w.encode()) == theirs, (key, w)
        n_accepted += theirs
        try:
            dynamic.parse(w)
            n_differs += not theirs
        except LarkError:
            pass
    # the priority changes the language (an all-cuts lexer accepts more), and words remain
    assert n_accepted > 0 and n_differs > 0
