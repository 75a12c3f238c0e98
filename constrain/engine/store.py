"""The per-(grammar, tokenizer) mask store: cached trie walks, parser work only at boundaries.

For a parser state the allowed tokens are the union, over its lexer readings ``(row k, lexer
state s)``, of

- INSIDE tokens: their bytes keep ``s`` alive with an allowed terminal still possible.  Inside a
  lexeme the parser is frozen, so this set depends only on ``(s, A)`` where ``A`` is the set of
  terminals row ``k`` allows; it is cached as a bitmask (the bulk of most masks);
- boundary tokens: a lexeme ends inside the token and the next one starts.  The numba walk
  records the trie nodes where that can happen (``EXIT_SPLIT``), grouped by the set of
  terminals ``T`` that end there.  Earley rows do not depend on where a lexeme ended, only on
  which terminal it was, so one parser scan of ``(k, T)`` per mask serves every node of the
  group, and the subtrees under those nodes are walked from the next lexeme's state ``(s', A')``
  as a *child entry*, cached by ``(parent entry, group, s', A')``.

So an entry is a node of a tree keyed by the chain of lexer contexts a token can cross; a warm
mask is a few bitmask ORs plus one parser scan per distinct boundary, never a trie walk.  The
rare readings the split cannot describe (maximal munch falling back to an earlier accepting
point, the indentation post-lexer, which reads the text) are handed to the reference parser
(``EXIT_FEED``), which feeds the node's bytes and continues from its real state.

Lifetime: one store per (compiled grammar, vocabulary), shared by all matchers of that pair;
thread-safe (entries are built under a lock; a built entry is immutable).  Memory is capped
(``max_bytes``); least recently used entries are evicted and rebuilt on demand.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np

from constrain.engine.earley import ByteParser, CompiledParserTables
from constrain.engine.store_kernels import EXIT_SPLIT, _or_words, _parents, _walk
from constrain.grammar.lexer import DEAD
from constrain.tokenizers.vocabulary import Vocabulary

_EMPTY_I32 = np.zeros(0, np.int32)


class _Entry:
    """One cached walk: INSIDE words, split groups ``(T, roots, filters)``, feed nodes."""

    __slots__ = ("serial", "words", "groups", "feeds", "nbytes", "visited")

    def __init__(self, serial, words, groups, feeds, visited):
        self.serial = serial
        self.words = words
        self.groups = groups
        self.feeds = feeds
        self.visited = visited
        self.nbytes = (0 if words is None else words.nbytes) + sum(r.nbytes + f.nbytes for _, r, f in groups) \
            + feeds.nbytes + 200


@dataclass
class StoreStats:
    """Counters for the benchmark and for tests that check the cache is used."""

    entries_built: int = 0
    hits: int = 0
    evictions: int = 0
    nodes_visited: int = 0
    parser_scans: int = 0
    feeds: int = 0
    bytes: int = 0
    extra: dict = field(default_factory=dict)


class TokenStore:
    """Lazily built mask cache for one compiled grammar and one vocabulary."""

    def __init__(self, tables: CompiledParserTables, vocab: Vocabulary, *, max_bytes: int = 512 << 20):
        self.tables = tables
        self.vocab = vocab
        self.trie = vocab.trie
        self.width = vocab.n_vocab
        self.n_words = (self.width + 31) // 32
        self.max_bytes = int(max_bytes)
        self.longest = tables.longest
        self.split_ok = tables.indenter is None
        self.parent = _parents(self.trie.depth)
        self._entries: OrderedDict = OrderedDict()
        self._lock = threading.RLock()
        self._serial = 0
        self._expanded: set[int] = set()
        self._flags: dict[int, tuple] = {}  # A -> (n_states, ok, acc)
        n = self.trie.n_nodes
        self._exit_node = np.empty(n, np.int32)
        self._exit_kind = np.empty(n, np.int8)
        self._exit_state = np.empty(n, np.int32)
        self.stats = StoreStats()
        eos = np.zeros(self.n_words, np.uint32)
        for i in vocab.eos_ids:
            eos[i >> 5] |= np.uint32(1) << np.uint32(i & 31)
        self._eos_words = eos

    # ------------------------------------------------------------ entries
    def _state_flags(self, A: int):
        lex = self.tables.lexer
        n = lex.n_states
        got = self._flags.get(A)
        if got is not None and got[0] == n:
            return got[1], got[2]
        live, accept = lex.live, lex.accept
        ok = np.fromiter(((live[s] & A) != 0 for s in range(n)), dtype=np.bool_, count=n)
        if self.longest:
            acc = np.fromiter((accept[s] != 0 for s in range(n)), dtype=np.bool_, count=n)
        else:
            acc = np.fromiter(((accept[s] & A) != 0 for s in range(n)), dtype=np.bool_, count=n)
        self._flags[A] = (n, ok, acc)
        return ok, acc

    def _expand(self, sid: int) -> None:
        if sid not in self._expanded:
            self.tables.lexer.expand(sid)
            self._expanded.add(sid)

    def relex_start(self) -> int:
        """Lexer state that starts every terminal (``-1`` where munch relexing is not pruned)."""
        if not (self.longest and self.split_ok):
            return -1
        with self._lock:
            s = self.tables.lexer.start(self.tables.all_terms)
            if s >= 0:
                self._expand(s)
            return s

    def root_relex(self, committed: bytes) -> int:
        """The pruning run over bytes committed after the last accepting point (see ``_walk``)."""
        r = self.relex_start()
        if r < 0:
            return -3
        lex = self.tables.lexer
        for b in committed:
            r = int(lex.table[r, b])
            if r < 0:
                return -1
            if lex.accept[r]:
                return -3
        return r

    def _build(self, sid: int, A: int, roots: np.ndarray, filters: np.ndarray, lap_before_root: bool,
               root_relex: int = -3) -> _Entry:
        lex = self.tables.lexer
        self._expand(sid)
        relex_start = self.relex_start()
        ok, acc = self._state_flags(A)
        t = self.trie
        while True:
            words = np.zeros(self.n_words, np.uint32)
            n_exit, visited = _walk(lex.table, ok, acc, t.byte, t.depth, t.subtree_end, t.tok_start, t.tok_ids,
                                    sid, roots, filters, self.longest, self.split_ok, lap_before_root,
                                    relex_start, root_relex, words, self._exit_node, self._exit_kind, self._exit_state)
            if n_exit >= 0:
                break
            # overlapping roots (a split node under another of the same group) can revisit nodes
            n = 2 * self._exit_node.shape[0]
            self._exit_node = np.empty(n, np.int32)
            self._exit_kind = np.empty(n, np.int8)
            self._exit_state = np.empty(n, np.int32)
        # exits repeat when roots overlap (a split node below another of the same group):
        # keep each (node, state) once
        groups: dict[int, dict] = {}
        feeds = set()
        accept = lex.accept
        nodes = self._exit_node[:n_exit].tolist()
        states = self._exit_state[:n_exit].tolist()
        kinds = self._exit_kind[:n_exit].tolist()
        for node, s, kind in zip(nodes, states, kinds):
            if kind == EXIT_SPLIT:
                T = self.tables.longest_choice(accept[s]) if self.longest else accept[s] & A
                groups.setdefault(T, {})[node] = s if self.longest else -1
            else:
                feeds.add(node)
        self._serial += 1
        self.stats.entries_built += 1
        self.stats.nodes_visited += visited
        return _Entry(
            self._serial,
            words if words.any() else None,
            [(T, np.fromiter(g.keys(), np.int32, len(g)), np.fromiter(g.values(), np.int32, len(g)))
             for T, g in groups.items()],
            np.asarray(sorted(feeds), np.int32) if feeds else _EMPTY_I32,
            visited,
        )

    def _get(self, key, make) -> _Entry:
        e = self._entries.get(key)
        if e is not None:
            self.stats.hits += 1
            self._entries.move_to_end(key)
            return e
        with self._lock:
            e = self._entries.get(key)
            if e is None:
                e = make()
                self._entries[key] = e
                self.stats.bytes += e.nbytes
                while self.stats.bytes > self.max_bytes and len(self._entries) > 1:
                    _, old = self._entries.popitem(last=False)
                    self.stats.bytes -= old.nbytes
                    self.stats.evictions += 1
            return e

    def root_entry(self, sid: int, A: int, root: int, root_relex: int | None = None) -> _Entry:
        """Walk of ``root``'s subtree from lexer state ``sid``; ``root_relex`` is given when the
        reading passed an accepting point before the root (maximal munch)."""
        roots = np.array([root], np.int32)
        filters = np.array([-1], np.int32)
        lap_before = root_relex is not None
        rr = -3 if root_relex is None else root_relex
        return self._get(("r", sid, A, root, lap_before, rr),
                         lambda: self._build(sid, A, roots, filters, lap_before, rr))

    def child_entry(self, parent: _Entry, gi: int, sid: int, A: int) -> _Entry:
        _, roots, filters = parent.groups[gi]
        return self._get(("c", parent.serial, gi, sid, A), lambda: self._build(sid, A, roots, filters, False))

    @property
    def n_entries(self) -> int:
        return len(self._entries)

    # --------------------------------------------------------------- masks
    def fill(self, parser: ByteParser, out: np.ndarray) -> None:
        """OR the allowed tokens after ``parser``'s output into ``out`` (``uint32[n_words]``),
        EOS included when the output is complete.  ``parser`` is left as it was."""
        walk = _MaskWalk(self, parser, out)
        try:
            walk.fill_from(0)
        finally:
            walk.cleanup()
        if parser.is_complete():
            _or_words(out, self._eos_words)

    def node_bytes(self, node: int, from_depth: int = 0) -> bytes:
        out = bytearray()
        par, byte = self.parent, self.trie.byte
        while node > 0 and self.trie.depth[node] > from_depth:
            out.append(int(byte[node]))
            node = int(par[node])
        out.reverse()
        return bytes(out)


class _MaskWalk:
    """One mask computation: applies entries and runs the parser scans they ask for.

    Rows created by scans get ids far above the parser's own (``1 << 40`` on), live only in
    the parser's chart for the duration of the walk, and are removed by :meth:`cleanup`.
    """

    _RID0 = 1 << 40

    def __init__(self, store: TokenStore, parser: ByteParser, out: np.ndarray):
        self.store = store
        self.p = parser
        self.out = out
        self.next_rid = self._RID0
        self.created: list[int] = []
        self.done: set = set()

    def cleanup(self) -> None:
        chart, row_pos = self.p.chart, self.p.row_pos
        for rid in self.created:
            chart.pop(rid, None)
            row_pos.pop(rid, None)

    def fill_from(self, root: int) -> None:
        p, store = self.p, self.store
        scans: dict = {}
        for th in p.threads:
            k, sid = th[0], th[1]
            A = p._allowed(k)
            rr = None
            if store.longest and 0 <= th[2] < p.pos:
                rr = store.root_relex(bytes(p.buf[th[2]:p.pos]))
            e = store.root_entry(sid, A, root, rr)
            self._apply(e, k, scans, root)

    def _apply(self, e: _Entry, k: int, scans: dict, root: int) -> None:
        store, p = self.store, self.p
        key = (e.serial, k)
        if key in self.done:
            return
        self.done.add(key)
        if e.words is not None:
            _or_words(self.out, e.words)
        for gi, (T, _, _) in enumerate(e.groups):
            rid = self._scan(k, T, scans)
            if rid is None:
                continue
            for th in p._spawn(rid):
                child = store.child_entry(e, gi, th[1], p._allowed(rid))
                self._apply(child, rid, scans, root)
        for x in e.feeds.tolist():
            self._feed(int(x), root)

    def _scan(self, k: int, T: int, scans: dict):
        key = (k, T)
        if key in scans:
            return scans[key]
        self.store.stats.parser_scans += 1
        p = self.p
        seeds = p._seeds(k, T)
        rid = None
        if seeds:
            rid = self.next_rid
            self.next_rid += 1
            p.chart[rid] = p.t.new_row(rid, seeds, p.chart)
            p.row_pos[rid] = p.pos
            self.created.append(rid)
            if not p.chart[rid].allowed:
                rid = None
        scans[key] = rid
        return rid

    def _feed(self, x: int, root: int) -> None:
        """Hand node ``x`` to the reference parser: feed its bytes, walk its subtree from there."""
        store, p = self.store, self.p
        key = ("feed", x)
        if key in self.done:
            return
        self.done.add(key)
        store.stats.feeds += 1
        mark = p.n_steps
        d_root = int(store.trie.depth[root])
        if not p.feed(store.node_bytes(x, d_root)):
            return
        try:
            if p.is_viable():
                t = store.trie
                for j in range(int(t.tok_start[x]), int(t.tok_start[x + 1])):
                    tid = int(t.tok_ids[j])
                    self.out[tid >> 5] |= np.uint32(1) << np.uint32(tid & 31)
                saved, self.done = self.done, set()
                self.fill_from(x)
                self.done = saved
        finally:
            p.rollback_to(mark)
