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
mask is a few bitmask ORs plus one parser scan per distinct boundary, never a trie walk.  Under
the exact lexing policy the walks themselves share work: the subtree under a root's child
depends only on that node and its lexer state, so big ones are recorded once and replayed by
later walks (``_SubtreeMemo``; a JSON object's key positions, each a new lexer state where
almost every token fits, walk the trie once instead of once per byte of the key).  The
rare readings the split cannot describe (maximal munch falling back to an earlier accepting
point, the indentation post-lexer, which reads the text) are handed to the reference parser
(``EXIT_FEED``), which feeds the node's bytes and continues from its real state.

Once entries and scans exist, the walk over them is mirrored in a flat index of arrays and
one hash table (``_FlatIndex``) and runs as one compiled call (``apply_flat``); the Python walk
stays the reference and handles what the index lacks.  A store can be saved and loaded with
the grammar tables it refers to (``snapshot``/``save``/``load``), and built ahead of time
within a budget (``precompute``).

Lifetime: one store per (compiled grammar, vocabulary), shared by all matchers of that pair;
thread-safe (entries are built under a lock; a built entry is immutable).  Memory is capped
(``max_bytes``); least recently used entries are evicted and rebuilt on demand.
"""

from __future__ import annotations

import bisect
import hashlib
import pickle
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from constrain._arrays import unique_inverse, unique_sorted
from constrain.engine.earley import ByteParser, CompiledParserTables, row_sig, scan_seeds
from constrain.engine.store_kernels import (E_COLS, E_FLAGS, E_G_COUNT, E_G_START, E_S_LEN, E_S_START, E_SLOT, E_SPAN,
                                            EXIT_SPLIT, FLAT_ALIVE, FLAT_FEEDS, G_AID, G_CHILD, G_COLS, G_IGN, G_PL, G_TID,
                                            H_ABSENT, H_CHILD, H_NLA, H_ROOT, H_SCAN, PL_CLOSE, PL_NL, PL_OPEN, PL_PLAIN,
                                            MC_EXITS, MC_KEYS, MC_RUNS, MC_SLOTS, ONE_MAX_ROWS, PL_REFUSE, _or_ids,
                                            _or_words, _walk, apply_flat, apply_many, apply_one, apply_two, fill_lean, ht_grow,
                                            ht_put, sparse_ids)
from constrain.errors import ConstrainError
from constrain.grammar.lexer import DEAD
from constrain.tokenizers.vocabulary import Vocabulary

_EMPTY_I32 = np.zeros(0, np.int32)
# the walk's memo arrays when it has none (``memo_aid`` -1: never read)
_NO_MEMO = (np.full((2, 4), -1, np.int64), np.empty((0, 4), np.int64), np.empty((0, 2), np.int32),
            np.empty((0, 3), np.int32), np.zeros(4, np.int64))
_NO_DONE = np.zeros((0, 3), np.int64)  # apply_flat makes a mask's set on its first call


class _Entry:
    """One cached walk: INSIDE tokens, split groups ``(T, roots, filters)``, feed nodes.

    The INSIDE tokens are kept one of two ways.  At most ``_SPARSE_MAX`` of them (most child
    entries: a median of one token at 129k tokens on grammars/python) are a sorted id array,
    ``ids``; more are dense ``words``, which the store interns by content (``wkey``) so that
    entries with the same tokens share one read-only array: on grammars/python at 129k
    tokens ~49,000 entries held ~1,150 distinct dense arrays of 16 KB, and kept apart they
    were 750 MB, past the store's cap, so it evicted ~114,000 entries a walk."""

    __slots__ = ("serial", "words", "ids", "wkey", "groups", "feeds", "nbytes", "span", "fmeta", "fneeds", "one")

    def __init__(self, serial, words, groups, feeds, fmeta=None):
        self.serial = serial
        #: applies its last walk took (picks the Python or the compiled walk); -1 before the
        #: first, which goes compiled when the index is on, so the kernel's tables learn the
        #: walk's scans and children as it is built (a first walk in Python would leave them
        #: to the second walk, which then resolves every group in Python)
        self.span = -1
        #: its walks may go through ``apply_one`` (not when they always need Python: feeds,
        #: known here, or a NEWLINE outside brackets, found by a first try)
        self.one = feeds.shape[0] == 0
        #: per feed node, what the munch fallback there would relex (``_feed_meta``), or absent
        self.fmeta = fmeta or {}
        #: some feed node's fallback point is the reading's own (its pre-check reads the thread)
        self.fneeds = any(m[1] < 0 for m in self.fmeta.values())
        self.words, self.ids = _split_inside(words)
        self.wkey = None  # content key of ``words`` once the store holds it (TokenStore._hold)
        self.groups = tuple(groups)  # (a tuple of int and array tuples: the garbage collector stops tracking it)
        self.feeds = feeds
        # dense words are counted by the store, once per distinct array (the flat index keeps
        # one more copy of each in its pool, not counted: the store's memory is at most its
        # cap plus that copy of the dense part)
        self.nbytes = (0 if self.ids is None else self.ids.nbytes) \
            + sum(r.nbytes + f.nbytes for _, r, f in groups) + feeds.nbytes + 200

    def inside_words(self, n_words: int) -> np.ndarray:
        """The INSIDE tokens as a fresh dense bitmask of ``n_words`` words (tests, tools)."""
        out = np.zeros(n_words, np.uint32)
        if self.words is not None:
            out |= self.words
        if self.ids is not None:
            _or_ids(out, self.ids)
        return out


def _split_inside(words):
    """``(dense words, None)``, ``(None, sorted ids)`` for at most ``_SPARSE_MAX`` tokens, or
    ``(None, None)`` for none."""
    if words is None:
        return None, None
    ids, n = sparse_ids(words, _SPARSE_MAX)
    if n < 0:
        return words, None
    return (None, None) if n == 0 else (None, ids)


_SPARSE_MAX = 64  # an entry with at most this many INSIDE tokens keeps them as ids, applied bit by bit
_MISS = object()
_FEED_MEMO_MAX = 1 << 18  # entries of each walk memo (feeds, pre-check); past it one starts again empty


def _memo_put(memo: dict, key, value) -> None:
    """``memo[key] = value`` for the walk's bounded memos: a full memo starts again empty (a
    forgotten entry only costs its work again)."""
    if len(memo) >= _FEED_MEMO_MAX:
        memo.clear()
    memo[key] = value
_FLAT_MIN_SPAN = 8  # a root entry whose last walk applied this many entries goes compiled


def _lean_ok(e: _Entry) -> bool:
    """``e``'s walks may try ``apply_one``: walked before (the flat tables learned it), short
    enough for its buffers, and not one that always needs Python."""
    return e.one and 0 <= e.span < ONE_MAX_ROWS


class _SubtreeMemo:
    """The trie walk's subtree memo (see ``_walk`` in store_kernels.py): subtrees of a walk's
    root children already walked from the same lexer state under the same allowed set, as
    token-index runs and exits.  Exact lexing policy only (under maximal munch a subtree's
    walk depends on the accepting points above it).

    Lifetime: the store's; it only grows (lexer states and the trie never change meaning),
    up to ``max_bytes``, past which walks record nothing new.  Not persisted (a loaded store
    starts with an empty memo).  Used under the store's lock (entries are built under it).
    """

    MIN_NODES = 64  # a smaller subtree is cheaper walked again than recorded

    def __init__(self, max_bytes: int, trie):
        self.max_bytes = max_bytes
        # the most slots one walk can add: a subtree is recorded once, and only big ones are
        n = trie.n_nodes
        self.max_new = int((trie.subtree_end[:n] - np.arange(n) >= self.MIN_NODES).sum())
        self.aids: dict[int, int] = {}  # allowed set -> its small id (the memo's key part)
        self.mk = np.full((1024, 4), -1, np.int64)
        self.slots = np.empty((1024, 4), np.int64)
        self.runs = np.empty((4096, 2), np.int32)
        self.ex = np.empty((1024, 3), np.int32)
        self.count = np.zeros(4, np.int64)  # MC_* (used slots, runs, exits, table keys)

    @property
    def nbytes(self) -> int:
        return self.mk.nbytes + self.slots.nbytes + self.runs.nbytes + self.ex.nbytes

    def prepare(self, A: int, n_roots: int) -> int:
        """Room for one walk of ``n_roots`` roots (at most 256 new slots a root, and at most
        one per trie node of ``MIN_NODES`` nodes or more); the id of ``A``.  A pool more than
        half used doubles while the memo is under its cap."""
        aid = self.aids.get(A)
        if aid is None:
            aid = self.aids[A] = len(self.aids)
        c = self.count
        need = min(256 * n_roots, self.max_new)
        while 2 * (c[MC_KEYS] + need) > self.mk.shape[0]:
            if self.nbytes > self.max_bytes:
                return aid  # (the kernel checks the table's room itself: it records no more)
            self.mk = ht_grow(self.mk)
        if self.nbytes <= self.max_bytes:
            if c[MC_SLOTS] + need > self.slots.shape[0]:
                self.slots = _grown(self.slots, max(2 * self.slots.shape[0], int(c[MC_SLOTS]) + need))
            if 2 * c[MC_RUNS] > self.runs.shape[0]:
                self.runs = _grown(self.runs, 2 * self.runs.shape[0])
            if 2 * c[MC_EXITS] > self.ex.shape[0]:
                self.ex = _grown(self.ex, 2 * self.ex.shape[0])
        return aid


def _grown(a: np.ndarray, n: int) -> np.ndarray:
    b = np.empty((n,) + a.shape[1:], a.dtype)
    b[: a.shape[0]] = a
    return b


class _FlatIndex:
    """The store's entries as flat arrays, so the warm part of a mask walk (entries already
    built, scans already memoised) runs in one compiled call
    (:func:`~constrain.engine.store_kernels.apply_flat`) instead of ~100 Python calls a mask
    on grammars whose tokens cross many lexemes.  Anything missing is resolved by the Python
    walk and recorded here.  Terminal and allowed sets are Python ints (any width): they are
    interned to small ids.  With an indentation post-lexer the bracket depth is part of a
    walk row, each group row holds what the post-lexer makes of its lexeme (``G_PL``), and a
    NEWLINE outside brackets (it reads the indentation) goes back to Python.

    Arrays only, no numba typed containers: those are unboxed at every call (~5 µs, more than
    a short walk costs in Python) and their methods, called from Python, are compiled at run
    time in every process (~2 s that numba's disk cache does not keep).  So the memo dicts are
    one open-addressing table (``hk``, tags ``H_*``, key and value in one row) plus an array
    of each row's allowed-set id by row sig (``sig_aid``), dense INSIDE words live in rows
    of ``wpool`` (a copy: the entry keeps its own for the Python walk and snapshots) and
    sparse ones in ``spool``.  The kernel releases the GIL; ``lock`` is held around each
    kernel call and each change to the arrays (growth replaces them), so batch fills on
    threads overlap everything but the kernel itself."""

    def __init__(self, store: "TokenStore"):
        self.store = store
        self.ent = np.zeros((64, E_COLS), np.int64)
        self.grp = np.full((256, G_COLS), -1, np.int64)
        self.n_groups = 0
        self.wpool = np.zeros((4, store.n_words), np.uint32)
        self.free_slots = list(range(3, -1, -1))
        self.spool = np.zeros(1024, np.int64)
        self.sp_used = 0
        self.sp_dead = 0
        self.hk = np.full((1024, 4), -1, np.int64)
        self.hn = 0
        self.sig_aid = np.full(1024, H_ABSENT, np.int64)
        self.lock = threading.Lock()
        self.entry_of: dict[int, _Entry] = {}
        #: dense words' content key (``_Entry.wkey``) -> [pool row, entries using it]
        self.slot_of: dict = {}
        self.term_ids: dict[int, int] = {}
        self.allowed_ids: dict[int, int] = {}
        self.allowed_of: list[int] = []

    def term_id(self, T: int) -> int:
        i = self.term_ids.get(T)
        if i is None:
            i = self.term_ids[T] = len(self.term_ids)
        return i

    def allowed_id(self, A: int) -> int:
        i = self.allowed_ids.get(A)
        if i is None:
            i = self.allowed_ids[A] = len(self.allowed_of)
            self.allowed_of.append(A)
        return i

    def put(self, tag: int, a: int, b: int, v: int) -> None:
        """Record ``(tag, a, b) -> v`` in the memo table (caller holds ``lock``)."""
        if 2 * (self.hn + 1) > self.hk.shape[0]:
            self.hk = ht_grow(self.hk)
        self.hn += ht_put(self.hk, tag, a, b, v)

    def put_child(self, gid: int, aid: int, child: int) -> None:
        """Record group ``gid``'s child entry for allowed-set id ``aid`` (-1: none), in the
        table and, when it is the group's cached one, in its row (a child rebuilt after an
        eviction has a new id; caller holds ``lock``)."""
        self.put(H_CHILD, gid, aid, child)
        if self.grp[gid, G_AID] == aid:
            self.grp[gid, G_CHILD] = child

    def put_allowed(self, sig: int, aid: int) -> None:
        """Record the allowed-set id of the row with id ``sig`` (caller holds ``lock``)."""
        n = self.sig_aid.shape[0]
        if sig >= n:
            while n <= sig:
                n *= 2
            grown = np.full(n, H_ABSENT, np.int64)
            grown[: self.sig_aid.shape[0]] = self.sig_aid
            self.sig_aid = grown
        self.sig_aid[sig] = aid

    def register(self, e: _Entry, key=None) -> None:
        """Give entry ``e`` its rows; ``key``, its store key: a root entry at the trie's root
        read without a munch fallback (``("r", state, A, 0, False, _)``) is also recorded under
        ``(H_ROOT, state, id of A)`` for :func:`~constrain.engine.store_kernels.fill_lean`."""
        with self.lock:
            self._register(e)
            if key is not None and key[0] == "r" and key[3] == 0 and not key[4]:
                self.put(H_ROOT, key[1], self.allowed_id(key[2]), e.serial)

    def _register(self, e: _Entry) -> None:
        eid = e.serial
        if eid >= self.ent.shape[0]:
            n = self.ent.shape[0]
            while n <= eid:
                n *= 2
            ent = np.zeros((n, E_COLS), np.int64)
            ent[: self.ent.shape[0]] = self.ent
            self.ent = ent
        k = len(e.groups)
        if self.n_groups + k > self.grp.shape[0]:
            n = self.grp.shape[0]
            while n < self.n_groups + k:
                n *= 2
            grp = np.full((n, G_COLS), -1, np.int64)
            grp[: self.n_groups] = self.grp[: self.n_groups]
            self.grp = grp
        store = self.store
        ignore = store.tables.ignore_mask
        for i, (T, _, _) in enumerate(e.groups):
            pl, T = (PL_PLAIN, T) if store.indenter is None else store.post_lex_class(T)
            g = self.grp[self.n_groups + i]
            g[G_TID] = self.term_id(T)
            g[G_IGN] = T & ~ignore == 0
            g[G_PL] = pl
        row = self.ent[eid]
        row[:] = 0
        row[E_G_START] = self.n_groups
        row[E_G_COUNT] = k
        row[E_SLOT] = -1
        self.n_groups += k
        ids = e.ids
        if ids is not None:  # most child entries hold a handful of tokens
            n = ids.shape[0]
            if self.sp_used + n > self.spool.shape[0]:
                self._grow_spool(n)  # (may compact: rewrites rows of the same ent array)
            self.spool[self.sp_used:self.sp_used + n] = ids
            row[E_S_START] = self.sp_used
            row[E_S_LEN] = n
            self.sp_used += n
        elif e.words is not None:
            # one pool row per distinct array: entries the store interned to the same words
            # (``wkey``) share it; a row is freed with its last entry
            key = e.wkey if e.wkey is not None else ("e", eid)
            held = self.slot_of.get(key)
            if held is None:
                if not self.free_slots:
                    n = self.wpool.shape[0]
                    pool = np.zeros((2 * n, self.wpool.shape[1]), np.uint32)
                    pool[:n] = self.wpool
                    self.wpool = pool
                    self.free_slots = list(range(2 * n - 1, n - 1, -1))
                held = self.slot_of[key] = [self.free_slots.pop(), 0]
                self.wpool[held[0]] = e.words
            held[1] += 1
            row[E_SLOT] = held[0]
        self.entry_of[eid] = e
        row[E_SPAN] = -1 if e.one else -2
        row[E_FLAGS] = FLAT_ALIVE | (FLAT_FEEDS if e.feeds.shape[0] else 0)

    def _grow_spool(self, need: int) -> None:
        """Room for ``need`` more sparse ids: compact away evicted entries' ids when they are
        most of the pool, else double it."""
        live = self.sp_used - self.sp_dead
        if self.sp_dead > live:
            pool = np.zeros(max(self.spool.shape[0], 2 * (live + need)), np.int64)
            at = 0
            for eid in self.entry_of:
                row = self.ent[eid]
                n = int(row[E_S_LEN])
                if n:
                    s0 = int(row[E_S_START])
                    pool[at:at + n] = self.spool[s0:s0 + n]
                    row[E_S_START] = at
                    at += n
            self.spool, self.sp_used, self.sp_dead = pool, at, 0
        n = self.spool.shape[0]
        while n < self.sp_used + need:
            n *= 2
        if n > self.spool.shape[0]:
            pool = np.zeros(n, np.int64)
            pool[: self.sp_used] = self.spool[: self.sp_used]
            self.spool = pool

    def evict(self, e: _Entry) -> None:
        eid = e.serial
        with self.lock:
            if eid < self.ent.shape[0] and self.entry_of.pop(eid, None) is not None:
                row = self.ent[eid]
                row[E_FLAGS] = 0
                if row[E_SLOT] >= 0:
                    key = e.wkey if e.wkey is not None else ("e", eid)
                    held = self.slot_of[key]
                    held[1] -= 1
                    if held[1] == 0:
                        del self.slot_of[key]
                        self.free_slots.append(held[0])
                    row[E_SLOT] = -1
                self.sp_dead += int(row[E_S_LEN])
                row[E_S_LEN] = 0


@dataclass
class StoreStats:
    """Counters for the benchmark and for tests that check the cache is used."""

    entries_built: int = 0
    hits: int = 0
    evictions: int = 0
    nodes_visited: int = 0
    parser_scans: int = 0
    mask_hits: int = 0
    feeds: int = 0  #: nodes handed to the reference parser, memoised ones included
    feed_hits: int = 0  #: of those, answered by the feed memo (the parser not run)
    compiled_fills: int = 0  #: whole-mask misses filled by one ``fill_lean`` call
    bytes: int = 0


@dataclass
class PrecomputeReport:
    """What :meth:`TokenStore.precompute` built; ``complete`` is ``False`` when a budget cut
    the walk short (the rest is built lazily on first visit)."""

    seconds: float
    rows: int
    lexer_states: int
    documents: int
    entries_built: int
    entry_bytes: int
    masks: int
    mask_bytes: int
    complete: bool


class TokenStore:
    """Lazily built mask cache for one compiled grammar and one vocabulary."""

    def __init__(self, tables: CompiledParserTables, vocab: Vocabulary, *, max_bytes: int = 512 << 20,
                 max_mask_bytes: int = 64 << 20, max_mask_work: int | None = None):
        if max_mask_work is None:
            from constrain.limits import current_limits

            max_mask_work = current_limits().max_mask_work
        #: work units (entries applied, parser scans, reference-parser feeds) one mask may take;
        #: past it the fill raises LimitExceeded("max_mask_work") (the matcher is unchanged)
        self.max_mask_work = int(max_mask_work)
        self.tables = tables
        self.vocab = vocab
        self.trie = vocab.trie
        self.width = vocab.n_vocab
        self.n_words = (self.width + 31) // 32
        self.max_bytes = int(max_bytes)
        self.longest = tables.longest
        #: Lark's indentation post-lexer, emulated structurally by the walk (paren depth is
        #: carried along a token's lexemes; only a NEWLINE outside brackets, which reads the
        #: indentation, goes to the reference parser)
        self.indenter = tables.indenter
        self._entries: OrderedDict = OrderedDict()
        #: content key -> [dense INSIDE words, entries holding them] (see _hold)
        self._dense: dict = {}
        self._masks: OrderedDict = OrderedDict()  # mask_key -> uint32 words (without EOS)
        self._mask_eos: dict = {}  # mask_key -> output complete (maximal munch, see _eos_known)
        self._mask_bytes = 0
        self.max_mask_bytes = int(max_mask_bytes)
        #: (mask key, bytes) -> what feeding them leaves (see _MaskWalk._feed); not cleared
        #: with the masks: a parse-table entry, not a mask
        self._feed_memo: dict = {}
        self._node_bytes: dict = {}  # (trie node, root depth) -> its bytes below the root (feeds)
        #: mask key -> output complete, under an indentation post-lexer (see _complete)
        self._end_memo: dict = {}
        #: (entry, row id, allowed, thread fallback) -> feed nodes the pre-check keeps; under
        #: an indenter (entry, position's mask key) -> feed nodes the parser took
        self._live_feeds: dict = {}
        self._lock = threading.RLock()
        self._serial = 0
        self._flags: dict[int, tuple] = {}  # A -> (n_states, ok, acc)
        n = self.trie.n_nodes
        self._exit_node = np.empty(n, np.int32)
        self._exit_kind = np.empty(n, np.int8)
        self._exit_state = np.empty(n, np.int32)
        #: the walk's subtree memo (exact policy only; ``None``: every walk from scratch)
        self._subtrees: _SubtreeMemo | None = None if self.longest else _SubtreeMemo(min(64 << 20, max_bytes // 8), self.trie)
        self.stats = StoreStats()
        # ignored terminals W with W·W ⊆ W (whitespace runs): under the exact policy a new W
        # lexeme right after a W lexeme reads nothing the first one's continuation does not
        self.closed_ignore = 0
        if not self.longest:
            for t in tables.grammar.ignore:
                if _concat_closed(tables.grammar.terminals[t].dfa):
                    self.closed_ignore |= 1 << t
        # the lexer state that starts every terminal, for pruning munch fallbacks (see _walk)
        self.relex_start = -1
        if self.longest:
            self.relex_start = tables.lexer.start(tables.all_terms)
            if self.relex_start >= 0:
                tables.lexer.expand(self.relex_start)
        eos = np.zeros(self.n_words, np.uint32)
        for i in vocab.eos_ids:
            eos[i >> 5] |= np.uint32(1) << np.uint32(i & 31)
        self._eos_words = eos
        self._post_lex_classes: dict[int, tuple[int, int]] = {}
        #: the compiled walk's tables (``None``: every walk in Python, the reference)
        self.flat: _FlatIndex | None = _FlatIndex(self)
        #: positions :meth:`_fill_compiled` can take (with the flat index on): exact lexing, no post-lexer
        self._plain = not self.longest and self.indenter is None
        self._saved_entries = 0  # entries at the last save / load (maybe_save)
        self._saved_at = float("-inf")

    # ------------------------------------------------------------ entries
    def post_lex_class(self, T: int) -> tuple[int, int]:
        """What the indentation post-lexer makes of a lexeme of terminals ``T``, whatever the
        bracket depth (as :meth:`ByteParser._emit`): ``(PL_* class, terminals to scan)``.  A
        tie between a token and an ignored pattern goes to the token; a lexeme still ambiguous
        is refused; a NEWLINE scans nothing (inside brackets the row is unchanged, outside
        the indentation decides)."""
        got = self._post_lex_classes.get(T)
        if got is None:
            ind = self.indenter
            T2 = T
            non_ignored = T & ~self.tables.ignore_mask
            if non_ignored and non_ignored & (non_ignored - 1) == 0:
                T2 = non_ignored
            t = T2.bit_length() - 1
            if T2 & (T2 - 1):
                got = (PL_REFUSE, T2)
            elif t == ind.newline:
                got = (PL_NL, 0)
            elif t in ind.open:
                got = (PL_OPEN, T2)
            elif t in ind.close:
                got = (PL_CLOSE, T2)
            else:
                got = (PL_PLAIN, T2)
            self._post_lex_classes[T] = got
        return got

    def _state_flags(self, A: int):
        """``bool[n_states]`` arrays for the walk: the state can still lex a terminal of ``A``,
        it accepts one (any terminal with longest match).  Extended, not rebuilt, as lexer
        states are added (rebuilding them for every new state was quadratic in a cold walk)."""
        lex = self.tables.lexer
        n = lex.n_states
        got = self._flags.get(A)
        if got is not None and got[0] == n:
            return got[1], got[2]
        m = 0 if got is None else got[0]
        live, accept = lex.live, lex.accept
        ok = np.fromiter(((live[s] & A) != 0 for s in range(m, n)), dtype=np.bool_, count=n - m)
        if self.longest:
            acc = np.fromiter((accept[s] != 0 for s in range(m, n)), dtype=np.bool_, count=n - m)
        else:
            acc = np.fromiter(((accept[s] & A) != 0 for s in range(m, n)), dtype=np.bool_, count=n - m)
        if got is not None:
            ok, acc = np.concatenate((got[1], ok)), np.concatenate((got[2], acc))
        self._flags[A] = (n, ok, acc)
        return ok, acc

    def _memo_arrays(self) -> tuple:
        m = self._subtrees
        if m is None:
            return _NO_MEMO
        return m.mk, m.slots, m.runs, m.ex, m.count

    def root_relex(self, committed: bytes) -> int:
        """The pruning run over bytes committed after the last accepting point (see ``_walk``)."""
        r = self.relex_start if self.relex_start >= 0 else -3
        for b in committed:
            r = self._relex_step(r, b)
            if r < 0:
                break
        return r

    def _relex_step(self, r: int, b: int) -> int:
        """One byte of :meth:`root_relex`'s run (``-1`` dead and ``-3`` accepted absorb)."""
        if r < 0:
            return r
        lex = self.tables.lexer
        r = lex.step(r, b)
        if r < 0:
            return -1
        return -3 if lex.accept[r] else r

    def _build(self, sid: int, A: int, roots: np.ndarray, filters: np.ndarray, lap_before_root: bool,
               root_relex: int = -3) -> _Entry:
        lex = self.tables.lexer
        lex.expand(sid)  # (at once when closed: the lexer keeps which states are)
        ok, acc = self._state_flags(A)
        t = self.trie
        m = self._subtrees
        maid = -1 if m is None else m.prepare(A, roots.shape[0])
        while True:
            words = np.zeros(self.n_words, np.uint32)
            n_exit, visited = _walk(lex.table, ok, acc, t.byte, t.depth, t.subtree_end, t.tok_start, t.tok_ids,
                                    t.max_depth, sid, roots, filters, self.longest, True, lap_before_root,
                                    self.relex_start, root_relex, words, self._exit_node, self._exit_kind, self._exit_state,
                                    maid, _SubtreeMemo.MIN_NODES, *self._memo_arrays())
            if n_exit >= 0:
                break
            # overlapping roots (a split node under another of the same group) can revisit nodes
            n = 2 * self._exit_node.shape[0]
            self._exit_node = np.empty(n, np.int32)
            self._exit_kind = np.empty(n, np.int8)
            self._exit_state = np.empty(n, np.int32)
        # exits repeat when roots overlap (a split node below another of the same group):
        # keep each (node, state) once
        if self.longest or n_exit <= 64:  # (few exits: the loop is cheaper than array calls)
            groups, feeds = self._exit_groups_loop(n_exit, A)
        else:
            groups, feeds = self._exit_groups(n_exit, A)
        self._serial += 1
        self.stats.entries_built += 1
        self.stats.nodes_visited += visited
        fmeta = (self._feed_meta(sid, roots, lap_before_root, feeds)
                 if feeds and self.longest and self.indenter is None else None)  # (munch fallbacks only)
        return _Entry(self._serial, words, groups, np.asarray(sorted(feeds), np.int32) if feeds else _EMPTY_I32, fmeta)

    def _exit_groups(self, n_exit: int, A: int) -> tuple[list, set]:
        """A walk's exits as split groups ``(T, roots, filters)`` (exact policy: the terminals
        ``T`` that end at the node's state, its distinct nodes in trie order, no filters) and
        the feed nodes.  Array work: a walk under a free-form value can leave ~1,000 exits, and
        grouping them one by one in Python was most of a cold walk on schema_complex."""
        nodes = self._exit_node[:n_exit]
        kinds = self._exit_kind[:n_exit]
        states = self._exit_state[:n_exit]
        split = kinds == EXIT_SPLIT
        feeds = set() if split.all() else set(nodes[~split].tolist())
        sn, ss = nodes[split], states[split]
        if sn.shape[0] == 0:
            return [], feeds
        accept = self.tables.lexer.accept
        us, inv = unique_inverse(ss)
        by_T: dict[int, list[int]] = {}
        for i, st in enumerate(us.tolist()):
            by_T.setdefault(accept[st] & A, []).append(i)
        groups = []
        for T, idx in by_T.items():
            if len(by_T) == 1:
                sel = sn
            else:
                pick = np.zeros(us.shape[0], dtype=bool)
                pick[idx] = True
                sel = sn[pick[inv]]
            roots = unique_sorted(sel).astype(np.int32)
            groups.append((T, roots, np.full(roots.shape[0], -1, np.int32)))
        return groups, feeds

    def _exit_groups_loop(self, n_exit: int, A: int) -> tuple[list, set]:
        """:meth:`_exit_groups` one exit at a time, and the only version under maximal munch:
        there the group's terminal is munch's choice among those the state accepts, and each
        root keeps its state as its filter (the last one recorded for it)."""
        groups: dict[int, dict] = {}
        feeds = set()
        accept = self.tables.lexer.accept
        nodes = self._exit_node[:n_exit].tolist()
        states = self._exit_state[:n_exit].tolist()
        kinds = self._exit_kind[:n_exit].tolist()
        longest = self.longest
        for node, s, kind in zip(nodes, states, kinds):
            if kind == EXIT_SPLIT:
                T = self.tables.longest_choice(accept[s]) if longest else accept[s] & A
                groups.setdefault(T, {})[node] = s if longest else -1
            else:
                feeds.add(node)
        return [(T, np.fromiter(g.keys(), np.int32, len(g)), np.fromiter(g.values(), np.int32, len(g)))
                for T, g in groups.items()], feeds

    def _feed_meta(self, sid: int, roots: np.ndarray, lap_before_root: bool, feeds) -> dict:
        """For each feed node of a walk from ``sid`` at ``roots`` (maximal munch), what the
        reference parser will do there, so :meth:`_MaskWalk._feed_fails` can tell most failing
        feeds without running it: ``(relexed, las, dead)`` where ``las`` is the lexer state at
        the lexeme's last accepting point, ``relexed`` the node's bytes after that point (``las
        = -1``: the point is before the root, in the parser's own text, and ``relexed`` is the
        node's bytes after the root) and ``dead`` whether the node's byte kills the lexeme
        (else it is alive with no allowed terminal, and lives on only if its fallback lexeme is
        allowed).  A node under two roots is left out (its
        history depends on the root)."""
        lex, trie = self.tables.lexer, self.trie
        rs = np.sort(roots).tolist()
        ends = [int(trie.subtree_end[r]) for r in rs]
        out = {}
        for x in feeds:
            i = bisect.bisect_right(rs, x) - 1
            under = [r for r, e in zip(rs[:i + 1], ends[:i + 1]) if r < x < e]
            if len(under) != 1:
                continue
            r = under[0]
            data = trie.node_bytes(x, int(trie.depth[r]))
            st = sid
            if lex.accept[st]:
                lap, las = 0, st
            elif lap_before_root:
                lap, las = -2, -1
            else:
                lap, las = -1, -1
            for j, b in enumerate(data[:-1]):
                st = lex.step(st, b)
                if st < 0:
                    break
                if lex.accept[st]:
                    lap, las = j + 1, st
            if st < 0 or lap == -1:
                continue  # (not a state the walk feeds from: leave it to the parser)
            nxt = lex.step(st, data[-1])
            out[x] = (data if lap == -2 else data[lap:], las, nxt < 0)
        return out

    def _hit(self, key) -> _Entry | None:
        """The entry under ``key`` if there is one, marked recently used (lock-free: the hit
        path of every mask)."""
        e = self._entries.get(key)
        if e is not None:
            self.stats.hits += 1
            try:
                self._entries.move_to_end(key)
            except KeyError:  # evicted by another thread since the lookup: the entry is still valid
                pass
        return e

    def _get(self, key, make) -> _Entry:
        e = self._hit(key)
        if e is not None:
            return e
        with self._lock:
            e = self._entries.get(key)
            if e is None:
                e = make()
                self.stats.bytes += e.nbytes + self._hold(e)
                if self.flat is not None:
                    # before the entry is visible: a walk on another thread that finds it
                    # (lock-free) hands its id to the kernel, which reads its row
                    self.flat.register(e, key)
                self._entries[key] = e
                while self.stats.bytes > self.max_bytes and len(self._entries) > 1:
                    _, old = self._entries.popitem(last=False)
                    if self.flat is not None:
                        self.flat.evict(old)
                    self.stats.bytes -= old.nbytes + self._release(old)
                    self.stats.evictions += 1
            return e

    def _hold(self, e: _Entry) -> int:
        """Intern ``e``'s dense words by content (caller holds the lock): an entry whose words
        another held entry has takes that one's array.  Returns the bytes this adds (the
        array's size when it is new, else 0)."""
        if e.words is None:
            return 0
        key = hashlib.blake2b(e.words.data, digest_size=16).digest()
        e.wkey = key
        held = self._dense.get(key)
        if held is not None and np.array_equal(held[0], e.words):
            held[1] += 1
            e.words = held[0]
            return 0
        if held is not None:  # (a 128-bit collision: keep this one apart)
            e.wkey = key = key + e.serial.to_bytes(8, "little")
        e.words.flags.writeable = False
        self._dense[key] = [e.words, 1]
        return e.words.nbytes

    def _release(self, e: _Entry) -> int:
        """Undo :meth:`_hold` for an evicted entry; returns the bytes this frees."""
        if e.words is None:
            return 0
        held = self._dense[e.wkey]
        held[1] -= 1
        if held[1]:
            return 0
        del self._dense[e.wkey]
        return e.words.nbytes

    def root_entry(self, sid: int, A: int, root: int, root_relex: int | None = None) -> _Entry:
        """Walk of ``root``'s subtree from lexer state ``sid``; ``root_relex`` is given when the
        reading passed an accepting point before the root (maximal munch).  A hit (every warm
        mask asks once per reading) is one lookup; the walk's arrays are made only to build."""
        lap_before = root_relex is not None
        rr = -3 if root_relex is None else root_relex
        key = ("r", sid, A, root, lap_before, rr)
        e = self._hit(key)
        if e is not None:
            return e
        return self._get(key, lambda: self._build(sid, A, np.array([root], np.int32), np.array([-1], np.int32),
                                                  lap_before, rr))

    def boundary_entry(self, sid: int, A: int, root: int, filt: int) -> _Entry:
        """Walk of the children of ``root`` that a lexeme in lexer state ``filt`` cannot take,
        each starting a new lexeme from state ``sid`` (what a split group's child entry walks,
        for one root: see :meth:`_MaskWalk._end_newlines`)."""
        key = ("b", sid, A, root, filt)
        e = self._hit(key)
        if e is not None:
            return e
        return self._get(key, lambda: self._build(sid, A, np.array([root], np.int32), np.array([filt], np.int32),
                                                  False))

    def child_entry(self, parent: _Entry, gi: int, sid: int, A: int) -> _Entry:
        _, roots, filters = parent.groups[gi]
        return self._get(("c", parent.serial, gi, sid, A), lambda: self._build(sid, A, roots, filters, False))

    def clear_mask_cache(self) -> None:
        """Forget cached whole masks (store entries stay)."""
        with self._lock:
            self._masks.clear()
            self._mask_eos.clear()
            self._mask_bytes = 0

    # ---------------------------------------------------------- precompute
    def precompute(self, *, documents=(), samples: int = 16, seed: int = 0, max_rows: int = 500,
                   max_states_per_row: int = 4096, max_seconds: float = 60.0, max_entry_bytes: int | None = None,
                   masks: bool = True) -> "PrecomputeReport":
        """Build ahead of time what masks would build on first visit (SynCode's offline store,
        here bounded), in two passes that share one budget:

        1. breadth first over the parser configurations reachable from the start (rows known
           by their structural id, successors by scanning each terminal set a lexeme can end
           with); for each row every lexer state reachable inside a lexeme, the root entry of
           that reading, its child entries and the scans they need; with ``masks`` also the
           whole mask of each single-reading configuration (bounded by ``max_mask_bytes``);
        2. the mask at every byte of ``documents`` (outputs a server expects, e.g. logged
           ones) and of ``samples`` documents drawn from the grammar itself (seeded), which
           reach configurations deep in a structure that breadth first never gets to (a
           schema whose free-form values branch nine ways at every level).

        Recursion makes the configurations infinite (each nesting depth is a new row id), so
        pass 1 stops at ``max_rows`` rows or ``max_states_per_row`` lexer states per row, and
        both stop at ``max_entry_bytes`` of entries (default half the store's cap, so
        precompute never evicts its own work) or ``max_seconds``; what they do not reach is
        built lazily.  Pass 1 does not build readings past an accepting point under maximal
        munch (visited for the rows they lead to, but their entries and masks are keyed by the
        bytes since that point) nor reference-parser feeds (they depend on the text); pass 2
        builds whatever its documents need.  Save the result with :meth:`save`; servers load
        it with :meth:`load` (or ``get_store(..., persist=True)``).
        """
        pc = _Precompute(self, max_states_per_row, masks, max_seconds, max_entry_bytes)
        # pass 1: breadth first from the start
        head = 0
        while head < len(pc.queue):
            if pc.rows >= max_rows or pc.over():
                pc.complete = False
                break
            pc.row(pc.queue[head])
            head += 1
        pc.complete = pc.complete and head == len(pc.queue)
        # pass 2: the rows of real (or sampled) documents, each expanded as in pass 1
        docs = 0
        scratch = np.zeros(self.n_words, np.uint32)
        for doc in self._precompute_documents(documents, samples, seed):
            if pc.over():
                pc.complete = False
                break
            q = ByteParser(self.tables)
            for i in range(len(doc) + 1):
                if pc.over():
                    pc.complete = False
                    break
                for th in q.threads:
                    if not (self.longest and 0 <= th[2] < q.pos):
                        sig = pc.walk._register(q.chart, th[0])
                        if sig not in pc.expanded:
                            pc.row(sig)
                scratch[:] = 0
                self.fill(q, scratch)  # this configuration's own key (several readings, feeds)
                if i == len(doc) or not q.feed(doc[i:i + 1]):
                    break
            docs += 1
        rows, states = pc.rows, pc.states
        t0, built0, bytes0, masks0, complete = pc.t0, pc.built0, pc.bytes0, pc.masks0, pc.complete
        return PrecomputeReport(
            seconds=time.perf_counter() - t0, rows=rows, lexer_states=states, documents=docs,
            entries_built=self.stats.entries_built - built0, entry_bytes=self.stats.bytes - bytes0,
            masks=len(self._masks) - masks0, mask_bytes=self._mask_bytes, complete=complete)

    def _precompute_documents(self, documents, samples: int, seed: int):
        for d in documents:
            yield d.encode("utf-8") if isinstance(d, str) else bytes(d)
        if samples <= 0:
            return
        import random

        from constrain.hypothesis import DocumentGenerator

        gen = DocumentGenerator(self.tables.grammar, max_size=256)
        rng = random.Random(seed)
        for _ in range(samples):
            d = gen.generate(rng.randrange)
            if d is not None:
                yield d

    # --------------------------------------------------------- persistence
    def snapshot(self) -> bytes:
        """The store as bytes: entries, whole masks, and the grammar's lazily built tables they
        refer to (lexer states, row ids, scans), so :meth:`from_snapshot` in another process
        starts warm.  Safe while other threads use the store: every table only grows, and each
        is copied after the ones that refer to it."""
        with self._lock:
            state = {
                "grammar": self.tables.grammar.fingerprint,
                "vocab": self.vocab.fingerprint,
                "entries": list(self._entries.items()),
                "masks": list(self._masks.items()),
                "serial": self._serial,
                "limits": (self.max_bytes, self.max_mask_bytes, self.max_mask_work),
            }
            state["tables"] = self.tables  # pickled last: its copies postdate the entries'
            return pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL)

    @classmethod
    def from_snapshot(cls, data: bytes, vocab: Vocabulary, grammar=None) -> "TokenStore":
        """A store rebuilt from :meth:`snapshot` bytes for ``vocab`` (and, when given, checked
        to belong to ``grammar``); raises :class:`~constrain.errors.CacheVersionError` when the
        snapshot is of another vocabulary or grammar."""
        from constrain.errors import CacheVersionError as CacheError

        state = pickle.loads(data)
        if state.get("vocab") != vocab.fingerprint:
            raise CacheError(f"store snapshot is of vocabulary {str(state.get('vocab'))[:16]}, "
                             f"not {vocab.fingerprint[:16]} ({vocab.name})")
        if grammar is not None and state.get("grammar") != grammar.fingerprint:
            raise CacheError(f"store snapshot is of grammar {str(state.get('grammar'))[:16]}, "
                             f"not {grammar.fingerprint[:16]}")
        max_bytes, max_mask_bytes, max_mask_work = state["limits"]
        st = cls(state["tables"], vocab, max_bytes=max_bytes, max_mask_bytes=max_mask_bytes,
                 max_mask_work=max_mask_work)
        for k, e in state["entries"]:
            st._entries[k] = e
            st.stats.bytes += e.nbytes + st._hold(e)
            if st.flat is not None:
                st.flat.register(e, k)
        for k, w in state["masks"]:
            st._masks[k] = w
            st._mask_bytes += w.nbytes
        st._serial = max(st._serial, state["serial"])
        st._saved_entries = len(st._entries)
        return st

    def disk_path(self):
        """Where :meth:`save` writes this store (``None`` when disk caching is off)."""
        return store_cache_path(self.tables.grammar, self.vocab)

    def save(self, path=None, *, max_file_bytes: int = 64 << 20):
        """Write :meth:`snapshot` to the disk cache (or ``path``), atomically and checksummed;
        returns the path, or ``None`` when caching is off, the write failed, or the snapshot
        is larger than ``max_file_bytes`` (logged: a cache is an optimisation, never a failure).
        The cap exists because loading is not free (about 10 ms a MB, all unpickling): the row
        tables of deeply nested outputs grow faster than the entries, and a store that takes
        seconds to load is worse than one rebuilt lazily."""
        from constrain._cache import log, write_verified

        path = self.disk_path() if path is None else Path(path)
        if path is None:
            return None
        n = len(self._entries)
        data = self.snapshot()
        if len(data) > max_file_bytes:
            log.warning("constrain: store snapshot of %s is %.0f MB, over the %.0f MB cap: not saved",
                        self.tables.grammar.name, len(data) / 2**20, max_file_bytes / 2**20)
            self._saved_at = time.monotonic()
            return None
        try:
            write_verified(path, _store_key(self.tables.grammar, self.vocab), data)
        except OSError as e:
            log.warning("constrain: cannot write store cache %s: %s", path, e)
            return None
        self._saved_entries = n
        self._saved_at = time.monotonic()
        return path

    def save_due(self, *, min_new_entries: int = 1, min_interval_s: float = 30.0) -> bool:
        """Whether :meth:`maybe_save` would save now: at least ``min_new_entries`` entries were
        built since the last save (or load) and ``min_interval_s`` seconds passed."""
        return (len(self._entries) - self._saved_entries >= min_new_entries
                and time.monotonic() - self._saved_at >= min_interval_s)

    def maybe_save(self, *, min_new_entries: int = 1, min_interval_s: float = 30.0) -> bool:
        """:meth:`save` when :meth:`save_due` (servers call this as requests finish, so a store
        that grew reaches the other workers); ``True`` if it saved."""
        if not self.save_due(min_new_entries=min_new_entries, min_interval_s=min_interval_s):
            return False
        self._saved_at = time.monotonic()  # one saver per interval, even if this one fails
        return self.save() is not None

    @classmethod
    def load(cls, grammar, vocab: Vocabulary, path=None) -> "TokenStore | None":
        """The store saved for (``grammar``, ``vocab``), or ``None`` if there is none.  The file
        is verified (format, version, key, sha256) before it is unpickled; a bad one is
        discarded."""
        from constrain._cache import discard, read_verified

        path = store_cache_path(grammar, vocab) if path is None else Path(path)
        if path is None:
            return None
        data = read_verified(path, _store_key(grammar, vocab))
        if data is None:
            return None
        try:
            return cls.from_snapshot(data, vocab, grammar)
        except Exception as e:  # noqa: BLE001 - another vocabulary, a stale layout: rebuild
            discard(path, f"{type(e).__name__}: {e}")
            return None

    @property
    def n_entries(self) -> int:
        return len(self._entries)

    # --------------------------------------------------------------- masks
    def _fill_lean(self, parser: ByteParser, readings: list[tuple], found: list):
        """The mask of a position whose readings' walks the flat tables hold whole, in one
        :meth:`_apply_lean` call (a new array); ``None`` when that is not so (the caller then
        walks the readings with :class:`_MaskWalk`, which may register rows, build entries,
        record scans).  The most common warm miss of a JSON Schema (each byte of a key or a
        pattern is a new lexer state whose entries and scans exist): it skips the walk
        object.  The root entries it looks up are appended to ``found`` (the walk that
        follows a ``None`` reuses them)."""
        allowed_ids = self.flat.allowed_ids
        rows = []
        span = 2
        sig_aid = self.flat.sig_aid
        for k, sid, A, rr in readings:
            e = self.root_entry(sid, A, 0, rr)
            found.append(e)
            aid = allowed_ids.get(A)
            if not _lean_ok(e) or aid is None:
                return None
            s = parser.chart[k].sig
            if self._plain and 0 <= s and (s >= sig_aid.shape[0] or sig_aid[s] == H_ABSENT):
                with self.flat.lock:  # the row's allowed-set id, for fill_lean next time
                    self.flat.put_allowed(s, aid)
            sig = -1  # (no boundary below: the row is never scanned)
            if e.groups or e.fmeta:
                sig = s
                if sig < 0 or sig not in self.tables.sig_rows:
                    return None
            rows.append((e.serial, sig, aid, parser.paren))
            span += 2 * e.span
        work = np.zeros(self.n_words, np.uint32)
        if not rows:  # (no reading: nothing but maybe EOS)
            return work
        n = self._apply_lean(rows, found, span, self.max_mask_work, work)
        return None if n < 0 or n > self.max_mask_work else work  # (over the cap: the walk raises it)

    def _fill_compiled(self, parser: ByteParser, threads, work: np.ndarray | None = None) -> np.ndarray | None:
        """:meth:`_fill_lean` in one kernel call (:func:`fill_lean`) for a position with one or
        two readings, exact lexing and no post-lexer: the readings' lexer states and row ids go
        in, the mask comes out (in ``work``, overwritten, or a new array); ``None`` when the
        tables lack a part of it (the Python path then runs and records what was missing: a
        row's allowed-set id, an entry's span; ``work`` may hold part of the walk)."""
        chart = parser.chart
        flat = self.flat
        if work is None:
            work = np.empty(self.n_words, np.uint32)
        k, sid = threads[0][0], threads[0][1]
        if len(threads) == 1:
            k2, sid2 = k, -1
        else:
            k2, sid2 = threads[1][0], threads[1][1]
        with flat.lock:
            n = fill_lean(sid, chart[k].sig, sid2, chart[k2].sig, self.max_mask_work, work, flat.ent, flat.grp,
                          flat.wpool, flat.spool, flat.hk, flat.sig_aid)
        if 0 <= n <= self.max_mask_work:
            self.stats.compiled_fills += 1
            return work
        return None

    def _apply_lean(self, rows: list, entries: list, span: int, budget: int, out: np.ndarray) -> int:
        """OR the walks of ``rows`` ``(entry, sig, allowed id, paren)`` (of root entries
        ``entries``) into ``out`` with ``apply_one`` / ``apply_two`` / ``apply_many``, buffers
        for ``span`` rows: the count applied, or the kernel's ``-1`` / ``-2``.  A single entry's
        last span is recorded, or, on ``-2``, that its walks always need Python (with several
        entries which one does is not known: their own walks find out)."""
        flat = self.flat
        with flat.lock:
            if len(rows) == 1:
                n = apply_one(*rows[0], span, budget, out, flat.ent, flat.grp, flat.wpool, flat.spool, flat.hk,
                              flat.sig_aid)
            elif len(rows) == 2:
                n = apply_two(*rows[0], *rows[1], span, budget, out, flat.ent, flat.grp, flat.wpool, flat.spool,
                              flat.hk, flat.sig_aid)
            else:
                n = apply_many(np.array(rows, np.int64), span, budget, out, flat.ent, flat.grp, flat.wpool,
                               flat.spool, flat.hk, flat.sig_aid)
            # (fill_lean sizes its buffers by it: a position's walk bounds each of its entries')
            if len(entries) == 1 and (n >= 0 or n == -2):
                flat.ent[rows[0][0], E_SPAN] = n
            elif n >= 0:
                for r in rows:
                    if flat.ent[r[0], E_SPAN] == -1:
                        flat.ent[r[0], E_SPAN] = n
        if len(entries) == 1:
            if n >= 0:
                entries[0].span = n
            elif n == -2:
                entries[0].one = False
        return n

    def readings(self, parser: ByteParser) -> list[tuple]:
        """Per lexer reading of ``parser``: ``(row, lexer state, allowed terminals, root_relex)``
        where ``root_relex`` (maximal munch only) is the pruning run over the bytes committed
        since the reading's last accepting point, or ``None`` if it has none before here.
        Only a whole-mask miss needs them (the key is read off the threads directly)."""
        if not self.longest:  # no accepting point to relex from, no indenter: the rows' sets
            chart = parser.chart
            return [(th[0], th[1], chart[th[0]].allowed, None) for th in parser.threads]
        out = []
        for th in parser.threads:
            rr = None
            if 0 <= th[2] < parser.pos:
                rr = self.root_relex(bytes(parser.buf[th[2]:parser.pos]))
            out.append((th[0], th[1], parser._allowed(th[0]), rr))
        return out

    def mask_key(self, parser: ByteParser):
        """A key that determines the mask exactly: per reading its lexer state and the
        structural id of its row (:meth:`ByteParser.row_sig`); under maximal munch with an
        accepting point passed, also that lexeme's terminals and the bytes read since (a
        fallback relexes them).  With an indentation post-lexer also the bracket depth, the
        indentation stack and, for a reading that may be a NEWLINE lexeme, its bytes so far
        (they give the new line's width).

        One reading (most configurations; always one under maximal munch) is keyed by its part
        alone, several by the frozenset of their parts.  The key is a function of the parser's
        threads and their rows (a row's id is fixed once given; two parsers fed the same bytes
        may hold rows with different, equally exact ids: one taken from the scan memo, one from
        the seed key), and is memoised on the parser by the identity of its ``threads`` tuple:
        a feed always makes a new tuple, and the tuple of a position comes back only with that
        position (rollback restores the snapshot's own object; rows up to it are unchanged), so
        asking again at a position, or after rolling back to it, is one comparison."""
        threads = parser.threads
        memo = parser.mask_key_memo
        if memo is not None and memo[0] is threads:
            return memo[1]
        chart = parser.chart
        ind = self.indenter
        pos = parser.pos
        longest = self.longest
        parts = []
        for th in threads:
            k = th[0]
            sig = chart[k].sig
            if sig < 0:
                sig = row_sig(self.tables, chart, k)
            if longest and 0 <= th[2] < pos:
                part = (th[1], sig, th[3], bytes(parser.buf[th[2]:pos]))
            else:
                part = (th[1], sig)
            if ind is not None and self.tables.lexer.live[th[1]] >> ind.newline & 1:
                part += (bytes(parser.buf[parser.row_pos[k]:pos]),)
            parts.append(part)
        key = parts[0] if len(parts) == 1 else frozenset(parts)
        if ind is not None:
            key = (key, parser.paren, parser.indent)
        parser.mask_key_memo = (threads, key)  # holds the tuple: its id cannot be reused
        return key

    def _eos_known(self, parser: ByteParser) -> bool:
        """Whether the output's completeness may be cached with its mask key.

        Under maximal munch a position past the start has one thread ``(k, s, lap, las)`` and
        :meth:`ByteParser.is_complete` ends its lexeme: at ``s`` when ``s`` accepts (then
        ``lap`` is the current position), else at ``lap`` as ``las`` with the bytes since
        relexed; a function of row ``k``'s structure, ``s`` and, when ``lap`` is behind,
        ``las`` and those bytes: exactly the key's part.  An indentation post-lexer then closes
        the open blocks and reads a NEWLINE's width: the bracket depth, the indentation stack
        and a NEWLINE lexeme's bytes, which the key also names (the feed memo relies on the
        same).  That call closes rows, the dearest step of a warm mask (~180 µs on
        grammars/python), so it is worth caching.  The start position is excluded (complete
        there means row 0 completes, whatever the thread), as is the exact policy
        (completeness is the row at the current position, which the key does not name; it is
        one attribute read anyway)."""
        return self.longest and parser.pos > 0 and len(parser.threads) == 1

    def _complete(self, parser: ByteParser) -> bool:
        """``parser.is_complete()`` for a position :meth:`_eos_known` admits, memoised
        structurally when the lexeme can end right here: the output is complete iff scanning
        the lexeme's terminals ``T`` from its row gives a row that completes the start symbol,
        a function of the row's structural id and ``T`` (``tables.sig_eos``).  The first time
        the row is closed on the live chart without being added to it; a lexeme that must fall
        back to an earlier accepting point is left to the parser.  Under an indentation
        post-lexer the parser's answer is memoised by the mask key in ``_end_memo``, which
        like the feed memo is a parse-table entry (what feeding the end of input does to the
        configuration the key names) and outlives the whole-mask cache."""
        if self.indenter is not None:
            key = self.mask_key(parser)
            got = self._end_memo.get(key)
            if got is None:
                got = parser.is_complete()
                _memo_put(self._end_memo, key, got)
            return got
        (k, sid, _, _), = parser.threads
        t = self.tables
        acc = t.lexer.accept[sid]
        if not acc:
            return parser.is_complete()
        T = t.longest_choice(acc)
        chart = parser.chart
        row = chart[k]
        if T & ~t.ignore_mask == 0:  # only ignored terminals: the row after is this row again
            return row.complete
        sig = row.sig if row.sig >= 0 else row_sig(t, chart, k)
        got = t.sig_eos.get((sig, T))
        if got is None:
            seeds = scan_seeds(row, T, t.ignore_mask)
            got = bool(seeds) and t.new_row(parser.next_rid, seeds, chart).complete  # (a fresh row id)
            t.sig_eos[(sig, T)] = got
        return got

    def fill(self, parser: ByteParser, out: np.ndarray, *, overwrite: bool = False) -> None:
        """OR the allowed tokens after ``parser``'s output into ``out`` (``uint32[n_words]``),
        EOS included when the output is complete (``overwrite``: write them, so the caller
        need not zero ``out`` first).  ``parser`` is left as it was.

        Whole masks are cached by :meth:`mask_key`: a structure that repeats (the next member
        of an object, the next item of a list at the same depth) costs one lookup, and under
        maximal munch its completeness with it (:meth:`_eos_known`)."""
        key = self.mask_key(parser)
        hit = self._masks.get(key)
        if hit is not None:
            self.stats.mask_hits += 1
            try:
                self._masks.move_to_end(key)
            except KeyError:  # evicted by another thread since the lookup: still a valid mask
                pass
            if overwrite:
                out[:] = hit
            else:
                _or_words(out, hit)
        else:
            work = None
            threads = parser.threads
            written = False  # (the mask is in ``out`` already, ``work`` its copy)
            if self._plain and 0 < len(threads) < 3 and self.flat is not None:
                # (overwriting, the kernel writes the caller's row and the cache keeps a copy)
                into = out if overwrite and out.flags.c_contiguous else None
                work = self._fill_compiled(parser, threads, into)
                if work is not None and into is not None:
                    work, written = out.copy(), True
            if work is None:
                readings = self.readings(parser)
                found: list[_Entry] = []  # the readings' root entries _fill_lean looked up
                work = None if self.flat is None else self._fill_lean(parser, readings, found)
            if work is None:
                work = np.zeros(self.n_words, np.uint32)
                _MaskWalk(self, parser, work).fill_from(0, readings, found=found)
            with self._lock:
                old = self._masks.get(key)
                self._masks[key] = work
                self._mask_bytes += work.nbytes - (0 if old is None else old.nbytes)
                while self._mask_bytes > self.max_mask_bytes and self._masks:
                    k, old = self._masks.popitem(last=False)
                    self._mask_eos.pop(k, None)
                    self._mask_bytes -= old.nbytes
            if not written:
                if overwrite:
                    out[:] = work
                else:
                    _or_words(out, work)
        if self.longest and self._eos_known(parser):
            eos = self._mask_eos.get(key)
            if eos is None:
                eos = self._mask_eos[key] = self._complete(parser)
        else:
            eos = parser.is_complete()
        if eos:
            _or_words(out, self._eos_words)


class _MaskWalk:
    """One mask computation: applies entries and runs the parser scans they ask for.

    Scans are structural: a row is known by its :func:`~constrain.engine.earley.row_sig`, and
    scanning terminals ``T`` from a row with id ``sig`` always gives a row with the same id,
    so ``(sig, T) -> sig'`` is memoised per grammar, across masks, sequences and vocabularies.
    On a miss the scan runs on a private copy of the rows the row needs (its origins,
    recursively), so the parser of the sequence is never touched.
    """

    def __init__(self, store: TokenStore, parser: ByteParser, out: np.ndarray):
        self.store = store
        self.p = parser
        self.t = parser.t
        self.out = out
        self.done: set = set()
        self.work = 0
        self.cap = store.max_mask_work
        self.fdone = _NO_DONE  # the flat kernel's (entry, sig, paren) set, made by its first call
        self.fdone_n = None  # (its size, int64[1]; made with it: most masks never call the kernel)
        self.held: dict[int, _Entry] = {}  # entries found by this walk, by id (eviction-proof)
        #: memoised feeds being walked: [bytes, parser mark once replayed (else None), mask key,
        #: the lexeme ends after the bytes (see _end_newlines)]
        self.frames: list = []

    def _tick(self) -> None:
        self.work += 1
        if self.work > self.cap:
            from constrain.errors import LimitExceeded

            raise LimitExceeded("computing one token mask took more work than allowed (a pathological grammar "
                                "state); the matcher is unchanged", limit="max_mask_work", value=self.cap)

    # ------------------------------------------------------------ structure
    def _register(self, chart: dict, rid: int, closed: bool = False) -> int:
        """The structural id of row ``rid``, recording the first row seen with it and the rows
        its continuations can read (its origins, recursively).  ``closed``: ``chart`` holds only
        such rows (a private copy made by :meth:`_scan`), kept as it is: walking the origins
        again for every scanned row was quadratic in the nesting depth (cfg_arith's cold walk:
        ~30 µs a scan, most of it).  Such a copy can also hold rows no longer reachable (its
        parent's, after a completion), so at sizes 64, 128, 256, ... it is walked anyway: rows
        that nothing reaches are dropped and the copies stay as small as the walk makes them."""
        t = self.t
        sig = row_sig(t, chart, rid)
        n = len(chart)
        if sig not in t.sig_rows and closed and (n < 64 or n & (n - 1)):
            t.sig_rows[sig] = (chart, rid, chart[rid].allowed)
        elif sig not in t.sig_rows:
            need = {rid: chart[rid]}
            stack = [rid]
            while stack:
                for (_, _, o) in chart[stack.pop()].items:
                    if o not in need:
                        need[o] = chart[o]
                        stack.append(o)
            t.sig_rows[sig] = (need, rid, chart[rid].allowed)
        return sig

    def _scan(self, sig: int, T: int):
        t = self.t
        key = (sig, T)
        got = t.sig_scans.get(key)
        if got is not None:
            return None if got < 0 else got
        self.store.stats.parser_scans += 1
        self._tick()
        rows, k, _ = t.sig_rows[sig]
        seeds = scan_seeds(rows[k], T, t.ignore_mask)
        new = -1
        if seeds:
            rid = next(t.synthetic_rids)
            chart = dict(rows)
            chart[rid] = t.new_row(rid, seeds, chart)
            if chart[rid].allowed:
                new = self._register(chart, rid, closed=True)
        t.sig_scans[key] = new
        return None if new < 0 else new

    def _candidates(self, allowed: int) -> int:
        return self.t.all_terms if self.t.basic else allowed

    # ------------------------------------------------------------ the walk
    def fill_from(self, root: int, readings: list[tuple] | None = None, sigs: tuple | None = None,
                  paren: int = 0, filt: int | None = None, found: list | None = None) -> None:
        """Apply the walk of ``root``'s subtree for each reading of the parser (or the given
        ``readings``; ``sigs`` and ``paren``: their rows' structural ids and the bracket depth,
        given when the parser is not at their position, a memoised feed, see :meth:`_feed`).
        With ``filt``, only the children of ``root`` a lexeme in that lexer state cannot take
        are walked (a lexeme has just ended at ``root``: :meth:`_end_newlines`).  ``found``: the
        root entries of the first readings, already looked up (:meth:`TokenStore._fill_lean`)."""
        p, store = self.p, self.store
        flat = store.flat
        work = []
        new = None  # root entries walked for the first time (their span is this walk's)
        chart, sig_rows = p.chart, self.t.sig_rows
        if sigs is None:
            paren = p.paren
        for i, (k, sid, A, rr) in enumerate(readings if readings is not None else store.readings(p)):
            if found and i < len(found):
                e = found[i]
            else:
                e = store.root_entry(sid, A, root, rr) if filt is None else store.boundary_entry(sid, A, root, filt)
            if sigs is not None:
                sig = sigs[i]
            elif e.groups or e.fmeta:
                sig = chart[k].sig  # the mask key computed it; registered unless new
                if sig < 0 or sig not in sig_rows:
                    sig = self._register(chart, k)
            else:
                sig = -1  # no boundary below: the row is never scanned
            if flat is not None and _lean_ok(e):
                # a short walk the tables hold whole: one lean compiled call (else the full
                # kernel below, which records what was missing for the next time)
                if self._apply_one(e, sig, A, paren):
                    continue
            elif flat is None or 0 <= e.span < _FLAT_MIN_SPAN:
                # a short walk is cheaper in Python than the kernel's fixed cost (~4 µs a call:
                # the work list, 11 arrays unboxed, its results); one long last time goes compiled
                before = self.work
                self._apply(e, sig, A, root, paren)
                e.span = self.work - before
                continue
            if e.span < 0:
                new = [e] if new is None else new + [e]
            self.held[e.serial] = e
            aid = flat.allowed_ids.get(A)  # the lock only to intern a new set
            if aid is None:
                with flat.lock:
                    aid = flat.allowed_id(A)
            work.append((e.serial, sig, aid, paren))
        if work:
            before = self.work
            self._run_flat(work, root)
            if new is not None:  # (with several readings each gets the whole walk's count)
                for e in new:
                    e.span = self.work - before
                with flat.lock:  # (fill_lean's next try sizes its buffers by this walk)
                    for e in new:
                        if e.one and flat.ent[e.serial, E_SPAN] == -1:
                            flat.ent[e.serial, E_SPAN] = e.span

    def _apply_one(self, e: _Entry, sig: int, A: int, paren: int) -> bool:
        """Apply ``e``'s walk from row ``sig`` with ``apply_one`` if the flat tables hold all of
        it (then ``True``; else ``False``, ``out`` possibly holding part of it)."""
        aid = self.store.flat.allowed_ids.get(A)
        if aid is None:
            return False
        # room for twice the entry's last walk (a mask from another row may go further)
        n = self.store._apply_lean([(e.serial, sig, aid, paren)], [e], 2 * e.span + 2, self.cap - self.work,
                                   self.out)
        if n < 0:
            return False
        self.work += n
        if self.work > self.cap:
            self._tick()
        return True

    def _run_flat(self, work: list, root: int) -> None:
        """Apply ``(entry, sig, allowed id, paren)`` rows with the compiled kernel, resolving in
        Python what its tables lack (new scans, children not built yet) and running feeds,
        until nothing is left; the same result as :meth:`_apply` on each row."""
        flat = self.store.flat
        if self.fdone_n is None:
            self.fdone_n = np.zeros(1, np.int64)
        held = self.held
        while work:
            with flat.lock:
                applied, pend, feeds, self.fdone = apply_flat(
                    np.asarray(work, np.int64), self.out, self.fdone, self.fdone_n, self.cap - self.work, flat.ent,
                    flat.grp, flat.wpool, flat.spool, flat.hk, flat.sig_aid)
                pend, feeds = pend.tolist(), feeds.tolist()
                # hold every entry named, still under the lock: an eviction on another thread
                # (or one that resolving builds cause) could otherwise drop one before its use
                live = flat.entry_of
                for eid in [r[0] for r in pend] + [r[0] for r in feeds]:
                    if eid not in held:
                        held[eid] = live[eid]
            self.work += applied
            if self.work > self.cap:
                self._tick()
            work = []
            for eid, sig, aid, gid, paren in pend:
                if gid < 0:  # evicted since this walk found it: apply the held object
                    self._apply(held[eid], sig, flat.allowed_of[aid], root, paren)
                    continue
                got = self._resolve(eid, sig, aid, gid, paren, root)
                if got is not None:
                    work.append(got)
            for eid, sig, aid in feeds:
                self._run_feeds(held[eid], sig, flat.allowed_of[aid], root)

    def _resolve(self, eid: int, sig: int, aid: int, gid: int, paren: int, root: int):
        """One split group the kernel could not follow: the scan, the child entry (built if
        needed), both recorded in the flat tables; the child's row to apply, or ``None``.  A
        NEWLINE outside brackets (the kernel always hands it back) is fed to the parser."""
        store, t, flat = self.store, self.t, self.store.flat
        e = self.held[eid]
        gi = gid - int(flat.ent[eid, E_G_START])
        T, roots, filters = e.groups[gi]
        A = flat.allowed_of[aid]
        p2 = paren
        if store.indenter is not None:
            T, p2 = self._post_lex(T, paren)
            if T is None:
                return None
            if T < 0:
                self._end_newlines(e, gi, root)
                return None
        if T & ~t.ignore_mask == 0:
            nsig, A2, a2 = sig, A, aid
            cands = self._candidates(A) & ~(T & store.closed_ignore)
        else:
            nsig = self._scan(sig, T)
            tid = int(flat.grp[gid, G_TID])
            if nsig is None:
                with flat.lock:
                    flat.put(H_SCAN, sig, tid, -1)
                return None
            A2 = t.sig_rows[nsig][2]
            with flat.lock:
                a2 = flat.allowed_id(A2)
                flat.put(H_SCAN, sig, tid, nsig)
                flat.put_allowed(nsig, a2)
                if p2:  # inside brackets the row also takes a NEWLINE (ByteParser._allowed)
                    A2 |= 1 << store.indenter.newline
                    a1, a2 = a2, flat.allowed_id(A2)
                    flat.put(H_NLA, a1, 0, a2)
            cands = self._candidates(A2)
        sid = t.lexer.start(cands)
        if sid == DEAD:
            with flat.lock:
                flat.put_child(gid, a2, -1)
            return None
        child = store.child_entry(e, gi, sid, A2)  # registers it (takes the lock itself)
        with flat.lock:
            flat.put_child(gid, a2, child.serial)
        self.held[child.serial] = child
        return child.serial, nsig, a2, p2

    def _apply(self, e: _Entry, sig: int, A: int, root: int, paren: int = 0) -> None:
        # the hot loop of a mask that crosses many lexemes (arithmetic's ``(((``): ~100 calls a
        # mask, so lookups are inlined (entries, scans, start states) and slow paths are calls.
        # ``paren``: bracket depth of an indentation post-lexer after the lexemes so far
        done = self.done
        key = (e.serial, sig, paren)
        if key in done:
            return
        done.add(key)
        self.work += 1
        if self.work > self.cap:
            self._tick()
        if e.words is not None:
            _or_words(self.out, e.words)
        elif e.ids is not None:
            _or_ids(self.out, e.ids)
        if e.groups:
            store, t = self.store, self.t
            ignore = t.ignore_mask
            basic = t.basic
            all_terms = t.all_terms
            starts = t.lexer._start_cache
            scans = t.sig_scans
            sig_rows = t.sig_rows
            entries = store._entries
            serial = e.serial
            ind = store.indenter
            for gi, (T, roots, filters) in enumerate(e.groups):
                p2 = paren
                if ind is not None:
                    T, p2 = self._post_lex(T, paren)
                    if T is None:
                        continue
                    if T < 0:  # a NEWLINE outside brackets: the indentation is in the text
                        self._end_newlines(e, gi, root)
                        continue
                if T & ~ignore == 0:
                    # only ignored terminals end here (or a NEWLINE inside brackets: none):
                    # the row after them behaves as this row
                    nsig, A2 = sig, A
                    cands = (all_terms if basic else A) & ~(T & store.closed_ignore)
                else:
                    nsig = scans.get((sig, T))
                    if nsig is None:
                        nsig = self._scan(sig, T)
                        if nsig is None:
                            continue
                    elif nsig < 0:
                        continue
                    A2 = sig_rows[nsig][2]
                    if p2:
                        A2 |= 1 << ind.newline
                    cands = all_terms if basic else A2
                sid = starts.get(cands)
                if sid is None:
                    sid = t.lexer.start(cands)
                if sid == DEAD:
                    continue
                ckey = ("c", serial, gi, sid, A2)
                child = entries.get(ckey)
                if child is None:
                    child = store.child_entry(e, gi, sid, A2)
                else:
                    store.stats.hits += 1
                    entries.move_to_end(ckey)
                self._apply(child, nsig, A2, root, p2)
        if e.feeds.shape[0]:
            self._run_feeds(e, sig, A, root)

    def _run_feeds(self, e: _Entry, sig: int, A: int, root: int) -> None:
        """Feed entry ``e``'s feed nodes that may be taken, at the row with id ``sig``.

        Without an indenter the structural pre-check decides which (:meth:`_live_feeds`).
        Under an indentation post-lexer there is none (the post-lexer's verdicts depend on
        the bracket depth and the indentation), but the verdict on feeding a node's bytes is
        still a function of the walk position's mask key (the feed memo's own key), so the
        nodes not refused are memoised per ``(entry, that key)``: grammars/python's masks fed
        ~33 nodes each that the parser refuses, ~3 µs each even as memo hits."""
        if self.store.indenter is None:
            for x in self._live_feeds(e, sig, A):
                self._feed(x, root)
            return
        memo = self.store._live_feeds
        key = (e.serial, self._position_key())
        got = memo.get(key)
        if got is None:
            _memo_put(memo, key, tuple(x for x in e.feeds.tolist() if self._feed(x, root)))
        else:
            for x in got:
                self._feed(x, root)

    def _position_key(self):
        """The mask key of the walk's position: the top virtual frame's, else the parser's
        (the parser stands there: no frame, or the frames are replayed on it)."""
        frames = self.frames
        if frames and frames[-1][1] is None:
            return frames[-1][2]
        return self.store.mask_key(self.p)

    def _live_feeds(self, e: _Entry, sig: int, A: int) -> tuple:
        """The feed nodes of entry ``e`` at the row with id ``sig`` that the pre-check
        (:meth:`_feed_fails`) does not rule out, memoised per ``(entry, sig, A)`` and, for an
        entry whose fallback point may be the reading's own, that thread's fallback lexeme and
        bytes since (all the check reads): on grammars/go a mask checked ~33 nodes at ~2.6 µs
        each, nearly all of them ruled out again and again."""
        ctx = self._fallback_ctx() if e.fneeds else None
        key = (e.serial, sig, A, ctx)
        memo = self.store._live_feeds
        got = memo.get(key)
        if got is None:
            fm = e.fmeta
            got = tuple(x for x in e.feeds.tolist() if (m := fm.get(x)) is None or not self._feed_fails(m, sig, A))
            _memo_put(memo, key, got)
        return got

    def _fallback_ctx(self):
        """``(las, bytes since)`` of the walk's position's one thread when it has passed an
        accepting point, else ``None`` (read off a memoised feed's key in a virtual frame)."""
        if self.frames and self.frames[-1][1] is None:
            part = self.frames[-1][2]
            return (part[2], part[3]) if type(part) is tuple and len(part) == 4 else None
        p = self.p
        if len(p.threads) != 1:
            return None
        _, _, lap, las = p.threads[0]
        return (las, bytes(p.buf[lap:p.pos])) if lap >= 0 and las >= 0 else None

    def _feed_fails(self, meta: tuple, sig: int, A: int) -> bool:
        """Whether the reference parser surely refuses a feed node (see
        :meth:`TokenStore._feed_meta`), read structurally off the row with id ``sig`` where the
        node's lexeme started (allowed terminals ``A``), as ``ByteParser._step_longest`` does for
        one thread: a node alive with no allowed terminal lives on only if the lexeme at its
        last accepting point is allowed; a dead one ends that lexeme and lexes the bytes after
        it again from the next row (:meth:`_relex_fails`).  ``False`` when unsure."""
        if sig < 0:
            return False
        relexed, las, dead = meta
        if las < 0:  # the accepting point is the reading's own, before the walk's root
            ctx = self._fallback_ctx()
            if ctx is None:
                return False
            las, since = ctx
            if dead:
                relexed = since + relexed
        t = self.t
        T = t.longest_choice(t.lexer.accept[las])
        if not dead:
            return not T & A  # alive: it lives on iff the lexeme at its fallback point is allowed
        return self._relex_fails(sig, A, T, relexed)

    def _relex_fails(self, sig: int, A: int, T: int, data: bytes, max_ends: int = 4) -> bool:
        """Whether ``ByteParser._emit`` of a lexeme of terminals ``T`` from the row with id
        ``sig``, then ``_relex`` of ``data`` from the row after it, leave no thread, on
        structural rows (scans memoised by id).  ``False`` when unsure: more than ``max_ends``
        lexemes end on the way."""
        t = self.t
        lex = t.lexer
        accept = lex.accept
        i, n = 0, len(data)
        while True:
            if not T & A:
                return True  # no seeds: the emit refuses it
            if T & ~t.ignore_mask:
                sig = self._scan(sig, T)
                if sig is None:
                    return True
                A = t.sig_rows[sig][2]
            # (only ignored terminals: the row after them behaves as this row, as in _apply)
            s = lex.start(t.all_terms if t.basic else A)
            if s == DEAD:
                return True
            lap = las = -1
            while i < n:
                nxt = lex.step(s, data[i])
                if nxt == DEAD:
                    break
                if accept[nxt]:
                    lap, las = i + 1, nxt
                if not t.munch_keeps(nxt, las, A):
                    return True  # the thread is dropped
                s = nxt
                i += 1
            else:
                return False  # alive at the end of the bytes
            # the lexeme dies at byte i: it ends at the state before it or at its last accepting point
            if accept[s]:
                T = t.longest_choice(accept[s])
            elif lap >= 0:
                T, i = t.longest_choice(accept[las]), lap
            else:
                return True
            max_ends -= 1
            if max_ends < 0:
                return False

    def _post_lex(self, T: int, paren: int) -> tuple[int | None, int]:
        """What the indentation post-lexer makes of a lexeme of terminals ``T`` at bracket
        depth ``paren`` (:meth:`TokenStore.post_lex_class` at that depth): ``(terminals to
        scan, new depth)``, ``(None, _)`` when the parser refuses it, ``(-1, _)`` for a
        NEWLINE outside brackets and ``(0, _)`` for one inside (nothing scanned: the row is
        unchanged, as after an ignored terminal)."""
        pl, T = self.store.post_lex_class(T)
        if pl == PL_PLAIN:
            return T, paren
        if pl == PL_OPEN:
            return T, paren + 1
        if pl == PL_CLOSE:
            return (T, paren - 1) if paren > 0 else (None, paren)
        if pl == PL_NL:
            return (0, paren) if paren > 0 else (-1, paren)
        return None, paren  # PL_REFUSE

    def _end_newlines(self, e: _Entry, gi: int, root: int) -> None:
        """Split group ``gi`` of entry ``e`` ends a NEWLINE outside brackets: at each of its
        nodes, feed the reference parser the node's bytes and end the lexeme there (so the
        post-lexer reads the indentation: INDENT, DEDENT or neither), then walk the node's
        children that start the next lexeme from the row after it, in one walk
        (:meth:`TokenStore.boundary_entry`, compiled like any other).  Both steps are memoised
        by the walk position's mask key, as feeds are.  Before, each such child was fed on
        its own (~20 a mask on grammars/python, ~12 µs each even as memo hits)."""
        _, roots, filters = e.groups[gi]
        for r, f in zip(roots.tolist(), filters.tolist()):
            self._feed(r, root, f)

    def _feed(self, x: int, root: int, filt: int | None = None) -> bool:
        """Hand node ``x`` to the reference parser: feed its bytes, walk its subtree from there;
        ``False`` when the parser refuses them (or they leave no viable output), else ``True``
        (also when this walk fed ``x`` already).  With ``filt`` (the lexer state at ``x``), the
        lexeme then ends at ``x`` (:meth:`ByteParser.end_lexeme`) and only ``x``'s children
        that start the next lexeme are walked, not ``x``'s own tokens (its entry has them).

        What a feed leaves is memoised (``TokenStore._feed_memo``): the configuration after
        feeding bytes ``b`` is a function of the mask key before them and ``b`` (the key names
        the lexer state, the row's structure and, under munch, the fallback lexeme and the
        bytes since it), so ``(key, b)`` maps to "refused" or to the readings after it with
        their rows' structural ids and mask key: a parse-table entry, built on first use like
        ``tables.sig_scans``.  A hit walks the subtree without moving the parser (a virtual
        frame); the few steps that must read the parser at that position (a nested feed that
        misses) first replay the frames' bytes on it (:meth:`_materialize`).  With an
        indentation post-lexer the key also names the bracket depth, the indentation stack and
        a NEWLINE's bytes so far, all that the post-lexer reads.  On grammars/go this replaced
        ~4,200 reference-parser feeds a walk (~50 µs each), on grammars/python ~94,000."""
        store, p = self.store, self.p
        key = ("feed", x) if filt is None else ("end", x)
        if key in self.done:
            return True
        self.done.add(key)
        self._tick()
        store.stats.feeds += 1
        nk = (x, int(store.trie.depth[root]))
        data = store._node_bytes.get(nk)
        if data is None:  # (the trie's parent chain, walked once per node and depth)
            data = store.trie.node_bytes(*nk)
            _memo_put(store._node_bytes, nk, data)
        frames = self.frames
        virtual = bool(frames) and frames[-1][1] is None
        mkey = (self._position_key(), data) if filt is None else (self._position_key(), data, True)
        got = store._feed_memo.get(mkey, _MISS)
        if got is not _MISS:
            store.stats.feed_hits += 1
            if got is None:
                return False
            readings, sigs, post, paren = got
            if filt is None:
                self._node_tokens(x)
            frames.append([data, None, post, filt is not None])
            try:
                self.fill_from(x, readings, sigs, paren, filt)
            finally:
                f = frames.pop()
                if f[1] is not None:
                    p.rollback_to(f[1])
            return True
        if virtual:
            self._materialize()
        mark = p.n_steps
        try:
            if not p.feed(data) or (filt is not None and not p.end_lexeme()) or not p.is_viable():
                _memo_put(store._feed_memo, mkey, None)
                return False
            rd = store.readings(p)
            sigs = tuple(self._register(p.chart, k) for k, _, _, _ in rd)
            _memo_put(store._feed_memo, mkey, (rd, sigs, store.mask_key(p), p.paren))
            if filt is None:
                self._node_tokens(x)
            self.fill_from(x, filt=filt)
            return True
        finally:
            p.rollback_to(mark)

    def _node_tokens(self, x: int) -> None:
        t = self.store.trie
        a, b = int(t.tok_start[x]), int(t.tok_start[x + 1])
        if a < b:
            out = self.out
            for tid in t.tok_ids[a:b].tolist():
                out[tid >> 5] |= np.uint32(1 << (tid & 31))

    def _materialize(self) -> None:
        """Feed the parser the bytes of the virtual frames it has not been fed (oldest first),
        so it stands where the walk is; each frame rolls back its own on exit."""
        p = self.p
        for f in self.frames:
            if f[1] is None:
                f[1] = p.n_steps
                if not p.feed(f[0]) or (f[3] and not p.end_lexeme()):  # the memo said these are
                    # taken: a broken invariant
                    raise ConstrainError("internal error: the parser refused a feed its memo took "
                                         f"({f[0]!r}); please report it with the grammar")


def _store_key(grammar, vocab: Vocabulary) -> str:
    # "store2": row ids are interned from rows' seeds (earlier files hold closure-keyed ids);
    # "store3": entries keep few INSIDE tokens as ids (earlier ones have no ``ids`` slot)
    return f"store3:{grammar.fingerprint}:{vocab.fingerprint}"


def store_cache_path(grammar, vocab: Vocabulary):
    """Disk-cache path of the store of (``grammar``, ``vocab``); ``None`` when caching is off."""
    from constrain._cache import cache_path, version_tag

    return cache_path("stores", f"{grammar.fingerprint[:24]}-{vocab.fingerprint[:24]}-{version_tag()}.pkl")


class _Precompute:
    """The state of one :meth:`TokenStore.precompute`: budget, rows expanded, the queue of
    rows found, and distinct masks."""

    def __init__(self, store: TokenStore, max_states_per_row: int, masks: bool, max_seconds: float,
                 max_entry_bytes: int | None):
        self.store = store
        self.t0 = time.perf_counter()
        self.max_seconds = max_seconds
        self.max_states = max_states_per_row
        self.masks = masks
        self.built0, self.bytes0, self.masks0 = store.stats.entries_built, store.stats.bytes, len(store._masks)
        self.byte_cap = self.bytes0 + (store.max_bytes // 2 if max_entry_bytes is None else int(max_entry_bytes))
        p = ByteParser(store.tables)
        self.walk = _PrecomputeWalk(store, p, np.zeros(store.n_words, np.uint32))
        sig0 = self.walk._register(p.chart, 0)
        self.seen, self.queue = {sig0}, [sig0]
        self.expanded: set[int] = set()
        self.unique: dict[bytes, np.ndarray] = {}
        self.rows = self.states = 0
        self.complete = True

    def over(self) -> bool:
        return time.perf_counter() - self.t0 > self.max_seconds or self.store.stats.bytes > self.byte_cap

    def row(self, sig: int) -> None:
        """Every lexer reading inside a lexeme started at row ``sig``: its root entry, child
        entries, scans and (single reading) whole mask; the rows after each lexeme end go on
        the queue."""
        store, walk = self.store, self.walk
        tables, lex = store.tables, store.tables.lexer
        self.expanded.add(sig)
        self.rows += 1
        A = tables.sig_rows[sig][2]
        s0 = lex.start(walk._candidates(A))
        if s0 == DEAD:
            return
        # lexer readings inside a lexeme: (state, munch relex run) as readings() keys them
        order, known = [(s0, None)], {(s0, None)}
        i = 0
        while i < len(order) and len(order) < self.max_states:
            sid, rr = order[i]
            i += 1
            acc = lex.accept[sid]
            if acc and i > 1:
                T = tables.longest_choice(acc) if store.longest else acc & A
                nsig = sig if T & ~tables.ignore_mask == 0 else walk._scan(sig, T)
                if nsig is not None and nsig not in self.seen:
                    self.seen.add(nsig)
                    self.queue.append(nsig)
            for b in range(256):
                nxt = lex.step(sid, b)
                if nxt < 0 or not lex.live[nxt] & A:
                    continue
                nrr = None
                if store.longest and not lex.accept[nxt]:
                    if acc:  # the lexeme passed an accepting point just before ``b``
                        nrr = store.root_relex(bytes((b,)))
                    elif rr is not None:
                        nrr = store._relex_step(rr, b)
                if (nxt, nrr) not in known:
                    known.add((nxt, nrr))
                    order.append((nxt, nrr))
        if i < len(order):
            self.complete = False
        for sid, rr in order:
            if rr is not None:
                continue  # visited for the rows it leads to; its entry is keyed by the text
            if self.over():  # one row can hold thousands of states (an email format's)
                self.complete = False
                return
            store.tables.lexer.expand(sid)
            self.states += 1
            work = np.zeros(store.n_words, np.uint32)
            walk.out, walk.done, walk.work, walk.fed = work, set(), 0, False
            walk._apply(store.root_entry(sid, A, 0), sig, A, 0)
            if self.masks and store.indenter is None and not walk.fed:
                key = (sid, sig)  # mask_key of a one-reading configuration
                # many configurations share a mask (inside any string, after any comma): one
                # array per distinct mask, so memory and the saved file hold each once
                work = self.unique.setdefault(work.tobytes(), work)
                with store._lock:
                    if key not in store._masks and store._mask_bytes + work.nbytes <= store.max_mask_bytes:
                        store._masks[key] = work
                        store._mask_bytes += work.nbytes


class _PrecomputeWalk(_MaskWalk):
    """A mask walk without a sequence: reference-parser feeds depend on the text, so they are
    skipped and the configuration's whole mask is not cached (``fed``)."""

    fed = False

    def _tick(self) -> None:
        pass  # precompute has its own budget

    def _feed(self, x: int, root: int) -> None:
        self.fed = True


def _concat_closed(dfa) -> bool:
    """Whether ``L·L ⊆ L`` for the DFA's language: ``L ⊆ L(q)`` for every reachable accepting
    state ``q`` (a product search from (start, q))."""
    trans = np.asarray(dfa.trans)
    accept = np.asarray(dfa.accept, bool)
    live = np.asarray(dfa.live, bool)
    n = trans.shape[0]
    reach = {0}
    stack = [0]
    while stack:
        a = stack.pop()
        for b in set(trans[a].tolist()):
            if 0 <= b < n and live[b] and b not in reach:
                reach.add(b)
                stack.append(b)
    for q in reach:
        if not accept[q]:
            continue
        seen = {(0, q)}
        stack = [(0, q)]
        while stack:
            a, b = stack.pop()
            if accept[a] and not accept[b]:
                return False
            for byte in range(256):
                a2 = int(trans[a, byte])
                if a2 < 0 or not live[a2]:
                    continue
                b2 = int(trans[b, byte])
                if b2 < 0 or not live[b2]:
                    return False
                if (a2, b2) not in seen:
                    seen.add((a2, b2))
                    stack.append((a2, b2))
    return True
