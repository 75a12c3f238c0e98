"""Hostile Lark grammars, regexes and choice lists: a specific ConstrainError naming the
problem and the grammar line, bounded time, no internal exception type."""

from __future__ import annotations

import pytest

from constrain.errors import ConfigError, GrammarError, LimitExceeded, RegexError
from constrain.grammar import from_choices, from_lark, from_regex
from constrain.limits import Limits
from rel_helpers import bounded, raises_clean


def L(text, **kw):
    return lambda: from_lark(text, **kw)


def test_syntax_error_names_line_and_column():
    e = raises_clean(L('start: "a" |\nfoo: ::= x\n'), GrammarError, "line 2, column 6")
    assert e.line == 2 and e.column == 6 and "^" in e.context


def test_unbalanced_parenthesis():
    raises_clean(L('start: ("a" "b"\n'), GrammarError, "line")


def test_undefined_rule():
    e = raises_clean(L('start: a b\na: "x"\n'), GrammarError, "'b'", "not defined", "line 1")
    assert e.line == 1


def test_undefined_rule_later_line():
    e = raises_clean(L('start: a\n\na: "x" c\n'), GrammarError, "'c'", "line 3")
    assert e.line == 3


def test_undefined_terminal():
    raises_clean(L("start: A\n"), GrammarError, "'A'", "not defined")


def test_unknown_start_rule():
    raises_clean(L('a: "x"\n'), GrammarError, "start")


def test_empty_language():
    e = raises_clean(L('start: a\na: a "x"\n'), GrammarError, "'start'", "empty", "line 1")
    assert "Token(" not in str(e)


def test_empty_choice_list():
    raises_clean(lambda: from_choices([]), GrammarError, "empty")


def test_regex_matching_nothing():
    raises_clean(lambda: from_regex("[^\\x00-\\U0010ffff]"), GrammarError, "matches nothing")


@pytest.mark.parametrize("text, good, bad", [
    ('start: a\na: a | "x"\n', [b"x"], [b"xx", b""]),            # a -> a: infinitely many derivations of "x"
    ('start: a+\na: b*\nb: "x"\n', [b"", b"x", b"xxx"], [b"y"]),  # a -> ε, a+ -> ε ε ε ...
    ('start: (a | a)*\na: "x" | "x"\n', [b"", b"xx"], [b"y"]),
])
def test_infinite_ambiguity_parses_in_bounded_time(text, good, bad):
    from constrain.engine.earley import ByteParser, CompiledParserTables
    from constrain.engine.matcher import Matcher
    from constrain.tokenizers import Vocabulary

    g, exc, _ = bounded(L(text), 20)
    assert exc is None, exc
    t = CompiledParserTables(g)
    for w in good:
        p = ByteParser(t)
        assert p.feed(w) and p.is_complete(), w
    for w in bad:
        p = ByteParser(t)
        assert not (p.feed(w) and p.is_complete()), w
    m = Matcher(g, Vocabulary.byte_level())
    _, exc, _ = bounded(lambda: [m.next_token_mask() for _ in range(3) if m.accept_token(ord("x")) or True], 20)
    assert exc is None


@pytest.mark.parametrize("text, name, line", [
    ("start: A \"x\"\nA: /a*/\n", "A", 2),
    ("start: B\nB: /(ab)?/\n", "B", 2),
    ("start: \"x\" /b*/\n", "b*", 1),
])
def test_terminal_matching_the_empty_string(text, name, line):
    e = raises_clean(L(text), GrammarError, name, "empty string")
    assert e.line == line


def test_empty_string_literal():
    raises_clean(L('start: "" "x"\n'), GrammarError, "Empty terminals")


def test_huge_literal():
    e = raises_clean(L('start: "a" B\nB: "' + "b" * 200_000 + '"\n'), LimitExceeded, "max_literal_bytes",
                     "line 2")
    assert e.limit == "max_literal_bytes" and e.line == 2


def test_huge_grammar_text():
    e = raises_clean(L('start: "' + "a" * 2_000_000 + '"\n'), LimitExceeded, "max_grammar_bytes")
    assert e.limit == "max_grammar_bytes"


def test_huge_counted_repetition_in_terminal():
    e = raises_clean(L("start: X\nX: /[a-z]{1,100000}/\n"), LimitExceeded, "max_repeat", "line 2")
    assert e.line == 2


def test_huge_lark_repetition():
    # lark expands ~n by powers of two: a small grammar, compiled at once
    g, exc, _ = bounded(L('start: "a"~100000\n', limits=Limits(compile_time_s=5)), 20)
    assert exc is None or isinstance(exc, LimitExceeded), exc


def test_deep_nesting():
    e = raises_clean(L("start: " + "(" * 5000 + '"a"' + ")" * 5000 + "\n"), LimitExceeded, "max_grammar_depth")
    assert e.line == 1


def test_deep_nesting_below_cap_compiles():
    g, exc, _ = bounded(L("start: " + "(" * 60 + '"a"' + ")" * 60 + "\n"), 30)
    assert exc is None, exc


def test_not_text():
    raises_clean(L(5), ConfigError, "int")


def test_missing_file():
    raises_clean(L("/no/such/dir/grammar.lark"), GrammarError, "cannot read")


def test_bad_regex_terminal():
    e = raises_clean(L("start: X\nX: /a(b/\n"), GrammarError, "X", "line 2")
    assert e.line == 2


def test_lookaround_terminal_is_refused():
    raises_clean(L("start: X\nX: /a(?=b)/\n"), GrammarError, "X")


def test_regex_front_end_errors():
    raises_clean(lambda: from_regex("a(b"), RegexError, "a(b", "column 2")
    raises_clean(lambda: from_regex("a{1000000}"), LimitExceeded, "max_repeat")


def test_huge_choice_list():
    raises_clean(lambda: from_choices([f"c{i}" for i in range(100_000)]), LimitExceeded, "max_enum_bytes")


def test_catastrophic_regex_is_linear():
    g, exc, _ = bounded(lambda: from_regex("(a|aa)*(b|bb)*(.*x){10}"), 30)
    assert exc is None or isinstance(exc, LimitExceeded)


@pytest.mark.parametrize("bad", [[1, 2], "abc", None, [b"a", 3.5]])
def test_choices_that_are_not_strings(bad):
    raises_clean(lambda: from_choices(bad), ConfigError, "str")


@pytest.mark.parametrize("bad", [5, None, b"a+"])
def test_regex_that_is_not_a_string(bad):
    raises_clean(lambda: from_regex(bad), ConfigError, "str")
