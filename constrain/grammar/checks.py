"""Value checks: constraints a CFG cannot carry, enforced next to the grammar, token by token.

``uniqueItems`` over items with infinitely many values (free strings, patterns) is not
context-free: the grammar says "an array of strings" and :class:`UniqueItemsCheck` rejects the
byte that would close an item equal to an earlier item of the same array.  It is attached to
the :class:`~constrain.grammar.ir.Grammar` (``value_check``, part of its fingerprint) and applied
by the :class:`~constrain.engine.matcher.Matcher` on every advance and on every mask
(:meth:`UniqueItemsCheck.restrict`), so mask and ``accept_token`` agree.

Exactness rests on two facts the schema compiler proves before it attaches a check
(:mod:`constrain.jsonschema.uniquecheck`):

* **Which arrays** must be unique is a function of the JSON *path* alone: the compiler builds an
  automaton over paths (object keys, array indices) whose states are the sets of schema
  shapes a value at that path may have, and refuses when one state mixes arrays that need the
  check with arrays that allow duplicates.  The tracker below follows that automaton along the
  output's structure, so whichever parse the output has, its arrays at a checked state need
  unique items.
* **No dead ends**: every item of a checked array is a string whose content automaton has
  infinitely many completions from every live state.  A partial item can then always be
  finished with a value not used yet, so the only prefixes the check removes are those that
  *close* a duplicate — which is exactly what this tracker rejects (a string item ends at
  its closing quote, unambiguously).

The tracker reads structure only (brackets, braces, colons, commas, quotes and escapes); the
grammar already guarantees the output is a prefix of well-formed JSON.  Its states are
immutable tuples, so a matcher rolls back or copies by keeping references.
"""

from __future__ import annotations

import hashlib
import json
import threading

import numpy as np

_QUOTE, _BSLASH = 0x22, 0x5C
_LBRACE, _RBRACE, _LBRACK, _RBRACK, _COLON, _COMMA = 0x7B, 0x7D, 0x5B, 0x5D, 0x3A, 0x2C

# a tracker state: (stack, in_string, escaped, buffer, role)
#   stack: tuple of frames, innermost last:
#     ("o", path_state, key, expecting_value)       an object
#     ("a", path_state, index, used)                 an array; used: frozenset of item values, or
#                                                    None when this array needs no check
#   buffer: bytes of the string being read when they matter (a key of a tracked object, an item
#           of a checked array), else None; role: "k" (a key) or "v" (a value)
_START = ((), False, False, None, "v")


class UniqueItemsCheck:
    """Pairwise distinct string items for the arrays at the checked states of a path automaton.

    Path states are ints; ``-1`` is "nothing below is checked".  For state ``s``:
    ``checked[s]`` says whether an array there needs distinct items; ``prefix[s]`` /
    ``rest[s]`` give the state of item ``i`` (``i < len(prefix[s])``) / of later items;
    ``keys[s]`` the state of a member by name and ``other[s]`` the state of any other name.
    ``where`` is the JSON pointers of the ``uniqueItems`` keywords (for messages).
    """

    kind = "uniqueItems"

    def __init__(self, checked, prefix, rest, keys, other, where=()):
        self.checked = tuple(bool(x) for x in checked)
        self.prefix = tuple(tuple(int(y) for y in x) for x in prefix)
        self.rest = tuple(int(x) for x in rest)
        self.keys = tuple(dict(x) for x in keys)
        self.other = tuple(int(x) for x in other)
        self.where = tuple(where)
        self._vocab: dict = {}
        self._lock = threading.Lock()
        h = hashlib.sha256(b"unique-items-check-v1")
        h.update(repr((self.checked, self.prefix, self.rest, tuple(sorted(k.items()) for k in self.keys),
                       self.other)).encode())
        self.fingerprint = h.hexdigest()[:32]

    def __reduce__(self):
        return (UniqueItemsCheck, (self.checked, self.prefix, self.rest, self.keys, self.other, self.where))

    def __repr__(self) -> str:
        return f"UniqueItemsCheck({len(self.checked)} path states, at {', '.join(self.where) or '?'})"

    # ---------------------------------------------------------------- tracker
    def initial(self):
        return _START

    def _child(self, stack) -> int:
        """Path state of a value that starts now (the root, an item, a member's value)."""
        if not stack:
            return 0
        f = stack[-1]
        s = f[1]
        if s < 0:
            return -1
        if f[0] == "a":
            p = self.prefix[s]
            return p[f[2]] if f[2] < len(p) else self.rest[s]
        return self.keys[s].get(f[2], self.other[s]) if f[2] is not None else -1

    def feed(self, st, data: bytes):
        """The state after ``data``, or ``None`` when ``data`` closes an item equal to an earlier
        item of its (checked) array."""
        stack, in_str, esc, buf, role = st
        i, n = 0, len(data)
        while i < n:
            if in_str:
                # skip to the next quote or backslash (string content is most of the bytes)
                j = i
                while j < n:
                    c = data[j]
                    if esc:
                        esc = False
                    elif c == _BSLASH:
                        esc = True
                    elif c == _QUOTE:
                        break
                    j += 1
                if buf is not None:
                    buf += data[i:j]
                if j == n:
                    break
                in_str = False
                i = j + 1
                if role == "k":
                    f = stack[-1]
                    key = _decode(buf) if buf is not None else None
                    stack = stack[:-1] + (("o", f[1], key, False),)
                elif buf is not None:
                    f = stack[-1]
                    v = _decode(buf)
                    if v in f[3]:
                        return None
                    stack = stack[:-1] + (("a", f[1], f[2], f[3] | {v}),)
                buf = None
                continue
            c = data[i]
            i += 1
            if c == _QUOTE:
                in_str, esc = True, False
                top = stack[-1] if stack else None
                if top is not None and top[0] == "o" and not top[3]:
                    role = "k"
                    buf = b"" if top[1] >= 0 else None
                else:
                    role = "v"
                    buf = b"" if top is not None and top[0] == "a" and top[3] is not None else None
            elif c == _LBRACE:
                stack = stack + (("o", self._child(stack), None, False),)
            elif c == _LBRACK:
                s = self._child(stack)
                stack = stack + (("a", s, 0, frozenset() if s >= 0 and self.checked[s] else None),)
            elif c == _RBRACE or c == _RBRACK:
                stack = stack[:-1]
            elif c == _COLON:
                f = stack[-1]
                stack = stack[:-1] + (("o", f[1], f[2], True),)
            elif c == _COMMA:
                f = stack[-1]
                if f[0] == "a":
                    stack = stack[:-1] + (("a", f[1], f[2] + 1, f[3]),)
                else:
                    stack = stack[:-1] + (("o", f[1], None, False),)
        return (stack, in_str, esc, buf, role)

    # ---------------------------------------------------------------- masks
    def _tables(self, vocab):
        """Per vocabulary: packed words of the tokens that can close an item (a quote), and of
        those that could open an array and close two items of it (``[`` and four quotes)."""
        key = vocab.fingerprint
        t = self._vocab.get(key)
        if t is None:
            with self._lock:
                t = self._vocab.get(key)
                if t is None:
                    n = vocab.n_vocab
                    nw = (n + 31) // 32
                    q = np.zeros(nw * 32, bool)
                    q2 = np.zeros(nw * 32, bool)
                    for i, b in enumerate(vocab.all_token_bytes[:n]):
                        if b and _QUOTE in b:
                            q[i] = True
                            q2[i] = b.count(b'"') >= 4 and _LBRACK in b
                    t = (_pack(q), _pack(q2), vocab.all_token_bytes)
                    self._vocab[key] = t
        return t

    def restrict(self, st, words: np.ndarray, vocab) -> None:
        """Clear, in ``words`` (``uint32``, the grammar's mask after the output whose tracker
        state is ``st``), every token that would close a duplicate item.  Only tokens with a
        quote can (two items and a ``[`` when no checked array is open); each is run through
        the tracker, or, inside an item, one quote and no backslash: compared directly."""
        quote_w, open2_w, tb = self._tables(vocab)
        stack, in_str, esc, buf, role = st
        armed = bool(stack) and any(f[0] == "a" and f[3] is not None for f in stack)
        cand = words & (quote_w if armed else open2_w)
        nz = np.flatnonzero(cand).tolist()
        if not nz:
            return
        used = stack[-1][3] if in_str and role == "v" and buf is not None else None
        for w in nz:
            bits = int(cand[w])
            while bits:
                b = (bits & -bits).bit_length() - 1
                bits &= bits - 1
                t = tb[w * 32 + b]
                if used is not None and not esc and t.count(b'"') == 1 and _BSLASH not in t:
                    if _decode(buf + t[:t.index(b'"')]) not in used:
                        continue
                elif self.feed(st, t) is not None:
                    continue
                words[w] &= np.uint32(~(1 << b) & 0xFFFFFFFF)


def _decode(raw: bytes) -> str:
    """The value of a JSON string literal's content (escapes only where there are some)."""
    return json.loads(b'"' + raw + b'"') if _BSLASH in raw else raw.decode("utf-8", "surrogatepass")


def _pack(flags: np.ndarray) -> np.ndarray:
    return np.packbits(flags.reshape(-1, 32)[:, ::-1], axis=1).view(">u4").astype(np.uint32).ravel()
