"""What the grammar cannot hold, for the matcher's :class:`~constrain.grammar.checks.DistinctCheck`.

The lowering enforces ``uniqueItems`` in the grammar when the items are a small finite set of
values (:mod:`constrain.jsonschema.unique`).  Otherwise, when every item is a string whose
content automaton is *inexhaustible* (infinitely many completions from every live state: free
strings, most patterns and formats) or one of a listed finite set of strings, the array is
lowered without the uniqueness; any-order objects with more names than a grammar state can
track are lowered with repeatable members (:meth:`~constrain.jsonschema.lower.Lowering._bag_object`).
This module builds the path automaton the matcher's tracker follows for both:

* a state is the set of conjunctions a value at some JSON path may satisfy (over-approximated
  for undeclared member names: every combination of the patterns and ``additionalProperties``
  that could apply), and its arrays are the shapes of those conjunctions;
* a state whose arrays include one that needs the check and one that allows duplicates is
  refused by name — the tracker could not tell them apart by path.

Over-approximating the states is sound: a subset of a state that is not mixed is not mixed,
and the tracker only ever asks "must an array here have distinct items".
"""

from __future__ import annotations

import itertools

from constrain.errors import LimitExceeded
from constrain.grammar.checks import DistinctCheck
from constrain.jsonschema.algebra import ANY_C, ArrC

MAX_PATH_STATES = 4096
MAX_NAME_COMBOS = 64  # undeclared-name conjunctions considered per object shape
MAX_FINITE_VALUES = 4096  # finite item sets the tracker checks by listing them


class MixedBag(Exception):
    """A path state holds an any-order object of the check together with other object shapes:
    ``args[0]`` is the set of such objects, which must keep schema order (lower again)."""


class NotCheckable(Exception):
    """The items cannot be checked for uniqueness by the tracker; ``args[0]`` says why."""


def inexhaustible(dfa) -> bool:
    """Every live state of ``dfa`` reachable from the start has infinitely many accepted
    continuations.  Following live successors from a state with finitely many must end in a
    live state without live successors, so it is enough that no reachable live state lacks one."""
    live = dfa.live
    if not live[0]:
        return False
    rows = dfa._rows()
    seen = {0}
    stack = [0]
    while stack:
        s = stack.pop()
        nxt = {t for t in rows[s] if t >= 0 and live[t]}
        if not nxt:
            return False
        for t in nxt - seen:
            seen.add(t)
            stack.append(t)
    return True


def checkable_items(norm, a: ArrC) -> frozenset | None:
    """How the tracker can check ``a``'s items for uniqueness: ``None`` when every item is a
    string with infinitely many completions from every point (from the second item on: a
    prefix's first item has nothing to differ from), or the finite set of string values every
    item takes (up to :data:`MAX_FINITE_VALUES`; the tracker then keeps a partial item only
    while an unused value extends it).  Raises :class:`NotCheckable` otherwise."""
    if a.contains:
        raise NotCheckable("it also has contains")
    from constrain.jsonschema.algebra import Val
    from constrain.jsonschema.unique import NotFinite, string_values

    k = len(a.prefix)
    span = k + 1 if a.max is None else min(a.max, k + 1)
    for i in range(span):
        v = norm.conj(a.at(i))
        others = Val(null=v.null, bools=v.bools, number=v.number, arrays=v.arrays, objects=v.objects)
        if v.null or v.bools or (v.number is not None and not v.number.is_empty()) or \
                ((v.arrays or v.objects) and not norm.is_empty(others, depth=1)):
            raise NotCheckable("its items are not only strings")
        s = v.string
        if s is None or s.is_empty():
            continue
        later = i > 0 or k == 0
        if later and ((s.length is not None and s.length[1] is not None) or not inexhaustible(s.dfa)):
            if k == 0:
                try:
                    values = frozenset(string_values(s, MAX_FINITE_VALUES))
                except NotFinite:
                    values = None
                if values is not None:
                    if a.min > len(values):
                        raise NotCheckable(f"minItems {a.min} asks for more distinct items than its "
                                           f"{len(values)} values")
                    return values
            if s.length is not None and s.length[1] is not None:
                raise NotCheckable("its item strings have a maxLength (finitely many values, too many to list)")
            raise NotCheckable("its item strings can reach a point with finitely many completions")
    return None


def _member_options(alg, o, name: str) -> list:
    """The conjunctions member ``name``'s value may have to satisfy under ``o``: its own, and
    with each ``o.some`` requirement whose names include it (it may be the member that does)."""
    base = alg.name_conj(o, name)
    return [base] + [base | c for names, c in o.some if names.matches(name.encode("utf-8"))]


def build(norm, root, *, lowered: set, checked: set, allows_duplicates, objects: set = frozenset(),
          bags: dict | None = None, strings: dict | None = None) -> DistinctCheck | None:
    """The path automaton from conjunction ``root``.

    ``lowered``: the array shapes the grammar has (the over-approximated states also hold
    conjunctions no output can reach; only real shapes decide); ``checked``: those whose
    uniqueness the tracker enforces (shape -> None, or the finite set of its item values);
    ``allows_duplicates(a)``: a real shape the check must not touch (the other real shapes have distinct items anyway: the grammar enforces it, or at
    most one item).  A state that mixes checked shapes with shapes allowing duplicates is
    refused through ``norm.refuse`` (strict: raises; lenient: recorded, and None returned).

    ``objects``: the object shapes the grammar has; ``bags``: those in any order by the check
    (shape -> ``(names, required, open_names)``).  A state holding one of them and another
    object shape raises :class:`MixedBag` (the tracker could not tell which one it reads), and
    so does an automaton over the caps while there are such objects (they keep schema order;
    without them the caps are a refusal of ``uniqueItems``)."""
    bags = bags or {}
    strings = strings or {}
    try:
        vc = _build(norm, root, lowered, checked, allows_duplicates, objects, bags, strings)
    except (LimitExceeded, NotCheckable) as e:
        if bags:
            raise MixedBag(set(bags)) from None
        why = e.message if isinstance(e, LimitExceeded) else e.args[0]
        kw, ptr = ("uniqueItems", sorted(a.unique_ptr for a in checked)[0]) if checked else ("maxLength", "")
        norm.refuse(kw, ptr, f"the paths to what it checks cannot be tracked: {why}; not enforced")
        vc = None
    if vc is None and bags:  # lenient refusal: the bag grammar is only sound with the check
        raise MixedBag(set(bags))
    return vc


def _build(norm, root, lowered, checked, allows_duplicates, objects, bags, strings):
    alg = norm.alg
    ids: dict = {}
    order: list = []
    trans: list = []

    def sid(states: frozenset) -> int:
        x = ids.get(states)
        if x is None:
            if len(ids) >= MAX_PATH_STATES:
                raise LimitExceeded("uniqueItems: the schema's paths need too many tracker states",
                                    limit="max_path_states", value=MAX_PATH_STATES)
            x = ids[states] = len(order)
            order.append(states)
        return x

    def undeclared_options(o):
        per = []
        for patterns, additional in o.rest:
            opts = {additional}
            ps = [c for _, c in patterns]
            if len(ps) > 6:
                raise NotCheckable("an object on its path has too many patternProperties")
            for r in range(1, len(ps) + 1):
                for sub in itertools.combinations(ps, r):
                    opts.add(frozenset().union(*sub))
            per.append(opts)
        # an undeclared member may also be the one satisfying an ObjC.some requirement
        per.append({ANY_C} | {c for _, c in o.some})
        out = set()
        for combo in itertools.product(*per):
            out.add(frozenset().union(*combo))
            if len(out) > MAX_NAME_COMBOS:
                raise NotCheckable("an object on its path has too many ways to constrain undeclared names")
        return out or {ANY_C}

    sid(frozenset({root}))
    i = 0
    while i < len(order):
        from constrain.limits import check_deadline

        check_deadline()
        states = order[i]
        i += 1
        vals = [norm.conj(c) for c in states]
        arrays = [a for v in vals for a in v.arrays if a in lowered]
        objects_here = [o for v in vals for o in v.objects]
        need = [a for a in arrays if a in checked]
        bad = [a for a in arrays if a not in checked and allows_duplicates(a)]
        specs = {checked[a] for a in need}
        if len(specs) > 1:
            norm.refuse("uniqueItems", need[0].unique_ptr, "arrays at this path may take shapes whose items "
                        "are different finite sets of values, so uniqueness cannot be checked by path; not enforced")
            return None
        if need and bad:
            where = need[0].unique_ptr
            norm.refuse("uniqueItems", where, "an array at this path may also take another shape (anyOf/oneOf/"
                        "if, or an unconstrained schema) that allows duplicates, so uniqueness cannot be "
                        "checked by path; not enforced")
            return None
        strs = [v.string for v in vals if v.string is not None and not v.string.is_empty()]
        counted = [x for x in strs if x in strings]
        if counted and any(x != counted[0] for x in strs):
            norm.refuse("maxLength", "", "a string at this path may take another shape, so its length cannot "
                        "be counted by path; not enforced")
            return None
        strlen = strings[counted[0]] if counted else None
        real = set(o for o in objects_here if o in objects)
        mine = [o for o in real if o in bags]
        bag = bags[mine[0]] if mine else None
        # several shapes at one path: fine when all are checked the same way (same names, the
        # grammar tracking their required names), else the tracker could not tell them apart
        if mine and len(real) > 1 and (len(mine) < len(real) or bag[1] or
                                       any(bags[o] != bag for o in mine)):
            raise MixedBag(set(mine))
        k = max((len(a.prefix) for a in arrays), default=0)
        prefix = [sid(frozenset(a.at(j) for a in arrays)) for j in range(k)]
        rest = sid(frozenset(a.items for a in arrays)) if arrays else -1
        names = []
        for o in objects_here:
            names += [n for n, _ in o.props if n not in names]
            names += [r for r in sorted(o.required) if r not in names]
        keys = {n: sid(frozenset(x for o in objects_here for x in _member_options(alg, o, n))) for n in names}
        other = sid(frozenset(c for o in objects_here for c in undeclared_options(o))) if objects_here else -1
        trans.append((bool(need), prefix, rest, keys, other, bag, next(iter(specs)) if specs else None, strlen))
    for need, prefix, rest, *_ in trans:
        if need and any(x >= 0 and trans[x][7] is not None for x in (*prefix, rest)):
            norm.refuse("maxLength", "", "the items of an array checked for uniqueItems cannot also have their "
                        "length counted; not enforced")
            return None
    # prune: states from which no checked array is reachable become -1
    n = len(order)
    useful = [t[0] or t[5] is not None or t[7] is not None for t in trans]
    changed = True
    while changed:
        changed = False
        for s, (_, prefix, rest, keys, other, *_) in enumerate(trans):
            if not useful[s] and any(x >= 0 and useful[x] for x in (*prefix, rest, *keys.values(), other)):
                useful[s] = changed = True
    keep = [s for s in range(n) if useful[s]]
    if not keep or keep[0] != 0:
        keep = [0] + [s for s in keep if s != 0]
    new = {s: j for j, s in enumerate(keep)}

    def m(x):
        return new.get(x, -1) if x >= 0 else -1

    out = [trans[s] for s in keep]
    return DistinctCheck(
        checked=[t[0] for t in out],
        prefix=[[m(x) for x in t[1]] for t in out],
        rest=[m(t[2]) for t in out],
        keys=[{k: m(x) for k, x in t[3].items() if m(x) >= 0} for t in out],
        other=[m(t[4]) for t in out],
        where=sorted({a.unique_ptr for a in checked}) + (["objects in any order"] if bags else [])
        + (["maxLength"] if strings else []),
        bags=[t[5] for t in out],
        finite=[t[6] for t in out],
        strings=[t[7] for t in out],
    )
