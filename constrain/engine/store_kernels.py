"""Numba kernels of the per-tokenizer mask store.  Arrays and scalars only."""

from __future__ import annotations

import numpy as np

from constrain._jit import njit


@njit
def _inside_walk(table, byte, depth, subtree_end, tok_start, tok_ids, s0, out_words):  # pragma: no cover - compiled
    """Set the bits of every token whose bytes keep the lexer alive from state ``s0``.

    Parameters
    ----------
    table : int32[n_states, 256]
        Lexer transitions; ``< 0`` is dead.  Every state reachable from ``s0`` must be computed
        (:meth:`LexerAutomaton.expand`), so no entry met here is "not computed".
    byte, depth, subtree_end, tok_start, tok_ids :
        The token trie (see :class:`~constrain.tokenizers.trie.TokenTrie`).
    s0 : int
        Lexer state at the start of the token.
    out_words : uint32[ceil(width / 32)]
        Bitmask row to OR the bits into.

    Returns
    -------
    int
        Number of trie nodes visited (for the benchmark's work counters).
    """
    n = byte.shape[0]
    max_d = 0
    for i in range(n):
        if depth[i] > max_d:
            max_d = depth[i]
    stack = np.empty(max_d + 1, np.int32)
    stack[0] = s0
    visited = 0
    i = 1
    while i < n:
        visited += 1
        d = depth[i]
        nxt = table[stack[d - 1], byte[i]]
        if nxt < 0:
            i = subtree_end[i]
            continue
        stack[d] = nxt
        for j in range(tok_start[i], tok_start[i + 1]):
            t = tok_ids[j]
            out_words[t >> 5] |= np.uint32(1) << np.uint32(t & 31)
        i += 1
    return visited
