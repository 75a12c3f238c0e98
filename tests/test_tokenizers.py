"""The byte vocabulary must equal each real tokenizer's own decoder, over whole vocabularies."""

from __future__ import annotations

import pickle
import random

import numpy as np
import pytest
from hypothesis import given, strategies as st

from constrain.errors import VocabularyError
from constrain.tokenizers import TokenKind, Vocabulary
from constrain.tokenizers.adapters import gpt2_bytes_to_unicode
from constrain.tokenizers.audit import SAMPLE_TEXTS
from constrain.tokenizers.trie import build_trie

# Texts that exercise whitespace runs, accents, CJK, emoji (4-byte UTF-8), combining marks and
# code punctuation: the same list the audit command checks.
TEXTS = SAMPLE_TEXTS


def _rand_ids(vocab: Vocabulary, rng: random.Random, n: int, max_len: int = 12):
    text_ids = np.flatnonzero(vocab.text_mask).tolist()
    return [[rng.choice(text_ids) for _ in range(rng.randint(1, max_len))] for _ in range(n)]


def _strip1(s: str, strips: bool) -> str:
    return s[1:] if strips and s.startswith(" ") else s


# --------------------------------------------------------------- HF byte-level BPE
@pytest.mark.parametrize("which", ["smol", "deepseek"])
def test_hf_whole_vocab_per_token(which, request):
    """Every text token's bytes, decoded with U+FFFD replacement, equals the tokenizer's decode."""
    tk = request.getfixturevalue(f"{which}_hf")
    vocab = request.getfixturevalue(f"{which}_vocab")
    ids = np.flatnonzero(vocab.text_mask).tolist()
    theirs = tk.decode_batch([[i] for i in ids], skip_special_tokens=False)
    bad = [(i, vocab.token_bytes(i), t) for i, t in zip(ids, theirs)
           if vocab.token_bytes(i).decode("utf-8", "replace") != t]
    assert not bad, f"{len(bad)} tokens differ, first: {bad[:5]}"
    assert len(ids) > 0.95 * vocab.n_vocab


@pytest.mark.parametrize("which", ["smol", "deepseek"])
def test_hf_random_sequences_roundtrip(which, request):
    tk = request.getfixturevalue(f"{which}_hf")
    vocab = request.getfixturevalue(f"{which}_vocab")
    seqs = _rand_ids(vocab, random.Random(0), 3000)
    theirs = tk.decode_batch(seqs, skip_special_tokens=False)
    for s, t in zip(seqs, theirs):
        assert vocab.decode(s).decode("utf-8", "replace") == t, s


@pytest.mark.parametrize("which", ["smol", "deepseek"])
def test_hf_encode_roundtrip(which, request):
    """bytes(encode(text)) == text, byte for byte, including 4-byte UTF-8 split across tokens."""
    tk = request.getfixturevalue(f"{which}_hf")
    vocab = request.getfixturevalue(f"{which}_vocab")
    for text in TEXTS:
        ids = tk.encode(text, add_special_tokens=False).ids
        assert vocab.decode(ids) == text.encode("utf-8"), text


def test_hf_specials_flagged(smol_vocab, deepseek_vocab):
    assert smol_vocab.special_id("<|im_end|>") == 2
    assert smol_vocab.eos_ids == (2,)  # tokenizer_config eos_token
    for i in range(17):
        assert smol_vocab.kinds[i] == TokenKind.SPECIAL
        assert smol_vocab.token_bytes(i) == b""
    # DeepSeek: 1,283 added tokens, 53 of them non-special ("<think>", "<｜User｜>"): never text by default
    think = deepseek_vocab.special_id("<think>")
    assert deepseek_vocab.kinds[think] == TokenKind.SPECIAL
    assert deepseek_vocab.eos_ids == (deepseek_vocab.special_id("<｜end▁of▁sentence｜>"),)
    assert int((deepseek_vocab.kinds == TokenKind.SPECIAL).sum()) == 1283
    # no text token's bytes spell a special marker by accident of the byte map
    assert b"<|im_end|>" not in smol_vocab.all_token_bytes


def test_added_tokens_as_text_option(deepseek_hf):
    from constrain.tokenizers.adapters import from_hf_tokenizer

    v = from_hf_tokenizer(deepseek_hf, added_tokens_as_text=True, eos_ids=[1])
    think = deepseek_hf.token_to_id("<think>")
    assert v.kinds[think] == TokenKind.TEXT and v.token_bytes(think) == b"<think>"
    assert deepseek_hf.decode([think], skip_special_tokens=False) == "<think>"


def test_gpt2_byte_map_is_a_bijection():
    m = gpt2_bytes_to_unicode()
    assert sorted(m) == list(range(256)) and len(set(m.values())) == 256
    assert m[ord(" ")] == "Ġ" and m[ord("\n")] == "Ċ" and m[ord("A")] == "A"


# --------------------------------------------------------- SentencePiece (Mistral)
def test_sentencepiece_whole_vocab(mistral_sp, mistral_vocab):
    v = mistral_vocab
    assert v.family == "sentencepiece" and v.n_vocab == 32000
    assert len(v.byte_fallback_ids) == 256
    assert [v.token_bytes(int(i)) for i in v.byte_fallback_ids] == [bytes([b]) for b in range(256)]
    ids = np.flatnonzero(v.text_mask).tolist()
    theirs = mistral_sp.decode([[i] for i in ids])
    bad = []
    byte_ids = set(v.byte_fallback_ids.tolist())
    for i, t in zip(ids, theirs):
        # decode drops the dummy-prefix space of a first "▁" piece, not of a <0x20> byte piece
        ours = _strip1(v.token_bytes(i).decode("utf-8", "replace"), i not in byte_ids)
        if ours != t:
            bad.append((i, v.token_bytes(i), t))
    assert not bad, f"{len(bad)} differ: {bad[:5]}"
    assert v.token_bytes(mistral_sp.piece_to_id("▁Hello")) == b" Hello"
    assert {v.special_id("<s>"), v.special_id("</s>"), v.special_id("<unk>")} == {0, 1, 2}
    assert v.eos_ids == (2,)


def test_sentencepiece_sequences_and_encode(mistral_sp, mistral_vocab):
    v = mistral_vocab
    anchor = mistral_sp.piece_to_id("a")  # a first token with no leading space: decode strips nothing
    for s in _rand_ids(v, random.Random(1), 2000):
        assert v.decode([anchor] + s).decode("utf-8", "replace") == mistral_sp.decode([anchor] + s), s
    for text in TEXTS:
        ids = mistral_sp.encode(text)
        # SentencePiece adds a dummy-prefix space; the model does emit that space
        assert v.decode(ids) == (" " + text).encode("utf-8") or v.decode(ids) == text.encode("utf-8"), text


# ------------------------------------------------------------ tiktoken (tekken)
def test_tiktoken_tekken(tekken, tekken_vocab):
    v = tekken_vocab
    assert v.family == "tiktoken" and v.n_vocab == tekken.n_words == 131072
    assert int((v.kinds == TokenKind.SPECIAL).sum()) == 1000
    assert v.eos_ids == (tekken.eos_id,)
    for text in TEXTS:
        ids = tekken.encode(text, bos=False, eos=False)
        assert v.decode(ids) == text.encode("utf-8"), text
    rng = random.Random(2)
    for s in _rand_ids(v, rng, 500):
        assert v.decode(s).decode("utf-8", "replace") == tekken.decode(s), s


# ------------------------------------------------------------------ vocabulary API
def test_fingerprint_stable_and_sensitive(smol_vocab):
    again = Vocabulary.from_tokenizer(str(smol_vocab.name))
    assert again.fingerprint == smol_vocab.fingerprint
    tb = list(smol_vocab.all_token_bytes)
    tb[1000] = tb[1000] + b"x"
    changed = Vocabulary(tb, kinds=smol_vocab.kinds, eos_ids=smol_vocab.eos_ids)
    assert changed.fingerprint != smol_vocab.fingerprint
    other_eos = Vocabulary(smol_vocab.all_token_bytes, kinds=smol_vocab.kinds, eos_ids=[0])
    assert other_eos.fingerprint != smol_vocab.fingerprint
    clone = pickle.loads(pickle.dumps(smol_vocab))
    assert clone == smol_vocab and clone.fingerprint == smol_vocab.fingerprint


def test_logits_width(smol_vocab):
    assert smol_vocab.check_logits_width(49152 + 64) == 49152 + 64  # padded logits are fine
    with pytest.raises(VocabularyError, match="logits have width"):
        smol_vocab.check_logits_width(40000)
    v = Vocabulary([b"a", b"b", b""], kinds=[0, 0, 1], eos_ids=[2])
    with pytest.raises(VocabularyError, match="stop ids"):
        v.check_logits_width(2)


def test_bad_inputs():
    with pytest.raises(VocabularyError, match="outside the vocabulary"):
        Vocabulary([b"a", b"b"], eos_ids=[5])
    with pytest.raises(VocabularyError, match="empty"):
        Vocabulary([])
    v = Vocabulary.byte_level()
    with pytest.raises(VocabularyError, match="token id 999"):
        v.decode([999])
    with pytest.raises(VocabularyError, match="no special token"):
        v.special_id("<|im_end|>")
    with pytest.raises(VocabularyError, match="cannot build a vocabulary"):
        Vocabulary.from_tokenizer(object())
    with pytest.raises(VocabularyError, match="does not exist"):
        Vocabulary.from_tokenizer("/nonexistent/tokenizer.json")


def test_unsupported_decoder_is_refused():
    from tokenizers import Tokenizer, decoders, models

    tk = Tokenizer(models.WordPiece({"[UNK]": 0, "a": 1, "##b": 2}, unk_token="[UNK]"))
    tk.decoder = decoders.WordPiece()
    with pytest.raises(VocabularyError, match="WordPiece"):
        Vocabulary.from_tokenizer(tk)


def test_byte_level_toy():
    v = Vocabulary.byte_level([b"ab", b"abc"])
    assert v.n_vocab == 259 and v.eos_ids == (258,)
    assert v.decode([97, 256, 257]) == b"aababc"


# ------------------------------------------------------------------------ trie
def _check_trie(vocab: Vocabulary):
    trie = vocab.trie
    tb = vocab.all_token_bytes
    # every text token sits at the node spelling its bytes
    seen = set()
    for node in range(trie.n_nodes):
        for t in trie.tok_ids[trie.tok_start[node]:trie.tok_start[node + 1]].tolist():
            seen.add(t)
            assert tb[t] == trie.node_bytes(node) if vocab.n_vocab < 5000 else len(tb[t]) == trie.depth[node]
    assert seen == {i for i in range(vocab.n_vocab) if vocab.kinds[i] == TokenKind.TEXT}
    # DFS order: subtree ranges nest, children are deeper by one
    d = trie.depth.astype(np.int64)
    end = trie.subtree_end.astype(np.int64)
    assert end[0] == trie.n_nodes
    idx = np.arange(1, trie.n_nodes)
    assert np.all(end[1:] > idx)
    # node count equals the number of distinct non-empty prefixes
    prefixes = {b[:k] for b in tb if b for k in range(1, len(b) + 1)}
    assert trie.n_nodes == len(prefixes) + 1
    # sorted order of ids is by bytes
    sb = [tb[i] for i in trie.sorted_ids.tolist()]
    assert sb == sorted(sb)
    return d


def test_trie_small_exact():
    v = Vocabulary.byte_level([b"ab", b"abc", b"b", b"zz", b"\xff\x00"])
    _check_trie(v)
    t = v.trie
    # node for b"a": its subtree contains b"ab" and b"abc"
    a = next(i for i in range(t.n_nodes) if t.depth[i] == 1 and t.byte[i] == ord("a"))
    inside = {t.node_bytes(j) for j in range(a, t.subtree_end[a])}
    assert inside == {b"a", b"ab", b"abc"}


@given(st.lists(st.binary(min_size=1, max_size=6), min_size=1, max_size=60))
def test_trie_random_vocab(words):
    v = Vocabulary(words + [b""], kinds=[0] * len(words) + [1], eos_ids=[len(words)])
    t = build_trie(list(v.all_token_bytes), v.text_mask)
    object.__setattr__(v, "_trie", t)
    _check_trie(v)


def test_trie_real_vocab(smol_vocab, deepseek_vocab):
    for v in (smol_vocab, deepseek_vocab):
        _check_trie(v)
