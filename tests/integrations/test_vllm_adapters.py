"""The vLLM adapters' logic, without vLLM: fake configs, fake ``BatchUpdate``s, the real engine.

The logits processor is driven the way vLLM's ``InputBatch`` drives it (``update_state`` before
each step with added / removed / moved rows, output-token lists shared by reference, ``apply``
on the whole batch's logits); the backend's grammar the way ``StructuredOutputManager`` drives
it (fill a row, accept a draft token, fill the next row, roll back; validate drafts; stop ids).
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from enum import Enum, auto
from types import SimpleNamespace

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from constrain.engine.bitmask import bitmask_to_bool  # noqa: E402
from constrain.errors import ConstrainError  # noqa: E402
from constrain.integrations import _common  # noqa: E402
from constrain.integrations._common import (  # noqa: E402
    GrammarCache,
    SpecError,
    VocabularyCache,
    apply_bitmask_rows,
    parse_spec,
    restrict_vocabulary,
)
from constrain.integrations.vllm_backend import ConstrainBackend, StructuredOutputOptions  # noqa: E402
from constrain.integrations.vllm_logits import ConstrainLogitsProcessor, _validation_error  # noqa: E402

SCHEMA = {"type": "object", "properties": {"name": {"type": "string", "maxLength": 8},
                                         "n": {"type": "integer", "minimum": 0, "maximum": 99}},
          "required": ["name", "n"], "additionalProperties": False}


class Move(Enum):  # vLLM's MoveDirectionality, by name
    UNIDIRECTIONAL = auto()
    SWAP = auto()


@dataclass
class FakeBatchUpdate:
    batch_size: int
    removed: list = field(default_factory=list)
    added: list = field(default_factory=list)
    moved: list = field(default_factory=list)


@dataclass
class FakeParams:
    extra_args: dict | None = None
    all_stop_token_ids: set | None = None
    structured_outputs: object = None


def fake_config(width: int, max_num_seqs: int = 8):
    return SimpleNamespace(model_config=SimpleNamespace(get_vocab_size=lambda: width),
                           scheduler_config=SimpleNamespace(max_num_seqs=max_num_seqs))


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CONSTRAIN_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(_common, "GRAMMARS", GrammarCache())
    import constrain.integrations.vllm_backend as vb
    import constrain.integrations.vllm_logits as vl

    monkeypatch.setattr(vb, "GRAMMARS", _common.GRAMMARS)
    monkeypatch.setattr(vl, "GRAMMARS", _common.GRAMMARS)


# ----------------------------------------------------------------------------- specs and caches
def test_parse_spec_forms():
    assert parse_spec({"json_schema": SCHEMA})[0] == "json_schema"
    assert parse_spec({"grammar": "start: \"a\"\n"})[0] == "grammar"
    assert parse_spec({"regex": "a+"})[:2] == ("regex", "a+")
    assert parse_spec({"choice": ["x", "y"]})[0] == "choice"
    assert parse_spec({"json_object": True})[0] == "json_object"
    assert parse_spec(("lark", "start: \"a\"\n"))[0] == "grammar"
    kind, _, opts = parse_spec({"json_schema": SCHEMA, "options": {"whitespace": "flexible"}})
    assert opts == {"whitespace": "flexible"}
    for bad in ({}, {"regex": "a", "choice": ["a"]}, {"nope": 1}, "json", {"regex": "a", "options": {"x": 1}}):
        with pytest.raises(SpecError):
            parse_spec(bad)


def test_grammar_cache_memory_disk_and_errors(tmp_path):
    c = GrammarCache()
    g1 = c.get("json_schema", json.dumps(SCHEMA), {})
    g2 = c.get("json_schema", SCHEMA, {})  # same canonical spec, text or dict
    assert g1 is g2 and c.compiles == 1 and c.hits == 1
    fresh = GrammarCache()  # another process: the disk cache answers
    g3 = fresh.get("json_schema", SCHEMA, {})
    assert fresh.compiles == 0 and fresh.disk_hits == 1 and g3.fingerprint == g1.fingerprint
    with pytest.raises(ConstrainError):
        c.get("json_schema", "{not json", {})
    with pytest.raises(ConstrainError) as e1:
        c.get("regex", "(unclosed", {})
    n = c.compiles
    with pytest.raises(ConstrainError) as e2:  # remembered: no recompile, same message
        c.get("regex", "(unclosed", {})
    assert c.compiles == n and str(e1.value) == str(e2.value)


def test_grammar_cache_dedupes_concurrent_compiles():
    c = GrammarCache(disk=False)
    out, barrier = [], threading.Barrier(6)

    def go():
        barrier.wait()
        out.append(c.get("json_schema", SCHEMA, {}))

    ts = [threading.Thread(target=go) for _ in range(6)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert c.compiles == 1 and len({id(g) for g in out}) == 1


def test_lark_spec_is_never_a_path(tmp_path):
    p = tmp_path / "secret.lark"
    p.write_text('start: "secret"\n')
    c = GrammarCache(disk=False)
    with pytest.raises(ConstrainError):  # the text itself is parsed (and is not a grammar)
        c.get("grammar", str(p), {})


def test_gbnf_is_refused_with_a_hint():
    with pytest.raises(ConstrainError, match="Lark"):
        GrammarCache(disk=False).get("grammar", 'root ::= "a"', {})


def test_restrict_vocabulary(smol_vocab):
    v = restrict_vocabulary(smol_vocab, eos_ids=[0, 2])
    assert v.eos_ids == (0, 2) and v.n_vocab == smol_vocab.n_vocab
    assert restrict_vocabulary(smol_vocab) is smol_vocab
    cache = VocabularyCache(smol_vocab, smol_vocab.n_vocab + 64)  # padded logits: vocabulary unchanged
    assert cache.base is smol_vocab and cache.get({0, 2}) is cache.get([2, 0])


def test_vocabulary_disk_cache(tmp_path):
    from transformers import PreTrainedTokenizerFast

    tok = PreTrainedTokenizerFast(tokenizer_file="tests/data/tokenizers/smollm2/tokenizer.json", eos_token="<|im_end|>")
    v1 = _common.vocabulary_of(tok)
    files = list((tmp_path / "cache" / "vocabularies").glob("*.pkl"))
    assert len(files) == 1
    v2 = _common.vocabulary_of(tok)  # loaded from disk, same bytes, kinds and stop ids
    assert v2 is not v1 and v2.fingerprint == v1.fingerprint and v2.eos_ids == v1.eos_ids
    files[0].write_bytes(b"garbage")  # a corrupt file is discarded and rebuilt
    assert _common.vocabulary_of(tok).fingerprint == v1.fingerprint


def test_apply_bitmask_rows():
    logits = torch.zeros(3, 70)
    bm = np.zeros((2, 2), np.int32)  # 64 ids; columns 64..69 are padding
    bm[0, 0] = 0b101  # row 0 (logits row 2): ids 0 and 2
    bm[1, 1] = 1      # row 1 (logits row 0): id 32
    apply_bitmask_rows(logits, bm, [2, 0])
    assert torch.isfinite(logits[2]).nonzero().flatten().tolist() == [0, 2]
    assert torch.isfinite(logits[0]).nonzero().flatten().tolist() == [32]
    assert torch.isfinite(logits[1]).all()  # unconstrained row untouched


# ----------------------------------------------------------------------------- logits processor
def _greedy_step(proc, logits, outputs):
    out = proc.apply(logits)
    for i, o in outputs.items():
        if o is not None:
            o.append(int(torch.argmax(out[i])))


def test_logits_processor_batch_lifecycle(smol_vocab):
    width = smol_vocab.n_vocab + 64  # padded like a real embedding matrix
    proc = ConstrainLogitsProcessor(fake_config(width), torch.device("cpu"), False, vocabulary=smol_vocab, threads=2)
    assert proc.is_argmax_invariant() is False
    eos = smol_vocab.eos_ids[0]
    outs = {0: [], 1: [], 2: []}
    specs = {0: {"json_schema": SCHEMA}, 1: None, 2: {"choice": ["alpha", "beta"]}}
    added = [(i, FakeParams(extra_args=None if s is None else {"constrain": s}, all_stop_token_ids={eos}), None, outs[i])
             for i, s in specs.items()]
    proc.update_state(FakeBatchUpdate(3, added=added))
    assert sorted(proc.rows) == [0, 2]
    gen = torch.Generator().manual_seed(0)
    done = set()
    for step in range(80):
        logits = torch.randn(3, width, generator=gen)
        _greedy_step(proc, logits, {i: (None if i in done else outs[i]) for i in outs})
        for i in (0, 2):
            if outs[i] and outs[i][-1] == eos:
                done.add(i)
        assert all(t < smol_vocab.n_vocab for i in (0, 2) for t in outs[i])  # padding never wins
        if step == 3:  # swap rows 0 and 2, as vLLM's condense/reorder does
            proc.update_state(FakeBatchUpdate(3, moved=[(0, 2, Move.SWAP)]))
            outs[0], outs[2] = outs[2], outs[0]
            done = {2 - i if i in (0, 2) else i for i in done}
        else:
            proc.update_state(None)
        if done >= {0, 2}:
            break
    texts = {i: smol_vocab.decode([t for t in outs[i] if t != eos]).decode() for i in (0, 2)}
    # after the swap, row 2 holds the JSON request and row 0 the choice
    obj = json.loads(texts[2])
    assert set(obj) == {"name", "n"} and isinstance(obj["n"], int)
    assert texts[0] in ("alpha", "beta")
    # one-way move, then removal
    proc.update_state(FakeBatchUpdate(3, moved=[(2, 1, Move.UNIDIRECTIONAL)]))
    assert sorted(proc.rows) == [0, 1]
    proc.update_state(FakeBatchUpdate(2, removed=[0, 1]))
    assert proc.rows == {}
    logits = torch.zeros(2, width)
    assert proc.apply(logits) is logits and torch.isfinite(logits).all()


def test_logits_processor_added_row_replaces_old_state(smol_vocab):
    proc = ConstrainLogitsProcessor(fake_config(smol_vocab.n_vocab), "cpu", False, vocabulary=smol_vocab)
    out = []
    proc.update_state(FakeBatchUpdate(1, added=[(0, FakeParams({"constrain": {"regex": "[0-9]+"}}), None, out)]))
    assert 0 in proc.rows
    proc.update_state(FakeBatchUpdate(1, added=[(0, FakeParams(None), None, [])]))  # unconstrained now
    assert 0 not in proc.rows


def test_logits_processor_catches_up_and_rolls_back(smol_vocab):
    """A request re-added with output tokens (preemption) is caught up; discarded tokens roll back."""
    proc = ConstrainLogitsProcessor(fake_config(smol_vocab.n_vocab), "cpu", False, vocabulary=smol_vocab)
    from transformers import PreTrainedTokenizerFast

    tok = PreTrainedTokenizerFast(tokenizer_file="tests/data/tokenizers/smollm2/tokenizer.json")
    out = tok.encode('{"name": "ab', add_special_tokens=False)
    spec = {"json_schema": SCHEMA, "options": {"whitespace": "flexible"}}
    proc.update_state(FakeBatchUpdate(1, added=[(0, FakeParams({"constrain": spec}), None, out)]))
    logits = torch.zeros(1, smol_vocab.n_vocab)
    proc.apply(logits)
    row = proc.rows[0]
    assert row.fed == len(out) and not row.dead
    allowed = torch.isfinite(logits[0])
    assert allowed.any() and not allowed[smol_vocab.eos_ids[0]]
    del out[-2:]  # two tokens discarded (KV-load failure)
    proc.apply(torch.zeros(1, smol_vocab.n_vocab))
    assert row.fed == len(out) == row.matcher.n_tokens
    out.append(-1)  # an unrepaired async-scheduling placeholder: never mask from a stale state
    logits = torch.zeros(1, smol_vocab.n_vocab)
    proc.apply(logits)
    assert row.dead and "placeholder" in row.error
    assert torch.isfinite(logits[0]).nonzero().flatten().tolist() == list(smol_vocab.eos_ids)


def test_logits_processor_bad_spec_only_stops(smol_vocab):
    proc = ConstrainLogitsProcessor(fake_config(smol_vocab.n_vocab), "cpu", False, vocabulary=smol_vocab)
    good, bad = [], []
    proc.update_state(FakeBatchUpdate(2, added=[
        (0, FakeParams({"constrain": {"json_schema": {"type": "integer", "minimum": 5, "maximum": 1}}}), None, bad),
        (1, FakeParams({"constrain": {"regex": "[0-9]+"}}), None, good)]))
    logits = torch.zeros(2, smol_vocab.n_vocab)
    proc.apply(logits)
    assert torch.isfinite(logits[0]).nonzero().flatten().tolist() == list(smol_vocab.eos_ids)
    assert proc.rows[0].dead and proc.rows[0].error
    assert torch.isfinite(logits[1]).sum() == 10  # the ten digit tokens


def test_logits_processor_rejected_token_kills_row(smol_vocab):
    proc = ConstrainLogitsProcessor(fake_config(smol_vocab.n_vocab), "cpu", False, vocabulary=smol_vocab)
    out = []
    proc.update_state(FakeBatchUpdate(1, added=[(0, FakeParams({"constrain": {"regex": "[0-9]+"}}), None, out)]))
    proc.apply(torch.zeros(1, smol_vocab.n_vocab))
    from transformers import PreTrainedTokenizerFast

    tok = PreTrainedTokenizerFast(tokenizer_file="tests/data/tokenizers/smollm2/tokenizer.json")
    out.extend(tok.encode("abc", add_special_tokens=False))
    logits = torch.zeros(1, smol_vocab.n_vocab)
    proc.apply(logits)
    assert proc.rows[0].dead
    assert torch.isfinite(logits[0]).nonzero().flatten().tolist() == list(smol_vocab.eos_ids)


def test_logits_processor_second_instance_is_passive(smol_vocab):
    cfg = fake_config(smol_vocab.n_vocab)
    a = ConstrainLogitsProcessor(cfg, "cpu", False, vocabulary=smol_vocab)
    b = ConstrainLogitsProcessor(cfg, "cpu", False, vocabulary=smol_vocab)
    assert not a.passive and b.passive
    out = []
    upd = FakeBatchUpdate(1, added=[(0, FakeParams({"constrain": {"choice": ["x"]}}), None, out)])
    a.update_state(upd)
    b.update_state(upd)
    assert b.rows == {}
    logits = torch.zeros(1, smol_vocab.n_vocab)
    b.apply(logits)
    assert torch.isfinite(logits).all()


def test_validate_params():
    ConstrainLogitsProcessor.validate_params(FakeParams(None))
    ConstrainLogitsProcessor.validate_params(FakeParams({"constrain": {"regex": "[a-z]+"}}))
    ConstrainLogitsProcessor.validate_params(FakeParams({"constrain": json.dumps({"choice": ["a", "b"]})}))
    for bad in ({"regex": "(x"}, {"json_schema": "{oops"}, {"what": 1}, "not json"):
        with pytest.raises((ValueError, type(_validation_error(""))), match="constrain|JSON"):
            ConstrainLogitsProcessor.validate_params(FakeParams({"constrain": bad}))


# ----------------------------------------------------------------------------- backend
def _backend(vocab, width=None):
    return ConstrainBackend(vllm_config=None, tokenizer=vocab, vocab_size=width or vocab.n_vocab)


def _ids(text):
    from transformers import PreTrainedTokenizerFast

    tok = PreTrainedTokenizerFast(tokenizer_file="tests/data/tokenizers/smollm2/tokenizer.json")
    return tok.encode(text, add_special_tokens=False)


def test_backend_grammar_protocol(smol_vocab):
    be = _backend(smol_vocab, smol_vocab.n_vocab + 64)
    stops = {0, 2}
    g = be.compile_grammar(StructuredOutputOptions.JSON, json.dumps(SCHEMA), stop_token_ids=stops)
    bm = be.allocate_token_bitmask(4)
    assert bm.dtype == torch.int32 and bm.shape == (4, (smol_vocab.n_vocab + 64 + 31) // 32) and (bm == -1).all()
    doc = _ids('{"name":"ab","n":7}')
    # speculative protocol: fill row 0, accept draft 1, fill row 1, ..., then roll back
    drafts = doc[:3]
    g.fill_bitmask(bm, 0)
    for i, t in enumerate(drafts):
        assert bitmask_to_bool(bm[i].numpy(), smol_vocab.n_vocab)[t]
        assert g.accept_tokens("r", [t])
        g.fill_bitmask(bm, i + 1)
    g.rollback(len(drafts))
    assert g.num_processed_tokens == 0 and g.matcher.n_tokens == 0
    head = _ids('{"name"')
    bad = head + _ids("}") + _ids(":")  # '}' cannot follow a key
    assert g.validate_tokens(doc + [2]) == doc + [2]  # the whole document and a stop id
    assert g.validate_tokens(bad) == head
    assert g.matcher.n_tokens == 0  # validate never advances
    assert g.accept_tokens("r", doc)
    g.fill_bitmask(bm, 0)
    allowed = bitmask_to_bool(bm[0].numpy(), smol_vocab.n_vocab + 64)
    assert allowed[0] and allowed[2] and allowed.sum() == 2  # complete: exactly the stop ids
    assert g.accept_tokens("r", [0, 5, 6])  # stop id terminates; tokens after it are ignored
    assert g.is_terminated() and g.num_processed_tokens == len(doc) + 1
    assert g.accept_tokens("r", [7])
    g.rollback(1)  # across the stop id
    assert not g.is_terminated()
    assert not g.accept_tokens("r", _ids("x"))
    g.reset()
    assert g.matcher.n_tokens == 0 and g.num_processed_tokens == 0


@pytest.mark.parametrize("rtype,spec,text", [
    (StructuredOutputOptions.REGEX, r"[0-9]{3}", "123"),
    (StructuredOutputOptions.CHOICE, json.dumps(["red", "green"]), "green"),
    (StructuredOutputOptions.JSON_OBJECT, "", '{"a":1}'),
    (StructuredOutputOptions.GRAMMAR, 'start: "a" "b"+\n', "abbb"),
])
def test_backend_request_types(smol_vocab, rtype, spec, text):
    g = _backend(smol_vocab).compile_grammar(rtype, spec, stop_token_ids={2})
    assert g.accept_tokens("r", _ids(text))
    assert g.accept_tokens("r", [2]) and g.is_terminated()


def test_backend_errors_are_per_request(smol_vocab):
    be = _backend(smol_vocab)
    with pytest.raises(ConstrainError):
        be.compile_grammar(StructuredOutputOptions.JSON, "{bad json")
    with pytest.raises(ConstrainError):
        be.compile_grammar(StructuredOutputOptions.STRUCTURAL_TAG, "{}")
    g = be.compile_grammar(StructuredOutputOptions.REGEX, "[ab]+")  # the backend still serves
    assert g.accept_tokens("r", _ids("abba"))


def test_backend_compile_is_thread_safe(smol_vocab):
    be = _backend(smol_vocab)
    specs = [json.dumps({"type": "object", "properties": {f"k{i % 3}": {"type": "integer"}}, "required": [f"k{i % 3}"]})
             for i in range(9)]
    res, errs = [None] * 9, []

    def go(i):
        try:
            res[i] = be.compile_grammar(StructuredOutputOptions.JSON, specs[i], stop_token_ids={2})
        except Exception as e:  # pragma: no cover - a failure shows up in errs
            errs.append(e)

    ts = [threading.Thread(target=go, args=(i,)) for i in range(9)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errs
    for i, g in enumerate(res):
        assert g.accept_tokens("r", _ids(f'{{"k{i % 3}":{i}}}')) and g.accept_tokens("r", [2])
    assert res[0].matcher.store is res[3].matcher.store  # one store per (grammar, vocabulary)


def test_grammar_disk_cache_never_unpickles_a_damaged_file(tmp_path):
    c = GrammarCache()
    g = c.get("regex", "a+b", {})
    files = list((tmp_path / "cache").rglob("*.pkl"))
    assert len(files) == 1
    data = files[0].read_bytes()
    for damaged in (data[: len(data) // 2], data[:-3] + b"zzz", b"\x80\x04garbage"):
        files[0].write_bytes(damaged)
        fresh = GrammarCache()
        assert fresh.get("regex", "a+b", {}) == g  # rebuilt, not loaded
        assert fresh.disk_hits == 0 and fresh.compiles == 1
    fresh = GrammarCache()  # the rebuilt file is good again
    assert fresh.get("regex", "a+b", {}) == g and fresh.disk_hits == 1 and fresh.compiles == 0
