"""``uniqueItems`` over finite item languages: the values an item may take, one by one.

Uniqueness of array items is not context-free in general, but when every position of an
array can only hold one of a few scalar values (booleans, ``enum``/``const`` items, a small
integer range, short finite patterns …) the arrays of pairwise distinct items form a finite
language: the lowering tracks the set of values used so far in its nonterminals
(:meth:`~constrain.jsonschema.lower.Lowering._unique_array`).  This module finds those values.

A value is identified by its JSON value (``1`` and ``1.0`` are one value; ``true`` and ``1``
are two), and stands for every spelling the position accepts of it:

* numbers: the position's number DFA is exact on literals without an exponent (see
  :mod:`~constrain.jsonschema.algebra`), so its values are those of its *canonical*
  literals (no exponent, no trailing fraction zeros, no ``-0``); each value's terminal is the
  position's DFA cut to that value (``number_dfa(minimum=v, maximum=v)``), and the union of
  these is checked to cover the whole DFA (else: not finite, refused);
* strings: the decoded contents the position's string DFA (with its length bound) accepts;
  each value's terminal accepts every JSON escaping of exactly that content.  A string part
  that is only a sound subset of its format yields a subset of the values (still sound).

Arrays and objects as items are not enumerated (refused).
"""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction
from functools import lru_cache

from constrain.errors import LimitExceeded
from constrain.grammar.dfa import ByteDFA

#: most distinct values one position may take for its items to count as finite
MAX_VALUES = 64


class NotFinite(Exception):
    """The item language is not a (small) finite set of scalar values; ``args[0]`` says why."""


@lru_cache(maxsize=1)
def canonical_numbers() -> ByteDFA:
    """One literal per number value: no exponent, no trailing fraction zero, no ``-0``."""
    from constrain.grammar.regex import compile_regex

    return compile_regex(r"-?[1-9][0-9]*(?:\.[0-9]*[1-9])?|-?0\.[0-9]*[1-9]|0")


def finite_words(dfa: ByteDFA, limit: int) -> list[bytes] | None:
    """Every word of ``dfa`` when its language is finite with at most ``limit`` words, else None."""
    ranges = dfa._ranges()
    live = dfa.live
    acc = dfa.accept
    if not live[0]:
        return []
    count: dict[int, int] = {}
    onstack: set[int] = set()

    def cnt(s: int) -> int | None:  # words from s; None: a cycle or over the limit
        if s in count:
            return count[s]
        if s in onstack:
            return None
        onstack.add(s)
        c = 1 if acc[s] else 0
        for lo, hi, t in ranges[s]:
            if not live[t]:
                continue
            x = cnt(t)
            if x is None:
                return None
            c += (hi - lo + 1) * x
            if c > limit:
                return None
        onstack.discard(s)
        count[s] = c
        return c

    import sys

    old = sys.getrecursionlimit()
    sys.setrecursionlimit(max(old, 4 * dfa.n_states + 100))
    try:
        if cnt(0) is None:
            return None
    finally:
        sys.setrecursionlimit(old)
    return dfa.enumerate(dfa.n_states, limit=limit)


def number_values(d: ByteDFA, limit: int = MAX_VALUES) -> list[tuple[Fraction, ByteDFA]]:
    """``[(value, the literals of d with that value)]``; raises :class:`NotFinite`."""
    from constrain.jsonschema.numbers import number_dfa

    words = finite_words(d.intersect(canonical_numbers()), limit)
    if words is None:
        raise NotFinite(f"the item numbers are not a finite set of at most {limit} values")
    out = []
    cover = None
    for w in words:
        v = Fraction(Decimal(w.decode("ascii")))
        eq = number_dfa(minimum=v, maximum=v)
        out.append((v, d.intersect(eq)))
        cover = eq if cover is None else cover.union(eq)
    rest = d if cover is None else d.intersect(cover.complement())
    if not rest.is_empty():  # a literal whose value has no canonical spelling in d: no finite view
        raise NotFinite("the item number literals do not reduce to a finite set of values")
    return out


def string_values(part, limit: int = MAX_VALUES) -> list[str]:
    """The decoded contents a :class:`~constrain.jsonschema.algebra.StrPart` accepts; raises NotFinite."""
    try:
        d = part.full_dfa()
    except LimitExceeded:
        raise NotFinite("the item strings are not a small finite set") from None
    words = finite_words(d, limit)
    if words is None:
        raise NotFinite(f"the item strings are not a finite set of at most {limit} values")
    return [w.decode("utf-8") for w in words]
