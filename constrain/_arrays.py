"""Small array helpers shared by the layers (no numba: these run once per call on short arrays).

numpy 2.3's ``np.unique`` on a 1-D integer array without ``return_*`` takes a hash-based path
that costs ~100 µs even for 100 elements; a cold mask walk calls it per exit group and the
lexer per state, so it was ~15 % of schema_complex's cold walk.  Sorting and keeping the
first of each run is ~7 µs.
"""

from __future__ import annotations

import numpy as np


def unique_sorted(a: np.ndarray) -> np.ndarray:
    """The distinct values of the 1-D array ``a``, ascending (``np.unique(a)``).  An array
    already in order is not sorted again: the exits of a walk under a free-form lexeme (an
    identifier: ~49,000 trie nodes at 49k tokens) come in trie order, and sorting them was
    ~0.6 ms a group, a quarter of cfg_sql's cold walk."""
    if a.shape[0] > 256 and not (a[1:] < a[:-1]).any():
        s = a
    else:
        s = np.sort(a)
    if s.shape[0] < 2:
        return s
    keep = np.empty(s.shape[0], dtype=bool)
    keep[0] = True
    np.not_equal(s[1:], s[:-1], out=keep[1:])
    return s[keep]


def unique_inverse(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(a, return_inverse=True)`` for a 1-D array: the distinct values ascending,
    and for each element of ``a`` the index of its value among them."""
    order = np.argsort(a, kind="stable")
    s = a[order]
    keep = np.empty(s.shape[0], dtype=bool)
    if s.shape[0]:
        keep[0] = True
        np.not_equal(s[1:], s[:-1], out=keep[1:])
    inv = np.empty(s.shape[0], dtype=np.intp)
    inv[order] = np.cumsum(keep) - 1
    return s[keep], inv
