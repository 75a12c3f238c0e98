"""Fuzzing: random JSON Schemas (shapes from the meta-schema) and random small Lark grammars
are compiled under tight caps, then random documents are walked through a ``Matcher`` over the
byte-level vocabulary (random allowed tokens, biased to finish).  Checked: nothing but a
``ConstrainError`` escapes, nothing runs past the caps, masks never dead-end, and every
completed output validates with ``jsonschema`` (formats asserted) or parses with Lark.

Profiles (tests/conftest.py): ``ci`` (default) is short (at most ~40 s per test);
``HYPOTHESIS_PROFILE=long`` runs many more cases (at most ~270 s per test;
``CONSTRAIN_FUZZ_SCHEMAS`` / ``CONSTRAIN_FUZZ_GRAMMARS`` / ``CONSTRAIN_FUZZ_BUDGET_S`` override).  Set ``CONSTRAIN_FUZZ_REPORT=path.json`` to write the counts (cases tried, errors by
kind, completed and invalid outputs) there; they are printed at the end in any case.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections import Counter
from decimal import Decimal

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from constrain.engine.matcher import Matcher
from constrain.errors import ConstrainError, LimitExceeded
from constrain.grammar import from_lark
from constrain.jsonschema import compile_json_schema
from constrain.limits import Limits
from constrain.tokenizers import Vocabulary

LONG = os.environ.get("HYPOTHESIS_PROFILE") == "long"
N_SCHEMAS = int(os.environ.get("CONSTRAIN_FUZZ_SCHEMAS", 2500 if LONG else 100))
N_GRAMMARS = int(os.environ.get("CONSTRAIN_FUZZ_GRAMMARS", 1200 if LONG else 60))
# wall-clock budget per test function: past it the remaining examples return at once (counted)
BUDGET_S = float(os.environ.get("CONSTRAIN_FUZZ_BUDGET_S", 270 if LONG else 40))
_T0: dict = {}
DOCS_PER_CASE = 4 if LONG else 3
MAX_STEPS = 160
LIMITS = Limits(compile_time_s=5.0, max_count=200, max_string_length=2000, max_mask_work=500_000)
COMPILE_SLACK_S = 10.0  # wall clock allowed past compile_time_s (a loaded CI machine)

VOCAB = Vocabulary.byte_level([b'{"', b'":', b'",', b'"}', b"null", b"true", b"false", b"12", b"  ", b"ab"])
EOS = VOCAB.eos_ids[0]
STATS: Counter = Counter()
INVALID: list = []


@pytest.fixture(scope="module", autouse=True)
def report():
    yield
    out = dict(sorted(STATS.items()))
    out["invalid_examples"] = INVALID[:20]
    print("\nfuzz counts:", json.dumps(out, indent=1, default=str))
    path = os.environ.get("CONSTRAIN_FUZZ_REPORT")
    if path:
        with open(path, "w") as f:
            json.dump(out, f, indent=1, default=str)


# ------------------------------------------------------------------ schemas
PATTERNS = ["^[a-z]+$", "^[0-9]{2,4}$", "a", "^x", "[0-9]$", "^(ab|cd)*$", "^[A-Z][a-z]{0,5}$", "b+c",
            "^\\d+(\\.\\d+)?$", "^[^\"\\\\]{0,8}$"]
FORMATS = ["date", "ipv4", "uuid", "email", "time", "ipv6"]
TYPES = ["null", "boolean", "object", "array", "number", "integer", "string"]
NAMES = ["a", "b", "id", "name", "x y", "ü", "n"]
scalars = st.one_of(st.none(), st.booleans(), st.integers(-50, 50), st.sampled_from(["", "a", "ab", "x", "é", "1"]))
json_values = st.recursive(scalars, lambda c: st.one_of(st.lists(c, max_size=3),
                                                        st.dictionaries(st.sampled_from(NAMES), c, max_size=3)),
                           max_leaves=6)


def _leaf():
    small = st.integers(0, 6)
    return st.one_of(
        st.just({}), st.just(True), st.just(False),
        st.builds(lambda t: {"type": t}, st.sampled_from(TYPES)),
        st.builds(lambda ts: {"type": ts}, st.lists(st.sampled_from(TYPES), min_size=1, max_size=3, unique=True)),
        st.builds(lambda v: {"const": v}, json_values),
        st.builds(lambda vs: {"enum": vs}, st.lists(json_values, min_size=1, max_size=4)),
        st.builds(lambda lo, d, p: {"type": "string", "minLength": lo, "maxLength": lo + d,
                                    **({"pattern": p} if p else {})}, small, small,
                  st.one_of(st.none(), st.sampled_from(PATTERNS))),
        st.builds(lambda p: {"type": "string", "pattern": p}, st.sampled_from(PATTERNS)),
        st.builds(lambda f: {"type": "string", "format": f}, st.sampled_from(FORMATS)),
        st.builds(lambda lo, d, m, ex: {"type": st_choice(ex, "integer", "number"), "minimum": lo,
                                        "maximum": lo + d, **({"multipleOf": m} if m else {})},
                  st.integers(-100, 100), st.integers(0, 300), st.sampled_from([None, 1, 2, 3, 5]), st.booleans()),
        st.builds(lambda lo: {"type": "number", "exclusiveMinimum": lo}, st.integers(-10, 10)),
        st.builds(lambda hi: {"type": "integer", "exclusiveMaximum": hi}, st.integers(-10, 10)),
    )


def st_choice(flag, a, b):
    return a if flag else b


def _compound(children):
    small = st.integers(0, 3)
    props = st.dictionaries(st.sampled_from(NAMES), children, max_size=4)
    return st.one_of(
        st.builds(lambda p, req, add: {"type": "object", "properties": p, "required": sorted(set(req) & set(p)),
                                       **({"additionalProperties": add} if add is not None else {})},
                  props, st.lists(st.sampled_from(NAMES), max_size=4),
                  st.one_of(st.none(), st.booleans(), children)),
        st.builds(lambda p, lo, d: {"type": "object", "properties": p, "minProperties": lo,
                                    "maxProperties": lo + d}, props, small, small),
        st.builds(lambda it, lo, d: {"type": "array", "items": it, "minItems": lo, "maxItems": lo + d},
                  children, small, small),
        st.builds(lambda pre, it: {"type": "array", "prefixItems": pre, "items": it},
                  st.lists(children, min_size=1, max_size=3), st.one_of(st.just(False), children)),
        st.builds(lambda c, mn: {"type": "array", "contains": c, "minContains": mn, "maxItems": 4}, children,
                  st.integers(0, 2)),
        st.builds(lambda xs: {"anyOf": xs}, st.lists(children, min_size=1, max_size=3)),
        st.builds(lambda xs: {"oneOf": xs}, st.lists(children, min_size=1, max_size=3)),
        st.builds(lambda xs: {"allOf": xs}, st.lists(children, min_size=1, max_size=3)),
        st.builds(lambda x: {"not": x}, children),
        st.builds(lambda i, t, e: {"if": i, "then": t, "else": e}, children, children, children),
        st.builds(lambda pp, add: {"type": "object", "patternProperties": {pp: add[0]},
                                   "additionalProperties": add[1]},
                  st.sampled_from(["^a", "^[0-9]+$", "x"]), st.tuples(children, st.booleans())),
        st.builds(lambda x, y: {**x, **y} if isinstance(x, dict) and isinstance(y, dict) else x, children, children),
    )


base_schemas = st.recursive(_leaf(), _compound, max_leaves=8)


@st.composite
def schemas(draw):
    root = draw(base_schemas)
    if draw(st.booleans()) and isinstance(root, dict):
        defs = {"node": {"type": "object", "properties": {"v": draw(base_schemas),
                                                          "next": {"anyOf": [{"type": "null"},
                                                                             {"$ref": "#/$defs/node"}]}}},
                "leaf": draw(base_schemas)}
        return {**root, "$defs": defs, "properties": {**root.get("properties", {}),
                                                      "r": {"$ref": draw(st.sampled_from(["#/$defs/node",
                                                                                          "#/$defs/leaf"]))}}}
    return root


# ------------------------------------------------------------------ walking
PREFER = [ord(c) for c in '"}]0'] + [ord(c) for c in "1nulltruefalse,:"]


def walk(m: Matcher, rng: np.random.Generator, max_steps: int = MAX_STEPS):
    """Random allowed tokens; after a random budget, finish: EOS when allowed, else a forced byte,
    else a byte from a closing-first preference list.  Returns the output when EOS was
    accepted, ``None`` when the walk ran out of steps."""
    budget = int(rng.integers(0, max_steps // 2))
    for step in range(max_steps):
        mask = m.next_token_mask()
        allowed = np.flatnonzero(mask)
        if not allowed.size:
            raise AssertionError(f"dead end: empty mask after {m.output!r}")
        if mask[EOS] and (step >= budget or rng.random() < 0.05):
            assert m.accept_token(EOS)
            return m.output
        if step < budget:
            t = int(rng.choice(allowed))
        else:
            forced = m.forced_bytes(1)
            if forced and mask[forced[0]]:
                t = forced[0]
            else:
                t = next((b for b in PREFER if mask[b]), None)
                if t is None or rng.random() < 0.2:
                    t = int(rng.choice(allowed))
        assert m.accept_token(t), (m.output, t)
        if m.is_finished():
            return m.output
    return None


def _validator(schema):
    import jsonschema

    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)

    def is_number(checker, x):
        return isinstance(x, (int, float, Decimal)) and not isinstance(x, bool)

    def is_integer(checker, x):
        if isinstance(x, Decimal):
            return x.is_finite() and x == x.to_integral_value()
        return cls.TYPE_CHECKER.is_type(x, "integer")

    checker = cls.TYPE_CHECKER.redefine_many({"number": is_number, "integer": is_integer})
    ext = jsonschema.validators.extend(cls, type_checker=checker)
    return ext(schema, format_checker=cls.FORMAT_CHECKER)  # the draft's own format checkers


def _parse_float(text: str) -> Decimal:
    """Exact, like the schema's own numbers; an exponent beyond Decimal's range becomes the
    largest / smallest Decimal of the same sign (so bounds and integer-ness stay right)."""
    try:
        return Decimal(text)
    except ArithmeticError:
        m = re.fullmatch(r"(-?)(\d+)(?:\.(\d+))?[eE]([+-]?\d+)", text)
        if m is None or Decimal(m.group(2) + "." + (m.group(3) or "0")) == 0:
            return Decimal(0)
        v = Decimal("1E+999999") if int(m.group(4)) > 0 else Decimal("1E-999999")
        return -v if m.group(1) else v


def compile_timed(fn, *args, **kw):
    t0 = time.monotonic()
    try:
        return fn(*args, **kw), None
    except ConstrainError as e:
        return None, e
    finally:
        dt = time.monotonic() - t0
        STATS["max_compile_s"] = max(STATS.get("max_compile_s", 0), round(dt, 3))
        assert dt < LIMITS.compile_time_s + COMPILE_SLACK_S, f"compile ran {dt:.1f} s, past the cap"


def over_budget(what: str) -> bool:
    t0 = _T0.setdefault(what, time.monotonic())
    if time.monotonic() - t0 > BUDGET_S:
        STATS[f"{what}_cases_skipped_over_budget"] += 1
        return True
    return False


def reason(e: ConstrainError) -> str:
    """The message without values and location: a category for the report."""
    msg = getattr(e, "message", str(e))
    msg = re.sub(r"'[^']*'|\"[^\"]*\"|\(at [^)]*\)|-?\d+(\.\d+)?", "_", msg)
    return ":".join(msg.split(":")[:2])[:70].strip()


def kind(e: ConstrainError) -> str:
    return f"LimitExceeded:{e.limit}" if isinstance(e, LimitExceeded) else type(e).__name__


@settings(max_examples=N_SCHEMAS, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large])
@given(schema=schemas(), seed=st.integers(0, 2 ** 32 - 1))
def test_fuzz_schemas(schema, seed):
    if over_budget("schema"):
        return
    STATS["schema_cases"] += 1
    g, err = compile_timed(compile_json_schema, schema, limits=LIMITS)
    if err is not None:
        STATS[f"schema_error:{kind(err)}"] += 1
        STATS[f"schema_error_reason:{reason(err)}"] += 1
        return
    STATS["schema_compiled"] += 1
    rng = np.random.default_rng(seed)
    validator = _validator(schema)
    for _ in range(DOCS_PER_CASE):
        m = Matcher(g, VOCAB)
        try:
            out = walk(m, rng)
        except LimitExceeded as e:
            STATS[f"walk_error:{kind(e)}"] += 1
            continue
        if out is None:
            STATS["schema_docs_unfinished"] += 1
            continue
        STATS["schema_docs_completed"] += 1
        try:
            value = json.loads(out.decode("utf-8"), parse_float=_parse_float)
            errors = [e.message for e in validator.iter_errors(value)]
        except ArithmeticError:  # e.g. multipleOf of a number with a 90-digit exponent
            STATS["schema_docs_unverifiable"] += 1
            continue
        except Exception as e:  # noqa: BLE001 - not JSON at all
            errors = [f"{type(e).__name__}: {e}"]
        if errors:
            STATS["schema_docs_INVALID"] += 1
            INVALID.append({"schema": schema, "output": out.decode("utf-8", "replace"), "errors": errors[:3]})
            raise AssertionError(f"invalid output {out!r} for {json.dumps(schema)}: {errors[:3]}")


# ------------------------------------------------------------------ grammars
LITERALS = ['"a"', '"b"', '"ab"', '"("', '")"', '","', '"x"', '"yy"']
REGEXES = ["/[0-9]+/", "/[a-c]/", "/x+/", "/[a-z][a-z0-9]*/", "/(ab|ba)+/"]


@st.composite
def lark_grammars(draw):
    n = draw(st.integers(1, 4))
    names = [f"r{i}" for i in range(n)]
    terms = {f"T{i}": draw(st.sampled_from(REGEXES)) for i in range(draw(st.integers(0, 2)))}

    def symbol(depth):
        opts = LITERALS + list(terms) + names
        s = draw(st.sampled_from(opts))
        if depth < 2 and draw(st.integers(0, 4)) == 0:
            inner = " ".join(symbol(depth + 1) for _ in range(draw(st.integers(1, 2))))
            alt = " | ".join([inner] + [symbol(depth + 1) for _ in range(draw(st.integers(0, 1)))])
            s = f"({alt})"
        op = draw(st.sampled_from(["", "", "", "?", "*", "+"]))
        return s + op

    lines = []
    for i, name in enumerate(names):
        alts = []
        for _ in range(draw(st.integers(1, 3))):
            alts.append(" ".join(symbol(0) for _ in range(draw(st.integers(1, 3)))))
        if i > 0 and draw(st.booleans()):
            alts.append(draw(st.sampled_from(LITERALS)))  # a way out of recursion
        lines.append(f"{name}: " + " | ".join(alts))
    lines.insert(0, "start: r0")
    for t, rx in terms.items():
        lines.append(f"{t}: {rx}")
    return "\n".join(lines) + "\n"


@settings(max_examples=N_GRAMMARS, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large])
@given(text=lark_grammars(), seed=st.integers(0, 2 ** 32 - 1))
def test_fuzz_lark_grammars(text, seed):
    from lark import Lark
    from lark.exceptions import LarkError

    if over_budget("grammar"):
        return
    STATS["grammar_cases"] += 1
    g, err = compile_timed(from_lark, text, limits=LIMITS)
    if err is not None:
        STATS[f"grammar_error:{kind(err)}"] += 1
        return
    STATS["grammar_compiled"] += 1
    lark = Lark(text, parser="earley", lexer="dynamic_complete")
    rng = np.random.default_rng(seed)
    for _ in range(DOCS_PER_CASE):
        m = Matcher(g, VOCAB)
        try:
            out = walk(m, rng, max_steps=60)
        except LimitExceeded as e:
            STATS[f"walk_error:{kind(e)}"] += 1
            continue
        if out is None:
            STATS["grammar_docs_unfinished"] += 1
            continue
        STATS["grammar_docs_completed"] += 1
        try:
            lark.parse(out.decode("utf-8"))
        except (LarkError, UnicodeDecodeError) as e:
            STATS["grammar_docs_INVALID"] += 1
            INVALID.append({"grammar": text, "output": out.decode("utf-8", "replace"), "error": str(e)[:200]})
            raise AssertionError(f"Lark rejects {out!r} for grammar\n{text}\n{e}")
