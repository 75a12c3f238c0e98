"""The schema algebra: JSON Schema keywords → a normal form closed under ∩, ∪ and ¬.

A :class:`Val` is the set of JSON values a (sub-)schema accepts, split by JSON type:

* ``null`` and ``bools``: plain flags;
* ``number``: a byte DFA over number literals; ``string``: a byte DFA over the *decoded*
  string content (:class:`StrPart`, with a flag saying whether it is exact);
* ``arrays`` / ``objects``: unions of :class:`ArrC` / :class:`ObjC`, whose children are
  *conjunctions of locations* (``Conj``: a frozenset of ``(location, positive)`` literals).

Children stay symbolic, so recursion (``$ref: "#"``) costs nothing here: the lowering turns
each distinct ``Conj`` into one grammar nonterminal.  ``allOf`` is intersection (never
concatenation), ``anyOf`` union, ``oneOf`` union when the branches are provably disjoint and
``∪ᵢ (Aᵢ ∩ ⋂ⱼ≠ᵢ ¬Aⱼ)`` otherwise, ``if/then/else`` is ``(I∩T) ∪ (¬I∩E)``.

Soundness of ¬ rests on two facts: every number DFA is exact on literals without an
exponent (and only ever accepts exponent literals whose value satisfies the constraint), so
the complement is taken inside the exponent-free literals; and a string DFA that is only a
sound subset (some formats) is never complemented — that is refused by name.  Object and
array complements are built per keyword (``¬required[a]`` = "a absent", ``¬minItems n`` =
``maxItems n-1`` …); the few that have no finite form here (``¬additionalProperties``,
``¬uniqueItems`` …) are refused.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field, replace
from decimal import Decimal
from fractions import Fraction
from functools import lru_cache

from constrain.errors import LimitExceeded, UnsupportedSchemaFeature
from constrain.grammar.dfa import ByteDFA
from constrain.grammar.regex import any_string_dfa, compile_regex, literal_dfa

Conj = frozenset  # of (location, positive: bool)
ANY_C: Conj = frozenset()

MAX_ALTERNATIVES = 1024  # products of object/array alternatives while distributing ∩ over ∪


@dataclass(frozen=True)
class StrPart:
    """Strings whose decoded value is in ``dfa`` and whose length in code points is in
    ``length`` (``(lo, hi)``, ``hi=None`` unbounded; ``None`` = no length bound).

    The length stays apart from the DFA because a counting automaton is large (states grow
    with the bound times the UTF-8/escape states); the lowering counts with grammar rules
    over fixed-size chunks instead, and only folds the count into the DFA when it must
    (a union or complement of different bounds, or content constraints plus a bound)."""

    dfa: ByteDFA  # over the UTF-8 bytes of the decoded string
    exact: bool = True
    length: tuple | None = None

    def full_dfa(self) -> ByteDFA:
        """One DFA for the whole constraint (may raise LimitExceeded for large bounds)."""
        if self.length is None:
            return self.dfa
        from constrain.jsonschema.strings import length_dfa

        d = length_dfa(*self.length)
        return d if self.dfa is any_string_dfa() else self.dfa.intersect(d)

    def is_empty(self) -> bool:
        if self.dfa.is_empty():
            return True
        lo, hi = self.length or (0, None)
        return hi is not None and lo > hi


@dataclass(frozen=True)
class ObjC:
    """One object shape.  ``props`` maps each named property to the conjunction its value must
    satisfy when present; ``rest`` holds, per contributing schema, its (patternProperties,
    additionalProperties) for names outside ``props``; ``names`` are propertyNames conjunctions."""

    props: tuple = ()            # ((name, Conj), ...) in schema order
    rest: tuple = ()             # ((((pattern, Conj), ...), additional Conj), ...)
    required: frozenset = frozenset()
    forbidden: frozenset = frozenset()
    names: tuple = ()            # (Conj, ...)
    min: int = 0
    max: int | None = None
    #: required names in the order the schemas list them (the order undeclared ones are written)
    req_order: tuple = ()
    #: what in-place applicators evaluated (for unevaluatedProperties): names, patterns, everything
    seen: frozenset = frozenset()
    seen_patterns: tuple = ()
    seen_all: bool = False
    #: ((names, Conj), ...): for each, some member whose name the DFA ``names`` accepts has a
    #: value satisfying the conjunction (what ¬additionalProperties / ¬patternProperties ask:
    #: "some undeclared member breaks it")
    some: tuple = ()

    def prop_conj(self, name: str) -> Conj | None:
        for n, c in self.props:
            if n == name:
                return c
        return None


@dataclass(frozen=True)
class ArrC:
    """One array shape: per-index conjunctions for the prefix, one for the rest, counts."""

    prefix: tuple = ()           # (Conj, ...)
    items: Conj = ANY_C          # indices >= len(prefix)
    min: int = 0
    max: int | None = None
    contains: tuple = ()         # ((Conj, min, max|None), ...)
    unique: bool = False
    #: for unevaluatedItems: leading items evaluated, or all of them
    seen_items: int = 0
    seen_all: bool = False
    #: where the uniqueItems came from (its JSON pointer, for a refusal in the lowering)
    unique_ptr: str = ""

    def at(self, i: int) -> Conj:
        return self.prefix[i] if i < len(self.prefix) else self.items


@dataclass(frozen=True)
class Val:
    null: bool = False
    bools: frozenset = frozenset()
    number: ByteDFA | None = None
    string: StrPart | None = None
    arrays: tuple = ()
    objects: tuple = ()
    _empty: list = field(default_factory=list, compare=False, repr=False)


# ---------------------------------------------------------------------- base languages
@lru_cache(maxsize=1)
def nonexp_numbers() -> ByteDFA:
    """Number literals without an exponent: the universe of number complements."""
    return compile_regex(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?")


def _numbers():
    from constrain.jsonschema import numbers

    return numbers


@lru_cache(maxsize=1)
def all_numbers() -> ByteDFA:
    return _numbers().number_literal_dfa()


@lru_cache(maxsize=1)
def all_strings() -> StrPart:
    return StrPart(any_string_dfa(), True)


def any_val() -> Val:
    return Val(True, frozenset((True, False)), all_numbers(), all_strings(), (ArrC(),), (ObjC(),))


NOTHING = Val()


def to_fraction(x, pointer: str = "") -> Fraction:
    if isinstance(x, bool) or not isinstance(x, (int, float, Decimal, Fraction)):
        raise UnsupportedSchemaFeature(f"expected a number, got {x!r}", pointer=pointer)
    if isinstance(x, float):
        if x != x or x in (float("inf"), float("-inf")):
            raise UnsupportedSchemaFeature(f"number {x!r} is not finite", pointer=pointer)
        return Fraction(Decimal(repr(x)))
    from constrain.limits import current_limits

    cap = current_limits().max_number_digits
    if isinstance(x, Decimal):
        if not x.is_finite():
            raise UnsupportedSchemaFeature(f"number {x} is not finite", pointer=pointer)
        if x and abs(x.adjusted()) > cap:
            raise LimitExceeded(f"number {x:.3e} has a decimal exponent beyond {cap}", limit="max_number_digits",
                                value=cap, pointer=pointer)
    elif isinstance(x, int) and x.bit_length() > cap * 3.33:
        raise LimitExceeded(f"an integer of about {int(x.bit_length() / 3.32)} digits", limit="max_number_digits",
                            value=cap, pointer=pointer)
    return Fraction(x)


# ---------------------------------------------------------------------- intersection
def _and_dfa(a, b):
    if a is None or b is None:
        return None
    d = a.intersect(b)
    return None if d.is_empty() else d


def _and_len(a, b):
    if a is None or b is None:
        return a if b is None else b
    hi = a[1] if b[1] is None else (b[1] if a[1] is None else min(a[1], b[1]))
    return (max(a[0], b[0]), hi)


def and_str(a: StrPart | None, b: StrPart | None) -> StrPart | None:
    if a is None or b is None:
        return None
    if a.dfa is any_string_dfa():
        d = b.dfa
    elif b.dfa is any_string_dfa():
        d = a.dfa
    else:
        d = a.dfa.intersect(b.dfa)
    out = StrPart(d, a.exact and b.exact, _and_len(a.length, b.length))
    return None if out.is_empty() else out


def _contradicts(c: Conj) -> bool:
    """A conjunction holding a location both ways: no value satisfies it."""
    return any((loc, not pos) in c for loc, pos in c)


def _possible(o) -> bool:
    """False for shapes certainly empty on their face (a name both required and forbidden, or
    required with a contradictory value, or some requirement with one; counts that cross).
    Distributing ∩ over ∪ makes many such products (each way to break a oneOf branch against
    each other branch); dropping them before the cap keeps the real shapes under it."""
    if isinstance(o, ArrC):
        return o.max is None or o.min <= o.max
    if o.required & o.forbidden or (o.max is not None and (o.min > o.max or len(o.required) > o.max)):
        return False
    for n, c in o.props:
        if n in o.required and _contradicts(c):
            return False
    return not any(_contradicts(c) for _, c in o.some)


def _cap(items: list, what: str) -> tuple:
    if len(items) > MAX_ALTERNATIVES:
        raise LimitExceeded(f"the schema expands to more than {MAX_ALTERNATIVES} {what} shapes "
                            "(anyOf/oneOf/dependencies multiply under allOf)", limit="max_alternatives",
                            value=MAX_ALTERNATIVES)
    # dedupe, keep order
    seen, out = set(), []
    for x in items:
        if x not in seen:
            seen.add(x)
            out.append(x)
    return tuple(out)


class Algebra:
    """∩ / ∪ / ¬ over :class:`Val`.  Needs the compiler for two things: normalising a child
    conjunction (for property names named in one branch and not another) and ECMA patterns."""

    def __init__(self, pattern_dfa, undeclared_conj_hook=None):
        self.pattern_dfa = pattern_dfa

    # -- objects
    def undeclared_conj(self, o: ObjC, name: str) -> Conj:
        """The conjunction a value must satisfy under ``o`` for a name ``o`` does not declare."""
        out = set()
        for patterns, additional in o.rest:
            hit = False
            for p, c in patterns:
                if self.pattern_dfa(p).matches(name.encode("utf-8")):
                    out |= c
                    hit = True
            if not hit:
                out |= additional
        return frozenset(out)

    def name_conj(self, o: ObjC, name: str) -> Conj:
        c = o.prop_conj(name)
        return c if c is not None else self.undeclared_conj(o, name)

    def and_obj(self, a: ObjC, b: ObjC) -> ObjC:
        names = [n for n, _ in a.props] + [n for n, _ in b.props if a.prop_conj(n) is None]
        props = tuple((n, self.name_conj(a, n) | self.name_conj(b, n)) for n in names)
        mx = a.max if b.max is None else (b.max if a.max is None else min(a.max, b.max))
        order = a.req_order + tuple(r for r in b.req_order if r not in a.req_order)
        return ObjC(props, a.rest + b.rest, a.required | b.required, a.forbidden | b.forbidden,
                    a.names + b.names, max(a.min, b.min), mx, order, a.seen | b.seen,
                    a.seen_patterns + tuple(p for p in b.seen_patterns if p not in a.seen_patterns),
                    a.seen_all or b.seen_all, a.some + tuple(x for x in b.some if x not in a.some))

    @staticmethod
    def and_arr(a: ArrC, b: ArrC) -> ArrC:
        n = max(len(a.prefix), len(b.prefix))
        prefix = tuple(a.at(i) | b.at(i) for i in range(n))
        mx = a.max if b.max is None else (b.max if a.max is None else min(a.max, b.max))
        return ArrC(prefix, a.items | b.items, max(a.min, b.min), mx, a.contains + b.contains,
                    a.unique or b.unique, max(a.seen_items, b.seen_items), a.seen_all or b.seen_all,
                    a.unique_ptr or b.unique_ptr)

    def unevaluated_props(self, o: ObjC, c: Conj) -> ObjC:
        """Apply ``unevaluatedProperties`` (conjunction ``c``) to one shape: names no in-place
        applicator evaluated must satisfy ``c``.  A shape stands for the branches that succeeded
        for it; other branches may have evaluated more, so this can only narrow (sound)."""
        if o.seen_all or not c:
            return replace(o, seen_all=True)

        def evaluated(name):
            return name in o.seen or any(self.pattern_dfa(p).matches(name.encode("utf-8")) for p in o.seen_patterns)

        props = tuple((n, pc if evaluated(n) else pc | c) for n, pc in o.props)
        rest = o.rest + ((tuple((p, ANY_C) for p in o.seen_patterns), c),)
        # names evaluated but not in props (seen through a branch whose props were merged away) stay free
        extra = tuple((n, self.undeclared_conj(o, n)) for n in sorted(o.seen) if o.prop_conj(n) is None)
        return replace(o, props=props + extra, rest=rest, seen_all=True)

    @staticmethod
    def unevaluated_items(a: ArrC, c: Conj) -> ArrC:
        if a.seen_all or not c:
            return replace(a, seen_all=True)
        k = a.seen_items
        prefix = tuple(p if i < k else p | c for i, p in enumerate(a.prefix))
        if len(prefix) < k:
            prefix = prefix + (a.items,) * (k - len(prefix))
        return replace(a, prefix=prefix, items=a.items | c, seen_all=True)

    def and_(self, a: Val, b: Val) -> Val:
        return Val(
            a.null and b.null, a.bools & b.bools, _and_dfa(a.number, b.number), and_str(a.string, b.string),
            _cap([z for x in a.arrays for y in b.arrays if _possible(z := self.and_arr(x, y))], "array"),
            _cap([z for x in a.objects for y in b.objects if _possible(z := self.and_obj(x, y))], "object"),
        )

    @staticmethod
    def or_(a: Val, b: Val) -> Val:
        if a.number is None or b.number is None:
            num = a.number if b.number is None else b.number
        else:
            num = a.number.union(b.number)
        if a.string is None or b.string is None:
            st = a.string if b.string is None else b.string
        else:
            x, y = a.string, b.string
            if x.length == y.length:
                st = StrPart(x.dfa.union(y.dfa), x.exact and y.exact, x.length)
            else:
                st = StrPart(x.full_dfa().union(y.full_dfa()), x.exact and y.exact)
        return Val(a.null or b.null, a.bools | b.bools, num, st,
                   _cap(list(a.arrays + b.arrays), "array"), _cap(list(a.objects + b.objects), "object"))

    # -- complement
    def not_(self, v: Val, pointer: str) -> Val:
        if v.number is None:
            num = all_numbers()
        else:
            num = nonexp_numbers().intersect(v.number.complement())
            num = None if num.is_empty() else num
        if v.string is None:
            st = all_strings()
        elif not v.string.exact:
            raise UnsupportedSchemaFeature(
                "'not' (or oneOf/if) over a string format that constrain enforces only as a sound subset "
                "cannot be complemented exactly", pointer=pointer)
        else:
            d = v.string.full_dfa().complement(utf8=True)
            st = None if d.is_empty() else StrPart(d, True)
        arrays = [ArrC()]
        for a in v.arrays:
            arrays = _cap([z for x in arrays for y in self.not_arr(a, pointer)
                           if _possible(z := self.and_arr(x, y))], "array")
        objects = [ObjC()]
        for o in v.objects:
            objects = _cap([z for x in objects for y in self.not_obj(o, pointer)
                            if _possible(z := self.and_obj(x, y))], "object")
        return Val(not v.null, frozenset((True, False)) - v.bools, num, st, tuple(arrays), tuple(objects))

    def not_obj(self, o: ObjC, pointer: str) -> list:
        """The shapes of the objects ``o`` rejects: one per way to break it."""
        if o.some:
            raise UnsupportedSchemaFeature(
                "the complement of a complement of additionalProperties/patternProperties is not supported",
                pointer=pointer)
        out = []
        for name, c in o.props:
            for loc, pos in c:
                out.append(ObjC(props=((name, frozenset({(loc, not pos)})),), required=frozenset({name})))
        for r in o.required:
            out.append(ObjC(forbidden=frozenset({r})))
        for f in o.forbidden:
            out.append(ObjC(required=frozenset({f})))
        # a member the shape does not declare breaks a pattern's schema or additionalProperties
        undeclared = None
        for patterns, additional in o.rest:
            if not patterns and not additional:
                continue
            if undeclared is None:
                undeclared = all_strings().dfa
                if o.props:
                    from constrain.grammar.regex import compile_choices

                    undeclared = undeclared.intersect(
                        compile_choices(sorted(n for n, _ in o.props)).complement(utf8=True))
            others = undeclared
            for p, c in patterns:
                pd = self.pattern_dfa(p)
                others = others.intersect(pd.complement(utf8=True))
                names = undeclared.intersect(pd)
                if not names.is_empty():
                    out += [ObjC(some=((names, frozenset({(loc, not pos)})),)) for loc, pos in c]
            if not others.is_empty():
                out += [ObjC(some=((others, frozenset({(loc, not pos)})),)) for loc, pos in additional]
        if o.names and any(o.names):
            raise UnsupportedSchemaFeature("the complement of propertyNames (under not, oneOf or if) is not supported",
                                           pointer=pointer)
        if o.min > 0:
            out.append(ObjC(max=o.min - 1))
        if o.max is not None:
            out.append(ObjC(min=o.max + 1))
        return out

    @staticmethod
    def not_arr(a: ArrC, pointer: str) -> list:
        out = []
        for i, c in enumerate(a.prefix):
            for loc, pos in c:
                out.append(ArrC(prefix=(ANY_C,) * i + (frozenset({(loc, not pos)}),), min=i + 1))
        if a.items:
            if a.prefix:
                raise UnsupportedSchemaFeature(
                    "the complement of items after prefixItems (under not, oneOf or if) is not supported",
                    pointer=pointer)
            for loc, pos in a.items:
                out.append(ArrC(contains=((frozenset({(loc, not pos)}), 1, None),)))
        if a.min > 0:
            out.append(ArrC(max=a.min - 1))
        if a.max is not None:
            out.append(ArrC(min=a.max + 1))
        for c, mn, mx in a.contains:
            if mn > 0:
                out.append(ArrC(contains=((c, 0, mn - 1),)))
            if mx is not None:
                out.append(ArrC(contains=((c, mx + 1, None),)))
        if a.unique:
            raise UnsupportedSchemaFeature("the complement of uniqueItems (under not, oneOf or if) is not supported",
                                           pointer=pointer)
        return out


def const_string(s: str) -> StrPart:
    return StrPart(literal_dfa(s), True)


def replace_val(v: Val, **kw) -> Val:
    return replace(v, _empty=[], **kw)


def product(lists):
    return itertools.product(*lists)
