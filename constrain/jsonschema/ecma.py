"""JSON Schema ``pattern`` (ECMA-262 regex, unanchored search) → byte-level DFA.

:func:`pattern_dfa` returns a minimal :class:`~constrain.grammar.dfa.ByteDFA` over the UTF-8
bytes of the *decoded* string value (no quotes, no JSON escapes) that accepts exactly the
strings ``s`` in which the ECMA-262 regex finds a match *somewhere* — the JSON Schema
``pattern`` semantics: ``pattern_dfa(p).matches(s.encode())`` equals JavaScript's
``new RegExp(p, "u").test(s)``.

Dialect (ECMA-262 with the ``u`` flag, as JSON Schema 2020-12 and its test suite use it):

* The pattern and the subject are sequences of Unicode code points (a non-BMP character is one
  atom; ``\\uD83D\\uDC32`` is one character).  Lone surrogates match nothing (they have no
  UTF-8 encoding).  No flags: matching is case-sensitive, ``^``/``$`` are the start/end of the
  whole string (no multiline), ``$`` does *not* match before a trailing newline.
* ``\\d`` = ``[0-9]``, ``\\w`` = ``[A-Za-z0-9_]``, ``\\s`` = ECMA WhiteSpace + LineTerminator
  (``[\\t\\n\\v\\f\\r \\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000\\ufeff]``)
  and their negations; ``.`` = any code point but ``\\n \\r \\u2028 \\u2029``; ``[^]`` = any
  code point, ``[]`` = nothing; ``\\b`` inside a class = U+0008.
* Escapes: ``\\f \\n \\r \\t \\v``, ``\\cX`` (ASCII letter), ``\\0`` (not followed by a digit),
  ``\\xHH``, ``\\uHHHH`` (surrogate pairs combined), ``\\u{H...}``, identity escapes of syntax
  characters and ``/`` (and, leniently, of any other non-alphanumeric character, which means
  the same in every ECMA mode), ``\\-`` inside classes.
* ``\\p{...}`` / ``\\P{...}``: General_Category values by any of their names/aliases
  (``L``, ``Letter``, ``gc=Lu``, ``General_Category=Decimal_Number``, ``digit``, ``punct``, ...),
  and the binary properties ``Any``, ``ASCII``, ``Assigned``, ``ASCII_Hex_Digit``/``AHex`` and
  ``Noncharacter_Code_Point``/``NChar``, built from Python's :mod:`unicodedata` (Unicode
  ``unicodedata.unidata_version``).  Scripts (``sc=``/``scx=``) and the other binary properties
  have no data in :mod:`unicodedata` and are refused by name.
* Lenient Annex-B literals that cannot mean anything else: a lone ``]``, ``}`` and a ``{`` that
  does not start a quantifier.
* Anchors are exact *anywhere* (``(^a|b)c$``, ``(?:^|,)x``, ``(^a)*``): ``^`` and ``$`` are
  compiled to two marker bytes (0xFE/0xFF, never in UTF-8) around the subject, and the
  markers are quotiented away afterwards (left quotient by ``0xFE*``, right quotient by
  ``0xFF*``; the empty subject is decided separately).  So the result is
  ``{s : ∃ k, m ≥ 0 . ⊢^k s ⊣^m ∈ (⊢* Σ*) R̂ (Σ* ⊣*)}``, which equals the ECMA search
  language (an ECMA match passes every ``^`` before its first character and every ``$``
  after its last; empty-iteration pruning of ECMA loops never changes which strings match).

Refused, never approximated:

* :class:`~constrain.errors.UnsupportedSchemaFeature` (valid ECMA, not regular or not
  supported): lookahead/lookbehind, backreferences (``\\1``, ``\\k<name>``), word boundaries
  ``\\b``/``\\B``, modifier groups ``(?i:...)``, script / unsupported binary properties.
* :class:`~constrain.errors.RegexError` (not a valid ECMA ``u``-mode pattern): unbalanced
  parentheses or brackets, nothing to repeat, ``{n,m}`` out of order, out-of-order class
  ranges, class escapes as range ends, unknown escapes such as ``\\a`` / ``\\e``, octal escapes,
  invalid ``\\c``/``\\x``/``\\u`` escapes, unknown property names, Python-only syntax such as
  ``(?P<name>...)``, ``(?i)``, ``(?#...)``.
* :class:`~constrain.errors.LimitExceeded`: counted repetitions expanding past ``max_repeat``
  copies or a DFA over ``max_states`` states.

All errors carry the JSON pointer passed in ``pointer`` and the position in the pattern.
Results are cached per ``(pattern, max_states, max_repeat)``.
"""

from __future__ import annotations

import unicodedata
from functools import lru_cache

import numpy as np

from constrain.errors import GrammarError, LimitExceeded, RegexError, UnsupportedSchemaFeature
from constrain.grammar.dfa import DEFAULT_MAX_STATES, MAX_UNICODE, ByteDFA, ByteNFA
from constrain.grammar.regex import DEFAULT_MAX_REPEAT, literal_dfa

__all__ = ["pattern_dfa", "parse_ecma"]

_INF = None
_BOS = 0xFE  # marker byte for "^" (never occurs in UTF-8)
_EOS = 0xFF  # marker byte for "$"

# AST (hashable tuples):
#   ("set", intervals)         one code point in the sorted, disjoint inclusive intervals
#   ("cat", (node, ...))       concatenation
#   ("alt", (node, ...))       alternation
#   ("rep", node, lo, hi)      repetition, hi None = unbounded
#   ("bol",) / ("eol",)        ^ / $

_SYNTAX_CHARS = set("^$\\.*+?()[]{}|/")
_DIGITS = ((0x30, 0x39),)
_WORD = ((0x30, 0x39), (0x41, 0x5A), (0x5F, 0x5F), (0x61, 0x7A))
_SPACE = ((0x09, 0x0D), (0x20, 0x20), (0xA0, 0xA0), (0x1680, 0x1680), (0x2000, 0x200A),
          (0x2028, 0x2029), (0x202F, 0x202F), (0x205F, 0x205F), (0x3000, 0x3000),
          (0xFEFF, 0xFEFF))
_DOT = ((0x00, 0x09), (0x0B, 0x0C), (0x0E, 0x2027), (0x202A, MAX_UNICODE))
_ALL = ((0, MAX_UNICODE),)
_CONTROL_ESCAPES = {"f": 0x0C, "n": 0x0A, "r": 0x0D, "t": 0x09, "v": 0x0B}

# General_Category values and aliases (Unicode PropertyValueAliases.txt, gc)
_GC_ALIASES = {
    "C": "C", "Other": "C",
    "Cc": "Cc", "Control": "Cc", "cntrl": "Cc",
    "Cf": "Cf", "Format": "Cf",
    "Cn": "Cn", "Unassigned": "Cn",
    "Co": "Co", "Private_Use": "Co",
    "Cs": "Cs", "Surrogate": "Cs",
    "L": "L", "Letter": "L",
    "LC": "LC", "Cased_Letter": "LC",
    "Ll": "Ll", "Lowercase_Letter": "Ll",
    "Lm": "Lm", "Modifier_Letter": "Lm",
    "Lo": "Lo", "Other_Letter": "Lo",
    "Lt": "Lt", "Titlecase_Letter": "Lt",
    "Lu": "Lu", "Uppercase_Letter": "Lu",
    "M": "M", "Mark": "M", "Combining_Mark": "M",
    "Mc": "Mc", "Spacing_Mark": "Mc",
    "Me": "Me", "Enclosing_Mark": "Me",
    "Mn": "Mn", "Nonspacing_Mark": "Mn",
    "N": "N", "Number": "N",
    "Nd": "Nd", "Decimal_Number": "Nd", "digit": "Nd",
    "Nl": "Nl", "Letter_Number": "Nl",
    "No": "No", "Other_Number": "No",
    "P": "P", "Punctuation": "P", "punct": "P",
    "Pc": "Pc", "Connector_Punctuation": "Pc",
    "Pd": "Pd", "Dash_Punctuation": "Pd",
    "Pe": "Pe", "Close_Punctuation": "Pe",
    "Pf": "Pf", "Final_Punctuation": "Pf",
    "Pi": "Pi", "Initial_Punctuation": "Pi",
    "Po": "Po", "Other_Punctuation": "Po",
    "Ps": "Ps", "Open_Punctuation": "Ps",
    "S": "S", "Symbol": "S",
    "Sc": "Sc", "Currency_Symbol": "Sc",
    "Sk": "Sk", "Modifier_Symbol": "Sk",
    "Sm": "Sm", "Math_Symbol": "Sm",
    "So": "So", "Other_Symbol": "So",
    "Z": "Z", "Separator": "Z",
    "Zl": "Zl", "Line_Separator": "Zl",
    "Zp": "Zp", "Paragraph_Separator": "Zp",
    "Zs": "Zs", "Space_Separator": "Zs",
}
_GC_GROUPS = {"C": "Cc Cf Cn Co Cs", "L": "Ll Lm Lo Lt Lu", "LC": "Ll Lt Lu",
              "M": "Mc Me Mn", "N": "Nd Nl No", "P": "Pc Pd Pe Pf Pi Po Ps",
              "S": "Sc Sk Sm So", "Z": "Zl Zp Zs"}

# ECMA-262 binary Unicode properties (table "Binary Unicode property aliases"), canonical names
_BINARY_PROPS = {
    "ASCII": "ASCII", "ASCII_Hex_Digit": "ASCII_Hex_Digit", "AHex": "ASCII_Hex_Digit",
    "Alphabetic": "Alphabetic", "Alpha": "Alphabetic", "Any": "Any", "Assigned": "Assigned",
    "Bidi_Control": "Bidi_Control", "Bidi_C": "Bidi_Control",
    "Bidi_Mirrored": "Bidi_Mirrored", "Bidi_M": "Bidi_Mirrored",
    "Case_Ignorable": "Case_Ignorable", "CI": "Case_Ignorable", "Cased": "Cased",
    "Changes_When_Casefolded": "Changes_When_Casefolded", "CWCF": "Changes_When_Casefolded",
    "Changes_When_Casemapped": "Changes_When_Casemapped", "CWCM": "Changes_When_Casemapped",
    "Changes_When_Lowercased": "Changes_When_Lowercased", "CWL": "Changes_When_Lowercased",
    "Changes_When_NFKC_Casefolded": "Changes_When_NFKC_Casefolded",
    "CWKCF": "Changes_When_NFKC_Casefolded",
    "Changes_When_Titlecased": "Changes_When_Titlecased", "CWT": "Changes_When_Titlecased",
    "Changes_When_Uppercased": "Changes_When_Uppercased", "CWU": "Changes_When_Uppercased",
    "Dash": "Dash", "Default_Ignorable_Code_Point": "Default_Ignorable_Code_Point",
    "DI": "Default_Ignorable_Code_Point", "Deprecated": "Deprecated", "Dep": "Deprecated",
    "Diacritic": "Diacritic", "Dia": "Diacritic", "Emoji": "Emoji",
    "Emoji_Component": "Emoji_Component", "EComp": "Emoji_Component",
    "Emoji_Modifier": "Emoji_Modifier", "EMod": "Emoji_Modifier",
    "Emoji_Modifier_Base": "Emoji_Modifier_Base", "EBase": "Emoji_Modifier_Base",
    "Emoji_Presentation": "Emoji_Presentation", "EPres": "Emoji_Presentation",
    "Extended_Pictographic": "Extended_Pictographic", "ExtPict": "Extended_Pictographic",
    "Extender": "Extender", "Ext": "Extender", "Grapheme_Base": "Grapheme_Base",
    "Gr_Base": "Grapheme_Base", "Grapheme_Extend": "Grapheme_Extend", "Gr_Ext": "Grapheme_Extend",
    "Hex_Digit": "Hex_Digit", "Hex": "Hex_Digit",
    "IDS_Binary_Operator": "IDS_Binary_Operator", "IDSB": "IDS_Binary_Operator",
    "IDS_Trinary_Operator": "IDS_Trinary_Operator", "IDST": "IDS_Trinary_Operator",
    "ID_Continue": "ID_Continue", "IDC": "ID_Continue", "ID_Start": "ID_Start", "IDS": "ID_Start",
    "Ideographic": "Ideographic", "Ideo": "Ideographic", "Join_Control": "Join_Control",
    "Join_C": "Join_Control", "Logical_Order_Exception": "Logical_Order_Exception",
    "LOE": "Logical_Order_Exception", "Lowercase": "Lowercase", "Lower": "Lowercase",
    "Math": "Math", "Noncharacter_Code_Point": "Noncharacter_Code_Point",
    "NChar": "Noncharacter_Code_Point", "Pattern_Syntax": "Pattern_Syntax",
    "Pat_Syn": "Pattern_Syntax", "Pattern_White_Space": "Pattern_White_Space",
    "Pat_WS": "Pattern_White_Space", "Quotation_Mark": "Quotation_Mark",
    "QMark": "Quotation_Mark", "Radical": "Radical", "Regional_Indicator": "Regional_Indicator",
    "RI": "Regional_Indicator", "Sentence_Terminal": "Sentence_Terminal",
    "STerm": "Sentence_Terminal", "Soft_Dotted": "Soft_Dotted", "SD": "Soft_Dotted",
    "Terminal_Punctuation": "Terminal_Punctuation", "Term": "Terminal_Punctuation",
    "Unified_Ideograph": "Unified_Ideograph", "UIdeo": "Unified_Ideograph",
    "Uppercase": "Uppercase", "Upper": "Uppercase",
    "Variation_Selector": "Variation_Selector", "VS": "Variation_Selector",
    "White_Space": "White_Space", "space": "White_Space",
    "XID_Continue": "XID_Continue", "XIDC": "XID_Continue",
    "XID_Start": "XID_Start", "XIDS": "XID_Start",
}
_NONCHARS = tuple([(0xFDD0, 0xFDEF)] + [(p * 0x10000 + 0xFFFE, p * 0x10000 + 0xFFFF)
                                       for p in range(17)])
_SUPPORTED_BINARY = {
    "Any": _ALL,
    "ASCII": ((0, 0x7F),),
    "ASCII_Hex_Digit": ((0x30, 0x39), (0x41, 0x46), (0x61, 0x66)),
    "Noncharacter_Code_Point": _NONCHARS,
}


# --------------------------------------------------------------------------------------
# interval helpers
# --------------------------------------------------------------------------------------

def _norm(iv) -> tuple:
    out: list[list[int]] = []
    for lo, hi in sorted(iv):
        if out and lo <= out[-1][1] + 1:
            if hi > out[-1][1]:
                out[-1][1] = hi
        else:
            out.append([lo, hi])
    return tuple((a, b) for a, b in out)


def _negate(iv) -> tuple:
    out = []
    prev = 0
    for lo, hi in iv:
        if lo > prev:
            out.append((prev, lo - 1))
        prev = hi + 1
    if prev <= MAX_UNICODE:
        out.append((prev, MAX_UNICODE))
    return tuple(out)


@lru_cache(maxsize=1)
def _gc_table() -> dict[str, tuple]:
    """General category (two letters) → code-point intervals, from :mod:`unicodedata`."""
    cat = unicodedata.category
    runs: dict[str, list[tuple[int, int]]] = {}
    prev = cat("\x00")
    start = 0
    for cp in range(1, MAX_UNICODE + 1):
        c = cat(chr(cp))
        if c != prev:
            runs.setdefault(prev, []).append((start, cp - 1))
            prev, start = c, cp
    runs.setdefault(prev, []).append((start, MAX_UNICODE))
    return {k: tuple(v) for k, v in runs.items()}


@lru_cache(maxsize=None)
def _gc_intervals(value: str) -> tuple:
    table = _gc_table()
    parts = _GC_GROUPS.get(value, value).split()
    return _norm(iv for p in parts for iv in table.get(p, ()))


# --------------------------------------------------------------------------------------
# parser
# --------------------------------------------------------------------------------------

def _combine_surrogates(pattern: str) -> str:
    """Join UTF-16 surrogate pairs that appear as two characters into one code point."""
    if not any(0xD800 <= ord(c) <= 0xDFFF for c in pattern):
        return pattern
    out = []
    i = 0
    while i < len(pattern):
        c = ord(pattern[i])
        if 0xD800 <= c <= 0xDBFF and i + 1 < len(pattern) and 0xDC00 <= ord(pattern[i + 1]) <= 0xDFFF:
            out.append(chr(0x10000 + ((c - 0xD800) << 10) + (ord(pattern[i + 1]) - 0xDC00)))
            i += 2
        else:
            out.append(pattern[i])
            i += 1
    return "".join(out)


def _char_set(cp: int) -> tuple:
    if 0xD800 <= cp <= 0xDFFF:  # lone surrogate: no UTF-8 encoding, matches nothing
        return ("set", ())
    return ("set", ((cp, cp),))


class _Parser:
    def __init__(self, pattern: str, pointer: str | None):
        self.src = pattern
        self.p = _combine_surrogates(pattern)
        self.n = len(self.p)
        self.i = 0
        self.pointer = pointer

    # ---- errors ------------------------------------------------------------------------

    def _ctx(self, pos: int) -> str:
        return f"  {self.p}\n  {' ' * pos}^"

    def error(self, msg: str, pos: int | None = None) -> RegexError:
        pos = self.i if pos is None else pos
        return RegexError(f"invalid ECMA-262 regex {self.src!r}: {msg} at position {pos}",
                          column=pos + 1, pointer=self.pointer, context=self._ctx(pos))

    def refuse(self, feature: str, pos: int, hint: str) -> UnsupportedSchemaFeature:
        return UnsupportedSchemaFeature(
            f"{feature} at position {pos} in pattern {self.src!r} is not supported: {hint}",
            column=pos + 1, pointer=self.pointer, context=self._ctx(pos))

    # ---- helpers -----------------------------------------------------------------------

    def peek(self, k: int = 0) -> str:
        j = self.i + k
        return self.p[j] if j < self.n else ""

    def startswith(self, s: str) -> bool:
        return self.p.startswith(s, self.i)

    # ---- grammar -----------------------------------------------------------------------

    def parse(self):
        node = self.disjunction()
        if self.i < self.n:  # only a ')' can stop the top-level disjunction
            raise self.error("unmatched ')'")
        return node

    def disjunction(self):
        alts = [self.alternative()]
        while self.peek() == "|":
            self.i += 1
            alts.append(self.alternative())
        return alts[0] if len(alts) == 1 else ("alt", tuple(alts))

    def alternative(self):
        items = []
        while self.i < self.n and self.p[self.i] not in "|)":
            items.append(self.term())
        return items[0] if len(items) == 1 else ("cat", tuple(items))

    def term(self):
        start = self.i
        c = self.p[self.i]
        if c == "^" or c == "$":
            self.i += 1
            if self._quantifier_ahead():
                raise self.error("nothing to repeat (quantified assertion)", self.i)
            return ("bol",) if c == "^" else ("eol",)
        if c == "\\" and self.peek(1) in ("b", "B"):
            raise self.refuse(f"word-boundary assertion \\{self.peek(1)}", start,
                              "it depends on the neighbouring characters; rewrite the pattern without it")
        if c == "(" and self.peek(1) == "?":
            for tok, what in (("(?=", "lookahead"), ("(?!", "negative lookahead"),
                              ("(?<=", "lookbehind"), ("(?<!", "negative lookbehind")):
                if self.startswith(tok):
                    raise self.refuse(what, start,
                                      "lookaround assertions are not supported; rewrite the pattern without them")
        atom = self.atom()
        return self.quantified(atom)

    def _quantifier_ahead(self) -> bool:
        c = self.peek()
        return c in ("*", "+", "?") or (c == "{" and self._brace_quantifier(self.i) is not None)

    def _brace_quantifier(self, j: int):
        """Parse ``{n}``, ``{n,}``, ``{n,m}`` at ``j``; returns (lo, hi, end) or None."""
        p, n = self.p, self.n
        if j >= n or p[j] != "{":
            return None
        k = j + 1
        s = k
        while k < n and "0" <= p[k] <= "9":
            k += 1
        if k == s:
            return None
        lo = int(p[s:k])
        hi = lo
        if k < n and p[k] == ",":
            k += 1
            s = k
            while k < n and "0" <= p[k] <= "9":
                k += 1
            hi = int(p[s:k]) if k > s else _INF
        if k < n and p[k] == "}":
            return lo, hi, k + 1
        return None

    def quantified(self, atom):
        c = self.peek()
        pos = self.i
        if c == "*":
            lo, hi, end = 0, _INF, self.i + 1
        elif c == "+":
            lo, hi, end = 1, _INF, self.i + 1
        elif c == "?":
            lo, hi, end = 0, 1, self.i + 1
        elif c == "{":
            q = self._brace_quantifier(self.i)
            if q is None:
                return atom
            lo, hi, end = q
            if hi is not _INF and hi < lo:
                raise self.error("numbers out of order in {} quantifier", pos)
        else:
            return atom
        self.i = end
        if self.peek() == "?":  # lazy: same language
            self.i += 1
        if self._quantifier_ahead():
            raise self.error("nothing to repeat", self.i)
        return ("rep", atom, lo, hi)

    def atom(self):
        start = self.i
        c = self.p[self.i]
        if c == ".":
            self.i += 1
            return ("set", _DOT)
        if c == "(":
            return self.group()
        if c == "[":
            return self.char_class()
        if c == "\\":
            return self.atom_escape()
        if c in "*+?":
            raise self.error("nothing to repeat", start)
        if c == "{" and self._brace_quantifier(self.i) is not None:
            raise self.error("nothing to repeat", start)
        self.i += 1
        return _char_set(ord(c))  # includes lenient lone ']', '}', '{'

    def group(self):
        start = self.i
        self.i += 1
        if self.peek() == "?":
            if self.startswith("?:"):
                self.i += 2
            elif self.startswith("?<") and self.peek(2) not in ("=", "!"):
                j = self.p.find(">", self.i)
                name = self.p[self.i + 2:j] if j >= 0 else ""
                if j < 0 or not name or not _valid_group_name(name):
                    raise self.error("invalid group name", start)
                self.i = j + 1
            else:
                j = self.i + 1
                while j < self.n and (self.p[j].isalpha() or self.p[j] == "-"):
                    j += 1
                mods = self.p[self.i + 1:j]
                if mods and j < self.n and self.p[j] == ":" and _valid_modifiers(mods):
                    raise self.refuse(f"modifier group (?{mods}:...)", start,
                                      "inline modifiers are not supported; rewrite the group without them")
                if self.startswith("?P"):
                    raise self.error("Python-style named group (?P...) is not ECMA-262 syntax", start)
                raise self.error(f"invalid group '(?{self.peek(1)}'", start)
        node = self.disjunction()
        if self.peek() != ")":
            raise self.error("missing ')'", start)
        self.i += 1
        return node

    # ---- escapes -----------------------------------------------------------------------

    def atom_escape(self):
        start = self.i
        c = self.peek(1)
        if c == "":
            raise self.error("pattern ends with a backslash", start)
        if c in "123456789":
            raise self.refuse(f"backreference \\{c}", start,
                              "backreferences are not regular; repeat the sub-pattern instead")
        if c == "k":
            raise self.refuse("named backreference \\k<...>", start,
                              "backreferences are not regular; repeat the sub-pattern instead")
        iv = self.class_escape_set(c)
        if iv is not None:
            return ("set", iv)
        return _char_set(self.character_escape(in_class=False))

    def class_escape_set(self, c: str):
        """``\\d \\D \\w \\W \\s \\S \\p{} \\P{}`` at ``self.i`` (the backslash); None if not one."""
        base = {"d": _DIGITS, "w": _WORD, "s": _SPACE}
        if c.lower() in base:
            self.i += 2
            iv = base[c.lower()]
            return _negate(iv) if c.isupper() else iv
        if c in ("p", "P"):
            start = self.i
            self.i += 2
            if self.peek() != "{":
                raise self.error(f"\\{c} must be followed by {{...}}", start)
            j = self.p.find("}", self.i)
            if j < 0:
                raise self.error(f"unterminated \\{c}{{...}}", start)
            body = self.p[self.i + 1:j]
            self.i = j + 1
            iv = self.property(body, start)
            return _negate(iv) if c == "P" else iv
        return None

    def property(self, body: str, pos: int) -> tuple:
        if "=" in body:
            name, _, value = body.partition("=")
            if name in ("General_Category", "gc"):
                gc = _GC_ALIASES.get(value)
                if gc is None:
                    raise self.error(f"unknown General_Category value {value!r}", pos)
                return _gc_intervals(gc)
            if name in ("Script", "sc", "Script_Extensions", "scx"):
                raise self.refuse(f"Unicode script property \\p{{{body}}}", pos,
                                  "Python's unicodedata has no script data, so the class cannot be built exactly")
            raise self.error(f"unknown Unicode property {name!r}", pos)
        gc = _GC_ALIASES.get(body)
        if gc is not None:
            return _gc_intervals(gc)
        prop = _BINARY_PROPS.get(body)
        if prop is None:
            raise self.error(f"unknown Unicode property {body!r}", pos)
        if prop == "Assigned":
            return _negate(_gc_intervals("Cn"))
        iv = _SUPPORTED_BINARY.get(prop)
        if iv is None:
            raise self.refuse(f"Unicode binary property \\p{{{body}}}", pos,
                              "Python's unicodedata has no data for it, so the class cannot be built exactly")
        return iv

    def character_escape(self, in_class: bool) -> int:
        """A CharacterEscape at ``self.i`` (the backslash); returns the code point."""
        start = self.i
        c = self.peek(1)
        if c in _CONTROL_ESCAPES:
            self.i += 2
            return _CONTROL_ESCAPES[c]
        if c == "c":
            letter = self.peek(2)
            if letter and letter.isascii() and letter.isalpha():
                self.i += 3
                return ord(letter) % 32
            raise self.error("\\c must be followed by an ASCII letter", start)
        if c == "0":
            if self.peek(2).isdigit() and self.peek(2).isascii():
                raise self.error("octal escapes are not allowed in ECMA-262 unicode mode", start)
            self.i += 2
            return 0
        if c == "x":
            h = self.p[self.i + 2:self.i + 4]
            if len(h) == 2 and _is_hex(h):
                self.i += 4
                return int(h, 16)
            raise self.error("\\x must be followed by two hex digits", start)
        if c == "u":
            return self.unicode_escape(start)
        if c == "-" and in_class:
            self.i += 2
            return 0x2D
        if c in _SYNTAX_CHARS:
            self.i += 2
            return ord(c)
        if not (c.isascii() and c.isalnum()) and c != "":
            # lenient (Annex B) identity escape: means the character itself in every mode
            self.i += 2
            return ord(c)
        raise self.error(f"invalid escape \\{c}", start)

    def unicode_escape(self, start: int) -> int:
        if self.peek(2) == "{":
            j = self.p.find("}", self.i + 3)
            h = self.p[self.i + 3:j] if j >= 0 else ""
            if not h or not _is_hex(h) or int(h, 16) > MAX_UNICODE:
                raise self.error("invalid \\u{...} escape", start)
            self.i = j + 1
            return int(h, 16)
        h = self.p[self.i + 2:self.i + 6]
        if len(h) != 4 or not _is_hex(h):
            raise self.error("\\u must be followed by four hex digits or {...}", start)
        cp = int(h, 16)
        self.i += 6
        if 0xD800 <= cp <= 0xDBFF and self.startswith("\\u"):
            h2 = self.p[self.i + 2:self.i + 6]
            if len(h2) == 4 and _is_hex(h2) and 0xDC00 <= int(h2, 16) <= 0xDFFF:
                self.i += 6
                return 0x10000 + ((cp - 0xD800) << 10) + (int(h2, 16) - 0xDC00)
        return cp

    # ---- character classes -------------------------------------------------------------

    def char_class(self):
        start = self.i
        self.i += 1
        negate = False
        if self.peek() == "^":
            negate = True
            self.i += 1
        parts: list[tuple[int, int]] = []
        while True:
            if self.i >= self.n:
                raise self.error("missing ']'", start)
            if self.peek() == "]":
                self.i += 1
                break
            a_pos = self.i
            a = self.class_atom()
            if self.peek() == "-" and self.peek(1) not in ("]", ""):
                self.i += 1
                b_pos = self.i
                b = self.class_atom()
                if not isinstance(a, int) or not isinstance(b, int):
                    bad = a_pos if not isinstance(a, int) else b_pos
                    raise self.error("a class escape cannot be a range end", bad)
                if a > b:
                    raise self.error("range out of order in character class", a_pos)
                parts.append((a, b))
            elif isinstance(a, int):
                parts.append((a, a))
            else:
                parts.extend(a)
        iv = _norm(parts)
        if negate:
            iv = _negate(iv)
        return ("set", iv)

    def class_atom(self):
        """A code point (int) or a class escape's intervals (tuple)."""
        c = self.p[self.i]
        if c != "\\":
            self.i += 1
            return ord(c)
        e = self.peek(1)
        if e == "b":
            self.i += 2
            return 0x08
        iv = self.class_escape_set(e)
        if iv is not None:
            return iv
        if e == "":
            raise self.error("pattern ends with a backslash", self.i)
        if e in "123456789":
            raise self.error("decimal escape inside a character class", self.i)
        if e in ("B", "k"):
            raise self.error(f"invalid escape \\{e} inside a character class", self.i)
        return self.character_escape(in_class=True)


def _is_hex(s: str) -> bool:
    return all(ch in "0123456789abcdefABCDEF" for ch in s)


def _valid_group_name(name: str) -> bool:
    return ((name[0].isalpha() or name[0] in "$_")
            and all(ch.isalnum() or ch in "$_\u200c\u200d" for ch in name))


def _valid_modifiers(mods: str) -> bool:
    add, _, rem = mods.partition("-")
    return all(ch in "ims" for ch in add + rem) and bool(add or rem)


def parse_ecma(pattern: str, *, pointer: str = ""):
    """Parse an ECMA-262 (``u``-mode) pattern to the internal AST; raises on refused syntax."""
    return _Parser(pattern, pointer).parse()


# --------------------------------------------------------------------------------------
# AST → NFA → DFA
# --------------------------------------------------------------------------------------

def _has_anchor(node) -> bool:
    k = node[0]
    if k in ("bol", "eol"):
        return True
    if k == "set":
        return False
    if k == "rep":
        return _has_anchor(node[1])
    return any(_has_anchor(x) for x in node[1])


def _nullable(node) -> bool:
    """Matches the empty string when every anchor counts as satisfied."""
    k = node[0]
    if k in ("bol", "eol"):
        return True
    if k == "set":
        return False
    if k == "rep":
        return node[2] == 0 or _nullable(node[1])
    if k == "cat":
        return all(_nullable(x) for x in node[1])
    return any(_nullable(x) for x in node[1])


class _Builder:
    def __init__(self, pattern: str, max_states: int, max_repeat: int):
        self.pattern = pattern
        self.max_states = max_states
        self.max_repeat = max_repeat
        self.max_nfa_states = max(1_000_000, 100 * max_states)
        self.nfa = ByteNFA()
        self.mult = 1
        self.sub_cache: dict = {}

    def build(self, node):
        nfa = self.nfa
        if nfa.n_states > self.max_nfa_states:
            raise LimitExceeded(f"pattern {self.pattern!r} expands to more than "
                                f"{self.max_nfa_states} NFA states",
                                limit="max_dfa_states", value=self.max_states)
        k = node[0]
        if k == "set":
            return nfa.codepoints(node[1])
        if k == "cat":
            return nfa.concat([self.build(x) for x in node[1]])
        if k == "alt":
            return nfa.alt([self.build(x) for x in node[1]])
        if k == "bol":
            return nfa.byte_ranges([(_BOS, _BOS)])
        if k == "eol":
            return nfa.byte_ranges([(_EOS, _EOS)])
        return self.repeat(node[1], node[2], node[3])

    def repeat(self, body, lo: int, hi):
        nfa = self.nfa
        unbounded = hi is _INF
        copies = max(lo, 1) if unbounded else hi
        total = self.mult * copies
        if total > self.max_repeat:
            rep = f"{{{lo}}}" if lo == hi else f"{{{lo},{'' if unbounded else hi}}}"
            raise LimitExceeded(f"pattern {self.pattern!r}: repetition {rep} expands to {total} "
                                f"copies of its body", limit="max_repeat", value=self.max_repeat)
        if hi == 0:
            return nfa.empty()
        saved = self.mult
        self.mult = max(total, 1)
        try:
            if lo <= 1 and (unbounded or hi <= 1):
                f = self.build(body)
                if lo == 0 and unbounded:
                    return nfa.star(f)
                if lo == 1 and unbounded:
                    return nfa.plus(f)
                if lo == 0:
                    return nfa.opt(f)
                return f
            sub = self.sub_dfa(body)
        finally:
            self.mult = saved
        if sub.n_states * copies > self.max_nfa_states:
            raise LimitExceeded(f"pattern {self.pattern!r}: a repetition of a {sub.n_states}-state "
                                f"body is too large", limit="max_dfa_states", value=self.max_states)
        return nfa.repeat_dfa(sub, lo, None if unbounded else hi)

    def sub_dfa(self, body) -> ByteDFA:
        hit = self.sub_cache.get(body)
        if hit is not None:
            return hit
        saved = self.nfa
        self.nfa = ByteNFA()
        try:
            s, e = self.build(body)
            dfa = self.nfa.to_dfa(s, e, max_states=self.max_states,
                                  what=f"pattern {self.pattern!r}").minimize()
        finally:
            self.nfa = saved
        self.sub_cache[body] = dfa
        return dfa


def _strip_markers(dfa: ByteDFA, max_states: int, what: str) -> ByteDFA:
    """Left-quotient by ``BOS*`` and right-quotient by ``EOS*``, then drop the marker bytes."""
    trans = dfa.trans
    n = dfa.n_states
    starts = []
    q = 0
    seen = set()
    while q >= 0 and q not in seen:
        seen.add(q)
        starts.append(q)
        q = int(trans[q, _BOS])
    acc = np.array(dfa.accept)
    eos = trans[:, _EOS].tolist()
    for q0 in range(n):
        if acc[q0]:
            continue
        q = eos[q0]
        seen = {q0}
        while q >= 0 and q not in seen:
            if dfa.accept[q]:
                acc[q0] = True
                break
            seen.add(q)
            q = eos[q]
    t2 = np.array(trans)
    t2[:, _BOS] = -1
    t2[:, _EOS] = -1
    d2 = ByteDFA(t2, acc)
    if len(starts) == 1:
        return d2.minimize()
    nfa = ByteNFA()
    s0 = nfa.add_state()
    base, e = nfa.embed_dfa(d2)
    for q in starts:
        nfa.add_eps(s0, base + q)
    return nfa.to_dfa(s0, e, max_states=max_states, what=what).minimize()


def _close_paren(pattern: str, i: int) -> int:
    """Index of the ``)`` closing the group opened at ``pattern[i]`` (escapes and classes skipped), or -1."""
    depth, j, n = 0, i, len(pattern)
    while j < n:
        c = pattern[j]
        if c == "\\":
            j += 2
            continue
        if c == "[":
            j += 1
            while j < n and pattern[j] != "]":
                j += 2 if pattern[j] == "\\" else 1
        elif c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
            if depth == 0:
                return j
        j += 1
    return -1


def _leading_lookaheads(pattern: str):
    """``^(?!R)S`` / ``^(?=R)S`` → (S, [(R, positive)]): lookaheads right after a leading ``^``
    (a common way to exclude reserved names) are exact as DFA intersections/complements:
    at the start of the string, ``(?!R)`` means "no prefix matches R"."""
    looks = []
    rest = pattern
    while rest.startswith(("^(?!", "^(?=")):
        end = _close_paren(rest, 1)
        if end < 0:
            break
        looks.append((rest[4:end], rest[3] == "="))
        rest = "^" + rest[end + 1:]
    return rest, looks


@lru_cache(maxsize=1024)
def _pattern_dfa_cached(pattern: str, max_states: int, max_repeat: int) -> ByteDFA:
    rest, looks = _leading_lookaheads(pattern)
    if not looks:
        return _pattern_dfa_plain(pattern, max_states, max_repeat)
    dfa = _pattern_dfa_plain(rest, max_states, max_repeat)
    for r, positive in looks:
        starts = _pattern_dfa_plain("^(?:" + r + ")", max_states, max_repeat)
        dfa = dfa.intersect(starts if positive else starts.complement(utf8=True), max_states=max_states)
    return dfa


def _pattern_dfa_plain(pattern: str, max_states: int, max_repeat: int) -> ByteDFA:
    ast = _Parser(pattern, None).parse()
    what = f"pattern {pattern!r}"
    b = _Builder(pattern, max_states, max_repeat)
    nfa = b.nfa
    body = b.build(ast)
    anchored = _has_anchor(ast)
    frags = []
    if anchored:
        frags.append(nfa.star(nfa.byte_ranges([(_BOS, _BOS)])))
    frags.append(nfa.star(nfa.codepoints(_ALL)))
    frags.append(body)
    frags.append(nfa.star(nfa.codepoints(_ALL)))
    if anchored:
        frags.append(nfa.star(nfa.byte_ranges([(_EOS, _EOS)])))
    s, e = nfa.concat(frags)
    dfa = nfa.to_dfa(s, e, max_states=max_states, what=what).minimize()
    if anchored:
        dfa = _strip_markers(dfa, max_states, what)
        if _nullable(ast) and not dfa.matches(b""):
            dfa = dfa.union(literal_dfa(b""), max_states=max_states)
    return dfa


def pattern_dfa(pattern: str, *, pointer: str = "", max_states: int = DEFAULT_MAX_STATES,
                max_repeat: int = DEFAULT_MAX_REPEAT) -> ByteDFA:
    """DFA of the strings in which the ECMA-262 regex ``pattern`` matches somewhere.

    The DFA reads the UTF-8 bytes of the decoded string value.  ``pointer`` (the JSON pointer
    of the ``pattern`` keyword) is attached to every error.

    Raises
    ------
    UnsupportedSchemaFeature
        Lookaround (except lookaheads right after a leading ``^``: exact as DFA
        intersections/complements), backreferences, word boundaries, modifier groups, script /
        unsupported binary Unicode properties (named, with the position).
    RegexError
        The pattern is not a valid ECMA-262 (``u``-mode) regex.
    LimitExceeded
        ``max_states`` / ``max_repeat`` exceeded.
    """
    if not isinstance(pattern, str):
        raise RegexError(f"pattern must be a string, got {type(pattern).__name__}", pointer=pointer)
    try:
        return _pattern_dfa_cached(pattern, max_states, max_repeat)
    except GrammarError as e:
        if e.pointer is None:
            raise type(e)(e.message, line=e.line, column=e.column, pointer=pointer,
                          context=e.context) from None
        raise
