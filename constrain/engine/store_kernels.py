"""Numba kernels of the per-tokenizer mask store.  Arrays and scalars only."""

from __future__ import annotations

import numpy as np
from constrain._jit import njit


# exit kinds recorded by _walk
EXIT_SPLIT = 0  # a lexeme may end at this node; its children start the next lexeme (parser scan)
EXIT_FEED = 1  # the reading needs the reference parser from this node on (munch fallback, indenter)


# the subtree memo of _walk (_SubtreeMemo in store.py): per slot, its runs and its exits
M_RUN0, M_NRUN, M_EX0, M_NEX = 0, 1, 2, 3
# memo counters (int64[4]): slots, runs, exits used, keys in the table
MC_SLOTS, MC_RUNS, MC_EXITS, MC_KEYS = 0, 1, 2, 3


@njit
def _walk(table, ok, acc, byte, depth, subtree_end, tok_start, tok_ids, max_d,
          s0, roots, filters, longest, split_ok, lap_before_root, relex_start, root_relex,
          out_words, exit_node, exit_kind, exit_state,
          memo_aid, memo_min, mk, mslots, mruns, mex, mcount):  # pragma: no cover - compiled
    """One lexer reading walked over the subtrees of ``roots``: mark its INSIDE tokens and
    record where the parser must take over.

    The reading starts in lexer state ``s0`` at every root (each root's own bytes are already
    consumed).  A child whose byte keeps the reading alive with an allowed terminal still
    possible (``ok``) is INSIDE: its tokens are viable whatever follows, so their bits are set
    and the walk descends.  Otherwise the walk prunes the subtree, and records an exit when a
    lexeme boundary could make it viable:

    - ``EXIT_SPLIT`` at node ``p`` (state in ``exit_state``): a lexeme of the reading may end
      after ``p``'s bytes.  Under the exact policy (``longest=False``) every accepting node with
      children is one; under maximal munch only an accepting node with a child that kills the
      lexeme is (munch ends lexemes only there).  The caller scans the terminals with the
      parser once per (row, terminal set) and walks ``p``'s subtree from the next lexeme.
    - ``EXIT_FEED`` at node ``c``: under maximal munch, the reading died (or lost every allowed
      terminal) with its last accepting point further up than the parent, so the bytes after
      that point must be lexed again; the caller hands the node to the reference parser.
      With ``split_ok=False`` (indentation post-lexer) every boundary is an ``EXIT_FEED``.

    Under maximal munch a child whose state is alive and accepting but keeps no allowed
    terminal is pruned without an exit: munch cannot end the lexeme before an accepting point
    it has passed, and every terminal it can end as later is one of that state's (an
    identifier where only keywords are allowed: SQL's ``ON o`` + `` AA``).

    ``filters[r] >= 0`` (maximal munch only): at root ``r`` skip the children on which lexer
    state ``filters[r]`` stays alive, because munch does not end the previous lexeme there.
    ``max_d`` is the trie's greatest depth (sizes the per-depth stacks).
    ``lap_before_root``: the reading passed an accepting point before the root (munch).

    A munch reading that dies after its last accepting point is lexed again from that point;
    before recording such an ``EXIT_FEED`` the walk runs the bytes after that point from
    ``relex_start`` (the lexer state that starts every terminal; ``-1`` disables the check)
    and prunes the node when they die before any terminal could end (so ``1.`` + ``,`` in JSON
    costs nothing).  ``root_relex`` is that run over the bytes already committed before the
    root (``-1`` dead, ``-3`` unknown: an accepting point was passed).

    **Subtree memo** (exact policy only, ``memo_aid >= 0``): under the exact policy the walk of
    a subtree depends only on its node, the lexer state there and the flags ``ok`` / ``acc``
    (one set per allowed-terminal set, ``memo_aid``), not on the path above it.  So the
    subtrees of a root's children with at least ``memo_min`` nodes are recorded once (the
    INSIDE tokens as runs of ``tok_ids`` indices, nodes in DFS order being contiguous there,
    and the exits) and replayed by later walks that reach the same (node, state).  A JSON
    object's key position is the case: the lexer is in a known key's literal and in the
    "any other key" string at once, a different state at every byte, and nearly every token
    is INSIDE; after the first byte that leaves the known keys, every such walk is in the same
    "free string" state.  ``mk``: open-addressing table (``ht_get``) keyed ``(memo_aid,
    node, state)`` -> slot; ``mslots[slot]``: ``M_*`` (first run, runs, first exit, exits);
    ``mruns`` int32[:, 2] (start, end) into ``tok_ids``; ``mex`` int32[:, 3] (node, kind,
    state); ``mcount``: ``MC_*`` used counts, updated as each slot is complete (a slot is
    visible only then, so a walk that stops half-way leaves the memo consistent).  The
    caller leaves the table room for every child of every root; when a pool is full the walk
    records nothing more.

    Returns the number of exits written (``-1`` if the exit buffers overflowed) and the number
    of nodes visited.
    """
    st = np.empty(max_d + 2, np.int32)
    lap = np.empty(max_d + 2, np.int32)  # depth of the last accepting point; -1 none, -2 before root
    marked = np.full(max_d + 2, -1, np.int32)  # node recorded as a SPLIT exit at this depth
    nd = np.empty(max_d + 2, np.int32)  # node on the current path at each depth
    n_exit = 0
    cap = exit_node.shape[0]
    visited = 0
    memo = memo_aid >= 0 and not longest and split_ok
    rec = -1  # the node whose subtree is being recorded (-1: none)
    rec_end = 0
    rec_run0 = 0  # its first run in mruns, its first exit in exit_node
    rec_ex0 = 0
    n_runs = mcount[MC_RUNS]
    run_end = -1  # tok_ids index where the current run ends
    for r in range(roots.shape[0]):
        root = roots[r]
        d0 = depth[root]
        st[d0] = s0
        if longest and acc[s0]:
            lap[d0] = d0
        elif lap_before_root:
            lap[d0] = -2
        else:
            lap[d0] = -1
        marked[d0] = -1
        nd[d0] = root
        f = filters[r]
        end = subtree_end[root]
        i = root + 1
        while True:
            if rec >= 0 and i >= rec_end:  # the recorded subtree is done: its slot
                n_runs = _memo_close(rec, st[depth[rec]], memo_aid, rec_run0, n_runs, rec_ex0, n_exit,
                                     exit_node, exit_kind, exit_state, mk, mslots, mex, mcount)
                rec = -1
            if i >= end:
                break
            visited += 1
            d = depth[i]
            p = st[d - 1]
            b = byte[i]
            if d == d0 + 1 and f >= 0 and table[f, b] >= 0:
                i = subtree_end[i]
                continue
            nxt = table[p, b]
            if nxt >= 0 and ok[nxt]:
                if memo and d == d0 + 1 and subtree_end[i] - i >= memo_min:
                    slot = ht_get(mk, memo_aid, i, nxt)
                    if slot >= 0:  # replayed: its runs and exits, and past its subtree
                        for q in range(mslots[slot, M_RUN0], mslots[slot, M_RUN0] + mslots[slot, M_NRUN]):
                            _mark(out_words, tok_ids, mruns[q, 0], mruns[q, 1])
                        x0 = mslots[slot, M_EX0]
                        nx = mslots[slot, M_NEX]
                        if n_exit + nx > cap:
                            return -1, visited
                        for q in range(nx):
                            exit_node[n_exit] = mex[x0 + q, 0]
                            exit_kind[n_exit] = mex[x0 + q, 1]
                            exit_state[n_exit] = mex[x0 + q, 2]
                            n_exit += 1
                        i = subtree_end[i]
                        continue
                    if mcount[MC_SLOTS] < mslots.shape[0]:
                        rec = i
                        rec_end = subtree_end[i]
                        rec_run0 = n_runs
                        rec_ex0 = n_exit
                        run_end = -1
                st[d] = nxt
                if longest:
                    lap[d] = d if acc[nxt] else lap[d - 1]
                marked[d] = -1
                nd[d] = i
                j0 = tok_start[i]
                j1 = tok_start[i + 1]
                _mark(out_words, tok_ids, j0, j1)
                if rec >= 0 and j1 > j0:
                    if j0 == run_end:
                        mruns[n_runs - 1, 1] = j1
                        run_end = j1
                    elif n_runs < mruns.shape[0]:
                        mruns[n_runs, 0] = j0
                        mruns[n_runs, 1] = j1
                        n_runs += 1
                        run_end = j1
                    else:  # the pool is full: this subtree is not recorded
                        rec = -1
                        n_runs = rec_run0
                if not longest and acc[nxt] and subtree_end[i] > i + 1:
                    if n_exit >= cap:
                        return -1, visited
                    exit_node[n_exit] = i
                    exit_kind[n_exit] = EXIT_SPLIT if split_ok else EXIT_FEED
                    exit_state[n_exit] = nxt
                    n_exit += 1
                i += 1
                continue
            if longest:
                if nxt >= 0 and acc[nxt]:
                    # alive and accepting, but no allowed terminal left: munch ends this lexeme
                    # here or later, never before (it passed this accepting point), and every
                    # terminal it can end as is one of this state's; none is allowed: dead
                    i = subtree_end[i]
                    continue
                lp = lap[d - 1]
                if lp == d - 1 and nxt < 0 and split_ok:
                    parent = nd[d - 1]
                    if marked[d - 1] != parent:
                        if n_exit >= cap:
                            return -1, visited
                        marked[d - 1] = parent
                        exit_node[n_exit] = parent
                        exit_kind[n_exit] = EXIT_SPLIT
                        exit_state[n_exit] = p
                        n_exit += 1
                elif lp != -1:
                    if nxt < 0 and relex_start >= 0:
                        # dead reading: it is relexed from its last accepting point
                        if lp == -2:
                            r = root_relex
                            j = d0 + 1
                        else:
                            r = relex_start
                            j = lp + 1
                        while r >= 0 and j <= d:
                            r = table[r, byte[nd[j]] if j < d else b]
                            if r >= 0 and acc[r]:
                                r = -3
                            j += 1
                        if r == -1:
                            i = subtree_end[i]
                            continue
                    if n_exit >= cap:
                        return -1, visited
                    exit_node[n_exit] = i
                    exit_kind[n_exit] = EXIT_FEED
                    exit_state[n_exit] = p
                    n_exit += 1
            i = subtree_end[i]
    return n_exit, visited


@njit(inline="always")
def _mark(out_words, tok_ids, j0, j1):  # pragma: no cover - compiled
    """Set the bits of tokens ``tok_ids[j0:j1]``."""
    for j in range(j0, j1):
        t = tok_ids[j]
        out_words[t >> 5] |= np.uint32(1) << np.uint32(t & 31)


@njit
def _memo_close(node, state, aid, run0, n_runs, ex0, n_exit, exit_node, exit_kind, exit_state, mk, mslots,
                mex, mcount):  # pragma: no cover - compiled
    """Record the subtree of ``node`` (reached in lexer ``state``) that :func:`_walk` just
    walked: its runs ``run0 .. n_runs`` and its exits ``ex0 .. n_exit``, as a new slot
    visible from here on.  Returns the runs in use (``run0`` when the exit pool is full and
    nothing is recorded)."""
    nx = n_exit - ex0
    e0 = mcount[MC_EXITS]
    if e0 + nx > mex.shape[0] or 2 * (mcount[MC_KEYS] + 1) > mk.shape[0]:
        return run0
    for q in range(nx):
        mex[e0 + q, 0] = exit_node[ex0 + q]
        mex[e0 + q, 1] = exit_kind[ex0 + q]
        mex[e0 + q, 2] = exit_state[ex0 + q]
    slot = mcount[MC_SLOTS]
    mslots[slot, M_RUN0] = run0
    mslots[slot, M_NRUN] = n_runs - run0
    mslots[slot, M_EX0] = e0
    mslots[slot, M_NEX] = nx
    mcount[MC_SLOTS] = slot + 1
    mcount[MC_RUNS] = n_runs
    mcount[MC_EXITS] = e0 + nx
    mcount[MC_KEYS] += ht_put(mk, aid, node, state, slot)
    return n_runs


@njit
def _or_words(out, src):  # pragma: no cover - compiled
    for i in range(src.shape[0]):
        out[i] |= src[i]


@njit
def _or_ids(out, ids):  # pragma: no cover - compiled
    _mark(out, ids, 0, ids.shape[0])


@njit
def sparse_ids(words, cap):  # pragma: no cover - compiled
    """The token ids set in ``words`` (uint32 bitmask words), ascending, as ``int32[n]``, or
    ``int32[0]`` and ``-1`` when there are more than ``cap``: ``(ids, n)``.  One call where
    numpy's ``flatnonzero`` / ``unpackbits`` / ``nonzero`` were ~8 µs for an entry of a few
    tokens (a cold walk builds hundreds)."""
    ids = np.empty(cap, np.int32)
    n = 0
    for j in range(words.shape[0]):
        w = words[j]
        if w == 0:
            continue
        for b in range(32):
            if (w >> np.uint32(b)) & np.uint32(1):
                if n == cap:
                    return ids[:0], -1
                ids[n] = j * 32 + b
                n += 1
    return ids[:n].copy(), n


# the flat index (_FlatIndex in store.py): per entry id a row of ``ent``
FLAT_ALIVE = 1  # ent[e, E_FLAGS]: registered and not evicted
FLAT_FEEDS = 2  # ent[e, E_FLAGS]: has reference-parser feeds: the caller runs them
E_FLAGS, E_G_START, E_G_COUNT, E_SLOT, E_S_START, E_S_LEN = 0, 1, 2, 3, 4, 5
# ent[e, E_SPAN]: entries its last lean walk applied (sizes the next one's buffers); -1 not
# known yet, -2 its walks always need Python (feeds, a NEWLINE outside brackets)
E_SPAN = 6
E_COLS = 7
# grp[g, :]: terminal-set id, only ignored terminals end there, then a one-row cache of the
# group's first scan (row sig -> sig after, -1 empty) and first child (allowed id -> entry)
G_TID, G_IGN, G_SIG, G_NSIG, G_AID, G_CHILD, G_PL = 0, 1, 2, 3, 4, 5, 6
G_COLS = 7
# grp[g, G_PL]: what an indentation post-lexer makes of the group's lexeme (always PL_PLAIN
# without one); the bracket depth a walk carries is ``paren``
PL_PLAIN = 0  # scanned as it is
PL_OPEN = 1  # an opening bracket: paren + 1
PL_CLOSE = 2  # a closing bracket: paren - 1, refused at depth 0
PL_NL = 3  # a NEWLINE: inside brackets the row is unchanged (G_IGN is set); outside, the
#            indentation is in the text: the caller feeds the next lexemes to the parser
PL_REFUSE = 4  # still ambiguous after the token-over-ignored tie break: the parser refuses it
# tags of the flat index's one memo table (keys (tag, a, b) -> value)
H_SCAN = 0  # (row sig, terminal-set id) -> row sig after the scan (-1: refused)
H_CHILD = 2  # (group id, allowed-set id) -> child entry (-1: no lexeme can start)
H_NLA = 3  # (allowed-set id, 0) -> id of that set with the NEWLINE terminal (inside brackets)
H_ROOT = 4  # (lexer state, allowed-set id) -> the root entry at the trie's root (exact lexing)
# (a row's allowed-set id is not in the table: row sigs are dense ints, so it is an array
# indexed by sig, ``sig_aid``, one load where a probe of the table costs two cache misses)
H_ABSENT = -2  # what ht_get returns for a key not in the table


@njit(inline="always")
def _mix(a, b, c):  # pragma: no cover - compiled
    h = np.uint64(a) * np.uint64(0x9E3779B97F4A7C15)
    h ^= np.uint64(b) * np.uint64(0xC2B2AE3D27D4EB4F) + (h >> np.uint64(29))
    h ^= np.uint64(c) * np.uint64(0x165667B19E3779F9) + (h >> np.uint64(31))
    return h ^ (h >> np.uint64(32))


@njit
def ht_get(hk, t, a, b):  # pragma: no cover - compiled
    """Value of key ``(t, a, b)`` in the open-addressing table ``hk`` (int64[cap, 4]: key
    ``t, a, b`` and value in one row, so a probe touches one cache line; row ``[-1, ...]``
    empty; cap a power of two); ``H_ABSENT`` if none."""
    m = np.uint64(hk.shape[0] - 1)
    i = np.int64(_mix(t, a, b) & m)
    while True:
        k = hk[i, 0]
        if k == -1:
            return H_ABSENT
        if k == t and hk[i, 1] == a and hk[i, 2] == b:
            return hk[i, 3]
        i = np.int64((np.uint64(i) + np.uint64(1)) & m)


@njit
def ht_put(hk, t, a, b, v):  # pragma: no cover - compiled
    """Set ``(t, a, b) -> v``; 1 if the key is new.  The caller keeps the table at most half
    full (:func:`ht_grow`), so a probe always ends."""
    m = np.uint64(hk.shape[0] - 1)
    i = np.int64(_mix(t, a, b) & m)
    while True:
        k = hk[i, 0]
        if k == -1:
            hk[i, 0] = t
            hk[i, 1] = a
            hk[i, 2] = b
            hk[i, 3] = v
            return 1
        if k == t and hk[i, 1] == a and hk[i, 2] == b:
            hk[i, 3] = v
            return 0
        i = np.int64((np.uint64(i) + np.uint64(1)) & m)


@njit
def ht_grow(hk):  # pragma: no cover - compiled
    """The table rehashed into twice the capacity."""
    n = hk.shape[0]
    k2 = np.full((2 * n, 4), -1, np.int64)
    for i in range(n):
        if hk[i, 0] != -1:
            ht_put(k2, hk[i, 0], hk[i, 1], hk[i, 2], hk[i, 3])
    return k2


@njit(inline="always")
def _done_add(dk, e, s, p):  # pragma: no cover - compiled
    """Add ``(e, s, p)`` to the set ``dk`` (int64[cap, 3], ``-1`` empty); 1 if it was new."""
    m = np.uint64(dk.shape[0] - 1)
    i = np.int64(_mix(e, s, p) & m)
    while True:
        k = dk[i, 0]
        if k == -1:
            dk[i, 0] = e
            dk[i, 1] = s
            dk[i, 2] = p
            return 1
        if k == e and dk[i, 1] == s and dk[i, 2] == p:
            return 0
        i = np.int64((np.uint64(i) + np.uint64(1)) & m)


@njit
def _done_grow(dk):  # pragma: no cover - compiled
    n = dk.shape[0]
    d2 = np.full((2 * n, 3), -1, np.int64)
    for i in range(n):
        if dk[i, 0] != -1:
            _done_add(d2, dk[i, 0], dk[i, 1], dk[i, 2])
    return d2


@njit
def apply_flat(work, out, done, n_done, budget, ent, grp, wpool, spool, hk, sig_aid):  # pragma: no cover - compiled
    """The warm part of a mask walk (``_MaskWalk._apply``) over the store's flat index
    (``_FlatIndex`` in store.py), arrays only (typed containers cost ~5 µs a call to unbox
    and ~2 s of JIT per process that numba's cache does not keep).

    Per entry id (its serial) a row of ``ent``: flags, split groups ``g_start .. + g_count``
    (rows of ``grp``: terminal-set id, only ignored terminals end there, the ``G_*`` cache
    of its first scan and child, which the kernel fills: it runs under the caller's lock, and
    the post-lexer class ``G_PL``), the row of ``wpool`` holding its dense INSIDE words (or
    -1) and its INSIDE token ids ``spool[s_start : s_start + s_len]`` when few.  Memo table
    ``hk`` (see the ``H_*`` tags): scans, child entries and allowed sets with the NEWLINE
    terminal added; ``sig_aid[sig]``: the allowed-set id of a row (``H_ABSENT`` if not
    recorded).

    ``work``: int64[n, 4] rows ``(entry, row sig, allowed-set id, paren)`` to apply, ``paren``
    the bracket depth of an indentation post-lexer (0 without one).  Each applied ``(entry,
    sig, paren)`` ORs the entry's INSIDE tokens into ``out`` and follows its split groups:
    the post-lexer's verdict on the group's lexeme (``PL_*``: the new depth, or refused), the
    scan ``(sig, terminal-set id) -> sig'``, the allowed set of ``sig'`` (with the NEWLINE
    terminal inside brackets) and the child entry ``(group, allowed id)``.  Whatever the
    table does not hold yet is returned in ``pend`` as ``(entry, sig, allowed id, group,
    paren)`` for the caller to resolve in Python (it computes the scan or builds the child,
    records it, and calls again with the children; a NEWLINE outside brackets, which reads the
    indentation, is always the caller's), or as ``(entry, sig, allowed id, -1, paren)`` for
    an entry evicted since it was found (the caller holds it and applies it itself); entries
    with feeds are returned in ``feeds`` as ``(entry, sig, allowed id)`` (the caller checks
    and runs them in that context).

    ``done`` (int64[cap, 3], a set of ``(entry, sig, paren)``; pass a ``(0, 3)`` array on the
    first call of a mask) and ``n_done`` (int64[1], its size) persist across the calls of one
    mask; the set, grown when needed, is returned.  The caller holds the index's lock (the
    tables change only under it).  Returns ``(applied, pend, feeds, done)``; ``applied >
    budget`` means the work cap was hit (the rest is not applied).

    The loop itself is :func:`_apply_rows`, over arrays that do not change while it runs: it
    returns to be handed a bigger one when one would overflow.  A loop that reassigns an array
    (``stack = _grow2d(stack)``) keeps its reference counts and reloads its pointers every
    step; written this way the kernel took 6.2 µs a call on cfg_arith's masks, not 14.3
    (~140 rows a call).
    """
    if done.shape[0] == 0:
        done = np.full((256, 3), -1, np.int64)
    stack = _stack_of(work, max(64, 2 * work.shape[0]))
    pend = np.empty((16, 5), np.int64)
    feeds = np.empty((16, 3), np.int64)
    state = np.zeros(4, np.int64)  # stack rows, applied, pend rows, feed rows
    state[0] = work.shape[0]
    while True:
        need = _apply_rows(state, stack, done, n_done, pend, feeds, budget, out, ent, grp, wpool, spool, hk, sig_aid)
        if need == _FULL_NONE:
            break
        if need == _FULL_STACK:
            stack = _grow2d(stack)
        elif need == _FULL_DONE:
            done = _done_grow(done)
        elif need == _FULL_PEND:
            pend = _grow2d(pend)
        else:
            feeds = _grow2d(feeds)
    return state[1], pend[:state[2]], feeds[:state[3]], done


# what _apply_rows stopped for: nothing (all applied, or the budget spent), or the array to grow
_FULL_NONE, _FULL_STACK, _FULL_DONE, _FULL_PEND, _FULL_FEEDS = 0, 1, 2, 3, 4


@njit
def _apply_rows(state, stack, done, n_done, pend, feeds, budget, out, ent, grp, wpool, spool, hk,
                sig_aid):  # pragma: no cover - compiled
    """:func:`apply_flat`'s loop: pops and applies rows of ``stack`` until it is empty (or
    ``budget`` is spent) and returns ``_FULL_NONE``, or stops before a row that could overflow
    an array and returns which (``_FULL_*``) for the caller to grow and call again; ``state``
    (stack rows, applied, pend rows, feed rows) and ``n_done`` carry the counts across calls.
    A row needs room for its entry's groups on the stack and in ``pend``, one feed row and one
    set slot (the set kept at most half full)."""
    sp = state[0]
    applied = state[1]
    n_pend = state[2]
    n_feeds = state[3]
    nd = n_done[0]
    nw = out.shape[0]
    need = _FULL_NONE
    while sp > 0:
        # (every id has a row: entries are registered before they can be found; an evicted
        # entry's row keeps its count)
        k = ent[stack[sp - 1, 0], E_G_COUNT]
        if sp - 1 + k > stack.shape[0]:
            need = _FULL_STACK
            break
        if 2 * (nd + 1) > done.shape[0]:
            need = _FULL_DONE
            break
        if n_pend + k + 1 > pend.shape[0]:
            need = _FULL_PEND
            break
        if n_feeds == feeds.shape[0]:
            need = _FULL_FEEDS
            break
        sp -= 1
        eid = stack[sp, 0]
        sig = stack[sp, 1]
        a = stack[sp, 2]
        paren = stack[sp, 3]
        if not _done_add(done, eid, sig, paren):
            continue
        nd += 1
        flags = ent[eid, E_FLAGS]
        if flags & FLAT_ALIVE == 0:  # (evicted: the caller applies the object it holds)
            _pend_row(pend, n_pend, eid, sig, a, -1, paren)
            n_pend += 1
            continue
        applied += 1
        if applied > budget:
            break
        slot = ent[eid, E_SLOT]
        if slot >= 0:
            for j in range(nw):
                out[j] |= wpool[slot, j]
        s0 = ent[eid, E_S_START]
        _mark(out, spool, s0, s0 + ent[eid, E_S_LEN])
        if flags & FLAT_FEEDS:
            feeds[n_feeds, 0] = eid
            feeds[n_feeds, 1] = sig
            feeds[n_feeds, 2] = a
            n_feeds += 1
        g0 = ent[eid, E_G_START]
        for gid in range(g0, g0 + ent[eid, E_G_COUNT]):
            p2 = paren
            pl = grp[gid, G_PL]
            if pl != PL_PLAIN:  # (an indentation post-lexer's grammar only)
                if pl == PL_REFUSE:
                    continue
                if pl == PL_OPEN:
                    p2 = paren + 1
                elif pl == PL_CLOSE:
                    if paren == 0:
                        continue
                    p2 = paren - 1
                elif paren == 0:  # PL_NL outside brackets: the caller feeds the parser
                    _pend_row(pend, n_pend, eid, sig, a, gid, paren)
                    n_pend += 1
                    continue
            # each group row caches the first scan and child it was asked for (G_SIG..G_CHILD):
            # a warm walk mostly reads those from the row it reads anyway, not the table
            if grp[gid, G_IGN]:
                nsig = sig
                a2 = a
            else:
                if grp[gid, G_SIG] == sig and sig >= 0:  # (-1: an empty cache, never a row)
                    nsig = grp[gid, G_NSIG]
                else:
                    nsig = ht_get(hk, H_SCAN, sig, grp[gid, G_TID])
                    if nsig != H_ABSENT and grp[gid, G_SIG] == -1:
                        grp[gid, G_SIG] = sig
                        grp[gid, G_NSIG] = nsig
                if nsig == -1:
                    continue
                a2 = H_ABSENT if nsig == H_ABSENT or nsig >= sig_aid.shape[0] else sig_aid[nsig]
                if p2 > 0 and a2 != H_ABSENT:  # inside brackets a NEWLINE is allowed too
                    a2 = ht_get(hk, H_NLA, a2, 0)
            if a2 == H_ABSENT:
                c = H_ABSENT
            elif grp[gid, G_AID] == a2:
                c = grp[gid, G_CHILD]
            else:
                c = ht_get(hk, H_CHILD, gid, a2)
                if c != H_ABSENT and grp[gid, G_AID] == -1:
                    grp[gid, G_AID] = a2
                    grp[gid, G_CHILD] = c
            if c == -1:
                continue
            if c == H_ABSENT or ent[c, E_FLAGS] & FLAT_ALIVE == 0:
                _pend_row(pend, n_pend, eid, sig, a, gid, paren)
                n_pend += 1
                continue
            stack[sp, 0] = c
            stack[sp, 1] = nsig
            stack[sp, 2] = a2
            stack[sp, 3] = p2
            sp += 1
    state[0] = sp
    state[1] = applied
    state[2] = n_pend
    state[3] = n_feeds
    n_done[0] = nd
    return need


ONE_MAX_ROWS = 1024  # apply_one's buffers (a longer walk goes to apply_flat)


@njit
def apply_one(eid, sig, aid, paren, rows, budget, out, ent, grp, wpool, spool, hk, sig_aid):  # pragma: no cover - compiled
    """:func:`apply_flat` for one row ``(entry, sig, allowed id, paren)`` whose walk the tables
    already hold whole: the number of entries applied; else, with ``out`` possibly holding
    part of the walk (which the caller's full walk ORs again), ``-1`` when something was not
    recorded yet, an entry was evicted or the walk is longer than ``rows`` rows, and ``-2``
    when the walk always needs the caller (reference-parser feeds, a NEWLINE outside
    brackets).

    The short walks of a mask (a JSON Schema key position: the entry and two or three
    children) went to Python because :func:`apply_flat`'s fixed cost (its work array, four
    growable buffers, three arrays returned and read back) was more than their whole walk;
    this call takes scalars, allocates small fixed buffers and returns one int.  ``rows``:
    their size, the most rows the walk may apply (the caller's guess from the entry's last
    walk, rounded up to a power of two, the size of the ``done`` set's table)."""
    stack = np.empty((_pow2(rows), 4), np.int64)
    stack[0, 0] = eid
    stack[0, 1] = sig
    stack[0, 2] = aid
    stack[0, 3] = paren
    return _apply_lean(stack, 1, budget, out, ent, grp, wpool, spool, hk, sig_aid)


@njit
def apply_two(eid, sig, aid, paren, eid2, sig2, aid2, paren2, rows, budget, out, ent, grp, wpool, spool, hk,
              sig_aid):  # pragma: no cover - compiled
    """:func:`apply_one` for two rows (a position with two lexer readings: 40-60 % of the warm
    misses of cfg_json and schema_medium), as scalars: the array :func:`apply_many` takes cost
    about as much to make as the walk."""
    stack = np.empty((_pow2(max(rows, 2)), 4), np.int64)
    stack[0, 0] = eid
    stack[0, 1] = sig
    stack[0, 2] = aid
    stack[0, 3] = paren
    stack[1, 0] = eid2
    stack[1, 1] = sig2
    stack[1, 2] = aid2
    stack[1, 3] = paren2
    return _apply_lean(stack, 2, budget, out, ent, grp, wpool, spool, hk, sig_aid)


@njit
def apply_many(work, rows, budget, out, ent, grp, wpool, spool, hk, sig_aid):  # pragma: no cover - compiled
    """:func:`apply_one` for the rows of ``work`` (int64[n, 4], a position with several
    lexer readings) in one call; ``rows`` counts them all."""
    stack = _stack_of(work, _pow2(max(rows, work.shape[0])))
    return _apply_lean(stack, work.shape[0], budget, out, ent, grp, wpool, spool, hk, sig_aid)


@njit(inline="always")
def _stack_of(work, size):  # pragma: no cover - compiled
    """A work stack of ``size`` rows whose first rows are ``work``'s."""
    stack = np.empty((size, 4), np.int64)
    for i in range(work.shape[0]):
        for c in range(4):
            stack[i, c] = work[i, c]
    return stack


@njit(inline="always")
def _pow2(n):  # pragma: no cover - compiled
    m = 16
    while m < n:
        m *= 2
    return m


@njit
def _apply_lean(stack, n0, budget, out, ent, grp, wpool, spool, hk, sig_aid):  # pragma: no cover - compiled
    """:func:`apply_one`'s walk from the first ``n0`` rows of ``stack`` (its size a power of
    two): the count applied, or ``-1`` / ``-2``."""
    rows = stack.shape[0]
    done = np.full((2 * rows, 3), -1, np.int64)
    n_done = np.zeros(1, np.int64)
    pend = np.empty((rows, 5), np.int64)  # (room for a row's groups; any row written fails the call)
    feeds = np.empty((1, 3), np.int64)
    state = np.zeros(4, np.int64)
    state[0] = n0
    need = _apply_rows(state, stack, done, n_done, pend, feeds, budget, out, ent, grp, wpool, spool, hk, sig_aid)
    if state[3] != 0:
        return -2
    for r in range(state[2]):
        if pend[r, 3] >= 0 and grp[pend[r, 3], G_PL] == PL_NL:
            return -2
    if need != _FULL_NONE:
        return -3  # (a buffer was too small: the walk is longer than the caller's guess)
    if state[2] != 0:
        return -1
    return state[1]


@njit
def fill_lean(sid, sig, sid2, sig2, budget, out, ent, grp, wpool, spool, hk, sig_aid):  # pragma: no cover - compiled
    """The whole lean miss of a position in one call (``TokenStore.fill``, exact lexing, no
    post-lexer): its one or two readings (``sid2 < 0``: one), each a lexer state and its row's
    structural id, give their root entries through the tables (the row's allowed-set id
    ``sig_aid[sig]``, then ``(H_ROOT, state, allowed id)``), and their walks are applied into
    ``out`` (zeroed here) as :func:`apply_one` / :func:`apply_two` would: the count applied,
    or ``-1`` when the tables lack something (an id, a root, the entry's span, a scan or a
    child), ``-2`` / ``-3`` as :func:`_apply_lean`.  One entry's span is recorded in its row
    (``E_SPAN``); a failed pair's spans are forgotten (the Python path records them again).
    Before, the same work was ~3 µs of Python around the kernel: the readings, the root
    entries' dict lookups, their eligibility, the rows."""
    n0 = 1 if sid2 < 0 else 2
    span = 2
    eid = eid2 = aid = aid2 = -1
    for i in range(n0):
        s_ = sid if i == 0 else sid2
        g_ = sig if i == 0 else sig2
        if g_ < 0 or g_ >= sig_aid.shape[0]:
            return -1
        a = sig_aid[g_]
        if a == H_ABSENT:
            return -1
        e = ht_get(hk, H_ROOT, s_, a)
        if e == H_ABSENT or ent[e, E_FLAGS] & FLAT_ALIVE == 0:
            return -1
        sp = ent[e, E_SPAN]
        if sp < 0:
            return -1
        span += 2 * sp
        if i == 0:
            eid = e
            aid = a
        else:
            eid2 = e
            aid2 = a
    out[:] = 0
    if n0 == 1:
        n = apply_one(eid, sig, aid, 0, span, budget, out, ent, grp, wpool, spool, hk, sig_aid)
        if n >= 0 or n == -2:
            ent[eid, E_SPAN] = n
        elif n == -3:
            ent[eid, E_SPAN] = -1  # (the Python path learns its new length)
        return n
    n = apply_two(eid, sig, aid, 0, eid2, sig2, aid2, 0, span, budget, out, ent, grp, wpool, spool, hk, sig_aid)
    if n == -2 or n == -3:  # (which of the two is not known: the Python path finds out)
        ent[eid, E_SPAN] = -1
        ent[eid2, E_SPAN] = -1
    return n


@njit(inline="always")
def _pend_row(pend, n, eid, sig, a, gid, paren):  # pragma: no cover - compiled
    """Write row ``n`` of ``apply_flat``'s ``pend`` (room made by the caller)."""
    pend[n, 0] = eid
    pend[n, 1] = sig
    pend[n, 2] = a
    pend[n, 3] = gid
    pend[n, 4] = paren


@njit
def _grow2d(a):  # pragma: no cover - compiled
    s = np.empty((2 * a.shape[0], a.shape[1]), a.dtype)
    s[: a.shape[0]] = a
    return s
