"""The infilling checker equals a brute-force enumeration (Earley oracle) on small grammars.

Bounded gaps: every filling over one representative byte per joint byte class of the grammar's
terminals (substituting a byte by another of its class changes no membership) up to the bound
is tried, depth first with Earley prefix pruning; "nonempty" must hold iff one is a word.
Unbounded gaps: "nonempty" comes with a witness the oracle accepts; "empty" means no filling
up to a small length works (one direction: longer fillings are not enumerable).
"""

from __future__ import annotations

import json
from functools import lru_cache

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings, strategies as st

from constrain.diffusion import Gap, InfillChecker, LongestLexingRefused
from constrain.diffusion.checker import TokenGap, normalise_segments
from constrain.engine.earley import ByteParser, CompiledParserTables, accepts
from constrain.errors import GrammarError
from constrain.grammar import from_lark
from constrain.jsonschema import compile_json_schema

TERMINALS = ['"a"', '"b"', '"ab"', '"ba"', "/a+/", "/b?c/", '"c"', "/[ab]c/"]
NTS = ["start", "x", "y"]


@st.composite
def grammars(draw):
    lines = []
    for i, nt in enumerate(NTS):
        alts = []
        for _ in range(draw(st.integers(1, 3))):
            syms = []
            for _ in range(draw(st.integers(0, 3))):
                syms.append(draw(st.sampled_from(TERMINALS)) if draw(st.booleans()) else draw(st.sampled_from(NTS)))
            if len(syms) == 1 and syms[0] in NTS and NTS.index(syms[0]) <= i:
                syms = [draw(st.sampled_from(TERMINALS))]
            alts.append(" ".join(syms))
        lines.append(f"{nt}: " + " | ".join(alts))
    if draw(st.booleans()):
        lines.append('%ignore " "')
    return "\n".join(lines) + "\n"


def byte_reps(g) -> bytes:
    """One byte per joint byte class of all terminal DFAs."""
    if not g.terminals:
        return b"a"
    cols = np.concatenate([np.asarray(t.dfa.trans) for t in g.terminals], axis=0).T
    seen = {}
    for b in range(256):
        seen.setdefault(cols[b].tobytes(), b)
    return bytes(sorted(seen.values()))


STATS: dict = {}  # comparisons by outcome, printed by `pytest -s`


@pytest.fixture(scope="module", autouse=True)
def _report_stats():
    yield
    if STATS:
        print("\nchecker vs brute force:", dict(sorted(STATS.items())))


def brute(tables, segs, alphabet, max_unbounded=None, total=6) -> bytes | None:
    """A word of the grammar matching ``segs`` (bytes / Gap), or None; DFS with Earley pruning."""
    r = _brute(tables, segs, alphabet, max_unbounded, total)
    kind = "bounded" if all(s.max_bytes is not None for s in segs if isinstance(s, Gap)) else "unbounded"
    key = f"{kind}-{'nonempty' if r is not None else 'empty'}"
    STATS[key] = STATS.get(key, 0) + 1
    return r


def _brute(tables, segs, alphabet, max_unbounded, total):
    p = ByteParser(tables)
    if max_unbounded is None:
        n_unb = sum(1 for s in segs if isinstance(s, Gap) and s.max_bytes is None)
        max_unbounded = total // max(n_unb, 1)

    def rec(i):
        if i == len(segs):
            return b"" if p.is_complete() else None
        s = segs[i]
        if isinstance(s, bytes):
            mark = p.n_steps
            if not p.feed(s) or not p.is_viable():
                p.rollback_to(mark)
                return None
            r = rec(i + 1)
            p.rollback_to(mark)
            return None if r is None else s + r
        hi = s.max_bytes if s.max_bytes is not None else max(max_unbounded, s.min_bytes)
        return fill(i, s.min_bytes, hi, b"")

    def fill(i, lo, hi, acc):
        if len(acc) >= lo:
            r = rec(i + 1)
            if r is not None:
                return acc + r
        if len(acc) == hi:
            return None
        for b in alphabet:
            mark = p.n_steps
            if p.feed(bytes((b,))) and p.is_viable():
                r = fill(i, lo, hi, acc + bytes((b,)))
                if r is not None:
                    p.rollback_to(mark)
                    return r
            p.rollback_to(mark)
        return None

    return rec(0)


def check_witness(tables, segs, res):
    STATS["witness-verified"] = STATS.get("witness-verified", 0) + 1
    w = res.witness()
    assert w is not None and accepts(tables, w), (segs, w)
    segs = normalise_segments(segs)
    assert res.segments == segs
    fills = res.fills()
    gaps = [s for s in segs if isinstance(s, Gap)]
    assert len(fills) == len(gaps)
    rebuilt, k = b"", 0
    for s in segs:
        if isinstance(s, bytes):
            rebuilt += s
        else:
            f = fills[k]
            assert s.min_bytes <= len(f) and (s.max_bytes is None or len(f) <= s.max_bytes), (s, f)
            rebuilt += f
            k += 1
    assert rebuilt == w


@st.composite
def segments(draw, alphabet: bytes, words=None, bounded=True, total=6):
    """Chunks and gaps; bounded gaps hold at most ``total`` bytes together (brute-force cost)."""
    segs = []
    n_chunks = draw(st.integers(0, 3))
    if draw(st.booleans()):
        segs.append(None)
    for i in range(n_chunks):
        if i:
            segs.append(None)
        if words:
            w = draw(st.sampled_from(words))
            a = draw(st.integers(0, len(w)))
            b = draw(st.integers(a, min(len(w), a + 6)))
            segs.append(w[a:b])
        else:
            segs.append(bytes(draw(st.lists(st.sampled_from(list(alphabet)), max_size=3))))
    if draw(st.booleans()) or not segs:
        segs.append(None)
    out = []
    for s in segs:
        if s is None:
            if bounded:
                hi = draw(st.integers(0, min(3, total)))
                total -= hi
                out.append(Gap(max_bytes=hi, min_bytes=draw(st.integers(0, min(hi, 1)))))
            else:
                out.append(Gap(min_bytes=draw(st.integers(0, 1))))
        else:
            out.append(s)
    return out


@lru_cache(maxsize=None)
def _compiled(src, lexing):
    g = from_lark(src, lexing=lexing)
    return g, CompiledParserTables(g), InfillChecker(g), byte_reps(g), InfillChecker(g, determinize=True)


@given(grammars(), st.data())
@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
def test_random_grammars_bounded_gaps_exact(src, data):
    try:
        g, tables, ck, reps, ck_dfa = _compiled(src, "all")
    except GrammarError:
        assume(False)
    for _ in range(8):
        segs = data.draw(segments(b"abc ", bounded=True))
        want = brute(tables, segs, reps)
        for c in (ck, ck_dfa):  # the epsilon-free NFA and the minimal DFA give the same answers
            res = c.check_segments(segs)
            assert res.status == ("empty" if want is None else "nonempty"), (src, segs, want, c.determinize)
            if want is not None:
                check_witness(tables, segs, res)


@given(grammars(), st.data())
@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
def test_random_grammars_unbounded_gaps(src, data):
    try:
        g, tables, ck, reps, _ = _compiled(src, "all")
    except GrammarError:
        assume(False)
    for _ in range(6):
        segs = data.draw(segments(b"abc ", bounded=False))
        res = ck.check_segments(segs)
        if res.status == "nonempty":
            check_witness(tables, segs, res)
        else:
            assert res.status == "empty"
            assert brute(tables, segs, reps, total=6) is None, (src, segs)


JSON_DOCS = [b'{"name": "Ada", "age": 36, "tags": ["x", "yz"], "ok": true}',
             b'[1, -2.5e3, null, false, {"a": [], "b": {}}]', b'"esc\\"aped\\u00e9"', b'{"k":0.25}']
ARITH_DOCS = [b"1 + 2 * (3 - 4.5) ^ -2", b"((7))/8**9 - -1", b"12.75*3"]


@pytest.fixture(scope="module")
def json_setup():
    g = from_lark("grammars/json.lark")
    return g, CompiledParserTables(g), InfillChecker(g), byte_reps(g)


@pytest.fixture(scope="module")
def arith_setup():
    g = from_lark("grammars/arithmetic.lark")
    return g, CompiledParserTables(g), InfillChecker(g), byte_reps(g)


@given(st.data())
@settings(max_examples=40, deadline=None)
def test_json_lark_bounded_exact(json_setup, data):
    g, tables, ck, reps = json_setup
    assert ck.exact  # maximal munch provably equals all readings here
    segs = data.draw(segments(reps, words=JSON_DOCS, bounded=True, total=2))
    res = ck.check_segments(segs)
    want = brute(tables, segs, reps)
    assert res.status == ("empty" if want is None else "nonempty"), (segs, want)
    if want is not None:
        check_witness(tables, segs, res)


@given(st.data())
@settings(max_examples=40, deadline=None)
def test_arithmetic_bounded_exact(arith_setup, data):
    g, tables, ck, reps = arith_setup
    assert ck.exact
    segs = data.draw(segments(reps, words=ARITH_DOCS, bounded=True, total=3))
    res = ck.check_segments(segs)
    want = brute(tables, segs, reps)
    assert res.status == ("empty" if want is None else "nonempty"), (segs, want)
    if want is not None:
        check_witness(tables, segs, res)


@given(st.data())
@settings(max_examples=40, deadline=None)
def test_json_lark_unbounded_witness(json_setup, data):
    g, tables, ck, reps = json_setup
    segs = data.draw(segments(reps, words=JSON_DOCS, bounded=False))
    res = ck.check_segments(segs)
    if res.status == "nonempty":
        check_witness(tables, segs, res)
    else:
        assert res.status == "empty"
        assert brute(tables, segs, reps, total=2) is None, segs


def test_handpicked_json(json_setup):
    g, tables, ck, _ = json_setup
    assert ck.check([b'{"a": ', b', "b": 2}']).status == "nonempty"
    assert ck.check([b"[1, "], end_fixed=False).status == "nonempty"
    assert ck.check([b"[1 2]"]).status == "empty"
    assert ck.check([b"tru", b"e"], gaps=[Gap(min_bytes=1)]).status == "empty"
    assert ck.check([b"tru", b"e"]).status == "nonempty"
    assert ck.check([b"[", b"]"], gaps=[Gap(max_bytes=3)]).status == "nonempty"
    # a string straddling two gaps
    r = ck.check([b'{"ab', b"c", b'd": 1}'])
    assert r.status == "nonempty" and accepts(tables, r.witness())
    # too little room to close five brackets
    assert ck.check([b"[[[[["], end_fixed=False, end_gap=4).status == "empty"
    assert ck.check([b"[[[[["], end_fixed=False, end_gap=5).witness() == b"[[[[[]]]]]"
    # empty output
    assert ck.check([]).status == "empty"
    assert ck.check([], start_fixed=False).status == "nonempty"


def test_json_schema_grammar():
    schema = {"type": "object", "properties": {"n": {"type": "integer", "minimum": 0}, "s": {"enum": ["x", "yy"]}},
              "required": ["n", "s"], "additionalProperties": False}
    g = compile_json_schema(schema)
    tables = CompiledParserTables(g)
    ck = InfillChecker(g)
    r = ck.check([b'{"n":', b'"s":"y'], end_fixed=False)
    assert r.status == "nonempty"
    w = r.witness()
    assert accepts(tables, w) and json.loads(w)["s"] == "yy"
    assert ck.check([b'{"n":-'], end_fixed=False).witness().startswith(b'{"n":-0,')  # -0 == 0 >= 0
    assert ck.check([b'{"n":-1'], end_fixed=False).status == "empty"
    assert ck.check([b'{"n":1', b'"s":"z'], end_fixed=False).status == "empty"


def test_longest_refused_and_approximate():
    src = '// lexer: basic\nstart: KW NAME | NAME NAME\nKW: "if"\nNAME: /[a-z]+/\n%ignore " "\n'
    g = from_lark(src)
    assert g.lexing == "longest"
    with pytest.raises(LongestLexingRefused, match="approximate"):
        InfillChecker(g)
    ck = InfillChecker(g, longest="approximate")
    assert not ck.exact
    assert ck.check([b"i"], end_fixed=False).status == "nonempty"
    with pytest.raises(LongestLexingRefused):
        InfillChecker(from_lark("grammars/sql.lark"))
    with pytest.raises(LongestLexingRefused, match="indentation"):
        InfillChecker(from_lark("grammars/python.lark"))


def test_budget_unknown(json_setup):
    _, _, ck, _ = json_setup
    r = ck.check([b'{"a": [1, {"b": '], end_fixed=False, budget=3)
    assert r.status == "unknown" and r.witness() is None
    r = ck.check([b'{"a": [1, {"b": '], end_fixed=False)
    assert r.status == "nonempty"


def test_determinize_off_agrees(json_setup):
    g, tables, ck, _ = json_setup
    ck2 = InfillChecker(g, determinize=True)
    for segs in ([b'{"a": ', Gap(), b', "b": 2}'], [Gap(), b'": [', Gap(max_bytes=2), b"]}"], [b"[1 2", Gap()]):
        r1, r2 = ck.check_segments(segs), ck2.check_segments(segs)
        assert r1.status == r2.status
        if r2.status == "nonempty":
            check_witness(tables, segs, r2)


@given(grammars(), st.data())
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
def test_token_gaps_exact(src, data):
    """A TokenGap equals the enumeration of its token sequences."""
    try:
        g, tables, ck, reps, _ = _compiled(src, "all")
    except GrammarError:
        assume(False)
    import itertools

    toks = tuple(data.draw(st.lists(st.sampled_from([b"a", b"b", b"c", b"ab", b"ca", b"bc", b"a c"]),
                                    min_size=1, max_size=4, unique=True)))
    for _ in range(4):
        left = bytes(data.draw(st.lists(st.sampled_from(list(b"abc")), max_size=3)))
        right = bytes(data.draw(st.lists(st.sampled_from(list(b"abc")), max_size=3)))
        hi = data.draw(st.integers(1, 3))
        lo = data.draw(st.integers(0, hi))
        segs = [left, TokenGap(toks, max_tokens=hi, min_tokens=lo), right]
        want = any(accepts(tables, left + b"".join(seq) + right)
                   for k in range(lo, hi + 1) for seq in itertools.product(toks, repeat=k))
        res = ck.check_segments(segs)
        key = f"token-gap-{'nonempty' if want else 'empty'}"
        STATS[key] = STATS.get(key, 0) + 1
        assert res.status == ("nonempty" if want else "empty"), (src, segs)
        if want:
            w, (f,) = res.witness(), res.fills()
            assert accepts(tables, w) and w == left + f + right
            # the fill is a sequence of lo..hi tokens
            ok = {b""} if lo == 0 else set()
            layer = {b""}
            for k in range(1, hi + 1):
                layer = {x + t for x in layer for t in toks}
                if k >= lo:
                    ok |= layer
            assert f in ok, (f, toks, lo, hi)


@given(grammars(), st.data())
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
def test_random_grammars_longest_exact_when_accepted(src, data):
    """Maximal munch: a grammar the checker accepts is decided exactly (oracle: the Earley
    parser's own maximal-munch lexer); the others are refused."""
    try:
        g = from_lark(src, lexing="longest")
    except GrammarError:
        assume(False)
    try:
        ck = InfillChecker(g)
    except LongestLexingRefused:
        STATS["longest-refused"] = STATS.get("longest-refused", 0) + 1
        return
    STATS["longest-accepted"] = STATS.get("longest-accepted", 0) + 1
    tables = CompiledParserTables(g)
    reps = byte_reps(g)
    for _ in range(6):
        segs = data.draw(segments(b"abc ", bounded=True))
        want = brute(tables, segs, reps)
        res = ck.check_segments(segs)
        assert res.status == ("empty" if want is None else "nonempty"), (src, segs, want)
        if want is not None:
            check_witness(tables, segs, res)


def _ref_edges(ck, segs):
    from constrain.diffusion import checker_kernels as K
    from constrain.diffusion.checker import _RGraph

    t = ck.tables
    rg = _RGraph(segs)
    ref = K.terminal_edges(rg.e_ptr, rg.e_lab, rg.e_dst, rg.order, rg.start, t.ctrans, t.cacc, t.cterm, t.tstart,
                           t.succ_ptr, t.succ_idx, t.n_terms)
    return rg, set(zip(*[a.tolist() for a in ref]))


@given(grammars(), st.data())
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
def test_lexing_memo_resumes_exactly(src, data):
    """Consecutive checks that change one piece resume the lexing sweep from a memoised prefix
    (segment ends and token cuts inside chunks); the edges equal the per-source reference
    kernel and the answers equal a checker without the memo."""
    from constrain.diffusion.checker import _normalise

    try:
        g, tables, _, reps, _ = _compiled(src, "all")
    except GrammarError:
        assume(False)
    ck, ck0 = InfillChecker(g), InfillChecker(g, lex_memo=False)
    pieces = st.one_of(st.binary(min_size=1, max_size=2).map(lambda b: bytes(c % 3 + 97 for c in b)),
                       st.sampled_from([b" ", b"ab", b"c"]),
                       st.builds(Gap, st.none() | st.integers(1, 3), st.integers(0, 1)).filter(
                           lambda x: x.max_bytes is None or x.max_bytes >= x.min_bytes),
                       st.just(TokenGap((b"a", b"bc"), max_tokens=2)))
    raw = data.draw(st.lists(pieces, min_size=1, max_size=7))
    for _ in range(5):
        segs, cuts = _normalise(raw)
        rg, ref = _ref_edges(ck, segs)
        got = ck._lex(segs, rg, cuts)
        assert set(zip(*[a.tolist() for a in got])) == ref, (src, raw)
        assert ck.check_segments(raw).status == ck0.check_segments(raw).status, (src, raw)
        i = data.draw(st.integers(0, len(raw) - 1))
        raw = raw[:i] + [data.draw(pieces)] + raw[i + 1:]
    assert ck.lex_stats["resumed"] >= 0


def test_lexing_memo_reuses_prefix(json_setup):
    g, tables, _, _ = json_setup
    ck = InfillChecker(g)
    toks = [b'{"', b"a", b'": ', b"[", b"1", b", ", b"2", b"]", b"}"]
    ck.check_segments(toks[:4] + [Gap()] + toks[5:])
    n = ck.lex_stats["nodes_reused"]
    r = ck.check_segments(toks[:4] + [b"1", Gap()] + toks[6:])   # the next unmasking step
    assert r.status == "nonempty" and ck.lex_stats["nodes_reused"] - n >= len(b''.join(toks[:3]))
    assert ck.check_segments(toks[:4] + [b"x", Gap()] + toks[6:]).status == "empty"
