"""Exact byte DFAs for JSON number literals under JSON Schema's numeric keywords.

:func:`number_dfa` builds a minimal :class:`~constrain.grammar.dfa.ByteDFA` accepting JSON
number literals (RFC 8259: ``-?(0|[1-9][0-9]*)(\\.[0-9]+)?([eE][+-]?[0-9]+)?``) whose exact
rational value satisfies ``minimum`` / ``exclusiveMinimum`` / ``maximum`` /
``exclusiveMaximum`` / ``multipleOf`` and, optionally, JSON Schema's ``"integer"`` type (the
value is integral, so ``1.0`` and ``1.50e1`` are integers).  All arithmetic is exact
(:class:`fractions.Fraction` and Python integers); floats are never used for values.

Guarantees
----------
*Soundness* (absolute): every accepted literal's exact value satisfies every constraint.

*Completeness without exponent*: every literal without an exponent part whose value satisfies
the constraints is accepted -- including ``-0``, ``-0.0``, ``0.000``, trailing zeros
(``2.500``), ``1.0``/``-3.000`` for integers, bounds with any number of digits and bounds that
are arbitrary rationals (``Fraction(1, 3)``).

*Literals with an exponent* (``m e E``: ``E`` is the signed value of the exponent digits,
leading zeros allowed, ``-0`` = 0; ``M`` is the magnitude of the mantissa ``m``).  Exactness
would need unbounded counting (the exponent against the number of mantissa digits), so the
accepted set is this documented sound subset, with ``W = exp_window`` (default
:data:`EXP_WINDOW` = 4):

1. No constraint at all (no bound, no ``multiple_of``, not ``integer``): every exponent
   literal is accepted (exact).
2. Zero mantissa (``0e5``, ``-0.00E-7``; value 0 for every ``E``): accepted iff 0 is valid.
3. Otherwise let ``A`` be the set of exponents ``E'`` such that ``m e E'`` is valid for the
   bounds and -- only when ``multiple_of`` or ``integer`` is given -- ``E' >= 0`` **and the
   mantissa** ``m`` **itself** is a multiple of ``multiple_of`` (resp. an integer).  ``A`` is
   an interval.  The literal is accepted iff ``E`` is in ``A`` and one of

   * ``|E| <= W``;
   * ``E > W`` and every ``E' >= W + 1`` is in ``A`` (no upper bound on the magnitude and
     ``M * 10**(W+1)`` is already large enough);
   * ``E < -W`` and every ``E' <= -(W + 1)`` is in ``A`` (no positive lower bound on the
     magnitude, no ``multiple_of``/``integer``, and ``M * 10**-(W+1)`` is already small
     enough).

Hence the valid exponent literals that are **not** accepted are exactly: (a) under
``multiple_of``/``integer``, those with a non-zero mantissa that is not itself a multiple
(``1.5e1``, ``0.5e1`` as integers) or with a negative exponent (``1500e-2``; ``3e-0`` has
``E = 0`` and is accepted); (b) those with ``|E| > W`` whose neighbours further out are not
all valid, i.e. on a side where the bounds restrict the magnitude (``maximum: 1e308``
rejects ``1e308`` and ``2e5`` but accepts ``2e4`` and ``1e-400``; ``minimum: 1`` rejects
``1000000e-6``).  Examples: ``exclusiveMinimum: 0`` accepts every positive exponent literal
(``1e-400``, ``5E+99``); ``minimum: 0, maximum: 1`` accepts ``1e-5``, ``1e-500``, ``5e-1``,
``0.1e1`` and rejects ``2e0``; ``integer`` accepts ``1e3``, ``2.0e+5``, ``1e308``,
``-7E0``, ``0.0e-9``.

Construction
------------
The automaton is built directly by a breadth-first walk over *semantic* states, then
minimized.  A literal is read as sign branch + mantissa (+ exponent).  For each sign the
value constraints become constraints on the magnitude ``M`` (``value = -M`` on the ``-``
branch).  A positive magnitude bound ``B = beta * 10**lB`` (``0.1 <= beta < 1``) is compared
in scientific form: the mantissa's decimal exponent ``lM`` (number of integer digits, or minus
the number of leading fraction zeros of ``0.00ddd``) plus a lexicographic comparison of the
significant digits of ``M`` with those of ``beta``, carried as "less / greater / still equal
with residual r" (``r`` a rational in ``[0, 1)``, so any rational bound works and trailing
zeros are free).  The comparison of ``M * 10**E`` with ``B`` follows from ``lM + E`` versus
``lB`` and the digit comparison, which gives the exponent interval ``A`` of rule 3 (``E = 0`` for
literals without exponent).  The state count is proportional to the number of digits (and
decimal exponent) of the bounds plus ``W``.

``multiple_of = p/q`` (lowest terms; with ``integer`` it becomes ``p``, or ``1`` alone): let
``c = max(v2(q), v5(q))``, ``D = 10**c / gcd(q, 10**c)`` and ``K = p * D``.  A literal with
digits ``N`` and ``j`` fraction digits is a multiple iff it has no non-zero fraction digit
after position ``c`` and ``N * 10**(c - j) = 0 (mod K)`` (for ``j <= c``).  The automaton
tracks ``N mod K / gcd(K, 10**(c - j))`` per fraction position ``j <= c``; more than
``max_states`` such residues raises :class:`~constrain.errors.LimitExceeded`.

Results are cached (``functools.lru_cache``) on the normalized arguments.  Typical cases
build in a few milliseconds; ``maximum=10**300`` in tens of milliseconds.
"""

from __future__ import annotations

import math
from decimal import Decimal
from fractions import Fraction
from functools import lru_cache
from numbers import Rational

import numpy as np

from constrain.errors import ConfigError, LimitExceeded, UnsupportedSchemaFeature
from constrain.grammar.dfa import DEFAULT_MAX_STATES, ByteDFA

__all__ = [
    "EXP_WINDOW",
    "integer_literal_dfa",
    "number_dfa",
    "number_literal_dfa",
    "to_fraction",
]

EXP_WINDOW = 4
"""Default ``W``: exponent values ``|E| <= W`` are checked exactly against bounds (rule 3).

Each unit of ``W`` costs a few automaton states per bound (``minimum: -1e9, maximum: 1e9``:
42 states with ``W = 0``, 103 with ``W = 4``, 163 with ``W = 8``)."""

_INF = 1 << 62  # stands for +infinity in exponent intervals (-_INF for -infinity)

# symbol classes of the construction: 0 = any other byte (dead), 1..10 = digits 0-9
_C_DOT, _C_E, _C_PLUS, _C_MINUS = 11, 12, 13, 14
_NCLS = 15
_CLS_OF_BYTE = np.zeros(256, dtype=np.intp)
_CLS_OF_BYTE[0x30:0x3A] = np.arange(1, 11)
_CLS_OF_BYTE[ord(".")] = _C_DOT
_CLS_OF_BYTE[ord("e")] = _CLS_OF_BYTE[ord("E")] = _C_E
_CLS_OF_BYTE[ord("+")] = _C_PLUS
_CLS_OF_BYTE[ord("-")] = _C_MINUS

# comparison outcomes
_LT, _EQ, _GT = -1, 0, 1


# --------------------------------------------------------------------------------------
# argument normalization
# --------------------------------------------------------------------------------------

def to_fraction(x, name: str = "value", pointer: str = "") -> Fraction:
    """Exact rational value of a JSON Schema numeric keyword value.

    Accepts ``Fraction`` / other ``numbers.Rational`` (``int``), ``Decimal``, ``str`` (any
    form :class:`~fractions.Fraction` parses, e.g. ``"1.5"``, ``"1e-8"``, ``"3/4"``) and
    ``float`` (converted through its shortest ``repr``, i.e. the decimal literal a JSON
    parser read it from -- never through binary float arithmetic).  ``bool``, NaN,
    infinities and anything else raise :class:`UnsupportedSchemaFeature` (with ``pointer``).
    """
    if isinstance(x, bool):
        raise UnsupportedSchemaFeature(f"{name} must be a number, got a boolean ({x!r})", pointer=pointer)
    try:
        if isinstance(x, Fraction):
            return x
        if isinstance(x, Rational):
            return Fraction(int(x.numerator), int(x.denominator))
        if isinstance(x, Decimal):
            if not x.is_finite():
                raise ValueError
            return Fraction(x)
        if isinstance(x, float):
            if not math.isfinite(x):
                raise ValueError
            return Fraction(repr(x))
        if isinstance(x, str):
            s = x.strip()
            low = s.lower().lstrip("+-")
            if low in ("nan", "inf", "infinity", "snan"):
                raise ValueError
            return Fraction(s)
    except (ValueError, ZeroDivisionError, ArithmeticError):
        raise UnsupportedSchemaFeature(f"{name} must be a finite number, got {x!r}", pointer=pointer) from None
    raise UnsupportedSchemaFeature(f"{name} must be a number, got {type(x).__name__} {x!r}", pointer=pointer)


# --------------------------------------------------------------------------------------
# semantic pieces
# --------------------------------------------------------------------------------------

class _Bound:
    """A positive magnitude bound ``B = (num0/den) * 10**ell`` with ``num0/den`` in [0.1, 1)."""

    __slots__ = ("ell", "num0", "den", "upper", "strict", "memo")

    def __init__(self, value: Fraction, upper: bool, strict: bool):
        n, d = value.numerator, value.denominator
        # estimate of log10 (no str(): huge ints may exceed int->str conversion limits)
        ell = int((n.bit_length() - d.bit_length()) * 0.30102999566398)
        ten = Fraction(10)
        while value >= ten ** ell:
            ell += 1
        while value < ten ** (ell - 1):
            ell -= 1
        beta = value / ten ** ell
        self.ell = ell
        self.num0 = beta.numerator
        self.den = beta.denominator
        self.upper = upper
        self.strict = strict
        self.memo: dict = {}

    def step(self, num: int, d: int):
        """Feed one significant digit while still equal; returns _LT, _GT or the new residual."""
        key = (num, d)
        r = self.memo.get(key)
        if r is None:
            x = 10 * num
            f = x // self.den
            if d < f:
                r = ("L",)
            elif d > f:
                r = ("G",)
            else:
                r = ("Q", x - f * self.den)
            self.memo[key] = r
        return r

    def end(self, ell_m: int, cmp: int) -> int:
        """Exponent end for a non-zero magnitude with decimal exponent ``ell_m`` and digit
        comparison ``cmp`` (of the significant digits of M against those of B)."""
        if self.upper:
            ok = cmp == _LT or (cmp == _EQ and not self.strict)
            return self.ell - ell_m - (0 if ok else 1)
        ok = cmp == _GT or (cmp == _EQ and not self.strict)
        return self.ell - ell_m + (0 if ok else 1)


def _comp_cmp(comp) -> int:
    tag = comp[0]
    if tag == "L":
        return _LT
    if tag == "G":
        return _GT
    return _EQ if comp[1] == 0 else _LT  # ("Q", residual): M's digits ran out


class _Branch:
    """Constraints on the magnitude M for one sign branch."""

    __slots__ = ("empty", "bounds", "zero_ok", "zero_only", "lmin", "lmax")

    @staticmethod
    def key(lo, hi):
        """Normal form of magnitude constraints (for sharing the states of both signs)."""
        if lo is not None and (lo[0] < 0 or (lo[0] == 0 and not lo[1])):
            lo = None
        return lo, hi

    def __init__(self, lo, hi):
        # lo / hi: (Fraction, strict) or None, constraints on M >= 0
        self.empty = False
        self.zero_only = False
        nonzero = False
        bounds = []
        if hi is not None:
            v, strict = hi
            if v < 0 or (v == 0 and strict):
                self.empty = True
            elif v == 0:
                self.zero_only = True
            else:
                bounds.append(_Bound(v, True, strict))
        zero_lo_ok = True
        if lo is not None:
            v, strict = lo
            if v > 0:
                bounds.append(_Bound(v, False, strict))
                zero_lo_ok = False
            elif v == 0 and strict:
                nonzero = True
                zero_lo_ok = False
        if self.zero_only:
            bounds = []
            if not zero_lo_ok:
                self.empty = True
        if lo is not None and hi is not None and not self.empty:
            (lv, ls), (hv, hs) = lo, hi
            if lv > hv or (lv == hv and (ls or hs)):
                self.empty = True
        self.zero_ok = zero_lo_ok and not self.empty and not nonzero
        self.bounds = tuple(bounds)
        if bounds:
            self.lmin = min(b.ell for b in bounds)
            self.lmax = max(b.ell for b in bounds)
        else:
            self.lmin = self.lmax = 0


class _Mult:
    """Exact 'is a multiple of p/q' tracker over the digit string (see module docstring)."""

    __slots__ = ("c", "K", "Kj")

    def __init__(self, m: Fraction, max_states: int):
        p, q = m.numerator, m.denominator
        a = b = 0
        qq = q
        while qq % 2 == 0:
            qq //= 2
            a += 1
        qq = q
        while qq % 5 == 0:
            qq //= 5
            b += 1
        c = max(a, b)
        D = 10 ** c // math.gcd(q, 10 ** c)
        K = p * D
        Kj = [K // math.gcd(K, 10 ** (c - j)) for j in range(c + 1)]
        if sum(Kj) > max_states:
            raise LimitExceeded(
                f"multipleOf {m} needs about {sum(Kj)} automaton states (residues mod {K})",
                limit="max_dfa_states", value=max_states)
        self.c = c
        self.K = K
        self.Kj = Kj

    def int_digit(self, st, d):
        j, r = st
        return (0, (10 * r + d) % self.Kj[0])

    def frac_digit(self, st, d):
        j, r = st
        if j < self.c:
            j += 1
            r = (10 * r + d) % self.Kj[j]
            if j == self.c and r != 0:
                return None  # no further digits can fix it
            return (j, r)
        if d != 0:
            return None
        return st

    @staticmethod
    def ok(st) -> bool:
        return st[1] == 0


# --------------------------------------------------------------------------------------
# the builder
# --------------------------------------------------------------------------------------

class _Builder:
    def __init__(self, branches, mult, unconstrained: bool, W: int, max_states: int):
        self.branches = branches  # (positive, negative)
        self.mult = mult
        self.unconstrained = unconstrained
        self.W = W
        self.CL = W + 2
        self.max_states = max_states
        # once every bound comparison is resolved, states of both signs with the same kind of
        # constraints behave alike: share them (branch index 0)
        shapes = {(br.zero_only, tuple(b.upper for b in br.bounds)) for br in branches}
        self.share_resolved = len(shapes) == 1

    def clamp(self, v: int) -> int:
        CL = self.CL
        return -CL if v < -CL else (CL if v > CL else v)

    # ---- canonical mantissa states ---------------------------------------------------
    # ("I0"|"I"|"D"|"F", branch, zero, ell, comps, mult)
    #   zero: all digits so far are 0; ell: decimal exponent of M (None when no longer
    #   needed); comps: per bound ("L",) / ("G",) / ("Q", residual) / ("E", exponent end)

    def resolve(self, br: _Branch, ell, comps, fixed: bool):
        """Replace bound comparisons whose clamped exponent end can no longer change by
        ("E", end); drop ``ell`` once every bound is resolved.

        ``fixed``: the decimal exponent of M is final (fraction phase); otherwise it can
        still grow (integer phase), which only lowers both kinds of exponent ends.
        """
        if ell is None or not comps:
            return ell, comps
        CL = self.CL
        out = []
        done = True
        for b, comp in zip(br.bounds, comps):
            tag = comp[0]
            if tag != "E":
                if fixed:
                    if tag != "Q":
                        comp = ("E", self.clamp(b.end(ell, _LT if tag == "L" else _GT)))
                    else:
                        e1 = self.clamp(b.end(ell, _LT))
                        if e1 == self.clamp(b.end(ell, _GT)):
                            comp = ("E", e1)
                else:
                    if tag == "Q":
                        e = b.ell - ell + (0 if b.upper else 1)  # largest possible end
                    else:
                        e = b.end(ell, _LT if tag == "L" else _GT)
                    if e <= -CL:
                        comp = ("E", -CL)
                if comp[0] != "E":
                    done = False
            out.append(comp)
        return (None if done else ell), tuple(out)

    def summary(self, st):
        """Exponent interval (lo, hi) of a complete mantissa, clamped; None if empty."""
        _, bi, zero, ell, comps, mst = st
        br = self.branches[bi]
        if zero:
            return (-_INF, _INF) if br.zero_ok else None
        if br.zero_only:
            return None
        lo, hi = -_INF, _INF
        if self.mult is not None:
            if not _Mult.ok(mst):
                return None
            lo = 0
        for b, comp in zip(br.bounds, comps):
            if comp[0] == "E":
                e = comp[1]
            else:
                e = b.end(ell, _comp_cmp(comp))
            if b.upper:
                hi = min(hi, e)
            else:
                lo = max(lo, e)
        if lo > hi:
            return None
        lo = lo if lo == -_INF else self.clamp(lo)
        hi = hi if hi == _INF else self.clamp(hi)
        return (lo, hi)

    def start_int(self, bi: int, d: int):
        br = self.branches[bi]
        if bi == 1 and br is self.branches[0]:
            bi = 0
        if br.empty:
            return None
        mst = None
        if self.mult is not None:
            mst = self.mult.int_digit((0, 0), d)
        if d == 0:
            ell = 0 if br.bounds else None
            return ("I0", bi, True, ell, tuple(("Q", b.num0) for b in br.bounds), mst)
        ell = None
        comps = ()
        if br.bounds:
            comps = tuple(b.step(b.num0, d) for b in br.bounds)
            ell, comps = self.resolve(br, 1, comps, False)
        return ("I", bi, False, ell, comps, mst)

    def int_digit(self, st, d: int):
        _, bi, zero, ell, comps, mst = st
        br = self.branches[bi]
        if mst is not None:
            mst = self.mult.int_digit(mst, d)
        if ell is not None:
            comps = tuple(c if c[0] != "Q" else b.step(c[1], d) for b, c in zip(br.bounds, comps))
            ell, comps = self.resolve(br, ell + 1, comps, False)
            if ell is None and self.share_resolved:
                bi = 0
        return ("I", bi, False, ell, comps, mst)

    def frac_state(self, kind, bi, zero, ell, comps, mst):
        """Canonical fraction-phase state (``ell`` is final once a significant digit was read)."""
        if not zero and ell is not None:
            br = self.branches[bi]
            if mst is not None and mst[0] == self.mult.c:
                # only zeros may follow: every comparison is final
                comps = tuple(c if c[0] == "E" else ("E", self.clamp(b.end(ell, _comp_cmp(c))))
                              for b, c in zip(br.bounds, comps))
                ell = None
            else:
                ell, comps = self.resolve(br, ell, comps, True)
            if ell is None and self.share_resolved:
                bi = 0
        return (kind, bi, zero, ell, comps, mst)

    def dot(self, st):
        return self.frac_state("D", *st[1:])

    def frac_digit(self, st, d: int):
        _, bi, zero, ell, comps, mst = st
        br = self.branches[bi]
        if mst is not None:
            mst = self.mult.frac_digit(mst, d)
            if mst is None:
                return None
        if zero:
            if d == 0:
                if ell is not None:
                    ell = max(ell - 1, br.lmin - self.W - 3)
                return ("F", bi, True, ell, comps, mst)
            zero = False
        if ell is not None:
            comps = tuple(c if c[0] != "Q" else b.step(c[1], d) for b, c in zip(br.bounds, comps))
        return self.frac_state("F", bi, False, ell, comps, mst)

    # ---- BFS ---------------------------------------------------------------------------

    def build(self) -> ByteDFA:
        """Walk the reachable semantic states; returns the minimized DFA."""
        ids: dict = {}
        order: list = []
        rows: list = []
        accept: list = []
        exp_links: list = []  # (row index, summary)
        max_states = self.max_states
        self.order = order

        def sid(s) -> int:
            i = ids.get(s)
            if i is None:
                i = len(order)
                if i >= max_states:
                    raise LimitExceeded(f"the number automaton needs more than {max_states} states",
                                        limit="max_dfa_states", value=max_states)
                ids[s] = i
                order.append(s)
            return i

        sid(("S",))
        i = 0
        neg_empty = self.branches[1].empty
        unconstrained = self.unconstrained
        while i < len(order):
            s = order[i]
            row = [-1] * _NCLS
            acc = False
            kind = s[0]
            if kind == "S" or kind == "N":
                bi = 0 if kind == "S" else 1
                if kind == "S" and not neg_empty:
                    row[_C_MINUS] = sid(("N",))
                for d in range(10):
                    t = self.start_int(bi, d)
                    if t is not None:
                        row[1 + d] = sid(t)
            else:
                if kind == "I":
                    for d in range(10):
                        t = self.int_digit(s, d)
                        if t is not None:
                            row[1 + d] = sid(t)
                    row[_C_DOT] = sid(self.dot(s))
                elif kind == "I0":
                    row[_C_DOT] = sid(self.dot(s))
                else:  # "D" or "F"
                    for d in range(10):
                        t = self.frac_digit(s, d)
                        if t is not None:
                            row[1 + d] = sid(t)
                if kind != "D":
                    summ = (-_INF, _INF) if unconstrained else self.summary(s)
                    if summ is not None:
                        acc = summ[0] <= 0 <= summ[1]
                        exp_links.append((i, summ))
            rows.append(row)
            accept.append(acc)
            i += 1

        # splice the exponent suffix automata (shared per exponent interval)
        total = len(rows)
        offsets: dict = {}
        extra_t: list = []
        extra_a: list = []
        for r, summ in exp_links:
            off = offsets.get(summ)
            if off is None:
                et, ea = _exp_suffix(summ, self.W)
                if et is None:
                    off = -1
                else:
                    off = total
                    extra_t.append(np.where(et >= 0, et + off, -1))
                    extra_a.append(ea)
                    total += et.shape[0]
                    if total > max_states:
                        raise LimitExceeded(f"the number automaton needs more than {max_states} states",
                                            limit="max_dfa_states", value=max_states)
                offsets[summ] = off
            if off >= 0:
                rows[r][_C_E] = off
        ct = np.asarray(rows, dtype=np.int32).reshape(len(rows), _NCLS)
        acc_arr = np.asarray(accept, dtype=bool)
        if extra_t:
            ct = np.vstack([ct] + extra_t)
            acc_arr = np.concatenate([acc_arr] + extra_a)
        return ByteDFA(ct[:, _CLS_OF_BYTE], acc_arr).minimize()


def _exp_suffix(summ, W: int):
    """Class-level table (int32[n, _NCLS], bool[n]) of the minimal automaton of the exponent
    part after ``e``/``E`` (``[+-]?[0-9]+``) accepted for the interval ``summ``, or
    (None, None) when it accepts nothing.  It depends on ``summ`` only through which
    saturated exponent values ``±0..W+1`` it accepts: the states and table are fixed
    (:func:`_exp_frame`), only the accepting set changes."""
    return _exp_suffix_of(tuple(_exp_accepts(summ, -x if neg else x, W) for neg in (False, True)
                                for x in range(W + 2)), W)


def _exp_accepts(summ, x: int, W: int) -> bool:
    """Whether the exponent interval ``summ`` accepts exponent value ``x`` (saturated to
    ``±(W+1)``)."""
    lo, hi = summ
    if x > W:
        return hi == _INF and lo <= W + 1
    if x < -W:
        return lo == -_INF and hi >= -(W + 1)
    return lo <= x <= hi


@lru_cache(maxsize=4096)
def _exp_suffix_of(accepts: tuple, W: int):
    """:func:`_exp_suffix` for the vector ``accepts``: exponent ``+x`` at ``x``, ``-x`` at
    ``top + 1 + x`` (x = 0..top, top = W + 1 standing for every larger value)."""
    ct, which = _exp_frame(W)
    acc = np.where(which >= 0, np.asarray(accepts, dtype=bool)[np.maximum(which, 0)], False)
    dfa = ByteDFA(ct[:, _CLS_OF_BYTE], acc).minimize()
    if dfa.is_empty():
        return None, None
    reps = [0, *range(0x30, 0x3A), ord("."), ord("e"), ord("+"), ord("-")]
    return np.array(dfa.trans[:, reps]), np.array(dfa.accept)


@lru_cache(maxsize=16)
def _exp_frame(W: int):
    """The exponent automaton's states and class-level table, the same for every interval:
    ``X`` (after ``e``), ``S`` (after a sign) and ``V`` (a value so far, saturated at
    ``top = W + 1``) per sign; ``which[i]`` is state i's index into an acceptance vector of
    :func:`_exp_suffix_of` (``-1``: never accepting)."""
    top = W + 1
    ids = {("X",): 0}
    order = [("X",)]
    rows = []

    def go(t):
        j = ids.get(t)
        if j is None:
            j = ids[t] = len(order)
            order.append(t)
        return j

    i = 0
    while i < len(order):
        s = order[i]
        row = [-1] * _NCLS
        if s[0] == "X":
            row[_C_PLUS] = go(("S", False))
            row[_C_MINUS] = go(("S", True))
            neg, x = False, None
        elif s[0] == "S":
            neg, x = s[1], None
        else:
            neg, x = s[1], s[2]
        for d in range(10):
            row[1 + d] = go(("V", neg, d if x is None else min(10 * x + d, top)))
        rows.append(row)
        i += 1
    # (a first digit above top is saturated too: it is accepted as top is)
    which = np.array([min(s[2], top) + (top + 1 if s[1] else 0) if s[0] == "V" else -1 for s in order], dtype=np.int64)
    return np.asarray(rows, dtype=np.int32), which


# --------------------------------------------------------------------------------------
# public API
# --------------------------------------------------------------------------------------

def number_dfa(*, integer: bool = False, minimum=None, exclusive_minimum=None, maximum=None,
               exclusive_maximum=None, multiple_of=None, max_states: int = DEFAULT_MAX_STATES,
               exp_window: int = EXP_WINDOW, pointer: str = "") -> ByteDFA:
    """Minimal DFA of the JSON number literals whose exact value satisfies the constraints.

    Parameters
    ----------
    integer:
        JSON Schema ``"type": "integer"``: the value must be integral (``1.0`` is).
    minimum, exclusive_minimum, maximum, exclusive_maximum:
        Bounds (inclusive / exclusive); any of them may be given, the tightest applies.
    multiple_of:
        A positive rational; the value divided by it must be an integer.
    max_states:
        Cap on automaton states (:class:`LimitExceeded`, ``limit="max_dfa_states"``), also
        hit by ``multiple_of`` values with huge numerators (e.g. ``0.123456789`` with
        ``integer``).
    exp_window:
        ``W`` of the exponent rule (see the module docstring); ``>= 0``.
    pointer:
        JSON pointer of the schema object; errors about a keyword carry ``pointer + "/" +
        keyword`` (e.g. ``/properties/x/multipleOf``), limit errors mention ``pointer``.

    Values may be ``Fraction``, ``int``, ``Decimal``, ``str`` or ``float`` (see
    :func:`to_fraction`).  An unsatisfiable combination returns the empty DFA
    (``is_empty()``).  Literals without exponent are accepted exactly; literals with an
    exponent follow the sound subset documented in the module docstring.

    Raises
    ------
    UnsupportedSchemaFeature
        A value is not a finite number, or ``multiple_of <= 0``.
    ConfigError
        ``max_states`` / ``exp_window`` out of range.
    LimitExceeded
        The automaton would exceed ``max_states``.
    """
    if not isinstance(max_states, int) or isinstance(max_states, bool) or max_states < 1:
        raise ConfigError(f"max_states must be a positive int, got {max_states!r}")
    if not isinstance(exp_window, int) or isinstance(exp_window, bool) or not 0 <= exp_window <= 1000:
        raise ConfigError(f"exp_window must be an int in [0, 1000], got {exp_window!r}")

    def conv(x, key):
        return None if x is None else to_fraction(x, key, f"{pointer}/{key}")

    lo = hi = None
    for v, strict, key in ((minimum, False, "minimum"), (exclusive_minimum, True, "exclusiveMinimum")):
        f = conv(v, key)
        if f is not None and (lo is None or f > lo[0] or (f == lo[0] and strict)):
            lo = (f, strict)
    for v, strict, key in ((maximum, False, "maximum"), (exclusive_maximum, True, "exclusiveMaximum")):
        f = conv(v, key)
        if f is not None and (hi is None or f < hi[0] or (f == hi[0] and strict)):
            hi = (f, strict)
    m = conv(multiple_of, "multipleOf")
    if m is not None and m <= 0:
        raise UnsupportedSchemaFeature(f"multipleOf must be greater than 0, got {m}", pointer=f"{pointer}/multipleOf")
    if integer:
        m = Fraction(1) if m is None else Fraction(m.numerator)
    try:
        return _number_dfa_cached(lo, hi, m, max_states, exp_window)
    except LimitExceeded as e:
        if not pointer:
            raise
        base = str(e).rsplit(" (limit ", 1)[0]
        raise LimitExceeded(f"{base} (at {pointer})", limit=e.limit, value=e.value) from None


@lru_cache(maxsize=1024)
def _number_dfa_cached(lo, hi, m, max_states: int, W: int) -> ByteDFA:
    mult = _Mult(m, max_states) if m is not None else None
    pos = _Branch(lo, hi)
    nlo = None if hi is None else (-hi[0], hi[1])
    nhi = None if lo is None else (-lo[0], lo[1])
    # the magnitude constraints of both signs often agree ([-a, a], no bounds): share states
    neg = pos if _Branch.key(nlo, nhi) == _Branch.key(lo, hi) else _Branch(nlo, nhi)
    unconstrained = lo is None and hi is None and m is None
    return _Builder((pos, neg), mult, unconstrained, W, max_states).build()


def number_literal_dfa() -> ByteDFA:
    """All JSON number literals: ``-?(0|[1-9][0-9]*)(\\.[0-9]+)?([eE][+-]?[0-9]+)?``."""
    return number_dfa()


def plain_integer_dfa() -> ByteDFA:
    """``-?(0|[1-9][0-9]*)``: what draft 4 calls an integer (no fraction, no exponent)."""
    from constrain.grammar.regex import compile_regex

    return compile_regex(r"-?(0|[1-9][0-9]*)")


def integer_literal_dfa() -> ByteDFA:
    """JSON number literals accepted for ``"type": "integer"`` (sound; exact without exponent).

    ``-?(0|[1-9][0-9]*)(\\.0+)?`` optionally followed by ``[eE]\\+?[0-9]+`` or ``[eE]-0+``,
    plus any exponent after a zero mantissa (``0.0e-7``).  Not accepted: integral values
    written with a fractional mantissa or a negative exponent (``1.5e1``, ``100e-2``).
    """
    return number_dfa(integer=True)
