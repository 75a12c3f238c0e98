"""Forced continuations (fast-forward): ``ByteParser.next_bytes``, ``Matcher.forced_bytes`` and
``Matcher.forced_tokens`` against a brute-force oracle that feeds every byte value.

The oracle for ``next_bytes`` tries all 256 bytes on a copy of the parser; ``forced_bytes``
must equal "follow the only viable byte while the output is not complete".  Prefixes are cut
from real documents of each grammar (and JSON Schema instances), so the states are the ones
decoding meets; the ``longest``-lexing grammars (sql, python, go) exercise the probing path.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from constrain.engine.earley import ByteParser
from constrain.engine.matcher import Matcher
from constrain.grammar import from_lark
from constrain.jsonschema import compile_json_schema
from constrain.tokenizers import Vocabulary

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT / "tests" / "data" / "grammars"

SCHEMA = {"type": "object", "properties": {
    "name": {"type": "string", "maxLength": 8},
    "kind": {"enum": ["cat", "dog", "caterpillar"]},
    "age": {"type": "integer", "minimum": 0, "maximum": 30}},
    "required": ["name", "kind", "age"], "additionalProperties": False}
SCHEMA_DOCS = [b'{"name":"Rex","kind":"dog","age":3}', b'{"name":"","kind":"caterpillar","age":30}',
               b'{"name":"ab","kind":"cat","age":0}']


def oracle_next(p: ByteParser) -> list[int]:
    out = []
    for b in range(256):
        c = p.copy()
        if c.feed(bytes([b])):
            out.append(b)
    return out


def oracle_forced(p: ByteParser, limit: int = 256) -> bytes:
    p = p.copy()
    out = bytearray()
    while len(out) < limit and not p.is_complete():
        nb = oracle_next(p)
        if len(nb) != 1:
            break
        p.feed(bytes(nb))
        out += bytes(nb)
    return bytes(out)


def _docs(name: str) -> list[bytes]:
    return [f.read_bytes() for f in sorted((CORPUS / name / "accept").glob("*.txt"))][:4]


@pytest.fixture(scope="module")
def cases():
    out = {"schema": (compile_json_schema(SCHEMA), SCHEMA_DOCS)}
    for name in ("json", "arithmetic", "sql", "python"):
        out[name] = (from_lark(ROOT / "grammars" / f"{name}.lark"), _docs(name))
    return out


@settings(max_examples=40, deadline=None)
@given(data=st.data(), which=st.sampled_from(["schema", "json", "arithmetic", "sql", "python"]))
def test_next_bytes_and_forced_bytes_equal_the_oracle(cases, data, which):
    grammar, docs = cases[which]
    doc = data.draw(st.sampled_from(docs))
    cut = data.draw(st.integers(0, min(len(doc), 120)))
    m = Matcher(grammar, Vocabulary.byte_level())
    assert m.accept_bytes(doc[:cut])
    before = (m.output, m.parser.n_steps)
    want = oracle_next(m.parser)
    assert m.parser.next_bytes() == want
    for k in (1, 2):  # a limit stops early: some k of the viable bytes, never a wrong one
        got = m.parser.next_bytes(limit=k)
        assert len(got) == min(k, len(want)) and set(got) <= set(want)
    assert m.forced_bytes() == oracle_forced(m.parser)
    assert (m.output, m.parser.n_steps) == before  # queries leave the state unchanged


def test_forced_bytes_on_a_fixed_key_object(cases):
    grammar, _ = cases["schema"]
    m = Matcher(grammar, Vocabulary.byte_level())
    assert m.forced_bytes() == b'{"name":"'
    m.accept_bytes(b'{"name":"Rex')
    assert m.forced_bytes() == b""  # more name characters or the closing quote
    m.accept_bytes(b'","kind":"')
    assert m.forced_bytes() == b""  # cat / caterpillar / dog
    m.accept_bytes(b"d")
    assert m.forced_bytes() == b'og","age":'
    m.accept_bytes(b'og","age":3')
    assert m.forced_bytes() == b""  # 3 is complete as a number, 30 is possible
    m.accept_bytes(b"0")
    assert m.forced_bytes() == b""  # "}", or 30.0 / 30e0 (integers in JSON Schema's sense)
    assert set(m.parser.next_bytes()) >= {ord("}"), ord(".")}
    m.accept_bytes(b"}")
    assert m.is_complete() and m.forced_bytes() == b""
    assert m.accept_token(m.vocab.eos_ids[0]) and m.forced_bytes() == b""


def test_forced_tokens_are_canonical_and_accepted(smol_vocab, smol_hf, cases):
    grammar, _ = cases["schema"]

    def encode(s):
        return smol_hf.encode(s, add_special_tokens=False).ids

    m = Matcher(grammar, smol_vocab)
    ff = m.forced_tokens(encode)
    forced = m.forced_bytes()
    got = b"".join(smol_vocab.token_bytes(t) for t in ff)
    assert ff and forced.startswith(got) and got != forced  # the tail a longer token may span is kept back
    assert ff == encode(got.decode())  # the tokenizer's own tokens for those bytes
    # no vocabulary token starting inside the last kept token reaches past the forced bytes
    start = len(got) - len(smol_vocab.token_bytes(ff[-1]))
    assert not any(smol_vocab.extends_prefix(forced[s:]) for s in range(start, len(got)))
    assert m.accept_tokens(ff)
    # mid-enum: "d" forces 'og","age":' whatever the tokenizer does, and the result is accepted
    m.accept_bytes(b'"Rex","kind":"d')
    ff = m.forced_tokens(encode)
    assert m.validate_tokens(ff) == len(ff)
    assert m.forced_bytes().startswith(b"".join(smol_vocab.token_bytes(t) for t in ff))


def test_forced_tokens_refuse_an_encoder_that_changes_the_bytes(cases):
    grammar, _ = cases["schema"]
    v = Vocabulary.byte_level([b"\xe2\x96\x81{"])  # a SentencePiece-like "▁{" token
    m = Matcher(grammar, v)
    assert m.forced_tokens(lambda s: [256]) == []  # "▁{" is not the forced "{"
    assert m.forced_tokens(lambda s: list(s.encode())[:1] + [9999]) == []  # out of range


def test_extends_prefix(smol_vocab):
    longest = max(smol_vocab.all_token_bytes, key=len)
    assert smol_vocab.extends_prefix(longest[:-1]) and smol_vocab.extends_prefix(longest[:1])
    assert not smol_vocab.extends_prefix(longest)  # nothing is longer than the longest token
    assert smol_vocab.extends_prefix(b"")
    assert not smol_vocab.extends_prefix(b"\x00\x00\x00zzqx")
    v = Vocabulary.byte_level([b"ab"])
    assert v.extends_prefix(b"a") and not v.extends_prefix(b"ab") and not v.extends_prefix(b"b")


def test_extends_prefix_equals_a_scan_of_the_vocabulary(smol_vocab):
    import random

    rng = random.Random(0)
    texts = [b for b, k in zip(smol_vocab.all_token_bytes, smol_vocab.kinds) if k == 0 and b]
    prefixes = [t[: rng.randrange(len(t) + 1)] for t in rng.sample(texts, 200)]
    prefixes += [bytes(rng.randrange(256) for _ in range(rng.randrange(1, 4))) for _ in range(100)]
    for p in prefixes:
        want = any(len(t) > len(p) and t.startswith(p) for t in texts)
        assert smol_vocab.extends_prefix(p) == want, p
