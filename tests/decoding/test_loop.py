"""The one-sequence decoding loop (``constrain.decoding.loop.decode``) with a fake model.

The fake model's logits are a fixed pseudo-random function of the whole sequence it has read,
and it keeps that sequence in its "KV cache", so the tests can check what the loop fed it: the
prompt, then every sampled and fast-forwarded token exactly once, in order.
"""

from __future__ import annotations

import hashlib
import json
from types import SimpleNamespace

import jsonschema
import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

from constrain.decoding.loop import DecodeStats, decode
from constrain.engine.matcher import Matcher
from constrain.errors import ConfigError
from constrain.jsonschema import compile_json_schema
from constrain.tokenizers import Vocabulary

SCHEMA = {"type": "object", "properties": {
    "name": {"type": "string", "maxLength": 6},
    "kind": {"enum": ["cat", "dog", "caterpillar"]},
    "tags": {"type": "array", "items": {"enum": ["a", "bb"]}, "maxItems": 3},
    "age": {"type": "integer", "minimum": 0, "maximum": 30}},
    "required": ["name", "kind", "age"], "additionalProperties": False}

EXTRA = [b'{"', b'name', b'":"', b'","', b'kind', b'age', b'":', b'cat', b'dog', b'tags', b'"]']


class FakeLM(torch.nn.Module):
    def __init__(self, width: int, bias: dict[int, float] | None = None):
        super().__init__()
        self.width = width
        self.bias = bias or {}
        self.calls = 0

    def forward(self, input_ids, cache=None, use_cache=True, logits_to_keep=1):
        self.calls += 1
        seen = (list(cache) if cache is not None else []) + input_ids[0].tolist()
        self.last_seen = seen
        h = hashlib.blake2b(np.asarray(seen, np.int64).tobytes(), digest_size=8).digest()
        g = torch.Generator().manual_seed(int.from_bytes(h, "little") >> 1)
        logits = torch.randn((1, 1, self.width), generator=g) * 3
        for t, b in self.bias.items():
            logits[0, 0, t] += b
        return SimpleNamespace(logits=logits, cache=seen)


@pytest.fixture(scope="module")
def setup():
    vocab = Vocabulary.byte_level(EXTRA)
    grammar = compile_json_schema(SCHEMA)
    by_bytes = {vocab.token_bytes(i): i for i in range(vocab.n_vocab) if vocab.token_bytes(i)}

    def encode(text: str) -> list[int]:  # greedy longest match, like a tiny BPE
        data, out, i = text.encode(), [], 0
        while i < len(data):
            j = max(k for k in range(i + 1, len(data) + 1) if data[i:k] in by_bytes)
            out.append(by_bytes[data[i:j]])
            i = j
        return out

    return vocab, grammar, encode


def run(setup, *, seed, temperature=1.0, fast_forward=True, max_new_tokens=200, top_p=1.0, overlap=False):
    vocab, grammar, encode = setup
    # a strong pull towards the stop id keeps documents short
    model = FakeLM(vocab.n_vocab, {vocab.eos_ids[0]: 4.0, ord("}"): 3.0, ord('"'): 2.0})
    m = Matcher(grammar, vocab)
    st_ = DecodeStats()
    prompt = torch.tensor([[1, 2, 3]])
    steps = list(decode(model, m, prompt, encode=encode, max_new_tokens=max_new_tokens, temperature=temperature,
                        top_p=top_p, seed=seed, fast_forward=fast_forward, overlap=overlap, stats=st_))
    return m, st_, steps, model


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31), top_p=st.sampled_from([1.0, 0.9, 0.3]), overlap=st.booleans())
def test_outputs_validate_and_the_model_reads_each_token_once(setup, seed, top_p, overlap):
    m, stats, steps, model = run(setup, seed=seed, top_p=top_p, overlap=overlap)
    tokens = [t for s in steps for t in s]
    assert stats.new_tokens == len(tokens) == m.n_tokens
    if stats.finished:
        assert m.is_finished()
        jsonschema.validate(json.loads(m.output), SCHEMA)
    # what the model read (its cache): the prompt, then the steps' tokens, each once, in order,
    # up to a step boundary (the last step or two are never fed: generation ended)
    seen = model.last_seen
    assert seen == ([1, 2, 3] + tokens)[: len(seen)]
    bounds = np.cumsum([3] + [len(s) for s in steps]).tolist()
    assert len(seen) in bounds and len(seen) >= bounds[-1] - len(steps[-1]) - (len(steps[-2]) if len(steps) > 1 else 0)
    assert stats.forward_passes == model.calls
    assert stats.sampled_tokens + stats.forced_tokens == stats.new_tokens
    assert stats.forward_passes <= stats.sampled_tokens


def test_fast_forward_appends_forced_tokens_without_forward_passes(setup):
    vocab, _, _ = setup
    m, stats, steps, model = run(setup, seed=7)
    assert stats.finished
    assert stats.forced_tokens > 0 and stats.forward_passes < stats.new_tokens
    assert stats.forward_passes == model.calls
    # a step that fast-forwarded starts with its sampled token, then the forced ones
    assert any(len(s) > 1 for s in steps)
    m2, stats2, _, _ = run(setup, seed=7, fast_forward=False)
    assert stats2.forced_tokens <= 1  # at most the final stop id, appended without a model call
    assert stats2.forward_passes >= stats2.new_tokens - 1


def test_greedy_equals_an_explicit_argmax_walk(setup):
    vocab, grammar, _ = setup
    m, stats, steps, model = run(setup, seed=0, temperature=0.0, fast_forward=False, max_new_tokens=40)
    ref = Matcher(grammar, vocab)
    seq = [1, 2, 3]
    ref_model = FakeLM(vocab.n_vocab, model.bias)
    for _ in range(stats.new_tokens):
        if ref.is_complete() and not ref.parser.next_bytes():
            tok = vocab.eos_ids[0]
        else:
            logits = ref_model(torch.tensor([seq])).logits[0, -1]
            allowed = torch.from_numpy(ref.next_token_mask())
            tok = int(torch.argmax(torch.where(allowed, logits, torch.tensor(float("-inf")))))
        assert ref.accept_token(tok)
        seq.append(tok)
    assert ref.output == m.output


def test_budget_and_truncation(setup):
    m, stats, steps, _ = run(setup, seed=3, max_new_tokens=5)
    assert stats.new_tokens <= 5 and not stats.finished and not m.is_finished()
    with pytest.raises(ConfigError):
        run(setup, seed=3, max_new_tokens=0)
    with pytest.raises(ConfigError):
        run(setup, seed=3, top_p=0.0)
