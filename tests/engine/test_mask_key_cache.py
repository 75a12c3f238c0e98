"""The warm mask path's caches against the slow oracle: the whole-mask key memoised on the
parser (by its threads tuple), and completeness cached with the key under maximal munch.

A stale memo or a cached EOS bit would show up as a mask that differs from
:func:`~constrain.testing.naive.trie_mask` at a position reached again by rollback, in a
parser copy that went another way, or at a position that shares its key with another."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from constrain.engine.bitmask import bitmask_to_bool
from constrain.engine.earley import ByteParser, CompiledParserTables
from constrain.engine.store import TokenStore
from constrain.grammar import from_lark
from constrain.testing.naive import trie_mask
from constrain.tokenizers import Vocabulary

GRAMMARS = Path(__file__).resolve().parents[2] / "grammars"
DOCS = Path(__file__).resolve().parents[1] / "data" / "grammars" / "json" / "accept"

# multi-byte tokens that cross lexeme boundaries, so masks have split groups and children
VOCAB = Vocabulary.byte_level([b'{"', b'":', b'", "', b", ", b"tr", b"true", b"1.", b"e-", b"]}", b'"a', b" \n",
                               b"null", b"}, {", b'"}', b"0,"])


def _mask(store: TokenStore, p: ByteParser) -> np.ndarray:
    out = np.zeros(store.n_words, np.uint32)
    store.fill(p, out)
    return bitmask_to_bool(out.view(np.int32), VOCAB.n_vocab)


@pytest.fixture(scope="module", params=["longest", "all"])
def json_store(request):
    g = from_lark(GRAMMARS / "json.lark", lexing=request.param)
    return TokenStore(CompiledParserTables(g), VOCAB)


@given(data=st.data())
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_walk_with_rollbacks_and_copies_matches_oracle(json_store, data):
    """Feed a document in random chunks, roll back at random, fork copies; at every stop the
    warm store's mask (EOS included) equals the oracle's and a fresh parser's fed the same
    bytes, and every key names one mask of text tokens.  (The keys of the two need not be equal: a row made
    while the scan memo holds its scan takes the memo's id, one made by the fresh parser in one
    go its seed key's; both ids are exact.)"""
    store = json_store
    doc = data.draw(st.sampled_from(sorted(DOCS.glob("*.txt")))).read_bytes()[:120]
    p = ByteParser(store.tables)
    parsers = [p]
    by_key: dict = {}
    for _ in range(data.draw(st.integers(4, 14))):
        op = data.draw(st.sampled_from(["feed", "feed", "rollback", "copy", "switch"]))
        if op == "feed" and p.pos < len(doc):
            n = data.draw(st.integers(1, 6))
            assert p.feed(doc[p.pos:p.pos + n])
        elif op == "rollback" and p.n_steps:
            p.rollback_to(data.draw(st.integers(0, p.n_steps)))
        elif op == "copy":
            p = p.copy()
            parsers.append(p)
        elif op == "switch":
            p = data.draw(st.sampled_from(parsers))
        fresh = ByteParser(store.tables)
        assert fresh.feed(bytes(p.buf))
        got = _mask(store, p)
        assert np.array_equal(got, trie_mask(p, VOCAB)), bytes(p.buf)
        assert np.array_equal(got, _mask(store, fresh))
        text = got.copy()
        text[list(VOCAB.eos_ids)] = False  # (exact lexing: completeness is not in the key)
        for q in (p, fresh):
            seen = by_key.setdefault(store.mask_key(q), text)
            assert np.array_equal(seen, text), bytes(p.buf)


@pytest.mark.parametrize("lexing", ["longest", "all"])
@pytest.mark.parametrize("first", ["start", "later"])
def test_eos_not_shared_between_keys_that_coincide(lexing, first):
    """``start: X?`` with ``X = (ab)*c``: after ``ab`` the lexer is back in its start state on
    row 0, so the reading (hence the mask key) is the start position's, but only the start is
    complete.  Whichever is asked first, the other's EOS bit must be its own."""
    g = from_lark('start: X?\nX: /(ab)*c/\n', lexing=lexing)
    store = TokenStore(CompiledParserTables(g), VOCAB)
    eos = VOCAB.eos_ids[0]
    p0 = ByteParser(store.tables)
    p2 = ByteParser(store.tables)
    assert p2.feed(b"ab")
    order = [p0, p2] if first == "start" else [p2, p0]
    for _ in range(2):  # the second round is answered from the caches
        for p in order:
            got = _mask(store, p)
            assert np.array_equal(got, trie_mask(p, VOCAB))
            assert got[eos] == (p is p0)


def test_key_memo_follows_the_threads_tuple():
    """The memo answers only for the threads tuple it was computed for."""
    g = from_lark(GRAMMARS / "json.lark")
    store = TokenStore(CompiledParserTables(g), VOCAB)
    p = ByteParser(store.tables)
    assert p.feed(b'{"a": [1')
    k1 = store.mask_key(p)
    assert p.mask_key_memo[0] is p.threads and p.mask_key_memo[1] == k1
    mark = p.n_steps
    assert p.feed(b", 2]")
    k2 = store.mask_key(p)
    assert k2 != k1
    p.rollback_to(mark)
    assert store.mask_key(p) == k1
    assert p.feed(b"]}")
    q = ByteParser(store.tables)
    assert q.feed(b'{"a": [1]}')
    assert store.mask_key(p) == store.mask_key(q)
