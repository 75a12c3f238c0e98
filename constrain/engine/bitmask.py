"""The token bitmask contract, shared with xgrammar and llguidance.

A mask for a batch is ``int32[batch, ceil(vocab_size / 32)]``; token ``i`` is allowed in row
``r`` iff bit ``i % 32`` of word ``i // 32`` is set (two's-complement int32, so an all-allowed
word is ``-1``).  ``vocab_size`` here is the model's *logits width*, which may exceed the
tokenizer's vocabulary; padded ids are never set.  As pseudo-code::

    allowed(r, i) = (bitmask[r, i >> 5] >> (i & 31)) & 1

numpy helpers live here; :func:`apply_token_bitmask` works on torch tensors on any device
(torch is imported only when it is called).
"""

from __future__ import annotations

import numpy as np

from constrain.errors import ConfigError


def get_bitmask_shape(batch_size: int, vocab_size: int) -> tuple[int, int]:
    return (int(batch_size), (int(vocab_size) + 31) // 32)


def allocate_token_bitmask(batch_size: int, vocab_size: int) -> np.ndarray:
    """A zeroed (nothing allowed) ``int32[batch, ceil(vocab/32)]`` array."""
    return np.zeros(get_bitmask_shape(batch_size, vocab_size), dtype=np.int32)


def bitmask_from_bool(allowed: np.ndarray) -> np.ndarray:
    """Pack ``bool[vocab]`` or ``bool[batch, vocab]`` into the int32 layout."""
    a = np.asarray(allowed, dtype=bool)
    squeeze = a.ndim == 1
    if squeeze:
        a = a[None, :]
    n = a.shape[1]
    pad = (-n) % 32
    if pad:
        a = np.concatenate([a, np.zeros((a.shape[0], pad), dtype=bool)], axis=1)
    words = np.packbits(a.reshape(a.shape[0], -1, 32), axis=-1, bitorder="little").view("<u4").view(np.int32)
    out = words.reshape(a.shape[0], -1)
    return out[0] if squeeze else out


def bitmask_to_bool(bitmask: np.ndarray, vocab_size: int) -> np.ndarray:
    """Unpack the int32 layout to ``bool[..., vocab_size]``."""
    b = np.ascontiguousarray(bitmask, dtype=np.int32)
    bits = np.unpackbits(b.view(np.uint8), axis=-1, bitorder="little").astype(bool)
    return bits[..., :vocab_size]


def apply_token_bitmask(logits, bitmask, *, vocab_size: int | None = None):
    """Set disallowed logits to ``-inf`` in place (torch, CPU or CUDA) and return them.

    ``logits`` is ``[batch, width]`` or ``[width]``; ``bitmask`` is the int32 layout (numpy or
    torch) with as many rows.  Columns beyond the bitmask (or beyond ``vocab_size``) are
    disallowed: padded ids never win.
    """
    import torch

    squeeze = logits.dim() == 1
    lg = logits.unsqueeze(0) if squeeze else logits
    bm = torch.as_tensor(bitmask) if not isinstance(bitmask, torch.Tensor) else bitmask
    if bm.dim() == 1:
        bm = bm.unsqueeze(0)
    if bm.dtype != torch.int32:
        raise ConfigError(f"bitmask must be int32, got {bm.dtype}")
    if bm.shape[0] != lg.shape[0]:
        raise ConfigError(f"bitmask has {bm.shape[0]} rows, logits have {lg.shape[0]}")
    bm = bm.to(lg.device, non_blocking=True)
    width = lg.shape[1]
    n = min(width, bm.shape[1] * 32, vocab_size if vocab_size is not None else width)
    shifts = torch.arange(32, device=lg.device, dtype=torch.int32)
    bits = ((bm.unsqueeze(-1) >> shifts) & 1).bool().reshape(bm.shape[0], -1)[:, :n]
    lg[:, :n].masked_fill_(~bits, float("-inf"))
    if n < width:
        lg[:, n:] = float("-inf")
    return logits
