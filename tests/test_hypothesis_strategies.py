"""constrain.hypothesis: strategies that generate valid documents from grammars, regexes and
JSON Schemas (issue 12).

Every example is re-checked by an independent tool (``debug=True``: Lark's own parser for the
grammar files, ``jsonschema`` for schemas, ``re.fullmatch`` for regexes); small budgets must
still terminate with complete documents; shrinking must reach small documents; and the
shortcut the generator takes for maximal-munch lexers (deciding allowed bytes without feeding
them) must agree with feeding every byte to the reference parser.
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, find, given, settings
from hypothesis import strategies as st

from constrain.engine.earley import accepts
from constrain.grammar import from_lark
from constrain.grammar import from_regex as regex_grammar
from constrain.hypothesis import DocumentGenerator, _Run, from_grammar, from_regex, from_schema
from constrain.jsonschema import compile_json_schema

REPO = Path(__file__).resolve().parents[1]
GRAMMARS = sorted((REPO / "grammars").glob("*.lark"))
BENCH = REPO.parent / "shared" / "data" / "jsonschemabench-dev"

FAST = settings(max_examples=25, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


# ------------------------------------------------------------------ grammar files

@pytest.mark.parametrize("path", GRAMMARS, ids=lambda p: p.stem)
def test_grammar_examples_parse_with_lark(path):
    """debug=True re-parses each document with Lark (header options, Python indenter)."""
    seen = []
    grammar = from_lark(str(path))

    @settings(FAST, max_examples=12 if path.stem in ("go", "python", "sql") else 25)
    @given(from_grammar(str(path), max_size=60, debug=True, as_bytes=True, ascii_only=path.stem == "sql"))
    def check(doc):
        assert accepts(grammar, doc)
        seen.append(doc)

    check()
    assert seen


def test_sql_unicode_case_fold_keyword_agrees_with_lark():
    """Found by these strategies: "distinct"i once matched Unicode case folds (ı for i), so
    maximal munch accepted ``dıstinct`` where Lark's lexer splits it (d / ıs / tinct) and
    rejects.  ASCII keywords now fold ASCII case only (constrain/grammar/lark_frontend.py)."""
    from constrain.hypothesis import _lark_checker

    path = REPO / "grammars" / "sql.lark"
    doc = "select d\u0131stinct a from b"
    assert not accepts(from_lark(str(path)), doc.encode())
    with pytest.raises(Exception):
        _lark_checker(path.read_text(), str(path))(doc)
    assert accepts(from_lark(str(path)), b"SeLeCt DISTINCT a FROM b")


def test_json_grammar_documents_are_json():
    """Soundness of grammars/json.lark against Python's json module, on generated documents."""

    @settings(FAST, max_examples=60)
    @given(from_grammar(str(REPO / "grammars" / "json.lark"), max_size=80))
    def check(doc):
        json.loads(doc)

    check()


# ------------------------------------------------------------------------ schemas

SCHEMAS = [
    {"type": "object", "properties": {"n": {"type": "integer", "minimum": 0, "maximum": 99},
                                      "tags": {"type": "array", "items": {"enum": ["a", "b", 3]}, "maxItems": 3},
                                      "name": {"type": "string", "pattern": "^[a-z]{1,8}$"}},
     "required": ["n", "name"], "additionalProperties": False},
    {"type": "array", "items": {"type": "number", "exclusiveMinimum": 0, "multipleOf": 0.5}, "minItems": 1},
    {"anyOf": [{"type": "string", "format": "ipv4"}, {"type": "boolean"}, {"const": {"k": [1, None]}}]},
    {"type": "object", "properties": {"d": {"type": "string", "format": "date"},
                                      "t": {"type": "string", "format": "time"}}, "required": ["d", "t"]},
    {"type": "object", "properties": {"a": {"$ref": "#/$defs/node"}}, "required": ["a"],
     "$defs": {"node": {"type": "object", "properties": {"v": {"type": "integer"},
                                                        "next": {"$ref": "#/$defs/node"}},
                        "required": ["v"], "additionalProperties": False}}},
    {"type": "string", "minLength": 3, "maxLength": 5},
    {"oneOf": [{"type": "integer", "multipleOf": 3}, {"type": "integer", "multipleOf": 5}]},
]

# a few real-world schemas from the JSONSchemaBench development sample (compile quickly)
BENCH_FILES = ["Glaiveai2K/Glaiveai2K---calculate_distance_7dba2565.json",
               "Kubernetes/Kubernetes---kb_967_Normalized.json",
               "Github_easy/Github_easy---o84204.json",
               "WashingtonPost/WashingtonPost---wp_30_Normalized.json",
               "MCPspec/MCPspec---ReadResourceRequest.json",
               "BFCL/BFCL_simple_88.json"]


@pytest.mark.parametrize("schema", SCHEMAS, ids=[f"schema{i}" for i in range(len(SCHEMAS))])
def test_schema_examples_validate(schema):
    @settings(FAST, max_examples=40)
    @given(from_schema(schema, debug=True, max_size=200))
    def check(value):
        pass

    check()


@pytest.mark.parametrize("name", BENCH_FILES, ids=lambda n: n.split("---")[-1].split("/")[-1][:30])
def test_bench_schema_examples_validate(name):
    path = BENCH / name
    if not path.exists():
        pytest.skip(f"{path} not available")
    schema = json.loads(path.read_text())["schema"]

    @settings(FAST, max_examples=15)
    @given(from_schema(schema, debug=True, max_size=300))
    def check(value):
        pass

    check()


def test_schema_as_text_and_options():
    schema = {"type": "object", "properties": {"x": {"type": "integer"}}, "required": ["x"]}

    @settings(FAST, max_examples=20)
    @given(from_schema(schema, as_text=True, whitespace="flexible", debug=True, max_size=60))
    def check(text):
        assert isinstance(text, str)
        x = json.loads(text)["x"]
        assert x == int(x)  # an integer by JSON Schema's rules (1.0 is one)

    check()


# ------------------------------------------------------------------------ regexes

REGEXES = [r"[a-z]+@[a-z]{2,5}\.(com|org)", r"(ab|cd)*e?", r"\d{3}-\d{4}", r"[^\n]{0,10}x",
           r"(?:0|[1-9][0-9]*)(?:\.[0-9]+)?", r"é+ñ|日本"]


@pytest.mark.parametrize("pattern", REGEXES)
def test_regex_examples_fullmatch(pattern):
    @settings(FAST, max_examples=50)
    @given(from_regex(pattern, debug=True))
    def check(s):
        assert re.fullmatch(pattern, s)

    check()


# --------------------------------------------------------------------- termination

@pytest.mark.parametrize("size", [0, 1, 3, 10])
def test_all_readings_budget_is_exact(size):
    """Schema and regex grammars: completion lengths are exact, so no document is longer
    than the budget (``max_size``, or the shortest length plus half of it when larger)."""
    rng = random.Random(size)
    for g in (compile_json_schema(SCHEMAS[0]), compile_json_schema(SCHEMAS[3]),
              regex_grammar(REGEXES[0]), regex_grammar(REGEXES[1])):
        gen = DocumentGenerator(g, max_size=size)
        shortest = len(gen.shortest())
        for _ in range(30):
            doc = gen.generate(lambda n: rng.randrange(n))
            assert doc is not None and accepts(g, doc)
            assert len(doc) <= max(size, shortest + size // 2)


@pytest.mark.parametrize("path", GRAMMARS, ids=lambda p: p.stem)
def test_maximal_munch_budget_terminates(path):
    """Grammar files (maximal munch): with small budgets every walk ends in a complete
    document, a few bytes past the budget at most."""
    g = from_lark(str(path))
    gen = DocumentGenerator(g, max_size=8)
    rng = random.Random(7)
    for _ in range(8):
        doc = gen.generate(lambda n: rng.randrange(n))
        assert doc is not None and accepts(g, doc), doc
        assert len(doc) <= 8 + 40, doc


def test_choice_zero_is_the_shortest_document():
    assert DocumentGenerator(compile_json_schema(SCHEMAS[0])).shortest() == b'{"n":0,"name":"a"}'
    assert DocumentGenerator(regex_grammar(r"\d{3}-\d{4}")).shortest() == b"000-0000"
    assert DocumentGenerator(from_lark(str(REPO / "grammars" / "json.lark"))).shortest() == b"0"


# ----------------------------------------------------------------------- shrinking

# derandomized: these tests measure how far the shrinker gets, which varies with the seed (a
# seed drawn from the suite's random state left one full run at a 55-byte local minimum where
# ``[null]`` is the usual result); a fixed seed makes them a regression check of the generator
SHRINK = settings(database=None, max_examples=3000, deadline=None, derandomize=True,
                  suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


def test_shrinks_schema_key_to_small_example():
    """A property failing on any instance holding key "debug" shrinks to a small object: at
    best ``{"debug":true}``; a sibling key declared before "debug" (properties come in schema
    order) can survive, since dropping it means raising an earlier choice."""
    schema = {"type": "object", "properties": {"name": {"type": "string"}, "size": {"type": "integer"},
                                                "debug": {"type": "boolean"},
                                                "items": {"type": "array", "items": {"type": "string"}}}}
    found = find(from_schema(schema, as_text=True, max_size=120), lambda t: "debug" in json.loads(t), settings=SHRINK)
    assert len(found) <= 2 * len('{"debug":false}'), found


def test_shrinks_any_key_to_small_example():
    """JSON grammar file: a property failing on any document with an object key shrinks to
    (about) ``{"":0}``."""
    found = find(from_grammar(str(REPO / "grammars" / "json.lark"), max_size=60),
                 lambda d: re.search(r'"[^"]*"\s*:', d) is not None, settings=SHRINK)
    assert len(found) <= 2 * len('{"":0}'), found  # shrinking can stop at a local minimum


def test_shrinks_keyword_to_small_document():
    """A property failing on any document with keyword ``null`` inside an array shrinks to
    ``[null]`` (the python/sql keyword versions are measured by bench/hypothesis_bench.py)."""
    found = find(from_grammar(str(REPO / "grammars" / "json.lark"), max_size=60),
                 lambda d: re.search(r"\[[^]]*null", d) is not None, settings=SHRINK)
    assert len(found) <= 2 * len("[null]"), found  # e.g. " [null]": a local minimum


# ---------------------------------------------------------- the generator's shortcut

@pytest.mark.parametrize("name", ["python", "go", "sql"])
def test_allowed_bytes_match_feeding_every_byte(name):
    """Under maximal munch the generator decides allowed bytes from lexer states alone; they
    must be the bytes the reference parser accepts, less only bytes starting an ignored
    lexeme (a comment) that could never end validly there."""
    g = from_lark(str(REPO / "grammars" / f"{name}.lark"))
    gen = DocumentGenerator(g)
    rng = random.Random(3)
    for _ in range(3):
        run = _Run(gen.tables)
        p = run.p
        for _ in range(40):
            groups = run.groups(p)
            got = {b for _, ms in groups for b in ms}
            want = set()
            for b in range(256):
                if p.feed(bytes((b,))):
                    want.add(b)
                    p.rollback_to(p.n_steps - 1)
            assert got <= want, (bytes(p.buf), sorted(got - want)[:8])
            for b in want - got:
                assert p.feed(bytes((b,)))
                (k, sid, *_), = p.threads
                live = gen.tables.lex.live[sid] & p._allowed(k)
                assert live and not live & ~gen.tables.pt.ignore_mask, (bytes(p.buf), b)
                p.rollback_to(p.n_steps - 1)
            if not groups:
                break
            ms = groups[rng.randrange(len(groups))][1]
            p.feed(bytes((ms[rng.randrange(len(ms))],)))


def test_strategies_compose_with_hypothesis():
    @settings(FAST, max_examples=20)
    @given(st.lists(from_regex(r"[ab]{1,3}"), max_size=3), from_schema({"type": "integer", "minimum": 5}))
    def check(xs, n):
        assert all(re.fullmatch(r"[ab]{1,3}", x) for x in xs)
        assert n == int(n) and n >= 5

    check()
