"""String values: length automata over code points, and the JSON encoding of a content DFA.

Constraints on a string (``minLength``, ``pattern``, ``format``, ``const``) are about its
*decoded* value, so the compiler builds a DFA over the UTF-8 bytes of that value and then
:func:`json_string_dfa` turns it into a DFA over the bytes of the quoted JSON literal:

* a character other than ``"``, ``\\`` and the controls U+0000..U+001F is written as itself;
* ``\\" \\\\ \\/ \\b \\f \\n \\r \\t`` are decoded and stepped through the content DFA exactly;
* ``\\u00XX`` is accepted for the controls (U+0000..U+001F), stepped exactly; other ``\\u``
  escapes are not accepted (a model writes those characters raw; JSON allows both, so this
  only narrows the *spelling*, never the set of values).

Exactness per value: every string value the content DFA accepts has at least one accepted
spelling (the canonical one ``json.dumps(..., ensure_ascii=False)`` writes), and every
accepted spelling decodes to a value the content DFA accepts.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from constrain.errors import LimitExceeded
from constrain.grammar.dfa import ByteDFA
from constrain.grammar.regex import any_char_dfa, literal_dfa

_SHORT = {ord('"'): 0x22, ord("\\"): 0x5C, ord("/"): 0x2F, ord("b"): 0x08, ord("f"): 0x0C, ord("n"): 0x0A,
          ord("r"): 0x0D, ord("t"): 0x09}
_HEX = b"0123456789abcdefABCDEF"
_SHORT_CH = np.array(list(_SHORT), dtype=np.int64)
_SHORT_VAL = np.array(list(_SHORT.values()), dtype=np.int64)
_HEX_CH = np.frombuffer(_HEX, dtype=np.uint8).astype(np.int64)
_HEX_VAL = np.array([int(chr(h), 16) for h in _HEX], dtype=np.int64)
#: the characters a JSON string may spell in more than one way (an escape or itself) or only
#: escaped: a literal without any of them has exactly one spelling
_ESCAPABLE = frozenset(range(0x20)) | {0x22, 0x5C, 0x2F}


def length_dfa(lo: int, hi: int | None, *, max_count: int = 4096) -> ByteDFA:
    """Strings of ``lo``..``hi`` code points (``hi=None``: no upper bound), as UTF-8 bytes."""
    top = lo if hi is None else hi
    if top > max_count:
        raise LimitExceeded(f"a length automaton for {top} code points is too large", limit="max_length_states",
                            value=max_count)
    return _length_dfa(lo, hi)


@lru_cache(maxsize=256)
def _length_dfa(lo: int, hi: int | None) -> ByteDFA:
    """Chained copies of the one-character DFA (start 0, one accepting state, continuation
    states between); copy c's accepting state is copy c+1's start.  With ``hi`` given the
    chain is already minimal (states differ in how many characters remain), so it is built
    with numpy and not minimized; ``hi=None`` ends in a one-character loop."""
    one = any_char_dfa()
    n1 = one.n_states
    acc = [i for i in range(n1) if one.accept[i]]
    assert len(acc) == 1 and acc[0] != 0
    fin = acc[0]
    inner = [i for i in range(n1) if i not in (0, fin)]
    k = len(inner)
    width = k + 1
    copies = lo if hi is None else hi
    n = copies * width + 1 + (k if hi is None else 0)
    trans = np.full((n, 256), -1, dtype=np.int32)
    accept = np.zeros(n, dtype=bool)
    t = one.trans
    src = [0] + inner

    def build(base: int, nxt: int) -> None:
        local = np.full(n1, -1, dtype=np.int64)
        local[0] = base
        local[fin] = nxt
        local[inner] = base + 1 + np.arange(k)
        rows = t[src]
        trans[local[src]] = np.where(rows >= 0, local[np.maximum(rows, 0)], -1)

    for c in range(copies):
        build(c * width, (c + 1) * width)
    last = copies * width
    if hi is None:
        build(last, last)
        accept[last] = True
        return ByteDFA(trans, accept).minimize()
    accept[np.arange(lo, hi + 1) * width] = True
    return ByteDFA(trans, accept)


#: content DFAs at least this large have their JSON-string form kept on disk (building it is
#: a Python loop per content state: ~0.5 s for the email format's 3,178 states)
_DISK_MIN_STATES = 256


def json_string_dfa(content: ByteDFA) -> ByteDFA:
    """The quoted JSON literals whose decoded value ``content`` accepts (see module docstring)."""
    return _json_string_dfa(content)


def json_literal_dfa(text: str) -> ByteDFA | None:
    """The JSON spellings of the one string ``text``, when there is exactly one (``"`` +
    ``text`` + ``"``: no quote, backslash, slash or control character in it), else ``None``
    (use :func:`json_string_dfa` of its literal DFA).  Object keys and enum strings are
    nearly always such literals; the general construction costs ~0.3 ms each."""
    if any(ord(c) in _ESCAPABLE for c in text):
        return None
    return literal_dfa('"' + text + '"')


@lru_cache(maxsize=1024)
def _json_string_dfa(content: ByteDFA) -> ByteDFA:
    if content.n_states < _DISK_MIN_STATES:
        return _json_string_build(content)
    from constrain.grammar.dfa import cached_dfa, source_digest

    key = f"{content.fingerprint()[:32]}-{source_digest('constrain.jsonschema.strings', 'constrain.grammar.dfa')}"
    return cached_dfa("jsonstr", key, lambda: _json_string_build(content))


def _json_string_build(content: ByteDFA) -> ByteDFA:
    ct = content.trans
    m = content.n_states
    # state layout: 0 = before the opening quote; 1 = after the closing quote;
    # then per content state s: main, after '\', after '\u', '\u0', '\u00', '\u000'/'\u001'
    per = 7
    off = 2
    n = off + per * m
    trans = np.full((n, 256), -1, dtype=np.int32)
    accept = np.zeros(n, dtype=bool)
    accept[1] = True
    trans[0, ord('"')] = off  # content start state 0
    raw = np.ones(256, dtype=bool)
    raw[:0x20] = False
    raw[ord('"')] = False
    raw[ord("\\")] = False
    main = off + per * np.arange(m)
    # raw bytes: follow the content DFA
    mapped = np.where(ct >= 0, off + per * ct, -1)
    trans[main[:, None], np.arange(256)[None, :]] = np.where(raw[None, :], mapped, -1)
    # the escapes, for every content state and escape at once (a loop per state cost ~0.3 ms a
    # string, one per escape character ~0.2 ms)
    def to(d):  # content states (or -1) -> their main rows
        return np.where(d >= 0, off + per * d, -1)

    trans[main[np.asarray(content.accept, bool)], ord('"')] = 1
    trans[main, ord("\\")] = main + 1
    trans[(main + 1)[:, None], _SHORT_CH[None, :]] = to(ct[:, _SHORT_VAL])
    trans[main + 1, ord("u")] = main + 2
    trans[main + 2, ord("0")] = main + 3
    trans[main + 3, ord("0")] = main + 4
    trans[main + 4, ord("0")] = main + 5
    trans[main + 4, ord("1")] = main + 6
    trans[(main + 5)[:, None], _HEX_CH[None, :]] = to(ct[:, _HEX_VAL])
    trans[(main + 6)[:, None], _HEX_CH[None, :]] = to(ct[:, 0x10 + _HEX_VAL])
    return ByteDFA(trans, accept).minimize()
