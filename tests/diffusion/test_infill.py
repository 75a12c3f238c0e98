"""Left-to-right (multi-region) infilling with an autoregressive model through the checker:
every finished output is a word of the grammar, whatever the model does."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from constrain.diffusion import InfillChecker
from constrain.diffusion.infill import Hole, infill, parse_template
from constrain.engine.earley import accepts
from constrain.grammar import from_lark
from constrain.jsonschema import compile_json_schema
from constrain.tokenizers import Vocabulary

PIECES = [b"{", b"}", b"[", b"]", b",", b":", b" ", b'"', b"a", b"b", b"1", b"0", b"-", b".", b"e", b"true",
          b"null", b'": ', b'"a"', b", ", b"12", b"\\", b"x", b"+", b"*", b"(", b")"]
DOCS = {"json": [b'{"a": [1, 2.5], "b": {"c": null}, "d": "x y"}', b'[true, -1e3, "ab", {}]'],
        "arithmetic": [b"(1 + 2.5) * 3 - 4 / (5 ** 2)", b"12 * (3 + 4) - 5"]}
_SETUP: dict = {}


def setup(name):
    if name not in _SETUP:
        g = from_lark(f"grammars/{name}.lark")
        v = Vocabulary.byte_level(extra=[p for p in PIECES if len(p) > 1])
        _SETUP[name] = (g, InfillChecker(g), v)
    return _SETUP[name]


class RandomLM:
    """log-probs drawn from a seeded normal per context, peaked on a few pieces."""

    def __init__(self, vocab, seed, ids=None):
        self.vocab, self.seed = vocab, seed
        if ids is None:
            ids = [vocab.all_token_bytes.index(p) for p in PIECES]
        self.ids = list(ids) + list(vocab.eos_ids)

    def __call__(self, ids):
        rng = np.random.default_rng([self.seed, len(ids), *ids[-3:]])
        out = np.full(self.vocab.n_vocab, -30.0)
        out[self.ids] = rng.normal(size=len(self.ids)) * 3
        return out - np.logaddexp.reduce(out)


@st.composite
def templates(draw, doc):
    n = draw(st.integers(1, 3))
    cuts = sorted(draw(st.lists(st.integers(0, len(doc)), min_size=2 * n, max_size=2 * n)))
    items, i = [], 0
    for k in range(n):
        a, b = cuts[2 * k], cuts[2 * k + 1]
        items += [doc[i:a], Hole(draw(st.integers(0, 6)))]
        i = b
    items.append(doc[i:])
    return items


@pytest.mark.parametrize("name", ["json", "arithmetic"])
@given(data=st.data(), seed=st.integers(0, 2**31), temp=st.sampled_from([0.0, 1.0, 2.0]))
@settings(max_examples=25, deadline=None)
def test_infill_outputs_are_words(name, data, seed, temp):
    g, ck, vocab = setup(name)
    doc = data.draw(st.sampled_from(DOCS[name]))
    tpl = data.draw(templates(doc))
    r = infill(RandomLM(vocab, seed), vocab, ck, tpl, temperature=temp, seed=seed, max_tokens=4,
               max_rejections_per_step=6, max_rejections=30)
    assert r.valid and accepts(g, r.text), (tpl, r.text, r.finished_by)
    # the fixed text is kept, in order, around the fills
    parts = parse_template(tpl)
    rebuilt = b"".join(c + (r.fills[k] if k < len(r.fills) else b"") for k, c in enumerate(parts[0::2]))
    assert rebuilt == r.text


def test_parse_template():
    assert parse_template('{"a": <hole>, "b": <hole>}') == [b'{"a": ', Hole(), b', "b": ', Hole(), b"}"]
    assert parse_template(["x", Hole(2), Hole(3), b"y"]) == [b"x", Hole(5), b"y"]
    assert parse_template([Hole()]) == [b"", Hole(), b""]


def test_unconstrained_baseline_is_checked_by_the_parser():
    g, ck, vocab = setup("json")
    r = infill(RandomLM(vocab, 3), vocab, ck, "[<hole>]", constrained=False, max_tokens=3)
    assert r.valid == accepts(g, r.text)
    assert r.n_checks == 0


def test_schema_hole_inside_string():
    """A hole inside a string value of an enum: only the enum's spellings fit."""
    schema = {"type": "object", "properties": {"c": {"enum": ["red", "green"]}, "n": {"type": "integer"}},
              "required": ["c", "n"], "additionalProperties": False}
    g = compile_json_schema(schema)
    v = Vocabulary.byte_level()
    for seed in range(3):
        lm = RandomLM(v, seed, ids=[v.all_token_bytes.index(bytes([b])) for b in range(32, 127)])
        r = infill(lm, v, g, '{"c":"<hole>","n":<hole>}', seed=seed, temperature=1.0, max_tokens=5)
        assert r.valid and accepts(g, r.text), r.text
        assert r.fills[0] in (b"red", b"green")


@pytest.mark.slow
def test_smollm2_multi_region_json():
    """The real 135M model fills two regions of a person.json document; the output validates."""
    import json

    from constrain import models

    model, tok = models.load_default(threads=1)
    schema = json.load(open("examples/schemas/person.json"))
    g = compile_json_schema(schema)
    r = infill(model, tok, g, '{"name":"Ada","age":<hole>,"city":<hole>}', prompt="A person as JSON: ", max_tokens=8)
    assert r.valid and accepts(g, r.text), r.text
    doc = json.loads(r.text)
    assert doc["name"] == "Ada" and 0 <= doc["age"] <= 120
