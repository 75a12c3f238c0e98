"""Adapters: real tokenizers to :class:`~constrain.tokenizers.vocabulary.Vocabulary`.

Each adapter reads the tokenizer's own data (HF ``tokenizer.json`` model + decoder, the
SentencePiece model protobuf, tiktoken's rank table) and derives every token's bytes the way
that tokenizer's decoder does, without calling ``decode`` per token (which cannot express
partial UTF-8 characters).  The whole-vocabulary round-trip tests compare the result with the
tokenizer's own ``decode``.

Supported inputs (:func:`vocabulary_from` dispatches):

- ``transformers`` fast tokenizers (``PreTrainedTokenizerFast`` and friends), ``tokenizers.Tokenizer``,
  a ``tokenizer.json`` path or a directory holding one;
- ``sentencepiece.SentencePieceProcessor`` or a ``.model`` path;
- ``tiktoken.Encoding``;
- ``mistral_common`` tokenizers (``MistralTokenizer``, ``Tekkenizer``, ``SentencePieceTokenizer``);
- a :class:`Vocabulary` (returned as is).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Iterable

from constrain.errors import VocabularyError
from constrain.tokenizers.vocabulary import TokenKind, Vocabulary

_BYTE_TOKEN = re.compile(r"^<0x([0-9A-Fa-f]{2})>$")

#: names that commonly mean "stop", used only when a tokenizer declares no EOS of its own
_KNOWN_STOP_NAMES = ("<|endoftext|>", "<|im_end|>", "</s>", "<|eot_id|>", "<|end_of_text|>", "<eos>",
                     "<end_of_turn>", "<|end|>", "<｜end▁of▁sentence｜>", "<|return|>")


def gpt2_bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte → printable character map (byte-level BPE)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


_GPT2_DECODER = {c: b for b, c in gpt2_bytes_to_unicode().items()}


_GPT2_TRANSLATE = {ord(c): b for c, b in _GPT2_DECODER.items()}
_GPT2_CHARS = "".join(_GPT2_DECODER)


def _bytelevel_token(tok: str) -> bytes:
    # tokenizers' ByteLevel decoder: map every char back through the byte map; a token with
    # any char outside the map (an added token such as "<｜User｜>") is emitted as UTF-8 as is.
    if tok.strip(_GPT2_CHARS):  # some char is outside the map
        return tok.encode("utf-8")
    return tok.translate(_GPT2_TRANSLATE).encode("latin-1")  # mapped chars are code points < 256


class _HFDecoder:
    """Per-token interpretation of a ``tokenizers`` decoder spec (from tokenizer.json)."""

    def __init__(self, spec: dict | None, where: str):
        self.where = where
        self.byte_level = False
        self.byte_fallback = False
        self.replacements: list[tuple[str, str]] = []
        self.strips_leading_space = False
        self._read(spec)

    def _read(self, spec):
        if spec is None:
            return
        t = spec.get("type")
        if t == "Sequence":
            for s in spec.get("decoders", []):
                self._read(s)
        elif t == "ByteLevel":
            self.byte_level = True
        elif t == "ByteFallback":
            self.byte_fallback = True
        elif t == "Fuse":
            pass  # joins strings; no effect on per-token bytes
        elif t == "Replace":
            pat = spec.get("pattern", {})
            if "String" not in pat:
                raise VocabularyError(f"{self.where}: Replace decoder with a regex pattern {pat!r} is not supported")
            self.replacements.append((pat["String"], spec.get("content", "")))
        elif t == "Strip":
            if spec.get("content") == " " and spec.get("start", 0) == 1 and spec.get("stop", 0) == 0:
                self.strips_leading_space = True  # a decode artifact on the first token only
            else:
                raise VocabularyError(f"{self.where}: Strip decoder {spec!r} is not supported")
        elif t == "Metaspace":
            self.replacements.append((spec.get("replacement", "▁"), " "))
            if spec.get("prepend_scheme", "always") != "never" or spec.get("add_prefix_space", False):
                self.strips_leading_space = True
        else:
            # WordPiece / BPEDecoder / CTC insert or remove text *between* tokens depending on
            # their neighbours: no per-token byte string exists, so exact masking is impossible.
            raise VocabularyError(
                f"{self.where}: decoder type {t!r} makes token bytes depend on neighbouring tokens; "
                f"constrain supports ByteLevel, Metaspace and Sequence(Replace/ByteFallback/Fuse/Strip) decoders")

    def token_bytes(self, tok: str) -> tuple[bytes, bool]:
        """Bytes of one token string, and whether it was a byte-fallback token."""
        if self.byte_fallback:
            m = _BYTE_TOKEN.match(tok)
            if m:
                return bytes([int(m.group(1), 16)]), True
        for a, b in self.replacements:
            tok = tok.replace(a, b)
        if self.byte_level:
            return _bytelevel_token(tok), False
        return tok.encode("utf-8"), False


def _eos_from_config(directory: Path) -> list[str]:
    names = []
    for fname in ("tokenizer_config.json", "generation_config.json", "special_tokens_map.json"):
        p = directory / fname
        if not p.is_file():
            continue
        try:
            cfg = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        eos = cfg.get("eos_token")
        if isinstance(eos, dict):
            eos = eos.get("content")
        if isinstance(eos, str):
            names.append(eos)
        elif isinstance(eos, list):
            names.extend(e for e in eos if isinstance(e, str))
    return names


def from_hf_tokenizer(tk, *, eos_ids: Iterable[int] | None = None, eos_names: Iterable[str] = (),
                      name: str = "", added_tokens_as_text: bool = False) -> Vocabulary:
    """Vocabulary of a ``tokenizers.Tokenizer``.

    Added tokens (special or not) are SPECIAL by default: they are control markers such as
    ``<think>`` or ``<｜User｜>`` that a grammar should only produce when it names them.
    Pass ``added_tokens_as_text=True`` to treat non-special added tokens as ordinary text.
    """
    spec = json.loads(tk.to_str())
    where = f"tokenizer {name!r}" if name else "tokenizer"
    model = spec.get("model", {})
    mtype = model.get("type")
    if mtype not in ("BPE", "Unigram", "WordLevel", None):
        raise VocabularyError(f"{where}: model type {mtype!r} is not supported (BPE, Unigram, WordLevel are)")
    decoder = _HFDecoder(spec.get("decoder"), where)
    n = tk.get_vocab_size(with_added_tokens=True)
    added = {a["id"]: a for a in spec.get("added_tokens", [])}
    if added:
        n = max(n, max(added) + 1)
    token_bytes: list[bytes] = [b""] * n
    kinds = [TokenKind.UNUSED] * n
    specials: dict[str, int] = {}
    byte_fallback: dict[int, int] = {}
    vocab = tk.get_vocab(with_added_tokens=True)
    id_to_tok: list[str | None] = [None] * n
    for s, i in vocab.items():
        if 0 <= i < n:
            id_to_tok[i] = s
    for i in range(n):
        s = id_to_tok[i]
        if s is None:
            continue  # hole in the id space
        a = added.get(i)
        if a is not None and (a.get("special", False) or not added_tokens_as_text):
            specials[a["content"]] = i
            kinds[i] = TokenKind.SPECIAL
            continue
        b, is_byte = decoder.token_bytes(s)
        if is_byte:
            byte_fallback[b[0]] = i
        token_bytes[i] = b
        kinds[i] = TokenKind.TEXT if b else TokenKind.UNUSED
    # SentencePiece-converted Unigram/BPE models also carry <unk>, <s>, </s> in the model vocab
    for special_name in ("<unk>", "<s>", "</s>", "<pad>"):
        i = vocab.get(special_name)
        if i is not None and kinds[i] == TokenKind.TEXT and mtype in ("Unigram", "BPE") and decoder.byte_fallback:
            kinds[i] = TokenKind.SPECIAL
            token_bytes[i] = b""
            specials[special_name] = i
    eos: list[int] = list(eos_ids) if eos_ids is not None else []
    if eos_ids is None:
        for en in eos_names:
            if en in vocab:
                eos.append(vocab[en])
        if not eos:
            eos = [specials[s] for s in _KNOWN_STOP_NAMES if s in specials][:1]
    family = "byte-bpe" if decoder.byte_level else ("sentencepiece" if decoder.byte_fallback or decoder.replacements else "text")
    fb = [byte_fallback[b] for b in sorted(byte_fallback)]
    return Vocabulary(token_bytes, kinds=kinds, special_tokens=specials, eos_ids=eos, name=name, family=family,
                      byte_fallback_ids=fb, decode_strips_leading_space=decoder.strips_leading_space)


def from_transformers(tok, *, eos_ids: Iterable[int] | None = None, name: str = "",
                      added_tokens_as_text: bool = False) -> Vocabulary:
    """Vocabulary of a transformers tokenizer (a fast one: it must have ``backend_tokenizer``)."""
    backend = getattr(tok, "backend_tokenizer", None) or getattr(tok, "_tokenizer", None)
    label = name or str(getattr(tok, "name_or_path", "") or type(tok).__name__)
    if backend is None:
        sp = getattr(tok, "sp_model", None)
        if sp is not None:
            return from_sentencepiece(sp, eos_ids=eos_ids, name=label)
        raise VocabularyError(f"transformers tokenizer {label!r} ({type(tok).__name__}) has no fast backend; "
                              "load it with use_fast=True or pass a tokenizers.Tokenizer")
    if eos_ids is None:
        ids = []
        e = getattr(tok, "eos_token_id", None)
        if isinstance(e, int):
            ids.append(e)
        elif isinstance(e, (list, tuple)):
            ids.extend(int(x) for x in e)
        eos_ids = ids or None
    return from_hf_tokenizer(backend, eos_ids=eos_ids, name=label, added_tokens_as_text=added_tokens_as_text)


def from_sentencepiece(sp, *, eos_ids: Iterable[int] | None = None, name: str = "") -> Vocabulary:
    """Vocabulary of a ``sentencepiece.SentencePieceProcessor`` (or a ``.model`` path)."""
    if isinstance(sp, (str, Path)):
        import sentencepiece

        path = str(sp)
        sp = sentencepiece.SentencePieceProcessor(model_file=path)
        name = name or path
    n = sp.get_piece_size()
    token_bytes: list[bytes] = [b""] * n
    kinds = [TokenKind.UNUSED] * n
    specials: dict[str, int] = {}
    byte_fallback: dict[int, int] = {}
    for i in range(n):
        piece = sp.id_to_piece(i)
        if sp.is_control(i) or sp.is_unknown(i):
            specials[piece] = i
            kinds[i] = TokenKind.SPECIAL
        elif sp.is_unused(i):
            continue
        elif sp.is_byte(i):
            m = _BYTE_TOKEN.match(piece)
            if not m:
                raise VocabularyError(f"sentencepiece {name!r}: byte piece {i} has unexpected spelling {piece!r}")
            b = int(m.group(1), 16)
            token_bytes[i] = bytes([b])
            byte_fallback[b] = i
            kinds[i] = TokenKind.TEXT
        else:
            token_bytes[i] = piece.replace("▁", " ").encode("utf-8")
            kinds[i] = TokenKind.TEXT if token_bytes[i] else TokenKind.UNUSED
    if eos_ids is None:
        eos_ids = [sp.eos_id()] if sp.eos_id() >= 0 else []
    fb = [byte_fallback[b] for b in sorted(byte_fallback)]
    return Vocabulary(token_bytes, kinds=kinds, special_tokens=specials, eos_ids=eos_ids, name=name,
                      family="sentencepiece", byte_fallback_ids=fb, decode_strips_leading_space=True)


def from_tiktoken(enc, *, eos_ids: Iterable[int] | None = None, name: str = "", id_offset: int = 0,
                  specials: dict[str, int] | None = None, n_vocab: int | None = None) -> Vocabulary:
    """Vocabulary of a ``tiktoken.Encoding``.

    ``id_offset`` shifts every rank (Mistral's tekken puts its special tokens first); ``specials``
    adds named special ids beyond the encoding's own.
    """
    enc_specials = dict(getattr(enc, "_special_tokens", {}))
    total = n_vocab if n_vocab is not None else id_offset + enc.n_vocab
    token_bytes: list[bytes] = [b""] * total
    kinds = [TokenKind.UNUSED] * total
    all_specials = {s: i + id_offset for s, i in enc_specials.items()}
    all_specials.update(specials or {})
    special_ids = set(all_specials.values())
    for i in range(id_offset, total):
        if i in special_ids:
            kinds[i] = TokenKind.SPECIAL
            continue
        try:
            b = enc.decode_single_token_bytes(i - id_offset)
        except KeyError:
            continue  # hole in the rank table
        token_bytes[i] = b
        kinds[i] = TokenKind.TEXT
    for i in special_ids:
        if 0 <= i < total:
            kinds[i] = TokenKind.SPECIAL
    if eos_ids is None:
        eos_ids = [all_specials[s] for s in _KNOWN_STOP_NAMES if s in all_specials][:1]
    return Vocabulary(token_bytes, kinds=kinds, special_tokens=all_specials, eos_ids=eos_ids,
                      name=name or getattr(enc, "name", ""), family="tiktoken")


def from_mistral(tok, *, eos_ids: Iterable[int] | None = None, name: str = "") -> Vocabulary:
    """Vocabulary of a ``mistral_common`` tokenizer (tekken or SentencePiece)."""
    inner = tok
    for attr in ("instruct_tokenizer", "tokenizer"):
        while hasattr(inner, attr) and not hasattr(inner, "id_to_piece"):
            inner = getattr(inner, attr)
    label = name or str(getattr(inner, "file_path", "") or type(inner).__name__)
    cls = type(inner).__name__
    if cls == "SentencePieceTokenizer":
        return from_sentencepiece(inner._model, eos_ids=eos_ids if eos_ids is not None else [inner.eos_id], name=label)
    if cls == "Tekkenizer":
        n_special = inner.num_special_tokens
        specials = {}
        for i in range(n_special):
            specials[inner.id_to_piece(i)] = i
        return from_tiktoken(inner._model, eos_ids=eos_ids if eos_ids is not None else [inner.eos_id], name=label,
                             id_offset=n_special, specials=specials, n_vocab=inner.n_words)
    raise VocabularyError(f"unsupported mistral_common tokenizer class {cls}")


def vocabulary_from(obj, *, eos_ids: Iterable[int] | None = None) -> Vocabulary:
    """Build a :class:`Vocabulary` from any supported tokenizer object or path (see module doc)."""
    if isinstance(obj, Vocabulary):
        return obj
    if isinstance(obj, (str, Path)):
        return _from_path(Path(obj), eos_ids=eos_ids)
    mod = type(obj).__module__ or ""
    cls = type(obj).__name__
    if mod.startswith("tokenizers") and cls == "Tokenizer":
        return from_hf_tokenizer(obj, eos_ids=eos_ids)
    if mod.startswith("transformers") or hasattr(obj, "backend_tokenizer"):
        return from_transformers(obj, eos_ids=eos_ids)
    if mod.startswith("sentencepiece"):
        return from_sentencepiece(obj, eos_ids=eos_ids)
    if mod.startswith("tiktoken"):
        return from_tiktoken(obj, eos_ids=eos_ids)
    if mod.startswith("mistral_common"):
        return from_mistral(obj, eos_ids=eos_ids)
    raise VocabularyError(
        f"cannot build a vocabulary from {cls} (module {mod}); pass a transformers/tokenizers/sentencepiece/"
        "tiktoken/mistral_common tokenizer or a path to tokenizer.json / a .model file")


def _from_path(p: Path, *, eos_ids) -> Vocabulary:
    if p.is_dir():
        for cand in ("tokenizer.json", "tokenizer.model"):
            if (p / cand).is_file():
                v = _from_path(p / cand, eos_ids=eos_ids)
                return v
        raise VocabularyError(f"directory {p} holds neither tokenizer.json nor tokenizer.model")
    if not p.is_file():
        raise VocabularyError(f"tokenizer file {p} does not exist")
    if p.suffix == ".json":
        try:
            head = json.loads(p.read_text(encoding="utf-8"))
        except ValueError as e:
            raise VocabularyError(f"{p} is not valid JSON: {e}") from None
        if "model" in head and "decoder" in head:
            from tokenizers import Tokenizer

            tk = Tokenizer.from_file(str(p))
            names = _eos_from_config(p.parent)
            return from_hf_tokenizer(tk, eos_ids=eos_ids, eos_names=names, name=str(p))
        if "vocab" in head and "config" in head:  # mistral tekken json
            from mistral_common.tokens.tokenizers.tekken import Tekkenizer

            return from_mistral(Tekkenizer.from_file(p), eos_ids=eos_ids, name=str(p))
        raise VocabularyError(f"{p}: unrecognised tokenizer JSON (neither HF tokenizer.json nor tekken)")
    if p.suffix == ".model" or p.name.startswith("tokenizer.model") or ".model." in p.name:
        return from_sentencepiece(p, eos_ids=eos_ids, name=str(p))
    raise VocabularyError(f"{p}: unrecognised tokenizer file type")
