"""``Matcher``: the token-level state of one constrained sequence.

A matcher pairs a compiled grammar with a vocabulary.  It answers, after the tokens accepted so
far, which tokens may come next (as a packed bitmask in the xgrammar/llguidance layout), and
advances token by token with O(1) rollback.  Its semantics are those of
:func:`constrain.testing.naive.naive_mask`: token ``t`` is allowed iff the output plus
``bytes(t)`` is a viable prefix of the grammar; stop ids iff the output is complete; special,
unused and padded ids never.

Lifetimes: :func:`compile_grammar` returns per-grammar tables shared process-wide (by grammar
fingerprint); :func:`get_store` returns the per-(grammar, vocabulary) :class:`TokenStore`;
a ``Matcher`` is per sequence and cheap to create or ``copy()``.
"""

from __future__ import annotations

import operator
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Iterable, Sequence

import numpy as np

from constrain.engine.earley import ByteParser, CompiledParserTables
from constrain.engine.store import TokenStore
from constrain.errors import ConfigError, ConstrainError
from constrain.grammar.ir import Grammar
from constrain.tokenizers.vocabulary import TokenKind, Vocabulary

_INT32 = np.dtype(np.int32)
_TEXT = int(TokenKind.TEXT)  # (a numpy uint8 compared with the IntEnum itself takes ~7 µs: per token)
_tables_cache: dict[str, CompiledParserTables] = {}
_store_cache: dict[tuple[str, str], TokenStore] = {}
_cache_lock = threading.Lock()


class MatcherStateError(ConstrainError, ValueError):
    """A matcher was asked for something its state does not allow (e.g. rolling back past
    its history)."""


def compile_grammar(grammar: Grammar | CompiledParserTables) -> CompiledParserTables:
    """Parser tables for ``grammar``, shared by every matcher of the same grammar."""
    if isinstance(grammar, CompiledParserTables):
        return grammar
    if not isinstance(grammar, Grammar):
        raise ConfigError(f"expected a compiled Grammar, got {type(grammar).__name__}; "
                          "use constrain.grammar.from_lark / from_regex / from_choices first")
    key = grammar.fingerprint
    with _cache_lock:
        t = _tables_cache.get(key)
        if t is None:
            t = _tables_cache[key] = CompiledParserTables(grammar)
        return t


def get_store(grammar: Grammar | CompiledParserTables, vocab: Vocabulary, *, persist: bool = False) -> TokenStore:
    """The shared mask store of a (grammar, vocabulary) pair.

    With ``persist`` a store saved on disk (:meth:`TokenStore.save`, e.g. by another worker
    process, or after :meth:`TokenStore.precompute`) is loaded instead of starting empty; it
    brings its own copy of the grammar's lazily built tables, which then serve this grammar in
    this process (a store and the tables it was built with always travel together).  Servers
    call :meth:`TokenStore.maybe_save` as requests finish."""
    explicit = grammar if isinstance(grammar, CompiledParserTables) else None
    g = explicit.grammar if explicit is not None else grammar
    if not isinstance(g, Grammar):
        compile_grammar(g)  # raises the ConfigError
    key = (g.fingerprint, vocab.fingerprint)
    with _cache_lock:
        s = _store_cache.get(key)
        if s is not None and (explicit is None or s.tables is explicit):
            return s
    loaded = TokenStore.load(g, vocab) if persist and explicit is None else None
    with _cache_lock:
        s = _store_cache.get(key)
        if s is not None and (explicit is None or s.tables is explicit):
            return s
        if loaded is not None:
            _tables_cache.setdefault(g.fingerprint, loaded.tables)
            s = loaded
        else:
            tables = explicit if explicit is not None else _tables_cache.get(g.fingerprint)
            if tables is None:
                tables = _tables_cache[g.fingerprint] = CompiledParserTables(g)
            s = TokenStore(tables, vocab)
        _store_cache[key] = s
        return s


class Matcher:
    """Constrained-decoding state of one sequence.

    >>> m = Matcher(grammar, vocab)                      # doctest: +SKIP
    >>> bitmask = allocate_token_bitmask(1, vocab.n_vocab)
    >>> m.fill_next_token_bitmask(bitmask)              # doctest: +SKIP
    >>> m.accept_token(token_id)                         # doctest: +SKIP
    """

    def __init__(self, grammar: Grammar | CompiledParserTables, vocab: Vocabulary, *, store: TokenStore | None = None):
        self.store = store if store is not None else get_store(grammar, vocab)
        self.vocab = vocab
        self.tables = self.store.tables
        self.parser = ByteParser(self.tables)
        self._marks: list[int] = []  # parser steps before each accepted token
        self._finished = False
        self._kinds = vocab.kinds
        self._eos = frozenset(vocab.eos_ids)
        self._tb = vocab.all_token_bytes
        # a value check the grammar carries (constrain.grammar.checks): its tracker state now,
        # and before each accepted token (states are immutable, so rollback/copy keep references)
        self._check = self.tables.grammar.value_check
        self._vst = self._check.initial() if self._check is not None else None
        self._vsts: list = []
        self._out_view = None  # (bitmask, row, row's uint32 view, its first n_words) of the last fill

    # ------------------------------------------------------------- queries
    def is_finished(self) -> bool:
        """A stop id was accepted: the sequence is over."""
        return self._finished

    is_terminated = is_finished

    def is_complete(self) -> bool:
        """The output so far is a word of the grammar (a stop id would be accepted)."""
        return self.parser.is_complete()

    @property
    def n_tokens(self) -> int:
        return len(self._marks)

    @property
    def output(self) -> bytes:
        return bytes(self.parser.buf)

    def fill_next_token_bitmask(self, bitmask, row: int = 0) -> None:
        """Write the allowed next tokens into row ``row`` of ``bitmask`` (``int32[B, W]``,
        numpy or a CPU torch tensor, ``W >= ceil(n_vocab / 32)``).  Words past the
        vocabulary are zeroed.  After a stop id only the stop ids are allowed."""
        # the common case, the same int32 numpy array and row as last time, reuses last time's
        # checked view of the row (holding the array keeps its shape: numpy refuses to resize an
        # array another object references); ~1 µs of a ~3 µs cached mask
        last = self._out_view
        if last is not None and last[0] is bitmask and last[1] == row:
            _, _, out, words = last
        else:
            out, words = self._row_view(bitmask, row)
        if self._finished:
            out[:] = 0
            words |= self.store._eos_words
            return
        if words.shape[0] != out.shape[0]:
            out[words.shape[0]:] = 0
        self.store.fill(self.parser, words, overwrite=True)  # writes every word: no zeroing first
        if self._check is not None:
            self._check.restrict(self._vst, words, self.vocab)

    def _row_view(self, bitmask, row: int):
        """Row ``row`` of ``bitmask`` checked, as ``uint32`` (the whole row, and its first
        ``n_words``); remembered for the next fill when ``bitmask`` is a numpy array."""
        # (an int32 numpy array without _as_numpy's checks: this is per token)
        arr = bitmask if type(bitmask) is np.ndarray and bitmask.dtype == _INT32 else _as_numpy(bitmask)
        if arr.ndim == 1:
            arr = arr[None, :]
        n = self.store.n_words
        if arr.ndim != 2:
            raise ConfigError(f"bitmask must be int32[B, W], got {arr.ndim} dimensions")
        if arr.shape[1] < n:
            raise ConfigError(f"bitmask rows have {arr.shape[1]} words but the vocabulary needs {n}")
        if not -arr.shape[0] <= row < arr.shape[0]:
            raise ConfigError(f"bitmask row {row} is outside the bitmask's {arr.shape[0]} rows")
        out = arr[row].view(np.uint32)
        if type(bitmask) is np.ndarray:
            self._out_view = (bitmask, row, out, out[:n])
        return out, out[:n]

    def next_token_mask(self) -> np.ndarray:
        """``bool[n_vocab]`` of allowed next tokens (convenience; the bitmask is faster)."""
        from constrain.engine.bitmask import bitmask_to_bool

        bm = np.zeros((1, self.store.n_words), np.int32)
        self.fill_next_token_bitmask(bm)
        return bitmask_to_bool(bm[0], self.vocab.n_vocab)

    def forced_bytes(self, max_bytes: int = 256) -> bytes:
        """The bytes every continuation of the output must start with (at most ``max_bytes``).

        Follows the output while exactly one byte keeps it viable and the output is not complete
        (when it is, ending is an alternative).  Empty after a stop id.  The state is unchanged.
        These are *bytes*: :meth:`forced_tokens` turns them into the tokens the tokenizer itself
        would use, which is what fast-forward must append.
        """
        if self._finished:
            return b""
        p = self.parser
        mark = p.n_steps
        out = bytearray()
        try:
            while len(out) < max_bytes and not p.is_complete():
                nb = p.next_bytes(limit=2)  # forced iff exactly one
                if len(nb) != 1:
                    break
                if not p.feed(bytes(nb)):  # cannot happen: next_bytes is exact
                    break
                out.append(nb[0])
        finally:
            p.rollback_to(mark)
        return bytes(out)

    def forced_tokens(self, encode, *, max_bytes: int = 256) -> list[int]:
        """Canonical tokens for the forced continuation, safe to append without sampling.

        ``encode(text) -> list[int]`` is the tokenizer's own encoder (no special tokens).  The
        forced bytes are cut to whole UTF-8 characters and encoded; the result is kept only if
        its bytes are exactly a prefix of the forced bytes (a tokenizer that normalises or adds
        a ``▁`` prefix gets no fast-forward rather than a wrong one).  Then trailing tokens are
        dropped while some vocabulary token starting inside the last kept token reaches past
        the end of the forced bytes: the tokenizer might merge across that boundary once the
        text continues (llguidance's canonical-token rule, ``algorithms.md`` §9), and forcing a
        split the model never saw derails it.  Every returned token is accepted by this matcher.
        """
        f = self.forced_bytes(max_bytes)
        if not f:
            return []
        text = f.decode("utf-8", errors="ignore")
        while text.encode("utf-8") != f[: len(text.encode("utf-8"))]:
            text = text[:-1]  # pragma: no cover - "ignore" only drops a truncated tail
        if not text:
            return []
        ids = [int(t) for t in encode(text)]
        tb = self._tb
        bounds = [0]
        for t in ids:
            if not 0 <= t < len(tb) or self._kinds[t] != _TEXT:
                return []
            bounds.append(bounds[-1] + len(tb[t]))
        if f[: bounds[-1]] != b"".join(tb[t] for t in ids):
            return []
        j = len(ids)
        spans = self.vocab.extends_prefix
        while j > 0 and any(spans(f[s:]) for s in range(bounds[j - 1], bounds[j])):
            j -= 1
        # the tokens spell a prefix of the forced bytes, so the matcher accepts them (the caller's
        # accept_tokens is the check; no second parse here)
        return ids[:j]

    # ------------------------------------------------------------- updates
    def _advance(self, token_id: int) -> bool:
        if self._finished:
            return False
        try:
            tid = operator.index(token_id)
        except TypeError:
            raise ConfigError(f"token id must be an integer, got {token_id!r} ({type(token_id).__name__})") from None
        if not 0 <= tid < len(self._tb):
            return False
        if tid in self._eos:
            if self.parser.is_complete():
                self._marks.append(self.parser.n_steps)
                if self._check is not None:
                    self._vsts.append(self._vst)
                self._finished = True
                return True
            return False
        if self._kinds[tid] != _TEXT or not self._tb[tid]:
            return False
        return self._feed(self._tb[tid])

    def _feed(self, data: bytes) -> bool:
        mark = self.parser.n_steps
        if not self.parser.feed(data):
            return False
        if self._check is not None:
            vst = self._check.feed(self._vst, data)
            if vst is None:  # it breaks the check (a duplicate, a missing name, a length)
                self.parser.rollback_to(mark)
                return False
            self._vsts.append(self._vst)
            self._vst = vst
        self._marks.append(mark)
        return True

    def accept_token(self, token_id: int) -> bool:
        """Advance by one token; on ``False`` the state is unchanged."""
        return self._advance(token_id)

    def accept_bytes(self, data: bytes) -> bool:
        """Advance by raw bytes (a forced prefix, a prompt's tail); counts as one step for
        :meth:`rollback`.  On ``False`` the state is unchanged."""
        if self._finished:
            return False
        return self._feed(bytes(data))

    def accept_tokens(self, token_ids: Iterable[int]) -> bool:
        """Advance by all tokens, or by none (returns ``False`` and leaves the state unchanged)."""
        n0 = len(self._marks)
        for t in token_ids:
            if not self._advance(t):
                self.rollback(len(self._marks) - n0)
                return False
        return True

    def validate_tokens(self, token_ids: Sequence[int]) -> int:
        """How many leading tokens of ``token_ids`` would be accepted (state unchanged)."""
        n0 = len(self._marks)
        k = 0
        for t in token_ids:
            if not self._advance(t):
                break
            k += 1
        self.rollback(len(self._marks) - n0)
        return k

    def try_accept(self, token_id: int) -> bool:
        """Whether ``token_id`` would be accepted, without committing it."""
        if self._advance(token_id):
            self.rollback(1)
            return True
        return False

    def rollback(self, n_tokens: int) -> None:
        """Undo the last ``n_tokens`` accepted tokens (stop ids included)."""
        try:
            n_tokens = operator.index(n_tokens)
        except TypeError:
            raise ConfigError(f"rollback needs an integer count, got {n_tokens!r}") from None
        if n_tokens < 0 or n_tokens > len(self._marks):
            raise MatcherStateError(f"cannot roll back {n_tokens} tokens: {len(self._marks)} accepted")
        if n_tokens == 0:
            return
        mark = self._marks[-n_tokens]
        del self._marks[-n_tokens:]
        self.parser.rollback_to(mark)
        if self._check is not None:
            self._vst = self._vsts[-n_tokens]
            del self._vsts[-n_tokens:]
        self._finished = False

    def reset(self) -> None:
        self.parser = ByteParser(self.tables)
        self._marks = []
        self._finished = False
        self._vst = self._check.initial() if self._check is not None else None
        self._vsts = []

    def copy(self) -> "Matcher":
        c = object.__new__(Matcher)
        c.__dict__.update(self.__dict__)
        c.parser = self.parser.copy()
        c._marks = list(self._marks)
        c._vsts = list(self._vsts)
        return c

    def __repr__(self) -> str:
        return (f"Matcher(grammar={self.tables.grammar.name!r}, vocab={self.vocab.name!r}, "
                f"tokens={len(self._marks)}, finished={self._finished})")


def _as_numpy(bitmask) -> np.ndarray:
    if isinstance(bitmask, np.ndarray):
        if bitmask.dtype != np.int32:
            raise ConfigError(f"bitmask must be int32, got {bitmask.dtype}")
        return bitmask
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency
        torch = None
    if torch is not None and isinstance(bitmask, torch.Tensor):
        if bitmask.dtype != torch.int32 or bitmask.device.type != "cpu":
            raise ConfigError(f"bitmask tensor must be int32 on the CPU, got {bitmask.dtype} on {bitmask.device}")
        return bitmask.numpy()
    raise ConfigError(f"bitmask must be a numpy array or a torch tensor, got {type(bitmask).__name__}")


_pool: ThreadPoolExecutor | None = None


def fill_next_token_bitmasks(matchers: Sequence[Matcher | None], bitmask, *, threads: int | None = None) -> None:
    """Fill row ``i`` of ``bitmask`` from ``matchers[i]`` (``None`` rows allow everything).

    Rows are independent, so they are filled on a thread pool; the numba kernels release the
    GIL, the Python orchestration of boundary scans does not, so the speed-up depends on how
    much of a mask is cached.
    """
    global _pool
    arr = _as_numpy(bitmask)
    if len(matchers) > arr.shape[0]:
        raise ConfigError(f"{len(matchers)} matchers but the bitmask has {arr.shape[0]} rows")

    def one(i):
        m = matchers[i]
        if m is None:
            arr[i] = -1
        else:
            m.fill_next_token_bitmask(arr, i)

    if threads == 1 or len(matchers) <= 1:
        for i in range(len(matchers)):
            one(i)
        return
    if _pool is None:
        _pool = ThreadPoolExecutor(max_workers=threads or 4, thread_name_prefix="constrain-mask")
    list(_pool.map(one, range(len(matchers))))
