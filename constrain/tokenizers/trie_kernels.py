"""Numba kernels that build the flattened token trie.  Arrays in, arrays out."""

from __future__ import annotations

import numpy as np

from constrain._jit import njit


@njit
def _build_trie(data, offsets, group_start, group_ids, out_byte, out_depth, out_subtree_end,
                out_tok_start, out_tok_ids):  # pragma: no cover - compiled
    """Build a DFS-ordered trie over lexicographically sorted, distinct byte strings.

    Parameters
    ----------
    data : uint8[total]
        The distinct non-empty byte strings, concatenated in sorted order.
    offsets : int64[k + 1]
        ``data[offsets[i]:offsets[i+1]]`` is string ``i``.
    group_start : int64[k + 1], group_ids : int32[m]
        Token ids whose bytes equal string ``i`` are ``group_ids[group_start[i]:group_start[i+1]]``.
    out_byte : uint8[>= total + 1], out_depth : uint16[...], out_subtree_end : int32[...]
        Per node: the byte on the edge into it, its depth, and one past the last node of
        its subtree (DFS order means a subtree is a contiguous range).
    out_tok_start : int32[>= total + 2], out_tok_ids : int32[m]
        CSR lists of the token ids ending at each node.

    Returns
    -------
    int
        The number of nodes (node 0 is the root, depth 0).
    """
    k = offsets.shape[0] - 1
    max_len = 0
    for i in range(k):
        ln = offsets[i + 1] - offsets[i]
        if ln > max_len:
            max_len = ln
    stack = np.empty(max_len + 1, np.int64)
    stack[0] = 0
    sp = 1  # stack holds nodes of depth 0..sp-1 on the current path
    n = 1
    out_byte[0] = 0
    out_depth[0] = 0
    out_tok_start[0] = 0
    out_tok_start[1] = 0
    n_tok = 0
    prev_start = 0
    prev_len = 0
    for i in range(k):
        start = offsets[i]
        ln = offsets[i + 1] - start
        lcp = 0
        lim = min(ln, prev_len)
        while lcp < lim and data[start + lcp] == data[prev_start + lcp]:
            lcp += 1
        # close nodes deeper than the common prefix
        while sp > lcp + 1:
            sp -= 1
            out_subtree_end[stack[sp]] = n
        for d in range(lcp, ln):
            out_byte[n] = data[start + d]
            out_depth[n] = d + 1
            out_tok_start[n + 1] = n_tok
            stack[sp] = n
            sp += 1
            n += 1
        # attach the tokens of string i to its last node (node n - 1)
        for j in range(group_start[i], group_start[i + 1]):
            out_tok_ids[n_tok] = group_ids[j]
            n_tok += 1
        out_tok_start[n] = n_tok
        prev_start = start
        prev_len = ln
    while sp > 0:
        sp -= 1
        out_subtree_end[stack[sp]] = n
    return n


@njit
def _parents(depth):  # pragma: no cover - compiled
    """Parent of every trie node (root: -1), from the DFS depth sequence."""
    n = depth.shape[0]
    out = np.empty(n, np.int32)
    stack = np.empty(int(depth.max()) + 2, np.int32)
    out[0] = -1
    stack[0] = 0
    for i in range(1, n):
        d = depth[i]
        out[i] = stack[d - 1]
        stack[d] = i
    return out
