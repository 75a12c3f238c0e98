"""Constrained decoding with the real embedded model (SmolLM2-135M-Instruct).

Every output is checked independently of the library: ``json.loads`` + ``jsonschema`` with
formats asserted, ``re.fullmatch``, membership.  Greedy, sampling with several seeds (and a
high temperature, where an unconstrained 135M model rarely writes valid JSON), a left-padded
batch, beam search.  Schemas are tiny and ``max_new_tokens`` small so each test stays short.
"""

from __future__ import annotations

import json
import re

import jsonschema
import pytest
import torch

from constrain import generate, generate_json
from constrain.decoding.generate import CompiledSchema, compile_schema
from constrain.decoding.processor import GrammarLogitsProcessor
from constrain.errors import ConfigError, UnsupportedSchemaFeature

pytestmark = pytest.mark.slow

OBJ = {"type": "object", "properties": {
    "name": {"type": "string", "minLength": 1, "maxLength": 12},
    "age": {"type": "integer", "minimum": 0, "maximum": 120},
    "color": {"enum": ["red", "green", "blue"]}},
    "required": ["name", "age", "color"], "additionalProperties": False}
BOOLS = {"type": "array", "items": {"type": "boolean"}, "maxItems": 3}
PHONE = r"[0-9]{3}-[0-9]{4}"
CHOICES = ["yes", "no", "maybe"]
SEEDS = (0, 1, 2)


def validate(schema, value):
    v = jsonschema.Draft202012Validator
    v(schema, format_checker=v.FORMAT_CHECKER).validate(value)


@pytest.fixture(scope="module")
def model_tok():
    from constrain import models

    return models.load_default(threads=1)


@pytest.fixture(scope="module")
def obj_compiled():
    return compile_schema(OBJ)


def check_json(r, schema):
    assert r.finish_reason == "stop", r
    assert r.valid and not r.errors
    assert json.loads(r.text) == r.value
    validate(schema, r.value)
    assert 0 < r.new_tokens and r.prompt_tokens > 0 and r.seconds > 0


def test_object_greedy_and_sampled(model_tok, obj_compiled):
    model, tok = model_tok
    r = generate_json(model, tok, obj_compiled, "Invent a person.", max_new_tokens=40)
    check_json(r, OBJ)
    texts = set()
    for seed in SEEDS[:2]:
        r = generate_json(model, tok, obj_compiled, "Invent a person.", max_new_tokens=40, temperature=1.3, seed=seed)
        check_json(r, OBJ)
        texts.add(r.text)
    assert len(texts) > 1  # sampling does sample
    # same seed, same output
    again = generate_json(model, tok, obj_compiled, "Invent a person.", max_new_tokens=40, temperature=1.3,
                          seed=SEEDS[1])
    assert again.text == r.text


def test_bool_array_greedy_and_sampled(model_tok):
    model, tok = model_tok
    for kw in [{}] + [dict(temperature=1.5, seed=s) for s in SEEDS]:
        r = generate_json(model, tok, BOOLS, "Give me some truth values.", max_new_tokens=20, **kw)
        check_json(r, BOOLS)
        assert len(r.value) <= 3 and all(isinstance(v, bool) for v in r.value)


def test_regex_and_choices(model_tok):
    model, tok = model_tok
    for kw in [{}] + [dict(temperature=1.5, seed=s) for s in SEEDS]:
        r = generate(model, tok, "Give me a phone number.", regex=PHONE, max_new_tokens=12, **kw)
        assert r.finish_reason == "stop" and re.fullmatch(PHONE, r.text), r
        r = generate(model, tok, "Is the sky blue?", choices=CHOICES, max_new_tokens=6, **kw)
        assert r.finish_reason == "stop" and r.text in CHOICES, r


def test_lark_grammar_and_stream(model_tok):
    model, tok = model_tok
    grammar = 'start: NUM ("+" NUM)*\nNUM: /[1-9][0-9]?/\n'
    pieces = []
    r = generate(model, tok, "Write a sum of two small numbers, like 2+3.", grammar=grammar, max_new_tokens=10,
                 stream=pieces.append)
    assert re.fullmatch(r"[1-9][0-9]?(\+[1-9][0-9]?)*", r.text), r
    assert "".join(pieces) == r.text
    assert r.finish_reason in ("stop", "length")


def _left_padded(tok, prompts):
    from constrain.decoding.text import chat_input_ids

    rows = [chat_input_ids(tok, p)[0].tolist() for p in prompts]
    n = max(len(r) for r in rows)
    pad = tok.pad_token_id
    ids = torch.tensor([[pad] * (n - len(r)) + r for r in rows])
    mask = torch.tensor([[0] * (n - len(r)) + [1] * len(r) for r in rows])
    assert len({len(r) for r in rows}) == len(rows)  # really different lengths
    return ids, mask


def _decode_rows(proc, out, n_prompt):
    ms = [proc.replay(row[n_prompt:].tolist()) for row in out]
    return ms


@pytest.mark.parametrize("sample", [False, True])
def test_batch_left_padded(model_tok, obj_compiled, sample):
    model, tok = model_tok
    prompts = ["Invent a person.", "Invent a person who lives in Lisbon and likes the sea.",
               "A painter, please. Answer with a JSON object with the keys: name, age, color."]
    ids, mask = _left_padded(tok, prompts)
    proc = GrammarLogitsProcessor(obj_compiled.grammar, tok)
    if sample:
        torch.manual_seed(3)
    out = model.generate(input_ids=ids, attention_mask=mask, logits_processor=[proc], max_new_tokens=40,
                         do_sample=sample, temperature=1.0 if sample else None, top_k=0 if sample else None,
                         pad_token_id=tok.pad_token_id)
    for m in _decode_rows(proc, out, ids.shape[1]):
        assert m.is_finished(), m.output
        validate(OBJ, json.loads(m.output))
    assert proc.dead_rows == 0


def test_beam_search(model_tok, obj_compiled):
    model, tok = model_tok
    r = generate_json(model, tok, obj_compiled, "Invent a person.", max_new_tokens=40, num_beams=2)
    check_json(r, OBJ)
    # both returned beams of a raw generate call are valid documents
    from constrain.decoding.text import chat_input_ids

    ids = chat_input_ids(tok, "Give me some truth values.")
    proc = GrammarLogitsProcessor(compile_schema(BOOLS).grammar, tok)
    out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), logits_processor=[proc],
                         max_new_tokens=20, num_beams=2, num_return_sequences=2, do_sample=False,
                         pad_token_id=tok.pad_token_id)
    assert out.shape[0] == 2
    for m in _decode_rows(proc, out, ids.shape[1]):
        assert m.is_finished(), m.output
        validate(BOOLS, json.loads(m.output))


def test_length_finish_reason(model_tok):
    model, tok = model_tok
    schema = {"type": "object", "properties": {"story": {"type": "string", "minLength": 40}}, "required": ["story"]}
    r = generate_json(model, tok, schema, "Tell me a story.", max_new_tokens=3)
    assert r.finish_reason == "length" and r.value is None and not r.valid
    assert r.new_tokens == 3 and "max_new_tokens=3" in r.errors[0]
    assert r.text.startswith('{"')  # the truncated text is still given, as what it is


def test_pydantic_type_and_lenient(model_tok):
    from typing import Literal

    from pydantic import BaseModel, Field

    model, tok = model_tok

    class Pet(BaseModel):
        name: str = Field(max_length=10)
        kind: Literal["cat", "dog"]

    r = generate_json(model, tok, Pet, "Invent a pet.", max_new_tokens=30)
    assert r.finish_reason == "stop" and isinstance(r.value, Pet), r
    assert len(r.value.name) <= 10 and r.as_dict()["value"] == json.loads(r.text)

    r = generate_json(model, tok, list[bool], "Some truth values?", max_new_tokens=16)
    assert r.finish_reason in ("stop", "length")
    if r.finish_reason == "stop":
        assert isinstance(r.value, list) and all(isinstance(v, bool) for v in r.value)

    # JSON text works too; lenient mode reports what it did not enforce
    # (uniqueItems over a finite item set is enforced exactly; over all integers it is refused)
    text = json.dumps({"type": "array", "items": {"type": "integer"}, "maxItems": 3, "uniqueItems": True})
    with pytest.raises(UnsupportedSchemaFeature) as ei:
        generate_json(model, tok, text, "Numbers?")
    assert ei.value.pointer == "/uniqueItems"
    with pytest.warns(UserWarning, match="uniqueItems"):
        r = generate_json(model, tok, text, "Numbers?", lenient=True, max_new_tokens=12)
    assert [u[0] for u in r.unenforced] == ["uniqueItems"]
    if r.finish_reason == "stop":
        assert all(isinstance(v, int) for v in r.value)
        assert r.valid == (len(set(r.value)) == len(r.value))
    finite = json.dumps({"type": "array", "items": {"enum": [1, 2, 3]}, "maxItems": 3, "uniqueItems": True})
    r = generate_json(model, tok, finite, "Numbers?", max_new_tokens=12)
    assert not r.unenforced
    if r.finish_reason == "stop":
        assert r.valid and len(set(r.value)) == len(r.value) and set(r.value) <= {1, 2, 3}


def test_bad_arguments(model_tok, obj_compiled):
    model, tok = model_tok
    with pytest.raises(ConfigError, match="exactly one"):
        generate(model, tok, "x", regex="a", choices=["a"])
    with pytest.raises(ConfigError, match="max_new_tokens"):
        generate_json(model, tok, obj_compiled, "x", max_new_tokens=0)
    with pytest.raises(ConfigError, match="already compiled"):
        generate_json(model, tok, obj_compiled, "x", lenient=True)
    with pytest.raises(ConfigError, match="beam"):
        generate_json(model, tok, obj_compiled, "x", num_beams=2, stream=print)
    assert isinstance(obj_compiled, CompiledSchema)


def test_loop_without_fast_forward_equals_model_generate(model_tok, obj_compiled):
    """The one-sequence loop (KV cache, overlapped masks) picks the same greedy tokens as
    ``model.generate`` under the logits processor, with and without the mask thread."""
    from constrain.decoding.generate import _json_setup, _run_generate

    model, tok = model_tok
    prompt = "Invent a person."
    ref_setup = _json_setup(tok, obj_compiled, prompt, lenient=False, whitespace="compact", system=None,
                            instruction=None, compile_options={})
    ref = _run_generate(model, tok, ref_setup[2], ref_setup[1], max_new_tokens=40, temperature=0.0, top_p=1.0,
                        seed=None, num_beams=1, stream=None)
    for overlap in (False, True):
        r = generate_json(model, tok, obj_compiled, prompt, max_new_tokens=40, fast_forward=False, overlap=overlap)
        assert r.token_ids == ref["token_ids"] and r.text.encode() == ref["matcher"].output
        assert r.forward_passes == r.new_tokens - r.forced_tokens  # one model call per sampled token


def test_fast_forward_counts_and_validity(model_tok, obj_compiled):
    model, tok = model_tok
    for seed in SEEDS:
        r = generate_json(model, tok, obj_compiled, "Invent a person.", max_new_tokens=60, temperature=1.0, seed=seed)
        check_json(r, OBJ)
        # '{"name":"' and the keys after each value are forced: fewer model calls than tokens
        assert r.forced_tokens >= 2 and r.forward_passes <= r.new_tokens - r.forced_tokens
        assert r.as_dict()["forced_tokens"] == r.forced_tokens


def test_stream_json_partial_values(model_tok, obj_compiled):
    from constrain import stream_json
    from constrain.decoding.partial_json import MISSING

    model, tok = model_tok
    s = stream_json(model, tok, obj_compiled, "Invent a person.", max_new_tokens=60)
    chunks = list(s)
    r = s.result
    check_json(r, OBJ)
    assert "".join(c.text for c in chunks) == r.text == chunks[-1].output
    assert chunks[-1].partial == r.value
    partials = [c.partial for c in chunks if c.partial is not MISSING]
    assert partials and all(set(p) <= set(r.value) for p in partials)  # keys appear, never vanish
    assert [len(p) for p in partials] == sorted(len(p) for p in partials)
    assert sum(c.forced for c in chunks) == r.forced_tokens > 0
    assert sum(len(c.tokens) for c in chunks) == r.new_tokens
    # a bad schema is refused when the stream is created, before the model runs
    with pytest.raises(UnsupportedSchemaFeature):
        stream_json(model, tok, {"type": "array", "uniqueItems": True}, "x")


@pytest.mark.parametrize("method", ["awrs", "smc", "asap"])
def test_distribution_correct_sampling_options(model_tok, obj_compiled, method):
    model, tok = model_tok
    kw = {"particles": 2} if method == "smc" else {}
    r = generate_json(model, tok, obj_compiled, "Invent a person.", max_new_tokens=48, temperature=1.0, seed=0,
                      sampling=method, **kw)
    assert r.sampling["method"] == method and 0 <= r.sampling["p_grammatical"] <= 1
    if r.complete:
        check_json(r, OBJ)
    else:
        assert r.value is None and r.errors
    assert json.dumps(r.as_dict())  # the sampler object is not in the JSON form
    with pytest.raises(ConfigError):  # these samplers sample the model's own distribution
        generate_json(model, tok, obj_compiled, "x", sampling=method, temperature=0.0)
    with pytest.raises(ConfigError):
        generate_json(model, tok, obj_compiled, "x", particles=3)  # particles without smc
