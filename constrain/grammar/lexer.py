"""The combined lexer automaton: one lazily built product DFA over a grammar's terminals.

A lexer state is the tuple of (terminal, DFA state) pairs that are still alive, started from a
*candidate set* of terminals (the ones the parser allows next, plus ignored terminals).  So a
state already encodes which terminals it is lexing for: the mask store can key its cache on the
lexer state alone.  States are interned to small integers and built on first visit; a cap on
their number turns a pathological blow-up into :class:`~constrain.errors.LimitExceeded`.

Per state the automaton keeps ``live`` (terminals still possible, as an int bitset) and
``accept`` (terminals whose lexeme may end here).  Transitions are memoised in a growable
``int32[n_states, 256]`` table (``-2`` = not computed yet, ``-1`` = dead) that numba kernels can
read directly.
"""

from __future__ import annotations

import threading

import numpy as np

from constrain.errors import LimitExceeded

NOT_COMPUTED = -2
DEAD = -1


class LexerAutomaton:
    """Lazy product DFA over the terminals of one grammar (tokenizer-independent).

    Lifetime: one per compiled grammar, shared by every matcher of that grammar; grows as
    states are visited (thread-safety: build under the owner's lock; reads are lock-free).
    """

    def __init__(self, grammar, *, max_states: int = 200_000):
        self.grammar = grammar
        self.max_states = max_states
        ts = grammar.terminals
        self.n_terms = len(ts)
        self._trans = [np.asarray(t.dfa.trans, dtype=np.int32) for t in ts]
        self._acc = [np.asarray(t.dfa.accept, dtype=bool) for t in ts]
        self._live = [np.asarray(t.dfa.live, dtype=bool) for t in ts]
        self._alive: list = [None] * len(ts)  # per terminal, built on first use (_alive_of)
        self._key_to_id: dict[tuple, int] = {}
        self.keys: list[tuple] = []
        self.live: list[int] = []
        self.accept: list[int] = []
        self.table = np.full((64, 256), NOT_COMPUTED, dtype=np.int32)
        self._start_cache: dict[int, int] = {}
        #: states whose every reachable state has its whole row computed (see expand)
        self._closed: set[int] = set()
        # readers of ``table`` never lock; creating a state or a transition does
        self._lock = threading.RLock()

    def __getstate__(self):
        # a snapshot (TokenStore.snapshot) copies the lazily built states under the lock: the
        # state ids that store entries refer to stay valid in the copy
        with self._lock:
            d = self.__dict__.copy()
            d["_key_to_id"] = dict(self._key_to_id)
            d["keys"] = list(self.keys)
            d["live"] = list(self.live)
            d["accept"] = list(self.accept)
            d["table"] = self.table.copy()
            d["_start_cache"] = dict(self._start_cache)
            d["_closed"] = set(self._closed)
        d["_alive"] = None  # (derived: rebuilt on use)
        del d["_lock"]
        return d

    def __setstate__(self, d):
        d.setdefault("_closed", set())  # (a snapshot saved before the set existed)
        d["_alive"] = [None] * len(d["_trans"])
        self.__dict__.update(d)
        self._lock = threading.RLock()

    @property
    def n_states(self) -> int:
        return len(self.keys)

    def _intern(self, key: tuple) -> int:
        sid = self._key_to_id.get(key)
        if sid is not None:
            return sid
        if not key:
            return DEAD
        sid = len(self.keys)
        if sid >= self.max_states:
            raise LimitExceeded(f"lexer automaton of grammar {self.grammar.name!r} grew past {self.max_states} states",
                                limit="max_lexer_states", value=self.max_states)
        self._key_to_id[key] = sid
        self.keys.append(key)
        live = 0
        acc = 0
        for t, q in key:
            live |= 1 << t
            if self._acc[t][q]:
                acc |= 1 << t
        self.live.append(live)
        self.accept.append(acc)
        self._room(sid + 1)
        return sid

    def _room(self, n: int) -> None:
        """Grow ``table`` (doubling) to hold at least ``n`` states' rows."""
        cap = self.table.shape[0]
        if n > cap:
            while cap < n:
                cap *= 2
            grown = np.full((cap, 256), NOT_COMPUTED, dtype=np.int32)
            grown[: self.table.shape[0]] = self.table
            self.table = grown

    def start(self, candidates: int) -> int:
        """Start state for an int bitset of candidate terminals (``DEAD`` if empty)."""
        sid = self._start_cache.get(candidates)
        if sid is not None:
            return sid
        with self._lock:
            sid = self._start_cache.get(candidates)
            if sid is not None:
                return sid
            key = tuple((t, 0) for t in range(self.n_terms) if candidates >> t & 1 and self._live[t][0])
            sid = self._intern(key)
            self._start_cache[candidates] = sid
            return sid

    def step(self, sid: int, byte: int) -> int:
        """Next state after ``byte`` (``DEAD`` when no terminal survives)."""
        nxt = int(self.table[sid, byte])
        if nxt != NOT_COMPUTED:
            return nxt
        with self._lock:
            out = []
            for t, q in self.keys[sid]:
                q2 = int(self._alive_of(t)[q, byte])
                if q2 >= 0:
                    out.append((t, q2))
            nxt = self._intern(tuple(out))
            self.table[sid, byte] = nxt
            return nxt

    def expand(self, sid: int) -> int:
        """Compute every transition of every state reachable from ``sid`` (breadth first), so a
        kernel can walk the table without meeting ``NOT_COMPUTED``.  Returns how many states it
        visited: on a fresh automaton, all those reachable from ``sid``.

        Every state it visits is then *closed* (all its reachable states computed), and a later
        call stops at closed states: each mask-store entry expands its start state, and walking
        the same reachable set again for each (one set of its row per state) was ~40 % of a cold
        walk on schema_medium."""
        closed = self._closed
        if sid in closed:
            return 0
        seen = {sid}
        queue = [sid]
        keys = self.keys
        while queue:
            s = queue.pop()
            if len(keys[s]) == 1:  # one terminal left: its DFA's closure, at once
                seen.update(self._close_single(s))
                continue
            row = self.table[s]
            succ = self._fill_row(s) if (row == NOT_COMPUTED).any() else set(row.tolist())
            for nxt in succ:
                if nxt >= 0 and nxt not in seen and nxt not in closed:
                    seen.add(nxt)
                    queue.append(nxt)
        closed.update(seen)
        return len(seen)

    def _close_single(self, sid: int) -> list[int]:
        """Every state reachable from ``sid``, a state of one terminal ``t`` (its successors
        are too), with all its rows computed: the states of ``t``'s DFA reachable from
        ``sid``'s, interned, and their rows mapped from ``t``'s table in one array operation.
        A JSON string of a format (email: ~3,400 states) was ~30 µs a row with
        :meth:`_fill_row`: ~100 ms on the first mask inside such a string.  Returns the ids."""
        from constrain.grammar.dfa_kernels import map_rows, reachable_from  # (numba: on first use, see dfa.py)

        with self._lock:
            ((t, q),) = self.keys[sid]
            alive = self._alive_of(t)
            reach = reachable_from(alive, q)
            bit = 1 << t
            rl = reach.tolist()
            accs = self._acc[t][reach].tolist()
            get = self._key_to_id.get
            new_keys = [((t, r),) for r in rl]
            ids = [get(k) for k in new_keys]
            keys, live, accept, k2i = self.keys, self.live, self.accept, self._key_to_id
            if len(keys) + ids.count(None) > self.max_states:  # (before any state is added)
                raise LimitExceeded(f"lexer automaton of grammar {self.grammar.name!r} grew past {self.max_states} "
                                    "states", limit="max_lexer_states", value=self.max_states)
            for i, x in enumerate(ids):
                if x is None:
                    x = ids[i] = len(keys)
                    k2i[new_keys[i]] = x
                    keys.append(new_keys[i])
                    live.append(bit)
                    accept.append(bit if accs[i] else 0)
            self._room(len(keys))
            # (a reachable state's row only leads inside the closure: every target is renamed)
            map_rows(self.table, np.asarray(ids, np.int64), alive, reach)
            return ids

    def _alive_of(self, t: int) -> np.ndarray:
        """Terminal ``t``'s DFA table with transitions into dead states as ``DEAD`` (built on
        first use; what :meth:`step` and :meth:`_fill_row` read)."""
        tl = self._alive[t]
        if tl is None:
            r = self._trans[t]
            self._alive[t] = tl = np.where((r >= 0) & self._live[t][np.maximum(r, 0)], r, DEAD).astype(np.int32)
        return tl

    def _fill_row(self, sid: int) -> list[int]:
        """Every transition of state ``sid`` at once (what :meth:`step` gives byte by byte):
        per live (terminal, state) pair its DFA row, dead targets as -1, and one new key per
        distinct column of those rows, not per byte.  A first mask expands the lexer states it
        meets: cfg_json's 136 took ~35,000 ``step`` calls, most of its first mask.  Returns
        the distinct successors (``DEAD`` included when a byte kills every terminal)."""
        from constrain.grammar.dfa_kernels import byte_classes_of  # (numba: on first use, see dfa.py)

        with self._lock:
            key = self.keys[sid]
            rows = np.empty((len(key), 256), np.int32)
            for i, (t, q) in enumerate(key):
                rows[i] = self._alive_of(t)[q]
            # one key per distinct column (compiled column classes, numbered by first byte)
            inv, reps = byte_classes_of(rows)
            ids = [self._intern(tuple((key[i][0], q2) for i, q2 in enumerate(col) if q2 >= 0))
                   for col in rows[:, reps].T.tolist()]
            self.table[sid] = np.asarray(ids, np.int32)[inv]  # (after interning: it may have grown the table)
            return ids

    def run(self, sid: int, data: bytes) -> int:
        for b in data:
            if sid < 0:
                return sid
            sid = self.step(sid, b)
        return sid
