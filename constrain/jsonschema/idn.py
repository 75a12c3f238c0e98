"""``idn-hostname``: a sound subset of IDNA2008 (RFC 5890–5893) host names as a byte DFA.

Every string the DFA accepts passes ``idna.encode`` (what ``jsonschema`` checks) and is valid
for the JSON-Schema-Test-Suite.  What it accepts, besides the ASCII host names of the
``hostname`` DFA:

* labels separated by ``.`` or the ideographic full stops U+3002 / U+FF0E / U+FF61;
* ASCII labels exactly as the ``hostname`` DFA admits them (with its length budget), and
  U-labels of at most :data:`U_LABEL_CPS` code points: lower-case LDH plus the code points of
  ``_idn_table`` (IDNA2008 PVALID, see ``tools/gen_idn_table.py``) inside :data:`BLOCKS`.  A
  U-label is charged ``5 + DIGITS * U_LABEL_CPS <= 63`` octets (``DIGITS``: the most Punycode
  digits one delta of such a label can take, tested) against the name's 253, from the budget
  left at its start rounded down to a multiple of 64 (so at most 3 U-labels per name);
* no right-to-left code points (bidi R, AL, AN), so no name is a "bidi domain name" and the
  RFC 5893 rule never applies;
* NFC by construction: a combining mark only right after a base whose decomposition has no
  marks, never two marks in a row, and no code point that is the second half of a canonical
  composition (nor conjoining jamo); no label starts with a mark;
* the context rules: ZWNJ/ZWJ only right after a virama; U+00B7 only in ``l·l``; U+0375 only
  before a Greek letter; U+30FB only in a label that also has Hiragana, Katakana or Han.

Left out (sound): A-labels (``xn--``: need Punycode decoding), right-to-left labels, code points
outside the BMP, Hebrew GERESH/GERSHAYIM and Arabic-Indic digits (right-to-left), ZWNJ by its
joining-type rule, consecutive marks, long U-labels, IDN names of more than 4 labels.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from constrain.grammar.dfa import ByteDFA

DIGITS = 6  # most Punycode digits of one delta in a U-label of U_LABEL_CPS BMP code points (tested)
U_LABEL_CPS = 9  # 5 + DIGITS * 9 = 59 <= 63 octets
_U_GRAIN = 64  # a U-label may spend the budget left at its start rounded down to a multiple of this


def _punycode_digits(q: int) -> int:
    """Most base-36 digits RFC 3492 writes for a delta <= q, over every bias."""
    best = 0
    for bias in range(0, 4000):
        n, k, x = 0, 36, q
        while True:
            t = max(1, min(26, k - bias))
            n += 1
            if x < t:
                break
            x = (x - t) // (36 - t)
            k += 36
        best = max(best, n)
    return best


def max_delta(n_cps: int) -> int:
    """A bound on every Punycode delta of a label of ``n_cps`` BMP code points: the code point
    step times (h + 1) plus the positions skipped on both sides, ``0x10000 * (L + 1) + 2L + 1``."""
    return 0x10000 * (n_cps + 1) + 2 * n_cps + 1

_ASCII = {**{b: "LA" for b in range(ord("a"), ord("z") + 1)}, ord("l"): "LL",
          **{b: "UP" for b in range(ord("A"), ord("Z") + 1)}, **{b: "DG" for b in range(ord("0"), ord("9") + 1)},
          ord("-"): "HY", ord("."): "DOT"}
_ASCII_CLASSES = ("LA", "LL", "UP", "DG", "HY")
#: the BMP blocks whose code points of ``_idn_table`` the DFA admits (a few blocks keep the DFA
#: small: each one adds its UTF-8 trie nodes times the U-label states): Latin, Greek, Cyrillic,
#: Armenian … (2-byte UTF-8), Devanagari, Thai, Tibetan U+0F0B, CJK symbols, kana and
#: ideographs, Hangul syllables
BLOCKS = ((0x80, 0x7FF), (0x900, 0x97F), (0xE00, 0xE7F), (0xF0B, 0xF0B), (0x3000, 0x9FFF), (0xAC00, 0xD7A3))


def _table() -> dict[str, list[tuple[int, int]]]:
    from constrain.jsonschema._idn_table import TABLE

    out = {}
    for k, parts in TABLE.items():
        if k == "KD":  # U+30FB needs a Hiragana/Katakana/Han code point somewhere in its label: left out
            continue
        rs = []
        for tok in "".join(parts).split():
            a, _, b = tok.partition("-")
            a, b = int(a, 16), int(b or a, 16)
            if k in ("ZJ", "MD", "KR", "ID"):
                rs.append((a, b))
                continue
            for x, y in BLOCKS:
                if max(a, x) <= min(b, y):
                    rs.append((max(a, x), min(b, y)))
        out[k] = sorted(rs)
    return out


_PLAIN = ("LA", "UP", "DG", "PO", "PG", "PH")


def _context(prev, c):
    """The kind of the previous code point after ``c`` (None: ``c`` may not follow ``prev``)."""
    if prev == "md" and c != "LL":
        return None
    if prev == "kr" and c not in ("PG", "NG"):
        return None
    if c in ("MK", "VR"):
        if prev not in ("plain", "l"):
            return None
        return "virama" if c == "VR" else "other"
    if c == "ZJ":
        return "other" if prev == "virama" else None
    if c == "MD":
        return "md" if prev == "l" else None
    if c == "KR":
        return "kr"
    if c == "LL":
        return "l"
    return "plain" if c in _PLAIN else "other"  # HY, decomposable bases


def _u_cost(k: int) -> int:
    """Most octets of the A-label of a U-label of k code points ("xn--", delimiter, 6 digits each)."""
    return 5 + 6 * k


def _step(s, c):
    """Class-level transition (None: rejected).

    ``("A", long, r, l, h, up, pl)``: an ASCII label so far, with the ``hostname`` DFA's budget
    state ``(long, r, l, h)`` (see ``formats._hostname_dfa``), ``up``: an upper-case letter in
    it, ``pl``: the last character is ``l``.  ``("U", rf, k, h3, lh, prev)``: a U-label of ``k``
    code points that may spend ``rf`` octets (the name's budget at the label start, rounded down
    to a multiple of 64), ``h3``: its 3rd code point is a hyphen, ``lh``: its last one is, ``prev``
    the context kind of the last one."""
    from constrain.jsonschema.formats import _HOST_GRAIN, _HOST_LABEL, _HOST_SHORT

    short = _HOST_SHORT
    sep = c in ("DOT", "ID")
    if s[0] == "A":
        _, long_, r, l, h, up, pl = s
        if sep:
            if l == 0 or h:
                return None
            rn = r - (l - short - 1) - 1 if long_ else r - 1
            if c == "ID":  # keeps the states after an ideographic stop few (sound: less budget)
                rn = (rn // _HOST_GRAIN) * _HOST_GRAIN
            return None if rn < 0 else ("A", False, rn, 0, False, False, False)
        if c in _ASCII_CLASSES:
            hyphen = c == "HY"
            if l >= _HOST_LABEL or (hyphen and (l == 0 or (l == 3 and h))):
                return None
            if long_:
                if l + 1 - short - 1 > r:
                    return None
                nxt = (True, r, l + 1, hyphen)
            elif r == 0:
                return None
            elif l + 1 <= short:
                nxt = (False, r - 1, l + 1, hyphen)
            else:
                nxt = (True, ((r - 1) // _HOST_GRAIN) * _HOST_GRAIN, l + 1, hyphen)
            if l + 1 >= U_LABEL_CPS:  # can no longer become a U-label: the flags do not matter
                return ("A", *nxt, False, False)
            return ("A", *nxt, up or c == "UP", c == "LL")
        # the first non-ASCII code point: the label becomes a U-label
        if up or l + 1 > U_LABEL_CPS:
            return None
        prev = "start" if l == 0 else ("l" if pl else ("other" if h else "plain"))
        pn = _context(prev, c)
        if pn is None:
            return None
        budget = r + short + 1 if long_ else r + l  # a lower bound of the budget at the label start
        rf = (budget // _U_GRAIN) * _U_GRAIN
        if _u_cost(l + 1) > min(rf, _HOST_LABEL):
            return None
        return ("U", rf, l + 1, False, False, pn)
    _, rf, k, h3, lh, prev = s
    if sep:
        if lh or prev in ("md", "kr"):
            return None
        rn = rf - _u_cost(k) - 1
        if c == "ID":
            rn = (rn // _HOST_GRAIN) * _HOST_GRAIN
        return None if rn < 0 else ("A", False, rn, 0, False, False, False)
    if c == "UP" or _u_cost(k + 1) > min(rf, _HOST_LABEL):
        return None
    hy = c == "HY"
    if hy and k == 3 and h3:
        return None
    pn = _context(prev, c)
    if pn is None:
        return None
    return ("U", rf, k + 1, h3 or (k == 2 and hy), hy, pn)


def _accepting(s) -> bool:
    if s[0] == "A":
        return s[3] > 0 and not s[4]
    return not s[4] and s[5] not in ("md", "kr")


def _utf8_trie(table):
    """Byte trie of the BMP classes: nodes are tuples over the next byte of ('c', class) |
    ('n', node) | None; returns (root row over lead bytes, nodes)."""
    cls = {}
    for k, rs in table.items():
        for a, b in rs:
            for cp in range(a, b + 1):
                cls[cp] = k
    nodes: list[tuple] = []
    ids: dict[tuple, int] = {}

    def intern(row):
        row = tuple(row)
        if all(x is None for x in row):
            return None
        i = ids.get(row)
        if i is None:
            i = ids[row] = len(nodes)
            nodes.append(row)
        return ("n", i)

    def leaf(cp):
        k = cls.get(cp)
        return None if k is None else ("c", k)

    root = {}
    for b1 in range(0xC2, 0xE0):
        root[b1] = intern(leaf(((b1 & 0x1F) << 6) | (b2 & 0x3F)) for b2 in range(0x80, 0xC0))
    for b1 in range(0xE0, 0xF0):
        row2 = []
        for b2 in range(0x80, 0xC0):
            if (b1 == 0xE0 and b2 < 0xA0) or (b1 == 0xED and b2 >= 0xA0):
                row2.append(None)
                continue
            base = ((b1 & 0x0F) << 12) | ((b2 & 0x3F) << 6)
            row2.append(intern(leaf(base | (b3 & 0x3F)) for b3 in range(0x80, 0xC0)))
        root[b1] = intern(row2)
    return root, nodes


@lru_cache(maxsize=1)
def idn_hostname_dfa() -> ByteDFA:
    """The minimal DFA of the host names above (ASCII names exactly as ``hostname`` accepts them)."""
    from constrain.jsonschema.formats import _HOST_TOTAL

    table = _table()
    root, nodes = _utf8_trie(table)
    start = ("A", False, _HOST_TOTAL, 0, False, False, False)
    nonascii = sorted(table)
    memo: dict = {}

    def step(s, c):
        key = (s, c)
        if key not in memo:
            memo[key] = _step(s, c)
        return memo[key]

    # byte-level states: ("s", class state) at a code point boundary, or ("m", row, node) inside
    # a multi-byte code point, where row = the class state's targets for the non-ASCII classes
    ids: dict = {}
    order: list = []
    rows: list = []

    def sid(x):
        i = ids.get(x)
        if i is None:
            i = ids[x] = len(order)
            order.append(x)
        return i

    sid(("s", start))
    i = 0
    while i < len(order):
        x = order[i]
        i += 1
        row = np.full(256, -1, dtype=np.int32)
        if x[0] == "s":
            s = x[1]
            for b, c in _ASCII.items():
                t = step(s, c)
                if t is not None:
                    row[b] = sid(("s", t))
            targets = tuple(step(s, c) for c in nonascii)
            if any(t is not None for t in targets):
                for b1, ent in root.items():
                    if ent is not None:
                        row[b1] = sid(("m", targets, ent[1]))
        else:
            _, targets, n = x
            tmap = dict(zip(nonascii, targets))
            for j, ent in enumerate(nodes[n]):
                if ent is None:
                    continue
                if ent[0] == "c":
                    t = tmap[ent[1]]
                    if t is not None:
                        row[0x80 + j] = sid(("s", t))
                else:
                    row[0x80 + j] = sid(("m", targets, ent[1]))
        rows.append(row)
    acc = np.array([x[0] == "s" and _accepting(x[1]) for x in order], dtype=bool)
    return ByteDFA(np.stack(rows), acc).minimize()
