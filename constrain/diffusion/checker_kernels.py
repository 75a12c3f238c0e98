"""Numba kernels of the infilling checker.  Flat numpy arrays in, flat arrays out.

Two kernels carry the work of a check:

``terminal_edges``
    Lexes the partial output.  The partial output is a small byte graph (the "R graph": one
    node per lexeme-boundary position, a fixed-byte edge per chunk byte, an any-byte edge per
    gap byte, an epsilon edge where a bounded gap may end, a trie of token strings per token
    slot of a token-exact gap).  From every node, a BFS over
    (node, combined terminal-DFA state) pairs finds every terminal whose lexeme can start at
    that node and end at another one.  The result is the terminal-level NFA: edges
    ``(src, terminal, dst)``.  A lexeme may start inside a chunk, cross gaps and end inside
    another chunk, so fragments at chunk edges and merges across gaps come out of one walk.

``bar_hillel``
    Decides emptiness of L(G) ∩ L(A) for an automaton A over terminals (a DFA or an
    epsilon-free NFA) by a worklist over generating triples (p, X, q) of a binarised grammar,
    with early exit on (start, S, final) and a work budget.
"""

from __future__ import annotations

import numpy as np

from constrain._jit import njit


ANY = 256   # edge label: any byte (a gap byte)
EPS = -1    # edge label: no byte (a bounded gap may end here)


@njit
def terminal_edges(e_ptr, e_lab, e_dst, order, start, ctrans, cacc, cterm, tstart,
                   succ_ptr, succ_idx, n_terms):  # pragma: no cover - compiled
    """All lexeme edges of the R graph.

    Parameters
    ----------
    e_ptr, e_lab, e_dst : the R graph in CSR form: edges of node n are
        ``e_ptr[n]:e_ptr[n+1]``, labelled with a byte (0..255), ``ANY`` (any byte: a gap) or
        ``EPS`` (no byte), leading to ``e_dst``.
    order, start : the nodes in a topological order (self-loops aside) and the start node.
        Lexemes are only searched from nodes that some lexeme path from ``start`` reaches (a
        position inside a string chunk usually is not a lexeme boundary).
    ctrans : int32[n_states, 256]
        All terminal DFAs in one table (disjoint state ranges; -1 dead, dead states pruned).
    cacc : bool[n_states]; cterm : int32[n_states]; tstart : int32[n_terms]
        Accepting flag and terminal of each state; start state of each terminal.
    succ_ptr, succ_idx : CSR of the distinct successors of each state over all bytes.

    Returns
    -------
    (src, term, dst) : int32 arrays, one entry per distinct edge.
    """
    n_nodes = e_ptr.shape[0] - 1
    n_states = ctrans.shape[0]
    seen = np.zeros(n_nodes * n_states, np.int32)     # stamp = p + 1
    eseen = np.zeros(n_nodes * n_terms, np.int32)
    stack = np.empty(n_nodes * n_states + 1, np.int64)
    cap = 1024
    out_s = np.empty(cap, np.int32)
    out_t = np.empty(cap, np.int32)
    out_d = np.empty(cap, np.int32)
    n_out = 0
    boundary = np.zeros(n_nodes, np.bool_)
    boundary[start] = True
    for oi in range(n_nodes):
        p = order[oi]
        if not boundary[p] or e_ptr[p] == e_ptr[p + 1]:
            continue
        for e in range(e_ptr[p], e_ptr[p + 1]):
            if e_lab[e] == EPS:
                boundary[e_dst[e]] = True
        stamp = p + 1
        sp = 0
        for t in range(n_terms):
            s = tstart[t]
            key = p * n_states + s
            if seen[key] != stamp:
                seen[key] = stamp
                stack[sp] = key
                sp += 1
        while sp > 0:
            sp -= 1
            key = stack[sp]
            n = key // n_states
            s = key % n_states
            if cacc[s]:
                t = cterm[s]
                ek = n * n_terms + t
                if eseen[ek] != stamp:
                    eseen[ek] = stamp
                    if n_out == cap:
                        cap *= 2
                        a = np.empty(cap, np.int32)
                        a[:n_out] = out_s
                        out_s = a
                        a = np.empty(cap, np.int32)
                        a[:n_out] = out_t
                        out_t = a
                        a = np.empty(cap, np.int32)
                        a[:n_out] = out_d
                        out_d = a
                    out_s[n_out] = p
                    out_t[n_out] = t
                    out_d[n_out] = n
                    n_out += 1
                    boundary[n] = True
            for e in range(e_ptr[n], e_ptr[n + 1]):
                lab = e_lab[e]
                m = e_dst[e]
                if lab == EPS:
                    k2 = m * n_states + s
                    if seen[k2] != stamp:
                        seen[k2] = stamp
                        stack[sp] = k2
                        sp += 1
                elif lab == ANY:
                    for i in range(succ_ptr[s], succ_ptr[s + 1]):
                        k2 = m * n_states + succ_idx[i]
                        if seen[k2] != stamp:
                            seen[k2] = stamp
                            stack[sp] = k2
                            sp += 1
                else:
                    s2 = ctrans[s, lab]
                    if s2 >= 0:
                        k2 = m * n_states + s2
                        if seen[k2] != stamp:
                            seen[k2] = stamp
                            stack[sp] = k2
                            sp += 1
    return out_s[:n_out].copy(), out_t[:n_out].copy(), out_d[:n_out].copy()


@njit
def _push(stack, sp, k):
    """Append ``k`` to the worklist ``stack[:sp]``, doubling its storage when full."""
    if sp == stack.shape[0]:
        grown = np.empty(2 * stack.shape[0], np.int64)
        grown[:sp] = stack[:sp]
        stack = grown
    stack[sp] = k
    return stack, sp + 1


@njit
def _bit_index(low):
    """Index of the single set bit of the uint64 ``low``."""
    i = 0
    one = np.uint64(1)
    while low > one:
        low >>= one
        i += 1
    return i


@njit
def bar_hillel(n_q, is_start, is_final, e_src, e_term, e_dst, n_nt, start_nt, nullable,
               term_ptr, term_nt, un_ptr, un_par, l_ptr, l_par, l_oth, l_rid, r_ptr, r_par, r_oth, r_rid,
               budget, want_bp, bp_kind, bp_a, bp_mid):  # pragma: no cover - compiled
    """Worklist emptiness test of L(G) ∩ L(A), G binarised, A given by its edges.

    A triple (p, X, q) is generating iff X derives a terminal word that takes A from p to q.
    Seeds: (p, X, q) for X -> a and an edge p -a-> q; (p, X, p) for nullable X.  Rules:
    X -> B gives (p, B, q) => (p, X, q); X -> B C gives (p, B, q), (q, C, r) => (p, X, r),
    joined from whichever side is popped.  Stops at the first (s, S, f) with s a start and f
    a final state.

    The chart is kept twice as bitsets: ``row[X, p]`` (the q with (p, X, q)) and ``col[X, q]``
    (the p), so a join visits 64 states per word and only touches triples that are new.

    Rule indexes (CSR): ``term_ptr/term_nt`` by terminal: the X with X -> a;
    ``un_ptr/un_par`` by child B: the X with X -> B; ``l_ptr/l_par/l_oth`` by left child B:
    (X, C) with X -> B C; ``r_ptr/r_par/r_oth`` by right child C: (X, B) with X -> B C;
    ``l_rid``/``r_rid`` the binary rule's index.

    With ``want_bp`` the derivation of each triple is recorded in ``bp_kind`` (1 terminal,
    2 unary, 3 binary, 4 empty), ``bp_a`` (terminal / child / binary rule) and ``bp_mid``
    (split state) — arrays of shape [n_nt * n_q * n_q].

    Returns (status, p, q, work): status 1 found (p, q the start and final state), 0 the
    intersection is empty, -1 the budget ran out.  ``work`` counts pops plus bitset words.
    """
    qq = n_q * n_q
    nw = (n_q + 63) // 64
    row = np.zeros((n_nt * n_q, nw), np.uint64)
    col = np.zeros((n_nt * n_q, nw), np.uint64)
    stack = np.empty(4096, np.int64)
    sp = 0
    work = 0
    one = np.uint64(1)
    # seeds
    for e in range(e_src.shape[0]):
        a = e_term[e]
        p = e_src[e]
        q = e_dst[e]
        for i in range(term_ptr[a], term_ptr[a + 1]):
            x = term_nt[i]
            if (row[x * n_q + p, q >> 6] >> np.uint64(q & 63)) & one:
                continue
            row[x * n_q + p, q >> 6] |= one << np.uint64(q & 63)
            col[x * n_q + q, p >> 6] |= one << np.uint64(p & 63)
            key = x * qq + p * n_q + q
            if want_bp:
                bp_kind[key] = 1
                bp_a[key] = a
            if x == start_nt and is_start[p] and is_final[q]:
                return 1, p, q, work
            stack, sp = _push(stack, sp, key)
    for x in range(n_nt):
        if nullable[x]:
            for p in range(n_q):
                if (row[x * n_q + p, p >> 6] >> np.uint64(p & 63)) & one:
                    continue
                row[x * n_q + p, p >> 6] |= one << np.uint64(p & 63)
                col[x * n_q + p, p >> 6] |= one << np.uint64(p & 63)
                key = x * qq + p * n_q + p
                if want_bp:
                    bp_kind[key] = 4
                if x == start_nt and is_start[p] and is_final[p]:
                    return 1, p, p, work
                stack, sp = _push(stack, sp, key)
    while sp > 0:
        sp -= 1
        key = stack[sp]
        b = key // qq
        rem = key - b * qq
        p = rem // n_q
        q = rem - p * n_q
        work += 1
        if work > budget:
            return -1, -1, -1, work
        # unary X -> B
        for i in range(un_ptr[b], un_ptr[b + 1]):
            x = un_par[i]
            if (row[x * n_q + p, q >> 6] >> np.uint64(q & 63)) & one:
                continue
            row[x * n_q + p, q >> 6] |= one << np.uint64(q & 63)
            col[x * n_q + q, p >> 6] |= one << np.uint64(p & 63)
            k2 = x * qq + p * n_q + q
            if want_bp:
                bp_kind[k2] = 2
                bp_a[k2] = b
            if x == start_nt and is_start[p] and is_final[q]:
                return 1, p, q, work
            stack, sp = _push(stack, sp, k2)
        # X -> B C with B = b popped on the left: the r with (q, C, r), new for (p, X, .)
        for i in range(l_ptr[b], l_ptr[b + 1]):
            x = l_par[i]
            c = l_oth[i]
            src_row = c * n_q + q
            dst_row = x * n_q + p
            work += nw
            for w in range(nw):
                new = row[src_row, w] & ~row[dst_row, w]
                while new:
                    low = new & (~new + one)
                    new ^= low
                    r = w * 64 + _bit_index(low)
                    row[dst_row, w] |= low
                    col[x * n_q + r, p >> 6] |= one << np.uint64(p & 63)
                    k2 = x * qq + p * n_q + r
                    if want_bp:
                        bp_kind[k2] = 3
                        bp_a[k2] = l_rid[i]
                        bp_mid[k2] = q
                    if x == start_nt and is_start[p] and is_final[r]:
                        return 1, p, r, work
                    stack, sp = _push(stack, sp, k2)
        # X -> B C with C = b popped on the right: the o with (o, B, p), new for (., X, q)
        for i in range(r_ptr[b], r_ptr[b + 1]):
            x = r_par[i]
            bl = r_oth[i]
            src_col = bl * n_q + p
            dst_col = x * n_q + q
            work += nw
            for w in range(nw):
                new = col[src_col, w] & ~col[dst_col, w]
                while new:
                    low = new & (~new + one)
                    new ^= low
                    o = w * 64 + _bit_index(low)
                    col[dst_col, w] |= low
                    row[x * n_q + o, q >> 6] |= one << np.uint64(q & 63)
                    k2 = x * qq + o * n_q + q
                    if want_bp:
                        bp_kind[k2] = 3
                        bp_a[k2] = r_rid[i]
                        bp_mid[k2] = p
                    if x == start_nt and is_start[o] and is_final[q]:
                        return 1, o, q, work
                    stack, sp = _push(stack, sp, k2)
    return 0, -1, -1, work
