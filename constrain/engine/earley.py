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

import itertools
import threading
from typing import NamedTuple

import numpy as np

from constrain.grammar.ir import Grammar
from constrain.grammar.lexer import DEAD, NOT_COMPUTED, LexerAutomaton


class Indenter(NamedTuple):
    """Terminal ids for Lark's ``Indenter`` post-lexer (see ``Grammar.indenter``)."""

    newline: int
    indent: int
    dedent: int
    open: tuple
    close: tuple
    tab_len: int


class _Row:
    __slots__ = ("items", "waiting", "allowed", "complete", "sig", "seeds", "leo")

    def __init__(self):
        self.seeds: tuple = ()  # the items the row was closed from (its structural id is theirs)
        self.items: set = set()  # (rule, dot, origin row); a tuple once closed
        self.waiting: dict[int, list] = {}  # symbol -> items expecting it (tuples once closed)
        self.allowed = 0
        self.complete = False
        self.sig = -1  # structural id, computed on demand (ByteParser.row_sig)
        self.leo = None  # nonterminal -> (row, nonterminal) its completion here comes to (_chase)

    def __setstate__(self, state) -> None:
        self.leo = None  # (rows pickled before it existed)
        for k, v in state[1].items():
            setattr(self, k, v)

    def freeze(self) -> None:
        """The row is closed: its item set and waiting lists become tuples.  Rows are kept by the thousand
        (charts, the mask store's structural rows), one list per expected symbol each, and a
        tuple of int tuples is one object the garbage collector stops tracking, where lists
        and sets made every full collection walk tens of millions of references (pauses of
        seconds on a grammar the size of Go's)."""
        self.waiting = {s: tuple(w) for s, w in self.waiting.items()}
        self.items = tuple(self.items)


class CompiledParserTables:
    """Per-grammar tables shared by all parser states (rules by lhs, nullable set, lexer)."""

    def __init__(self, grammar: Grammar, *, max_lexer_states: int = 200_000):
        self.grammar = grammar
        g = grammar
        rules = [g.rule(r) for r in range(g.n_rules)]
        self.lhs = [lhs for lhs, _ in rules]
        self.rhs = [rhs for _, rhs in rules]
        self.rule_len = [len(rhs) for rhs in self.rhs]
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
        self.indenter = Indenter(*g.indenter) if g.indenter is not None else None
        self.longest = g.lexing == "longest"
        self.basic = self.longest and not g.contextual
        pr = [t.priority for t in g.terminals]
        lit = [t.kind == "literal" for t in g.terminals]
        self._rank = [(pr[t], lit[t]) for t in range(g.n_terminals)]
        self._choice_cache: dict[int, int] = {}
        self._sig_ids: dict = {}
        self._sig_lock = threading.Lock()
        # structural scans (mask store): sig -> (rows it needs, rid, allowed); (sig, T) -> sig
        self.sig_rows: dict[int, tuple] = {}
        self.sig_scans: dict[tuple[int, int], int] = {}
        # (sig, T) -> whether the row after scanning T from a row with id sig completes the
        # start symbol (the output's completeness under maximal munch, TokenStore._complete)
        self.sig_eos: dict[tuple[int, int], bool] = {}
        self.synthetic_rids = itertools.count(1 << 40)
        # per nonterminal, its prediction closure (see _predicted), built on first use
        self._pred: dict[int, tuple] = {}

    def __getstate__(self):
        # copies are taken oldest-dependency last: scans refer to sigs, sigs to interned keys,
        # and every table only grows, so a copy taken while matchers run is consistent
        d = self.__dict__.copy()
        d["sig_scans"] = dict(self.sig_scans)
        d["sig_eos"] = dict(self.sig_eos)
        d["sig_rows"] = dict(self.sig_rows)
        d["_choice_cache"] = dict(self._choice_cache)
        with self._sig_lock:
            d["_sig_ids"] = dict(self._sig_ids)
        d["synthetic_rids"] = next(self.synthetic_rids)
        del d["_sig_lock"]
        return d

    def __setstate__(self, d):
        d = dict(d)
        d.setdefault("sig_eos", {})
        d.setdefault("rule_len", [len(rhs) for rhs in d["rhs"]])
        d["synthetic_rids"] = itertools.count(d["synthetic_rids"])
        self.__dict__.update(d)
        self._sig_lock = threading.Lock()

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

    def munch_keeps(self, nxt: int, las: int, allowed: int) -> bool:
        """Whether a maximal-munch reading now in lexer state ``nxt`` survives, with ``las``
        the state at its last accepting point (``-1``: none) and ``allowed`` its row's
        terminals: some allowed terminal is still possible, or it can only end by falling back
        to that point (``..`` on the way to ``...`` falls back to ``.``) and that lexeme is
        allowed.  The rule of ``ByteParser._step_longest``, shared with the mask store's
        structural relex."""
        lex = self.lexer
        if lex.live[nxt] & allowed:
            return True
        return las >= 0 and not lex.accept[nxt] and self.longest_choice(lex.accept[las]) & allowed != 0

    def _predicted(self, n: int) -> tuple:
        """The part of a row that predicting nonterminal ``n`` adds, which depends on the
        grammar alone: ``(items, terminals, nonterminals)`` where ``items`` are the ``(rule,
        dot, next symbol or None)`` of every item with the row itself as origin reachable
        from ``n``'s rules by prediction and by stepping over nullable nonterminals (a
        completion at the row with the row as origin is of a nullable nonterminal, so it only
        advances what that rule advances), ``terminals`` the bitset they expect and
        ``nonterminals`` every nonterminal predicted on the way (``n`` included)."""
        got = self._pred.get(n)
        if got is not None:
            return got
        rhs, by_lhs, nullable = self.rhs, self.by_lhs, self.nullable
        seen_nt = {n}
        seen = set()
        stack = [(r, 0) for r in by_lhs[n]]
        out = []
        terms = 0
        while stack:
            it = stack.pop()
            if it in seen:
                continue
            seen.add(it)
            r, d = it
            rr = rhs[r]
            if d < len(rr):
                sym = rr[d]
                out.append((r, d, sym))
                if sym < 0:
                    m = ~sym
                    if m not in seen_nt:
                        seen_nt.add(m)
                        stack.extend((r2, 0) for r2 in by_lhs[m])
                    if nullable[m]:
                        stack.append((r, d + 1))
                else:
                    terms |= 1 << sym
            else:
                out.append((r, d, None))
        got = self._pred[n] = (tuple(out), terms, frozenset(seen_nt))
        return got

    def _add_predicted(self, n: int, pos: int, items: set, waiting: dict, expanded: set) -> int:
        """Add to a row being closed at ``pos`` the items predicting ``n`` brings
        (:meth:`_predicted`), marking its nonterminals expanded; returns the terminals they
        expect."""
        its, terms, nts = self._predicted(n)
        expanded |= nts
        for (r2, d2, s2) in its:
            it2 = (r2, d2, pos)
            if it2 not in items:
                items.add(it2)
                if s2 is not None:
                    w = waiting.get(s2)
                    if w is None:
                        waiting[s2] = [it2]
                    else:
                        w.append(it2)
        return terms

    def new_row(self, pos: int, seeds, chart: dict) -> _Row:
        """Close ``seeds`` (items) into a row at ``pos``.

        Items whose origin is the row itself (predictions, and those stepped over nullable
        nonterminals) depend only on which nonterminals are predicted, so they are added a
        nonterminal's closure at a time (:meth:`_predicted`); only items with older origins go
        through the agenda (completions read their origins' waiting lists).  Row 0's seeds are
        the start symbol's rules, i.e. a prediction of it, and it completes iff the start symbol
        is nullable.  :func:`constrain.testing.naive.closed_row` is the plain item-by-item
        closure it must equal."""
        row = _Row()
        items = row.items
        waiting = row.waiting
        rhs, lhs, nullable = self.rhs, self.lhs, self.nullable
        agenda = []
        for it in seeds:
            if it not in items:
                items.add(it)
                agenda.append(it)
        row.seeds = tuple(agenda)
        expanded: set = set()
        allowed = 0
        if pos == 0:  # (ByteParser's start row: seeds (r, 0, 0) for the start symbol's rules)
            agenda = []
            items.clear()  # (they come back with their waiting entries)
            allowed = self._add_predicted(0, 0, items, waiting, expanded)
            row.complete = nullable[0]
        while agenda:
            r, d, o = it = agenda.pop()
            rr = rhs[r]
            if d < len(rr):
                s = rr[d]
                w = waiting.get(s)
                if w is None:
                    waiting[s] = [it]
                else:
                    w.append(it)
                if s < 0:
                    n = ~s
                    if n not in expanded:
                        allowed |= self._add_predicted(n, pos, items, waiting, expanded)
                    if nullable[n]:
                        it2 = (r, d + 1, o)
                        if it2 not in items:
                            items.add(it2)
                            agenda.append(it2)
                else:
                    allowed |= 1 << s
            else:
                a = lhs[r]
                if a == 0 and o == 0:
                    row.complete = True
                # o != pos here (items with this row as origin come from _predicted, whose
                # completions are of nullable nonterminals: the rule above advances those)
                for (r3, d3, o3) in chart[o].waiting.get(~a, ()):
                    it2 = (r3, d3 + 1, o3)
                    if it2 not in items:
                        items.add(it2)
                        agenda.append(it2)
        row.allowed = allowed | self.ignore_mask  # ignored terminals may appear anywhere, even at the end
        row.freeze()
        return row


# one entry of a parser's history: the state before a byte, as a plain tuple (a dataclass
# instance costs several times more, and there is one per byte fed):
# (pos, threads, row_here, rows created by the byte, next_rid, indent, paren)
_Snapshot = tuple


class ByteParser:
    """Parser state for one output; feed bytes, query viability and completeness.

    Chart rows are keyed by a row id (``rid``) that grows as rows are created; items refer to
    the row where they started.  Several rows can share one byte position (the zero-width
    ``_INDENT``/``_DEDENT`` tokens of an indentation post-lexer each add one).

    Lifetime: one per sequence; ``copy()`` is O(chart size) pointers, rows are shared.
    ``feed`` never raises on data: it returns ``False`` and leaves the state unchanged.
    """

    def __init__(self, tables: CompiledParserTables):
        self.t = tables
        self.chart: dict[int, _Row] = {}
        self.row_pos: dict[int, int] = {}
        start_items = [(r, 0, 0) for r in tables.by_lhs[0]]
        self.chart[0] = tables.new_row(0, start_items, self.chart)
        self.row_pos[0] = 0
        self.next_rid = 1
        self.pos = 0
        self.row_here: int | None = 0  # row whose position is the current position
        self.indent: tuple = (0,)
        self.paren = 0
        self.buf = bytearray()
        self.threads: tuple = self._spawn(0)
        self._history: list[_Snapshot] = []
        self._created: list[int] = []
        #: ``(threads, key)`` of the last TokenStore.mask_key: valid while ``threads`` is that tuple
        self.mask_key_memo: tuple | None = None

    # --------------------------------------------------------------- queries
    def _allowed(self, k: int) -> int:
        """Terminals row ``k`` accepts; inside brackets an indenter also ignores newlines."""
        a = self.chart[k].allowed
        if self.paren and self.t.indenter is not None:
            a |= 1 << self.t.indenter.newline
        return a

    def _candidates(self, rid: int) -> int:
        return self.t.all_terms if self.t.basic else self._allowed(rid)

    def _spawn(self, rid: int) -> tuple:
        row = self.chart[rid]
        if not row.allowed:
            return ()
        sid = self.t.lexer.start(self._candidates(rid))
        if sid == DEAD:
            return ()
        # longest: (row, state, position of the last accepting point, state there)
        return ((rid, sid, -1, -1),) if self.t.longest else ((rid, sid),)

    def is_viable(self) -> bool:
        """Some continuation (possibly empty) of the bytes fed so far is in the language."""
        return bool(self.threads) or self.is_complete()

    def is_complete(self) -> bool:
        """The bytes fed so far form a word of the language (EOS may be accepted)."""
        if not self.t.longest:
            return self.row_here is not None and self.chart[self.row_here].complete
        if self.pos == 0:
            return self._eof_complete(0)
        # _finish ends the lexeme, which adds rows; run it here and drop them after (a copy of
        # the parser would cost O(chart) at every mask of a long output)
        next_rid, created, indent, paren = self.next_rid, self._created, self.indent, self.paren
        self._created = []
        try:
            return self._finish()
        finally:
            for rid in self._created:
                del self.chart[rid]
                del self.row_pos[rid]
            self.next_rid, self._created, self.indent, self.paren = next_rid, created, indent, paren

    def _finish(self) -> bool:
        """End of input under maximal munch (adds rows: ``is_complete`` removes them after)."""
        threads = self.threads
        while len(threads) == 1:
            k, sid, lap, las = threads[0]
            lex = self.t.lexer
            if lex.accept[sid]:
                rid = self._emit([(k, self.t.longest_choice(lex.accept[sid]))], self.pos)
                return rid is not None and self._eof_complete(rid)
            if lap < 0:
                return False
            rid = self._emit([(k, self.t.longest_choice(lex.accept[las]))], lap)
            if rid is None:
                return False
            threads = self._relex(rid, lap, self.pos)
        return False

    def _eof_complete(self, rid: int) -> bool:
        # at end of input the indenter closes every open block (mutates self: call on a copy)
        ind = self.t.indenter
        if ind is not None:
            for _ in range(len(self.indent) - 1):
                rid = self._scan_virtual(rid, ind.dedent, self.pos)
                if rid is None:
                    return False
        return self.chart[rid].complete

    def row_sig(self, rid: int) -> int:
        """Structural id of row ``rid`` (see :func:`row_sig`)."""
        return row_sig(self.t, self.chart, rid)

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
        for th in self.threads:
            k, sid = th[0], th[1]
            for t in self._terms(lex.live[sid] & self._allowed(k)):
                names.add(self.t.grammar.terminals[t].name)
        return names

    def next_bytes(self, limit: int | None = None) -> list[int]:
        """The bytes ``b`` for which ``feed(bytes([b]))`` would succeed, in increasing order
        (with ``limit``: at most that many of them, found first; callers that only ask "none?"
        or "exactly one?" pass 1 or 2 and skip the rest of the work).

        Under ``lexing="all"`` without an indenter this is read off the lexer threads (a byte is
        viable iff it extends some thread's lexeme: every thread's terminals are ones its row
        accepts, and a new row spawns its own threads).  Under maximal munch a lexeme that has
        passed an accepting point may end there and the byte start a new lexeme, so such states
        are probed by feeding bytes and rolling back (exact, slower): the bytes that extend a
        thread first, since they are the likely ones, then the others.
        """
        lex = self.t.lexer
        ext = np.zeros(256, bool)  # bytes that extend some thread's lexeme
        for th in self.threads:
            sid = th[1]
            for b in np.flatnonzero(lex.table[sid] == NOT_COMPUTED).tolist():  # build those transitions now
                lex.step(sid, b)
            ext |= lex.table[sid] != DEAD
        if not self.t.longest and self.t.indenter is None:
            found = np.flatnonzero(ext).tolist()
            return found if limit is None else found[:limit]
        can_end = self.t.indenter is not None or any(th[2] >= 0 or lex.accept[th[1]] for th in self.threads)
        # when no lexeme can end here, only bytes that extend some thread can be viable
        probe = np.flatnonzero(ext).tolist()
        if can_end:
            probe += np.flatnonzero(~ext).tolist()
        mark = len(self._history)
        out = []
        for b in probe:
            if self._feed_byte(b):
                out.append(b)
                self.rollback_to(mark)
                if limit is not None and len(out) >= limit:
                    break
        return sorted(out)

    # -------------------------------------------------------------- updates
    def feed(self, data: bytes) -> bool:
        """Consume ``data``; on failure return False and leave the state unchanged."""
        mark = len(self._history)
        t = self.t
        i = self._feed_inside(data) if t.longest and t.indenter is None else 0
        for b in data[i:] if i else data:
            if not self._feed_byte(b):
                self.rollback_to(mark)
                return False
        return True

    def _feed_inside(self, data: bytes) -> int:
        """The leading bytes of ``data`` that extend the one current lexeme, consumed without
        the general step (maximal munch, no indenter, one thread): what ``_step_longest`` does
        for a byte whose next state keeps an allowed terminal alive, without its lists, calls
        and dedup.  History stays one entry per byte.  Returns how many bytes it consumed."""
        threads = self.threads
        if len(threads) != 1:
            return 0
        (k, sid, lap, las), = threads
        lex = self.t.lexer
        live, accept = lex.live, lex.accept
        allowed = self.chart[k].allowed
        hist, buf = self._history, self.buf
        pos, row_here, nr, ind, paren = self.pos, self.row_here, self.next_rid, self.indent, self.paren
        n = 0
        for b in data:
            nxt = lex.step(sid, b)
            if nxt == DEAD or not live[nxt] & allowed:
                break  # a lexeme ends, or falls back: the general step
            hist.append((pos, threads, row_here, (), nr, ind, paren))
            buf.append(b)
            pos += 1
            if accept[nxt]:
                lap, las = pos, nxt
            sid = nxt
            threads = ((k, sid, lap, las),)
            row_here = None
            n += 1
        if n:
            self.pos, self.threads, self.row_here = pos, threads, row_here
        return n

    def _new_rid(self, pos: int, seeds) -> int:
        rid = self.next_rid
        self.next_rid += 1
        self.chart[rid] = self.t.new_row(rid, seeds, self.chart)
        self.row_pos[rid] = pos
        self._created.append(rid)
        return rid

    def _seeds(self, k: int, terms: int) -> list:
        return scan_seeds(self.chart[k], terms, self.t.ignore_mask)

    def _emit_one(self, k: int, terms: int, pos: int) -> int | None:
        """:meth:`_emit` of one lexeme (terminals ``terms``) ending at row ``k``."""
        seeds = self._seeds(k, terms)
        if not seeds:
            return None
        rid = self._new_rid(pos, seeds)
        self._memo_sig(rid, k, terms)
        return rid

    def _memo_sig(self, rid: int, k: int, terms: int) -> None:
        """Row ``rid``, made by one lexeme of terminals ``terms`` from row ``k``, takes its
        structural id from the mask store's scan memo when that holds it: scanning ``terms``
        from a row with ``k``'s id gives a row that parses every continuation as this one does
        (after only ignored terminals, ``k``'s own).  The mask key asks the id of every new
        row, and its seed key was ~1.5 µs (a fifth of a warm schema miss)."""
        row = self.chart[k]
        if row.sig >= 0:
            # (the walk keys a lexeme as this parser does: its terminals masked by the row's
            # allowed ones under exact lexing, munch's choice under maximal munch)
            if terms & row.allowed & ~self.t.ignore_mask == 0:
                s = row.sig
            else:
                s = self.t.sig_scans.get((row.sig, terms), -1)
            if s >= 0:
                self.chart[rid].sig = s

    def _scan_virtual(self, k: int, t: int, pos: int) -> int | None:
        seeds = [(r, d + 1, o) for (r, d, o) in self.chart[k].waiting.get(t, ())]
        return self._new_rid(pos, seeds) if seeds else None

    def _emit(self, ended: list, pos: int) -> int | None:
        """Hand lexemes ending at ``pos`` to the parser; return the row after them (or None)."""
        ind = self.t.indenter
        if ind is None:
            if len(ended) == 1:
                return self._emit_one(*ended[0], pos)
            seeds: list = []
            for k, terms in ended:
                seeds.extend(self._seeds(k, terms))
            return self._new_rid(pos, seeds) if seeds else None
        # indentation post-lexer (Lark's Indenter): one lexing under maximal munch
        (k, terms), = ended
        non_ignored = terms & ~self.t.ignore_mask
        if non_ignored & (non_ignored - 1) == 0 and non_ignored:
            terms = non_ignored  # a tie between a token and an ignored pattern goes to the token
        if terms & (terms - 1):
            return None  # still ambiguous: Lark's lexer would pick one; refuse rather than guess
        t = terms.bit_length() - 1
        if t == ind.newline and self.paren > 0:
            seeds = list(self.chart[k].items)  # newlines inside brackets are ignored
            return self._new_rid(pos, seeds) if seeds else None
        seeds = self._seeds(k, terms)
        if not seeds:
            return None
        rid = self._new_rid(pos, seeds)
        if t in ind.open:
            self.paren += 1
        elif t in ind.close:
            if self.paren == 0:
                return None
            self.paren -= 1
        if t == ind.newline:
            text = bytes(self.buf[self.row_pos[k]:pos])
            tail = text.rsplit(b"\n", 1)[-1] if b"\n" in text else b""
            width = tail.count(b" ") + tail.count(b"\t") * ind.tab_len
            if width > self.indent[-1]:
                self.indent = self.indent + (width,)
                return self._scan_virtual(rid, ind.indent, pos)
            while width < self.indent[-1]:
                self.indent = self.indent[:-1]
                rid = self._scan_virtual(rid, ind.dedent, pos)
                if rid is None:
                    return None
            if width != self.indent[-1]:
                return None  # dedent to a level that was never opened
        return rid

    def _step_longest(self, threads, b: int, pos: int) -> list:
        """Maximal munch, as Lark's standard lexers do: a lexeme ends at its *last accepting
        point* once the next byte cannot extend it; bytes read past that point are lexed
        again from the row after the lexeme (so ``..x`` lexes as ``.`` ``.`` ``x`` even when
        ``...`` is a terminal)."""
        lex = self.t.lexer
        out = []
        dying = []
        for th in threads:
            k, sid, lap, las = th
            nxt = lex.step(sid, b)
            if nxt != DEAD:
                # basic lexer: all terminals compete, but the lexeme must be able to
                # become one the parser accepts here
                th2 = (k, nxt, pos + 1, nxt) if lex.accept[nxt] else (k, nxt, lap, las)
                # (a reading that can only end by falling back is re-lexed when the lexeme ends)
                if self.t.munch_keeps(nxt, th2[3], self._allowed(k)):
                    out.append(th2)
                continue
            dying.append(th)
        if out or len(dying) != 1:
            return out
        got = self._munch_end(dying[0], pos)
        return out if got is None else self._relex(got[0], got[1], pos + 1)

    def _munch_end(self, th: tuple, pos: int):
        """Maximal munch's end of thread ``th``'s lexeme, read up to ``pos``: at ``pos`` when its
        state accepts, else at its last accepting point; ``(row after the lexeme, where it
        ends)``, or ``None`` when nothing accepted or the parser refuses the lexeme."""
        k, sid, lap, las = th
        lex = self.t.lexer
        if lex.accept[sid]:
            end, acc = pos, lex.accept[sid]
        elif lap >= 0:
            end, acc = lap, lex.accept[las]
        else:
            return None
        rid = self._emit([(k, self.t.longest_choice(acc))], end)
        return None if rid is None else (rid, end)

    def _relex(self, rid: int, start: int, stop: int) -> list:
        """Threads after lexing ``buf[start:stop]`` from row ``rid`` (a fresh lexeme at ``start``)."""
        threads = list(self._spawn(rid))
        for p in range(start, stop):
            if not threads:
                return []
            threads = self._step_longest(threads, self.buf[p], p)
        return threads

    def _feed_byte(self, b: int) -> bool:
        lex = self.t.lexer
        pos = self.pos
        # the state before the byte (the step may change indent and paren)
        threads0, row_here0, indent0, paren0 = self.threads, self.row_here, self.indent, self.paren
        self._created = []
        new_threads = []
        row_here = None
        self.buf.append(b)
        if not self.t.longest:
            seeds: list = []
            one = None  # (row, terminals) of the one lexeme ending here, if one
            for k, sid in self.threads:
                nxt = lex.step(sid, b)
                if nxt == DEAD:
                    continue
                new_threads.append((k, nxt))
                acc = lex.accept[nxt] & self.chart[k].allowed
                if acc:
                    got = self._seeds(k, acc)
                    if got:
                        one = (k, acc) if not seeds else False
                        seeds.extend(got)
            if seeds:
                row_here = self._new_rid(pos + 1, seeds)
                if one:
                    self._memo_sig(row_here, *one)
                for th in self._spawn(row_here):
                    if th not in new_threads:
                        new_threads.append(th)
        else:
            new_threads = self._step_longest(self.threads, b, pos)
        snap = (pos, threads0, row_here0, tuple(self._created), self.next_rid - len(self._created), indent0, paren0)
        if not new_threads:
            self._undo(snap)
            return False
        self._history.append(snap)
        self.pos = pos + 1
        self.row_here = row_here
        self.threads = tuple(dict.fromkeys(new_threads)) if len(new_threads) > 1 else (new_threads[0],)
        return True

    def end_lexeme(self) -> bool:
        """End the current lexeme here, as a byte that no lexeme can take would (maximal munch:
        at its last accepting point, the bytes since relexed), and start the next one; ``False``
        (state unchanged) when nothing can end here or the parser refuses what ends.  One step
        of the history that reads no byte (``rollback_to`` undoes it like a byte's).

        The mask walk uses it after a NEWLINE under an indentation post-lexer: the row after
        the NEWLINE (and its INDENT / DEDENT) is then this parser's, and every token that
        starts a new lexeme there is one walk from it, not one feed each."""
        if not self.t.longest or len(self.threads) != 1:
            return False
        pos = self.pos
        threads0, row_here0, indent0, paren0 = self.threads, self.row_here, self.indent, self.paren
        self._created = []
        got = self._munch_end(self.threads[0], pos)
        new = [] if got is None else self._relex(got[0], got[1], pos)
        snap = (pos, threads0, row_here0, tuple(self._created), self.next_rid - len(self._created), indent0, paren0)
        if not new:
            self._undo(snap)
            return False
        self._history.append(snap)
        self.row_here = None
        self.threads = tuple(dict.fromkeys(new)) if len(new) > 1 else (new[0],)
        return True

    # ------------------------------------------------------------ rollback
    @property
    def n_steps(self) -> int:
        return len(self._history)

    def _undo(self, snap: _Snapshot) -> None:
        pos, self.threads, self.row_here, created, self.next_rid, self.indent, self.paren = snap
        for rid in created:
            del self.chart[rid]
            del self.row_pos[rid]
        del self.buf[pos:]
        self.pos = pos

    def rollback_to(self, n_steps: int) -> None:
        """Restore the state after the first ``n_steps`` bytes fed since creation."""
        while len(self._history) > n_steps:
            self._undo(self._history.pop())

    def copy(self) -> "ByteParser":
        c = object.__new__(ByteParser)
        c.t = self.t
        c.chart = dict(self.chart)
        c.row_pos = dict(self.row_pos)
        c.next_rid = self.next_rid
        c.pos = self.pos
        c.row_here = self.row_here
        c.indent = self.indent
        c.paren = self.paren
        c.buf = bytearray(self.buf)
        c.threads = self.threads
        c._history = list(self._history)
        c._created = []
        c.mask_key_memo = self.mask_key_memo  # same threads tuple, same rows: same key
        return c


def scan_seeds(row: _Row, terms: int, ignore_mask: int) -> list:
    """Items of the row after scanning any of ``terms`` from ``row`` (before closure); an
    ignored terminal copies the row's items unchanged."""
    seeds: list = []
    for t in ByteParser._terms(terms & row.allowed):
        if ignore_mask >> t & 1:
            seeds.extend(row.items)
        else:
            seeds.extend((r, d + 1, o) for (r, d, o) in row.waiting.get(t, ()))
    return seeds


def row_sig(tables: CompiledParserTables, chart: dict, rid: int) -> int:
    """Structural id of row ``rid``: rows with equal ids parse every continuation the same
    (the same terminals allowed, the same completions, recursively).  Interned exactly per
    grammar (no hashing collisions); computed once per row and stored on it (rows are
    immutable).

    The id is that of the row's *seeds* (the items it was closed from), each with what its
    origin row contributes: the closure is a function of the seeds and of the origins' structure
    (completions read the origins' waiting lists; predictions start here), and seeds are a few
    items where a closed row can hold hundreds (a statement-level row of a programming-language
    grammar).  A seed ``(r, d, o)`` that has at most its last symbol left, whose only effect
    beyond that symbol is completing ``lhs(r)`` at ``o``, is named by where that completion
    leads (:func:`_chase`, Leo's deterministic reductions): the rows inside a chain of unary
    prefixes (``- - - x``, deepseek's 80-dash tokens) or a right recursion then share one id,
    where naming each seed by its origin's id gave every level of the chain its own (cfg_arith:
    ~130 new rows a mask, and as many memoised scans, walked again at every position).  Two rows
    with different seeds and the same behaviour may still get two ids, which only costs
    sharing; a row made by one lexeme may instead be given the id of the mask store's scan
    memo (:meth:`ByteParser._memo_sig`), equally exact."""
    row = chart[rid]
    if row.sig >= 0:
        return row.sig
    key = _seed_key(tables, chart, rid)
    if key is None:
        # some rows the key names have no id yet (rows made inside one token): they are older
        # rows (smaller ids), so give every row without an id one, oldest first (iterative:
        # item chains can be as long as the document)
        todo = {rid}
        stack = [rid]
        while stack:
            for o in _key_deps(tables, chart, stack.pop()):
                if o not in todo and chart[o].sig < 0:
                    todo.add(o)
                    stack.append(o)
        for k in sorted(todo)[:-1]:
            chart[k].sig = _intern_sig(tables, _seed_key(tables, chart, k))
        key = _seed_key(tables, chart, rid)
    row.sig = sig = _intern_sig(tables, key)
    return sig


def _chase(tables: CompiledParserTables, chart: dict, o: int, a: int) -> tuple[int, int]:
    """``(row, nonterminal)`` such that completing nonterminal ``a`` at row ``o`` does nothing
    but complete that nonterminal at that row (and add complete items on the way): while
    the one item of ``o`` waiting for ``a`` is complete once it has it, completing ``a`` at ``o``
    completes that item's left-hand side at its origin.  The start symbol ends a chase (its
    completion at row 0 is the output's completeness).  Memoised per row and nonterminal
    (``_Row.leo``), so a chain of ``n`` rows is chased in ``O(n)`` overall, not ``O(n²)``; a
    cycle of unit rules within one row stops where it closes."""
    lhs, rule_len = tables.lhs, tables.rule_len
    path = None
    seen = None
    while True:
        row = chart[o]
        memo = row.leo
        if memo is not None:
            got = memo.get(a)
            if got is not None:
                o, a = got
                break
        w = row.waiting.get(~a, ())
        if len(w) != 1:
            break
        r3, d3, o3 = w[0]
        a3 = lhs[r3]
        if d3 + 1 != rule_len[r3] or a3 == 0:
            break
        if o3 == o:  # (a unit rule predicted here: a cycle of them stays in this row)
            if seen is None:
                seen = set()
            if (o, a) in seen:
                break
            seen.add((o, a))
        if path is None:
            path = []
        path.append((row, a))
        o, a = o3, a3
    if path is not None:
        for row, a0 in path:
            if row.leo is None:
                row.leo = {}
            row.leo[a0] = (o, a)
    return o, a


def _seed_target(tables: CompiledParserTables, chart: dict, r: int, d: int, o: int) -> tuple[int, int | None]:
    """What seed ``(r, d, o)`` of a row names: ``(o, None)`` when it has more than its last
    symbol left, else its completion of ``lhs(r)`` at ``o`` chased, ``(row, nonterminal)``."""
    if d + 1 >= tables.rule_len[r] and tables.lhs[r] != 0:
        return _chase(tables, chart, o, tables.lhs[r])
    return o, None


def _seed_key(tables: CompiledParserTables, chart: dict, k: int):
    """Row ``k``'s seeds with what their origins contribute, or ``None`` when a row that names
    has no id yet: ``(r, d, -1)`` for a seed started here, ``(r, d, id of o)`` for one with
    more than its last symbol left, else ``(-1, last symbol or None, a, id of o')`` where
    ``(o', a)`` is the seed's completion chased (:func:`_chase`)."""
    rule_len, rhs = tables.rule_len, tables.rhs
    parts = []
    for (r, d, o) in chart[k].seeds:
        if o == k:
            parts.append((r, d, -1))
            continue
        o, a = _seed_target(tables, chart, r, d, o)
        s = chart[o].sig
        if s < 0:
            return None
        parts.append((r, d, s) if a is None else (-1, rhs[r][d] if d < rule_len[r] else None, a, s))
    key = frozenset(parts)
    return (key, "root") if k == 0 else key  # (only row 0 completes the start symbol)


def _key_deps(tables: CompiledParserTables, chart: dict, k: int):
    """The rows whose ids :func:`_seed_key` of row ``k`` reads (all older than ``k``)."""
    for (r, d, o) in chart[k].seeds:
        if o != k:
            yield _seed_target(tables, chart, r, d, o)[0]


def _intern_sig(tables: CompiledParserTables, key) -> int:
    ids = tables._sig_ids
    sig = ids.get(key)
    if sig is None:
        with tables._sig_lock:
            sig = ids.setdefault(key, len(ids))
    return sig


def accepts(grammar_or_tables, data: bytes) -> bool:
    """Whether ``data`` is a complete word of the grammar (slow helper for tests)."""
    t = grammar_or_tables if isinstance(grammar_or_tables, CompiledParserTables) else CompiledParserTables(grammar_or_tables)
    p = ByteParser(t)
    return p.feed(data) and p.is_complete()
