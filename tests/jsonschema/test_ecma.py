"""JSON Schema ``pattern`` → DFA: JSON-Schema-Test-Suite agreement, ECMA semantics, refusals,
and a hypothesis comparison with Python ``re.search`` on patterns whose meaning is the same."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from constrain.errors import LimitExceeded, RegexError, UnsupportedSchemaFeature
from constrain.jsonschema.ecma import pattern_dfa

SUITE = Path("/work/shared/data/json-schema-test-suite/tests/draft2020-12")
SUITE_FILES = ["pattern.json", "patternProperties.json", "optional/ecmascript-regex.json",
               "optional/non-bmp-regex.json"]

_N = max(10, settings.default.max_examples)
_SETTINGS = settings(max_examples=_N, deadline=None,
                     suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                            HealthCheck.data_too_large])


def _m(pattern: str, s: str) -> bool:
    return pattern_dfa(pattern).matches(s.encode("utf-8"))


# --------------------------------------------------------------------------------------
# JSON-Schema-Test-Suite
# --------------------------------------------------------------------------------------

def _suite_groups():
    for name in SUITE_FILES:
        path = SUITE / name
        if not path.exists():
            continue
        for group in json.loads(path.read_text(encoding="utf-8")):
            yield name, group


def _validate_value(schema, value) -> bool:
    from jsonschema import Draft202012Validator

    return Draft202012Validator(schema).is_valid(value)


def _eval_pattern_properties(schema: dict, instance) -> bool:
    """Evaluate a patternProperties(+additionalProperties) schema with our DFAs for key matching."""
    if not isinstance(instance, dict):
        return True
    pats = schema.get("patternProperties", {})
    additional = schema.get("additionalProperties", True)
    for key, value in instance.items():
        matched = False
        for pat, sub in pats.items():
            if pattern_dfa(pat).matches(key.encode("utf-8")):
                matched = True
                if not _validate_value(sub, value):
                    return False
        if not matched and not _validate_value(additional, value):
            return False
    return True


def test_suite_patterns():
    if not SUITE.exists():
        pytest.skip("JSON-Schema-Test-Suite not available")
    checked = refused = 0
    failures = []
    for name, group in _suite_groups():
        schema = group["schema"]
        if not isinstance(schema, dict):
            continue
        keys = set(schema) - {"$schema", "type"}
        if keys == {"pattern"}:
            try:
                dfa = pattern_dfa(schema["pattern"], pointer="/pattern")
            except UnsupportedSchemaFeature:
                refused += 1
                continue
            for t in group["tests"]:
                inst = t["data"]
                if not isinstance(inst, str):
                    continue
                checked += 1
                if dfa.matches(inst.encode("utf-8")) != t["valid"]:
                    failures.append((name, schema["pattern"], inst, t["valid"]))
        elif keys <= {"patternProperties", "additionalProperties"} and "patternProperties" in keys:
            try:
                for p in schema["patternProperties"]:
                    pattern_dfa(p)
            except UnsupportedSchemaFeature:
                refused += 1
                continue
            for t in group["tests"]:
                checked += 1
                if _eval_pattern_properties(schema, t["data"]) != t["valid"]:
                    failures.append((name, schema["patternProperties"], t["data"], t["valid"]))
    assert not failures, failures
    assert refused == 0
    assert checked >= 60, checked


def test_suite_format_regex_file_ecma_examples():
    """Patterns from optional/format/ecmascript-regex.json and regex.json: validity as a regex."""
    path = SUITE / "optional" / "format"
    if not path.exists():
        pytest.skip("JSON-Schema-Test-Suite not available")
    seen = 0
    for fname in ("ecmascript-regex.json", "regex.json"):
        for group in json.loads((path / fname).read_text(encoding="utf-8")):
            for t in group["tests"]:
                if not isinstance(t["data"], str):
                    continue
                seen += 1
                try:
                    pattern_dfa(t["data"])
                    ok = True
                except RegexError:
                    ok = False
                except UnsupportedSchemaFeature:
                    continue  # valid ECMA, but not regular (lookbehind, backreference)
                assert ok == t["valid"], (t["data"], t["valid"])
    assert seen >= 10


# --------------------------------------------------------------------------------------
# ECMA semantics
# --------------------------------------------------------------------------------------

@pytest.mark.parametrize("pattern,yes,no", [
    ("a+", ["xxaayy", "a"], ["", "b"]),
    ("^abc$", ["abc"], ["abc\n", "xabc", "abcx"]),
    ("^\\t$", ["\t"], ["\\t"]),
    ("^\\cC$", ["\x03"], ["\\cC"]),
    ("^\\cc$", ["\x03"], []),
    ("^\\d$", ["0", "9"], ["\u07c0", "\u0660"]),
    ("^\\D$", ["\u07c0", "a"], ["0"]),
    ("^\\w$", ["a", "Z", "_", "5"], ["\u00e9", "-"]),
    ("^\\W$", ["\u00e9", "-"], ["a"]),
    ("^\\s$", [" ", "\t", "\x0b", "\x0c", "\u00a0", "\ufeff", "\n", "\u2029", "\u2003", "\u3000"],
     ["\x01", "\u2013", "\u180e", "\u200b"]),
    ("^\\S$", ["\x01", "\u2013"], [" ", "\u00a0"]),
    ("^.$", ["a", "\u00e9", "\U0001F432", "\t"], ["\n", "\r", "\u2028", "\u2029", ""]),
    ("^[^]$", ["\n", "a", "\U0001F432"], ["", "ab"]),
    ("[]", [], ["", "a"]),
    ("^[]*$", [""], ["a"]),
    ("^\\u0041\\x42\\u{43}\\u{1F432}$", ["ABC\U0001F432"], []),
    ("^\\uD83D\\uDC32$", ["\U0001F432"], []),
    ("^\U0001F432*$", ["", "\U0001F432\U0001F432"], ["\U0001F409", "D"]),
    ("^[\\b]$", ["\x08"], ["b"]),
    ("^\\0$", ["\x00"], ["0"]),
    ("^\\/\\.$", ["/."], []),
    ("^[a\\-z]+$", ["a-z"], ["b"]),
    ("^\\-\\_$", ["-_"], []),  # lenient identity escapes
    ("^a{2,3}$", ["aa", "aaa"], ["a", "aaaa"]),
    ("^a{2,}?$", ["aa", "aaaaa"], ["a"]),
    ("^x{$", ["x{"], ["x"]),
    ("^x{,2}$", ["x{,2}"], ["xx"]),
    ("^]}$", ["]}"], []),
    ("(?<name>ab)c", ["zabc"], ["abd"]),
    ("^(?:a|b)+$", ["abba"], ["abc"]),
    ("(^a|b)c$", ["ac", "zbc"], ["zac", "bcd"]),
    ("(?:^|,)x(?:,|$)", ["x", "a,x", "x,b", "a,x,b"], ["ax", "xa", "a,xb"]),
    ("(^a)*b", ["b", "ab", "zb"], ["c"]),
    ("$^", [""], ["a"]),
    ("a|^$", ["", "a", "bab"], ["b"]),
    ("^$|^a$", ["", "a"], ["aa"]),
    ("x^", [], ["x", ""]),
    ("$x", [], ["x", ""]),
    ("^\\p{L}+$", ["Hello", "\u03c0"], ["123", ""]),
    ("^\\p{Letter}+$", ["abc"], ["a1"]),
    ("^\\p{digit}+$", ["42", "\u09ea\u09e8"], ["-%#"]),
    ("^\\p{gc=Lu}$", ["A", "\u00c9"], ["a"]),
    ("^\\p{General_Category=Decimal_Number}$", ["7"], ["x"]),
    ("^\\P{L}$", ["1", "-"], ["a"]),
    ("^[\\p{Lu}\\d]+$", ["AB12"], ["ab"]),
    ("^\\p{ASCII}+$", ["abc\x00"], ["\u00e9"]),
    ("^\\p{Any}$", ["\U0010FFFF"], [""]),
    ("^\\p{AHex}+$", ["09afAF"], ["g"]),
    ("\\p{Letter}cole", ["l'\u00e9cole"], ["L'\u00c9COLE"]),
    ("\\wcole", ["l'ecole"], ["l'\u00e9cole"]),
])
def test_ecma_semantics(pattern, yes, no):
    for s in yes:
        assert _m(pattern, s), (pattern, s)
    for s in no:
        assert not _m(pattern, s), (pattern, s)


@pytest.mark.parametrize("pattern,feature", [
    ("(?=a)b", "lookahead"),
    ("(?!a)b", "negative lookahead"),
    ("(?<=a+)b", "lookbehind"),
    ("(?<!a)b", "negative lookbehind"),
    ("(a)\\1", "backreference"),
    ("(?<n>a)\\k<n>", "named backreference"),
    ("\\bword", "word-boundary"),
    ("a\\B", "word-boundary"),
    ("(?i:a)", "modifier group"),
    ("\\p{Script=Greek}", "script"),
    ("\\p{sc=Latn}", "script"),
    ("\\p{Alphabetic}", "binary property"),
    ("\\p{White_Space}", "binary property"),
])
def test_refused_features(pattern, feature):
    with pytest.raises(UnsupportedSchemaFeature) as ei:
        pattern_dfa(pattern, pointer="/properties/x/pattern")
    msg = str(ei.value)
    assert feature in msg and repr(pattern) in msg and "position" in msg
    assert ei.value.pointer == "/properties/x/pattern"


@pytest.mark.parametrize("pattern", [
    "^(abc]", "(a", "a)", "*a", "a**", "a{3,2}", "[z-a]", "[\\d-z]", "\\a", "\\e", "\\c1",
    "\\x4", "\\u12", "\\u{110000}", "\\01", "\\p{Foo}", "\\p{gc=Foo}", "\\p", "[a", "\\",
    "(?P<name>x)", "(?i)abc", "(?#comment)a", "^*", "a{2}{3}", "{2}",
])
def test_invalid_patterns(pattern):
    with pytest.raises(RegexError) as ei:
        pattern_dfa(pattern, pointer="/pattern")
    assert ei.value.pointer == "/pattern"


def test_limits_and_cache():
    with pytest.raises(LimitExceeded):
        pattern_dfa("a{20000}")
    with pytest.raises(LimitExceeded):
        pattern_dfa("[ab]*a[ab]{12}", max_states=500)
    assert pattern_dfa("ab+c") is pattern_dfa("ab+c")


# --------------------------------------------------------------------------------------
# hypothesis: same-meaning ECMA / Python patterns vs re.search
# --------------------------------------------------------------------------------------

_ECMA_SPACE = "[\\t\\n\\v\\f\\r \\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000\\ufeff]"
# (ecma, python) leaf pairs
_LEAVES = [
    ("a", "a"), ("b", "b"), ("1", "1"), ("-", "-"), (" ", " "), ("\\.", "\\."),
    ("[ab]", "[ab]"), ("[^a]", "[^a]"), ("[a-c1]", "[a-c1]"), ("[^\\n]", "[^\\n]"),
    (".", "[^\\n\\r\\u2028\\u2029]"), ("\\d", "[0-9]"), ("\\w", "[A-Za-z0-9_]"),
    ("\\W", "[^A-Za-z0-9_]"), ("\\s", _ECMA_SPACE), ("\\S", "[^" + _ECMA_SPACE[1:]),
    ("\\u00e9", "\\u00e9"), ("[\\u00e0-\\u00ff]", "[\\u00e0-\\u00ff]"),
    ("^", "^"), ("$", "\\Z"),
]
_QUANTS = ["*", "+", "?", "{2}", "{0,2}", "{1,}", "*?", "+?", "{1,3}?"]


def _patterns():
    leaf = st.sampled_from(_LEAVES)

    def extend(children):
        cat = st.lists(children, min_size=2, max_size=4).map(
            lambda xs: ("".join(x[0] for x in xs), "".join(x[1] for x in xs)))
        alt = st.lists(children, min_size=2, max_size=3).map(
            lambda xs: ("(?:" + "|".join(x[0] for x in xs) + ")",
                        "(?:" + "|".join(x[1] for x in xs) + ")"))
        quant = st.tuples(children, st.sampled_from(_QUANTS)).map(
            lambda t: ("(?:" + t[0][0] + ")" + t[1], "(?:" + t[0][1] + ")" + t[1]))
        return cat | alt | quant

    return st.recursive(leaf, extend, max_leaves=8)


_TEXT = st.text(alphabet="ab1 -.\n\r\u00e9\u2028\u00a0_", max_size=8)


@_SETTINGS
@given(_patterns(), st.lists(_TEXT, min_size=1, max_size=12))
def test_matches_python_search(pats, texts):
    ecma, py = pats
    try:
        dfa = pattern_dfa(ecma)
    except LimitExceeded:  # the documented state cap
        assume(False)
    rx = re.compile(py)
    for s in texts:
        assert dfa.matches(s.encode("utf-8")) == (rx.search(s) is not None), (ecma, py, s)


@_SETTINGS
@given(_patterns())
def test_top_level_alternatives(pats):
    """Top-level alternation with anchors at the ends of each branch."""
    ecma, py = pats
    e2, p2 = f"^{ecma}|a{ecma}$", f"^{py}|a{py}\\Z"
    try:
        dfa = pattern_dfa(e2)
    except LimitExceeded:  # the documented state cap (e.g. unanchored (\S\S\S){1,3} over Unicode)
        assume(False)
    rx = re.compile(p2)
    for s in ["", "a", "ab", "b1a", "aa-", "\n", "a\n", " a b", "\u00e9a"]:
        assert dfa.matches(s.encode("utf-8")) == (rx.search(s) is not None), (e2, s)


@pytest.mark.parametrize("pattern", [r"^(?!tag|category)$", r"^(?![iI][oO]b)", r"^(?!tag)[a-z]+$",
                                     r"^(?=a)(?!ab)", r"^(?!x)(?!y)[a-z]{1,3}"])
def test_leading_lookaheads_are_exact(pattern):
    """``^(?!R)`` / ``^(?=R)`` right after a leading anchor become complements/intersections."""
    dfa = pattern_dfa(pattern)
    for s in ["", "a", "ab", "abc", "tag", "tags", "category", "iob", "IOb", "io", "x", "y", "xyz", "zz", "Tag"]:
        assert dfa.matches(s.encode()) == (re.search(pattern, s) is not None), (pattern, s)
