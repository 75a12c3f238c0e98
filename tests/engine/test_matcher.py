"""The mask engine (TokenStore + Matcher) against the brute-force oracle.

The oracle (:mod:`constrain.testing.naive`) runs the reference parser over every token's bytes;
the engine must give exactly the same set at every step: random grammars under both lexing
policies with toy vocabularies, and the checked-in grammars with three real tokenizers
(byte-level BPE 49k, byte-level BPE 128k, SentencePiece with byte fallback).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings, strategies as st

from constrain.engine.bitmask import allocate_token_bitmask, bitmask_to_bool
from constrain.engine.matcher import Matcher, MatcherStateError, fill_next_token_bitmasks, get_store
from constrain.errors import ConfigError, GrammarError
from constrain.grammar import from_lark
from constrain.testing.naive import naive_mask, trie_mask
from constrain.tokenizers import Vocabulary

from tests.engine.test_random_grammars import grammars

ROOT = Path(__file__).resolve().parents[2]
GRAMMARS = ROOT / "grammars"
CORPORA = ROOT / "tests" / "data" / "grammars"


def _mask(m: Matcher) -> np.ndarray:
    bm = allocate_token_bitmask(1, m.vocab.n_vocab)
    m.fill_next_token_bitmask(bm)
    return bitmask_to_bool(bm[0], m.vocab.n_vocab)


def _diff(m: Matcher, fast: np.ndarray, slow: np.ndarray) -> str:
    bad = np.flatnonzero(fast != slow)[:8]
    return f"after {m.output!r}: " + ", ".join(
        f"{m.vocab.token_bytes(int(i))!r} engine={bool(fast[i])}" for i in bad)


toy_tokens = st.lists(st.binary(min_size=2, max_size=5).map(lambda b: bytes(x % 3 + 97 if x % 4 else 32 for x in b)),
                      max_size=12, unique=True)


@given(grammars(), st.sampled_from(["all", "longest"]), toy_tokens, st.data())
@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
def test_random_grammar_masks_equal_oracle(src, lexing, extra, data):
    try:
        g = from_lark(src, lexing=lexing)
    except GrammarError:
        assume(False)
    vocab = Vocabulary.byte_level(extra)
    m = Matcher(g, vocab)
    for _ in range(8):
        fast = _mask(m)
        slow = naive_mask(m.parser, vocab)
        assert np.array_equal(fast, slow), (src, lexing, _diff(m, fast, slow))
        allowed = np.flatnonzero(fast)
        if not allowed.size:
            break
        tok = int(data.draw(st.sampled_from(allowed.tolist())))
        assert m.accept_token(tok)
        if m.is_finished():
            break


# grammars with %ignore whitespace under the exact policy: splits anywhere in whitespace
@given(st.sampled_from(["json", "arithmetic"]), toy_tokens, st.data())
@settings(deadline=None, max_examples=40)
def test_ignore_whitespace_exact_policy(name, extra, data):
    g = from_lark(GRAMMARS / f"{name}.lark", lexing="all")
    vocab = Vocabulary.byte_level(extra + [b"  ", b" \n ", b"1 ", b" 1", b'" ', b'":', b"}, ", b"    "])
    m = Matcher(g, vocab)
    docs = sorted((CORPORA / name / "accept").glob("*.txt"))
    doc = data.draw(st.sampled_from(docs)).read_bytes()
    cut = data.draw(st.integers(0, len(doc)))
    assert m.accept_bytes(doc[:cut])
    fast = _mask(m)
    assert np.array_equal(fast, naive_mask(m.parser, vocab)), _diff(m, fast, naive_mask(m.parser, vocab))


def _docs(name):
    return sorted((CORPORA / name / "accept").glob("*.txt"))


REAL = ["json", "sql", "arithmetic", "go", "python"]


@pytest.mark.parametrize("vocab_name", ["smol_vocab", "deepseek_vocab", "mistral_vocab"])
@pytest.mark.parametrize("name", REAL)
def test_real_vocab_masks_equal_oracle(name, vocab_name, request):
    vocab = request.getfixturevalue(vocab_name)
    g = from_lark(GRAMMARS / f"{name}.lark")
    rng = np.random.default_rng(abs(hash((name, vocab_name))) % 2**32)
    docs = _docs(name)
    n_checked = 0
    for doc_path in rng.choice(docs, size=2, replace=False):
        doc = doc_path.read_bytes()
        cuts = sorted(set(rng.integers(0, len(doc) + 1, size=3).tolist()) | {len(doc)})
        for cut in cuts:
            m = Matcher(g, vocab)
            assert m.accept_bytes(doc[:cut])
            fast = _mask(m)
            slow = trie_mask(m.parser, vocab)
            assert np.array_equal(fast, slow), (doc_path.name, _diff(m, fast, slow))
            if cut == len(doc):
                assert fast[vocab.eos_ids[0]]
            n_checked += 1
    assert n_checked >= 4


@pytest.mark.parametrize("name", REAL)
def test_walk_documents_token_by_token(name, smol_hf, smol_vocab):
    """Real tokenizations of the corpus documents: every token is allowed when it comes, and
    EOS at the end (completeness through the token-level API)."""
    g = from_lark(GRAMMARS / f"{name}.lark")
    # the indentation grammar hands every boundary to the reference parser: fewer documents
    for doc_path in _docs(name)[:2 if name == "python" else 4]:
        text = doc_path.read_text()
        ids = smol_hf.encode(text, add_special_tokens=False).ids
        m = Matcher(g, smol_vocab)
        for i, tok in enumerate(ids):
            mask = _mask(m)
            assert mask[tok], (doc_path.name, i, smol_vocab.token_bytes(tok))
            assert m.accept_token(tok)
        assert _mask(m)[smol_vocab.eos_ids[0]]
        assert m.accept_token(smol_vocab.eos_ids[0]) and m.is_finished()
        assert m.output == text.encode()


@pytest.fixture(scope="module")
def json_grammar():
    return from_lark(GRAMMARS / "json.lark")


def test_matcher_api_contract(json_grammar, smol_vocab, smol_hf):
    m = Matcher(json_grammar, smol_vocab)
    ids = smol_hf.encode('{"a": [1, 2]}', add_special_tokens=False).ids
    eos = smol_vocab.eos_ids[0]
    assert not m.accept_token(eos)  # empty output is not JSON
    assert not m.accept_token(10**9) and not m.accept_token(-1)  # out of range: refused, no crash
    assert not m.accept_token(0)  # a special token is never text
    bad = smol_hf.encode("}", add_special_tokens=False).ids[0]
    assert not m.try_accept(bad) and not m.accept_token(bad) and m.n_tokens == 0
    assert m.validate_tokens(ids + [bad]) == len(ids)
    assert m.n_tokens == 0
    assert not m.accept_tokens(ids + [bad]) and m.n_tokens == 0  # all or nothing
    assert m.accept_tokens(ids)
    c = m.copy()
    assert m.is_complete() and m.try_accept(eos) and not m.is_finished()
    assert m.accept_token(eos) and m.is_finished()
    assert not m.accept_token(ids[0])  # after the end
    only_eos = _mask(m)
    assert only_eos.sum() == 1 and only_eos[eos]
    m.rollback(1)
    assert not m.is_finished() and m.is_complete()
    with pytest.raises(MatcherStateError):
        m.rollback(len(ids) + 1)
    m.rollback(len(ids))
    assert m.output == b"" and np.array_equal(_mask(m), _mask(Matcher(json_grammar, smol_vocab)))
    assert c.output == b'{"a": [1, 2]}' and not c.is_finished()  # copies are independent
    m.accept_tokens(ids[:3])
    m.reset()
    assert m.n_tokens == 0 and m.output == b""


def test_bitmask_inputs(json_grammar, smol_vocab):
    import torch

    m = Matcher(json_grammar, smol_vocab)
    ref = _mask(m)
    t = torch.full((2, (smol_vocab.n_vocab + 31) // 32 + 2), -1, dtype=torch.int32)  # wider rows
    m.fill_next_token_bitmask(t, 1)
    assert np.array_equal(bitmask_to_bool(t[1].numpy(), smol_vocab.n_vocab), ref)
    assert (t[1, -2:] == 0).all() and (t[0] == -1).all()  # padding zeroed, other rows untouched
    # numpy rows full of stale bits, exact width and wider: every word is written, not OR-ed into
    for extra in (0, 3):
        a = np.full((2, (smol_vocab.n_vocab + 31) // 32 + extra), -1, np.int32)
        m.fill_next_token_bitmask(a, 0)
        assert np.array_equal(bitmask_to_bool(a[0], smol_vocab.n_vocab), ref) and (a[1] == -1).all()
        assert not a[0, (smol_vocab.n_vocab + 31) // 32:].any()
    with pytest.raises(ConfigError):
        m.fill_next_token_bitmask(np.zeros((1, 3), np.int32))
    with pytest.raises(ConfigError):
        m.fill_next_token_bitmask(np.zeros((1, 2000), np.int64))


def test_refilling_the_same_bitmask_row(json_grammar, smol_vocab, smol_hf):
    """The second fill of the same array and row reuses the first one's checked view (the
    per-token case): stale bits and padding are still overwritten at every step, other rows
    and arrays are still filled on their own, and after a stop id only stop ids are left."""
    n = (smol_vocab.n_vocab + 31) // 32
    m = Matcher(json_grammar, smol_vocab)
    ref = Matcher(json_grammar, smol_vocab)
    a = np.full((2, n + 3), -1, np.int32)
    other = np.full((1, n), -1, np.int32)
    for i, t in enumerate(smol_hf.encode('{"a": [1, 2]}', add_special_tokens=False).ids):
        a[0] = -1
        m.fill_next_token_bitmask(a, 0)
        want = _mask(ref)
        assert np.array_equal(bitmask_to_bool(a[0], smol_vocab.n_vocab), want), i
        assert not a[0, n:].any() and (a[1] == -1).all()
        if i % 2:  # interleave another array and another row
            m.fill_next_token_bitmask(other)
            m.fill_next_token_bitmask(a, 1)
            assert np.array_equal(bitmask_to_bool(other[0], smol_vocab.n_vocab), want)
            assert np.array_equal(bitmask_to_bool(a[1], smol_vocab.n_vocab), want)
            a[1] = -1
        assert m.accept_token(t) and ref.accept_token(t)
    eos = smol_vocab.eos_ids[0]
    assert m.accept_token(eos)
    a[0] = -1
    m.fill_next_token_bitmask(a, 0)
    assert set(np.flatnonzero(bitmask_to_bool(a[0], smol_vocab.n_vocab))) == set(smol_vocab.eos_ids)
    assert not a[0, n:].any()


def test_batch_fill_matches_single(json_grammar, smol_vocab, smol_hf):
    texts = ['{"a": "x', "[1, 2", '{"k": tr', "", '{"a": {"b": [null, 1.5e']
    ms = []
    for t in texts:
        m = Matcher(json_grammar, smol_vocab)
        assert m.accept_bytes(t.encode())
        ms.append(m)
    bm = allocate_token_bitmask(len(ms) + 1, smol_vocab.n_vocab)
    fill_next_token_bitmasks(ms + [None], bm, threads=4)
    for i, m in enumerate(ms):
        assert np.array_equal(bitmask_to_bool(bm[i], smol_vocab.n_vocab), _mask(m)), texts[i]
    assert (bm[-1] == -1).all()


def test_store_is_shared_and_capped(json_grammar, smol_vocab):
    s = get_store(json_grammar, smol_vocab)
    assert Matcher(json_grammar, smol_vocab).store is s
    m = Matcher(json_grammar, smol_vocab)
    m.accept_bytes(b'{"a": "b')
    _mask(m)
    built = s.stats.entries_built
    _mask(m)
    assert s.stats.entries_built == built  # second mask: cache only
    from constrain.engine.store import TokenStore

    small = TokenStore(s.tables, smol_vocab, max_bytes=12_000)  # (interned words: 43 entries fit in 34 KB)
    m2 = Matcher(json_grammar, smol_vocab, store=small)
    for t in [b"[", b'"x', b'", 1', b", {", b'"k": [', b"true"]:
        assert m2.accept_bytes(t)
        assert np.array_equal(_mask(m2), trie_mask(m2.parser, smol_vocab))
    assert small.stats.evictions > 0 and small.stats.bytes <= 12_000 + 20_000
