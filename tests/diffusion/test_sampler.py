"""Soundness of constrained masked-diffusion decoding: with a random-logit denoiser and random
unmasking orders, every finished output is a word of the grammar (Earley oracle)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from constrain.diffusion import DiffusionConstraint, InfillChecker, RandomDenoiser, diffusion_generate
from constrain.engine.earley import CompiledParserTables, accepts
from constrain.grammar import from_lark
from constrain.jsonschema import compile_json_schema
from constrain.tokenizers import Vocabulary

JSON_PIECES = [b"{", b"}", b"[", b"]", b",", b":", b" ", b'"', b"a", b"b", b"1", b"0", b"-", b".", b"e",
               b"true", b"null", b'": ', b'"a"', b", ", b"12", b"\\", b"x"]
ARITH_PIECES = [b"1", b"2", b"0", b".", b"5", b"+", b"-", b"*", b"/", b"^", b"**", b"(", b")", b" ", b"12", b"x"]


def _vocab(pieces):
    v = Vocabulary.byte_level(extra=[p for p in pieces if len(p) > 1])
    ids = [v.all_token_bytes.index(p) for p in pieces]
    return v, ids


SETUPS = {}


def setup(name):
    if name not in SETUPS:
        if name == "json":
            g = from_lark("grammars/json.lark")
            pieces = JSON_PIECES
        elif name == "arith":
            g = from_lark("grammars/arithmetic.lark")
            pieces = ARITH_PIECES
        else:
            g = compile_json_schema({"type": "object", "properties": {
                "n": {"type": "integer", "minimum": 0}, "ok": {"type": "boolean"},
                "tags": {"type": "array", "items": {"enum": ["a", "b"]}, "maxItems": 2}},
                "required": ["n", "ok"], "additionalProperties": False})
            pieces = JSON_PIECES + [b"false", b"true", b'"n"', b'"ok"', b'"tags"']
        v, ids = _vocab(pieces)
        SETUPS[name] = (g, CompiledParserTables(g), InfillChecker(g), v, ids)
    return SETUPS[name]


@pytest.mark.parametrize("name", ["json", "arith", "schema"])
@given(seed=st.integers(0, 2**32 - 1), length=st.integers(1, 12), steps=st.integers(1, 12),
       aware=st.booleans())
@settings(max_examples=12, deadline=None)
def test_random_denoiser_outputs_are_words(name, seed, length, steps, aware):
    g, tables, ck, vocab, ids = setup(name)
    con = DiffusionConstraint(ck, vocab, length, length_aware=aware, allowed_ids=ids)
    den = RandomDenoiser(vocab.n_vocab + 3, allowed=ids + list(vocab.eos_ids), seed=seed, scale=2.0)
    r = diffusion_generate(den, con, steps=steps, seed=seed, max_rejections=40, max_rejections_per_step=12)
    assert r.valid, (name, seed)
    assert accepts(tables, r.text), (name, r.text, r.finished_by)
    if name in ("json", "arith"):   # a one-token word exists, so the token-exact finish always fits
        assert r.tokens is not None, (name, seed, r.text)
    if r.tokens is not None:
        assert (r.tokens >= 0).all()
        assert vocab.decode(t for t in r.tokens if t not in vocab.eos_ids) == r.text


def test_every_commit_keeps_output_completable():
    """Step by step: after each commit the partial output still has a completion."""
    g, tables, ck, vocab, ids = setup("json")
    rng = np.random.default_rng(0)
    con = DiffusionConstraint(ck, vocab, 10, allowed_ids=ids)
    den = RandomDenoiser(vocab.n_vocab, allowed=ids + list(vocab.eos_ids), seed=1, scale=2.0)
    while con.n_masked:
        c, _ = con.step(den(con.ids), rng, 1, max_rejections=200)
        if not c:
            break
        w = ck.check_segments(con.segments()).witness()
        assert w is not None and accepts(tables, w)
    r = con.finish()
    assert r.valid and accepts(tables, r.text)


def test_real_vocabulary_schema(smol_vocab):
    """The real SmolLM2 vocabulary (49k tokens, multi-byte pieces), random logits on a subset."""
    g, tables, ck, _, _ = setup("schema")
    pieces = [b"{", b'{"', b"n", b'":', b"1", b"0", b"12", b",", b'","', b"ok", b"true", b"false", b"}", b'"',
              b"tags", b'":[', b"]", b"a", b'"]', b" "]
    by = {b: i for i, b in enumerate(smol_vocab.all_token_bytes)}
    ids = [by[p] for p in pieces if p in by]
    assert len(ids) > 12
    for seed in range(3):
        con = DiffusionConstraint(ck, smol_vocab, 16, allowed_ids=ids)
        den = RandomDenoiser(smol_vocab.n_vocab, allowed=ids + list(smol_vocab.eos_ids), seed=seed, scale=3.0)
        r = diffusion_generate(den, con, steps=8, seed=seed, max_rejections=60)
        assert r.valid and accepts(tables, r.text), r.text


def test_tokenise_exact_counts():
    g, tables, ck, vocab, ids = setup("json")
    con = DiffusionConstraint(ck, vocab, 4, allowed_ids=ids)
    assert con._tokenise(b"true", 1, exact=True) == [vocab.all_token_bytes.index(b"true")]
    assert con._tokenise(b"true", 4, exact=True) is None          # t, r, u are not allowed pieces
    assert vocab.decode(con._tokenise(b"1, 0", 4, exact=True)) == b"1, 0"
    assert len(con._tokenise(b"1, 0", 3, exact=True)) == 3       # 1 ", " 0
    assert con._tokenise(b"1, 0", 2, exact=True) is None
    assert len(con._tokenise(b"1, 0", 4, exact=False)) == 3      # fewest pieces
    assert con._tokenise(b"", 2, exact=False) == []


def test_tiny_trained_mdlm_checkpoint(smol_vocab):
    """The committed tiny masked-diffusion model (examples/diffusion_tiny_mdlm.py): constrained
    decoding over the real SmolLM2 ids gives a word of the record schema."""
    pytest.importorskip("torch")
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    sys.path.insert(0, str(root / "examples"))
    from diffusion_tiny_mdlm import CKPT, SCHEMA, TinyDenoiser

    if not CKPT.exists():
        pytest.skip("no checkpoint")
    den = TinyDenoiser(n_vocab=smol_vocab.n_vocab)
    g = compile_json_schema(SCHEMA, separators=(", ", ": "))
    con = DiffusionConstraint(InfillChecker(g), smol_vocab, 64, allowed_ids=den.local)
    r = diffusion_generate(den, con, steps=8, seed=0, max_rejections=40)
    assert r.valid and accepts(g, r.text), r.text
    # the output fits the 64 positions (token-exact finishing)
    assert r.tokens is not None and len(r.tokens) == 64
    assert smol_vocab.decode(t for t in r.tokens if t not in smol_vocab.eos_ids) == r.text


def test_transformers_denoiser_adapter():
    """LLaDA/Dream-style call: prompt + ids with the model's mask id; logits of the generated part."""
    torch = pytest.importorskip("torch")
    from constrain.diffusion import MASK, TransformersDenoiser

    seen = {}

    class Out:
        def __init__(self, logits):
            self.logits = logits

    def model(x):
        seen["x"] = x.clone()
        t = x.shape[1]
        lg = torch.zeros(1, t, 7)
        lg[0, torch.arange(t), torch.arange(t) % 7] = 1.0   # row i peaks at id i % 7
        return Out(lg)

    den = TransformersDenoiser(model, mask_token_id=6, prompt_ids=[1, 2])
    out = den(np.array([MASK, 3, MASK]))
    assert seen["x"].tolist() == [[1, 2, 6, 3, 6]]
    assert out.shape == (3, 7) and out.argmax(1).tolist() == [2, 3, 4]
    out = TransformersDenoiser(model, 6, [1, 2], shift=True)(np.array([MASK, 3, MASK]))
    assert out.argmax(1).tolist() == [1, 2, 3]
