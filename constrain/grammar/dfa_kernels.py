"""Compiled loops of the byte-DFA layer (:mod:`constrain.grammar.dfa`): arrays in, arrays out."""

from __future__ import annotations

import numpy as np

from constrain._jit import njit


@njit
def live_states(trans, accept):  # pragma: no cover - compiled
    """``bool[n]``: the states of ``trans`` (``int32[n, k]``, ``-1`` the dead sink) from which
    an accepting state (``accept``, ``bool[n]``) can be reached.

    Backward search over the predecessor lists, built as one CSR array (a run of equal
    targets in a row, a byte range, is one edge).  A JSON Schema compile asks this of every
    automaton its string algebra makes; in Python the edge loop was ~40 % of the compile
    (schema_simple: 91,000 edges over 59 automata)."""
    n, k = trans.shape
    count = np.zeros(n + 1, np.int64)
    for s in range(n):
        prev = -1
        for b in range(k):
            t = trans[s, b]
            if t >= 0 and t != prev:
                count[t + 1] += 1
            prev = t
    for s in range(n):
        count[s + 1] += count[s]
    fill = count[:n].copy()
    preds = np.empty(count[n], np.int64)
    for s in range(n):
        prev = -1
        for b in range(k):
            t = trans[s, b]
            if t >= 0 and t != prev:
                preds[fill[t]] = s
                fill[t] += 1
            prev = t
    live = accept.copy()
    stack = np.empty(n, np.int64)
    sp = 0
    for s in range(n):
        if live[s]:
            stack[sp] = s
            sp += 1
    while sp > 0:
        sp -= 1
        t = stack[sp]
        for j in range(count[t], count[t + 1]):
            s = preds[j]
            if not live[s]:
                live[s] = True
                stack[sp] = s
                sp += 1
    return live


@njit
def hopcroft_blocks(ct, initial):  # pragma: no cover - compiled
    """Hopcroft partition refinement of a trimmed DFA given as class-level rows ``ct``
    (``int64[n, k]``, ``-1`` the implicit dead sink, every state live); ``initial``
    (``int64[n]``) a starting partition that refines accepting / non-accepting and is
    coarser than the result.  Returns a block id per state (numbered in no useful order: the
    caller renumbers canonically).  Checked against Hopcroft over Python sets, the library's
    version before this one (tests/grammar/test_regex_dfa.py).

    Arrays only: the partition is one permutation of the states, each block a range of it
    (``first[b] .. end[b]``), and a split moves the states a splitter marks to the front of
    their block, which becomes the new block (Valmari and Lehtinen's refinable partition).
    The worklist holds whole blocks and a popped block splits by its preimage under every
    class in turn (its members are copied first: it may split itself).  The sink is never a
    splitter (all initial blocks but one would do; the sink's preimages are the largest).  A
    JSON Schema compile minimises ~100 small automata; in Python this loop was ~20 % of it,
    and large automata took a vectorised Moore refinement first."""
    n, k = ct.shape
    # preimages, per (class, target): sources inv[inv_start[c * n + t] : inv_start[c * n + t + 1]]
    inv_start = np.zeros(k * n + 1, np.int64)
    for s in range(n):
        for c in range(k):
            t = ct[s, c]
            if t >= 0:
                inv_start[c * n + t + 1] += 1
    for i in range(k * n):
        inv_start[i + 1] += inv_start[i]
    fill = inv_start[: k * n].copy()
    inv = np.empty(inv_start[k * n], np.int64)
    for s in range(n):
        for c in range(k):
            t = ct[s, c]
            if t >= 0:
                inv[fill[c * n + t]] = s
                fill[c * n + t] += 1
    # the initial partition, blocks in order of their initial id
    order = np.argsort(initial, kind="mergesort")
    elems = np.empty(n, np.int64)
    loc = np.empty(n, np.int64)
    blk = np.empty(n, np.int64)
    first = np.empty(n + 1, np.int64)
    end = np.empty(n + 1, np.int64)
    nb = 0
    for i in range(n):
        s = order[i]
        if i == 0 or initial[s] != initial[order[i - 1]]:
            first[nb] = i
            nb += 1
        end[nb - 1] = i + 1
        elems[i] = s
        loc[s] = i
        blk[s] = nb - 1
    marked = np.zeros(n + 1, np.int64)
    in_work = np.zeros(n + 1, np.bool_)
    work = np.empty(n + 1, np.int64)
    wn = 0
    for b in range(nb):
        work[wn] = b
        wn += 1
        in_work[b] = True
    members = np.empty(n, np.int64)
    touched = np.empty(n, np.int64)
    while wn > 0:
        wn -= 1
        a = work[wn]
        in_work[a] = False
        m = 0
        for i in range(first[a], end[a]):
            members[m] = elems[i]
            m += 1
        for c in range(k):
            nt = 0
            for i in range(m):
                t = members[i]
                for j in range(inv_start[c * n + t], inv_start[c * n + t + 1]):
                    s = inv[j]  # (one c-successor per state: each s comes once per class)
                    b = blk[s]
                    if marked[b] == 0:
                        touched[nt] = b
                        nt += 1
                    # swap s to the end of its block's marked front
                    p = first[b] + marked[b]
                    q = loc[s]
                    o = elems[p]
                    elems[p] = s
                    loc[s] = p
                    elems[q] = o
                    loc[o] = q
                    marked[b] += 1
            for i in range(nt):
                b = touched[i]
                mk = marked[b]
                marked[b] = 0
                if mk == end[b] - first[b]:
                    continue
                new = nb
                nb += 1
                first[new] = first[b]
                end[new] = first[b] + mk
                first[b] += mk
                for p in range(first[new], end[new]):
                    blk[elems[p]] = new
                if in_work[b] or mk <= end[b] - first[b]:
                    work[wn] = new
                    in_work[new] = True
                else:
                    work[wn] = b
                    in_work[b] = True
                wn += 1
    return blk


@njit
def minimal_rows(ct, accept, live):  # pragma: no cover - compiled
    """The canonical minimal automaton of class-level rows ``ct`` (``int32[n, k]``, ``-1``
    dead, start state 0, which must be live): states unreachable from 0 or dead dropped,
    equivalent ones merged (:func:`hopcroft_blocks`), the rest numbered breadth first from
    the start, classes in order.  Returns ``(rows int32[m, k], accept bool[m])``.

    What ``ByteDFA.minimize`` does around Hopcroft, compiled: in Python its reachability,
    trimming and renumbering loops were ~15 % of a JSON Schema compile (185 automata on
    schema_medium)."""
    n, k = ct.shape
    reach = np.zeros(n, np.bool_)
    reach[reachable_from(ct, 0)] = True
    remap, m = kept_ids(reach, live)
    trimmed = np.empty((m, k), np.int64)
    acc = np.empty(m, np.int64)
    for s in range(n):
        i = remap[s]
        if i < 0:
            continue
        acc[i] = 1 if accept[s] else 0
        for c in range(k):
            t = ct[s, c]
            trimmed[i, c] = remap[t] if t >= 0 else -1
    block = hopcroft_blocks(trimmed, acc)
    nb = 0
    for s in range(m):
        nb = max(nb, block[s] + 1)
    rep = np.full(nb, -1, np.int64)
    for s in range(m):
        if rep[block[s]] < 0:
            rep[block[s]] = s
    new_id = np.full(nb, -1, np.int64)
    order = np.empty(nb, np.int64)
    new_id[block[0]] = 0
    order[0] = block[0]
    cnt = 1
    rows = np.empty((nb, k), np.int32)
    i = 0
    while i < cnt:
        r = rep[order[i]]
        for c in range(k):
            t = trimmed[r, c]
            if t < 0:
                rows[i, c] = -1
                continue
            tb = block[t]
            if new_id[tb] < 0:
                new_id[tb] = cnt
                order[cnt] = tb
                cnt += 1
            rows[i, c] = new_id[tb]
        i += 1
    new_acc = np.empty(cnt, np.bool_)
    for i in range(cnt):
        new_acc[i] = acc[rep[order[i]]] != 0
    return rows[:cnt], new_acc


@njit
def byte_classes_of(trans):  # pragma: no cover - compiled
    """``(int32[256], int64[k])``: a class id per byte, bytes with equal columns of ``trans``
    (``int32[n, 256]``) in one class, classes numbered by their smallest byte; and that
    smallest byte of each class.

    Each byte's column is compared with the first byte of each class so far whose column
    hash matches (hash first: most bytes differ from most classes in their first rows).  The
    Python version keyed a dict by each column's bytes, ~90 µs an automaton, ~8 % of a JSON
    Schema compile."""
    n = trans.shape[0]
    h = np.zeros(256, np.uint64)
    for b in range(256):
        x = np.uint64(0xCBF29CE484222325)
        for s in range(n):
            x = (x ^ np.uint64(trans[s, b] + 2)) * np.uint64(0x100000001B3)
        h[b] = x
    cls = np.empty(256, np.int32)
    reps = np.empty(256, np.int64)
    k = 0
    for b in range(256):
        found = -1
        for c in range(k):
            r = reps[c]
            if h[r] != h[b]:
                continue
            same = True
            for s in range(n):
                if trans[s, r] != trans[s, b]:
                    same = False
                    break
            if same:
                found = c
                break
        if found < 0:
            reps[k] = b
            found = k
            k += 1
        cls[b] = found
    return cls, reps[:k].copy()


@njit
def kept_ids(a, b):  # pragma: no cover - compiled
    """New ids ``0..m-1``, in order, for the states where both ``a`` and ``b`` (``bool[n]``)
    hold, ``-1`` for the others: ``(ids int64[n], m)`` (trimming an automaton to its useful
    states)."""
    ids = np.full(a.shape[0], -1, np.int64)
    m = 0
    for x in range(a.shape[0]):
        if a[x] and b[x]:
            ids[x] = m
            m += 1
    return ids, m


@njit
def product_table(cta, ctb, pa, pb, acca, accb, both, max_states):  # pragma: no cover - compiled
    """The reachable part of the product of two class-level tables: ``(rows int32[n, P],
    accept bool[n], n)``, ``n = -1`` when more than ``max_states`` pairs are reachable.

    ``cta`` (``int32[na, ka]``) and ``ctb`` are the two automata over their own byte classes;
    joint class ``j`` is the pair (``pa[j]``, ``pb[j]``).  A state is a pair (x, y) with ``-1``
    for a side that has died (kept for union); pair ids are handed out in BFS order, from
    (0, 0), through an open-addressing table keyed by ``(x + 1) * (nb + 1) + y + 1``.  With
    ``both`` (intersection) a pair with a dead side is the sink; otherwise (union) only the
    pair of two dead sides is.  The Python BFS this replaces was ~20 % of a JSON Schema
    compile (schema_medium: 18 products, 10 ms)."""
    na = cta.shape[0]
    nb = ctb.shape[0]
    P = pa.shape[0]
    cap = 256
    # table: key -> id; grown by rehash when half full
    keys = np.full(cap, -1, np.int64)
    vals = np.empty(cap, np.int32)
    qx = np.empty(64, np.int32)
    qy = np.empty(64, np.int32)
    rows = np.empty((64, P), np.int32)
    acc = np.empty(64, np.bool_)
    qx[0] = 0
    qy[0] = 0
    k0 = np.int64(1) * (nb + 1) + 1
    h = (k0 * np.int64(0x9E3779B1)) & (cap - 1)
    keys[h] = k0
    vals[h] = 0
    n = 1
    i = 0
    while i < n:
        x = qx[i]
        y = qy[i]
        ax = acca[x] if x >= 0 else False
        by = accb[y] if y >= 0 else False
        acc[i] = (ax and by) if both else (ax or by)
        for j in range(P):
            nx = cta[x, pa[j]] if x >= 0 else -1
            ny = ctb[y, pb[j]] if y >= 0 else -1
            if both:
                if nx < 0 or ny < 0:
                    rows[i, j] = -1
                    continue
            elif nx < 0 and ny < 0:
                rows[i, j] = -1
                continue
            key = np.int64(nx + 1) * (nb + 1) + ny + 1
            h = (key * np.int64(0x9E3779B1)) & (cap - 1)
            while keys[h] != -1 and keys[h] != key:
                h = (h + 1) & (cap - 1)
            if keys[h] == key:
                rows[i, j] = vals[h]
                continue
            if n >= max_states:
                return rows[:0], acc[:0], -1
            if 2 * (n + 1) > cap:  # rehash into a table twice the size
                cap2 = cap * 2
                k2 = np.full(cap2, -1, np.int64)
                v2 = np.empty(cap2, np.int32)
                for s in range(cap):
                    if keys[s] != -1:
                        g = (keys[s] * np.int64(0x9E3779B1)) & (cap2 - 1)
                        while k2[g] != -1:
                            g = (g + 1) & (cap2 - 1)
                        k2[g] = keys[s]
                        v2[g] = vals[s]
                keys, vals, cap = k2, v2, cap2
                h = (key * np.int64(0x9E3779B1)) & (cap - 1)
                while keys[h] != -1:
                    h = (h + 1) & (cap - 1)
            keys[h] = key
            vals[h] = n
            if n == qx.shape[0]:  # grow the queue and the output
                m = 2 * n
                qx2 = np.empty(m, np.int32)
                qy2 = np.empty(m, np.int32)
                r2 = np.empty((m, P), np.int32)
                a2 = np.empty(m, np.bool_)
                qx2[:n] = qx
                qy2[:n] = qy
                r2[:n] = rows
                a2[:n] = acc
                qx, qy, rows, acc = qx2, qy2, r2, a2
            qx[n] = nx
            qy[n] = ny
            rows[i, j] = n
            n += 1
        i += 1
    return rows[:n], acc[:n], n


@njit
def reachable_from(trans, q):  # pragma: no cover - compiled
    """``int64[m]``: the states of ``trans`` (``int32[n, k]``, negative = no transition)
    reachable from state ``q``, ``q`` first, in depth-first discovery order."""
    n, k = trans.shape
    seen = np.zeros(n, np.bool_)
    out = np.empty(n, np.int64)
    seen[q] = True
    out[0] = q
    m = 1
    i = 0
    while i < m:
        s = out[i]
        i += 1
        for b in range(k):
            t = trans[s, b]
            if t >= 0 and not seen[t]:
                seen[t] = True
                out[m] = t
                m += 1
    return out[:m].copy()


@njit
def map_rows(table, ids, alive, reach):  # pragma: no cover - compiled
    """``table[ids[i]] = alive[reach[i]]`` with every target state renamed by the same map
    (``reach[j] -> ids[j]``; negative targets stay ``-1``): the rows of a one-terminal
    lexer closure written straight into the lexer's table (``int32[*, 256]``)."""
    of = np.full(alive.shape[0], -1, np.int64)
    for j in range(reach.shape[0]):
        of[reach[j]] = ids[j]
    for i in range(reach.shape[0]):
        r = reach[i]
        row = ids[i]
        for b in range(alive.shape[1]):
            x = alive[r, b]
            table[row, b] = of[x] if x >= 0 else -1
