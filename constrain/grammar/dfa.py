"""Byte-level automata: a Thompson :class:`ByteNFA` builder and the plain-data :class:`ByteDFA`.

Every terminal of every grammar (Lark, regex, JSON Schema) ends up as a :class:`ByteDFA`: a
deterministic automaton over the 256 byte values, stored as two numpy arrays so that the
engine, the token store and numba kernels can walk it without knowing where it came from.

``ByteDFA``
    ``trans``: ``int32[n_states, 256]``, ``-1`` = dead (no transition); ``accept``:
    ``bool[n_states]``; the start state is always ``0``.  Instances are treated as immutable
    (the arrays are made read-only), picklable, and compare *by language*: ``a == b`` iff
    they accept the same byte strings (via :meth:`ByteDFA.fingerprint`, a sha256 of the
    canonical minimal DFA).

``ByteNFA``
    A small mutable Thompson-NFA builder over byte ranges with epsilon edges, plus subset
    construction (:meth:`ByteNFA.to_dfa`) that works on *byte classes*: the alphabet is first
    partitioned by the boundaries of all byte ranges in the NFA, the powerset construction
    runs over those classes, and only the final table is expanded to 256 columns.  The
    number of DFA states is capped (:class:`~constrain.errors.LimitExceeded`,
    ``limit="max_dfa_states"``).

Cost: building and minimizing the DFA of a typical terminal (JSON string, number,
identifier) takes well under a few milliseconds; the state cap bounds the worst case.

UTF-8: :func:`utf8_sequences` splits a code-point range into byte-range sequences (the
classic RE2 / regex-automata ``Utf8Sequences`` algorithm); :meth:`ByteNFA.codepoints` builds
a fragment matching exactly the UTF-8 encodings of a set of Unicode scalar values (surrogates
U+D800..U+DFFF are never produced).
"""

from __future__ import annotations

import hashlib
from bisect import bisect_right
from collections import deque
from functools import lru_cache
from typing import Iterable, Sequence

import numpy as np

from constrain.errors import ConfigError, LimitExceeded
from constrain.limits import check_deadline

# The numba kernels (constrain.grammar.dfa_kernels) are imported where they are first used, never
# at module import: this module is under every grammar import, the vLLM plugin among them, and
# vLLM 0.32's CPU worker start-up breaks if llvmlite is already loaded
# (tests/integrations/test_plugin_imports.py).

__all__ = [
    "ByteDFA",
    "ByteNFA",
    "DEFAULT_MAX_STATES",
    "MAX_UNICODE",
    "utf8_sequences",
    "utf8_strings_dfa",
]

DEFAULT_MAX_STATES = 10_000
MAX_UNICODE = 0x10FFFF
_SURROGATES = (0xD800, 0xDFFF)
_FINGERPRINT_TAG = b"constrain.ByteDFA/1\x00"

Frag = tuple  # (start_state, end_state) of an NFA fragment


# --------------------------------------------------------------------------------------
# UTF-8 range splitting
# --------------------------------------------------------------------------------------

def utf8_sequences(lo: int, hi: int) -> list[tuple[tuple[int, int], ...]]:
    """Split the scalar range ``[lo, hi]`` into UTF-8 byte-range sequences.

    Each result is a tuple of ``(byte_lo, byte_hi)`` pairs, one per encoded byte; the byte
    strings matched by the concatenation of the ranges are exactly the UTF-8 encodings of the
    code points in the range.  Surrogates (U+D800..U+DFFF) are skipped.  The sequences are
    disjoint and returned in increasing code-point order.
    """
    if lo < 0 or hi > MAX_UNICODE or lo > hi:
        raise ConfigError(f"invalid code point range [{lo:#x}, {hi:#x}]")
    out: list[tuple[tuple[int, int], ...]] = []
    stack = [(lo, hi)]
    while stack:
        s, e = stack.pop()
        while True:
            # never encode surrogates
            if s <= _SURROGATES[1] and e >= _SURROGATES[0]:
                if e > _SURROGATES[1]:
                    stack.append((_SURROGATES[1] + 1, e))
                if s >= _SURROGATES[0]:
                    break
                e = _SURROGATES[0] - 1
            split = False
            for mx in (0x7F, 0x7FF, 0xFFFF):
                if s <= mx < e:
                    stack.append((mx + 1, e))
                    e = mx
                    split = True
                    break
            if split:
                continue
            if e <= 0x7F:
                out.append(((s, e),))
                break
            for i in (1, 2, 3):
                m = (1 << (6 * i)) - 1
                if (s & ~m) != (e & ~m):
                    if (s & m) != 0:
                        stack.append(((s | m) + 1, e))
                        e = s | m
                        split = True
                        break
                    if (e & m) != m:
                        stack.append((e & ~m, e))
                        e = (e & ~m) - 1
                        split = True
                        break
            if split:
                continue
            bs = chr(s).encode("utf-8")
            be = chr(e).encode("utf-8")
            out.append(tuple(zip(bs, be)))
            break
    out.sort()
    return out


@lru_cache(maxsize=4096)
def _utf8_sequences_for(intervals: tuple[tuple[int, int], ...]) -> tuple:
    seqs = []
    for lo, hi in intervals:
        seqs.extend(utf8_sequences(lo, hi))
    return tuple(seqs)


# --------------------------------------------------------------------------------------
# NFA
# --------------------------------------------------------------------------------------

class ByteNFA:
    """A mutable Thompson NFA over byte ranges, with epsilon edges.

    Fragment builders return ``(start, end)`` state pairs; combine them with
    :meth:`concat`, :meth:`alt`, :meth:`star`, :meth:`plus`, :meth:`opt`, then call
    :meth:`to_dfa` with the start state and the accepting state(s).  Each fragment must be
    used once (copy by building it again or via :meth:`embed_dfa`).
    """

    def __init__(self) -> None:
        self.edges: list[list[tuple[int, int, int]]] = []  # per state: (lo, hi, target)
        self.eps: list[list[int]] = []

    @property
    def n_states(self) -> int:
        return len(self.edges)

    def add_state(self) -> int:
        self.edges.append([])
        self.eps.append([])
        return len(self.edges) - 1

    def add_edge(self, src: int, lo: int, hi: int, dst: int) -> None:
        if not (0 <= lo <= hi <= 255):
            raise ConfigError(f"invalid byte range [{lo}, {hi}]")
        self.edges[src].append((lo, hi, dst))

    def add_eps(self, src: int, dst: int) -> None:
        self.eps[src].append(dst)

    # ---- fragment builders -------------------------------------------------------------

    def empty(self) -> Frag:
        """Fragment matching only the empty string."""
        s = self.add_state()
        e = self.add_state()
        self.add_eps(s, e)
        return (s, e)

    def nothing(self) -> Frag:
        """Fragment matching nothing (empty language)."""
        return (self.add_state(), self.add_state())

    def literal(self, data: bytes) -> Frag:
        """Fragment matching exactly the byte string ``data``."""
        s = cur = self.add_state()
        for b in data:
            nxt = self.add_state()
            self.add_edge(cur, b, b, nxt)
            cur = nxt
        if cur == s:
            e = self.add_state()
            self.add_eps(s, e)
            return (s, e)
        return (s, cur)

    def byte_ranges(self, ranges: Iterable[tuple[int, int]]) -> Frag:
        """Fragment matching one byte in any of the inclusive ``ranges``."""
        s = self.add_state()
        e = self.add_state()
        for lo, hi in ranges:
            self.add_edge(s, lo, hi, e)
        return (s, e)

    def codepoints(self, intervals: Sequence[tuple[int, int]]) -> Frag:
        """Fragment matching the UTF-8 encoding of one scalar value in ``intervals``.

        ``intervals`` are inclusive code-point ranges; surrogates inside them are ignored.
        Byte-range sequences share suffix states, so large classes (``\\w``) stay small.
        """
        s = self.add_state()
        e = self.add_state()
        memo: dict[tuple, int] = {}
        edges = self.edges

        def node(suffix: tuple) -> int:
            if not suffix:
                return e
            st = memo.get(suffix)
            if st is None:
                nxt = node(suffix[1:])
                st = self.add_state()
                lo, hi = suffix[0]
                edges[st].append((lo, hi, nxt))
                memo[suffix] = st
            return st

        for seq in _utf8_sequences_for(tuple((int(a), int(b)) for a, b in intervals)):
            lo, hi = seq[0]
            edges[s].append((lo, hi, node(seq[1:])))
        return (s, e)

    def concat(self, frags: Sequence[Frag]) -> Frag:
        if not frags:
            return self.empty()
        for (_, e1), (s2, _) in zip(frags, frags[1:]):
            self.add_eps(e1, s2)
        return (frags[0][0], frags[-1][1])

    def alt(self, frags: Sequence[Frag]) -> Frag:
        if len(frags) == 1:
            return frags[0]
        s = self.add_state()
        e = self.add_state()
        for fs, fe in frags:
            self.add_eps(s, fs)
            self.add_eps(fe, e)
        return (s, e)

    def star(self, frag: Frag) -> Frag:
        fs, fe = frag
        s = self.add_state()
        e = self.add_state()
        self.add_eps(s, fs)
        self.add_eps(s, e)
        self.add_eps(fe, fs)
        self.add_eps(fe, e)
        return (s, e)

    def plus(self, frag: Frag) -> Frag:
        fs, fe = frag
        s = self.add_state()
        e = self.add_state()
        self.add_eps(s, fs)
        self.add_eps(fe, fs)
        self.add_eps(fe, e)
        return (s, e)

    def opt(self, frag: Frag) -> Frag:
        fs, fe = frag
        s = self.add_state()
        e = self.add_state()
        self.add_eps(s, fs)
        self.add_eps(s, e)
        self.add_eps(fe, e)
        return (s, e)

    def repeat_dfa(self, sub: "ByteDFA", lo: int, hi: int | None) -> Frag:
        """``sub{lo,hi}`` (``hi=None``: unbounded) from copies of a DFA.  The optional copies
        nest as ``(x(x(x)?)?)?`` so the NFA stays linear in ``hi``.  ``lo + (hi or 1) >= 1``."""
        frags = [self.embed_dfa(sub) for _ in range(lo)]
        if hi is None:
            frags.append(self.plus(frags.pop()) if frags else self.star(self.embed_dfa(sub)))
        else:
            tail = None
            for _ in range(hi - lo):
                cs, ce = self.embed_dfa(sub)
                end = ce
                if tail is not None:
                    self.add_eps(ce, tail[0])
                    end = tail[1]
                s = self.add_state()
                self.add_eps(s, cs)
                self.add_eps(s, end)
                tail = (s, end)
            if tail is not None:
                frags.append(tail)
        return self.concat(frags)

    def embed_dfa(self, dfa: "ByteDFA") -> Frag:
        """Copy ``dfa`` into this NFA as a fragment (accepting states get an epsilon to the end)."""
        base = self.n_states
        ranges = dfa._ranges()
        for _ in range(dfa.n_states):
            self.add_state()
        e = self.add_state()
        edges = self.edges
        for q, rs in enumerate(ranges):
            edges[base + q].extend((lo, hi, base + t) for lo, hi, t in rs)
        for q in np.flatnonzero(dfa.accept).tolist():
            self.eps[base + q].append(e)
        return (base, e)

    # ---- subset construction -----------------------------------------------------------

    def to_dfa(self, start: int, accepts: Iterable[int] | int, *,
               max_states: int = DEFAULT_MAX_STATES, what: str = "the automaton") -> "ByteDFA":
        """Determinize (subset construction over byte classes); the result is not minimized.

        Raises :class:`LimitExceeded` (``limit="max_dfa_states"``) once more than
        ``max_states`` DFA states would be needed.
        """
        if isinstance(accepts, int):
            accepts = (accepts,)
        accept_set = frozenset(accepts)
        n = self.n_states
        edges = self.edges
        eps = self.eps

        # 1. alphabet partition from all range boundaries
        cuts = {0, 256}
        for rs in edges:
            for lo, hi, _ in rs:
                cuts.add(lo)
                cuts.add(hi + 1)
        bounds = sorted(cuts)
        k = len(bounds) - 1
        cls_of_byte = np.searchsorted(np.asarray(bounds), np.arange(256), side="right") - 1
        # per NFA state: (first_class, last_class, target)
        crng: list[list[tuple[int, int, int]]] = []
        for rs in edges:
            crng.append([(bisect_right(bounds, lo) - 1, bisect_right(bounds, hi) - 1, t)
                         for lo, hi, t in rs])

        # "important" states: those with byte edges or accepting
        important = [bool(edges[q]) or q in accept_set for q in range(n)]
        closure_cache: dict[int, frozenset] = {}

        def closure1(q: int) -> frozenset:
            c = closure_cache.get(q)
            if c is not None:
                return c
            seen = {q}
            stack = [q]
            while stack:
                x = stack.pop()
                for y in eps[x]:
                    if y not in seen:
                        seen.add(y)
                        stack.append(y)
            c = frozenset(x for x in seen if important[x])
            closure_cache[q] = c
            return c

        set_closure_cache: dict[frozenset, frozenset] = {}

        def closure(targets: frozenset) -> frozenset:
            c = set_closure_cache.get(targets)
            if c is None:
                if len(targets) == 1:
                    (t,) = targets
                    c = closure1(t)
                else:
                    acc: set = set()
                    for t in targets:
                        acc |= closure1(t)
                    c = frozenset(acc)
                set_closure_cache[targets] = c
            return c

        start_set = closure1(start)
        ids: dict[frozenset, int] = {start_set: 0}
        order = [start_set]
        rows: list[list[int]] = []
        accept: list[bool] = []
        i = 0
        while i < len(order):
            d = order[i]
            i += 1
            if not i & 63:
                check_deadline()
            accept.append(not accept_set.isdisjoint(d))
            moves: dict[int, set] = {}
            for q in d:
                for c0, c1, t in crng[q]:
                    for c in range(c0, c1 + 1):
                        m = moves.get(c)
                        if m is None:
                            moves[c] = {t}
                        else:
                            m.add(t)
            row = [-1] * k
            group: dict[frozenset, int] = {}
            for c, ts in moves.items():
                key = frozenset(ts)
                tid = group.get(key)
                if tid is None:
                    tgt = closure(key)
                    if not tgt:
                        tid = -1
                    else:
                        tid = ids.get(tgt)
                        if tid is None:
                            tid = len(order)
                            if tid >= max_states:
                                raise LimitExceeded(
                                    f"determinizing {what} needs more than {max_states} DFA states",
                                    limit="max_dfa_states", value=max_states)
                            ids[tgt] = tid
                            order.append(tgt)
                    group[key] = tid
                row[c] = tid
            rows.append(row)
        ct = np.asarray(rows, dtype=np.int32).reshape(len(rows), k)
        cls_of_byte = cls_of_byte.astype(np.int32)
        return ByteDFA(ct[:, cls_of_byte], np.asarray(accept, dtype=bool),
                       _partition=(cls_of_byte, bounds[:-1]))


# --------------------------------------------------------------------------------------
# DFA
# --------------------------------------------------------------------------------------

class ByteDFA:
    """A deterministic automaton over bytes: plain numpy arrays, start state 0.

    Attributes
    ----------
    trans : ``int32[n_states, 256]``
        Next state per byte, ``-1`` for "no transition" (dead).
    accept : ``bool[n_states]``
        Accepting states.

    Instances are immutable (read-only arrays) and picklable.  Equality and hashing are by
    *language*: two DFAs are equal iff they accept the same byte strings.  Derived data
    (``live``, byte classes, the minimal form, the fingerprint) is computed lazily and cached.
    Operations that build new automata (:meth:`intersect`, :meth:`union`, :meth:`concat`,
    :meth:`star`, :meth:`complement`) return minimized, canonical DFAs.

    Ownership/cost: built once per terminal at grammar-compile time (milliseconds); the engine
    only reads ``trans`` / ``accept`` / ``live``.
    """

    def __init__(self, trans, accept, *, _canonical: bool = False, _partition=None) -> None:
        trans = np.array(trans, dtype=np.int32, order="C", copy=True)
        accept = np.array(accept, dtype=bool, order="C", copy=True)
        if trans.ndim != 2 or trans.shape[1] != 256:
            raise ConfigError(f"ByteDFA.trans must have shape (n_states, 256), got {trans.shape}")
        n = trans.shape[0]
        if n == 0:
            raise ConfigError("ByteDFA needs at least one state (the start state 0)")
        if accept.shape != (n,):
            raise ConfigError(f"ByteDFA.accept must have shape ({n},), got {accept.shape}")
        if trans.size and (trans.min() < -1 or trans.max() >= n):
            raise ConfigError("ByteDFA.trans holds a state id out of range")
        trans.flags.writeable = False
        accept.flags.writeable = False
        self.trans = trans
        self.accept = accept
        self._canonical = _canonical
        self._cache: dict = {}
        if _partition is not None:
            # a byte partition known to be compatible (columns equal inside each class,
            # classes numbered by smallest byte); may be finer than byte_classes()
            self._cache["partition"] = _partition

    # ---- pickling / repr ---------------------------------------------------------------

    def __getstate__(self):
        return {"trans": np.array(self.trans), "accept": np.array(self.accept),
                "canonical": self._canonical}

    def __setstate__(self, state):
        self.__init__(state["trans"], state["accept"], _canonical=state["canonical"])

    def __repr__(self) -> str:
        return (f"ByteDFA(n_states={self.n_states}, n_accept={int(self.accept.sum())}, "
                f"byte_classes={self.n_byte_classes})")

    # ---- basic queries -----------------------------------------------------------------

    @property
    def n_states(self) -> int:
        return int(self.trans.shape[0])

    def _rows(self) -> list[list[int]]:
        r = self._cache.get("rows")
        if r is None:
            r = self._cache["rows"] = self.trans.tolist()
        return r

    def run(self, data: bytes, state: int = 0) -> int:
        """State reached from ``state`` after ``data`` (``-1`` once dead)."""
        rows = self._cache.get("rows")
        if rows is None and len(data) <= 32:
            # a short run (a schema compile checks its enum values and defaults) steps the
            # array: listing a whole table first cost more than the run, ~8 ms of a 30 ms
            # schema compile over its format automata
            trans = self.trans
            for b in data:
                state = int(trans[state, b])
                if state < 0:
                    return -1
            return state
        if rows is None:
            rows = self._rows()
        for b in data:
            state = rows[state][b]
            if state < 0:
                return -1
        return state

    def matches(self, data: bytes) -> bool:
        """True iff the whole of ``data`` is accepted."""
        s = self.run(data)
        return s >= 0 and bool(self.accept[s])

    def is_live_prefix(self, data: bytes) -> bool:
        """True iff some extension of ``data`` (possibly empty) is accepted."""
        s = self.run(data)
        return s >= 0 and bool(self.live[s])

    @property
    def live(self) -> np.ndarray:
        """``bool[n_states]``: the state can still reach an accepting state."""
        lv = self._cache.get("live")
        if lv is None:
            from constrain.grammar.dfa_kernels import live_states

            lv = live_states(self.trans, self.accept)
            lv.flags.writeable = False
            self._cache["live"] = lv
        return lv

    def is_empty(self) -> bool:
        """True iff the language is empty."""
        return not bool(self.live[0])

    def _partition(self) -> tuple[np.ndarray, list[int]]:
        p = self._cache.get("partition")
        return p if p is not None else self.byte_class_info()

    def byte_class_info(self) -> tuple[np.ndarray, list[int]]:
        """``(class_of_byte int32[256], representative byte per class)``; see :meth:`byte_classes`."""
        info = self._cache.get("classes")
        if info is None:
            from constrain.grammar.dfa_kernels import byte_classes_of

            cls, reps = byte_classes_of(self.trans)
            cls.flags.writeable = False
            info = self._cache["classes"] = (cls, reps.tolist())
        return info

    def byte_classes(self) -> np.ndarray:
        """``int32[256]``: class id per byte; bytes with identical columns share a class.

        Classes are numbered 0.. in order of their smallest byte.  Two bytes in one class
        are interchangeable everywhere in this DFA (used for table compression).
        """
        return self.byte_class_info()[0]

    @property
    def n_byte_classes(self) -> int:
        return len(self.byte_class_info()[1])

    def _ranges(self) -> list[list[tuple[int, int, int]]]:
        """Per state, maximal runs ``(lo, hi, target)`` of equal non-dead targets."""
        r = self._cache.get("ranges")
        if r is None:
            t = self.trans
            n = t.shape[0]
            change = np.ones((n, 256), dtype=bool)
            change[:, 1:] = t[:, 1:] != t[:, :-1]
            rs, cs = np.nonzero(change)
            ends = np.empty_like(cs)
            ends[:-1] = cs[1:] - 1
            # a run ends at 255 when the next run belongs to another row
            last = np.ones(len(rs), dtype=bool)
            last[:-1] = rs[1:] != rs[:-1]
            ends[last] = 255
            tg = t[rs, cs]
            keep = tg >= 0
            r = [[] for _ in range(n)]
            for q, lo, hi, tt in zip(rs[keep].tolist(), cs[keep].tolist(),
                                     ends[keep].tolist(), tg[keep].tolist()):
                r[q].append((lo, hi, tt))
            self._cache["ranges"] = r
        return r

    # ---- minimization / canonical form -------------------------------------------------

    def minimize(self) -> "ByteDFA":
        """The minimal DFA of the same language, in canonical form.

        Unreachable and dead states are removed (dead transitions become ``-1``), equivalent
        states merged (Hopcroft over byte classes), and states numbered in BFS order from the
        start, visiting bytes 0..255 in order.  Equal languages give equal arrays.  The empty
        language is the single non-accepting state with no transitions.
        """
        if self._canonical:
            return self
        m = self._cache.get("min")
        if m is not None:
            return m
        check_deadline()
        cls, reps = self._partition()
        ct_full = self.trans[:, reps]
        live = self.live
        if not live[0]:
            m = _empty_dfa()
            self._cache["min"] = m
            return m
        from constrain.grammar.dfa_kernels import minimal_rows

        ctn, new_acc = minimal_rows(ct_full, self.accept, live)
        m = ByteDFA(ctn[:, cls], new_acc, _canonical=True,
                    _partition=(cls, reps))
        # the canonical form of m is itself; share the cache entry
        self._cache["min"] = m
        return m

    def fingerprint(self) -> str:
        """Stable sha256 hex digest of the canonical minimal DFA (language identity)."""
        fp = self._cache.get("fingerprint")
        if fp is None:
            m = self.minimize()
            h = hashlib.sha256(_FINGERPRINT_TAG)
            h.update(np.int64(m.n_states).astype("<i8").tobytes())
            h.update(m.trans.astype("<i4").tobytes())
            h.update(m.accept.astype(np.uint8).tobytes())
            fp = self._cache["fingerprint"] = h.hexdigest()
        return fp

    def __eq__(self, other) -> bool:
        if not isinstance(other, ByteDFA):
            return NotImplemented
        return self is other or self.fingerprint() == other.fingerprint()

    def __hash__(self) -> int:
        return int(self.fingerprint()[:16], 16)

    # ---- words -------------------------------------------------------------------------

    def shortest_word(self, state: int = 0) -> bytes | None:
        """A shortest byte string leading from ``state`` to acceptance, or None.

        Among the shortest, the lexicographically smallest is returned.
        """
        if state < 0:
            return None
        if self.accept[state]:
            return b""
        rows = self._rows()
        acc = self.accept
        prev: dict[int, tuple[int, int]] = {state: (-1, -1)}
        q = deque([state])
        while q:
            s = q.popleft()
            for b in range(256):
                t = rows[s][b]
                if t < 0 or t in prev:
                    continue
                prev[t] = (s, b)
                if acc[t]:
                    out = []
                    while t != state:
                        t, bb = prev[t]
                        out.append(bb)
                    return bytes(reversed(out))
                q.append(t)
        return None

    def enumerate(self, max_len: int, *, limit: int = 100_000) -> list[bytes]:
        """All accepted byte strings of length <= ``max_len``, sorted by (length, bytes).

        Meant for tests and debugging; raises :class:`LimitExceeded` (``limit="max_words"``)
        if more than ``limit`` words would be produced.
        """
        ranges = self._ranges()
        live = self.live
        acc = self.accept
        out: list[bytes] = []
        stack: list[tuple[int, bytes]] = [(0, b"")] if live[0] else []
        while stack:
            s, w = stack.pop()
            if acc[s]:
                out.append(w)
                if len(out) > limit:
                    raise LimitExceeded(f"more than {limit} words of length <= {max_len}",
                                        limit="max_words", value=limit)
            if len(w) >= max_len:
                continue
            for lo, hi, t in ranges[s]:
                if live[t]:
                    for b in range(lo, hi + 1):
                        stack.append((t, w + bytes((b,))))
        out.sort(key=lambda x: (len(x), x))
        return out

    # ---- constructions -----------------------------------------------------------------

    def _product(self, other: "ByteDFA", mode: str, max_states: int) -> "ByteDFA":
        ca, ra = self._partition()
        cb, rb = other._partition()
        from constrain.grammar.dfa_kernels import byte_classes_of, product_table

        # joint byte classes: bytes whose class is the same on both sides (the two partitions as
        # the rows of one table), numbered by their smallest byte
        jcls, firsts = byte_classes_of(np.vstack([ca, cb]).astype(np.int32))
        check_deadline()
        # (class-level tables, row-major for the kernel: a column fancy index comes out column-major)
        ct, acc, n = product_table(np.ascontiguousarray(self.trans[:, ra]), np.ascontiguousarray(other.trans[:, rb]),
                                   ca[firsts].astype(np.int64), cb[firsts].astype(np.int64), self.accept,
                                   other.accept, mode == "and", max_states)
        if n < 0:
            raise LimitExceeded(f"product automaton needs more than {max_states} states",
                                limit="max_dfa_states", value=max_states)
        return ByteDFA(ct[:, jcls], acc, _partition=(jcls, firsts.tolist())).minimize()

    def intersect(self, other: "ByteDFA", *, max_states: int = DEFAULT_MAX_STATES) -> "ByteDFA":
        """DFA of L(self) ∩ L(other) (product construction)."""
        return self._product(other, "and", max_states)

    def union(self, other: "ByteDFA", *, max_states: int = DEFAULT_MAX_STATES) -> "ByteDFA":
        """DFA of L(self) ∪ L(other) (product construction)."""
        return self._product(other, "or", max_states)

    def concat(self, other: "ByteDFA", *, max_states: int = DEFAULT_MAX_STATES) -> "ByteDFA":
        """DFA of L(self)·L(other) (via an NFA and subset construction)."""
        nfa = ByteNFA()
        f1 = nfa.embed_dfa(self)
        f2 = nfa.embed_dfa(other)
        s, e = nfa.concat([f1, f2])
        return nfa.to_dfa(s, e, max_states=max_states).minimize()

    def star(self, *, max_states: int = DEFAULT_MAX_STATES) -> "ByteDFA":
        """DFA of L(self)* (Kleene star)."""
        nfa = ByteNFA()
        s, e = nfa.star(nfa.embed_dfa(self))
        return nfa.to_dfa(s, e, max_states=max_states).minimize()

    def complement(self, *, utf8: bool = False) -> "ByteDFA":
        """DFA of the complement language.

        By default the complement is taken over *all byte strings*, so it contains invalid
        UTF-8 (e.g. ``b"\\xff"``).  With ``utf8=True`` it is intersected with the set of valid
        UTF-8 strings, i.e. the complement relative to all Unicode text.
        """
        n = self.n_states
        t = np.array(self.trans)
        t = np.vstack([t, np.full((1, 256), n, dtype=np.int32)])
        t[t < 0] = n
        acc = np.concatenate([~self.accept, np.array([True])])
        out = ByteDFA(t, acc).minimize()
        if utf8:
            out = out.intersect(utf8_strings_dfa())
        return out


def _empty_dfa() -> ByteDFA:
    return ByteDFA(np.full((1, 256), -1, dtype=np.int32), np.zeros(1, dtype=bool), _canonical=True)


@lru_cache(maxsize=1)
def utf8_strings_dfa() -> ByteDFA:
    """Minimal DFA of all valid UTF-8 strings (any sequence of Unicode scalar values)."""
    nfa = ByteNFA()
    s, e = nfa.star(nfa.codepoints([(0, MAX_UNICODE)]))
    return nfa.to_dfa(s, e).minimize()


# --------------------------------------------------------------------------------------
# on-disk cache of expensive fixed automata
# --------------------------------------------------------------------------------------

_SOURCE_DIGEST: dict[tuple, str] = {}


def source_digest(*modules: str) -> str:
    """sha256 (16 hex digits) of the source files of ``modules`` (dotted names): part of a
    cached automaton's key, so an edit to the code that builds it invalidates the file even
    when constrain's version string stays the same (a development checkout)."""
    got = _SOURCE_DIGEST.get(modules)
    if got is None:
        import importlib.util

        h = hashlib.sha256()
        for name in modules:
            spec = importlib.util.find_spec(name)
            origin = spec.origin if spec is not None else None
            h.update(name.encode() + b"\x00")
            try:
                with open(origin, "rb") as f:
                    h.update(f.read())
            except (OSError, TypeError):  # no source (frozen, zipped): the version tag alone
                h.update(b"?")
        got = _SOURCE_DIGEST[modules] = h.hexdigest()[:16]
    return got


def cached_dfa(kind: str, key: str, build) -> ByteDFA:
    """``build()``, kept on disk under ``$CONSTRAIN_CACHE_DIR/dfa/`` by ``kind`` and ``key``.

    For automata that are fixed functions of their key and slow to make: the JSON Schema
    format DFAs (email alone takes ~0.6 s to build and minimize, and its JSON-string form
    another ~0.5 s; every process that compiled a schema with ``"format": "email"`` paid that
    for its first mask).  ``key`` must name everything the automaton depends on, including a
    :func:`source_digest` of the code that builds it.  The file is written atomically and
    checked (sha256, constrain's version, the key) when read; a bad or missing file is
    rebuilt, and with caching off (``CONSTRAIN_CACHE_DIR=off``) this is ``build()``."""
    import io
    import zlib

    from constrain._cache import load_or_build, version_tag

    # stored by byte class (a format's table is ~3,000 states x 256 bytes but ~30 classes:
    # decompressing the full table was ~5 ms of a schema's compile), with its fingerprint
    def encode(dfa: ByteDFA) -> bytes:
        cls, reps = dfa.byte_class_info()
        buf = io.BytesIO()
        np.savez(buf, cls=cls, ct=dfa.trans[:, reps], accept=dfa.accept, canonical=np.bool_(dfa._canonical),
                 fingerprint=np.str_(dfa.fingerprint()))
        return zlib.compress(buf.getvalue(), 1)

    def decode(payload: bytes) -> ByteDFA:
        with np.load(io.BytesIO(zlib.decompress(payload)), allow_pickle=False) as z:
            cls = np.asarray(z["cls"], dtype=np.int32)
            ct = z["ct"]  # (each read of a member decompresses it again)
            if cls.shape != (256,) or cls.min() < 0 or cls.max() >= ct.shape[1]:
                raise ValueError("bad byte classes")
            dfa = ByteDFA(ct[:, cls], z["accept"], _canonical=bool(z["canonical"]))
            dfa._cache["fingerprint"] = str(z["fingerprint"])
            return dfa

    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in key)
    return load_or_build("dfa", f"{kind}-{safe}-{version_tag()}.npz", f"{kind}:{key}", build, encode, decode)
