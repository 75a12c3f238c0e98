"""Incremental byte-level Earley parser over a :class:`~constrain.grammar.ir.Grammar`.

This is the exact reference engine: it consumes one byte at a time, keeps every lexing that can
still lead to a word (policy ``"all"``) or the maximal-munch lexing (``"longest"``), and answers
"is this a viable prefix?", "may the output end here?" and "which terminals may come next?".
Rollback is by position and O(1) per step; copies share immutable chart rows.

Structure of a state:

- a *chart*: Earley rows keyed by the byte positions where some lexeme ended (row 0 at the
  start).  Items are ``(rule, dot, origin_position)``.  Rows are closed (predict/complete, with
  Aycock–Horspool nullable handling) when created and never change afterwards;
- *threads*: the lexemes in progress, each ``(start_position, lexer_state)`` where the lexer
  state comes from :class:`~constrain.grammar.lexer.LexerAutomaton` started with the terminals
  the row at ``start_position`` allows (plus ignored terminals).

Ignored terminals (``%ignore``) scanned from row ``k`` copy row ``k``'s items to the new row:
they are invisible to the grammar.

The numba mask engine (issue 5) drives a flat-array version of the same algorithm and is
tested against this one.
"""

from __future__ import annotations

from dataclasses import dataclass

from constrain.grammar.ir import Grammar
from constrain.grammar.lexer import DEAD, LexerAutomaton


class _Row:
    __slots__ = ("items", "waiting", "allowed", "complete")

    def __init__(self):
        self.items: set = set()
        self.waiting: dict[int, list] = {}
        self.allowed = 0
        self.complete = False


class CompiledParserTables:
    """Per-grammar tables shared by all parser states (rules by lhs, nullable set, lexer)."""

    def __init__(self, grammar: Grammar, *, max_lexer_states: int = 200_000):
        self.grammar = grammar
        g = grammar
        self.rhs = [g.rule(r)[1] for r in range(g.n_rules)]
        self.lhs = [g.rule(r)[0] for r in range(g.n_rules)]
        n_nt = len(g.nonterminals)
        self.by_lhs: list[list[int]] = [[] for _ in range(n_nt)]
        for r, l in enumerate(self.lhs):
            self.by_lhs[l].append(r)
        nullable = [False] * n_nt
        changed = True
        while changed:
            changed = False
            for r, l in enumerate(self.lhs):
                if not nullable[l] and all(s < 0 and nullable[~s] for s in self.rhs[r]):
                    nullable[l] = True
                    changed = True
        self.nullable = nullable
        self.ignore_mask = 0
        for t in g.ignore:
            self.ignore_mask |= 1 << t
        self.all_terms = (1 << g.n_terminals) - 1
        self.lexer = LexerAutomaton(g, max_states=max_lexer_states)
        self.longest = g.lexing == "longest"
        self.basic = self.longest and not g.contextual
        pr = [t.priority for t in g.terminals]
        lit = [t.kind == "literal" for t in g.terminals]
        self._rank = [(pr[t], lit[t]) for t in range(g.n_terminals)]
        self._choice_cache: dict[int, int] = {}

    def longest_choice(self, acc: int) -> int:
        """Terminals a maximal-munch lexer picks among the accepting set ``acc`` (priority, then literal)."""
        c = self._choice_cache.get(acc)
        if c is None:
            ts = [t for t in range(self.grammar.n_terminals) if acc >> t & 1]
            best = max(self._rank[t] for t in ts)
            c = 0
            for t in ts:
                if self._rank[t] == best:
                    c |= 1 << t
            self._choice_cache[acc] = c
        return c

    def new_row(self, pos: int, seeds, chart: dict) -> _Row:
        """Close ``seeds`` (items) into a row at ``pos``."""
        row = _Row()
        items = row.items
        waiting = row.waiting
        rhs, lhs, by_lhs, nullable = self.rhs, self.lhs, self.by_lhs, self.nullable
        agenda = []
        for it in seeds:
            if it not in items:
                items.add(it)
                agenda.append(it)
        start = 0  # start nonterminal index
        while agenda:
            r, d, o = it = agenda.pop()
            rr = rhs[r]
            if d < len(rr):
                s = rr[d]
                waiting.setdefault(s, []).append(it)
                if s < 0:
                    n = ~s
                    for r2 in by_lhs[n]:
                        it2 = (r2, 0, pos)
                        if it2 not in items:
                            items.add(it2)
                            agenda.append(it2)
                    if nullable[n]:
                        it2 = (r, d + 1, o)
                        if it2 not in items:
                            items.add(it2)
                            agenda.append(it2)
                        # items already waiting are advanced when they are popped (same check)
                else:
                    row.allowed |= 1 << s
            else:
                a = lhs[r]
                if a == start and o == 0:
                    row.complete = True
                src = waiting if o == pos else chart[o].waiting
                for (r3, d3, o3) in list(src.get(~a, ())):
                    it2 = (r3, d3 + 1, o3)
                    if it2 not in items:
                        items.add(it2)
                        agenda.append(it2)
        # a nonterminal completed at pos with origin pos is nullable; items that started waiting
        # on it after its completion were advanced by the nullable rule above.
        if row.allowed or self.ignore_mask:
            row.allowed |= self.ignore_mask
        return row


@dataclass
class _Snapshot:
    pos: int
    threads: tuple
    created: int | None


class ByteParser:
    """Parser state for one output; feed bytes, query viability and completeness.

    Lifetime: one per sequence; ``copy()`` is O(chart size) pointers, rows are shared.
    ``feed`` never raises on data: it returns ``False`` and leaves the state unchanged.
    """

    def __init__(self, tables: CompiledParserTables):
        self.t = tables
        self.chart: dict[int, _Row] = {}
        start_items = [(r, 0, 0) for r in tables.by_lhs[0]]
        self.chart[0] = tables.new_row(0, start_items, self.chart)
        self.pos = 0
        self.threads: tuple = self._spawn(0)
        self._history: list[_Snapshot] = []

    # --------------------------------------------------------------- queries
    def _candidates(self, row: _Row) -> int:
        return self.t.all_terms if self.t.basic else row.allowed

    def _spawn(self, pos: int) -> tuple:
        row = self.chart[pos]
        if not row.allowed:
            return ()
        sid = self.t.lexer.start(self._candidates(row))
        return ((pos, sid),) if sid != DEAD else ()

    def is_viable(self) -> bool:
        """Some continuation (possibly empty) of the bytes fed so far is in the language."""
        return bool(self.threads) or self.is_complete()

    def is_complete(self) -> bool:
        """The bytes fed so far form a word of the language (EOS may be accepted)."""
        row = self.chart.get(self.pos)
        if row is not None and row.complete:
            if not self.t.longest:
                return True
            # under maximal munch a lexeme ending exactly here was already emitted only if
            # it could not be extended; at end of input it ends anyway (handled below)
            return True
        if self.t.longest:
            return self._complete_at_eof()
        return False

    def _complete_at_eof(self) -> bool:
        lex = self.t.lexer
        for k, sid in self.threads:
            acc = lex.accept[sid]
            if not acc:
                continue
            row_k = self.chart[k]
            for t in self._terms(self.t.longest_choice(acc) & row_k.allowed):
                if t in self.t.grammar.ignore:
                    if row_k.complete:
                        return True
                    continue
                seeds = [(r, d + 1, o) for (r, d, o) in row_k.waiting.get(t, ())]
                if seeds:
                    tmp = dict(self.chart)
                    row = self.t.new_row(self.pos, seeds, tmp)
                    if row.complete:
                        return True
        return False

    @staticmethod
    def _terms(mask: int):
        t = 0
        while mask:
            if mask & 1:
                yield t
            mask >>= 1
            t += 1

    def allowed_terminals(self) -> set[str]:
        """Names of terminals that may continue the output at this point."""
        lex = self.t.lexer
        names = set()
        for k, sid in self.threads:
            for t in self._terms(lex.live[sid] & self.chart[k].allowed):
                names.add(self.t.grammar.terminals[t].name)
        return names

    # -------------------------------------------------------------- updates
    def feed(self, data: bytes) -> bool:
        """Consume ``data``; on failure return False and leave the state unchanged."""
        mark = len(self._history)
        for b in data:
            if not self._feed_byte(b):
                self.rollback_to(mark)
                return False
        return True

    def _scan_into(self, seeds: list, k: int, terms: int) -> None:
        row_k = self.chart[k]
        ig = self.t.ignore_mask
        for t in self._terms(terms & row_k.allowed):
            if ig >> t & 1:
                seeds.extend(row_k.items)
            else:
                seeds.extend((r, d + 1, o) for (r, d, o) in row_k.waiting.get(t, ()))

    def _feed_byte(self, b: int) -> bool:
        lex = self.t.lexer
        pos = self.pos
        new_threads = []
        created = None  # position of the chart row this step creates, if any
        if not self.t.longest:
            seeds: list = []
            for k, sid in self.threads:
                nxt = lex.step(sid, b)
                if nxt == DEAD:
                    continue
                new_threads.append((k, nxt))
                acc = lex.accept[nxt] & self.chart[k].allowed
                if acc:
                    self._scan_into(seeds, k, acc)
            if seeds:
                created = pos + 1
                self.chart[created] = self.t.new_row(created, seeds, self.chart)
                for th in self._spawn(created):
                    if th not in new_threads:
                        new_threads.append(th)
        else:
            # maximal munch: a lexeme ends only when the next byte cannot extend it
            restart: list = []
            for k, sid in self.threads:
                nxt = lex.step(sid, b)
                if nxt != DEAD:
                    # basic lexer: all terminals compete, but the lexeme must be able to
                    # become one the parser accepts here
                    if lex.live[nxt] & self.chart[k].allowed:
                        new_threads.append((k, nxt))
                    continue
                acc = lex.accept[sid]
                if acc:
                    self._scan_into(restart, k, self.t.longest_choice(acc))
            if restart:
                # the lexeme ended at `pos`; this byte starts the next one from that row
                row_here = self.t.new_row(pos, restart, self.chart)
                if row_here.allowed:
                    sid0 = lex.start(self._candidates(row_here))
                    nxt = lex.step(sid0, b) if sid0 != DEAD else DEAD
                    if nxt != DEAD and lex.live[nxt] & row_here.allowed:
                        created = pos
                        self.chart[pos] = row_here
                        new_threads.append((pos, nxt))
        if not new_threads:
            if created is not None:
                del self.chart[created]
            return False
        self._history.append(_Snapshot(pos, self.threads, created))
        self.pos = pos + 1
        self.threads = tuple(dict.fromkeys(new_threads))
        return True

    # ------------------------------------------------------------ rollback
    @property
    def n_steps(self) -> int:
        return len(self._history)

    def rollback_to(self, n_steps: int) -> None:
        """Restore the state after the first ``n_steps`` bytes fed since creation."""
        while len(self._history) > n_steps:
            snap = self._history.pop()
            if snap.created is not None:
                del self.chart[snap.created]
            self.pos = snap.pos
            self.threads = snap.threads

    def copy(self) -> "ByteParser":
        c = object.__new__(ByteParser)
        c.t = self.t
        c.chart = dict(self.chart)
        c.pos = self.pos
        c.threads = self.threads
        c._history = list(self._history)
        return c


def accepts(grammar_or_tables, data: bytes) -> bool:
    """Whether ``data`` is a complete word of the grammar (slow helper for tests)."""
    t = grammar_or_tables if isinstance(grammar_or_tables, CompiledParserTables) else CompiledParserTables(grammar_or_tables)
    p = ByteParser(t)
    return p.feed(data) and p.is_complete()
