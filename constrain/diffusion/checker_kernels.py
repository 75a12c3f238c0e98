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
from constrain.grammar.dfa_kernels import kept_ids


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
                    out_s, out_t, out_d = _push3(out_s, out_t, out_d, n_out, p, t, n)
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


# ----------------------------------------------------------------------------- the lexing sweep

@njit
def _grow2(a, n):
    b = np.zeros((max(2 * a.shape[0], n), a.shape[1]), a.dtype)
    b[:a.shape[0]] = a
    return b


@njit(inline="always")
def _local_row(where, loc_s, loc_b, nloc, s):  # pragma: no cover - compiled
    """The row of lexer state ``s`` in a position's local table (a new, empty one if ``s``
    has none yet); returns ``(row, nloc)``."""
    j = where[s]
    if j < 0:
        j = nloc
        where[s] = j
        loc_s[j] = s
        for w in range(loc_b.shape[1]):
            loc_b[j, w] = 0
        nloc += 1
    return j, nloc


@njit(inline="always")
def _push3(a, b, c, n, x, y, z):  # pragma: no cover - compiled
    """Write ``(x, y, z)`` at index ``n`` of three parallel arrays, doubling them when full."""
    if n == a.shape[0]:
        a = _grow1(a, n + 1, 0)
        b = _grow1(b, n + 1, 0)
        c = _grow1(c, n + 1, 0)
    a[n] = x
    b[n] = y
    c[n] = z
    return a, b, c


@njit
def _grow1(a, n, fill):
    b = np.full(max(2 * a.shape[0], n), fill, a.dtype)
    b[:a.shape[0]] = a
    return b


@njit
def lex_sweep(e_ptr, e_lab, e_dst, n0, resumed, init_s, init_b, init_bound, snap_at, ctrans, cacc, cterm, tstart,
              succ_ptr, succ_idx, n_terms, W):  # pragma: no cover - compiled
    """All lexeme edges of the R graph, by one left-to-right sweep grouped by DFA state.

    The nodes are numbered in a topological order (``_RGraph``), so the sweep visits them by
    index.  At each node it holds the set of combined-DFA states that some open lexeme is in,
    and, per state, the bitset (``W`` words) of the lexeme-boundary nodes the lexemes started
    at.  A state is therefore expanded once per node, whatever the number of sources (the
    per-source BFS of :func:`terminal_edges` re-explores a gap's thousands of states once per
    source).  At a node: pending states are gathered, closed under an any-byte self-loop
    (an unbounded gap), accepting states emit edges ``(source, terminal, node)``, a node that
    some edge reaches becomes a boundary and opens every terminal's start state there, then
    the states move along the outgoing edges.

    Resuming: ``n0`` is the first node; with ``resumed`` its states (``init_s``,
    ``init_b``) and boundary flag ``init_bound`` are the node's final local set, taken from a
    snapshot, and the sweep continues with its outgoing edges.  ``snap_at[n]`` asks for a
    snapshot of node n's local set (used as the resumption point of a later check whose
    segments share the prefix).

    Returns (src, term, dst, snap_node, snap_ptr, snap_state, snap_bits, snap_bound, snap_nedge):
    edges in order of dst (so the edges of a prefix are a prefix of the list), and per
    snapshot its node, the slice of states in ``snap_state/snap_bits``, its boundary flag and
    the number of edges emitted up to it.
    """
    n_nodes = e_ptr.shape[0] - 1
    n_states = ctrans.shape[0]
    one = np.uint64(1)
    # pending (node, state) entries: open-addressing hash on node * n_states + state
    hcap = 1 << 12
    hkey = np.full(hcap, -1, np.int64)
    hval = np.zeros(hcap, np.int32)
    ecap = 1024
    ent_key = np.zeros(ecap, np.int64)
    ent_bits = np.zeros((ecap, W), np.uint64)
    ent_next = np.zeros(ecap, np.int32)
    n_ent = 0
    head = np.full(n_nodes, -1, np.int32)
    # the current node's local set
    where = np.full(n_states, -1, np.int32)
    loc_s = np.zeros(n_states, np.int32)
    loc_b = np.zeros((n_states, W), np.uint64)
    wq = np.zeros(n_states, np.int32)
    inq = np.zeros(n_states, np.bool_)
    em = np.zeros((n_terms, W), np.uint64)
    em_touched = np.zeros(n_terms, np.bool_)
    boundary = np.zeros(n_nodes, np.bool_)
    self_loop = np.zeros(n_nodes, np.bool_)
    for n in range(n_nodes):
        for e in range(e_ptr[n], e_ptr[n + 1]):
            if e_dst[e] == n and e_lab[e] == ANY:
                self_loop[n] = True
    # outputs
    ocap = 1024
    out_s = np.zeros(ocap, np.int32)
    out_t = np.zeros(ocap, np.int32)
    out_d = np.zeros(ocap, np.int32)
    n_out = 0
    n_snap_max = 0
    for n in range(n0, n_nodes):
        if snap_at[n]:
            n_snap_max += 1
    snap_node = np.zeros(n_snap_max, np.int32)
    snap_ptr = np.zeros(n_snap_max + 1, np.int64)
    snap_bound = np.zeros(n_snap_max, np.bool_)
    snap_nedge = np.zeros(n_snap_max, np.int64)
    scap = 1024
    snap_state = np.zeros(scap, np.int32)
    snap_bits = np.zeros((scap, W), np.uint64)
    n_snap = 0
    n_ss = 0
    tmp = np.zeros(W, np.uint64)
    for n in range(n0, n_nodes):
        nloc = 0
        if n == n0 and resumed:
            boundary[n] = init_bound
            for i in range(init_s.shape[0]):
                s = init_s[i]
                where[s] = nloc
                loc_s[nloc] = s
                for w in range(W):
                    loc_b[nloc, w] = init_b[i, w] if w < init_b.shape[1] else np.uint64(0)
                nloc += 1
        else:
            if n == n0:
                boundary[n] = True
            # gather
            k = head[n]
            while k >= 0:
                s = np.int32(ent_key[k] - np.int64(n) * n_states)
                j, nloc = _local_row(where, loc_s, loc_b, nloc, s)
                for w in range(W):
                    loc_b[j, w] |= ent_bits[k, w]
                k = ent_next[k]
            started = False
            for rnd in range(2):
                if rnd == 1:
                    if started or not boundary[n]:
                        break
                    started = True
                    wn = n >> 6
                    bit = one << np.uint64(n & 63)
                    for t in range(n_terms):
                        j, nloc = _local_row(where, loc_s, loc_b, nloc, tstart[t])
                        loc_b[j, wn] |= bit
                # closure under the any-byte self-loop: a state's sources flow to its successors
                if self_loop[n]:
                    qh = 0
                    qn = 0
                    for i in range(nloc):
                        wq[qn] = loc_s[i]
                        inq[loc_s[i]] = True
                        qn += 1
                    # circular queue over at most n_states entries
                    while qn > 0:
                        s = wq[qh]
                        qh += 1
                        if qh == n_states:
                            qh = 0
                        qn -= 1
                        inq[s] = False
                        i = where[s]
                        for x in range(succ_ptr[s], succ_ptr[s + 1]):
                            s2 = succ_idx[x]
                            j, nloc = _local_row(where, loc_s, loc_b, nloc, s2)
                            grew = False  # a new row starts empty: it grows iff a source arrives
                            for w in range(W):
                                nb = loc_b[i, w] & ~loc_b[j, w]
                                if nb:
                                    loc_b[j, w] |= nb
                                    grew = True
                            if grew and not inq[s2]:
                                inq[s2] = True
                                tl = qh + qn
                                if tl >= n_states:
                                    tl -= n_states
                                wq[tl] = s2
                                qn += 1
                # emission: accepting states end lexemes here
                for i in range(nloc):
                    s = loc_s[i]
                    if not cacc[s]:
                        continue
                    t = cterm[s]
                    em_touched[t] = True
                    for w in range(W):
                        new = loc_b[i, w] & ~em[t, w]
                        if not new:
                            continue
                        em[t, w] |= new
                        boundary[n] = True
                        while new:
                            low = new & (~new + one)
                            new ^= low
                            src = w * 64 + _bit_index(low)
                            out_s, out_t, out_d = _push3(out_s, out_t, out_d, n_out, src, t, n)
                            n_out += 1
            for t in range(n_terms):
                if em_touched[t]:
                    em_touched[t] = False
                    for w in range(W):
                        em[t, w] = 0
        if snap_at[n]:
            snap_node[n_snap] = n
            snap_ptr[n_snap] = n_ss
            snap_bound[n_snap] = boundary[n]
            snap_nedge[n_snap] = n_out
            if n_ss + nloc > scap:
                scap = max(2 * scap, n_ss + nloc)
                snap_state = _grow1(snap_state, scap, 0)
                snap_bits = _grow2(snap_bits, scap)
            for i in range(nloc):
                snap_state[n_ss] = loc_s[i]
                for w in range(W):
                    snap_bits[n_ss, w] = loc_b[i, w]
                n_ss += 1
            n_snap += 1
            snap_ptr[n_snap] = n_ss
        # outgoing edges
        for e in range(e_ptr[n], e_ptr[n + 1]):
            lab = e_lab[e]
            m = e_dst[e]
            if m == n:
                continue
            if lab == EPS and boundary[n]:
                boundary[m] = True
            for i in range(nloc):
                s = loc_s[i]
                if lab == EPS:
                    lo = 0
                    hi = 1
                elif lab == ANY:
                    lo = succ_ptr[s]
                    hi = succ_ptr[s + 1]
                else:
                    if ctrans[s, lab] < 0:
                        continue
                    lo = 0
                    hi = 1
                for x in range(lo, hi):
                    if lab == EPS:
                        s2 = s
                    elif lab == ANY:
                        s2 = succ_idx[x]
                    else:
                        s2 = ctrans[s, lab]
                    key = np.int64(m) * n_states + s2
                    h = (key * np.int64(0x9E3779B1)) & (hcap - 1)
                    while hkey[h] >= 0 and hkey[h] != key:
                        h = (h + 1) & (hcap - 1)
                    if hkey[h] == key:
                        k = hval[h]
                        for w in range(W):
                            ent_bits[k, w] |= loc_b[i, w]
                        continue
                    if n_ent == ecap:
                        ecap *= 2
                        ent_key = _grow1(ent_key, ecap, 0)
                        ent_next = _grow1(ent_next, ecap, 0)
                        ent_bits = _grow2(ent_bits, ecap)
                    k = n_ent
                    n_ent += 1
                    ent_key[k] = key
                    for w in range(W):
                        ent_bits[k, w] = loc_b[i, w]
                    ent_next[k] = head[m]
                    head[m] = k
                    hkey[h] = key
                    hval[h] = k
                    if 2 * n_ent > hcap:   # rehash at load 1/2
                        hcap *= 4
                        hkey = np.full(hcap, -1, np.int64)
                        hval = np.zeros(hcap, np.int32)
                        for kk in range(n_ent):
                            h2 = (ent_key[kk] * np.int64(0x9E3779B1)) & (hcap - 1)
                            while hkey[h2] >= 0:
                                h2 = (h2 + 1) & (hcap - 1)
                            hkey[h2] = ent_key[kk]
                            hval[h2] = kk
        for i in range(nloc):
            where[loc_s[i]] = -1
    return (out_s[:n_out].copy(), out_t[:n_out].copy(), out_d[:n_out].copy(), snap_node[:n_snap].copy(),
            snap_ptr[:n_snap + 1].copy(), snap_state[:n_ss].copy(), snap_bits[:n_ss].copy(),
            snap_bound[:n_snap].copy(), snap_nedge[:n_snap].copy())


@njit
def eps_free_nfa(n, src, term, dst, ign, eps_src, eps_dst, start, final, n_terms):  # pragma: no cover
    """Trim the terminal NFA (reachable from start, co-reachable from final), remove epsilon
    edges (ignored terminals and the R graph's EPS edges), and renumber the live nodes.

    Node ids are topological (every edge goes to an equal or larger id), so epsilon closures
    are computed in one reverse pass.  Returns (m, is_start, is_final, src, term, dst); m = 0
    when the final node is unreachable.
    """
    ne = src.shape[0]
    n_eps = eps_src.shape[0]
    tot = ne + n_eps
    a_s = np.empty(tot, np.int64)
    a_d = np.empty(tot, np.int64)
    a_t = np.empty(tot, np.int64)       # -1: epsilon
    for i in range(ne):
        a_s[i] = src[i]
        a_d[i] = dst[i]
        a_t[i] = -1 if ign[term[i]] else term[i]
    for i in range(n_eps):
        a_s[ne + i] = eps_src[i]
        a_d[ne + i] = eps_dst[i]
        a_t[ne + i] = -1
    # forward / backward reachability: ids are topological, one pass each (self-loops aside)
    fwd = np.zeros(n, np.bool_)
    bwd = np.zeros(n, np.bool_)
    order = np.argsort(a_s, kind="mergesort")
    fwd[start] = True
    for i in order:
        if fwd[a_s[i]]:
            fwd[a_d[i]] = True
    bwd[final] = True
    order_d = np.argsort(-a_d, kind="mergesort")
    for i in order_d:
        if bwd[a_d[i]]:
            bwd[a_s[i]] = True
    remap, m = kept_ids(fwd, bwd)
    if not (fwd[final] and bwd[start]):
        z = np.zeros(0, np.int32)
        return 0, np.zeros(0, np.bool_), np.zeros(0, np.bool_), z, z, z
    wm = (m + 63) // 64
    clos = np.zeros((m, wm), np.uint64)
    one = np.uint64(1)
    for x in range(m):
        clos[x, x >> 6] |= one << np.uint64(x & 63)
    # epsilon edges by source, processed from the last source down
    for i in order[::-1]:
        if a_t[i] >= 0:
            continue
        u = remap[a_s[i]]
        v = remap[a_d[i]]
        if u < 0 or v < 0 or u == v:
            continue
        for w in range(wm):
            clos[u, w] |= clos[v, w]
    # non-epsilon live edges grouped by (src, term): the union of the closures of their dsts
    keys = np.empty(tot, np.int64)
    nk = 0
    idx = np.empty(tot, np.int64)
    for i in range(tot):
        if a_t[i] < 0:
            continue
        u = remap[a_s[i]]
        v = remap[a_d[i]]
        if u < 0 or v < 0:
            continue
        keys[nk] = u * n_terms + a_t[i]
        idx[nk] = i
        nk += 1
    keys = keys[:nk]
    idx = idx[:nk]
    o = np.argsort(keys, kind="mergesort")
    cap = max(16, 2 * nk)
    o_s = np.empty(cap, np.int32)
    o_t = np.empty(cap, np.int32)
    o_d = np.empty(cap, np.int32)
    no = 0
    acc = np.zeros(wm, np.uint64)
    g = 0
    while g < nk:
        k0 = keys[o[g]]
        for w in range(wm):
            acc[w] = 0
        h = g
        while h < nk and keys[o[h]] == k0:
            v = remap[a_d[idx[o[h]]]]
            for w in range(wm):
                acc[w] |= clos[v, w]
            h += 1
        u = k0 // n_terms
        t = k0 - u * n_terms
        for w in range(wm):
            bits = acc[w]
            while bits:
                low = bits & (~bits + one)
                bits ^= low
                x = w * 64 + _bit_index(low)
                o_s, o_t, o_d = _push3(o_s, o_t, o_d, no, u, t, x)
                no += 1
        g = h
    is_start = np.zeros(m, np.bool_)
    s0 = remap[start]
    for x in range(m):
        if (clos[s0, x >> 6] >> np.uint64(x & 63)) & one:
            is_start[x] = True
    is_final = np.zeros(m, np.bool_)
    is_final[remap[final]] = True
    return m, is_start, is_final, o_s[:no].copy(), o_t[:no].copy(), o_d[:no].copy()
