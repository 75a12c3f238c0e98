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
