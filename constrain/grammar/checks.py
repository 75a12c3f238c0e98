"""Value checks: constraints a CFG cannot carry, enforced next to the grammar, token by token.

Two JSON constraints are not context-free in general, and the schema compiler hands both to
:class:`DistinctCheck`:

* ``uniqueItems`` over items with infinitely many values (free strings, patterns): the grammar
  says "an array of strings" and the check rejects the byte that closes an item equal to an
  earlier item of the same array;
* objects in ``property_order="any"`` with more declared names than the grammar can track as a
  set (``MAX_ANY_ORDER``): the grammar says "members, each one of these names or an undeclared
  one" and the check rejects a repeated key, a ``}`` while a required name is missing, and a
  key that can no longer become an unused name.

The check is attached to the :class:`~constrain.grammar.ir.Grammar` (``value_check``, part of
its fingerprint) and applied by the :class:`~constrain.engine.matcher.Matcher` on every advance
and on every mask (:meth:`DistinctCheck.restrict`), so mask and ``accept_token`` agree.

Exactness rests on two facts the schema compiler proves before it attaches a check
(:mod:`constrain.jsonschema.uniquecheck`):

* **Which arrays and objects** are checked is a function of the JSON *path* alone: the compiler
  builds an automaton over paths (object keys, array indices) whose states are the sets of
  schema shapes a value at that path may have, and refuses (arrays) or falls back to schema
  order (objects) when one state mixes checked shapes with others.  The tracker below follows
  that automaton along the output's structure, so whichever parse the output has, what it
  checks is required there.
* **No dead ends**: every item of a checked array is a string whose content automaton has
  infinitely many completions from every live state, and so is every undeclared name of a
  checked object.  A partial item can then always be finished with a value not used yet, so
  the only array prefixes the check removes are those that *close* a duplicate (a string item
  ends at its closing quote, unambiguously).  Declared names are finitely many: a partial key
  is kept while it is a prefix of an unused one (or of an undeclared name), and a ``,`` while
  some name is left.

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
#     ("o", path_state, key, expecting_value, used)  an object; used: frozenset of its keys when
#                                                    the object is checked, else None
#     ("a", path_state, index, used)                 an array; used: frozenset of item values, or
#                                                    None when this array needs no check
#   buffer: bytes of the string being read when they matter (a key of a tracked object, an item
#           of a checked array), else None; role: "k" (a key) or "v" (a value)
_START = ((), False, False, None, "v")


#: JSON's short escapes, by the character they stand for
_SHORT_ESC = {'"': b'\\"', "\\": b"\\\\", "/": b"\\/", "\b": b"\\b", "\f": b"\\f", "\n": b"\\n", "\r": b"\\r",
              "\t": b"\\t"}


class DistinctCheck:
    """Distinct array items and object keys at the checked states of a path automaton.

    Path states are ints; ``-1`` is "nothing below is checked".  For state ``s``:
    ``checked[s]`` says whether an array there needs distinct items; ``bags[s]`` is ``None`` or,
    for a checked object, ``(names, required, open_names)``: its declared names, the required
    ones, and whether undeclared names are allowed; ``finite[s]`` is ``None`` (items with
    infinitely many values) or the set of values every item of a checked array there takes; ``prefix[s]`` / ``rest[s]`` give the state
    of item ``i`` (``i < len(prefix[s])``) / of later items; ``keys[s]`` the state of a member by
    name and ``other[s]`` the state of any other name.  ``where`` holds the JSON pointers of
    what is checked (for messages).
    """

    def __init__(self, checked, prefix, rest, keys, other, where=(), bags=None, finite=None, strings=None):
        self.checked = tuple(bool(x) for x in checked)
        self.prefix = tuple(tuple(int(y) for y in x) for x in prefix)
        self.rest = tuple(int(x) for x in rest)
        self.keys = tuple(dict(x) for x in keys)
        self.other = tuple(int(x) for x in other)
        self.where = tuple(where)
        bags = bags if bags is not None else [None] * len(self.checked)
        self.bags = tuple(None if b is None else (frozenset(b[0]), frozenset(b[1]), bool(b[2])) for b in bags)
        finite = finite if finite is not None else [None] * len(self.checked)
        self.finite = tuple(None if f is None else frozenset(f) for f in finite)
        strings = strings if strings is not None else [None] * len(self.checked)
        self.strings = tuple(None if x is None else (x[0], int(x[1])) for x in strings)
        self._counters: dict = {}  # path state -> _count_spec
        self._slack = None
        self._vocab: dict = {}
        self._lock = threading.Lock()
        h = hashlib.sha256(b"distinct-check-v1")
        h.update(repr((self.checked, self.prefix, self.rest, tuple(sorted(k.items()) for k in self.keys),
                       self.other, tuple(None if b is None else (sorted(b[0]), sorted(b[1]), b[2])
                                         for b in self.bags),
                       tuple(None if f is None else sorted(f) for f in self.finite),
                       tuple(None if x is None else (x[0].fingerprint(), x[1]) for x in self.strings))).encode())
        self.fingerprint = h.hexdigest()[:32]

    def __reduce__(self):
        return (DistinctCheck, (self.checked, self.prefix, self.rest, self.keys, self.other, self.where, self.bags,
                                self.finite, self.strings))

    def __repr__(self) -> str:
        return f"DistinctCheck({len(self.checked)} path states, at {', '.join(self.where) or '?'})"

    # ---------------------------------------------------------------- tracker
    def initial(self):
        return _START

    def accepts(self, data: bytes) -> bool:
        """A whole output (one the grammar accepts) keeps every check."""
        return self.feed(_START, data) is not None

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
        """The state after ``data``, or ``None`` when ``data`` breaks distinctness: it closes an
        item equal to an earlier item of its array, repeats a key, closes an object that misses
        a required name, or leaves a key (or a ``,``) that no unused name can complete."""
        stack, in_str, esc, buf, role = st
        i, n = 0, len(data)
        while i < n:
            if in_str and role == "l":  # a string whose code points are counted
                q, count, pend = buf
                rows, _, hi, _ = self._counter(stack)
                while i < n:
                    c = data[i]
                    i += 1
                    if pend:
                        pend += bytes((c,))
                        if len(pend) == 2 and c != 0x75 or len(pend) == 6:  # \X or \uXXXX done
                            for x in _decode(pend).encode("utf-8"):
                                q = rows[q][x]
                            count += 1
                            pend = b""
                    elif c == _BSLASH:
                        pend = b"\\"
                    elif c == _QUOTE:
                        break
                    else:
                        q = rows[q][c]
                        count += (c & 0xC0) != 0x80
                else:
                    buf = (q, count, pend)
                    break
                if count > hi:
                    return None
                in_str, buf = False, None
                continue
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
                f = stack[-1]
                if role == "k":
                    key = _decode(buf) if buf is not None else None
                    used = f[4]
                    if used is not None:
                        if key in used:
                            return None
                        used = used | {key}
                    stack = stack[:-1] + (("o", f[1], key, False, used),)
                elif buf is not None:
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
                    s = self._child(stack)
                    if s >= 0 and self.strings[s] is not None:
                        role, buf = "l", (0, 0, b"")
                    else:
                        role = "v"
                        buf = b"" if top is not None and top[0] == "a" and top[3] is not None else None
            elif c == _LBRACE:
                s = self._child(stack)
                stack = stack + (("o", s, None, False, frozenset() if s >= 0 and self.bags[s] else None),)
            elif c == _LBRACK:
                s = self._child(stack)
                stack = stack + (("a", s, 0, frozenset() if s >= 0 and self.checked[s] else None),)
            elif c == _RBRACE:
                f = stack[-1]
                if f[4] is not None and not self.bags[f[1]][1] <= f[4]:
                    return None  # a required name is missing
                stack = stack[:-1]
            elif c == _RBRACK:
                stack = stack[:-1]
            elif c == _COLON:
                f = stack[-1]
                stack = stack[:-1] + (("o", f[1], f[2], True, f[4]),)
            elif c == _COMMA:
                f = stack[-1]
                if f[0] == "a":
                    if f[3] is not None and self.finite[f[1]] is not None and self.finite[f[1]] <= f[3]:
                        return None  # every value is used: no item can follow
                    stack = stack[:-1] + (("a", f[1], f[2] + 1, f[3]),)
                else:
                    if f[4] is not None:
                        names, _, open_names = self.bags[f[1]]
                        if not open_names and names <= f[4]:
                            return None  # no name left for another member
                    stack = stack[:-1] + (("o", f[1], None, False, f[4]),)
        if in_str and role == "l":
            q, count, pend = buf
            rows, dmin, hi, _ = self._counter(stack)
            if pend:  # the cheapest character this escape can still become
                best = min((1 + dmin[_run(rows, q, ch.encode("utf-8"))] for ch in _ESCAPABLE
                            if _spellings_start(ch, pend) and _run(rows, q, ch.encode("utf-8")) >= 0),
                           default=None)
                if best is None or count + best > hi:
                    return None
            elif count + dmin[q] > hi:
                return None
        elif in_str and buf is not None:
            f = stack[-1]
            if role == "k":
                if f[4] is not None:
                    names, _, open_names = self.bags[f[1]]
                    if not open_names and not _some_name_extends(buf, names - f[4]):
                        return None
            elif self.finite[f[1]] is not None and not _some_name_extends(buf, self.finite[f[1]] - f[3]):
                return None  # only used values begin like this item
        return (stack, in_str, esc, buf, role)

    def _counter(self, stack):
        """:meth:`_count_spec` of the counted string being read (the value of the innermost open
        container's current child)."""
        return self._count_spec(self._child(stack))

    def _count_spec(self, s: int):
        """(DFA rows, code points to the nearest accepting state per DFA state, maxLength, the
        largest of those distances) for the counted string of path state ``s``; made once."""
        c = self._counters.get(s)
        if c is None:
            dfa, hi = self.strings[s]
            dmin = _code_points_to_accept(dfa)
            c = self._counters[s] = (dfa._rows(), dmin, hi, max((d for d in dmin if d < 1 << 40), default=0))
        return c

    # ---------------------------------------------------------------- masks
    def _tables(self, vocab):
        """Per vocabulary, packed words of the tokens that can break distinctness from a state:
        with a checked array open, those with a quote; with a checked object open, those with a
        quote, ``}`` or ``,``; otherwise those that open an array or object and then close two
        strings in it or close it (``[``/``{`` and four quotes, or ``{`` and ``}``).  Also: the
        longest token, and the tokens that are one opening quote and string content."""
        key = vocab.fingerprint
        t = self._vocab.get(key)
        if t is None:
            with self._lock:
                t = self._vocab.get(key)
                if t is None:
                    n = vocab.n_vocab
                    nw = (n + 31) // 32
                    q = np.zeros(nw * 32, bool)
                    qo = np.zeros(nw * 32, bool)
                    opens = np.zeros(nw * 32, bool)
                    one_open = np.zeros(nw * 32, bool)
                    for i, b in enumerate(vocab.all_token_bytes[:n]):
                        if not b:
                            continue
                        nq = b.count(b'"')
                        q[i] = nq > 0
                        one_open[i] = nq == 1 and b.lstrip(b" \t\n\r").startswith(b'"')
                        qo[i] = nq > 0 or _RBRACE in b or _COMMA in b
                        opens[i] = ((_LBRACK in b or _LBRACE in b) and nq >= 4) or (_LBRACE in b and _RBRACE in b)
                    longest = max((len(b) for b in vocab.all_token_bytes[:n]), default=0)
                    from constrain.engine.bitmask import bitmask_from_bool

                    def pack(flags):
                        return bitmask_from_bool(flags).view(np.uint32)

                    t = (pack(q), pack(qo), pack(opens), vocab.all_token_bytes, longest, pack(one_open))
                    self._vocab[key] = t
        return t

    def restrict(self, st, words: np.ndarray, vocab) -> None:
        """Clear, in ``words`` (``uint32``, the grammar's mask after the output whose tracker
        state is ``st``), every token that would break distinctness (see :meth:`feed`).  Only
        the candidates of :meth:`_tables` can, and inside a key of a checked object without
        undeclared names every allowed token; each runs through the tracker, or, inside an item,
        with one quote and no backslash, is compared directly."""
        quote_w, qo_w, open_w, tb, longest, one_open_w = self._tables(vocab)
        stack, in_str, esc, buf, role = st
        arr = obj = False
        for f in stack:
            if f[0] == "a":
                arr = arr or f[3] is not None
            elif f[4] is not None:
                obj = True
        top = stack[-1] if stack else None
        fin = top is not None and top[0] == "a" and top[3] is not None and self.finite[top[1]] is not None
        if in_str and role == "l":
            _, _, hi, far = self._counter(stack)
            if buf[2] or hi - buf[1] < longest + far:  # near maxLength: any token may cross it
                cand = words.copy()
            else:  # only a token closing the string matters (to a check around it)
                cand = words & quote_w
        else:
            if (obj and in_str and role == "k" and not self.bags[top[1]][2]) or (fin and in_str):
                cand = words.copy()  # a key or item from a finite set: any token can strand it
            elif fin or (obj and not in_str):
                cand = words & qo_w  # a "}" or "," (every value or name used, one required missing)
            elif obj:  # inside a string only a token that closes it can break anything
                cand = words & quote_w
            else:
                cand = words & (quote_w if arr else open_w)
            if self._least_slack() < longest:  # a token could open a counted string and overrun it
                cand |= words & quote_w
        # inside an item of an array with infinitely many values, a token with one quote and no
        # backslash only closes the item: compare its value (a "," after it cannot strand anything)
        used = top[3] if in_str and role == "v" and buf is not None and not fin else None
        # where a value starts (after ":", "[" or ","), a token that is one opening quote and
        # string content cannot break anything unless that string is counted or a finite item
        if not in_str and top is not None and (top[0] == "a" or top[3]):
            s = self._child(stack)
            if (s < 0 or self.strings[s] is None) and not fin:
                cand &= ~one_open_w  # opens a value string and stays inside it
        self._filter(st, words, cand, tb, used)

    def _least_slack(self) -> int:
        """The smallest ``maxLength`` minus the code points its content may still need, over the
        counted strings: a token longer than that could overrun one from where it opens."""
        x = self._slack
        if x is None:
            x = self._slack = min((self._count_spec(s)[2] - self._count_spec(s)[3]
                                   for s, spec in enumerate(self.strings) if spec is not None), default=1 << 62)
        return x

    def _filter(self, st, words, cand, tb, used) -> None:
        esc, buf = st[2], st[3]
        for w in np.flatnonzero(cand).tolist():
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


def _split_partial(raw: bytes) -> tuple[str, bytes]:
    """A partial string literal's content: the characters it spells so far, and the bytes of a
    character still being written (an escape or a UTF-8 sequence in progress)."""
    cut = raw.rfind(b"\\")
    if cut >= 0:
        # is the last backslash the start of an unfinished escape?  (an escaped backslash pairs)
        k = cut
        while k > 0 and raw[k - 1] == _BSLASH:
            k -= 1
        if (cut - k) % 2 == 0:  # an unescaped backslash at `cut`
            tail = raw[cut:]
            if len(tail) < 2 or (tail[1:2] == b"u" and len(tail) < 6):
                return _decode(raw[:cut]), tail
    try:
        return _decode(raw), b""
    except UnicodeDecodeError:  # a UTF-8 sequence in progress at the end
        for back in range(1, min(3, len(raw)) + 1):
            try:
                return _decode(raw[:-back]), raw[-back:]
            except UnicodeDecodeError:
                continue
        raise


def _spellings_start(ch: str, pending: bytes) -> bool:
    """Some spelling of character ``ch`` *the grammar allows* starts with ``pending``: raw
    UTF-8 (not for ``"``, ``\\`` or control characters), a short escape, or ``\\u00XX`` (any
    hex case) for a control character (:mod:`constrain.jsonschema.strings`).  Any other JSON
    spelling would call a key viable that the grammar cannot finish."""
    if not pending.startswith(b"\\"):
        return ch not in '"\\' and ord(ch) >= 0x20 and ch.encode("utf-8").startswith(pending)
    sp = [_SHORT_ESC[ch]] if ch in _SHORT_ESC else []
    if ord(ch) < 0x20:
        sp.append(b"\\u%04x" % ord(ch))
    p = pending.lower()
    return any(x.lower().startswith(p) for x in sp)


def _some_name_extends(raw: bytes, names) -> bool:
    """Some name in ``names`` has a JSON spelling that starts with ``raw`` (a key in progress)."""
    if not names:
        return False
    done, pending = _split_partial(raw)
    for nm in names:
        if nm.startswith(done) and (not pending or (len(nm) > len(done) and _spellings_start(nm[len(done)], pending))):
            return True
    return False


#: characters a pending escape can become under the grammar's spelling (short escapes, controls)
_ESCAPABLE = tuple(_SHORT_ESC) + tuple(chr(i) for i in range(0x20) if chr(i) not in _SHORT_ESC)


def _run(rows, q: int, data: bytes) -> int:
    for b in data:
        if q < 0:
            return -1
        q = rows[q][b]
    return q


def _code_points_to_accept(dfa) -> list:
    """Per state, the fewest code points of a word that takes it to an accepting state (a 0-1
    search backwards: a UTF-8 continuation byte costs nothing); a large number when none."""
    from collections import deque

    n = dfa.n_states
    rows = dfa._rows()
    preds: list = [[] for _ in range(n)]
    for q in range(n):
        for b, t in enumerate(rows[q]):
            if t >= 0:
                preds[t].append((q, 0 if 0x80 <= b <= 0xBF else 1))
    inf = 1 << 40
    dist = [inf] * n
    dq = deque()
    for q in range(n):
        if dfa.accept[q]:
            dist[q] = 0
            dq.append(q)
    while dq:
        t = dq.popleft()
        for q, w in preds[t]:
            if dist[t] + w < dist[q]:
                dist[q] = dist[t] + w
                (dq.appendleft if w == 0 else dq.append)(q)
    return dist
