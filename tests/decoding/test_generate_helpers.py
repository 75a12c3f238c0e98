"""generate_json's pieces that need no model: schema inputs, instructions, validation, streaming."""

from __future__ import annotations

import json
import sys
from typing import Literal

import pytest
import torch

from constrain.decoding.generate import (
    CompiledSchema, JsonResult, _ByteStreamer, _stream_callback, _validation_errors, compile_schema,
    schema_instruction,
)
from constrain.errors import ConfigError, UnsupportedSchemaFeature

SCHEMA = {"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "string"}}, "required": ["a"]}


def test_schema_inputs(tmp_path):
    from pydantic import BaseModel

    class M(BaseModel):
        x: int
        tag: Literal["p", "q"]

    path = tmp_path / "s.json"
    path.write_text(json.dumps(SCHEMA))
    fps = {compile_schema(s).grammar.fingerprint for s in (SCHEMA, json.dumps(SCHEMA), path, str(path))}
    assert len(fps) == 1
    cm = compile_schema(M)
    assert cm.schema["required"] == ["x", "tag"] and cm.convert('{"x":1,"tag":"q"}', None) == M(x=1, tag="q")
    ct = compile_schema(list[bool])
    assert ct.schema == {"items": {"type": "boolean"}, "type": "array"} and ct.convert("[true]", None) == [True]
    assert compile_schema(cm) is cm and isinstance(cm, CompiledSchema)
    with pytest.raises(ConfigError, match="readable file"):
        compile_schema(str(tmp_path / "missing.json"))
    with pytest.raises(ConfigError, match="object or a boolean"):
        compile_schema([])
    with pytest.raises(ConfigError, match="not valid JSON"):
        compile_schema("{nope")
    with pytest.raises(UnsupportedSchemaFeature) as ei:
        compile_schema({"type": "array", "uniqueItems": True})
    assert ei.value.pointer == "/uniqueItems"
    with pytest.warns(UserWarning):
        c = compile_schema({"type": "array", "uniqueItems": True}, lenient=True)
    assert [u[0] for u in c.unenforced] == ["uniqueItems"]


def test_instructions():
    assert schema_instruction(SCHEMA) == "Answer with a JSON object with the keys: a (optional: b)."
    assert schema_instruction({"type": "object", "properties": {"a": {}, "b": {}}}) == \
        "Answer with a JSON object with the keys: a, b."
    assert schema_instruction({"type": "array"}) == "Answer with a JSON array."
    assert schema_instruction({"enum": ["x", 1]}) == 'Answer with one of: "x", 1.'
    assert schema_instruction(True) == "Answer in JSON."


def test_validation_is_exact_for_decimals():
    cs = compile_schema({"type": "number", "multipleOf": 0.1})
    assert _validation_errors(cs, "0.3", 0.3) == []  # float arithmetic alone says it is not
    cs = compile_schema({"type": "integer", "multipleOf": 3})
    assert _validation_errors(cs, "4", 4) and _validation_errors(cs, "6", 6) == []
    cs = compile_schema({"type": "string", "format": "email"})
    assert _validation_errors(cs, '"nope"', "nope")  # formats are asserted


def test_byte_streamer_joins_split_utf8(smol_vocab):
    pieces = []
    s = _ByteStreamer(smol_vocab, pieces.append)
    s.put(torch.tensor([[1, 2, 3]]))  # the prompt: skipped
    # "é" as two byte tokens, then a special id (nothing), then text
    ids = [smol_vocab.all_token_bytes.index(bytes([b])) for b in "é".encode()]
    for t in ids + [smol_vocab.eos_ids[0], smol_vocab.all_token_bytes.index(b"a")]:
        s.put(torch.tensor([t]))
    s.end()
    assert "".join(pieces) == "éa" and pieces[0] == "é"


def test_stream_callback_and_result_dict(capsys):
    assert _stream_callback(None) is None
    _stream_callback(sys.stdout)("hi")
    assert capsys.readouterr().out == "hi"
    with pytest.raises(ConfigError):
        _stream_callback(3)
    r = JsonResult(text="[1]", finish_reason="stop", prompt_tokens=3, new_tokens=4, seconds=0.5,
                   tokens_per_second=8.0, token_ids=[1, 2], value=[1], valid=True)
    d = r.as_dict()
    assert d["value"] == [1] and "token_ids" not in d and d["unenforced"] == [] and r.complete


def test_pydantic_objects_are_closed_unless_extra_allow():
    from typing import Literal

    from pydantic import BaseModel, ConfigDict

    from constrain.decoding.generate import _schema_spec
    from constrain.engine.earley import accepts
    from constrain.jsonschema import from_pydantic
    from constrain.jsonschema.compiler import close_pydantic_objects

    class Inner(BaseModel):
        k: Literal["a", "b"]

    class Outer(BaseModel):
        inner: Inner
        n: int

    class Open(BaseModel):
        model_config = ConfigDict(extra="allow")
        n: int

    s = _schema_spec(Outer).schema
    assert s["additionalProperties"] is False and s["$defs"]["Inner"]["additionalProperties"] is False
    assert _schema_spec(Open).schema["additionalProperties"] is True  # explicit: kept
    g = from_pydantic(Outer)
    assert accepts(g, b'{"inner":{"k":"a"},"n":1}')
    assert not accepts(g, b'{"inner":{"k":"a"},"n":1,"x":2}')
    assert accepts(from_pydantic(Outer, extra_keys=True), b'{"inner":{"k":"a"},"n":1,"x":2}')
    # enum / const values that look like schemas are data, not subschemas
    assert close_pydantic_objects({"const": {"properties": {}}}) == {"const": {"properties": {}}}
