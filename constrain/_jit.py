"""The one JIT policy for constrain's numba kernels.

Kernels live in ``*_kernels.py`` modules, take only numpy arrays and scalars, and are
decorated with :func:`njit` from here, never with a bare ``numba.njit``.  Defaults:
``cache=True`` (compiled code is reused across processes), ``nogil=True`` (batch fills can
run on threads), no fastmath (bitmask code must be exact).  Set ``CONSTRAIN_NUMBA_CACHE=0``
to disable on-disk caching (e.g. on read-only installs).
"""

from __future__ import annotations

import os

import numba

_CACHE = os.environ.get("CONSTRAIN_NUMBA_CACHE", "1") not in ("0", "false", "no")


def njit(*args, **kwargs):
    """``numba.njit`` with constrain's defaults; usable as ``@njit`` or ``@njit(...)``."""
    kwargs.setdefault("cache", _CACHE)
    kwargs.setdefault("nogil", True)
    if len(args) == 1 and callable(args[0]):
        return numba.njit(**kwargs)(args[0])
    return numba.njit(*args, **kwargs)
