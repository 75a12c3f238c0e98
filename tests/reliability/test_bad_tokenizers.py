"""Tokenizer layer under bad input: vocabularies whose entries are not bytes or whose
tokenizer cannot be turned into exact bytes, token bytes that are not UTF-8 on their own,
and model logits narrower or wider than the vocabulary."""

from __future__ import annotations

import json

import numpy as np
import pytest

from constrain.engine.bitmask import allocate_token_bitmask, bitmask_to_bool
from constrain.engine.matcher import Matcher
from constrain.errors import VocabularyError
from constrain.jsonschema import compile_json_schema
from constrain.tokenizers import TokenKind, Vocabulary
from rel_helpers import raises_clean


@pytest.mark.parametrize("bad", ["text", 5, None, ["a"]])
def test_entries_that_are_not_bytes(bad):
    e = raises_clean(lambda: Vocabulary([b"a", b"b", bad, b"c"], name="toy"), VocabularyError, "token 2", "toy")
    assert "not bytes" in str(e)


def test_empty_vocabulary():
    raises_clean(lambda: Vocabulary([]), VocabularyError, "empty")


def test_eos_outside_vocabulary():
    raises_clean(lambda: Vocabulary([b"a", b"b"], eos_ids=[7], name="toy"), VocabularyError, "EOS id 7")


def test_decoder_without_per_token_bytes():
    from tokenizers import Tokenizer, decoders, models

    tk = Tokenizer(models.WordLevel({"a": 0, "##b": 1, "[UNK]": 2}, unk_token="[UNK]"))
    tk.decoder = decoders.WordPiece()
    raises_clean(lambda: Vocabulary.from_tokenizer(tk), VocabularyError, "WordPiece", "decoder")


def test_tokenizer_file_not_json(tmp_path):
    p = tmp_path / "tokenizer.json"
    p.write_bytes(b'{"model": {"type": "BPE", "vocab": {"a": 0}')  # truncated
    raises_clean(lambda: Vocabulary.from_tokenizer(p), VocabularyError, "not valid JSON", str(p))


def test_tokenizer_path_missing(tmp_path):
    raises_clean(lambda: Vocabulary.from_tokenizer(tmp_path / "nope.json"), VocabularyError, "does not exist")
    raises_clean(lambda: Vocabulary.from_tokenizer(tmp_path), VocabularyError, "neither")


def test_unknown_tokenizer_object():
    raises_clean(lambda: Vocabulary.from_tokenizer(object()), VocabularyError, "cannot build a vocabulary")


def test_tokens_that_are_not_utf8_on_their_own_never_make_invalid_text():
    # partial UTF-8 sequences are legitimate token bytes (byte-level BPE); a lone 0xFF never is text
    extra = [b"\xe2\x82", b"\xac", b"\xff", b"\xc3", b"\xa9\"", b"\xf0\x9f\x98", b"\x80"]
    vocab = Vocabulary.byte_level(extra)
    g = compile_json_schema({"type": "string", "maxLength": 3})
    rng = np.random.default_rng(0)
    eos = vocab.eos_ids[0]
    for _ in range(40):
        m = Matcher(g, vocab)
        for _ in range(40):
            allowed = np.flatnonzero(m.next_token_mask())
            assert allowed.size, m.output
            assert 0xFF not in allowed.tolist() and 256 + 2 not in allowed.tolist()
            t = int(eos if eos in allowed and rng.random() < 0.3 else rng.choice(allowed))
            assert m.accept_token(t)
            if m.is_finished():
                break
        if m.is_finished():
            text = m.output.decode("utf-8")  # never raises
            assert len(json.loads(text)) <= 3


def test_logits_narrower_than_the_vocabulary():
    vocab = Vocabulary.byte_level([b"ab", b"cd"], name="toy")
    e = raises_clean(lambda: vocab.check_logits_width(200), VocabularyError, "width 200", "first id 200")
    assert "do not match" in str(e)
    # cutting off only the stop id is also refused
    raises_clean(lambda: vocab.check_logits_width(vocab.n_vocab - 1), VocabularyError, "stop ids")


def test_logits_narrower_cutting_only_unused_ids_is_fine():
    kinds = [TokenKind.TEXT] * 4 + [TokenKind.UNUSED] * 2
    v = Vocabulary([b"a", b"b", b"c", b"d", b"", b""], kinds=kinds, eos_ids=[3])
    assert v.check_logits_width(4) == 4


def test_logits_wider_than_the_vocabulary_padded_ids_never_allowed():
    vocab = Vocabulary.byte_level([b"ab"])
    g = compile_json_schema({"type": "integer"})
    m = Matcher(g, vocab)
    width = 384  # padded embedding matrix
    assert vocab.check_logits_width(width) == width
    bm = allocate_token_bitmask(1, width)
    bm[:] = -1
    m.fill_next_token_bitmask(bm)
    allowed = bitmask_to_bool(bm[0], width)
    assert not allowed[vocab.n_vocab:].any()
    assert allowed[ord("1")] and not allowed[ord("a")]
