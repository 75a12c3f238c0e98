"""Caps: defaults, overrides, the compile deadline, and compile_in_subprocess (a worker
killed at the deadline, memory-capped, returning a picklable Grammar)."""

from __future__ import annotations

import pickle
import time

import pytest

import constrain
from constrain import Limits, LimitExceeded, compile_in_subprocess, use_limits
from constrain.errors import ConfigError, GrammarError, InvalidSchema
from constrain.grammar import from_lark
from constrain.jsonschema import compile_json_schema
from constrain.limits import DEFAULT_LIMITS, current_limits
from rel_helpers import raises_clean

SCHEMA = {"type": "object", "properties": {"a": {"type": "integer"}, "b": {"enum": ["x", "y"]}},
          "required": ["a"]}


def test_defaults_suit_a_server():
    d = DEFAULT_LIMITS
    assert 1 <= d.compile_time_s <= 60
    assert d.max_memory_bytes <= 16 << 30
    assert d.max_schema_depth >= 50 and d.max_count >= 1000 and d.max_string_length >= 10_000
    assert current_limits() == d


def test_bad_limits():
    with pytest.raises(ConfigError):
        Limits(max_count=0)
    with pytest.raises(ConfigError):
        Limits(compile_time_s="soon")
    with pytest.raises(ConfigError):
        compile_json_schema(SCHEMA, limits={"max_count": 3})


def test_use_limits_block():
    # limits are a context variable: they hold in this thread (new threads start from the defaults)
    with use_limits(Limits(max_count=5)):
        assert current_limits().max_count == 5
        with pytest.raises(LimitExceeded, match="max_count"):
            compile_json_schema({"type": "array", "maxItems": 6})
    assert current_limits() == DEFAULT_LIMITS
    compile_json_schema({"type": "array", "maxItems": 6})


def test_limit_exceeded_pickles_with_fields():
    e = LimitExceeded("too big", limit="max_count", value=3, pointer="/maxItems")
    f = pickle.loads(pickle.dumps(e))
    assert (type(f), f.limit, f.value, f.pointer, str(f)) == (LimitExceeded, "max_count", 3, "/maxItems", str(e))
    g = pickle.loads(pickle.dumps(InvalidSchema("bad", pointer="/type")))
    assert isinstance(g, InvalidSchema) and g.pointer == "/type"


def test_compile_deadline_in_process():
    t0 = time.monotonic()
    e = raises_clean(lambda: compile_json_schema({"enum": list(range(10_000))}, limits=Limits(compile_time_s=0.5)),
                     LimitExceeded, "compile_time_s")
    assert time.monotonic() - t0 < 10 and e.value == 0.5


def test_compile_deadline_lark():
    text = "start: " + " | ".join(f'"k{i}" /[a-z]{{1,{40 + i}}}/' for i in range(300)) + "\n"
    raises_clean(lambda: from_lark(text, limits=Limits(compile_time_s=0.05)), LimitExceeded, "compile_time_s")


def test_subprocess_returns_the_same_grammar():
    g = compile_in_subprocess(compile_json_schema, SCHEMA, timeout=120)
    assert g == compile_json_schema(SCHEMA) and g.fingerprint == compile_json_schema(SCHEMA).fingerprint


def test_subprocess_reraises_the_compile_error():
    e = raises_clean(lambda: compile_in_subprocess(compile_json_schema, {"type": 5}, timeout=120), InvalidSchema,
                     "at /type", seconds=130)
    assert e.pointer == "/type"
    raises_clean(lambda: compile_in_subprocess(from_lark, 'start: a\na: b\n', timeout=120), GrammarError, "'b'",
                 seconds=130)


def test_subprocess_is_killed_at_the_deadline():
    t0 = time.monotonic()
    e = raises_clean(lambda: compile_in_subprocess(compile_json_schema, {"enum": list(range(20_000))}, timeout=3,
                                                   limits=Limits(compile_time_s=None)),
                     LimitExceeded, "killed", seconds=60)
    assert e.limit == "compile_time_s" and time.monotonic() - t0 < 30


def test_subprocess_memory_cap():
    # a cap far below what the compile needs: MemoryError in the worker, or the worker dies
    lim = Limits(max_memory_bytes=64 << 20, compile_time_s=None)
    e = raises_clean(lambda: compile_in_subprocess(compile_json_schema, {"enum": [f"{i:06d}" + "q" * 114 for i in range(2000)]},
                                                   timeout=120, limits=lim), LimitExceeded, seconds=130)
    assert e.limit == "max_memory_bytes"


def test_subprocess_needs_picklable_arguments():
    raises_clean(lambda: compile_in_subprocess(lambda: None), ConfigError, "picklable")


def test_exported():
    assert constrain.Limits is Limits and constrain.compile_in_subprocess is compile_in_subprocess
