"""Regex → byte DFA: agreement with Python ``re``, UTF-8 exactness, minimization, refusals, caps."""

from __future__ import annotations

import pickle
import re

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from constrain.errors import ConfigError, GrammarError, LimitExceeded, RegexError
from constrain.grammar.dfa import ByteDFA, ByteNFA, utf8_sequences, utf8_strings_dfa
from constrain.grammar.regex import (
    any_char_dfa,
    any_string_dfa,
    char_class_dfa,
    compile_choices,
    compile_regex,
    literal_dfa,
)

# scale with the active hypothesis profile (conftest: "ci" = 60, "long" = 2000)
_N = max(8, settings.default.max_examples // 4)
_SETTINGS = settings(max_examples=_N, deadline=None,
                     suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                            HealthCheck.data_too_large])

CORPUS = [
    r'"([^"\\\x00-\x1f]|\\["\\/bfnrt]|\\u[0-9a-fA-F]{4})*"',  # JSON string
    r"-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?",  # JSON number
    r"-?(0|[1-9][0-9]*)",  # JSON integer
    r"[+-]?(\d+\.\d*|\.\d+)",  # float, Unicode digits
    r"[a-zA-Z_][a-zA-Z0-9_]*",  # identifier
    r"[^\W\d]\w*",  # Unicode identifier
    r"\w+",
    r"\d{2,3}",
    r"\s*",
    r"\S+\s\S+",
    r"[a-zà-ÿ]+",
    r"[^a]",
    r".{2,5}",
    r".*",
    r"(?s).{0,3}",
    r"[\U0001F600-\U0001F64F]+",  # emoji
    "[\U0001F300-\U0001F5FF]{1,3}x?",  # emoji given literally
    r"[\u0400-\u04ff]+",  # Cyrillic
    r"[^\x00-\x7f]+",  # non-ASCII only
    r"[\u00e9\u4e2d\U00010000-\U0001000f]+",
    r"(ab|a)*b",
    r"((a|b)(c|d))+",
    r"(a(b(c)?)?)*",
    r"cat|dog|bird|ca",
    r"x*y*z*",
    r"(x|y){3}",
    r"a{2,}b{,2}",
    r"(true|false)(,(true|false)){0,3}",
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}",
    r"[0-9a-f]{8}-[0-9a-f]{4}",
    r"[^\"\\]*",
    r"(?i)true|false|null",
    r"(?i:select)\s+\*",
    r"(?i)[a-f0-9]{2,4}",
    r"(?i)straße",
    r"(?i)kelvin|sigma|σ",
    r"(?x) [a-z]+ \d?   # verbose mode",
    r"^abc$",
    r"a|",
    r"()",
    r"\\[nt]|\x41|\101|\N{SNOWMAN}",
    r"[a-c][^a-c]?[\-\]]",
    r"(?a)\w+\s\d",
    r"(a|b)*?c+?",
]

_compiled: dict[str, ByteDFA] = {}


def dfa_for(p: str) -> ByteDFA:
    d = _compiled.get(p)
    if d is None:
        d = _compiled[p] = compile_regex(p)
    return d


def py_match(p: str, s: str) -> bool:
    return re.fullmatch(p, s) is not None


def encodable(s: str) -> bool:
    try:
        s.encode("utf-8")
        return True
    except UnicodeEncodeError:
        return False


_EXTRA_CHARS = "aAbBkKsS\u212a\u017fßẞσΣς0959٣ \t\n\x00\x1f\"\\/éÿ€😀\U0001F64F\U0010FFFF"


@st.composite
def mutated(draw, p: str):
    s = draw(st.from_regex(p, fullmatch=True))
    alphabet = sorted(set(p) | set(_EXTRA_CHARS))
    ch = draw(st.sampled_from(alphabet) | st.characters())
    op = draw(st.sampled_from(["insert", "delete", "replace", "dup", "truncate", "swapcase"]))
    i = draw(st.integers(0, len(s)))
    if op == "insert":
        s = s[:i] + ch + s[i:]
    elif op == "delete" and s:
        i = min(i, len(s) - 1)
        s = s[:i] + s[i + 1:]
    elif op == "replace" and s:
        i = min(i, len(s) - 1)
        s = s[:i] + ch + s[i + 1:]
    elif op == "dup":
        s = s[:i] + s + s[i:]
    elif op == "truncate":
        s = s[:i]
    elif op == "swapcase":
        s = s.swapcase()
    return s


# --------------------------------------------------------------------------------------
# agreement with re.fullmatch
# --------------------------------------------------------------------------------------

@pytest.mark.parametrize("p", CORPUS)
@_SETTINGS
@given(data=st.data())
def test_positive_strings_match_and_prefixes_are_live(p, data):
    dfa = dfa_for(p)
    s = data.draw(st.from_regex(p, fullmatch=True))
    assume(encodable(s))
    b = s.encode()
    assert dfa.matches(b) == py_match(p, s)
    for k in range(len(b) + 1):
        assert dfa.is_live_prefix(b[:k]), (p, s, k)


@pytest.mark.parametrize("p", CORPUS)
@_SETTINGS
@given(data=st.data())
def test_mutated_and_random_text_agrees_with_re(p, data):
    dfa = dfa_for(p)
    s = data.draw(mutated(p) | st.text(alphabet=st.sampled_from(sorted(set(p) | set(_EXTRA_CHARS))),
                                       max_size=8) | st.text(max_size=6))
    assume(encodable(s))
    b = s.encode()
    assert dfa.matches(b) == py_match(p, s), (p, s)
    # a live prefix really has a completion
    st_ = dfa.run(b)
    if st_ >= 0 and dfa.live[st_]:
        w = dfa.shortest_word(st_)
        assert w is not None and dfa.matches(b + w)
    else:
        assert not dfa.is_live_prefix(b)


@pytest.mark.parametrize("p", CORPUS)
@_SETTINGS
@given(data=st.data())
def test_bytes_accepted_iff_valid_utf8_match(p, data):
    dfa = dfa_for(p)
    base = data.draw(st.from_regex(p, fullmatch=True)).encode("utf-8", "surrogatepass")
    b = data.draw(st.binary(max_size=8) | st.builds(
        lambda i, x, keep: base[:i] + bytes([x]) + base[i + keep:],
        st.integers(0, len(base)), st.integers(0, 255), st.integers(0, 1)))
    try:
        s = b.decode("utf-8")
    except UnicodeDecodeError:
        assert not dfa.matches(b), (p, b)
        return
    assert dfa.matches(b) == py_match(p, s), (p, b)


def test_invalid_utf8_rejected_by_any_text_dfas():
    anything = compile_regex(r"(?s).*")
    bad = [b"\x80", b"\xc0\x80", b"\xc1\xbf", b"\xe0\x80\x80", b"\xed\xa0\x80", b"\xed\xbf\xbf",
           b"\xf0\x80\x80\x80", b"\xf4\x90\x80\x80", b"\xf5\x80\x80\x80", b"\xff", b"a\xe2\x82",
           "\ud800".encode("utf-8", "surrogatepass")]
    for b in bad:
        assert not anything.matches(b), b
        assert not compile_regex(r"[^a]*").matches(b), b
    # a truncated character is a live prefix, a bad continuation is not
    assert anything.is_live_prefix(b"a\xe2\x82")
    assert not anything.is_live_prefix(b"a\xe2\x28")
    assert anything == utf8_strings_dfa() == any_string_dfa()


# --------------------------------------------------------------------------------------
# exhaustive checks over every code point
# --------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def universe():
    cps = np.concatenate([np.arange(0xD800), np.arange(0xE000, 0x110000)]).astype(np.int64)
    n = len(cps)
    enc = np.zeros((n, 4), dtype=np.int64)
    ln = np.where(cps < 0x80, 1, np.where(cps < 0x800, 2, np.where(cps < 0x10000, 3, 4)))
    m1, m2, m3, m4 = (ln == 1), (ln == 2), (ln == 3), (ln == 4)
    enc[m1, 0] = cps[m1]
    enc[m2, 0] = 0xC0 | (cps[m2] >> 6)
    enc[m2, 1] = 0x80 | (cps[m2] & 0x3F)
    enc[m3, 0] = 0xE0 | (cps[m3] >> 12)
    enc[m3, 1] = 0x80 | ((cps[m3] >> 6) & 0x3F)
    enc[m3, 2] = 0x80 | (cps[m3] & 0x3F)
    enc[m4, 0] = 0xF0 | (cps[m4] >> 18)
    enc[m4, 1] = 0x80 | ((cps[m4] >> 12) & 0x3F)
    enc[m4, 2] = 0x80 | ((cps[m4] >> 6) & 0x3F)
    enc[m4, 3] = 0x80 | (cps[m4] & 0x3F)
    text = cps.astype("<u4").tobytes().decode("utf-32-le")
    return cps, enc, ln, text


def _dfa_char_set(dfa: ByteDFA, enc, ln) -> np.ndarray:
    s = np.zeros(len(ln), dtype=np.int64)
    for k in range(4):
        m = (ln > k) & (s >= 0)
        s[m] = dfa.trans[s[m], enc[m, k]]
    return (s >= 0) & dfa.accept[np.maximum(s, 0)]


def _re_char_set(p: str, text: str) -> np.ndarray:
    flags = re.match(r"\(\?([a-z]+)\)", p)
    if flags:  # global flags must stay at the start
        p = f"(?{flags.group(1)}:{p[flags.end():]})"
    out = np.zeros(len(text), dtype=bool)
    for m in re.finditer(f"(?:{p})+", text):
        out[m.start():m.end()] = True
    return out


CHAR_CLASSES = [
    r"\w", r"\W", r"\d", r"\D", r"\s", r"\S", r".", r"(?s:.)", r"[^a]", r"[a-zà-ÿ]",
    r"[^\"\\\x00-\x1f]", r"[^\w\d]", r"[\w-]", r"(?i)k", r"(?i)s", r"(?i)[a-z]", r"(?i)[^k]",
    r"(?i)ß", r"(?i)ẞ", r"(?i)[ß]", r"(?i)\w", r"(?i)[^\W]", r"(?i)[\U00010400-\U00010427]",
    r"(?i)σ", r"(?i)[Σ-ω]", r"(?i)İ", r"(?i)[^İ]", r"(?i)µ", r"(?i)[^\d]", r"(?ai)k", r"(?a)\w",
    r"(?a)\s", r"(?ai)[^s]", r"(?i)ǅ", r"(?i)[ᲀ-ᲈ]", r"(?i)θ",
]


@pytest.mark.parametrize("p", CHAR_CLASSES)
def test_char_class_exact_over_all_code_points(p, universe):
    cps, enc, ln, text = universe
    mine = _dfa_char_set(compile_regex(p), enc, ln)
    theirs = _re_char_set(p, text)
    diff = np.flatnonzero(mine != theirs)
    assert len(diff) == 0, [hex(int(cps[i])) for i in diff[:10]]


def test_ascii_option_equals_flag():
    assert compile_regex(r"\w+\s\d", ascii=True) == compile_regex(r"(?a)\w+\s\d")
    assert compile_regex(r"\d", ascii=True) == compile_regex(r"[0-9]")
    assert compile_regex(r"\d") != compile_regex(r"[0-9]")  # Unicode digits by default
    assert compile_regex(r"\d").matches("٣".encode())


def test_utf8_sequences_cover_exactly_all_scalars(universe):
    cps, enc, ln, _ = universe
    dfa = char_class_dfa([(0, 0x10FFFF)])
    assert _dfa_char_set(dfa, enc, ln).all()
    assert dfa == any_char_dfa()
    # every sequence is within one encoded length and sequences are disjoint and sorted
    seqs = utf8_sequences(0, 0x10FFFF)
    prev_hi = -1
    for seq in seqs:
        lo = ord(bytes(r[0] for r in seq).decode())
        hi = ord(bytes(r[1] for r in seq).decode())
        assert prev_hi < lo <= hi and len(chr(lo).encode()) == len(chr(hi).encode()) == len(seq)
        prev_hi = hi
    for lo, hi in [(0, 0x7F), (0x80, 0x7FF), (0x800, 0xFFFF), (0x10000, 0x10FFFF), (0xD700, 0xE100),
                   (0x7F, 0x80), (0xFFFF, 0x10000), (0x1234, 0x5678)]:
        allowed = (cps >= lo) & (cps <= hi)
        assert (_dfa_char_set(char_class_dfa([(lo, hi)]), enc, ln) == allowed).all(), (lo, hi)
    assert utf8_sequences(0xD800, 0xDFFF) == []


# --------------------------------------------------------------------------------------
# minimization and canonical form
# --------------------------------------------------------------------------------------

SAME_LANGUAGE = [
    (r"(a|b)*", r"[ab]*", r"(a*b*)*"),
    (r"a+", r"aa*", r"a*a"),
    (r"x{2,3}", r"xxx?", r"xx|xxx"),
    (r"a|b|c", r"[a-c]", r"(?:a|[bc])"),
    (r"(?i)ab", r"[aA][bB]"),
    (r".{0,2}", r"(.|..)?", r".?.?"),
    (r"[0-9]+", r"(?a)\d+", r"\d+", ),  # \d is Unicode: not the same (checked below)
    (r"(ab|a)*b", r"(a|ab)*b", r"a*(ab)*b|(a+b)*a*b|(ab|a)*b"),
    (r"[^a]", r"[\x00-`b-\U0010ffff]"),
    (r"é", "\u00e9", r"\xe9"),
]


@pytest.mark.parametrize("group", SAME_LANGUAGE)
def test_equal_languages_give_equal_canonical_arrays(group):
    if group[0] == r"[0-9]+":
        a, b, c = (compile_regex(p) for p in group)
        assert a == b and a != c
        return
    dfas = [compile_regex(p) for p in group]
    for d in dfas[1:]:
        assert d.fingerprint() == dfas[0].fingerprint()
        assert np.array_equal(d.trans, dfas[0].trans)
        assert np.array_equal(d.accept, dfas[0].accept)
        assert d == dfas[0] and hash(d) == hash(dfas[0])


def _redundant_copy(d: ByteDFA) -> ByteDFA:
    """Same language, more states: two interleaved copies plus unreachable and dead junk."""
    n = d.n_states
    t = np.array(d.trans, dtype=np.int64)
    big = np.full((2 * n + 2, 256), -1, dtype=np.int64)
    # copy 0 jumps into copy 1 on even bytes, copy 1 back into copy 0 on odd bytes
    even = (np.arange(256) % 2 == 0)
    big[:n] = np.where(t < 0, -1, np.where(even, t + n, t))
    big[n:2 * n] = np.where(t < 0, -1, np.where(even, t, t + n))
    dead = 2 * n
    big[:n][t < 0] = dead  # route dead transitions to an explicit dead state
    big[dead] = dead
    big[2 * n + 1] = 0  # unreachable state
    acc = np.concatenate([d.accept, d.accept, [False, True]])
    return ByteDFA(big, acc)


@pytest.mark.parametrize("p", CORPUS[:20])
@_SETTINGS
@given(data=st.data())
def test_minimize_preserves_language_and_is_canonical(p, data):
    d = dfa_for(p)
    r = _redundant_copy(d)
    assert r.n_states > d.n_states
    m = r.minimize()
    assert np.array_equal(m.trans, d.trans) and np.array_equal(m.accept, d.accept)
    s = data.draw(st.from_regex(p, fullmatch=True) | mutated(p))
    b = s.encode("utf-8", "surrogatepass")
    assert r.matches(b) == d.matches(b) == m.matches(b)
    assert d.minimize() is d


def test_minimize_via_nfa_subset_construction():
    # a raw (unminimized) subset construction vs its minimization
    nfa = ByteNFA()
    a = nfa.alt([nfa.literal(b"ac"), nfa.literal(b"bc"), nfa.literal(b"abc"), nfa.literal(b"")])
    raw = nfa.to_dfa(*a)
    m = raw.minimize()
    assert m.n_states < raw.n_states
    assert m == compile_choices(["ac", "bc", "abc", ""]) == compile_regex(r"(a?b|a)c|")
    assert m.enumerate(5) == [b"", b"ac", b"bc", b"abc"]
    for w in (b"", b"ac", b"bc", b"abc", b"a", b"abcc", b"c"):
        assert raw.matches(w) == m.matches(w)


def test_minimal_dfa_has_no_dead_states_and_bfs_numbering():
    for p in CORPUS:
        d = dfa_for(p)
        assert d.live.all() or (d.is_empty() and d.n_states == 1), p
        # BFS order: the first time state j appears scanning rows in order, j == next id
        seen, nxt = {0}, 1
        for row in d.trans.tolist():
            for t in row:
                if t >= 0 and t not in seen:
                    assert t == nxt, p
                    seen.add(t)
                    nxt += 1


# --------------------------------------------------------------------------------------
# DFA API
# --------------------------------------------------------------------------------------

def test_byte_classes_partition():
    d = compile_regex(r'"([^"\\\x00-\x1f]|\\["\\/bfnrt]|\\u[0-9a-fA-F]{4})*"')
    cls = d.byte_classes()
    assert cls.shape == (256,) and cls[0] == 0
    k = d.n_byte_classes
    assert set(cls.tolist()) == set(range(k))
    # classes numbered by smallest byte
    firsts = [int(np.flatnonzero(cls == c)[0]) for c in range(k)]
    assert firsts == sorted(firsts)
    for b1 in range(256):
        for b2 in (0, 34, 92, 117, 200, 255):
            same = np.array_equal(d.trans[:, b1], d.trans[:, b2])
            assert same == (cls[b1] == cls[b2])


def test_products_and_complement():
    letters = compile_regex(r"[a-z]+")
    has_x = compile_regex(r".*x.*")
    both = letters.intersect(has_x)
    assert both == compile_regex(r"[a-z]*x[a-z]*")
    assert letters.union(compile_regex(r"[0-9]+")) == compile_regex(r"[a-z]+|[0-9]+")
    assert letters.concat(compile_regex(r"[0-9]")) == compile_regex(r"[a-z]+[0-9]")
    assert compile_regex(r"ab").star() == compile_regex(r"(ab)*")
    c = letters.complement()
    assert c.matches(b"") and c.matches(b"A") and not c.matches(b"abc")
    assert c.matches(b"\xff")  # complement over all bytes includes invalid UTF-8
    cu = letters.complement(utf8=True)
    assert not cu.matches(b"\xff") and cu.matches("É".encode()) and not cu.matches(b"abc")
    assert cu.union(letters) == any_string_dfa()
    assert letters.intersect(letters.complement()).is_empty()
    assert c.complement() == letters


@_SETTINGS
@given(st.binary(max_size=6))
def test_product_semantics_on_random_bytes(b):
    a = compile_regex(r"[a-c]*b[a-c]*")
    d = compile_regex(r"(?s).{0,3}")
    assert a.intersect(d).matches(b) == (a.matches(b) and d.matches(b))
    assert a.union(d).matches(b) == (a.matches(b) or d.matches(b))
    assert a.complement().matches(b) == (not a.matches(b))


def test_empty_shortest_enumerate():
    assert compile_regex(r"[^\x00-\U0010ffff]").is_empty()
    e = compile_regex(r"a[^\s\S]b")
    assert e.is_empty() and e.n_states == 1 and e.shortest_word() is None
    assert compile_regex(r"(ab|a)*b").shortest_word() == b"b"
    assert compile_regex(r"x{3}|[yz]{2}").shortest_word() == b"yy"
    assert compile_regex(r"é+").shortest_word() == "é".encode()
    assert compile_regex(r"(a|bc){1,2}").enumerate(3) == [b"a", b"aa", b"bc", b"abc", b"bca"]
    assert compile_regex(r"").enumerate(2) == [b""]
    with pytest.raises(LimitExceeded):
        compile_regex(r"[a-z]*").enumerate(6, limit=1000)


def test_literal_and_choices():
    assert literal_dfa("héllo") == compile_regex(r"héllo")
    assert literal_dfa(b"\xff").matches(b"\xff")
    assert literal_dfa("") == compile_regex(r"")
    words = ["true", "false", "null", "nul", "ü", ""]
    d = compile_choices(words)
    assert d == compile_regex(r"true|false|null|nul|ü|")
    assert sorted(d.enumerate(10)) == sorted(w.encode() for w in words)
    trie = compile_choices(words, minimize=False)
    assert trie == d and trie.n_states >= d.n_states
    assert compile_choices([]).is_empty()


def test_pickle_and_immutability():
    d = compile_regex(r"-?(0|[1-9][0-9]*)")
    d2 = pickle.loads(pickle.dumps(d))
    assert d2 == d and np.array_equal(d2.trans, d.trans) and d2.fingerprint() == d.fingerprint()
    assert d2.trans.dtype == np.int32 and d2.trans.shape[1] == 256 and d2.accept.dtype == bool
    with pytest.raises(ValueError):
        d.trans[0, 0] = 5
    assert len({d, d2, compile_regex(r"-?(0|[1-9]\d*)", ascii=True)}) == 1


def test_fingerprint_is_stable():
    # the canonical arrays and their hash do not depend on construction order or process
    d = compile_regex(r"(a|b)c")
    assert d.fingerprint() == compile_choices(["bc", "ac"]).fingerprint()
    assert len(d.fingerprint()) == 64
    assert d.trans.tolist()[0][ord("a")] == 1 and d.n_states == 3


def test_bad_dfa_arrays():
    with pytest.raises(ConfigError):
        ByteDFA(np.zeros((2, 255), dtype=np.int32), np.zeros(2, dtype=bool))
    with pytest.raises(ConfigError):
        ByteDFA(np.full((2, 256), 2, dtype=np.int32), np.zeros(2, dtype=bool))
    with pytest.raises(ConfigError):
        ByteDFA(np.zeros((0, 256), dtype=np.int32), np.zeros(0, dtype=bool))


# --------------------------------------------------------------------------------------
# anchors, refusals, errors, caps
# --------------------------------------------------------------------------------------

@pytest.mark.parametrize("p,q", [
    (r"^abc$", r"abc"), (r"\Aabc\Z", r"abc"), (r"^a|b$", r"a|b"), (r"(^a)", r"a"),
    (r"^(a|b)$", r"a|b"), (r"^^a$$", r"a"), (r"(?m)^a$", r"a"),
])
def test_leading_and_trailing_anchors_are_stripped(p, q):
    assert compile_regex(p) == compile_regex(q)


@pytest.mark.parametrize("p,feature,column", [
    (r"a(?=b)", "lookahead", 2),
    (r"a(?!b)c", "negative lookahead", 2),
    (r"(?<=x)y", "lookbehind", 1),
    (r"(?<!x)y", "negative lookbehind", 1),
    (r"(a)\1", "backreference", 4),
    (r"(?P<n>a)(?P=n)", "backreference", 9),
    (r"a^b", "anchor '^'", 2),
    (r"ab$c", "anchor '$'", 3),
    (r"^a(^b)", "anchor '^'", 4),
    (r"(^a)*", "anchor '^'", 2),
    (r"\bfoo", "word-boundary", 1),
    (r"foo\B", "word-boundary", 4),
    (r"x\Ay", "anchor '\\\\A'", 2),
    (r"(?>ab)", "atomic group", 1),
    (r"a*+", "possessive", 3),
    (r"a{2}+", "possessive", 5),
    (r"(a)?(?(1)b|c)", "conditional", 5),
])
def test_refused_features_name_feature_and_position(p, feature, column):
    with pytest.raises(RegexError) as ei:
        compile_regex(p)
    e = ei.value
    assert isinstance(e, GrammarError)
    msg = str(e)
    assert feature in msg and "not supported" in msg and repr(p) in msg, msg
    assert e.column == column and e.line == 1, msg
    assert "^" in e.context


@pytest.mark.parametrize("p", [r"a(", r"[z-a]", r"x\\"[:-1], r"a{2,1}", r"*a", r"(?P<1>a)", r"\q"])
def test_syntax_errors_have_position(p):
    with pytest.raises(RegexError) as ei:
        compile_regex(p)
    assert "invalid regex" in str(ei.value) and ei.value.column is not None


def test_multiline_verbose_position():
    with pytest.raises(RegexError) as ei:
        compile_regex("(?x) a  # comment (?= not a lookahead\n b$ c")
    assert ei.value.line == 2 and ei.value.column == 3


def test_flags_argument():
    assert compile_regex("true", flags="i") == compile_regex("(?i)true")
    assert compile_regex("true", flags=("i",)) == compile_regex("(?i)true")
    assert compile_regex("a.b", flags="s").matches(b"a\nb")
    assert not compile_regex("a.b").matches(b"a\nb")
    assert compile_regex("a b", flags="x") == compile_regex("ab")
    with pytest.raises(ConfigError):
        compile_regex("a", flags="q")
    with pytest.raises(RegexError):
        compile_regex("a", flags="L")
    with pytest.raises(ConfigError):
        compile_regex(b"a")  # type: ignore[arg-type]


def test_case_insensitive_unicode_details():
    d = compile_regex(r"(?i)kelvin")
    assert d.matches("\u212aELVIN".encode())  # KELVIN SIGN folds to k, like re
    assert compile_regex(r"(?i)s").matches("ſ".encode())
    assert not compile_regex(r"(?ai)s").matches("ſ".encode())
    assert compile_regex(r"(?i)straße").matches("STRAẞE".encode())


def test_repeat_cap():
    with pytest.raises(LimitExceeded) as ei:
        compile_regex(r"a{20000}")
    assert ei.value.limit == "max_repeat" and "a{20000}" in str(ei.value)
    with pytest.raises(LimitExceeded) as ei:
        compile_regex(r"(a{200}){100}")
    assert ei.value.limit == "max_repeat" and "nested" in str(ei.value)
    assert compile_regex(r"(a{20}){10}", max_repeat=200).matches(b"a" * 200)
    with pytest.raises(LimitExceeded):
        compile_regex(r"(a{20}){10}", max_repeat=199)


def test_state_cap():
    with pytest.raises(LimitExceeded) as ei:
        compile_regex(r"(a|b)*a(a|b){20}")
    assert ei.value.limit == "max_dfa_states" and "(a|b)*a(a|b){20}" in str(ei.value)
    with pytest.raises(LimitExceeded):
        compile_regex(r"[ab]{0,100}c", max_states=50)
    assert compile_regex(r"[ab]{0,100}c", max_states=200).n_states == 102
    with pytest.raises(LimitExceeded):
        compile_regex(r"[a-z]+").intersect(compile_regex(r"[a-z]*x[a-z]{3}"), max_states=10)


def test_counted_repetition_semantics():
    d = compile_regex(r"(ab|c){2,4}")
    for n in range(7):
        for w in (["ab"] * n, ["c"] * n, (["ab", "c"] * n)[:n]):
            s = "".join(w)
            assert d.matches(s.encode()) == (2 <= n <= 4), s
    assert compile_regex(r"a{0}b") == compile_regex(r"b")
    assert compile_regex(r"(a?){3}") == compile_regex(r"a{0,3}")
    assert compile_regex(r"(a*){2,}") == compile_regex(r"a*")
    assert compile_regex(r"(ab){2,}") == compile_regex(r"abab(ab)*")


def _live_by_search(d: ByteDFA) -> np.ndarray:
    """The slow oracle: a state is live iff a breadth-first search from it meets an accepting state."""
    rows = d.trans.tolist()
    out = np.zeros(d.n_states, bool)
    for s0 in range(d.n_states):
        seen, todo = {s0}, [s0]
        while todo and not out[s0]:
            s = todo.pop()
            if d.accept[s]:
                out[s0] = True
            for t in set(rows[s]):
                if t >= 0 and t not in seen:
                    seen.add(t)
                    todo.append(t)
    return out


@_SETTINGS
@given(n=st.integers(1, 30), density=st.sampled_from([0.002, 0.02, 0.3, 1.0]), seed=st.integers(0, 2**32 - 1))
def test_live_states_equal_a_search_from_each_state(n, density, seed):
    """``ByteDFA.live`` (a compiled backward search over byte-range edges) is, state by
    state, whether a forward search reaches an accepting state, on random transition tables
    from nearly empty to full and accepting sets of every size."""
    rng = np.random.default_rng(seed)
    trans = np.where(rng.random((n, 256)) < density, rng.integers(0, n, size=(n, 256)), -1)
    if density == 1.0:  # runs of one target, as byte ranges make
        trans = np.repeat(rng.integers(-1, n, size=(n, 16)), 16, axis=1)
    d = ByteDFA(trans, rng.random(n) < rng.choice([0.0, 0.05, 0.5]))
    assert (d.live == _live_by_search(d)).all()
    assert d.is_empty() == (not _live_by_search(d)[0])


def _hopcroft_by_sets(ct: np.ndarray, initial: list[int]) -> list[int]:
    """The slow oracle of ``hopcroft_blocks``: Hopcroft's refinement over Python sets (the
    library's implementation until the compiled one), block id per state."""
    n = ct.shape[0]
    inv_t: list[dict[int, list[int]]] = [{} for _ in range(n)]
    for s_, c_ in zip(*np.nonzero(ct >= 0)):
        inv_t[int(ct[s_, c_])].setdefault(int(c_), []).append(int(s_))
    groups: dict[int, set[int]] = {}
    for s_, b_ in enumerate(initial):
        groups.setdefault(b_, set()).add(s_)
    blocks: list[set[int]] = list(groups.values())
    block_of = [0] * n
    for bi, b in enumerate(blocks):
        for s in b:
            block_of[s] = bi
    work = set(range(len(blocks)))
    while work:
        a = work.pop()
        by_class: dict[int, list[int]] = {}
        for t in blocks[a]:
            for c, srcs in inv_t[t].items():
                by_class.setdefault(c, []).extend(srcs)
        for x in by_class.values():
            touched: dict[int, list[int]] = {}
            for s in x:
                touched.setdefault(block_of[s], []).append(s)
            for b, members in touched.items():
                blk = blocks[b]
                if len(members) == len(blk):
                    continue
                new = set(members)
                blk -= new
                nb = len(blocks)
                blocks.append(new)
                for s in new:
                    block_of[s] = nb
                if b in work or len(new) <= len(blk):
                    work.add(nb)
                else:
                    work.add(b)
    return block_of


@_SETTINGS
@given(n=st.integers(1, 40), k=st.integers(1, 6), density=st.sampled_from([0.3, 0.7, 1.0]),
       seed=st.integers(0, 2**32 - 1))
def test_compiled_hopcroft_equals_the_set_version(n, k, density, seed):
    """``hopcroft_blocks`` (arrays, a refinable partition) splits a trimmed automaton into
    the same blocks as Hopcroft over Python sets, on random class-level tables whose states
    are all live (the contract: the dead sink is implicit)."""
    from constrain.grammar.dfa_kernels import hopcroft_blocks, live_states

    rng = np.random.default_rng(seed)
    ct = np.where(rng.random((n, k)) < density, rng.integers(0, n, size=(n, k)), -1).astype(np.int64)
    acc = rng.random(n) < 0.3
    acc[rng.integers(0, n)] = True
    assume(live_states(ct.astype(np.int32), acc).all())
    got = hopcroft_blocks(ct, acc.astype(np.int64)).tolist()
    want = _hopcroft_by_sets(ct, acc.astype(int).tolist())
    # the same partition: block ids pair one to one
    assert len(set(got)) == len(set(want)) == len(set(zip(got, want)))


@_SETTINGS
@given(n=st.integers(1, 30), distinct=st.integers(1, 40), seed=st.integers(0, 2**32 - 1))
def test_byte_classes_equal_grouping_columns_by_their_bytes(n, distinct, seed):
    """Compiled byte classes (a column hash, then an exact compare) group bytes exactly as
    keying each column's bytes in a dict does, classes numbered by their smallest byte."""
    from constrain.grammar.dfa_kernels import byte_classes_of

    rng = np.random.default_rng(seed)
    trans = rng.integers(-1, n, size=(n, distinct)).astype(np.int32)[:, rng.integers(0, distinct, size=256)]
    ids: dict[bytes, int] = {}
    want = [ids.setdefault(np.ascontiguousarray(trans[:, b]).tobytes(), len(ids)) for b in range(256)]
    cls, reps = byte_classes_of(trans)
    assert cls.tolist() == want
    assert reps.tolist() == [want.index(c) for c in range(max(want) + 1)]
    assert ByteDFA(trans, np.zeros(n, bool)).n_byte_classes == len(ids)


def _product_by_pairs(a: ByteDFA, b: ByteDFA, both: bool) -> ByteDFA:
    """The slow oracle of ``ByteDFA.intersect`` / ``union`` (a compiled BFS over class pairs):
    the product over all 256 bytes with a Python dict of state pairs (-1: that side died)."""
    ids = {(0, 0): 0}
    order = [(0, 0)]
    rows, acc = [], []
    i = 0
    while i < len(order):
        x, y = order[i]
        i += 1
        ax = bool(a.accept[x]) if x >= 0 else False
        by = bool(b.accept[y]) if y >= 0 else False
        acc.append((ax and by) if both else (ax or by))
        row = []
        for c in range(256):
            nx = int(a.trans[x, c]) if x >= 0 else -1
            ny = int(b.trans[y, c]) if y >= 0 else -1
            if (nx < 0 or ny < 0) if both else (nx < 0 and ny < 0):
                row.append(-1)
                continue
            row.append(ids.setdefault((nx, ny), len(order)))
            if row[-1] == len(order):
                order.append((nx, ny))
        rows.append(row)
    return ByteDFA(np.asarray(rows, dtype=np.int32), np.asarray(acc, dtype=bool)).minimize()


def _random_dfa(rng, n: int) -> ByteDFA:
    # runs of one target over 16-byte blocks (as byte ranges make), some dead cells
    trans = np.repeat(np.where(rng.random((n, 16)) < 0.3, -1, rng.integers(0, n, size=(n, 16))), 16, axis=1)
    return ByteDFA(trans, rng.random(n) < 0.4)


@_SETTINGS
@given(na=st.integers(1, 12), nb=st.integers(1, 12), seed=st.integers(0, 2**32 - 1),
       words=st.lists(st.binary(max_size=5).map(lambda w: bytes(x & 0x3F for x in w)), max_size=20))
def test_products_equal_the_pair_oracle(na, nb, seed, words):
    """Intersection and union (the compiled product over joint byte classes) are the minimal
    automata the all-bytes pair BFS builds, and accept a word iff both / either side does."""
    rng = np.random.default_rng(seed)
    a, b = _random_dfa(rng, na), _random_dfa(rng, nb)
    for both, got in ((True, a.intersect(b)), (False, a.union(b))):
        assert got == _product_by_pairs(a, b, both)
        for w in words:
            assert got.matches(w) == ((a.matches(w) and b.matches(w)) if both else (a.matches(w) or b.matches(w)))
