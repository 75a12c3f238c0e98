"""The array helpers against ``np.unique``, their oracle."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from constrain._arrays import unique_inverse, unique_sorted

_ARRAYS = hnp.arrays(st.sampled_from([np.int32, np.int64]), st.integers(0, 300), elements=st.integers(-5, 40))


@given(_ARRAYS)
def test_unique_sorted_is_np_unique(a):
    assert unique_sorted(a).tolist() == np.unique(a).tolist()


@given(_ARRAYS)
def test_unique_inverse_is_np_unique(a):
    u, inv = unique_inverse(a)
    u2, inv2 = np.unique(a, return_inverse=True)
    assert u.tolist() == u2.tolist() and inv.tolist() == inv2.reshape(-1).tolist()
    assert (u[inv] == a).all()


@given(hnp.arrays(st.sampled_from([np.int32, np.int64]), st.integers(200, 1200), elements=st.integers(-5, 400)),
       st.booleans())
def test_unique_sorted_of_long_arrays_in_order_or_not(a, in_order):
    """Past 256 elements an array already in order skips the sort (a walk's exits come in
    trie order); out of order it is sorted; both are ``np.unique``, and ``a`` is not changed."""
    if in_order:
        a = np.sort(a)
    before = a.copy()
    got = unique_sorted(a)
    assert got.tolist() == np.unique(a).tolist() and (a == before).all()
    assert not np.shares_memory(got, a)
