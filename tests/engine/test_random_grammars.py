"""Random small grammars: the parser's language equals Lark's (Earley, dynamic_complete), and
viability equals "some short extension is complete" (bounded search)."""

from __future__ import annotations

import itertools

from hypothesis import HealthCheck, assume, given, settings, strategies as st
from lark import Lark
from lark.exceptions import LarkError

from constrain.engine.earley import ByteParser, CompiledParserTables, accepts
from constrain.errors import GrammarError
from constrain.grammar import from_lark

TERMINALS = ['"a"', '"b"', '"ab"', '"ba"', "/a+/", "/b?c/", '"c"', "/[ab]c/"]
NTS = ["start", "x", "y"]
ALPHABET = b"abc"


@st.composite
def grammars(draw):
    lines = []
    for i, nt in enumerate(NTS):
        alts = []
        for _ in range(draw(st.integers(1, 3))):
            n = draw(st.integers(0, 3))
            syms = []
            for _ in range(n):
                if draw(st.booleans()):
                    syms.append(draw(st.sampled_from(TERMINALS)))
                else:
                    syms.append(draw(st.sampled_from(NTS)))
            # no unit cycles (A: B, B: A), which make Lark's Earley ambiguity resolution loop
            if len(syms) == 1 and syms[0] in NTS and NTS.index(syms[0]) <= i:
                syms = [draw(st.sampled_from(TERMINALS))]
            alts.append(" ".join(syms))
        lines.append(f"{nt}: " + " | ".join(a if a else "" for a in alts))
    return "\n".join(lines) + "\n"


def _lark_accepts(lark: Lark, w: bytes) -> bool:
    try:
        lark.parse(w.decode())
        return True
    except LarkError:
        return False


@given(grammars())
@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
def test_random_grammar_language_and_viability(src):
    try:
        g = from_lark(src, lexing="all")
    except GrammarError:
        assume(False)  # empty language: covered by the bad-input tests
    t = CompiledParserTables(g)
    lark = Lark(src, parser="earley", lexer="dynamic_complete", ambiguity="resolve")
    complete = {}
    for n in range(0, 7):
        for tup in itertools.product(ALPHABET, repeat=n):
            w = bytes(tup)
            complete[w] = accepts(t, w)
            if n <= 4:
                assert complete[w] == _lark_accepts(lark, w), (src, w)
    for n in range(0, 4):
        for tup in itertools.product(ALPHABET, repeat=n):
            w = bytes(tup)
            p = ByteParser(t)
            viable = p.feed(w) and p.is_viable()
            if any(complete[w + bytes(x)] for k in range(0, 4) for x in itertools.product(ALPHABET, repeat=k)):
                assert viable, (src, w)
            if not viable:
                # nothing with this prefix is complete, at any tested length
                assert not any(v for u, v in complete.items() if u.startswith(w)), (src, w)
