"""JSON number literals under numeric JSON Schema keywords: soundness, completeness without
exponent, the documented exponent subset, the JSON-Schema-Test-Suite, sizes and errors.

The oracle is exact ``fractions.Fraction`` arithmetic on the literal text.
"""

from __future__ import annotations

import json
import math
import os
import time
from decimal import Decimal
from fractions import Fraction
from functools import lru_cache

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from constrain.errors import ConfigError, GrammarError, LimitExceeded, UnsupportedSchemaFeature
from constrain.grammar.dfa import ByteDFA
from constrain.grammar.regex import compile_regex
from constrain.jsonschema.numbers import (
    EXP_WINDOW,
    integer_literal_dfa,
    number_dfa,
    number_literal_dfa,
    to_fraction,
)

# example counts come from the active hypothesis profile (tests/conftest.py)
_SETTINGS = settings(suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                            HealthCheck.data_too_large])

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SUITE = os.path.abspath(os.path.join(ROOT, "..", "shared", "data", "json-schema-test-suite", "tests",
                                     "draft2020-12"))

BOUND_KEYS = ("minimum", "exclusive_minimum", "maximum", "exclusive_maximum")
MULTIPLES = [Fraction(x) for x in ("1", "2", "3", "7", "10", "0.5", "0.1", "0.01", "0.25", "1.5",
                                   "0.0001", "3.3")]
PROBE = 400  # exponent distance beyond every bound the strategies produce


# --------------------------------------------------------------------------------------
# oracle
# --------------------------------------------------------------------------------------

def split_literal(lit: str):
    """(negative, mantissa magnitude, exponent or None) of a JSON number literal."""
    neg = lit.startswith("-")
    body = lit[1:] if neg else lit
    low = body.lower()
    if "e" in low:
        m, e = low.split("e")
        return neg, Fraction(m), int(e)
    return neg, Fraction(body), None


def valid(v: Fraction, cons: dict) -> bool:
    """The JSON Schema meaning of the constraints, on an exact value."""
    if cons.get("integer") and v.denominator != 1:
        return False
    if cons.get("minimum") is not None and not v >= cons["minimum"]:
        return False
    if cons.get("exclusive_minimum") is not None and not v > cons["exclusive_minimum"]:
        return False
    if cons.get("maximum") is not None and not v <= cons["maximum"]:
        return False
    if cons.get("exclusive_maximum") is not None and not v < cons["exclusive_maximum"]:
        return False
    m = cons.get("multiple_of")
    if m is not None and (v / m).denominator != 1:
        return False
    return True


def has_mult(cons: dict) -> bool:
    return bool(cons.get("integer")) or cons.get("multiple_of") is not None


def documented(lit: str, cons: dict, W: int = EXP_WINDOW) -> bool:
    """The accepted set promised by the module docstring (exact below; subset with exponent)."""
    neg, mant, e = split_literal(lit)
    sign = -1 if neg else 1
    if e is None:
        return valid(sign * mant, cons)
    if not any(cons.get(k) is not None for k in BOUND_KEYS) and not has_mult(cons):
        return True  # rule 1
    if mant == 0:
        return valid(Fraction(0), cons)  # rule 2
    mant_ok = valid(sign * mant, {"integer": cons.get("integer"), "multiple_of": cons.get("multiple_of")})

    def in_a(x: int) -> bool:
        if has_mult(cons) and not (x >= 0 and mant_ok):
            return False
        return valid(sign * mant * _pow10(x), cons)

    if not in_a(e):
        return False
    if abs(e) <= W:
        return True
    if e > W:
        return in_a(W + 1) and in_a(W + 1 + PROBE)
    return in_a(-(W + 1)) and in_a(-(W + 1) - PROBE)


def check(dfa: ByteDFA, lit: str, cons: dict, W: int = EXP_WINDOW, parsed=None) -> None:
    acc = dfa.matches(lit.encode())
    neg, mant, e = parsed if parsed is not None else split_literal(lit)
    v = (-mant if neg else mant) * (_pow10(e) if e is not None else 1)
    if parsed is None:
        assert v == Fraction(lit)
    ok = valid(v, cons)
    if acc:
        assert ok, f"UNSOUND: {lit!r} accepted under {cons}"
    if e is None:
        assert acc == ok, f"incomplete: {lit!r} (valid={ok}) rejected under {cons}"
    else:
        assert acc == documented(lit, cons, W), f"{lit!r} under {cons}: accepted={acc}, documented={not acc}"


@lru_cache(maxsize=None)
def _pow10(e: int) -> Fraction:
    return Fraction(10) ** e


# --------------------------------------------------------------------------------------
# strategies
# --------------------------------------------------------------------------------------

def dec_str(v: Fraction, extra_zeros: int = 0) -> str:
    """Exact decimal text of a finite-decimal rational (no exponent)."""
    assert is_finite_decimal(v), v
    k = 0
    while (v * 10 ** k).denominator != 1:
        k += 1
    n = int(v * 10 ** k)
    sign = "-" if n < 0 else ""
    digits = str(abs(n)).rjust(k + 1, "0")
    ip, fp = (digits[:-k], digits[-k:]) if k else (digits, "")
    fp += "0" * extra_zeros
    return sign + ip + ("." + fp if fp else "")


def with_exponent(v: Fraction, e: int, extra_zeros: int = 0, echar: str = "e", esign: str = "",
                  epad: int = 0) -> str:
    """A literal with exponent ``e`` and value ``v``."""
    m = v / Fraction(10) ** e
    digits = str(abs(e)).rjust(epad + 1, "0")
    s = "-" if e < 0 else esign
    return f"{dec_str(m, extra_zeros)}{echar}{s}{digits}"


small_dec = st.builds(lambda n, k: Fraction(n, 10 ** k), st.integers(-10 ** 7, 10 ** 7), st.integers(0, 6))
huge = st.builds(lambda s, d, p: s * (10 ** p + d), st.sampled_from([1, -1]), st.integers(-3, 3),
                 st.sampled_from([20, 40]))
rational = st.builds(Fraction, st.integers(-10 ** 6, 10 ** 6), st.sampled_from([3, 7, 9, 11, 12, 48]))
bound_values = st.one_of(st.integers(-60, 60).map(Fraction), small_dec, huge, st.just(Fraction(0)), rational)


def is_finite_decimal(v: Fraction) -> bool:
    d = v.denominator
    for p in (2, 5):
        while d % p == 0:
            d //= p
    return d == 1


@st.composite
def constraints(draw):
    cons: dict = {}
    for key in BOUND_KEYS:
        if draw(st.integers(0, 2)) == 0:
            cons[key] = draw(bound_values)
    if draw(st.booleans()):
        cons["multiple_of"] = draw(st.sampled_from(MULTIPLES))
    cons["integer"] = draw(st.integers(0, 3)) == 0
    return cons


@st.composite
def random_literal(draw):
    sign = draw(st.sampled_from(["", "", "-"]))
    if draw(st.integers(0, 3)) == 0:
        ip = "0"
    else:
        ip = draw(st.sampled_from("123456789")) + draw(st.text("0123456789", max_size=draw(st.sampled_from([3, 25]))))
    lit = sign + ip
    if draw(st.booleans()):
        lit += "." + draw(st.text("0123456789", min_size=1, max_size=12))
        lit += "0" * draw(st.sampled_from([0, 0, 1, 5]))
    if draw(st.integers(0, 2)) == 0:
        e = draw(st.one_of(st.integers(0, EXP_WINDOW + 3), st.integers(0, 40), st.just(PROBE)))
        esign = draw(st.sampled_from(["", "+", "-"]))
        lit += draw(st.sampled_from("eE")) + esign + "0" * draw(st.sampled_from([0, 0, 2])) + str(e)
    return lit


def derived_literals(v: Fraction, rnd) -> list[str]:
    """Literals at, just around and shifted from the value ``v`` (bounds, multiples)."""
    if not is_finite_decimal(v):  # a rational bound: its truncations and their neighbours
        out = []
        for k in (0, 1, 2, 5, 9):
            t = Fraction(math.floor(v * 10 ** k), 10 ** k)
            out += [dec_str(t), dec_str(t + Fraction(1, 10 ** k)), with_exponent(t, rnd.choice([-2, 1, 3]))]
        return out
    out = [dec_str(v), dec_str(v, 3)]
    for k in (1, 3, 7):
        for d in (Fraction(1, 10 ** k), -Fraction(1, 10 ** k)):
            out.append(dec_str(v + d))
    for d in (1, -1):
        out.append(dec_str(v + d))
    for e in (0, 1, -1, 2, -3, EXP_WINDOW, -EXP_WINDOW, EXP_WINDOW + 1, -(EXP_WINDOW + 1), 30, -30):
        out.append(with_exponent(v, e, rnd.choice([0, 0, 2]), rnd.choice("eE"), rnd.choice(["", "+"]),
                                 rnd.choice([0, 0, 1])))
    return out


# --------------------------------------------------------------------------------------
# properties
# --------------------------------------------------------------------------------------

@_SETTINGS
@given(cons=constraints(), lits=st.lists(random_literal(), max_size=25), rnd=st.randoms(use_true_random=False))
def test_random_constraints_sound_complete_and_documented(cons, lits, rnd):
    kw = {k: v for k, v in cons.items() if v is not None}
    dfa = number_dfa(**kw)
    pool = list(lits) + ["0", "-0", "0.000", "-0.0", "0.0e0", "0e-7", "-0E+3", "1", "-1", "1.0", "10e-1"]
    for key in (*BOUND_KEYS, "multiple_of"):
        if cons.get(key) is not None:
            pool += derived_literals(cons[key], rnd)
    m = cons.get("multiple_of")
    if m is not None:
        for j in (1, 2, 3, 7, -5, 13):
            pool += derived_literals(m * j, rnd)[:4]
    for lit in pool:
        check(dfa, lit, cons)


@_SETTINGS
@given(cons=constraints(), w=st.sampled_from([0, 1, 2, 6]), lits=st.lists(random_literal(), max_size=15),
       rnd=st.randoms(use_true_random=False))
def test_other_exponent_windows(cons, w, lits, rnd):
    kw = {k: v for k, v in cons.items() if v is not None}
    dfa = number_dfa(exp_window=w, **kw)
    pool = list(lits)
    for key in BOUND_KEYS:
        if cons.get(key) is not None:
            v = cons[key]
            if is_finite_decimal(v):
                pool += [with_exponent(v, e) for e in (w, w + 1, -w, -w - 1, 0)]
    for lit in pool:
        check(dfa, lit, cons, w)


@_SETTINGS
@given(cons=constraints())
def test_constraints_compose_by_intersection(cons):
    """Building everything at once equals intersecting the single-keyword automata (allOf)."""
    kw = {k: v for k, v in cons.items() if v is not None and v is not False}
    whole = number_dfa(**kw)
    part = number_dfa()
    for k, v in kw.items():
        part = part.intersect(number_dfa(**{k: v}))
    assert whole == part


EXHAUSTIVE = [
    {},
    {"integer": True},
    {"minimum": Fraction(0)},
    {"exclusive_minimum": Fraction(0)},
    {"maximum": Fraction(0)},
    {"exclusive_maximum": Fraction(0)},
    {"minimum": Fraction("-1.5"), "exclusive_maximum": Fraction("0.3")},
    {"minimum": Fraction(1), "maximum": Fraction(9)},
    {"exclusive_minimum": Fraction("0.05"), "maximum": Fraction("7.25")},
    {"minimum": Fraction(-100), "maximum": Fraction(100), "integer": True},
    {"minimum": Fraction(3), "maximum": Fraction(3)},
    {"minimum": Fraction("-0.7"), "maximum": Fraction("-0.7")},
    {"maximum": Fraction(1, 3)},
    {"minimum": Fraction(-2, 3), "maximum": Fraction(22, 7)},
    {"multiple_of": Fraction(2, 3)},
    {"multiple_of": Fraction(1, 7)},
    {"minimum": Fraction(10) ** 40 + 1},
    {"maximum": -Fraction(10) ** 40, "integer": True},
    {"exclusive_maximum": Fraction(1, 10 ** 9)},
    {"minimum": Fraction(1, 10 ** 9)},
] + [{"multiple_of": m} for m in MULTIPLES] + [
    {"multiple_of": m, "integer": True, "minimum": Fraction(-50)} for m in (Fraction("0.25"), Fraction("1.5"), Fraction(7))
] + [
    {"multiple_of": m, "exclusive_minimum": Fraction("-2.5"), "maximum": Fraction(95)}
    for m in (Fraction("0.5"), Fraction("3.3"), Fraction("0.01"))
]


@pytest.fixture(scope="module")
def short_literals() -> list[str]:
    return [w.decode() for w in number_literal_dfa().enumerate(4, limit=200_000)]


@pytest.fixture(scope="module")
def parsed_short(short_literals) -> list:
    out = []
    for lit in short_literals:
        p = split_literal(lit)
        neg, mant, e = p
        assert (-mant if neg else mant) * (_pow10(e) if e is not None else 1) == Fraction(lit)
        out.append((lit, p))
    return out


@pytest.mark.parametrize("i,cons", list(enumerate(EXHAUSTIVE)),
                         ids=[",".join(f"{k}={v}" for k, v in c.items()) or "none" for c in EXHAUSTIVE])
def test_all_short_literals(i, cons, parsed_short):
    """Every JSON number literal of length <= 3, a quarter of those of length 4 (a different
    quarter per case) and longer probes, against the oracle."""
    dfa = number_dfa(**cons)
    for j, (lit, p) in enumerate(parsed_short):
        if len(lit) <= 3 or j % 4 == i % 4:
            check(dfa, lit, cons, parsed=p)
    for lit in ("1.0e1", "1.5e1", "1500e-2", "100000e-5", "0.00001e5", "2.50000", "-0.000", "99.990",
                "1e005", "1E+05", "1e-05", "3e-0", "7.0000001", "1e40", "1e-9", "1.000000001e-9"):
        check(dfa, lit, cons)


def test_short_literal_enumeration_is_the_json_grammar(short_literals):
    ref = compile_regex(r"-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?")
    assert set(short_literals) == {w.decode() for w in ref.enumerate(4, limit=200_000)}
    assert len(short_literals) > 10_000


# --------------------------------------------------------------------------------------
# the JSON-Schema-Test-Suite
# --------------------------------------------------------------------------------------

class _Num(str):
    """A number literal kept as its exact source text."""


_NUMERIC_SCHEMA_KEYS = {"$schema", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf", "type"}
_SUITE_FILES = ["minimum.json", "maximum.json", "exclusiveMinimum.json", "exclusiveMaximum.json",
                "multipleOf.json", "type.json", "optional/bignum.json", "optional/float-overflow.json"]


def _suite_cases():
    cases = []
    for name in _SUITE_FILES:
        path = os.path.join(SUITE, name)
        if not os.path.exists(path):
            continue
        with open(path, encoding="utf-8") as f:
            groups = json.loads(f.read(), parse_float=_Num, parse_int=_Num)
        for g in groups:
            schema = g["schema"]
            if not isinstance(schema, dict) or not set(schema) <= _NUMERIC_SCHEMA_KEYS:
                continue
            t = schema.get("type")
            if t is not None and t not in ("integer", "number"):
                continue
            for test in g["tests"]:
                if isinstance(test["data"], _Num):
                    cases.append((f"{name}: {g['description']}: {test['description']}", schema,
                                  str(test["data"]), test["valid"]))
    return cases


SUITE_CASES = _suite_cases()


def test_suite_was_found():
    if not os.path.isdir(SUITE):
        pytest.skip(f"JSON-Schema-Test-Suite not found at {SUITE}")
    assert len(SUITE_CASES) >= 30


@pytest.mark.parametrize("desc,schema,lit,is_valid", SUITE_CASES, ids=[c[0] for c in SUITE_CASES])
def test_json_schema_test_suite(desc, schema, lit, is_valid):
    kw = {}
    for key, arg in (("minimum", "minimum"), ("maximum", "maximum"), ("exclusiveMinimum", "exclusive_minimum"),
                     ("exclusiveMaximum", "exclusive_maximum"), ("multipleOf", "multiple_of")):
        if key in schema:
            kw[arg] = to_fraction(schema[key])
    integer = schema.get("type") == "integer"
    try:
        dfa = number_dfa(integer=integer, **kw)
    except LimitExceeded:
        # integer + multipleOf 0.123456789 = multiples of 123456789: too many residues
        assert integer and kw.get("multiple_of", 0).numerator > 10_000
        return
    acc = dfa.matches(lit.encode())
    if acc:
        assert is_valid, f"{desc}: invalid {lit} accepted"
    if "e" not in lit.lower():
        assert acc == is_valid, f"{desc}: {lit} accepted={acc} valid={is_valid}"
    cons = dict(kw, integer=integer)
    assert valid(Fraction(lit), cons) == is_valid  # the oracle agrees with the suite
    assert acc == documented(lit, cons)


def test_suite_exponent_cases():
    assert number_dfa(integer=True, multiple_of=Fraction("0.5")).matches(b"1e308")  # float-overflow.json
    assert number_dfa(integer=True).matches(b"1e308")
    with pytest.raises(LimitExceeded):  # residues mod 123456789
        number_dfa(multiple_of=Fraction("0.123456789"))


# --------------------------------------------------------------------------------------
# helpers, conversions, caching
# --------------------------------------------------------------------------------------

def test_unconstrained_is_the_json_number_grammar():
    ref = compile_regex(r"-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?")
    assert number_literal_dfa() == ref
    assert number_dfa() == ref


def test_integer_literal_dfa_language():
    ref = compile_regex(r"-?(0|[1-9][0-9]*)(\.0+)?([eE](\+?[0-9]+|-0+))?|-?0(\.0+)?[eE][+-]?[0-9]+")
    assert integer_literal_dfa() == ref
    assert number_dfa(integer=True) == ref
    d = integer_literal_dfa()
    for s in (b"0", b"-0", b"1.0", b"-3.000", b"1e5", b"1E+05", b"2.00e-0", b"0.0e-9", b"-0e+1"):
        assert d.matches(s), s
    for s in (b"1.5", b"1e-1", b"1.5e1", b"01", b"1.", b".5", b"1e", b"+1", b"0.1e1"):
        assert not d.matches(s), s


def test_multiple_of_one_is_integer_without_exponent():
    # multiple_of=1 and integer accept the same non-exponent literals
    a = number_dfa(multiple_of=1)
    b = number_dfa(integer=True)
    nonexp = compile_regex(r"-?(0|[1-9][0-9]*)(\.[0-9]+)?")
    assert a.intersect(nonexp) == b.intersect(nonexp)
    assert a == b


@pytest.mark.parametrize("v", [Fraction(-3, 2), -1.5, "-1.5", Decimal("-1.50"), "-15e-1", "-3/2"])
def test_value_types_convert_exactly(v):
    assert to_fraction(v) == Fraction(-3, 2)
    assert number_dfa(minimum=v) == number_dfa(minimum=Fraction(-3, 2))


def test_float_values_use_their_shortest_repr():
    assert to_fraction(0.1) == Fraction(1, 10)
    assert to_fraction(1e308) == Fraction(10) ** 308
    d = number_dfa(maximum=0.3)
    assert d.matches(b"0.3") and not d.matches(b"0.30000000000000001")


def test_caching_returns_the_same_object():
    assert number_dfa(minimum=1, maximum=5) is number_dfa(minimum=Fraction(1), maximum="5")


def test_tightest_bound_wins():
    a = number_dfa(minimum=2, exclusive_minimum=2, maximum=9, exclusive_maximum=10)
    b = number_dfa(exclusive_minimum=2, maximum=9)
    assert a == b
    assert not a.matches(b"2") and a.matches(b"2.000001") and a.matches(b"9") and not a.matches(b"9.5")


def test_negative_zero_and_signs():
    d = number_dfa(minimum=0)
    for s in (b"0", b"-0", b"-0.000", b"0.0", b"5"):
        assert d.matches(s), s
    for s in (b"-0.001", b"-1", b"-0.0001e0"):
        assert not d.matches(s), s
    d = number_dfa(exclusive_minimum=0)
    assert not d.matches(b"-0") and not d.matches(b"0.00") and d.matches(b"0.001") and d.matches(b"1e-500")
    d = number_dfa(maximum=0)
    assert d.matches(b"-0") and d.matches(b"0") and d.matches(b"-1e500") and not d.matches(b"0.0001")


# --------------------------------------------------------------------------------------
# empty results, errors, limits
# --------------------------------------------------------------------------------------

@pytest.mark.parametrize("kw", [
    {"minimum": 5, "maximum": 4},
    {"minimum": 1, "exclusive_maximum": 1},
    {"exclusive_minimum": 1, "maximum": 1},
    {"integer": True, "minimum": Fraction("0.5"), "maximum": Fraction("0.7")},
    {"multiple_of": 10, "minimum": 1, "maximum": 9},
    {"multiple_of": Fraction("0.5"), "exclusive_minimum": Fraction("0.5"), "exclusive_maximum": 1},
])
def test_empty_results(kw):
    d = number_dfa(**kw)
    assert isinstance(d, ByteDFA) and d.is_empty()


def test_singletons():
    d = number_dfa(minimum=Fraction("2.5"), maximum=Fraction("2.5"))
    for s in (b"2.5", b"2.50", b"25e-1", b"0.25E1", b"0.025e+02", b"2.5e0"):
        assert d.matches(s), s
    for s in (b"2.51", b"-2.5", b"2", b"3", b"2.5e1"):
        assert not d.matches(s), s


@pytest.mark.parametrize("kw,key", [
    ({"multiple_of": 0}, "multipleOf"),
    ({"multiple_of": -2}, "multipleOf"),
    ({"minimum": "abc"}, "minimum"),
    ({"maximum": float("nan")}, "maximum"),
    ({"exclusive_maximum": float("inf")}, "exclusiveMaximum"),
    ({"exclusive_minimum": True}, "exclusiveMinimum"),
    ({"minimum": [1]}, "minimum"),
    ({"maximum": Decimal("NaN")}, "maximum"),
])
def test_invalid_values(kw, key):
    with pytest.raises(UnsupportedSchemaFeature) as ei:
        number_dfa(pointer="/properties/x", **kw)
    assert isinstance(ei.value, GrammarError)
    assert ei.value.pointer == f"/properties/x/{key}"
    assert key in str(ei.value)


def test_errors_at_the_root_pointer():
    with pytest.raises(UnsupportedSchemaFeature) as ei:
        number_dfa(multiple_of=0)
    assert ei.value.pointer == "/multipleOf"
    with pytest.raises(LimitExceeded, match="at /properties/n"):
        number_dfa(multiple_of=10 ** 7 + 1, pointer="/properties/n")


@pytest.mark.parametrize("kw", [{"max_states": 0}, {"exp_window": -1}, {"max_states": 1.5}])
def test_config_errors(kw):
    with pytest.raises(ConfigError):
        number_dfa(**kw)


def test_huge_multiple_raises_limit():
    with pytest.raises(LimitExceeded) as ei:
        number_dfa(integer=True, multiple_of=Fraction("0.123456789"))
    assert ei.value.limit == "max_dfa_states"
    with pytest.raises(LimitExceeded):
        number_dfa(multiple_of=10 ** 6 + 3)
    with pytest.raises(LimitExceeded):
        number_dfa(minimum="1e-100000")
    with pytest.raises(LimitExceeded):
        number_dfa(minimum=1, maximum=10 ** 9, max_states=20)


def test_multiple_of_tiny_and_big_numbers():
    d = number_dfa(integer=True, multiple_of=Fraction("1e-8"))
    assert d == integer_literal_dfa()
    assert d.matches(b"12391239123")
    d = number_dfa(multiple_of=Fraction("1e-8"))
    assert d.matches(b"0.00000001") and d.matches(b"123.456000010000") and not d.matches(b"0.000000001")
    d = number_dfa(multiple_of=Fraction("0.0001"))
    assert d.matches(b"0.0075") and not d.matches(b"0.00751")


# --------------------------------------------------------------------------------------
# sizes and speed (sanity, not timing assertions)
# --------------------------------------------------------------------------------------

@pytest.mark.parametrize("k", [10, 50, 100, 300])
def test_state_count_proportional_to_digits(k):
    d = number_dfa(maximum=10 ** k)
    assert d.n_states <= 3 * k + 80
    assert d.matches(b"1" + b"0" * k) and not d.matches(b"1" + b"0" * (k - 1) + b"1")
    assert d.matches(b"9" * k + b".999") and not d.matches(b"1" + b"0" * k + b".0001")


def test_big_integer_ranges_are_small_and_fast():
    t0 = time.perf_counter()
    d = number_dfa(integer=True, minimum=-2 ** 63, maximum=2 ** 63 - 1)
    d300 = number_dfa(maximum=10 ** 300)
    elapsed = time.perf_counter() - t0
    assert d.n_states <= 4 * 19 + 60
    assert d300.n_states <= 3 * 301 + 80
    assert elapsed < 20  # generous: shared CI machines; typically ~0.1 s
    for lit in (str(2 ** 63 - 1), str(-2 ** 63), "0", "-0", "9223372036854775807.000"):
        assert d.matches(lit.encode()), lit
    for lit in (str(2 ** 63), str(-2 ** 63 - 1), "9223372036854775807.5"):
        assert not d.matches(lit.encode()), lit


@pytest.mark.parametrize("kw,limit", [
    ({"minimum": 0, "maximum": 100, "integer": True}, 40),
    ({"minimum": 1, "maximum": 2 ** 31 - 1, "integer": True}, 80),
    ({"minimum": -10 ** 9, "maximum": 10 ** 9}, 140),
    ({"minimum": 0, "maximum": 1}, 120),
    ({"multiple_of": Fraction("0.01")}, 30),
])
def test_typical_cases_are_small(kw, limit):
    assert number_dfa(**kw).n_states <= limit
