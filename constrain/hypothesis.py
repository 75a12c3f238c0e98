"""Hypothesis strategies that generate valid documents from grammars, regexes and JSON Schemas.

::

    from constrain.hypothesis import from_grammar, from_regex, from_schema

    @given(from_schema({"type": "object", "properties": {"n": {"type": "integer"}}}))
    def test_roundtrip(value): ...

    @given(from_grammar("grammars/sql.lark"))          # str documents the grammar accepts
    @given(from_regex(r"[a-z]+@[a-z]+\\.com"))           # str fully matching the pattern

How it works
------------
Generation walks constrain's exact byte-level parser (:class:`~constrain.engine.earley.ByteParser`)
one byte at a time; no tokenizer and no model are involved.  At each step the allowed bytes
are grouped (bytes that move the lexer to the same states behave identically), every group
gets the length of the *shortest completion* after it, and the groups are ordered by that
length: index 0 is always "the continuation that closes the document soonest" (or "stop here"
when the document is already complete).  The choice of a group, and of a byte inside it, is
drawn from hypothesis's data, so hypothesis's shrinker, which pushes draws towards 0 and
deletes them, moves failing examples towards short, simple documents.

Besides single bytes, each step offers *lexeme moves*: for every terminal the current lexeme
may still become, its shortest finish in one go (a declared property name, a keyword, ``""``).
They are what makes ``"debug"`` or ``SELECT`` a likely choice rather than one path among
thousands of byte strings.  Lead bytes of non-ASCII characters share one option per cost, so
text is not dominated by the many UTF-8 lead-byte classes (``ascii_only=True`` drops them).

Shortest completions are computed exactly from the parser state: per terminal, the distance
of each DFA state to acceptance; per nonterminal, its shortest derivation; per chart row, the
cost of finishing each item's ancestors (a small shortest-path fixpoint, memoised per row).

Termination: a group is offered only while ``bytes so far + 1 + its shortest completion`` fits
in ``max_size``; when nothing else fits, the walk takes index 0 deterministically.  For
grammars with all-readings lexing (JSON Schema and regex grammars) the completion lengths are
exact, so every document is at most ``max_size`` bytes (or the shortest document, if that is
longer).  For maximal-munch grammars (Lark ``lexer: basic``, Python indentation) the lengths
are a heuristic (adjacent lexemes may merge; indentation is not counted), so once the budget
is spent a best-first search over real parser states finds the close; documents may then run
a few bytes past ``max_size``.  Maximal munch also admits prefixes that nothing completes
(a comment where no newline may follow; a lexeme only a refused keyword can finish): the walk
then undoes the current lexeme and bans the byte group it started with (bounded; past the
bound the example is rejected with ``hypothesis.reject``, never returned truncated).  Every
value is complete by the reference parser, and ``debug=True`` checks each one again with an
independent tool (Lark, ``jsonschema``, ``re.fullmatch``).

Speed: schema and regex grammars need no probing (the next state is a function of the lexer
successors); for Lark's basic lexer, allowed bytes are decided from lexer states plus one row
built per lexeme end (tested against feeding all 256 bytes); other cases probe one byte per
group.  Pure Python: hundreds of short documents per second for schemas and json.lark, a few
to tens per second for 100-250 byte sql / python / go documents.
"""

from __future__ import annotations

import heapq
import json
import re
import threading
from pathlib import Path

import hypothesis.strategies as st
import numpy as np
from hypothesis import reject

from constrain.engine.earley import ByteParser, CompiledParserTables
from constrain.errors import ConfigError, ConstrainError
from constrain.grammar.ir import Grammar
from constrain.grammar.lexer import DEAD

__all__ = ["from_grammar", "from_regex", "from_schema", "GeneratedInvalid", "DocumentGenerator"]

INF = 1 << 40


class GeneratedInvalid(ConstrainError, AssertionError):
    """``debug=True`` found a generated document that the independent checker rejects (a bug)."""


# ----------------------------------------------------------------------------- byte order

def _byte_rank() -> list[int]:
    """Simplicity order of bytes (shrinking target first): digits, lowercase, uppercase, space,
    punctuation, newline/tab, other controls, then non-ASCII."""
    order = list(b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ ")
    order += [b for b in range(33, 127) if b not in order]
    order += [10, 9, 13]
    order += [b for b in range(128) if b not in order]
    order += list(range(128, 256))
    rank = [0] * 256
    for i, b in enumerate(order):
        rank[b] = i
    return rank


RANK = _byte_rank()


def _dist_to_accept(trans: np.ndarray, accept: np.ndarray) -> list[int]:
    """Shortest number of bytes from each DFA state to an accepting state (INF if none)."""
    n = trans.shape[0]
    src, _ = np.nonzero(trans >= 0)
    dst = trans[trans >= 0]
    if len(src):
        edges = np.unique(dst.astype(np.int64) * n + src)
        dst_u, src_u = edges // n, edges % n
        order_start = np.searchsorted(dst_u, np.arange(n + 1))
    else:
        src_u = np.zeros(0, np.int64)
        order_start = np.zeros(n + 1, np.int64)
    src_l = src_u.tolist()
    starts = order_start.tolist()
    dist = [INF] * n
    frontier = [int(s) for s in np.flatnonzero(accept)]
    for s in frontier:
        dist[s] = 0
    d = 0
    while frontier:
        d += 1
        nxt = []
        for t in frontier:
            for i in range(starts[t], starts[t + 1]):
                s = src_l[i]
                if dist[s] == INF:
                    dist[s] = d
                    nxt.append(s)
        frontier = nxt
    return dist


class _ProbeTables(CompiledParserTables):
    """Parser tables whose row closure is memoised while a step's bytes are probed.

    Probing many bytes from one state closes the same row (same id, same seed items, same
    older rows) again and again; while ``probe_cache`` is a dict, identical closures are
    shared.  Rows are immutable, so sharing them is safe; the cache is reset per step."""

    probe_cache: dict | None = None
    probe_base = -1

    def new_row(self, pos, seeds, chart):
        cache = self.probe_cache
        if cache is None or pos != self.probe_base:
            # only the first row after the state is shared: a later one may complete items
            # of rows that differ between probes under the same ids
            return super().new_row(pos, seeds, chart)
        key = (pos, tuple(seeds))
        row = cache.get(key)
        if row is None:
            row = cache[key] = super().new_row(pos, seeds, chart)
        return row


class _Tables:
    """Per-grammar data for generation (shared by every example of one strategy)."""

    def __init__(self, grammar: Grammar):
        self.grammar = g = grammar
        self.pt = _ProbeTables(grammar)
        self.lex = self.pt.lexer
        self.longest = self.pt.longest
        self.basic = self.pt.basic
        self.indenter = self.pt.indenter is not None
        self.newline = self.pt.indenter.newline if self.indenter else -1
        self.ignore = frozenset(g.ignore)
        # terminals: distance to acceptance per DFA state, shortest lexeme
        self.dist: list[list[int]] = []
        self.minlen: list[int] = []
        for t in g.terminals:
            if t.kind == "virtual":
                self.dist.append([0] * t.dfa.n_states)
                self.minlen.append(0)
                continue
            d = _dist_to_accept(t.dfa.trans, t.dfa.accept)
            self.dist.append(d)
            self.minlen.append(d[0])
        # nonterminals: shortest derivation (bytes)
        rules = [g.rule(r) for r in range(g.n_rules)]
        self.lhs = [l for l, _ in rules]
        n_nt = len(g.nonterminals)
        mn = [INF] * n_nt
        changed = True
        while changed:
            changed = False
            for l, rhs in rules:
                c = 0
                for s in rhs:
                    c += self.minlen[s] if s >= 0 else mn[~s]
                    if c >= INF:
                        break
                if c < mn[l]:
                    mn[l] = c
                    changed = True
        self.nt_min = mn
        # suffix[r][d]: shortest expansion of rhs[r][d:]
        self.suffix: list[list[int]] = []
        for _, rhs in rules:
            suf = [0] * (len(rhs) + 1)
            for i in range(len(rhs) - 1, -1, -1):
                s = rhs[i]
                suf[i] = min(INF, suf[i + 1] + (self.minlen[s] if s >= 0 else mn[~s]))
            self.suffix.append(suf)
        # byte classes: bytes with equal transitions in every terminal DFA are interchangeable;
        # the indentation post-lexer also reads spaces, tabs and newlines themselves
        cols = [t.dfa.byte_classes() for t in g.terminals if t.kind != "virtual"]
        sig = np.stack(cols) if cols else np.zeros((1, 256), np.int32)
        if self.indenter:
            extra = np.zeros((1, 256), np.int32)
            for i, b in enumerate(b" \t\n\r\x0c"):
                extra[0, b] = i + 1
            sig = np.concatenate([sig, extra])
        _, inv = np.unique(sig.T, axis=0, return_inverse=True)
        inv = np.asarray(inv).reshape(-1)
        members: dict[int, list[int]] = {}
        for b in range(256):
            members.setdefault(int(inv[b]), []).append(b)
        cls = sorted(members.values(), key=lambda ms: min(RANK[b] for b in ms))
        self.classes = [sorted(ms, key=RANK.__getitem__) for ms in cls]
        self.reps = [ms[0] for ms in self.classes]
        self.n_classes = len(self.classes)
        self.lock = threading.Lock()
        self._words: dict[tuple, bytes] = {}
        self.shortest: bytes | None = None
        self.basic_buckets: dict[int, list] = {}
        self.trap_prone: dict[int, bool] = {}
        self._dist_np: dict[int, np.ndarray] = {}

    def word(self, t: int, q: int) -> bytes:
        """A shortest way to finish terminal ``t``'s lexeme from its DFA state ``q``, simplest
        bytes first (memoised)."""
        key = (t, q)
        w = self._words.get(key)
        if w is None:
            dfa = self.grammar.terminals[t].dfa
            dist = self._dist_np.get(t)
            if dist is None:
                dist = self._dist_np[t] = np.append(np.asarray(self.dist[t], dtype=np.int64), INF)
            out = bytearray()
            s = q
            while dist[s] > 0:
                row = dfa.trans[s]
                cands = np.flatnonzero(dist[row] == dist[s] - 1)  # row -1 reads the INF sentinel
                b = min(cands.tolist(), key=RANK.__getitem__)
                out.append(b)
                s = int(row[b])
            w = self._words[key] = bytes(out)
        return w

    def start_state_basic(self) -> int:
        return self.lex.start(self.pt.all_terms)


class _Run:
    """One document being generated: the parser plus per-row completion-cost memos."""

    def __init__(self, tables: _Tables, ascii_only: bool = False):
        self.T = tables
        self.ascii_only = ascii_only
        self._in_trap_check = False
        self.p = ByteParser(tables.pt)
        self._U: dict[int, tuple] = {}
        self._after: dict[tuple, int] = {}

    # ------------------------------------------------------------ completion costs
    def _row_up(self, p: ByteParser, o: int) -> dict:
        """``U[A]``: bytes needed after a nonterminal ``A`` that started at row ``o`` completes."""
        chart = p.chart
        row = chart[o]
        m = self._U.get(id(row))
        if m is not None and m[0] is row:
            return m[1]
        todo = {o}
        stack = [o]
        while stack:
            k = stack.pop()
            for sym, items in chart[k].waiting.items():
                if sym < 0:
                    for (_, _, o3) in items:
                        if o3 not in todo:
                            m3 = self._U.get(id(chart[o3]))
                            if m3 is None or m3[0] is not chart[o3]:
                                todo.add(o3)
                                stack.append(o3)
        lhs, suffix = self.T.lhs, self.T.suffix
        for k in sorted(todo):
            rk = chart[k]
            U: dict[int, int] = {0: 0} if k == 0 else {}
            entries = []
            for sym, items in rk.waiting.items():
                if sym < 0:
                    a = ~sym
                    for (r3, d3, o3) in items:
                        s = suffix[r3][d3 + 1]
                        if o3 == k:
                            entries.append((a, s, lhs[r3], None))
                        else:
                            entries.append((a, s + self._U[id(chart[o3])][1].get(lhs[r3], INF), -1, None))
            changed = True
            while changed:
                changed = False
                for a, s, l3, _ in entries:
                    v = s + U.get(l3, INF) if l3 >= 0 else s
                    if v < U.get(a, INF):
                        U[a] = v
                        changed = True
            self._U[id(rk)] = (rk, U)
        return self._U[id(row)][1]

    def _row_cost(self, p: ByteParser, k: int) -> int:
        """Shortest completion from row ``k`` (as if the output ended with it)."""
        row = p.chart[k]
        m = self._after.get((id(row), -1, False))
        if m is not None and m[0] is row:
            return m[1]
        if row.complete:
            c = 0
        else:
            c = INF
            lhs, suffix = self.T.lhs, self.T.suffix
            for (r, d, o) in row.items:
                v = suffix[r][d] + self._row_up(p, o).get(lhs[r], INF)
                if v < c:
                    c = v
        self._after[(id(row), -1, False)] = (row, c)
        return c

    def _after_term(self, p: ByteParser, k: int, t: int) -> int:
        """Bytes needed after a lexeme of terminal ``t`` scanned from row ``k``."""
        row = p.chart[k]
        transparent = t in self.T.ignore or (p.paren > 0 and t == self.T.newline)
        key = (id(row), t, transparent)
        m = self._after.get(key)
        if m is not None and m[0] is row:
            return m[1]
        if transparent:  # ignored, or a newline inside brackets under the indenter
            c = self._row_cost(p, k)
        else:
            c = INF
            lhs, suffix = self.T.lhs, self.T.suffix
            for (r, d, o) in row.waiting.get(t, ()):
                v = suffix[r][d + 1] + self._row_up(p, o).get(lhs[r], INF)
                if v < c:
                    c = v
        self._after[key] = (row, c)
        return c

    def _thread_cost(self, p: ByteParser, th: tuple, sid: int) -> int:
        """Shortest completion through thread ``th`` whose lexer state is ``sid``."""
        k = th[0]
        allowed = p._allowed(k)
        keys = self.T.lex.keys[sid]
        dist = self.T.dist
        c = INF
        for (t, q) in keys:
            if allowed >> t & 1:
                v = dist[t][q]
                if v < c:
                    v += self._after_term(p, k, t)
                    if v < c:
                        c = v
        return c

    def cost(self, p: ByteParser, threads=None) -> int:
        """Shortest completion (bytes) of ``p``'s output (or of ``threads`` over ``p``'s chart);
        exact under all-readings lexing, a heuristic under maximal munch."""
        if threads is None:
            if not self.T.longest and p.row_here is not None and p.chart[p.row_here].complete:
                return 0
            threads = p.threads
        c = INF
        for th in threads:
            v = self._thread_cost(p, th, th[1])
            if self.T.longest and len(th) == 4 and th[2] >= 0 and v >= INF:
                # the lexeme can only end by falling back to its last accepting point
                acc = self.T.pt.longest_choice(self.T.lex.accept[th[3]]) & p._allowed(th[0])
                for t in ByteParser._terms(acc):
                    v = min(v, self._after_term(p, th[0], t))
            c = min(c, v)
        return c

    # ---------------------------------------------------------------- choices
    def groups(self, p: ByteParser) -> list[tuple[int, list[int]]]:
        """Allowed continuations as ``(cost after the byte, bytes)`` groups, cheapest first."""
        T = self.T
        lex = T.lex
        threads = p.threads
        if not threads:
            return []
        if T.basic and len(threads) == 1:
            return self._finish_groups(self._groups_basic(p))
        sids = [th[1] for th in threads]
        if T.basic:
            sids.append(T.start_state_basic())
        exact_keys = not T.longest or (T.basic and all(len(th) < 4 or th[2] < 0 or th[2] == p.pos for th in threads))
        buckets: dict[tuple, list[int]] = {}
        step = lex.step
        if exact_keys:
            table = lex.table
            for c, b in enumerate(T.reps):
                key = []
                for s in sids:
                    nx = int(table[s, b])
                    if nx == -2:
                        nx = step(s, b)
                    key.append(nx)
                if T.basic:
                    # the fresh-lexeme start state matters only where the current lexeme dies
                    if DEAD not in key[:-1]:
                        key[-1] = None
                if T.indenter and b in (9, 10, 12, 13, 32):
                    key.append(b)
                key = tuple(key)
                if not T.longest and all(x == DEAD for x in key):
                    continue
                buckets.setdefault(key, []).append(c)
        else:
            for c in range(T.n_classes):
                buckets[(c,)] = [c]
        out = []
        if not T.longest:
            # the successor state is a function of the lexer successors: cost without feeding
            for key, cs in buckets.items():
                cost = INF
                for th, nx in zip(threads, key):
                    if nx != DEAD:
                        cost = min(cost, self._thread_cost(p, th, nx))
                if cost < INF:
                    out.append((cost, cs))
        else:
            mark = p.n_steps
            for key, cs in buckets.items():
                b = T.reps[cs[0]]
                if p.feed(bytes((b,))):
                    cost = self.cost(p)
                    p.rollback_to(mark)
                    out.append((min(cost, INF - 1), cs))
        return self._finish_groups(out)

    def _finish_groups(self, out: list) -> list[tuple[int, list[int]]]:
        """Class lists -> sorted byte lists; lead bytes of non-ASCII characters form one
        option per cost, so text is not dominated by the many UTF-8 lead-byte classes."""
        T = self.T
        merged: dict[int, list[int]] = {}
        keep = []
        for cost, cs in out:
            if T.reps[cs[0]] >= 0x80 and all(T.reps[c] >= 0x80 for c in cs):
                merged.setdefault(cost, []).extend(cs)
            else:
                keep.append((cost, cs))
        out = keep + sorted(merged.items())
        groups = []
        for cost, cs in out:
            if len(cs) == 1:
                groups.append((cost, T.classes[cs[0]]))
            else:
                ms = [b for c in cs for b in T.classes[c]]
                ms.sort(key=RANK.__getitem__)
                groups.append((cost, ms))
        if self.ascii_only:
            groups = [(c, [b for b in ms if b < 0x80]) for c, ms in groups if ms[0] < 0x80]
        groups.sort(key=lambda g: (g[0], RANK[g[1][0]]))
        return groups

    def _groups_basic(self, p: ByteParser) -> list:
        """``groups`` for a basic (context-free) maximal-munch lexer with one lexing, without
        feeding: a byte either extends the current lexeme (no parser work: the rule of
        ``ByteParser._step_longest``) or ends it, and every byte that ends it ends it the
        same way, so the row after the lexeme is built once, on a copy."""
        T = self.T
        lex = T.lex
        (th,) = p.threads
        k, sid, lap, las = th
        pos = p.pos
        table = lex.table
        step = lex.step
        live, accept = lex.live, lex.accept
        allowed_k = p._allowed(k)
        buckets = T.basic_buckets.get(sid)
        if buckets is None:
            # which classes extend the lexeme to which state, and which end it and start which
            # lexeme: a function of the lexer state alone (memoised per state)
            s0 = T.start_state_basic()
            buckets = {}
            for c, b in enumerate(T.reps):
                nx = int(table[sid, b])
                if nx == -2:
                    nx = step(sid, b)
                if nx != DEAD:
                    key = (0, nx)
                else:
                    n0 = int(table[s0, b])
                    if n0 == -2:
                        n0 = step(s0, b)
                    if n0 == DEAD:
                        continue
                    key = (1, n0)
                buckets.setdefault(key, []).append(c)
            buckets = T.basic_buckets[sid] = list(buckets.items())
        out = []
        emitted = None
        for (kind, nx), cs in buckets:
            if kind == 0:
                th2 = (k, nx, pos + 1, nx) if accept[nx] else (k, nx, lap, las)
                if live[nx] & allowed_k or (th2[2] >= 0 and not accept[nx]
                                            and T.pt.longest_choice(accept[th2[3]]) & allowed_k):
                    out.append((min(self.cost(p, (th2,)), INF - 1), cs))
                continue
            if emitted is None:
                emitted = False
                if not accept[sid] and lap >= 0:
                    # the lexeme falls back to its last accepting point and the bytes after it
                    # are lexed again: if that re-lexing dies already, every such byte fails
                    q = p.copy()
                    rid = q._emit([(k, T.pt.longest_choice(accept[las]))], lap)
                    if rid is not None and q._relex(rid, lap, pos):
                        emitted = "probe"
                elif accept[sid]:  # the lexeme ends here
                    q = p.copy()
                    q.buf.append(0)  # ByteParser._feed_byte appends the byte before emitting
                    rid = q._emit([(k, T.pt.longest_choice(accept[sid]))], pos)
                    if rid is not None and q.chart[rid].allowed:
                        emitted = (q, rid, q._allowed(rid))
            if not emitted:
                continue
            if emitted == "probe":
                mark = p.n_steps
                if p.feed(bytes((T.reps[cs[0]],))):
                    cost = self.cost(p)
                    p.rollback_to(mark)
                    out.append((min(cost, INF - 1), cs))
                continue
            q, rid, allowed_r = emitted
            if live[nx] & allowed_r:
                if not (live[nx] & allowed_r & ~T.pt.ignore_mask) and not self._ignored_lexeme_can_end(p, T.reps[cs[0]], nx):
                    continue  # e.g. a comment where no newline may follow: it could never end
                th2 = (rid, nx, pos + 1, nx) if accept[nx] else (rid, nx, -1, -1)
                out.append((min(self.cost(q, (th2,)), INF - 1), cs))
        return out

    def _ignored_lexeme_can_end(self, p: ByteParser, b: int, nx: int) -> bool:
        """Starting an ignored lexeme (a comment) with byte ``b``: after its shortest finish,
        can some byte end it?  Maximal munch makes a comment run to its terminator (a newline),
        which must then be allowed; the parser's viability check does not look that far."""
        if self._in_trap_check:
            return True
        T = self.T
        t, q = T.lex.keys[nx][0]
        prone = T.trap_prone.get(nx)
        if prone is None:
            # comment-like: past its shortest finish it swallows almost every byte, so only a
            # few bytes (a newline) can end it (whitespace, by contrast, ends on nearly any byte)
            dfa = T.grammar.terminals[t].dfa
            end = dfa.run(T.word(t, q), q)
            prone = T.trap_prone[nx] = end >= 0 and int((dfa.trans[end] >= 0).sum()) >= 128
        if not prone:
            return True
        mark = p.n_steps
        self._in_trap_check = True
        try:
            if not p.feed(bytes((b,)) + T.word(t, q)) or len(p.threads) != 1:
                return True  # let the regular paths decide
            sid = p.threads[0][1]
            for _, cs in self._groups_basic(p):
                if T.lex.step(sid, T.reps[cs[0]]) == DEAD:
                    return True  # some byte ends the lexeme validly
            return False
        finally:
            self._in_trap_check = False
            p.rollback_to(mark)

    def macros(self, p: ByteParser) -> list[tuple[int, bytes]]:
        """Multi-byte moves: for each terminal the current lexeme may still become, its
        shortest finish, as ``(bytes to the end of the document along it, bytes)``.  They make
        declared property names, keywords and other fixed lexemes likely choices instead of
        one path among thousands of byte sequences."""
        T = self.T
        best: dict[bytes, int] = {}
        for th in p.threads:
            k, sid = th[0], th[1]
            allowed = p._allowed(k)
            for (t, q) in T.lex.keys[sid]:
                if not allowed >> t & 1:
                    continue
                d = T.dist[t][q]
                if d < 2 or d >= INF:
                    continue
                a = self._after_term(p, k, t)
                if a >= INF:
                    continue
                w = T.word(t, q)
                if self.ascii_only and max(w) >= 0x80:
                    continue
                if d + a < best.get(w, INF):
                    best[w] = d + a
        return [(c, w) for w, c in best.items()]

    def complete(self, p: ByteParser) -> bool:
        """May the document end here?  The parser's answer, except that under the Python
        indenter a document never ends with a newline token holding no newline (a final
        comment): constrain's parser accepts it, Lark's ``PythonIndenter`` crashes on it."""
        if not p.is_complete():
            return False
        T = self.T
        if T.indenter and p.threads:
            th = p.threads[0]
            if T.lex.accept[th[1]] >> T.newline & 1 and b"\n" not in p.buf[p.row_pos[th[0]]:]:
                return False
        return True

    # ---------------------------------------------------------------- closing
    def close_search(self, p: ByteParser, max_expansions: int) -> bytes | None:
        """Best-first search (A*-like, cost heuristic) for a completion of ``p``'s output."""
        root = p.copy()
        pt = self.T.pt
        nodes: list[tuple] = []
        heap = [(0, 0, 0, -1, -1)]
        counter = 1
        expansions = 0
        while heap:
            f, ng, _, parent, b = heapq.heappop(heap)
            pt.probe_cache = None
            if parent < 0:
                q = root
            else:
                q = nodes[parent][0].copy()
                if not q.feed(bytes((b,))):  # cannot happen: probed before
                    continue
            pt.probe_cache = {}
            pt.probe_base = q.next_rid
            idx = len(nodes)
            nodes.append((q, parent, b))
            if self.complete(q):
                out = bytearray()
                while idx > 0:
                    _, parent, b = nodes[idx]
                    out.append(b)
                    idx = parent
                return bytes(reversed(out))
            expansions += 1
            if expansions > max_expansions:
                return None
            g = -ng + 1
            for cost, ms in self.groups(q):
                heapq.heappush(heap, (g + 2 * cost, -g, counter, idx, ms[0]))  # weighted: dives
                counter += 1
        return None


class DocumentGenerator:
    """Byte-level document generator for one grammar; ``generate(choose)`` draws each choice
    with ``choose(n) -> int in [0, n)`` (hypothesis's data, or a ``random.Random``)."""

    def __init__(self, grammar: Grammar, *, max_size: int = 256, max_search: int = 200, max_backtracks: int = 60,
                 ascii_only: bool = False, macros: bool = True):
        if max_size < 0:
            raise ConfigError(f"max_size must be >= 0, got {max_size}")
        self.tables = _Tables(grammar)
        self.max_size = max_size
        self.max_search = max_search
        self.max_backtracks = max_backtracks
        self.ascii_only = ascii_only
        self.use_macros = macros
        self.stats = {"examples": 0, "closed_by_search": 0, "search_failed": 0}

    def shortest(self) -> bytes:
        """The document every choice 0 leads to (a shortest document of the language)."""
        s = self.tables.shortest
        if s is None:
            s = self.generate(lambda n: 0, max_size=0)
            assert s is not None
            self.tables.shortest = s
        return s

    def budget(self, max_size: int) -> int:
        """The byte budget actually used: ``max_size``, or, when the shortest document leaves
        little room under it, the shortest length plus half of ``max_size``."""
        return max(max_size, len(self.shortest()) + max_size // 2)

    def generate(self, choose, max_size: int | None = None) -> bytes | None:
        """One document (bytes); ``None`` only if a maximal-munch walk gave up (see the module
        docstring).  ``max_size`` (default: the generator's) goes through :meth:`budget`."""
        budget = self.max_size if max_size is None else max_size
        if budget > 0:
            budget = self.budget(budget)
        T = self.tables
        with T.lock:  # the lexer automaton grows lazily; keep one generation at a time per grammar
            try:
                return self._generate(choose, budget)
            finally:
                T.pt.probe_cache = None

    def _generate(self, choose, budget: int) -> bytes | None:
        T = self.tables
        if True:
            run = _Run(T, self.ascii_only)
            p = run.p
            self.stats["examples"] += 1
            chosen: list[list[int]] = []  # the group each byte was drawn from
            banned: dict[int, set[int]] = {}  # position -> bytes known to lead to dead ends
            backtracks = 0
            while True:
                pos = p.pos
                # row closures are shared while this state is probed (and fed): see _ProbeTables
                T.pt.probe_cache = {}
                T.pt.probe_base = p.next_rid
                complete = run.complete(p)
                groups = run.groups(p)
                macros = run.macros(p) if self.use_macros else []
                ban = banned.get(pos)
                if ban:
                    groups = [(c, ms) for c, ms in groups if ms[0] not in ban]
                    macros = [(c, w) for c, w in macros if w[0] not in ban]
                # options ordered by the length of the document they lead to at best
                feasible = [(1 + c, RANK[ms[0]], 0, ms) for c, ms in groups if pos + 1 + c <= budget]
                feasible += [(c, RANK[w[0]], 1, w) for c, w in macros if pos + c <= budget]
                feasible.sort()
                options = ([None] if complete else []) + feasible
                if not options:
                    if complete:
                        break
                    if groups and not T.longest:
                        ms = groups[0][1]  # exact costs: the cheapest group closes soonest
                        p.feed(bytes((ms[0],)))
                        chosen.append(ms)
                        continue
                    tail = run.close_search(p, self.max_search) if groups else None
                    T.pt.probe_cache = None
                    if tail is not None:
                        self.stats["closed_by_search"] += 1
                        ok = p.feed(tail)
                        assert ok
                        break
                    # a dead end: maximal munch can accept a prefix that nothing completes (a
                    # comment where no newline may follow, a lexeme only a refused keyword can
                    # finish).  Undo the current lexeme and ban the group its first byte came from.
                    backtracks += 1
                    if not chosen or backtracks > self.max_backtracks:
                        self.stats["search_failed"] += 1
                        return None
                    self.stats["backtracks"] = self.stats.get("backtracks", 0) + 1
                    start = p.row_pos[p.threads[0][0]] if p.threads else pos - 1
                    start = max(0, min(start, pos - 1, len(chosen) - 1))
                    for q in [q for q in banned if q > start]:
                        del banned[q]
                    p.rollback_to(start)
                    banned.setdefault(start, set()).update(chosen[start])
                    del chosen[start:]
                    continue
                i = choose(len(options)) if len(options) > 1 else 0
                opt = options[i]
                if opt is None:
                    break
                if opt[2] == 1:
                    w = opt[3]
                    ok = p.feed(w)
                    assert ok, "a lexeme's shortest finish was refused"
                    chosen.extend([b] for b in w)
                    continue
                ms = opt[3]
                j = choose(len(ms)) if len(ms) > 1 else 0
                ok = p.feed(bytes((ms[j],)))
                assert ok, "a probed byte was refused"
                chosen.append(ms)
            return bytes(p.buf)


# ------------------------------------------------------------------------- strategies

_INT_STRATEGIES: dict[int, st.SearchStrategy] = {}
_NOTHING = st.just(None)


def _ints(n: int) -> st.SearchStrategy:
    s = _INT_STRATEGIES.get(n)
    if s is None:
        s = _INT_STRATEGIES[n] = st.integers(0, n - 1)
    return s


def _strategy(gen: DocumentGenerator, finish, max_size: int):
    @st.composite
    def docs(draw):
        out = gen.generate(lambda n: draw(_ints(n)), max_size)
        draw(_NOTHING)  # a language of one document draws no choice; composite wants a draw
        if out is None:
            reject()
        return finish(out)

    return docs()


_GEN_CACHE: dict[tuple, DocumentGenerator] = {}


def _generator(grammar: Grammar, max_size: int, max_search: int, ascii_only: bool = False) -> DocumentGenerator:
    key = (grammar.fingerprint, max_size, max_search, ascii_only)
    gen = _GEN_CACHE.get(key)
    if gen is None:
        # tables (lexer automaton, memoised costs) are per grammar: share them across sizes
        for (fp, *_), other in _GEN_CACHE.items():
            if fp == grammar.fingerprint:
                gen = DocumentGenerator.__new__(DocumentGenerator)
                gen.tables, gen.max_size, gen.max_search = other.tables, max_size, max_search
                gen.max_backtracks, gen.ascii_only = other.max_backtracks, ascii_only
                gen.use_macros = other.use_macros
                gen.stats = {"examples": 0, "closed_by_search": 0, "search_failed": 0}
                break
        else:
            gen = DocumentGenerator(grammar, max_size=max_size, max_search=max_search, ascii_only=ascii_only)
        _GEN_CACHE[key] = gen
    return gen


def _decode(data: bytes) -> str:
    return data.decode("utf-8", errors="surrogateescape")


def _lark_checker(text: str, path: str | None):
    """A Lark parser built with the options of the grammar's header comment."""
    from lark import Lark

    from constrain.grammar.lark_frontend import read_header

    opts = read_header(text)
    kwargs = {}
    for k in ("start", "parser", "lexer"):
        if k in opts:
            kwargs[k] = opts[k]
    if "postlex" in opts:
        if opts["postlex"] != "python_indenter":
            raise ConfigError(f"debug re-check: unknown postlex {opts['postlex']!r}")
        from lark.indenter import PythonIndenter

        kwargs["postlex"] = PythonIndenter()
    if kwargs.get("parser", "earley") == "earley" and "lexer" not in kwargs:
        kwargs["lexer"] = "dynamic_complete"
    if path is not None:
        lark = Lark.open(path, **kwargs)
    else:
        lark = Lark(text, **kwargs)

    def check(doc: str) -> None:
        try:
            lark.parse(doc)
        except Exception as e:  # lark's own exception tree
            raise GeneratedInvalid(f"Lark rejects generated document {doc!r}: {e}") from e

    return check


def _load_grammar(grammar_or_path) -> tuple[Grammar, str | None, str | None]:
    """(grammar, lark text, lark path) from a Grammar, a .lark path or Lark grammar text."""
    from constrain.grammar import from_lark

    if isinstance(grammar_or_path, Grammar):
        return grammar_or_path, None, None
    if isinstance(grammar_or_path, Path) or (isinstance(grammar_or_path, str) and "\n" not in grammar_or_path
                                             and grammar_or_path.endswith(".lark")):
        path = str(grammar_or_path)
        text = Path(path).read_text(encoding="utf-8")
        return from_lark(path), text, path
    if isinstance(grammar_or_path, str):
        return from_lark(grammar_or_path), grammar_or_path, None
    raise ConfigError(f"from_grammar: expected a Grammar, a .lark path or Lark text, got {type(grammar_or_path).__name__}")


def from_grammar(grammar_or_path, *, max_size: int = 256, debug: bool = False, as_bytes: bool = False,
                 ascii_only: bool = False, max_search: int = 200) -> st.SearchStrategy:
    """Documents of a grammar: a :class:`~constrain.grammar.ir.Grammar`, a ``.lark`` path or
    Lark grammar text (its ``// start: …  parser: …  lexer: …`` header sets the lexing policy).

    Returns ``str`` (``bytes`` with ``as_bytes=True``).  ``max_size`` is the byte budget (see
    the module docstring); ``debug=True`` re-parses every document with Lark's own parser
    (for a Grammar object, with constrain's reference parser) and raises
    :class:`GeneratedInvalid` on a mismatch.  ``ascii_only=True`` draws ASCII bytes only (a
    grammar whose every document needs other bytes then yields nothing).
    """
    grammar, text, path = _load_grammar(grammar_or_path)
    gen = _generator(grammar, max_size, max_search, ascii_only)
    check = None
    if debug:
        if text is not None:
            check = _lark_checker(text, path)
        else:
            from constrain.engine.earley import accepts

            def check(doc):
                data = doc.encode("utf-8", errors="surrogateescape")
                if not accepts(gen.tables.pt, data):
                    raise GeneratedInvalid(f"the reference parser rejects generated document {doc!r}")

    vc = grammar.value_check

    def finish(data: bytes):
        if vc is not None and not vc.accepts(data):
            reject()  # breaks a value check the grammar alone cannot hold (a duplicate, a length)
        doc = _decode(data)
        if check is not None:
            check(doc)
        return data if as_bytes else doc

    return _strategy(gen, finish, max_size)


def from_regex(pattern: str, *, flags: str = "", max_size: int = 64, debug: bool = False) -> st.SearchStrategy:
    """Strings that fully match ``pattern`` (Python ``re`` syntax; ``flags`` as in
    :func:`constrain.grammar.from_regex`).  ``debug=True`` checks each with ``re.fullmatch``."""
    from constrain.grammar import from_regex as regex_grammar

    grammar = regex_grammar(pattern, flags=flags)
    gen = _generator(grammar, max_size, 200)
    rx = None
    if debug:
        fl = 0
        for ch in flags:
            fl |= {"i": re.I, "s": re.S, "m": re.M, "x": re.X, "a": re.A}.get(ch, 0)
        rx = re.compile(pattern, fl)

    def finish(data: bytes) -> str:
        doc = data.decode("utf-8")
        if rx is not None and rx.fullmatch(doc) is None:
            raise GeneratedInvalid(f"re.fullmatch({pattern!r}) rejects generated string {doc!r}")
        return doc

    return _strategy(gen, finish, max_size)


class _Unrepresentable(Exception):
    pass


def _parse_float(text: str):
    """JSON number text with a fraction or exponent -> float, keeping its value: an integral
    value beyond 2**53 (where floats skip integers) becomes an exact int; overflow to
    infinity and underflow of a non-zero number to 0.0 are refused."""
    f = float(text)
    if f in (float("inf"), float("-inf")) or (f == 0.0 and any(c in "123456789" for c in re.split("[eE]", text)[0])):
        raise _Unrepresentable(text)
    if abs(f) >= 2.0 ** 53:
        from decimal import Decimal

        d = Decimal(text)
        if d == d.to_integral_value() and Decimal(f) != d:
            return int(d)
    return f


def from_schema(schema, *, as_text: bool = False, max_size: int = 512, debug: bool = False,
                **compile_options) -> st.SearchStrategy:
    """Instances of a JSON Schema: decoded JSON values (``as_text=True``: the JSON text).

    ``compile_options`` go to :func:`constrain.jsonschema.compile_json_schema` (e.g.
    ``whitespace="flexible"``, ``property_order="any"``).  ``debug=True`` validates each
    instance with ``jsonschema`` (formats asserted) and raises :class:`GeneratedInvalid`.
    """
    from constrain.jsonschema import compile_json_schema

    if isinstance(schema, str):
        schema_obj = json.loads(schema)
    else:
        schema_obj = schema
    grammar = compile_json_schema(schema, **compile_options)
    if isinstance(grammar, tuple):  # lenient=True returns (grammar, unenforced)
        grammar = grammar[0]
    gen = _generator(grammar, max_size, 200)
    validator = None
    if debug:
        import jsonschema

        cls = jsonschema.validators.validator_for(schema_obj, default=jsonschema.Draft202012Validator)
        validator = cls(schema_obj, format_checker=cls.FORMAT_CHECKER)

    vc = grammar.value_check

    def finish(data: bytes):
        if vc is not None and not vc.accepts(data):
            reject()  # breaks a value check the grammar alone cannot hold (a duplicate, a length)
        text = data.decode("utf-8")
        try:
            value = json.loads(text, parse_float=_parse_float)
        except (_Unrepresentable, ValueError):
            # valid JSON text whose number Python cannot hold (1e999 is an integer by JSON
            # Schema's rules but a float overflow for Python; 1e-999 would become 0.0)
            reject()
        if validator is not None:
            errors = list(validator.iter_errors(value))
            if errors:
                raise GeneratedInvalid(f"jsonschema rejects generated instance {text}: {errors[0].message}")
        return text if as_text else value

    return _strategy(gen, finish, max_size)
