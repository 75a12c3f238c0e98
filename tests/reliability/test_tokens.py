"""Token-level misuse of a Matcher: out-of-range ids, disallowed tokens, calls after the end,
rollback beyond history, wrong bitmask shapes; plus the per-step work cap of a mask."""

from __future__ import annotations

import numpy as np
import pytest

from constrain.engine.bitmask import allocate_token_bitmask
from constrain.engine.matcher import Matcher, MatcherStateError
from constrain.errors import ConfigError, LimitExceeded, VocabularyError
from constrain.grammar import from_lark
from constrain.jsonschema import compile_json_schema
from constrain.tokenizers import Vocabulary
from rel_helpers import raises_clean

VOCAB = Vocabulary.byte_level([b'{"', b'":', b"true", b"null", b"12"])
EOS = VOCAB.eos_ids[0]


@pytest.fixture(scope="module")
def grammar():
    return compile_json_schema({"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]})


def snapshot(m: Matcher):
    return (m.output, m.n_tokens, m.is_finished(), m.is_complete(), m.next_token_mask().tobytes())


@pytest.mark.parametrize("tid", [-1, -2 ** 40, VOCAB.n_vocab, VOCAB.n_vocab + 7, 2 ** 62])
def test_ids_out_of_range_are_refused_and_state_unchanged(grammar, tid):
    m = Matcher(grammar, VOCAB)
    m.accept_token(ord("{"))
    before = snapshot(m)
    assert m.accept_token(tid) is False
    assert m.try_accept(tid) is False
    assert m.validate_tokens([ord('"'), tid]) == 1
    assert m.accept_tokens([ord('"'), tid]) is False
    assert snapshot(m) == before


@pytest.mark.parametrize("tid", [VOCAB.n_vocab, -1])
def test_ids_out_of_range_in_the_vocabulary_api(tid):
    e = raises_clean(lambda: VOCAB.token_bytes(tid), VocabularyError, f"token id {tid}")
    raises_clean(lambda: VOCAB.decode([1, tid]), VocabularyError, f"token id {tid}")
    assert "outside the vocabulary" in str(e)


@pytest.mark.parametrize("bad", ["7", 1.5, None, object()])
def test_non_integer_ids(grammar, bad):
    m = Matcher(grammar, VOCAB)
    raises_clean(lambda: m.accept_token(bad), ConfigError, "token id")


def test_disallowed_token_returns_false_state_unchanged(grammar):
    m = Matcher(grammar, VOCAB)
    assert m.accept_token(VOCAB.all_token_bytes.index(b'{"'))
    before = snapshot(m)
    mask = m.next_token_mask()
    for tid in np.flatnonzero(~mask)[:300].tolist():
        assert m.accept_token(tid) is False, tid
        assert snapshot(m) == before
    assert m.accept_token(EOS) is False  # not complete yet
    assert m.accept_bytes(b'a"\x01') is False
    assert snapshot(m) == before


def test_calls_after_the_end(grammar):
    m = Matcher(grammar, VOCAB)
    assert m.accept_bytes(b'{"a":12}')
    assert m.is_complete() and m.accept_token(EOS) and m.is_finished()
    before = snapshot(m)
    # after the end only stop ids are in the mask, and nothing more is accepted
    assert np.flatnonzero(m.next_token_mask()).tolist() == [EOS]
    assert m.accept_token(EOS) is False
    assert m.accept_token(ord(" ")) is False
    assert m.accept_bytes(b" ") is False
    assert m.accept_tokens([ord(" ")]) is False
    assert m.forced_bytes() == b""
    assert snapshot(m) == before
    m.rollback(1)  # the stop id can be taken back
    assert not m.is_finished() and m.is_complete()


def test_rollback_beyond_history(grammar):
    m = Matcher(grammar, VOCAB)
    m.accept_tokens([ord("{"), ord('"')])
    before = snapshot(m)
    e = raises_clean(lambda: m.rollback(3), MatcherStateError, "roll back 3", "2 accepted")
    assert isinstance(e, ValueError)
    raises_clean(lambda: m.rollback(-1), MatcherStateError, "-1")
    assert snapshot(m) == before
    m.rollback(2)
    assert m.output == b"" and m.n_tokens == 0
    raises_clean(lambda: m.rollback(1), MatcherStateError, "0 accepted")


def test_rollback_non_integer(grammar):
    m = Matcher(grammar, VOCAB)
    raises_clean(lambda: m.rollback("x"), ConfigError, "rollback")


def test_bitmask_shape_and_dtype(grammar):
    m = Matcher(grammar, VOCAB)
    raises_clean(lambda: m.fill_next_token_bitmask(np.zeros((1, 2), np.int32)), ConfigError, "words")
    raises_clean(lambda: m.fill_next_token_bitmask(np.zeros((1, 16), np.int64)), ConfigError, "int32")
    raises_clean(lambda: m.fill_next_token_bitmask([[0] * 16]), ConfigError, "numpy")
    bm = allocate_token_bitmask(2, VOCAB.n_vocab)
    raises_clean(lambda: m.fill_next_token_bitmask(bm, row=5), ConfigError, "row 5")


def test_wrong_objects():
    raises_clean(lambda: Matcher({"type": "object"}, VOCAB), ConfigError, "Grammar")


def test_mask_work_cap(grammar):
    from constrain.engine.store import TokenStore
    from constrain.engine.matcher import compile_grammar

    g = from_lark('start: item+\nitem: "a" | "ab" | "abc" | /[a-z]+/ "!"\n')
    store = TokenStore(compile_grammar(g), VOCAB, max_mask_work=1)
    m = Matcher(g, VOCAB, store=store)
    m.accept_bytes(b"ab")
    before = (m.output, m.n_tokens)
    e = raises_clean(lambda: m.next_token_mask(), LimitExceeded, "max_mask_work")
    assert e.limit == "max_mask_work" and (m.output, m.n_tokens) == before
    store.max_mask_work = 10 ** 6  # overridable; the same matcher goes on
    assert m.next_token_mask()[ord("c")]
