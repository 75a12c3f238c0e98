"""The bitmask contract, and the two slow mask oracles against each other on real vocabularies."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from constrain.engine.bitmask import (
    allocate_token_bitmask,
    apply_token_bitmask,
    bitmask_from_bool,
    bitmask_to_bool,
    get_bitmask_shape,
)
from constrain.engine.earley import ByteParser, CompiledParserTables
from constrain.grammar import from_lark
from constrain.testing.naive import naive_mask, trie_mask
from constrain.tokenizers import Vocabulary

GRAMMARS = Path(__file__).resolve().parents[2] / "grammars"


@given(st.lists(st.booleans(), min_size=1, max_size=200))
def test_bitmask_pack_roundtrip(bits):
    a = np.array(bits)
    bm = bitmask_from_bool(a)
    assert bm.dtype == np.int32 and bm.shape == (get_bitmask_shape(1, len(bits))[1],)
    assert np.array_equal(bitmask_to_bool(bm, len(bits)), a)
    for i, b in enumerate(bits):  # the documented pseudo-code
        assert ((int(bm[i >> 5]) >> (i & 31)) & 1) == int(b)


def test_apply_bitmask_torch_wider_logits():
    import torch

    allowed = np.zeros(70, dtype=bool)
    allowed[[0, 31, 32, 69]] = True
    bm = bitmask_from_bool(allowed)[None, :]
    logits = torch.zeros(1, 80)  # padded beyond the vocabulary
    apply_token_bitmask(logits, bm, vocab_size=70)
    assert torch.isfinite(logits[0]).nonzero().flatten().tolist() == [0, 31, 32, 69]
    assert allocate_token_bitmask(2, 70).shape == (2, 3)


@pytest.fixture(scope="module")
def json_tables():
    return CompiledParserTables(from_lark(GRAMMARS / "json.lark"))


@pytest.mark.parametrize("prefix", [b"", b'{"a": ', b'{"name": "Zo', b"[1, 2.5e", b'{"a": [true, {"b": null}]}'])
def test_oracles_agree_on_smollm2(prefix, json_tables, smol_vocab):
    p = ByteParser(json_tables)
    assert p.feed(prefix)
    m1 = naive_mask(p, smol_vocab)
    m2 = trie_mask(p, smol_vocab)
    assert np.array_equal(m1, m2)
    assert p.n_steps == len(prefix)  # the oracles leave the parser as they found it
    tb = smol_vocab.all_token_bytes
    allowed = {tb[i] for i in np.flatnonzero(m1) if tb[i]}
    if prefix == b'{"a": ':
        assert {b'"', b"1", b"[", b"{", b"true", b" "} <= allowed and b"}" not in allowed
    if prefix == b'{"name": "Zo':
        assert b"e" in allowed and b'"' in allowed and b'",' in allowed and b"\n" not in allowed
    eos = smol_vocab.eos_ids[0]
    assert m1[eos] == p.is_complete() == (prefix == b'{"a": [true, {"b": null}]}')
    assert not m1[:17].any() or m1[eos]  # special tokens only ever as stop ids


@given(st.data())
@settings(max_examples=40)
def test_oracles_agree_on_toy_vocab(data):
    extra = data.draw(st.lists(st.sampled_from([b'{"', b'":', b", ", b"tr", b"true", b"1.", b"e-", b"]}", b'"a', b" \n"]),
                               max_size=6, unique=True))
    vocab = Vocabulary.byte_level(extra)
    t = CompiledParserTables(from_lark(GRAMMARS / "json.lark"))
    docs = sorted((Path(__file__).resolve().parents[1] / "data" / "grammars" / "json" / "accept").glob("*.txt"))
    doc = data.draw(st.sampled_from(docs)).read_bytes()
    cut = data.draw(st.integers(0, len(doc)))
    p = ByteParser(t)
    assert p.feed(doc[:cut])
    m = naive_mask(p, vocab)
    assert np.array_equal(m, trie_mask(p, vocab))
    if cut < len(doc):
        assert m[doc[cut]]  # the document's own next byte is always allowed
    else:
        assert m[vocab.eos_ids[0]]
