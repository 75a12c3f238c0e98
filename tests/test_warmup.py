"""``warmup()`` loads every kernel the common paths use: after it, compiling a JSON Schema or a
Lark grammar and walking its masks compiles (or loads from numba's cache) nothing more.  A
kernel missing from warmup costs the first mask 3-20 ms of cache loading (bench TTFM)."""

from __future__ import annotations

import importlib
import pkgutil

import numpy as np
import pytest

import constrain


def _dispatchers():
    from numba.core.registry import CPUDispatcher

    out = {}
    for info in pkgutil.walk_packages(constrain.__path__, "constrain."):
        if not info.name.endswith("_kernels"):
            continue
        mod = importlib.import_module(info.name)
        for name, obj in vars(mod).items():
            if isinstance(obj, CPUDispatcher) and obj.__module__ == info.name:
                out[f"{info.name}.{name}"] = obj
    return out


@pytest.mark.parametrize("kind", ["schema", "lark"])
def test_no_kernel_loads_after_warmup(kind):
    from constrain.engine.matcher import Matcher
    from constrain.grammar import from_lark
    from constrain.jsonschema import compile_json_schema
    from constrain.tokenizers import Vocabulary
    from constrain.warmup import warmup

    warmup(diffusion=False)
    # the tokenizer's preparation (its trie, from a disk cache when there is one) comes first
    vocab = Vocabulary.byte_level(extra=[b'{"', b'": ', b"12", b"true", b'ab"', b"SELECT"])
    vocab.trie
    disp = _dispatchers()
    assert len(disp) > 10
    before = {k: len(d.overloads) for k, d in disp.items()}
    if kind == "schema":
        g = compile_json_schema({"type": "object", "properties": {"name": {"type": "string", "pattern": "^[a-z]+$"},
                                                                  "n": {"type": "number", "minimum": 0, "maximum": 100},
                                                                  "tag": {"enum": ["a", "b"]}},
                                 "required": ["name"], "additionalProperties": {"type": "boolean"}},
                                whitespace="flexible")
        text = b'{"name": "ab", "n": 12.5, "tag": "a", "zz": true}'
    else:
        g = from_lark('start: expr\nexpr: term (("+"|"-") term)*\nterm: NUMBER | NAME | "(" expr ")"\n'
                      'NUMBER: /[0-9]+/\nNAME: /[a-z]+/\n%ignore " "\n')
        text = b"(ab + 12) - x"
    m = Matcher(g, vocab)
    for b in text:
        m.next_token_mask()
        assert m.accept_bytes(bytes([b]))
    assert m.is_finished() or m.next_token_mask() is not None
    new = {k: len(d.overloads) - before[k] for k, d in disp.items() if len(d.overloads) != before[k]}
    assert not new, f"kernels first loaded after warmup: {new}"
