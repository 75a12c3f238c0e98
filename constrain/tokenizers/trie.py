"""The flattened token trie: every text token's bytes, shared prefixes stored once.

The mask engine walks this trie with a lexer state, pruning a whole subtree as soon as its
first byte is rejected; that is why it is laid out in DFS order as flat arrays (byte, depth,
subtree end, token lists) rather than as Python objects.  It is built once per vocabulary
(milliseconds for 128k tokens) and cached on disk by the vocabulary's fingerprint.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from constrain import _cache
from constrain.errors import CacheVersionError

_TRIE_FORMAT = 1


@dataclass(frozen=True)
class TokenTrie:
    """DFS-ordered trie over the byte strings of a vocabulary's text tokens.

    Attributes
    ----------
    byte : uint8[n_nodes]
        Byte on the edge into each node (node 0 is the root; its byte is meaningless).
    depth : uint16[n_nodes]
        Depth of each node; the node's bytes are the edge bytes on the path from the root.
    subtree_end : int32[n_nodes]
        One past the last node of the node's subtree; skipping a subtree is ``i = subtree_end[i]``.
    tok_start : int32[n_nodes + 1], tok_ids : int32[n_tokens]
        Token ids whose bytes end exactly at node ``i`` are ``tok_ids[tok_start[i]:tok_start[i+1]]``
        (several ids can share bytes, e.g. a SentencePiece piece and its byte-fallback spelling).
    sorted_ids : int32[n_text_tokens]
        Text token ids in lexicographic order of their bytes (the order of first visit).
    """

    byte: np.ndarray
    depth: np.ndarray
    subtree_end: np.ndarray
    tok_start: np.ndarray
    tok_ids: np.ndarray
    sorted_ids: np.ndarray

    @property
    def n_nodes(self) -> int:
        return int(self.byte.shape[0])

    @cached_property
    def parents(self) -> np.ndarray:
        """``int32[n_nodes]``: each node's parent (root: -1); built on first use."""
        from constrain.tokenizers.trie_kernels import _parents

        return _parents(self.depth)

    @cached_property
    def max_depth(self) -> int:
        return int(self.depth.max()) if self.depth.size else 0

    def find(self, prefix: bytes) -> int:
        """The node whose bytes are ``prefix`` (``-1`` when no token starts with it): a walk down
        the DFS layout, skipping sibling subtrees."""
        node = 0
        byte, end = self.byte, self.subtree_end
        for b in prefix:
            child, stop = node + 1, int(end[node])
            while child < stop and byte[child] != b:
                child = int(end[child])
            if child >= stop:
                return -1
            node = child
        return node

    def node_bytes(self, i: int, from_depth: int = 0) -> bytes:
        """Bytes on the path to node ``i``, after its ancestor at depth ``from_depth``."""
        out = bytearray()
        par, byte, depth = self.parents, self.byte, self.depth
        while i > 0 and depth[i] > from_depth:
            out.append(int(byte[i]))
            i = int(par[i])
        out.reverse()
        return bytes(out)

    def _arrays(self) -> dict:
        return {k: getattr(self, k) for k in ("byte", "depth", "subtree_end", "tok_start", "tok_ids", "sorted_ids")}

    def save(self, f) -> None:
        np.savez(f, format=np.array([_TRIE_FORMAT]), **self._arrays())

    @classmethod
    def load(cls, f) -> "TokenTrie":
        with np.load(f, allow_pickle=False) as z:
            if int(z["format"][0]) != _TRIE_FORMAT:
                raise CacheVersionError(f"trie cache format {int(z['format'][0])} != {_TRIE_FORMAT}")
            return cls(**{k: z[k] for k in ("byte", "depth", "subtree_end", "tok_start", "tok_ids", "sorted_ids")})


def build_trie(token_bytes: list[bytes], text_mask: np.ndarray) -> TokenTrie:
    """Build the trie over ``token_bytes[i]`` for every ``i`` with ``text_mask[i]`` set and non-empty bytes."""
    from constrain.tokenizers.trie_kernels import _build_trie

    ids = [i for i in np.flatnonzero(text_mask).tolist() if token_bytes[i]]
    ids.sort(key=token_bytes.__getitem__)
    sorted_ids = np.asarray(ids, dtype=np.int32)
    # group equal byte strings: distinct strings in order, and how many ids share each
    distinct: list[bytes] = []
    count_list: list[int] = []
    prev = None
    for i in ids:
        b = token_bytes[i]
        if b != prev:
            distinct.append(b)
            count_list.append(0)
            prev = b
        count_list[-1] += 1
    counts = np.asarray(count_list, dtype=np.int64)
    gs = np.zeros(len(distinct) + 1, dtype=np.int64)
    np.cumsum(counts, out=gs[1:])
    lens = np.fromiter((len(b) for b in distinct), dtype=np.int64, count=len(distinct))
    offsets = np.zeros(len(distinct) + 1, dtype=np.int64)
    np.cumsum(lens, out=offsets[1:])
    data = np.frombuffer(b"".join(distinct), dtype=np.uint8)
    cap = int(offsets[-1]) + 1
    out_byte = np.zeros(cap, np.uint8)
    out_depth = np.zeros(cap, np.uint16)
    out_subtree_end = np.zeros(cap, np.int32)
    out_tok_start = np.zeros(cap + 1, np.int32)
    out_tok_ids = np.zeros(len(ids), np.int32)
    n = _build_trie(data, offsets, gs, sorted_ids, out_byte, out_depth, out_subtree_end, out_tok_start, out_tok_ids)
    return TokenTrie(
        byte=out_byte[:n].copy(),
        depth=out_depth[:n].copy(),
        subtree_end=out_subtree_end[:n].copy(),
        tok_start=out_tok_start[: n + 1].copy(),
        tok_ids=out_tok_ids,
        sorted_ids=sorted_ids,
    )


def cached_trie(fingerprint: str, token_bytes: list[bytes], text_mask: np.ndarray) -> TokenTrie:
    """The trie for a vocabulary, from the disk cache when present (keyed by fingerprint).

    Cache files carry the format, constrain's version, the fingerprint and a checksum; a file
    that is truncated, corrupted, of another version or for another vocabulary is discarded and
    rebuilt, never used (a bad trie would send the numba kernels out of bounds).  Concurrent
    writers are safe: each writes a private temp file and renames it into place."""
    import io

    def encode(trie: TokenTrie) -> bytes:
        buf = io.BytesIO()
        trie.save(buf)
        return buf.getvalue()

    def decode(payload: bytes) -> TokenTrie:
        trie = TokenTrie.load(io.BytesIO(payload))
        _check_trie(trie, text_mask, token_bytes)
        return trie

    return _cache.load_or_build("tries", f"{fingerprint}-t{_TRIE_FORMAT}-{_cache.version_tag()}.npz", fingerprint,
                                lambda: build_trie(token_bytes, text_mask), encode, decode)


def _check_trie(trie: TokenTrie, text_mask: np.ndarray, token_bytes: list[bytes]) -> None:
    """Structural checks a trie must pass before the kernels index with it."""
    n = trie.n_nodes
    if not (trie.depth.shape == trie.subtree_end.shape == (n,) and trie.tok_start.shape == (n + 1,)):
        raise ValueError("trie arrays have inconsistent shapes")
    if n and (trie.subtree_end.min() < 1 or trie.subtree_end.max() > n):
        raise ValueError("trie subtree ends out of range")
    if trie.tok_start[0] != 0 or trie.tok_start[-1] != trie.tok_ids.shape[0] or (np.diff(trie.tok_start) < 0).any():
        raise ValueError("trie token lists out of range")
    want = np.flatnonzero(np.asarray(text_mask, bool) & np.fromiter((len(b) > 0 for b in token_bytes), bool,
                                                                      count=len(token_bytes)))
    if not np.array_equal(np.sort(trie.tok_ids), want) or not np.array_equal(np.sort(trie.sorted_ids), want):
        raise ValueError("trie tokens differ from the vocabulary's text tokens")
