"""The infilling-emptiness checker: can the gaps of a partial output be filled to a word of G?

See the package docstring for the method.  Usage::

    ck = InfillChecker(grammar)
    r = ck.check([b'{"a": ', b', "b": 2}'])             # one gap between the two chunks
    r.status                                              # "nonempty" / "empty" / "unknown"
    r.witness()                                           # e.g. b'{"a": 0, "b": 2}'
    ck.check([b"[1, "], end_fixed=False)                  # a prefix: is it viable?
    ck.check([b"[", b"]"], gaps=[Gap(max_bytes=3)])       # length-aware gap
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np

from constrain._arrays import unique_sorted
from constrain.diffusion import checker_kernels as K
from constrain.errors import ConfigError, GrammarError, UnsupportedSchemaFeature
from constrain.grammar.dfa_kernels import hopcroft_blocks
from constrain.grammar.ir import Grammar

__all__ = ["Gap", "TokenGap", "CheckResult", "InfillChecker", "LongestLexingRefused", "normalise_segments"]

#: default work budget per check (worklist pops plus join-loop steps)
DEFAULT_BUDGET = 50_000_000


class LongestLexingRefused(GrammarError):
    """The grammar uses maximal-munch lexing in a way the checker cannot decide exactly."""


@dataclass(frozen=True)
class Gap:
    """A gap of the partial output: any byte string of length in ``[min_bytes, max_bytes]``.

    ``max_bytes=None`` is unbounded (Σ*, the paper's relaxation).  A bounded gap is modelled
    exactly, one automaton node per byte offset, so keep bounds small (tens of bytes).
    """

    max_bytes: int | None = None
    min_bytes: int = 0

    def __post_init__(self):
        if self.min_bytes < 0 or (self.max_bytes is not None and self.max_bytes < self.min_bytes):
            raise ConfigError(f"invalid gap bounds [{self.min_bytes}, {self.max_bytes}]")


@dataclass(frozen=True)
class TokenGap:
    """A gap of ``min_tokens``..``max_tokens`` tokens, each one of the byte strings ``tokens``.

    Exact at token level (each token slot is a trie of the strings), so only for small
    vocabularies and few slots: nodes grow with ``max_tokens`` times the trie size.
    """

    tokens: tuple
    max_tokens: int
    min_tokens: int = 0

    def __post_init__(self):
        if self.max_tokens < self.min_tokens or self.min_tokens < 0 or self.max_tokens < 1:
            raise ConfigError(f"invalid token gap bounds [{self.min_tokens}, {self.max_tokens}]")
        if not self.tokens or any(not t for t in self.tokens):
            raise ConfigError("a token gap needs non-empty token strings")


def _as_gap(g) -> Gap:
    if g is None:
        return Gap()
    if isinstance(g, (Gap, TokenGap)):
        return g
    if isinstance(g, (int, np.integer)):
        return Gap(max_bytes=int(g))
    raise ConfigError(f"a gap is None, an int (max bytes) or a Gap, got {g!r}")


# ------------------------------------------------------------------------------ grammar tables

class _Tables:
    """Per-grammar data: the combined terminal automaton and the binarised grammar."""

    def __init__(self, g: Grammar, longest: str):
        if g.indenter is not None:
            raise LongestLexingRefused(f"grammar {g.name!r} uses an indentation post-lexer; "
                                       "the infilling checker does not support it")
        if any(t.kind == "virtual" for t in g.terminals):
            raise LongestLexingRefused(f"grammar {g.name!r} has virtual (post-lexer) terminals")
        self.grammar = g
        self.n_terms = g.n_terminals
        self.ignore = set(g.ignore)
        self.ign_mask = np.zeros(self.n_terms, dtype=bool)
        self.ign_mask[list(self.ignore)] = True
        self.exact = True
        self.longest_conflict = None
        if g.lexing == "longest":
            conflict = _longest_conflict(g)
            self.longest_conflict = conflict
            if conflict is not None:
                if longest == "refuse":
                    raise LongestLexingRefused(
                        f"grammar {g.name!r} lexes by maximal munch and its language may differ from the "
                        f"all-readings language the checker decides: {conflict}. Pass longest='approximate' "
                        "to check the all-readings language (an over-approximation: 'nonempty' may be wrong, "
                        "'empty' is still right), or use lexing='all'")
                self.exact = False
        self._build_automaton(g)
        self._binarise(g)

    # combined automaton over all terminals, disjoint state ranges, dead states pruned
    def _build_automaton(self, g: Grammar) -> None:
        offs = [0]
        for t in g.terminals:
            offs.append(offs[-1] + t.dfa.n_states)
        ns = offs[-1]
        ct = np.full((ns, 256), -1, dtype=np.int32)
        acc = np.zeros(ns, dtype=bool)
        term = np.zeros(ns, dtype=np.int32)
        for i, t in enumerate(g.terminals):
            tr = np.asarray(t.dfa.trans, dtype=np.int64)
            live = np.asarray(t.dfa.live, dtype=bool)
            ok = tr >= 0
            ok[ok] = live[tr[ok]]
            blk = np.where(ok, tr + offs[i], -1)
            blk[~live] = -1
            ct[offs[i]:offs[i + 1]] = blk
            acc[offs[i]:offs[i + 1]] = t.dfa.accept
            term[offs[i]:offs[i + 1]] = i
        self.ctrans, self.cacc, self.cterm = ct, acc, term
        self.tstart = np.asarray(offs[:-1], dtype=np.int32)
        ptr = [0]
        idx: list[int] = []
        for s in range(ns):
            u = unique_sorted(ct[s])
            u = u[u >= 0]
            idx.extend(u.tolist())
            ptr.append(len(idx))
        self.succ_ptr = np.asarray(ptr, dtype=np.int32)
        self.succ_idx = np.asarray(idx, dtype=np.int32)
        # byte preference for gap fillers in witnesses: letters, digits, space, printable, rest
        pref = (list(range(ord("a"), ord("z") + 1)) + list(range(ord("0"), ord("9") + 1)) + [32]
                + list(range(ord("A"), ord("Z") + 1)) + list(range(33, 127)) + list(range(256)))
        seen: set = set()
        self.byte_pref = np.asarray([b for b in pref if not (b in seen or seen.add(b))], dtype=np.int32)

    def _binarise(self, g: Grammar) -> None:
        n0 = len(g.nonterminals)
        names = list(g.nonterminals)
        pre: dict[int, int] = {}
        suffix: dict[tuple, int] = {}
        terms: list[tuple[int, int]] = []
        unary: list[tuple[int, int]] = []
        binary: list[tuple[int, int, int]] = []
        nullable_rules: list[int] = []

        def new_nt(name):
            names.append(name)
            return len(names) - 1

        def sym_nt(s):  # a symbol as a nonterminal index (terminals through a pre-terminal)
            if s < 0:
                return ~s
            n = pre.get(s)
            if n is None:
                n = pre[s] = new_nt(f"<{g.terminals[s].name}>")
                terms.append((n, s))
            return n

        def suffix_nt(syms: tuple) -> int:
            if len(syms) == 1:
                return sym_nt(syms[0])
            n = suffix.get(syms)
            if n is None:
                n = suffix[syms] = new_nt("<" + " ".join(g.symbol_name(x) for x in syms) + ">")
                binary.append((n, sym_nt(syms[0]), suffix_nt(syms[1:])))
            return n

        for r in range(g.n_rules):
            lhs, rhs = g.rule(r)
            if len(rhs) == 0:
                nullable_rules.append(lhs)
            elif len(rhs) == 1:
                if rhs[0] >= 0:
                    terms.append((lhs, rhs[0]))
                elif ~rhs[0] != lhs:
                    unary.append((lhs, ~rhs[0]))
            else:
                binary.append((lhs, sym_nt(rhs[0]), suffix_nt(rhs[1:])))
        n = len(names)
        self.nt_names = names
        self.n_nt = n
        nullable = np.zeros(n, dtype=bool)
        nullable[nullable_rules] = True
        changed = True
        while changed:
            changed = False
            for x, b in unary:
                if nullable[b] and not nullable[x]:
                    nullable[x] = changed = True
            for x, b, c in binary:
                if nullable[b] and nullable[c] and not nullable[x]:
                    nullable[x] = changed = True
        self.nullable = nullable
        self.binary = binary
        self.n_orig_nt = n0

        def csr(keys, vals, nkeys):
            order = np.argsort(np.asarray(keys, dtype=np.int64), kind="stable") if keys else np.zeros(0, np.int64)
            ptr = np.zeros(nkeys + 1, dtype=np.int32)
            for k in keys:
                ptr[k + 1] += 1
            np.cumsum(ptr, out=ptr)
            outs = [np.asarray([v[i] for i in order.tolist()], dtype=np.int32) for v in vals]
            return ptr, outs

        self.term_ptr, (self.term_nt,) = csr([a for _, a in terms], [[x for x, _ in terms]], self.n_terms)
        self.un_ptr, (self.un_par,) = csr([b for _, b in unary], [[x for x, _ in unary]], n)
        rids = list(range(len(binary)))
        self.l_ptr, (self.l_par, self.l_oth, self.l_rid) = csr(
            [b for _, b, _ in binary], [[x for x, _, _ in binary], [c for _, _, c in binary], rids], n)
        self.r_ptr, (self.r_par, self.r_oth, self.r_rid) = csr(
            [c for _, _, c in binary], [[x for x, _, _ in binary], [b for _, b, _ in binary], rids], n)
        self.bin_arr = np.asarray(binary, dtype=np.int32).reshape(-1, 3)
        # terminals that the CFG uses (the automaton alphabet); ignore terminals become epsilon
        self.cfg_terms = sorted({a for _, a in terms})


def _first_follow(g: Grammar):
    """FIRST of nonterminals and FOLLOW of terminals (sets of terminal ids; -1 = end of input)."""
    n = len(g.nonterminals)
    rules = [g.rule(r) for r in range(g.n_rules)]
    nullable = [False] * n
    changed = True
    while changed:
        changed = False
        for lhs, rhs in rules:
            if not nullable[lhs] and all(s < 0 and nullable[~s] for s in rhs):
                nullable[lhs] = changed = True
    first = [set() for _ in range(n)]
    changed = True
    while changed:
        changed = False
        for lhs, rhs in rules:
            for s in rhs:
                add = {s} if s >= 0 else first[~s]
                if not add <= first[lhs]:
                    first[lhs] |= add
                    changed = True
                if s >= 0 or not nullable[~s]:
                    break
    follow_nt = [set() for _ in range(n)]
    follow_nt[g.start].add(-1)
    follow_t = [set() for _ in range(g.n_terminals)]

    def first_seq(seq):
        out = set()
        for s in seq:
            out |= {s} if s >= 0 else first[~s]
            if s >= 0 or not nullable[~s]:
                return out, False
        return out, True

    changed = True
    while changed:
        changed = False
        for lhs, rhs in rules:
            for i, s in enumerate(rhs):
                f, nul = first_seq(rhs[i + 1:])
                if nul:
                    f = f | follow_nt[lhs]
                tgt = follow_t[s] if s >= 0 else follow_nt[~s]
                if not f <= tgt:
                    tgt |= f
                    changed = True
    return first, follow_t


def _longest_conflict(g: Grammar) -> str | None:
    """None when maximal munch provably loses no word of the all-readings language, else why.

    Sufficient condition, checked per pair of terminals: (1) no lexeme x of a terminal ``a``
    is a proper prefix of a word of any terminal ``c`` that continues with a byte that can
    start a terminal allowed after ``a`` (FOLLOW, plus ignored terminals anywhere); (2) no
    terminal of higher rank (priority, then literal) shares a word with ``a``.  Then on every
    word the munch lexer reproduces each all-readings lexing, so both languages are equal
    (munch lexings are always all-readings lexings).  Exception: an ignored terminal of the
    form C+ followed by itself merges with itself harmlessly.
    """
    ts = g.terminals
    nt = len(ts)
    first, follow = _first_follow(g)
    used_any = set(first[g.start])
    for f in follow:
        used_any |= f
    used_any.discard(-1)
    ign = set(g.ignore)
    followers = []
    for a in range(nt):
        f = set(follow[a]) | ign
        if a in ign:
            f |= used_any | ign
        f.discard(-1)
        followers.append(f)
    first_bytes = []
    for t in ts:
        d = t.dfa
        row = np.asarray(d.trans[0])
        live = np.asarray(d.live)
        ok = (row >= 0)
        ok[ok] = live[row[ok]]
        first_bytes.append(ok)

    def cplus(t):  # L = C+ for a byte class C
        d = t.dfa.minimize()
        if d.n_states != 2 or d.accept[0] or not d.accept[1]:
            return False
        r0, r1 = np.asarray(d.trans[0]), np.asarray(d.trans[1])
        return bool(np.array_equal(r0 >= 0, r1 >= 0) and (r0[r0 >= 0] == 1).all() and (r1[r1 >= 0] == 1).all())

    cp = [a in ign and cplus(ts[a]) for a in range(nt)]
    rank = [(t.priority, t.kind == "literal") for t in ts]
    for a in range(nt):
        da = ts[a].dfa
        ta, acca = np.asarray(da.trans), np.asarray(da.accept)
        for c in range(nt):
            dc = ts[c].dfa
            tc, livec = np.asarray(dc.trans), np.asarray(dc.live)
            bset = np.zeros(256, dtype=bool)
            for b in followers[a]:
                if b == a == c and cp[a]:
                    continue
                bset |= first_bytes[b]
            # product walk over common bytes
            seen = {(0, 0)}
            stack = [(0, 0)]
            while stack:
                sa, sc = stack.pop()
                if acca[sa]:
                    if c != a and rank[c] > rank[a] and dc.accept[sc]:
                        return (f"terminal {ts[c].name} outranks {ts[a].name} and they share a word "
                                "(maximal munch never yields the latter there)")
                    row = tc[sc]
                    ext = (row >= 0) & bset
                    if ext.any():
                        ext_live = livec[row[ext]]
                        if ext_live.any():
                            return (f"a lexeme of {ts[a].name} can continue as {ts[c].name} into a byte that "
                                    "starts what may follow it (maximal munch would not stop there)")
                both = (ta[sa] >= 0) & (tc[sc] >= 0)
                for b in np.flatnonzero(both).tolist():
                    k = (int(ta[sa, b]), int(tc[sc, b]))
                    if k not in seen:
                        seen.add(k)
                        stack.append(k)
    return None


# ------------------------------------------------------------------------------------- results

@dataclass
class CheckResult:
    """Outcome of one check.  ``status``: "nonempty", "empty" or "unknown" (budget ran out)."""

    status: str
    work: int = 0
    n_nodes: int = 0
    n_states: int = 0
    seconds: float = 0.0
    #: the normalised segments checked (see :func:`normalise_segments`)
    segments: list = field(default_factory=list)
    _ctx: object = field(default=None, repr=False)
    _wit: list = field(default_factory=list, repr=False)

    def __bool__(self) -> bool:
        return self.status == "nonempty"

    def witness(self) -> bytes | None:
        """One word of the grammar that fills the gaps (None unless nonempty)."""
        w = self._witness()
        return None if w is None else w[0]

    def fills(self) -> list[bytes] | None:
        """The bytes the witness puts in each gap, in order (edge gaps included)."""
        w = self._witness()
        return None if w is None else w[1]

    def _witness(self):
        if self.status != "nonempty":
            return None
        if not self._wit:
            self._wit.append(self._ctx.witness())
        return self._wit[0]


# ------------------------------------------------------------------------------------ the checker

class _RGraph:
    """Byte graph of a partial output (see checker_kernels.terminal_edges)."""

    def __init__(self, segments):
        out: list[list] = []          # per node: [(label, dst, gap index)]

        def node():
            out.append([])
            return len(out) - 1

        def edge(u, lab, v, gap=-1):
            out[u].append((lab, v, gap))

        cur = node()
        self.start = cur
        gi = 0
        seg_end = []
        # nodes are numbered in a topological order: every edge goes to a larger id (or loops)
        for seg in segments:
            if isinstance(seg, (bytes, bytearray)):
                for b in seg:
                    n = node()
                    edge(cur, b, n)
                    cur = n
                seg_end.append(cur)
                continue
            if isinstance(seg, TokenGap):
                to_end = [cur] if seg.min_tokens == 0 else []
                for k in range(seg.max_tokens):
                    trie = {b"": cur}
                    last: list = []
                    for tok in seg.tokens:
                        for ln in range(1, len(tok)):
                            pre = tok[:ln]
                            if pre not in trie:
                                trie[pre] = node()
                                edge(trie[tok[:ln - 1]], tok[ln - 1], trie[pre], gi)
                        last.append((trie[tok[:-1]], tok[-1]))
                    slot_end = node()
                    for u, b in last:
                        edge(u, b, slot_end, gi)
                    cur = slot_end
                    if k + 1 >= seg.min_tokens and k + 1 < seg.max_tokens:
                        to_end.append(cur)
                for u in to_end:          # a shorter run of tokens ends at the last slot's end
                    edge(u, K.EPS, cur)
                seg_end.append(cur)
                gi += 1
                continue
            gap: Gap = seg
            for _ in range(gap.min_bytes):
                n = node()
                edge(cur, K.ANY, n, gi)
                cur = n
            if gap.max_bytes is None:
                edge(cur, K.ANY, cur, gi)
            elif gap.max_bytes > gap.min_bytes:
                chain = [cur]
                for _ in range(gap.max_bytes - gap.min_bytes):
                    n = node()
                    edge(cur, K.ANY, n, gi)
                    chain.append(n)
                    cur = n
                c = node()
                for u in chain:
                    edge(u, K.EPS, c)
                cur = c
            seg_end.append(cur)
            gi += 1
        self.seg_end = seg_end
        self.final = cur
        self.n_gaps = gi
        self.n = len(out)
        self.out = out
        ptr = np.zeros(self.n + 1, dtype=np.int32)
        ptr[1:] = np.cumsum([len(o) for o in out])
        flat = [e for o in out for e in o]
        self.e_ptr = ptr
        self.e_lab = np.asarray([e[0] for e in flat], dtype=np.int32)
        self.e_dst = np.asarray([e[1] for e in flat], dtype=np.int32)
        self.order = np.arange(self.n, dtype=np.int32)
        src = np.repeat(np.arange(self.n, dtype=np.int32), np.diff(ptr))
        is_eps = self.e_lab == K.EPS
        self.eps_src, self.eps_dst = src[is_eps], self.e_dst[is_eps]


class _Ctx:
    """Everything one check built, kept for the witness."""

    def __init__(self, tables: _Tables, rg: _RGraph, edges, auto):
        self.t, self.rg, self.edges, self.auto = tables, rg, edges, auto

    def witness(self):
        t, rg = self.t, self.rg
        auto = self.auto
        n_q = auto["n_q"]
        size = t.n_nt * n_q * n_q
        bp_kind = np.zeros(size, np.int8)
        bp_a = np.zeros(size, np.int32)
        bp_mid = np.zeros(size, np.int32)
        st, p, q, _ = _run_bh(t, auto, 1 << 62, True, bp_kind, bp_a, bp_mid)
        assert st == 1
        # the yield: terminal sequence along the automaton
        word: list[int] = []
        stack = [(0, p, q)]
        qq = n_q * n_q
        while stack:
            x, p, q = stack.pop()
            key = x * qq + p * n_q + q
            k = bp_kind[key]
            if k == 1:
                word.append(int(bp_a[key]))
            elif k == 2:
                stack.append((int(bp_a[key]), p, q))
            elif k == 3:
                _, bl, cr = t.bin_arr[bp_a[key]]
                m = int(bp_mid[key])
                stack.append((int(cr), m, q))   # popped second
                stack.append((int(bl), p, m))   # popped first
            elif k == 4:
                pass
            else:  # pragma: no cover
                raise AssertionError("broken back-pointer")
        path = self._nfa_path(word)
        out = bytearray()
        fills = [bytearray() for _ in range(rg.n_gaps)]
        for u, term, v in path:
            if term < 0:
                continue
            for b, g in self._lexeme_bytes(u, term, v):
                out.append(b)
                if g >= 0:
                    fills[g].append(b)
        return bytes(out), [bytes(f) for f in fills]

    def _nfa_path(self, word):
        """A path start -> final in the terminal NFA spelling ``word`` (ignore / eps edges free)."""
        src, term, dst = self.edges
        rg, t = self.rg, self.t
        out_e: list[list] = [[] for _ in range(rg.n)]
        for s, a, d in zip(src.tolist(), term.tolist(), dst.tolist()):
            out_e[s].append((a, d))
        for u, v in zip(rg.eps_src.tolist(), rg.eps_dst.tolist()):
            out_e[u].append((-1, v))
        ign = t.ignore

        def closure(layer):  # layer: dict node -> parent; eps and ignore moves within a layer
            stack = list(layer)
            while stack:
                n = stack.pop()
                for a, d in out_e[n]:
                    if (a < 0 or a in ign) and d not in layer:
                        layer[d] = (n, a, True)
                        stack.append(d)
            return layer

        layers = [closure({rg.start: None})]
        for a in word:
            nxt: dict = {}
            for n in layers[-1]:
                for b, d in out_e[n]:
                    if b == a and d not in nxt:
                        nxt[d] = (n, a, False)
            layers.append(closure(nxt))
        assert rg.final in layers[-1], "witness path lost"
        path = []
        i, n = len(layers) - 1, rg.final
        while True:
            par = layers[i][n]
            if par is None:
                break
            u, a, same = par
            path.append((u, a, n))
            n = u
            if not same:
                i -= 1
        path.reverse()
        return path

    def _lexeme_bytes(self, u, term, v):
        """Bytes of one lexeme of ``term`` from node u to node v (shortest), with gap tags."""
        t, rg = self.t, self.rg
        ct, acc = t.ctrans, t.cacc
        s0 = int(t.tstart[term])
        par = {(u, s0): None}
        frontier = [(u, s0)]
        goal = None
        while frontier and goal is None:
            nxt = []
            for key in frontier:
                n, s = key
                moves = []
                for lab, m, gap in rg.out[n]:
                    if lab == K.EPS:
                        moves.append(((m, s), -1, -1))
                    elif lab == K.ANY:
                        row = ct[s]
                        for s2 in t.succ_idx[t.succ_ptr[s]:t.succ_ptr[s + 1]].tolist():
                            cands = row[t.byte_pref] == s2
                            b = int(t.byte_pref[int(np.argmax(cands))])
                            moves.append(((m, s2), b, gap))
                    else:
                        s2 = ct[s, lab]
                        if s2 >= 0:
                            moves.append(((m, int(s2)), lab, gap))
                for k2, b, g in moves:
                    if k2 not in par:
                        par[k2] = (key, b, g)
                        if k2[0] == v and acc[k2[1]]:
                            goal = k2
                            break
                        nxt.append(k2)
                if goal is not None:
                    break
            frontier = nxt
        assert goal is not None, "lexeme lost"
        out = []
        k = goal
        while par[k] is not None:
            k, b, g = par[k]
            if b >= 0:
                out.append((b, g))
        out.reverse()
        return out


def _run_bh(t: _Tables, auto, budget, want_bp, bp_kind, bp_a, bp_mid):
    return K.bar_hillel(auto["n_q"], auto["is_start"], auto["is_final"], auto["src"], auto["term"], auto["dst"],
                        t.n_nt, 0, t.nullable, t.term_ptr, t.term_nt, t.un_ptr, t.un_par,
                        t.l_ptr, t.l_par, t.l_oth, t.l_rid, t.r_ptr, t.r_par, t.r_oth, t.r_rid,
                        budget, want_bp, bp_kind, bp_a, bp_mid)


_EMPTY8 = np.zeros(1, np.int8)
_EMPTY32 = np.zeros(1, np.int32)
_EMPTY_BITS = np.zeros((0, 1), np.uint64)


class _Snap:
    """The lexing sweep's state at the end node of a segment prefix (see ``InfillChecker._lex``)."""

    __slots__ = ("prefix", "node", "states", "bits", "bound", "edges", "nbytes")

    def __init__(self, prefix, node, states, bits, bound, edges):
        self.prefix, self.node, self.states, self.bits, self.bound, self.edges = prefix, node, states, bits, bound, edges
        self.nbytes = int(states.nbytes + bits.nbytes + sum(a.nbytes for a in edges) + 8 * len(prefix) + 200)


class InfillChecker:
    """Decides the additive infilling problem for one grammar (thread-compatible, not locked).

    Parameters
    ----------
    grammar:
        Any :class:`~constrain.grammar.ir.Grammar`.  Lexing ``"all"`` is decided exactly.
        ``"longest"`` (maximal munch) is decided exactly when the grammar passes a sufficient
        test that munch loses no word (true of ``grammars/json.lark``, ``arithmetic.lark`` and
        compiled JSON Schemas); otherwise it raises :class:`LongestLexingRefused`, or with
        ``longest="approximate"`` checks the all-readings language (a superset).
    determinize:
        Determinise and minimise the terminal automaton before the intersection, used when
        that makes it smaller.  Off by default: on masked JSON documents the minimal DFA was
        about as large as the trimmed epsilon-free NFA (the lexing automaton of a partial
        output is nearly deterministic already), and the subset construction cost more than
        it saved (bench/diffusion_bench.py).
    cache_size:
        Whole-check results are memoised by their segments (LRU of this size).
    lex_memo, lex_memo_bytes:
        Memoise the lexing: the sweep's state at the end of every segment prefix is kept
        (LRU, at most ``lex_memo_bytes``), and a check whose segments start with a memoised
        prefix resumes from there.  Consecutive diffusion checks change one position, so
        everything left of it is reused (``lex_stats`` counts the nodes reused and swept).
    """

    def __init__(self, grammar: Grammar, *, longest: str = "refuse", determinize: bool = False,
                 cache_size: int = 4096, lex_memo: bool = True, lex_memo_bytes: int = 64 << 20):
        if longest not in ("refuse", "approximate"):
            raise ConfigError(f"longest must be 'refuse' or 'approximate', got {longest!r}")
        if getattr(grammar, "value_check", None) is not None:
            raise UnsupportedSchemaFeature(
                f"the grammar carries a value check ({grammar.value_check!r}) that only the token-by-token "
                "Matcher enforces; the infilling checker decides the grammar's language alone, so it would "
                "let duplicates through: compile the schema without that uniqueItems, or use the Matcher",
                pointer=", ".join(grammar.value_check.where))
        self.grammar = grammar
        self.tables = _Tables(grammar, longest)
        self.determinize = determinize
        self._cache: OrderedDict = OrderedDict()
        self._cache_size = cache_size
        self.lex_memo = lex_memo
        self.lex_memo_bytes = int(lex_memo_bytes)
        self._lex_memo: OrderedDict = OrderedDict()
        self._lex_bytes = 0
        self._tok_hash: dict = {}
        self.lex_stats = dict(checks=0, resumed=0, nodes_reused=0, nodes_swept=0)

    @property
    def exact(self) -> bool:
        """False when maximal-munch lexing is approximated by all readings."""
        return self.tables.exact

    # --------------------------------------------------------------------- API
    def check(self, chunks, gaps=None, *, start_fixed: bool = True, end_fixed: bool = True,
              start_gap=None, end_gap=None, budget: int | None = None) -> CheckResult:
        """Can the gaps between ``chunks`` be filled so the whole is a word of the grammar?

        ``chunks``: the fixed byte strings in order.  ``gaps``: one per pair of consecutive
        chunks (``None`` = unbounded, an int = at most that many bytes, or a :class:`Gap`);
        default all unbounded.  ``start_fixed=False`` puts a gap (``start_gap``) before the
        first chunk, ``end_fixed=False`` one (``end_gap``) after the last.
        """
        chunks = [bytes(c) for c in chunks]
        if gaps is None:
            gaps = [None] * max(len(chunks) - 1, 0)
        if len(gaps) != max(len(chunks) - 1, 0):
            raise ConfigError(f"{len(chunks)} chunks need {max(len(chunks) - 1, 0)} gaps, got {len(gaps)}")
        segs: list = []
        if not start_fixed:
            segs.append(_as_gap(start_gap))
        for i, c in enumerate(chunks):
            if i:
                segs.append(_as_gap(gaps[i - 1]))
            segs.append(c)
        if not end_fixed:
            segs.append(_as_gap(end_gap))
        return self.check_segments(segs, budget=budget)

    def check_segments(self, segments, *, budget: int | None = None) -> CheckResult:
        """Like :meth:`check` on an explicit list of ``bytes`` and :class:`Gap` items."""
        segs, cuts = _normalise(segments)
        key = (tuple(segs), budget)
        hit = self._cache.get(key)
        if hit is not None:
            self._cache.move_to_end(key)
            return hit
        r = self._check(segs, DEFAULT_BUDGET if budget is None else int(budget), cuts)
        r.segments = segs
        if r.status != "unknown":
            self._cache[key] = r
            if len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return r

    # --------------------------------------------------------------- internals
    def _check(self, segs, budget, cuts=None) -> CheckResult:
        t0 = time.perf_counter()
        t = self.tables
        rg = _RGraph(segs)
        edges = self._lex(segs, rg, cuts)
        if self.determinize:
            auto = self._automaton(rg, edges)
        else:
            m, is_start, is_final, a_s, a_t, a_d = K.eps_free_nfa(
                rg.n, edges[0], edges[1], edges[2], t.ign_mask, rg.eps_src, rg.eps_dst, rg.start, rg.final,
                t.n_terms)
            auto = None if m == 0 else dict(n_q=int(m), is_start=is_start, is_final=is_final, src=a_s, term=a_t,
                                            dst=a_d)
        if auto is None:
            return CheckResult("empty", 0, rg.n, 0, time.perf_counter() - t0)
        st, _, _, work = _run_bh(t, auto, budget, False, _EMPTY8, _EMPTY32, _EMPTY32)
        status = {1: "nonempty", 0: "empty", -1: "unknown"}[int(st)]
        r = CheckResult(status, int(work), rg.n, auto["n_q"], time.perf_counter() - t0)
        if status == "nonempty":
            r._ctx = _Ctx(t, rg, edges, auto)
        return r

    # ------------------------------------------------------------ lexing memo
    def _seg_key(self, seg):
        if isinstance(seg, bytes):
            return seg
        if isinstance(seg, TokenGap):
            h = self._tok_hash.get(id(seg.tokens))
            if h is None or h[0] is not seg.tokens:
                h = (seg.tokens, hash(seg.tokens))
                if len(self._tok_hash) > 64:
                    self._tok_hash.clear()
                self._tok_hash[id(seg.tokens)] = h
            return ("t", seg.min_tokens, seg.max_tokens, h[1])
        return ("g", seg.min_bytes, seg.max_bytes)

    def _lex(self, segs, rg: _RGraph, cuts=None):
        """The terminal NFA's edges (src, term, dst) of ``rg``, resuming from the longest
        memoised prefix (see :func:`checker_kernels.lex_sweep`).

        Resumption points are the end nodes of segments and the ``cuts`` inside chunks (where
        the caller's chunks were joined: token boundaries), keyed by the prefix up to there.
        """
        t = self.tables
        n_seg = len(segs)
        # points: (key, node, segment index, byte offset or None for a whole segment)
        points = []
        h = 0
        for i, sg in enumerate(segs):
            if isinstance(sg, bytes):
                first = rg.seg_end[i] - len(sg)
                for j in (cuts[i] if cuts else ()):
                    points.append((hash((h, sg[:j])), first + j, i, j))
            h = hash((h, self._seg_key(sg)))
            # the end node of segment i is final once later segments cannot touch it: only an
            # unbounded gap without minimum puts its self-loop on the node before it
            nxt = segs[i + 1] if i + 1 < n_seg else None
            if not (isinstance(nxt, Gap) and nxt.max_bytes is None and nxt.min_bytes == 0):
                points.append((h, rg.seg_end[i], i, None))

        def prefix(pt):
            _, _, i, j = pt
            return tuple(segs[:i + 1]) if j is None else tuple(segs[:i]) + (segs[i][:j],)

        snap, r_p = None, -1
        memo = self._lex_memo
        if self.lex_memo:
            for p in range(len(points) - 1, -1, -1):
                sn = memo.get(points[p][0])
                if sn is not None and sn.prefix == prefix(points[p]):
                    memo.move_to_end(points[p][0])
                    snap, r_p = sn, p
                    break
        self.lex_stats["checks"] += 1
        snap_at = np.zeros(rg.n, dtype=bool)
        if self.lex_memo:
            for p in range(r_p + 1, len(points)):
                snap_at[points[p][1]] = True
        w = (rg.n + 63) // 64
        if snap is not None:
            self.lex_stats["resumed"] += 1
            self.lex_stats["nodes_reused"] += snap.node
            snap_at[snap.node] = False
            res = K.lex_sweep(rg.e_ptr, rg.e_lab, rg.e_dst, snap.node, True, snap.states, snap.bits, snap.bound,
                              snap_at, t.ctrans, t.cacc, t.cterm, t.tstart, t.succ_ptr, t.succ_idx, t.n_terms, w)
            pre = snap.edges
        else:
            res = K.lex_sweep(rg.e_ptr, rg.e_lab, rg.e_dst, rg.start, False, _EMPTY32[:0], _EMPTY_BITS,
                              True, snap_at, t.ctrans, t.cacc, t.cterm, t.tstart, t.succ_ptr, t.succ_idx,
                              t.n_terms, w)
            pre = None
        o_s, o_t, o_d, sn_node, sn_ptr, sn_state, sn_bits, sn_bound, sn_nedge = res
        self.lex_stats["nodes_swept"] += rg.n - (snap.node if snap is not None else 0)
        if pre is None:
            full = (o_s, o_t, o_d)
            base = 0
        else:
            full = tuple(np.concatenate([a, b]) for a, b in zip(pre, (o_s, o_t, o_d)))
            base = len(pre[0])
        if self.lex_memo and len(sn_node):
            at = {int(x): k for k, x in enumerate(sn_node.tolist())}
            for p in range(r_p + 1, len(points)):
                pt = points[p]
                k = at.get(pt[1])
                if k is None:
                    continue
                ne = base + int(sn_nedge[k])
                lo, hi = int(sn_ptr[k]), int(sn_ptr[k + 1])
                nw = (pt[1] + 64) // 64
                new = _Snap(prefix(pt), pt[1], sn_state[lo:hi], sn_bits[lo:hi, :nw], bool(sn_bound[k]),
                            tuple(a[:ne] for a in full))
                old = memo.pop(pt[0], None)
                if old is not None:
                    self._lex_bytes -= old.nbytes
                memo[pt[0]] = new
                self._lex_bytes += new.nbytes
            while memo and (self._lex_bytes > self.lex_memo_bytes or len(memo) > 65536):
                _, old = memo.popitem(last=False)
                self._lex_bytes -= old.nbytes
        return full

    def _automaton(self, rg: _RGraph, edges):
        """Trim the terminal NFA, remove epsilons, and determinise + minimise when smaller."""
        t = self.tables
        src, term, dst = edges
        n = rg.n
        ign = np.zeros(t.n_terms, dtype=bool)
        ign[list(t.ignore)] = True
        is_eps = ign[term]
        eps_src = np.concatenate([src[is_eps], rg.eps_src])
        eps_dst = np.concatenate([dst[is_eps], rg.eps_dst])
        ks, kt, kd = src[~is_eps], term[~is_eps], dst[~is_eps]
        # trim: forward from start, backward from final, over all edges
        all_s = np.concatenate([ks, eps_src]).tolist()
        all_d = np.concatenate([kd, eps_dst]).tolist()
        fwd = [[] for _ in range(n)]
        bwd = [[] for _ in range(n)]
        for s, d in zip(all_s, all_d):
            fwd[s].append(d)
            bwd[d].append(s)

        def reach(starts, adj):
            seen = np.zeros(n, dtype=bool)
            seen[starts] = True
            st = list(starts)
            while st:
                x = st.pop()
                for y in adj[x]:
                    if not seen[y]:
                        seen[y] = True
                        st.append(y)
            return seen

        live = reach([rg.start], fwd) & reach([rg.final], bwd)
        if not live[rg.start]:
            return None
        keep = np.flatnonzero(live)
        remap = np.full(n, -1, dtype=np.int64)
        remap[keep] = np.arange(len(keep))
        m = len(keep)
        ok = live[ks] & live[kd]
        ks, kt, kd = remap[ks[ok]], kt[ok], remap[kd[ok]]
        eok = live[eps_src] & live[eps_dst]
        es, ed = remap[eps_src[eok]].tolist(), remap[eps_dst[eok]].tolist()
        start, final = int(remap[rg.start]), int(remap[rg.final])
        # epsilon closures as int bitsets
        eadj = [[] for _ in range(m)]
        for s, d in zip(es, ed):
            eadj[s].append(d)
        clos = [0] * m
        for x in range(m):
            bits = 1 << x
            st = [x]
            while st:
                y = st.pop()
                for z in eadj[y]:
                    if not bits >> z & 1:
                        bits |= 1 << z
                        st.append(z)
            clos[x] = bits
        # per node, per terminal: closed successor bitset
        succ: list[dict] = [dict() for _ in range(m)]
        for s, a, d in zip(ks.tolist(), kt.tolist(), kd.tolist()):
            dd = succ[s]
            dd[a] = dd.get(a, 0) | clos[d]
        nfa = self._eps_free(m, succ, clos, start, final)
        if not self.determinize:
            return nfa
        dfa = _determinise(m, succ, clos[start], final, cap=m)
        if dfa is None or dfa["n_q"] >= nfa["n_q"]:
            return nfa
        return dfa

    @staticmethod
    def _eps_free(m, succ, clos, start, final):
        src, term, dst = [], [], []
        for s in range(m):
            for a, bits in succ[s].items():
                while bits:
                    low = bits & -bits
                    d = low.bit_length() - 1
                    bits ^= low
                    src.append(s)
                    term.append(a)
                    dst.append(d)
        is_start = np.zeros(m, dtype=bool)
        for x in _bits(clos[start]):
            is_start[x] = True
        is_final = np.zeros(m, dtype=bool)
        is_final[final] = True
        return dict(n_q=m, is_start=is_start, is_final=is_final, src=np.asarray(src, np.int32),
                    term=np.asarray(term, np.int32), dst=np.asarray(dst, np.int32))


def _bits(x: int):
    while x:
        low = x & -x
        yield low.bit_length() - 1
        x ^= low


def _determinise(m, succ, start_bits, final, cap):
    """Subset construction over terminals, then Hopcroft minimisation; None over ``cap`` states."""
    ids = {start_bits: 0}
    order = [start_bits]
    rows: list[dict] = []
    i = 0
    while i < len(order):
        cur = order[i]
        i += 1
        out: dict[int, int] = {}
        for x in _bits(cur):
            for a, bits in succ[x].items():
                out[a] = out.get(a, 0) | bits
        row = {}
        for a, bits in out.items():
            j = ids.get(bits)
            if j is None:
                if len(order) >= cap:
                    return None
                j = ids[bits] = len(order)
                order.append(bits)
            row[a] = j
        rows.append(row)
    q = len(order)
    alpha = sorted({a for r in rows for a in r})
    col = {a: k for k, a in enumerate(alpha)}
    ct = np.full((q, max(len(alpha), 1)), -1, dtype=np.int64)
    for s, r in enumerate(rows):
        for a, j in r.items():
            ct[s, col[a]] = j
    acc = np.array([b >> final & 1 for b in order], np.int64)
    block = hopcroft_blocks(ct, acc).tolist() if q > 1 else [0]
    nb = max(block) + 1
    src, term, dst = [], [], []
    done = set()
    for s, r in enumerate(rows):
        bs = block[s]
        for a, j in r.items():
            k = (bs, a)
            if k not in done:
                done.add(k)
                src.append(bs)
                term.append(a)
                dst.append(block[j])
    is_start = np.zeros(nb, dtype=bool)
    is_start[block[0]] = True
    is_final = np.zeros(nb, dtype=bool)
    for s in range(q):
        if acc[s]:
            is_final[block[s]] = True
    return dict(n_q=nb, is_start=is_start, is_final=is_final, src=np.asarray(src, np.int32),
                term=np.asarray(term, np.int32), dst=np.asarray(dst, np.int32))


def normalise_segments(segments) -> list:
    """Merge adjacent gaps and adjacent chunks; drop empty chunks (what a check really sees;
    :meth:`CheckResult.fills` has one entry per gap of this list)."""
    return _normalise(segments)[0]


def _normalise(segments):
    """:func:`normalise_segments`, and per output segment the byte offsets where input chunks
    were joined (the lexing memo's resumption points inside a chunk)."""
    out: list = []
    cuts: list = []
    for s in segments:
        if isinstance(s, (bytes, bytearray, memoryview)):
            s = bytes(s)
            if not s:
                continue
            if out and isinstance(out[-1], bytes):
                cuts[-1].append(len(out[-1]))
                out[-1] = out[-1] + s
            else:
                out.append(s)
                cuts.append([])
        else:
            g = _as_gap(s)
            if out and isinstance(out[-1], Gap) and isinstance(g, Gap):
                p = out[-1]
                mx = None if p.max_bytes is None or g.max_bytes is None else p.max_bytes + g.max_bytes
                out[-1] = Gap(max_bytes=mx, min_bytes=p.min_bytes + g.min_bytes)
            else:
                out.append(g)
                cuts.append([])
    return out, cuts
