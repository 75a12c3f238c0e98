"""Regex → byte-level DFA compiler.

:func:`compile_regex` turns a Python-syntax regular expression over Unicode *text* into a
:class:`~constrain.grammar.dfa.ByteDFA` over the UTF-8 *bytes* of the strings it fully
matches: ``compile_regex(p).matches(s.encode())`` equals ``re.fullmatch(p, s) is not None``
for every ``str`` ``s`` without lone surrogates.

Semantics (chosen to be exactly Python ``re`` on ``str`` patterns, which is also what Lark
terminals mean):

* Parsing uses CPython's own regex parser (``re._parser``, ``sre_parse`` on 3.10), so the
  accepted syntax, escapes (``\\x``, ``\\u``, ``\\U``, ``\\N{...}``, octal), inline flags,
  verbose mode and error positions are Python's.  ``interegular``'s parser was considered and
  not used: it expands ranges to explicit character sets, treats ``\\d``/``\\w``/``\\s`` as
  ASCII, rejects ``\\u`` escapes and gives no error positions.
* ``\\d``, ``\\w``, ``\\s`` and their negations are Unicode classes by default (Python: ``\\d`` =
  ``str.isdecimal``, ``\\w`` = ``str.isalnum`` or ``_``, ``\\s`` = ``str.isspace``) — note that
  Unicode ``\\d`` also matches e.g. Arabic-Indic digits; JSON-ish terminals usually want
  ``[0-9]``.  Pass ``ascii=True`` (or flag ``a``) for ASCII classes and ASCII-only case folding.
  The first Unicode class in a process builds its table from the running Python's Unicode
  database (~50 ms, then cached).
* ``.`` is any scalar value except ``\\n`` (any scalar with flag ``s``).  Negated classes are
  relative to all Unicode scalar values.  Surrogates U+D800..U+DFFF are never produced: the
  DFA accepts only valid UTF-8.
* Flag ``i`` (case-insensitive) uses Python's rule: a character ``x`` matches a class/literal
  ``S`` iff ``lower(x)`` is in ``lower(S)`` (simple Unicode lowercase mapping, plus CPython's
  extra equivalences such as ``s``/``ſ``, ``k``/``K`` (Kelvin), ``µ``/``μ``).  With ``ascii`` only
  ASCII letters fold.
* Counted repetitions ``{m}``, ``{m,n}``, ``{m,}`` are expanded; the total number of expanded
  copies (nested repeats multiply) is capped by ``max_repeat``
  (:class:`~constrain.errors.LimitExceeded`, ``limit="max_repeat"``).  Lazy quantifiers are the
  same language as greedy ones for a full match.
* A leading ``^``/``\\A`` and a trailing ``$``/``\\Z`` are no-ops for a full match and are
  stripped (also at the start/end of top-level alternatives and groups).

Refused with :class:`~constrain.errors.RegexError` naming the feature and position:
backreferences (``\\1``, ``(?P=name)``), lookahead/lookbehind, word boundaries ``\\b``/``\\B``,
anchors anywhere else, atomic groups ``(?>...)``, possessive quantifiers (``*+``, ``++``,
``?+``, ``{m,n}+``), conditionals ``(?(1)...)``, and the locale flag ``L``.  Syntax errors are
``RegexError`` with line/column from Python's parser.

Compiled DFAs are minimized and canonical, and results are memoized per
``(pattern, flags, ascii, limits)``.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from functools import lru_cache
from typing import Iterable, Sequence

import numpy as np

from constrain.errors import ConfigError, LimitExceeded, RegexError
from constrain.grammar.dfa import (
    DEFAULT_MAX_STATES,
    MAX_UNICODE,
    ByteDFA,
    ByteNFA,
)

try:  # Python >= 3.11
    from re import _constants as _sc
    from re import _parser as _sp
except ImportError:  # pragma: no cover - Python 3.10
    import sre_constants as _sc  # type: ignore[no-redef]
    import sre_parse as _sp  # type: ignore[no-redef]

try:  # Python >= 3.11
    from re._casefix import _EXTRA_CASES as _UNI_FIXES
except ImportError:  # pragma: no cover - Python 3.10
    try:
        from sre_compile import _ignorecase_fixes as _UNI_FIXES  # type: ignore[no-redef]
    except ImportError:
        _UNI_FIXES = {}

import _sre

__all__ = [
    "DEFAULT_MAX_REPEAT",
    "compile_regex",
    "compile_choices",
    "literal_dfa",
    "char_class_dfa",
    "any_char_dfa",
    "any_string_dfa",
]

DEFAULT_MAX_REPEAT = 10_000

_I = int(re.IGNORECASE)
_S = int(re.DOTALL)
_A = int(re.ASCII)
_U = int(re.UNICODE)
_L = int(re.LOCALE)
_TYPE_FLAGS = _A | _U | _L

_FLAG_LETTERS = {
    "i": int(re.IGNORECASE),
    "m": int(re.MULTILINE),
    "s": int(re.DOTALL),
    "x": int(re.VERBOSE),
    "a": int(re.ASCII),
    "u": int(re.UNICODE),
}

_MAXREPEAT = int(_sc.MAXREPEAT)
_POSSESSIVE = getattr(_sc, "POSSESSIVE_REPEAT", None)
_ATOMIC = getattr(_sc, "ATOMIC_GROUP", None)
_AT_START = {_sc.AT_BEGINNING, _sc.AT_BEGINNING_STRING}
_AT_END = {_sc.AT_END, _sc.AT_END_STRING}

Intervals = list  # sorted, disjoint, non-adjacent inclusive (lo, hi) code-point ranges


# --------------------------------------------------------------------------------------
# interval sets over code points
# --------------------------------------------------------------------------------------

def _norm(iv: Iterable[tuple[int, int]]) -> Intervals:
    out: list[list[int]] = []
    for lo, hi in sorted(iv):
        if out and lo <= out[-1][1] + 1:
            if hi > out[-1][1]:
                out[-1][1] = hi
        else:
            out.append([lo, hi])
    return [(a, b) for a, b in out]


def _complement(iv: Intervals) -> Intervals:
    out = []
    prev = 0
    for lo, hi in iv:
        if lo > prev:
            out.append((prev, lo - 1))
        prev = hi + 1
    if prev <= MAX_UNICODE:
        out.append((prev, MAX_UNICODE))
    return out


def _subtract_points(iv: Intervals, points: Sequence[int]) -> Intervals:
    """``iv`` minus the (sorted) code points ``points``."""
    out = []
    for lo, hi in iv:
        i = bisect_left(points, lo)
        j = bisect_right(points, hi)
        cur = lo
        for p in points[i:j]:
            if p > cur:
                out.append((cur, p - 1))
            cur = p + 1
        if cur <= hi:
            out.append((cur, hi))
    return out


def _points_in(iv: Intervals, points: Sequence[int]) -> list[int]:
    """The (sorted) ``points`` lying inside ``iv``."""
    out: list[int] = []
    for lo, hi in iv:
        out.extend(points[bisect_left(points, lo):bisect_right(points, hi)])
    return out


# --------------------------------------------------------------------------------------
# Unicode tables (lazy, built from the running Python's Unicode database)
# --------------------------------------------------------------------------------------

def _universe() -> str:
    """Every code point 0..0x10FFFF (surrogates included) as one string."""
    return np.arange(MAX_UNICODE + 1, dtype="<u4").tobytes().decode("utf-32-le", "surrogatepass")


@lru_cache(maxsize=None)
def _category(name: str, ascii: bool) -> Intervals:
    """Code-point intervals of ``\\d``/``\\w``/``\\s`` exactly as Python ``re`` defines them."""
    pat = {"digit": r"\d+", "word": r"\w+", "space": r"\s+"}[name]
    text = _universe() if not ascii else "".join(map(chr, range(128)))
    rx = re.compile(pat, re.ASCII if ascii else 0)
    return [(m.start(), m.end() - 1) for m in rx.finditer(text)]


_CATEGORIES = {
    _sc.CATEGORY_DIGIT: ("digit", False),
    _sc.CATEGORY_NOT_DIGIT: ("digit", True),
    _sc.CATEGORY_WORD: ("word", False),
    _sc.CATEGORY_NOT_WORD: ("word", True),
    _sc.CATEGORY_SPACE: ("space", False),
    _sc.CATEGORY_NOT_SPACE: ("space", True),
}


class _Fold:
    """Case-folding tables: ``lower`` (only where it differs), its inverse, and extra cases."""

    def __init__(self, lower: dict[int, int], fixes: dict[int, tuple[int, ...]], cased: list[int]):
        self.lower = lower
        self.cased = cased
        self.dom = sorted(lower)
        inv: dict[int, list[int]] = {}
        for x, y in lower.items():
            inv.setdefault(y, []).append(x)
        self.inv = inv
        self.inv_keys = sorted(inv)
        self.fixes = fixes
        self.fix_keys = sorted(fixes)

    def has_cased(self, iv: Intervals) -> bool:
        return bool(_points_in(iv, self.cased))

    def preimage(self, iv: Intervals) -> Intervals:
        """``{x : lower(x) in iv}``."""
        out = _subtract_points(iv, _points_in(iv, self.dom))
        out += [(x, x) for k in _points_in(iv, self.inv_keys) for x in self.inv[k]]
        return _norm(out)

    def close(self, iv: Intervals) -> Intervals:
        """``{x : lower(x) in lower(iv) ∪ fixes}`` — what ``iv`` matches case-insensitively."""
        changed = _points_in(iv, self.dom)
        keys = _subtract_points(iv, changed)
        extra = [(self.lower[x], self.lower[x]) for x in changed]
        if extra:
            keys = _norm(keys + extra)
        fx = _points_in(keys, self.fix_keys)
        if fx:
            keys = _norm(keys + [(c, c) for f in fx for c in self.fixes[f]])
        return self.preimage(keys)


@lru_cache(maxsize=None)
def _unicode_fold() -> _Fold:
    # re uses the *simple* case mappings of _sre (tolower / iscased).  A cased character
    # changes under the full str.lower()/str.upper() mappings too, so whole 256-code-point
    # blocks that are unchanged by both are skipped and only the rest is checked one by one.
    u = _universe()
    lower: dict[int, int] = {}
    cased: list[int] = []
    step = 256
    for base in range(0, MAX_UNICODE + 1, step):
        blk = u[base:base + step]
        if blk.lower() == blk and blk.upper() == blk:
            continue
        for x in range(base, base + step):
            if _sre.unicode_iscased(x):
                cased.append(x)
                y = _sre.unicode_tolower(x)
                if y != x:
                    lower[x] = y
    fixes = {int(k): tuple(int(c) for c in v) for k, v in _UNI_FIXES.items()}
    return _Fold(lower, fixes, cased)


@lru_cache(maxsize=None)
def _ascii_fold() -> _Fold:
    letters = list(range(ord("A"), ord("Z") + 1)) + list(range(ord("a"), ord("z") + 1))
    return _Fold({c: c + 32 for c in range(ord("A"), ord("Z") + 1)}, {}, letters)




# --------------------------------------------------------------------------------------
# feature positions (for error messages)
# --------------------------------------------------------------------------------------

def _scan_features(pattern: str, verbose: bool) -> dict[str, list[int]]:
    """Source positions of constructs we may refuse, in source order, by kind."""
    found: dict[str, list[int]] = {}

    def add(kind: str, pos: int) -> None:
        found.setdefault(kind, []).append(pos)

    n = len(pattern)
    i = 0
    while i < n:
        c = pattern[i]
        if c == "\\":
            nxt = pattern[i + 1:i + 2]
            if nxt in ("A", "Z", "b", "B"):
                add("anchor", i)
            elif nxt.isdigit() and nxt != "0":
                octal = pattern[i + 1:i + 4]
                if not (len(octal) == 3 and all(ch in "01234567" for ch in octal)):
                    add("backref", i)
            i += 2
            continue
        if c == "[":
            j = i + 1
            if pattern[j:j + 1] == "^":
                j += 1
            if pattern[j:j + 1] == "]":
                j += 1
            while j < n and pattern[j] != "]":
                j += 2 if pattern[j] == "\\" else 1
            i = j + 1
            continue
        if verbose and c == "#":
            while i < n and pattern[i] != "\n":
                i += 1
            continue
        if c in "^$":
            add("anchor", i)
        elif c == "(" and pattern[i + 1:i + 2] == "?":
            rest = pattern[i + 2:i + 5]
            if rest.startswith(("=", "!", "<=", "<!")):
                add("lookaround", i)
            elif rest.startswith("P="):
                add("backref", i)
            elif rest.startswith("("):
                add("conditional", i)
            elif rest.startswith(">"):
                add("atomic", i)
            elif rest.startswith("#"):
                while i < n and pattern[i] != ")":
                    i += 1
        elif c in "*+?}" and pattern[i + 1:i + 2] == "+":
            if c != "}" or re.search(r"\{\d*(,\d*)?$", pattern[:i]):
                add("possessive", i + 1)
                i += 2
                continue
        i += 1
    return found


def _caret(pattern: str, pos: int | None) -> tuple[int | None, int | None, str | None]:
    if pos is None:
        return None, None, None
    line = pattern.count("\n", 0, pos) + 1
    start = pattern.rfind("\n", 0, pos) + 1
    end = pattern.find("\n", pos)
    text = pattern[start:] if end < 0 else pattern[start:end]
    col = pos - start
    return line, col + 1, f"  {text}\n  {' ' * col}^"


# --------------------------------------------------------------------------------------
# AST → NFA
# --------------------------------------------------------------------------------------

def _is_unicode(flags: int) -> bool:
    return bool(flags & _U) and not flags & _A


def _combine_flags(flags: int, add: int, remove: int) -> int:
    if add & _TYPE_FLAGS:
        flags &= ~_TYPE_FLAGS
    return (flags | add) & ~remove


def _items(sub) -> list:
    return list(sub.data) if hasattr(sub, "data") else list(sub)


class _Converter:
    def __init__(self, pattern: str, verbose: bool, max_states: int, max_repeat: int):
        self.pattern = pattern
        self.verbose = verbose
        self.max_states = max_states
        self.max_nfa_states = max(1_000_000, 100 * max_states)
        self.max_repeat = max_repeat
        self.nfa = ByteNFA()
        self.what = f"regex {pattern!r}"
        self.mult = 1
        self.counts: dict[str, int] = {}
        self.sub_cache: dict[tuple, ByteDFA] = {}
        self._features: dict[str, list[int]] | None = None

    # ---- errors ------------------------------------------------------------------------

    def _pos(self, kind: str, bump: bool = True) -> int | None:
        if self._features is None:
            self._features = _scan_features(self.pattern, self.verbose)
        idx = self.counts.get(kind, 0)
        if bump:
            self.counts[kind] = idx + 1
        lst = self._features.get(kind, [])
        if idx < len(lst):
            return lst[idx]
        return lst[0] if lst else None

    def refuse(self, kind: str, what: str, hint: str) -> RegexError:
        pos = self._pos(kind)
        line, col, ctx = _caret(self.pattern, pos)
        where = f" at position {pos}" if pos is not None else ""
        return RegexError(
            f"{what}{where} in regex {self.pattern!r} is not supported: {hint}",
            line=line, column=col, context=ctx)

    # ---- character sets ----------------------------------------------------------------

    def charset(self, iv: Intervals, flags: int, negate: bool = False,
                cats: Intervals | None = None) -> tuple:
        """Fragment for a class: literal/range part ``iv`` plus category part ``cats``.

        Case-insensitive matching follows CPython's compiler: if the literal/range part has
        no cased character the class is matched exactly; otherwise ``x`` matches iff
        ``lower(x)`` is in the folded literal/range part or in a category.
        """
        if flags & _I and iv:
            fold = _unicode_fold() if _is_unicode(flags) else _ascii_fold()
            if fold.has_cased(iv):
                iv = fold.close(iv)
                if cats:
                    cats = fold.preimage(cats)
        if cats:
            iv = _norm(iv + cats)
        if negate:
            iv = _complement(iv)
        return self.nfa.codepoints(iv)

    @staticmethod
    def category(cat, flags: int) -> Intervals:
        name, neg = _CATEGORIES[cat]
        iv = _category(name, not _is_unicode(flags))
        return _complement(iv) if neg else iv

    # ---- main walk ---------------------------------------------------------------------

    def seq(self, sub, flags: int, at_start: bool, at_end: bool) -> tuple:
        items = _items(sub)
        real = [j for j, (o, _) in enumerate(items) if o is not _sc.AT]
        first = real[0] if real else len(items)
        last = real[-1] if real else -1
        frags = []
        for j, (op, av) in enumerate(items):
            # only zero-width anchors before/after: still at the very start/end of the match
            st = at_start and j <= first
            en = at_end and j >= last
            f = self.item(op, av, flags, st, en)
            if f is not None:
                frags.append(f)
        if not frags:
            return self.nfa.empty()
        if len(frags) == 1:
            return frags[0]
        return self.nfa.concat(frags)

    def item(self, op, av, flags: int, at_start: bool, at_end: bool):
        nfa = self.nfa
        if nfa.n_states > self.max_nfa_states:
            raise LimitExceeded(
                f"regex {self.pattern!r} expands to more than {self.max_nfa_states} NFA states",
                limit="max_dfa_states", value=self.max_states)
        if op is _sc.LITERAL:
            return self.charset([(av, av)], flags)
        if op is _sc.NOT_LITERAL:
            return self.charset([(av, av)], flags, negate=True)
        if op is _sc.ANY:
            if flags & _S:
                return nfa.codepoints([(0, MAX_UNICODE)])
            return nfa.codepoints([(0, 9), (11, MAX_UNICODE)])
        if op is _sc.IN:
            negate = False
            parts: list[tuple[int, int]] = []
            cats: list[tuple[int, int]] = []
            for iop, iav in av:
                if iop is _sc.NEGATE:
                    negate = True
                elif iop is _sc.LITERAL:
                    parts.append((iav, iav))
                elif iop is _sc.RANGE:
                    parts.append((iav[0], iav[1]))
                elif iop is _sc.CATEGORY:
                    cats.extend(self.category(iav, flags))
                else:  # pragma: no cover - parser does not emit others
                    raise self.refuse("class", f"character-class item {iop}", "rewrite the class")
            return self.charset(_norm(parts), flags, negate, _norm(cats))
        if op is _sc.CATEGORY:  # pragma: no cover - parser wraps categories in IN
            return self.charset([], flags, False, self.category(av, flags))
        if op is _sc.BRANCH:
            return nfa.alt([self.seq(b, flags, at_start, at_end) for b in av[1]])
        if op is _sc.SUBPATTERN:
            _group, add, remove, p = av
            return self.seq(p, _combine_flags(flags, add, remove), at_start, at_end)
        if op is _sc.MAX_REPEAT or op is _sc.MIN_REPEAT:
            return self.repeat(av[0], av[1], av[2], flags)
        if _POSSESSIVE is not None and op is _POSSESSIVE:
            raise self.refuse("possessive", "possessive quantifier",
                              "use a plain (greedy) quantifier; possessive matching is not a regular-language operation")
        if _ATOMIC is not None and op is _ATOMIC:
            raise self.refuse("atomic", "atomic group (?>...)", "use a plain group (?:...)")
        if op is _sc.GROUPREF:
            raise self.refuse("backref", "backreference",
                              "backreferences are not regular; repeat the sub-pattern instead")
        if op is _sc.GROUPREF_EXISTS:
            raise self.refuse("conditional", "conditional group (?(id)yes|no)",
                              "use an alternation")
        if op is _sc.ASSERT or op is _sc.ASSERT_NOT:
            kind = "lookahead" if av[0] >= 0 else "lookbehind"
            neg = "negative " if op is _sc.ASSERT_NOT else ""
            raise self.refuse("lookaround", f"{neg}{kind}",
                              "lookarounds cannot be enforced token by token; rewrite the regex without them")
        if op is _sc.AT:
            pos = self._pos("anchor", bump=False)
            if av in _AT_START and at_start or av in _AT_END and at_end:
                self._pos("anchor")
                return None
            if av in _AT_START or av in _AT_END:
                raise self.refuse("anchor", f"anchor {self._anchor_text(pos)}",
                                  "the regex always matches the whole text; only a leading '^'/'\\A' "
                                  "and a trailing '$'/'\\Z' are allowed")
            raise self.refuse("anchor", f"word-boundary assertion {self._anchor_text(pos)}",
                              "\\b and \\B depend on the surrounding text; rewrite without them")
        raise self.refuse("other", f"regex construct {op}", "rewrite the regex")  # pragma: no cover

    def _anchor_text(self, pos: int | None) -> str:
        if pos is None:
            return ""
        t = self.pattern[pos:pos + 2] if self.pattern[pos] == "\\" else self.pattern[pos]
        return repr(t)

    def repeat(self, lo: int, hi: int, body, flags: int):
        nfa = self.nfa
        unbounded = hi == _MAXREPEAT
        copies = max(lo, 1) if unbounded else hi
        total = self.mult * copies
        rep = f"{{{lo}}}" if lo == hi else f"{{{lo},{'' if unbounded else hi}}}"
        if total > self.max_repeat:
            raise LimitExceeded(
                f"regex {self.pattern!r}: repetition {rep} expands to {total} copies of its body"
                + (" (nested repetitions multiply)" if self.mult > 1 else ""),
                limit="max_repeat", value=self.max_repeat)
        if hi == 0:
            return nfa.empty()
        saved = self.mult
        self.mult = max(total, 1)
        try:
            if lo <= 1 and (unbounded or hi <= 1):
                f = self.seq(body, flags, False, False)
                if lo == 0 and unbounded:
                    return nfa.star(f)
                if lo == 1 and unbounded:
                    return nfa.plus(f)
                if lo == 0:
                    return nfa.opt(f)
                return f
            # counted repetition: compile the body once to a minimal DFA, then copy it
            sub = self.sub_dfa(body, flags)
        finally:
            self.mult = saved
        if sub.n_states * copies > self.max_nfa_states:
            raise LimitExceeded(
                f"regex {self.pattern!r}: repetition {rep} of a {sub.n_states}-state body is too large",
                limit="max_dfa_states", value=self.max_states)
        return nfa.repeat_dfa(sub, lo, None if unbounded else hi)

    def sub_dfa(self, body, flags: int) -> ByteDFA:
        key = (repr(_items(body)), flags)
        hit = self.sub_cache.get(key)
        if hit is not None:
            return hit
        saved = self.nfa
        self.nfa = ByteNFA()
        try:
            s, e = self.seq(body, flags, False, False)
            dfa = self.nfa.to_dfa(s, e, max_states=self.max_states, what=self.what).minimize()
        finally:
            self.nfa = saved
        self.sub_cache[key] = dfa
        return dfa


# --------------------------------------------------------------------------------------
# public API
# --------------------------------------------------------------------------------------

def _parse_flags(flags) -> int:
    if isinstance(flags, (int, re.RegexFlag)):
        return int(flags)
    out = 0
    for ch in flags or ():
        if ch in ("l", "L"):
            raise RegexError("the locale flag 'L' is not supported (locale-dependent matching)")
        bit = _FLAG_LETTERS.get(ch)
        if bit is None:
            raise ConfigError(f"unknown regex flag {ch!r}; expected letters from 'imsxau'")
        out |= bit
    return out


def compile_regex(pattern: str, *, flags: str | Iterable[str] | int = "", ascii: bool = False,
                  max_states: int = DEFAULT_MAX_STATES,
                  max_repeat: int = DEFAULT_MAX_REPEAT) -> ByteDFA:
    """Compile a full-match regex over Unicode text to a minimal byte-level DFA.

    Parameters
    ----------
    pattern:
        Python ``re`` syntax (a ``str``).  The DFA accepts the UTF-8 encoding of exactly the
        strings ``s`` with ``re.fullmatch(pattern, s, flags)``.
    flags:
        Letters from ``"imsxau"`` (as in ``(?imsxau)``; also an iterable such as Lark's flag
        tuples, or an ``re`` flag int).  ``m`` has no effect on a full match.
    ascii:
        ASCII ``\\d``/``\\w``/``\\s`` and ASCII-only case folding (same as flag ``a``).
    max_states:
        Cap on DFA states (:class:`LimitExceeded`, ``limit="max_dfa_states"``).
    max_repeat:
        Cap on expanded copies from counted repetition (``limit="max_repeat"``).

    Raises
    ------
    RegexError
        Syntax errors and refused features (see the module docstring), with position.
    LimitExceeded
        A cap was hit.
    """
    if not isinstance(pattern, str):
        raise ConfigError(f"compile_regex expects a str pattern, got {type(pattern).__name__}")
    fl = _parse_flags(flags)
    if ascii:
        fl |= _A
    return _compile_cached(pattern, fl, max_states, max_repeat)


@lru_cache(maxsize=2048)
def _compile_cached(pattern: str, fl: int, max_states: int, max_repeat: int) -> ByteDFA:
    if fl & _L:
        raise RegexError("the locale flag 'L' is not supported (locale-dependent matching)")
    try:
        parsed = _sp.parse(pattern, fl)
    except re.error as e:
        pos = e.pos
        line, col, ctx = _caret(pattern, pos)
        where = f" at position {pos}" if pos is not None else ""
        raise RegexError(f"invalid regex {pattern!r}: {e.msg}{where}",
                         line=line, column=col, context=ctx) from None
    except (OverflowError, RecursionError) as e:
        raise RegexError(f"invalid regex {pattern!r}: {e}") from None
    gflags = int(parsed.state.flags)
    if gflags & _L:
        raise RegexError(f"the locale flag is not supported in regex {pattern!r}")
    conv = _Converter(pattern, bool(gflags & re.VERBOSE), max_states, max_repeat)
    s, e = conv.seq(parsed, gflags, True, True)
    return conv.nfa.to_dfa(s, e, max_states=max_states, what=conv.what).minimize()


def literal_dfa(s: bytes | str) -> ByteDFA:
    """DFA matching exactly one byte string (a ``str`` is UTF-8 encoded)."""
    data = s.encode("utf-8") if isinstance(s, str) else bytes(s)
    n = len(data)
    from constrain.limits import current_limits

    cap = current_limits().max_literal_bytes
    if n > cap:
        raise LimitExceeded(f"a literal of {n} bytes ({data[:40]!r}...) is longer than the longest allowed",
                            limit="max_literal_bytes", value=cap)
    trans = np.full((n + 1, 256), -1, dtype=np.int32)
    for i, b in enumerate(data):
        trans[i, b] = i + 1
    accept = np.zeros(n + 1, dtype=bool)
    accept[n] = True
    return ByteDFA(trans, accept, _canonical=True)


def compile_choices(choices: Iterable[bytes | str], *, minimize: bool = True) -> ByteDFA:
    """DFA matching exactly one of ``choices`` (``str`` items are UTF-8 encoded).

    Built as a byte trie; with ``minimize=True`` (default) the trie is minimized into its
    canonical DAWG form (shared suffixes).  No choices → the empty language.
    """
    if isinstance(choices, (str, bytes)) or not hasattr(choices, "__iter__"):
        raise ConfigError(f"choices must be a list of str/bytes, got {type(choices).__name__}")
    words = set()
    for i, c in enumerate(choices):
        if isinstance(c, str):
            words.add(c.encode("utf-8"))
        elif isinstance(c, (bytes, bytearray)):
            words.add(bytes(c))
        else:
            raise ConfigError(f"choice {i} is a {type(c).__name__} ({c!r:.40}), not str/bytes")
    from constrain.limits import current_limits

    cap = current_limits().max_enum_bytes
    total = sum(len(w) for w in words)
    if total > cap:
        raise LimitExceeded(f"{len(words)} choices of {total} bytes in all are more than allowed",
                            limit="max_enum_bytes", value=cap)
    rows: list[list[int]] = [[-1] * 256]
    accept = [False]
    for w in sorted(words):
        s = 0
        for b in w:
            t = rows[s][b]
            if t < 0:
                t = len(rows)
                rows.append([-1] * 256)
                accept.append(False)
                rows[s][b] = t
            s = t
        accept[s] = True
    dfa = ByteDFA(np.asarray(rows, dtype=np.int32), np.asarray(accept, dtype=bool))
    return dfa.minimize() if minimize else dfa


def char_class_dfa(intervals: Iterable[tuple[int, int]]) -> ByteDFA:
    """DFA matching one Unicode scalar value in the inclusive code-point ``intervals`` (UTF-8)."""
    nfa = ByteNFA()
    s, e = nfa.codepoints(_norm((int(a), int(b)) for a, b in intervals))
    return nfa.to_dfa(s, e).minimize()


@lru_cache(maxsize=4)
def any_char_dfa(ascii: bool = False, newline: bool = True) -> ByteDFA:
    """DFA of one character: any Unicode scalar value (UTF-8), or any ASCII byte with ``ascii``.

    ``newline=False`` excludes ``\\n`` (like ``.`` without the ``s`` flag).
    """
    top = 0x7F if ascii else MAX_UNICODE
    iv = [(0, top)] if newline else [(0, 9), (11, top)]
    return char_class_dfa(iv)


@lru_cache(maxsize=2)
def any_string_dfa(ascii: bool = False) -> ByteDFA:
    """DFA of every valid UTF-8 string (or every ASCII string with ``ascii``)."""
    return any_char_dfa(ascii).star()
