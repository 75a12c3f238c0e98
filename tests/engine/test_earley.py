"""The reference byte-level parser against Lark itself, the grammar corpora, and bounded search."""

from __future__ import annotations

import itertools
import random
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st
from lark import Lark
from lark.exceptions import LarkError

from constrain.engine.earley import ByteParser, CompiledParserTables, accepts
from constrain.errors import GrammarError
from constrain.grammar.lark_frontend import from_lark, read_header

REPO = Path(__file__).resolve().parents[2]
GRAMMARS = REPO / "grammars"
CORPUS = REPO / "tests" / "data" / "grammars"
ENGINE_GRAMMARS = ["json", "sql", "arithmetic", "go", "python"]


def _docs(name: str, kind: str) -> list[bytes]:
    return [p.read_bytes() for p in sorted((CORPUS / name / kind).glob("*.txt"))]


@pytest.fixture(scope="module")
def tables():
    return {n: CompiledParserTables(from_lark(GRAMMARS / f"{n}.lark")) for n in ENGINE_GRAMMARS}


def _lark_for(name: str) -> Lark:
    text = (GRAMMARS / f"{name}.lark").read_text()
    h = read_header(text)
    kw = {}
    if h.get("postlex") == "python_indenter":
        from lark.indenter import PythonIndenter

        kw["postlex"] = PythonIndenter()
    return Lark(text, start=h.get("start", "start"), parser=h.get("parser", "earley"), lexer=h.get("lexer", "dynamic"),
                **kw)


@pytest.mark.parametrize("name", ENGINE_GRAMMARS)
def test_corpus_byte_by_byte(name, tables):
    """Completeness on real documents (fed one byte at a time), rejection of near-misses."""
    t = tables[name]
    for doc in _docs(name, "accept"):
        p = ByteParser(t)
        for i in range(len(doc)):
            assert p.feed(doc[i:i + 1]), f"{name}: rejected byte {i} of {doc[:80]!r}"
            assert p.is_viable()
        assert p.is_complete(), f"{name}: not complete: {doc[:80]!r}"
    for doc in _docs(name, "reject"):
        assert not accepts(t, doc), f"{name}: accepted near-miss {doc[:120]!r}"


def _mutations(doc: bytes, rng: random.Random, n: int) -> list[bytes]:
    alphabet = sorted(set(doc)) + [ord(c) for c in ' ,"{}[]()0.-e:;\n']
    out = []
    for _ in range(n):
        d = bytearray(doc)
        for _ in range(rng.randint(1, 3)):
            op = rng.randrange(3)
            i = rng.randrange(len(d) + 1)
            if op == 0 and d:
                del d[min(i, len(d) - 1)]
            elif op == 1:
                d.insert(i, rng.choice(alphabet))
            elif d:
                d[min(i, len(d) - 1)] = rng.choice(alphabet)
        out.append(bytes(d))
    return out


@pytest.mark.parametrize("name", ["json", "arithmetic", "sql", "python"])
def test_agrees_with_lark_on_mutants(name, tables):
    """Soundness and completeness: on mutated documents, complete ⇔ Lark parses."""
    lark = _lark_for(name)
    rng = random.Random(hash(name) & 0xFFFF)
    docs = _docs(name, "accept")[:8] if name == "python" else _docs(name, "accept")
    disagreements = []
    for doc in docs:
        for m in _mutations(doc, rng, 15):
            try:
                text = m.decode("utf-8")
            except UnicodeDecodeError:
                continue
            try:
                lark.parse(text)
                theirs = True
            except LarkError:
                theirs = False
            ours = accepts(tables[name], m)
            if ours != theirs:
                disagreements.append((m, ours, theirs))
    assert not disagreements, disagreements[:5]


# ---------------------------------------------------------------- small grammars
SMALL = {
    "anbn": ('start: "a" start "b" | "c"', b"abc"),
    "list": ('start: "[" [item ("," item)*] "]"\nitem: /[0-9]+/ | start\n%ignore " "', b"[]0,"),
    "spaces": ('start: "[" [item ("," item)*] "]"\nitem: /[0-9]+/\n%ignore " "', b"[]0 "),
    "ambig": ('start: x+\nx: "a" | "aa" | "ab" | y\ny: /b+a/', b"ab"),
    "nullable": ('start: a b a\na: "x"?\nb: a a "y" | ', b"xy"),
    "words": ('start: WORD (" " WORD)*\nWORD: /[a-c]+/', b"ab "),
    "kw": ('start: ("if" | NAME)+\nNAME: /[a-z]+/\n%ignore " "', b"ifa "),
}


def _lark_complete(src: str) -> Lark:
    return Lark(src, parser="earley", lexer="dynamic_complete")


@pytest.mark.parametrize("key", sorted(SMALL))
def test_small_grammars_exhaustive(key):
    """Every short string: complete ⇔ Lark (dynamic_complete); viable ⇔ some short extension
    is complete (bounded search; 4-letter alphabets use shorter bounds)."""
    src, alphabet = SMALL[key]
    g = from_lark(src, lexing="all")
    t = CompiledParserTables(g)
    lark = _lark_complete(src)
    max_len, ext_len = (5, 4) if len(alphabet) <= 3 else (4, 3)
    complete: dict[bytes, bool] = {}
    for n in range(max_len + ext_len + 1):
        for tup in itertools.product(alphabet, repeat=n):
            w = bytes(tup)
            complete[w] = accepts(t, w)
            if n <= max_len:
                try:
                    lark.parse(w.decode())
                    theirs = True
                except LarkError:
                    theirs = False
                assert complete[w] == theirs, (key, w)
    for n in range(max_len + 1):
        for tup in itertools.product(alphabet, repeat=n):
            w = bytes(tup)
            p = ByteParser(t)
            viable = p.feed(w) and p.is_viable()
            reachable = any(complete[w + bytes(x)] for k in range(ext_len + 1)
                            for x in itertools.product(alphabet, repeat=k))
            if reachable:
                assert viable, (key, w)
            elif viable:
                # viable but no short completion: must need a longer one (anbn-style nesting)
                assert key in ("anbn", "list", "spaces", "nullable") and len(w) >= 2, (key, w)


@given(st.data())
@settings(max_examples=40)
def test_rollback_and_copy_restore_exact_state(data):
    t = CompiledParserTables(from_lark(GRAMMARS / "json.lark"))
    doc = data.draw(st.sampled_from(_docs("json", "accept")))
    cut = data.draw(st.integers(0, len(doc)))
    p = ByteParser(t)
    assert p.feed(doc[:cut])
    before = (p.pos, p.threads, sorted(p.chart), p.is_complete(), p.allowed_terminals())
    q = p.copy()
    extra = data.draw(st.binary(max_size=8))
    p.feed(extra)
    p.rollback_to(cut)
    assert (p.pos, p.threads, sorted(p.chart), p.is_complete(), p.allowed_terminals()) == before
    # the copy was not disturbed, and continues to the same verdict
    assert q.feed(doc[cut:]) and q.is_complete()
    assert p.feed(doc[cut:]) and p.is_complete()


def test_failed_feed_leaves_state_unchanged():
    t = CompiledParserTables(from_lark(GRAMMARS / "json.lark"))
    p = ByteParser(t)
    assert p.feed(b'{"a": [1, 2')
    snap = (p.pos, p.threads, sorted(p.chart))
    assert not p.feed(b', }')
    assert (p.pos, p.threads, sorted(p.chart)) == snap
    assert p.feed(b"]}") and p.is_complete()


# --------------------------------------------------------------------- bad input
BAD = [
    ('start: "a" b', "b"),                                   # undefined rule
    ("start: /a(?=b)/", "lookahead"),                        # lookaround
    (r"start: /(a)\1/", "backreference"),                    # backreference
    ('start: "a" start', "empty"),                           # empty language
    ('start: A\nA: /b*/', "empty string"),                   # terminal matching ""
    ('start: "a" "b\n', "line 1"),                           # syntax error
    ("start: x\nx: ", ""),                                   # only the empty word: fine, checked below
]


@pytest.mark.parametrize("src,needle", BAD[:-1])
def test_bad_grammars_have_clear_errors(src, needle):
    with pytest.raises(GrammarError) as e:
        from_lark(src)
    assert needle.lower() in str(e.value).lower()


def test_empty_word_grammar():
    g = from_lark("start: x\nx: ")
    assert accepts(g, b"") and not accepts(g, b"a")


def test_grammar_is_picklable_and_hashable():
    import pickle

    g = from_lark(GRAMMARS / "json.lark")
    g2 = pickle.loads(pickle.dumps(g))
    assert g2 == g and hash(g2) == hash(g) and g2.fingerprint == g.fingerprint
    assert from_lark(GRAMMARS / "sql.lark").fingerprint != g.fingerprint
    assert accepts(g2, b'{"x": [1, 2.5e3, "s\\u00e9"]}')


PY_CASES = [
    (b"if x:\n    y = 1\nz = 2\n", True),
    (b"if x:\n    y = 1\n  z = 2\n", False),          # dedent to a level never opened
    (b"if x:\ny = 1\n", False),                       # block without indent
    (b"def f(a,\n        b):\n    return (a +\n  b)\n", True),  # newlines inside brackets ignored
    (b"if x:\n\tif y:\n\t\tpass\n", True),            # tabs count 8 columns
    (b"if x:\n    pass\n", True),
    (b"if x:\n    pass", False),                       # the last statement needs its newline
    (b"from ..a import b\n", True),                    # ".." falls back to "." "." beside "..."
    (b"x = ...\n", True),
    (b"x = (1,\n", False),
]


@pytest.mark.parametrize("doc,ok", PY_CASES)
def test_python_indentation(doc, ok, tables):
    assert accepts(tables["python"], doc) == ok
    lark = _lark_for("python")
    try:
        lark.parse(doc.decode())
        theirs = True
    except LarkError:
        theirs = False
    assert theirs == ok


def test_python_prefix_viability(tables):
    p = ByteParser(tables["python"])
    assert p.feed(b"def f(x):\n") and p.is_viable() and not p.is_complete()
    assert p.feed(b"    return x\n") and p.is_complete()
    assert not p.feed(b"  y")  # an unknown dedent level is never viable
    assert p.feed(b"y = f(1)\n") and p.is_complete()


@pytest.mark.parametrize("name", ["python", "go"])
def test_end_lexeme_equals_a_byte_the_lexeme_cannot_take(tables, name):
    """``end_lexeme()`` then byte ``c`` is feeding ``c`` alone whenever the current lexeme
    cannot take ``c`` (maximal munch ends it at its last accepting point either way): both
    refused, or both taken to the same configuration, which then reads the rest of the
    document alike; and rolling ``end_lexeme`` back restores the parser as it was.  (The mask
    walk ends NEWLINE lexemes this way under the indenter, one walk for all the children.)"""
    t = tables[name]
    lex = t.lexer
    doc = _docs(name, "accept")[0][:1500]
    probe = b" \n\t()[]{}:,.#=+a1\"'"
    p = ByteParser(t)
    ended = refused = 0
    for i in range(len(doc)):
        if len(p.threads) == 1 and i % 3 == 0:
            sid = p.threads[0][1]
            for c in probe:
                if lex.step(sid, c) >= 0:  # (the table is built lazily)
                    continue
                one = p.copy()
                ok1 = one.feed(bytes([c]))
                two = p.copy()
                mark = two.n_steps
                before = (two.threads, two.indent, two.paren, two.pos, len(two._history))
                ok_end = two.end_lexeme()
                if not ok_end:
                    assert (two.threads, two.indent, two.paren, two.pos, len(two._history)) == before
                    assert not ok1, (doc[:i][-30:], bytes([c]))
                    refused += 1
                    continue
                back = two.copy()
                back.rollback_to(mark)
                assert (back.threads, back.indent, back.paren, back.pos, len(back._history)) == before
                assert back.feed(bytes([c])) == ok1
                ok2 = two.feed(bytes([c]))
                assert ok1 == ok2, (doc[:i][-30:], bytes([c]))
                if ok1:
                    ended += 1
                    assert (one.indent, one.paren, one.pos) == (two.indent, two.paren, two.pos)
                    assert [th[1:] for th in one.threads] == [th[1:] for th in two.threads]
                    if c == doc[i]:
                        assert one.feed(doc[i + 1:]) and two.feed(doc[i + 1:])
                        assert one.is_complete() == two.is_complete()
        assert p.feed(doc[i:i + 1])
    assert ended > 50 and refused > 0
