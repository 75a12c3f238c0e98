"""idn-hostname: the DFA of constrain/jsonschema/idn.py against idna.encode (jsonschema's check)
and the JSON-Schema-Test-Suite rules: every accepted name encodes, within the DNS lengths."""

from __future__ import annotations

import os
import subprocess
import sys
import unicodedata

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from constrain.jsonschema import idn
from constrain.jsonschema.formats import format_dfa

idna = pytest.importorskip("idna")
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TABLE = idn._table()
DFA = idn.idn_hostname_dfa()


def ok(s: str) -> bool:
    return DFA.matches(s.encode("utf-8"))


def encodes(s: str) -> bool:
    try:
        enc = idna.encode(s)
    except (idna.IDNAError, UnicodeError, ValueError):
        return False
    return len(enc) <= 253 and all(0 < len(x) <= 63 for x in enc.split(b"."))


def suite_ok(s: str) -> bool:
    return (encodes(s) and unicodedata.normalize("NFC", s) == s
            and not any(unicodedata.bidirectional(c) in ("R", "AL", "AN") for c in s))


def test_format_uses_it():
    assert format_dfa("idn-hostname") == DFA  # (the same language: it may come from the disk cache)
    assert DFA.n_states <= 10_000


def test_table_is_generated_from_the_installed_data():
    if idna.__version__ != "3.20" or unicodedata.unidata_version != "14.0.0":
        pytest.skip("the table was generated with idna 3.20 / unicodedata 14.0.0")
    out = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "gen_idn_table.py"), "/dev/stdout"],
                         capture_output=True, text=True, check=True).stdout
    with open(os.path.join(ROOT, "constrain", "jsonschema", "_idn_table.py")) as f:
        assert f.read() in out


def test_punycode_bound():
    """5 + DIGITS per code point bounds the A-label of every admitted U-label, within 63."""
    assert idn._punycode_digits(idn.max_delta(idn.U_LABEL_CPS)) <= idn.DIGITS
    assert idn._u_cost(idn.U_LABEL_CPS) <= 63
    hi = max(b for k in ("PO", "PH", "NO", "NH") for _, b in TABLE[k])
    for worst in ("\u00df" + chr(hi) * 8, chr(hi) * 9, "a" + chr(hi) + "b" * 7, "\u00df\u00e0" * 4 + chr(hi)):
        assert ok(worst) and encodes(worst), worst
    assert not ok(chr(hi) * 10)


def test_every_base_code_point_alone():
    """Each admitted base is a valid one-code-point label; marks after 'a' (exhaustive)."""
    for k in ("PO", "PG", "PH", "NO", "NG", "NH"):
        for a, b in TABLE[k]:
            for cp in range(a, b + 1):
                s = chr(cp)
                assert ok(s) and suite_ok(s), (k, hex(cp))
    for k in ("MK", "VR"):
        for a, b in TABLE[k]:
            for cp in range(a, b + 1):
                s = "a" + chr(cp)
                assert ok(s) and suite_ok(s), (k, hex(cp))
                assert not ok(chr(cp)) and not ok("a" + chr(cp) * 2)


def test_known_cases():
    for s in ["실례.테스트", "ßς་〇", "l·l", "α͵β", "۰0", "क्‍ष", "क्‌ष", "a。b", "a．b", "a｡b", "例え.テスト",
              "bücher.example.com", "www.bücher.de", "Hostname.Example", "a" * 63]:
        assert ok(s) and encodes(s), s
    for s in ["〮실례.테스트", "ःhello", "̀hello", "a·l", "l·", "α͵S", "def・abc", "क‍ष", "क्‌षx‌y", "0a.א", "aא",
              "ü" * 60, "a..b", "-hello", "hello-", "。", "a。", "。a", "xn--ihqwcrb4cv8a8dqg056pqjye", "Bücher",
              "ab--ü", "cafe\u0301", "a" * 64, "\u05d0"]:
        assert not ok(s), s


def test_length_budget():
    lab = "ü" * 9  # charged 59 octets; each U-label's budget is rounded down to a multiple of 64
    assert ok(".".join([lab] * 3)) and encodes(".".join([lab] * 3))
    assert ok(".".join([lab] * 3 + ["com"]))
    long_name = ".".join([lab] * 40)
    assert not encodes(long_name) and not ok(long_name)
    name = ".".join(["a" * 60] * 3 + [lab])
    assert ok(name) == encodes(name) or not ok(name)


ALPHABET = [chr(a) for k in ("PO", "PG", "NO", "NG", "PH") for a, _ in TABLE[k][:40]] + list("al-l.0") + \
    ["\u00b7", "\u0375", "\u094d", "\u0301", "\u200d", "\u200c", "\u3002", "\uff0e", "\u0915", "\u0b3e"]


@settings(deadline=None, max_examples=3000, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(ALPHABET), min_size=1, max_size=30))
def test_accepted_implies_valid(chars):
    s = "".join(chars)
    if ok(s):
        assert suite_ok(s), s


@settings(deadline=None, max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.lists(st.sampled_from([chr(a) for k in ("PO", "PH", "NO") for a, b in TABLE[k]]),
                         min_size=1, max_size=9), min_size=1, max_size=3))
def test_short_u_labels_are_accepted(labels):
    """Up to 3 U-labels of up to 9 code points (each may spend the budget left at its start
    rounded down to a multiple of 64: 192, 128, 64)."""
    s = ".".join("".join(x) for x in labels)
    assert ok(s) and encodes(s), s
