"""Many matchers on many threads (the batch fill, a server's thread pool) give the same masks
as one matcher at a time, with cold and warm shared stores."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from constrain.engine.bitmask import allocate_token_bitmask
from constrain.engine.matcher import Matcher, compile_grammar, fill_next_token_bitmasks
from constrain.engine.store import TokenStore
from constrain.grammar import from_lark
from constrain.jsonschema import compile_json_schema
from constrain.tokenizers import Vocabulary

SCHEMA = {"type": "object", "properties": {
    "name": {"type": "string", "maxLength": 12},
    "tags": {"type": "array", "items": {"enum": ["alpha", "beta", "gamma"]}, "maxItems": 4},
    "n": {"type": "integer", "minimum": -5, "maximum": 500},
    "kids": {"type": "array", "items": {"$ref": "#"}, "maxItems": 2}}, "required": ["name", "n"]}


def grammars():
    return [compile_json_schema(SCHEMA), from_lark("grammars/json.lark"),
            from_lark('start: expr\nexpr: term (("+"|"-") term)*\nterm: NUM | "(" expr ")"\nNUM: /[0-9]+/\n')]


@pytest.fixture(scope="module")
def vocab(smol_vocab):
    return smol_vocab


def walks(grammar, vocab, n_walks: int, steps: int, seed: int):
    """Token sequences and their masks, computed one at a time on a private store."""
    store = TokenStore(compile_grammar(grammar), vocab)
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n_walks):
        m = Matcher(grammar, vocab, store=store)
        toks, masks = [], []
        for _ in range(steps):
            mask = m.next_token_mask()
            masks.append(np.packbits(mask))
            allowed = np.flatnonzero(mask)
            if not allowed.size or m.is_finished():
                break
            t = int(rng.choice(allowed))
            toks.append(t)
            assert m.accept_token(t)
        out.append((toks, masks))
    return out


@pytest.mark.parametrize("gi", [0, 1, 2])
def test_threads_match_one_at_a_time(vocab, gi):
    g = grammars()[gi]
    ref = walks(g, vocab, n_walks=12, steps=25, seed=gi)
    store = TokenStore(compile_grammar(g), vocab)  # cold: entries are built under contention
    barrier = threading.Barrier(8)
    bad = []

    def replay(i):
        toks, masks = ref[i % len(ref)]
        m = Matcher(g, vocab, store=store)
        if i < 8:
            barrier.wait()
        for k, want in enumerate(masks):
            got = np.packbits(m.next_token_mask())
            if not np.array_equal(got, want):
                bad.append((i, k))
                return
            if k < len(toks):
                assert m.accept_token(toks[k])

    with ThreadPoolExecutor(8) as ex:
        list(ex.map(replay, range(48)))
    assert not bad, bad[:5]


def test_batch_fill_matches_single_fills(vocab):
    gs = grammars()
    rng = np.random.default_rng(7)
    matchers = []
    for i in range(24):
        g = gs[i % len(gs)]
        m = Matcher(g, vocab, store=TokenStore(compile_grammar(g), vocab)) if i % 2 else Matcher(g, vocab)
        for _ in range(int(rng.integers(0, 15))):
            allowed = np.flatnonzero(m.next_token_mask())
            if not allowed.size:
                break
            m.accept_token(int(rng.choice(allowed)))
        matchers.append(m)
    matchers.insert(5, None)
    for _ in range(3):
        bm = allocate_token_bitmask(len(matchers), vocab.n_vocab)
        fill_next_token_bitmasks(matchers, bm, threads=8)
        for i, m in enumerate(matchers):
            one = allocate_token_bitmask(1, vocab.n_vocab)
            if m is None:
                assert (bm[i] == -1).all()
                continue
            m.fill_next_token_bitmask(one)
            assert np.array_equal(bm[i], one[0]), i
        for m in matchers:  # advance everyone one token, then compare again
            if m is not None and not m.is_finished():
                allowed = np.flatnonzero(m.next_token_mask())
                if allowed.size:
                    m.accept_token(int(rng.choice(allowed)))


def test_copies_and_rollbacks_on_threads(vocab):
    g = grammars()[0]
    (toks, masks), = walks(g, vocab, n_walks=1, steps=30, seed=3)
    base = Matcher(g, vocab)
    bad = []

    def run(i):
        m = base.copy()
        for k in range(len(toks)):
            if not np.array_equal(np.packbits(m.next_token_mask()), masks[k]):
                bad.append((i, k))
                return
            m.accept_token(toks[k])
            if k % 3 == 2:  # back and forth
                m.rollback(2)
                m.accept_tokens(toks[k - 1:k + 1])

    with ThreadPoolExecutor(8) as ex:
        list(ex.map(run, range(16)))
    assert not bad, bad[:5]
