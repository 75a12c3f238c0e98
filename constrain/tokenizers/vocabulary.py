"""The exact byte vocabulary of a tokenizer.

A :class:`Vocabulary` answers one question exactly: which bytes does token ``i`` add to the
output?  Everything downstream (masks, fast-forward, the diffusion checker) works on bytes,
so every tokenizer quirk (byte-level BPE's printable byte map, SentencePiece's ``▁`` and
``<0xNN>`` byte fallback, tiktoken's raw byte ranks, added and special tokens, holes in the id
space, logits wider than the vocabulary) is resolved here, once, and tested against the
tokenizer's own decoder over the whole vocabulary.

Lifetime: build one per tokenizer (tens of ms to a second for 128k tokens; adapters live in
:mod:`constrain.tokenizers.adapters`), share it between threads and requests; it is
immutable, picklable, and identified by :attr:`Vocabulary.fingerprint`.
"""

from __future__ import annotations

import hashlib
import struct
from enum import IntEnum
from typing import Iterable, Mapping, Sequence

import numpy as np

from constrain.errors import ConfigError, VocabularyError

_FINGERPRINT_VERSION = b"constrain-vocabulary-v1"


def _as_token_bytes(i: int, b, name: str) -> bytes:
    if isinstance(b, bytes):
        return b
    if isinstance(b, (bytearray, memoryview)):
        return bytes(b)
    raise VocabularyError(f"token {i} of vocabulary {name or 'unnamed'!r} is a {type(b).__name__} ({b!r:.60}), "
                          "not bytes: a vocabulary holds the exact bytes each token emits (encode text first)")


class TokenKind(IntEnum):
    """What a token id is, for masking purposes."""

    #: emits bytes; a grammar may allow it
    TEXT = 0
    #: control/special/added-special token (BOS, EOS, chat markers): never matched as text
    SPECIAL = 1
    #: a hole in the id space, or a token that emits no bytes: never allowed
    UNUSED = 2


class Vocabulary:
    """Exact bytes for every token id, plus special-token and stop-id bookkeeping.

    Parameters
    ----------
    token_bytes:
        ``token_bytes[i]`` is what token ``i`` appends to the output (``b""`` for special or
        unused ids).
    kinds:
        A :class:`TokenKind` per id; defaults to TEXT for every non-empty entry and UNUSED
        for empty ones.
    special_tokens:
        Name (e.g. ``"<|im_end|>"``) to id for special tokens, so a grammar can ask for one by
        name.  Every id listed here is marked SPECIAL.
    eos_ids:
        All ids that end generation (EOS, end-of-turn, ...).  Each must be a valid id.
    name:
        A human label (tokenizer name or path) for messages.
    family:
        ``"byte-bpe"``, ``"sentencepiece"``, ``"tiktoken"`` or ``"bytes"``: how bytes were derived.
    byte_fallback_ids:
        Ids of SentencePiece ``<0xNN>`` tokens, in byte order when complete.
    decode_strips_leading_space:
        Whether the tokenizer's own ``decode`` drops one leading space from the first token
        (SentencePiece ``add_dummy_prefix``, Metaspace/Strip decoders).  Only the round-trip
        tests care; token bytes always keep the space the model emits.
    """

    def __init__(self, token_bytes: Sequence[bytes], *, kinds: Sequence[int] | np.ndarray | None = None,
                 special_tokens: Mapping[str, int] | None = None, eos_ids: Iterable[int] = (),
                 name: str = "", family: str = "bytes", byte_fallback_ids: Sequence[int] = (),
                 decode_strips_leading_space: bool = False):
        tb = tuple(_as_token_bytes(i, b, name) for i, b in enumerate(token_bytes))
        n = len(tb)
        if n == 0:
            raise VocabularyError(f"vocabulary {name!r} is empty")
        if kinds is None:
            k = np.fromiter((TokenKind.TEXT if b else TokenKind.UNUSED for b in tb), dtype=np.uint8, count=n)
        else:
            k = np.asarray(kinds, dtype=np.uint8).copy()
            if k.shape != (n,):
                raise ConfigError(f"kinds has shape {k.shape}, expected ({n},)")
            if k.max(initial=0) > 2:
                raise ConfigError("kinds must be TokenKind values (0, 1, 2)")
        specials = dict(special_tokens or {})
        for sname, sid in specials.items():
            if not 0 <= sid < n:
                raise VocabularyError(f"special token {sname!r} has id {sid}, outside the vocabulary of {n} ids")
            k[sid] = TokenKind.SPECIAL
        eos = tuple(sorted(set(int(e) for e in eos_ids)))
        for e in eos:
            if not 0 <= e < n:
                raise VocabularyError(f"EOS id {e} is outside the vocabulary of {n} ids ({name or 'unnamed'})")
            # a stop id ends generation; it is never matched as text even if it has a spelling
            k[e] = TokenKind.SPECIAL
        # a text token that emits nothing can never make progress: never allow it
        empty_text = [i for i in np.flatnonzero(k == TokenKind.TEXT).tolist() if not tb[i]]
        k[empty_text] = TokenKind.UNUSED
        non_text = np.flatnonzero(k != int(TokenKind.TEXT)).tolist()
        if any(tb[i] for i in non_text):
            tl = list(tb)
            for i in non_text:
                tl[i] = b""
            tb = tuple(tl)
        k.setflags(write=False)
        self._bytes = tb
        self._kinds = k
        self._special = specials
        self._eos = eos
        self.name = name
        self.family = family
        self._byte_fallback = np.asarray(byte_fallback_ids, dtype=np.int32)
        self.decode_strips_leading_space = bool(decode_strips_leading_space)
        self._fingerprint: str | None = None
        self._trie = None
        self._lengths: np.ndarray | None = None

    # ------------------------------------------------------------------ basics
    def __len__(self) -> int:
        return len(self._bytes)

    @property
    def n_vocab(self) -> int:
        """Number of token ids (including special and unused ids)."""
        return len(self._bytes)

    def token_bytes(self, token_id: int) -> bytes:
        """Bytes emitted by ``token_id`` (``b""`` for special/unused ids)."""
        if not 0 <= token_id < len(self._bytes):
            raise VocabularyError(f"token id {token_id} is outside the vocabulary of {len(self._bytes)} ids")
        return self._bytes[token_id]

    @property
    def all_token_bytes(self) -> tuple[bytes, ...]:
        return self._bytes

    @property
    def kinds(self) -> np.ndarray:
        """uint8[n_vocab] of :class:`TokenKind` values (read-only)."""
        return self._kinds

    @property
    def text_mask(self) -> np.ndarray:
        """bool[n_vocab]: ids that emit text."""
        return self._kinds == TokenKind.TEXT

    @property
    def special_tokens(self) -> dict[str, int]:
        return dict(self._special)

    @property
    def eos_ids(self) -> tuple[int, ...]:
        return self._eos

    @property
    def byte_fallback_ids(self) -> np.ndarray:
        return self._byte_fallback

    @property
    def token_lengths(self) -> np.ndarray:
        """int32[n_vocab]: byte length of each token (0 for special/unused)."""
        if self._lengths is None:
            lens = np.fromiter((len(b) for b in self._bytes), dtype=np.int32, count=len(self._bytes))
            lens.setflags(write=False)
            self._lengths = lens
        return self._lengths

    def special_id(self, name: str) -> int:
        """Id of a special token by name, with a clear error listing near names."""
        try:
            return self._special[name]
        except KeyError:
            near = [s for s in self._special if name.strip("<>|").lower() in s.lower()][:5]
            raise VocabularyError(
                f"no special token {name!r} in vocabulary {self.name!r}" + (f"; similar: {near}" if near else "")
            ) from None

    def decode(self, ids: Iterable[int]) -> bytes:
        """Concatenated bytes of ``ids`` (special and unused ids contribute nothing)."""
        tb = self._bytes
        n = len(tb)
        out = []
        for i in ids:
            i = int(i)
            if not 0 <= i < n:
                raise VocabularyError(f"token id {i} is outside the vocabulary of {n} ids")
            out.append(tb[i])
        return b"".join(out)

    # ----------------------------------------------------------- logits width
    def check_logits_width(self, width: int) -> int:
        """Validate a model's logits width against this vocabulary and return it.

        Wider logits are normal (embedding matrices are padded to a multiple of 64/128); the
        padded ids are never allowed.  Narrower logits are accepted only if every id cut off is
        special or unused and no stop id is lost; otherwise the model and tokenizer do not match.
        """
        width = int(width)
        n = self.n_vocab
        if width >= n:
            return width
        cut = self._kinds[width:]
        lost_text = np.flatnonzero(cut == TokenKind.TEXT)
        lost_eos = [e for e in self._eos if e >= width]
        if lost_text.size or lost_eos:
            raise VocabularyError(
                f"model logits have width {width} but vocabulary {self.name!r} has {n} ids; "
                f"{lost_text.size} text tokens (first id {width + int(lost_text[0]) if lost_text.size else '-'}) "
                f"and stop ids {lost_eos} could never be produced: tokenizer and model do not match")
        return width

    # -------------------------------------------------------------- identity
    @property
    def fingerprint(self) -> str:
        """Stable hex digest of the byte vocabulary, kinds and stop ids: the key of every cache."""
        if self._fingerprint is None:
            h = hashlib.sha256()
            h.update(_FINGERPRINT_VERSION)
            h.update(struct.pack("<q", len(self._bytes)))
            h.update(self._kinds.tobytes())
            lens = self.token_lengths.astype("<i4")
            h.update(lens.tobytes())
            h.update(b"".join(self._bytes))
            h.update(struct.pack(f"<{len(self._eos)}q", *self._eos))
            for sname in sorted(self._special):
                h.update(sname.encode("utf-8", "surrogatepass") + b"\x00" + struct.pack("<q", self._special[sname]))
            self._fingerprint = h.hexdigest()[:32]
        return self._fingerprint

    def __eq__(self, other) -> bool:
        return isinstance(other, Vocabulary) and other.fingerprint == self.fingerprint

    def __hash__(self) -> int:
        return hash(self.fingerprint)

    def __repr__(self) -> str:
        n_text = int((self._kinds == TokenKind.TEXT).sum())
        n_special = int((self._kinds == TokenKind.SPECIAL).sum())
        return (f"Vocabulary({self.name or 'unnamed'!s}, family={self.family}, n_vocab={self.n_vocab}, "
                f"text={n_text}, special={n_special}, eos={list(self._eos)})")

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_trie"] = None  # rebuilt (or loaded from the disk cache) on demand
        return state

    # ------------------------------------------------------------------ trie
    @property
    def trie(self):
        """The :class:`~constrain.tokenizers.trie.TokenTrie` over text tokens (built once, disk-cached)."""
        if self._trie is None:
            from constrain.tokenizers.trie import cached_trie

            self._trie = cached_trie(self.fingerprint, list(self._bytes), self.text_mask)
        return self._trie

    def extends_prefix(self, prefix: bytes) -> bool:
        """Whether some text token's bytes start with ``prefix`` and are longer than it (a
        token that would span the end of ``prefix``): the prefix's trie node has children."""
        trie = self.trie
        node = trie.find(prefix)
        return node >= 0 and int(trie.subtree_end[node]) > node + 1

    # ------------------------------------------------------------ factories
    @classmethod
    def from_tokenizer(cls, tokenizer, *, eos_ids: Iterable[int] | None = None) -> "Vocabulary":
        """Build from a transformers/tokenizers/sentencepiece/tiktoken/mistral-common tokenizer or a path."""
        from constrain.tokenizers.adapters import vocabulary_from

        return vocabulary_from(tokenizer, eos_ids=eos_ids)

    @classmethod
    def byte_level(cls, extra: Sequence[bytes] = (), *, name: str = "bytes") -> "Vocabulary":
        """A toy vocabulary: one token per byte value (ids 0..255), then ``extra`` multi-byte
        tokens, then one EOS id.  Used by tests and by model-free generation (hypothesis)."""
        tb = [bytes([i]) for i in range(256)] + [bytes(e) for e in extra] + [b""]
        eos = len(tb) - 1
        return cls(tb, special_tokens={"<eos>": eos}, eos_ids=[eos], name=name, family="bytes")
