"""The model adapters: the toy table and the transformers KV-cache adapter."""

from __future__ import annotations

import numpy as np
import pytest

from constrain.errors import ConfigError
from constrain.sampling import LanguageModel, TableLM, TransformersLM


def test_table_lm_is_a_pure_function_of_seed_and_prefix():
    a, b = TableLM(5, 4, seed=1), TableLM(5, 4, seed=1)
    for prefix in ([], [0], [0, 3], [2, 2, 2]):
        np.testing.assert_array_equal(a(prefix), b(prefix))
        assert np.exp(a(prefix)).sum() == pytest.approx(1.0)
    assert not np.allclose(a([0]), TableLM(5, 4, seed=2)([0]))
    assert np.exp(a([0] * 8))[4] == 1.0  # at max_len only EOS
    assert isinstance(a, LanguageModel)
    t = TableLM(3, 2, table={(): [0.5, 0.5, 0.0]})
    assert t([])[2] == -np.inf
    with pytest.raises(ConfigError):
        TableLM(3, 2, table={(): [0.5, 0.6, 0.0]})
    with pytest.raises(ConfigError):
        TableLM(3, 5)


@pytest.fixture(scope="module")
def tiny_model():
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    cfg = transformers.LlamaConfig(vocab_size=48, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                                   num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=64)
    return transformers.LlamaForCausalLM(cfg).eval()


def test_transformers_adapter_cache_matches_full_recompute(tiny_model):
    import torch

    prompt = [1, 2, 3]
    lm = TransformersLM(tiny_model, prompt)

    def full(prefix):
        with torch.no_grad():
            out = tiny_model(input_ids=torch.tensor([prompt + prefix]))
        return torch.log_softmax(out.logits[0, -1].double(), -1).numpy()

    # extend, branch, shorten, repeat, jump: every answer equals a fresh forward pass
    seq = [[], [5], [5, 6], [5, 7], [5], [5], [5, 7, 8, 9], [], [10, 11], [10, 11, 12]]
    for prefix in seq:
        np.testing.assert_allclose(lm(prefix), full(prefix), atol=1e-5)
    naive = sum(len(prompt) + len(p) for p in seq)
    assert lm.n_forward_tokens < naive / 2  # the cache was used
    hot = TransformersLM(tiny_model, torch.tensor([prompt]), temperature=0.5)
    assert np.exp(hot([4])).sum() == pytest.approx(1.0)
    with pytest.raises(ConfigError):
        TransformersLM(tiny_model, prompt, temperature=0.0)
    with pytest.raises(ConfigError):
        TransformersLM(tiny_model, [])


def test_several_caches_serve_interleaved_branches(tiny_model):
    """SMC-like round robin over three branches: with one cache per branch every call after the
    first costs one new token, and every answer still equals a fresh forward pass."""
    import torch

    prompt = [1, 2, 3, 4]
    one = TransformersLM(tiny_model, prompt)
    three = TransformersLM(tiny_model, prompt, n_caches=3)
    branches = [[5], [6], [7]]
    for step in range(6):
        for b in branches:
            with torch.no_grad():
                ref = torch.log_softmax(tiny_model(input_ids=torch.tensor([prompt + b])).logits[0, -1].double(), -1)
            np.testing.assert_allclose(three(b), ref.numpy(), atol=1e-5)
            one(b)
            b.append(8 + (step + len(b)) % 30)
    assert three.n_forward_tokens < one.n_forward_tokens / 2
    assert three.n_forward_tokens <= len(prompt) + 3 * 6 + 3  # about one token per call
    with pytest.raises(ConfigError):
        TransformersLM(tiny_model, prompt, n_caches=0)
