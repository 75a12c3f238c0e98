"""The embedded default model: fetched without its dependencies, cached, loaded offline."""

from __future__ import annotations

import json
from pathlib import Path
import os
import time

import pytest

from constrain import models
from constrain.errors import ConfigError, ModelLoadError

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def default_model():
    # First use downloads the wheel (no deps) and converts once; every later load is from cache.
    models.load_default(threads=1)
    assert models.is_cached()
    t0 = time.perf_counter()
    model, tok = models.load_default(threads=1)
    return model, tok, time.perf_counter() - t0


def test_cache_layout_and_marker(default_model):
    d = models.model_cache_dir()
    marker = json.loads((d / "constrain-model.json").read_text())
    assert marker["gguf_sha256"] == models.SMOLLM2_135M.sha256
    assert marker["dtype"] == "bfloat16"
    assert (d / "model.safetensors").is_file() and (d / "tokenizer.json").is_file()


def test_cached_load_is_offline_and_generates(default_model, monkeypatch):
    import torch

    # a cached load must never reach for pip or the GGUF
    def no_fetch(*a, **k):
        raise AssertionError("cached load tried to fetch the model")

    monkeypatch.setattr(models, "fetch_gguf", no_fetch)
    model, tok = models.load_default(threads=1)
    assert type(model).__name__ == "LlamaForCausalLM" and model.dtype == torch.bfloat16
    assert sum(p.numel() for p in model.parameters()) == 134_515_008
    assert tok.eos_token == "<|im_end|>" and tok.chat_template
    from constrain.decoding.text import chat_input_ids

    ids = chat_input_ids(tok, "What is the capital of France? Answer in one word.")
    with torch.inference_mode():
        out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=12, do_sample=False,
                             pad_token_id=tok.eos_token_id)
    text = tok.decode(out[0, ids.shape[1]:], skip_special_tokens=True)
    assert out.shape[1] > ids.shape[1] and text.strip()
    assert "paris" in text.lower()  # greedy SmolLM2 answers this one


def test_model_tokenizer_matches_vocabulary(default_model):
    """The GGUF-derived tokenizer gives the same byte vocabulary as the reference tokenizer.json."""
    from constrain.tokenizers import Vocabulary

    SMOLLM2_DIR = Path(__file__).parent / "data" / "tokenizers" / "smollm2"

    _, tok, _ = default_model
    ours = Vocabulary.from_tokenizer(tok)
    ref = Vocabulary.from_tokenizer(SMOLLM2_DIR)
    assert ours.all_token_bytes == ref.all_token_bytes
    assert ours.eos_ids == ref.eos_ids == (2,)


def test_bad_options():
    with pytest.raises(ConfigError, match="dtype"):
        models.load_default(dtype="int3")
    with pytest.raises(ConfigError, match="threads"):
        models.set_num_threads(0)
    with pytest.raises(ModelLoadError, match="does not exist"):
        models.load_pretrained_dir("/nonexistent/model")


def test_offline_env_override_missing_file(monkeypatch, tmp_path):
    monkeypatch.setenv("CONSTRAIN_SMOLLM2_GGUF", str(tmp_path / "missing.gguf"))
    with pytest.raises(ModelLoadError, match="CONSTRAIN_SMOLLM2_GGUF"):
        models.fetch_gguf()


def test_cli_json_runs_on_default_model(default_model, capsys):
    from constrain.cli import main

    schema = os.path.join(os.path.dirname(__file__), "..", "examples", "schemas", "person.json")
    rc = main(["json", "--schema", schema, "Invent a person who lives in Lisbon.", "--threads", "1",
               "--max-new-tokens", "24", "--json"])
    assert rc == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["new_tokens"] > 0 and out["finish_reason"] in ("stop", "length")
    assert set(out) >= {"text", "value", "valid", "errors", "constrained"}
