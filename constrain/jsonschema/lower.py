"""Normal forms → a :class:`~constrain.grammar.ir.Grammar` over JSON lexemes.

One nonterminal per distinct child conjunction (so ``$ref`` recursion is grammar recursion);
string values, object keys and numbers are single terminals (byte DFAs), punctuation carries
the whitespace policy.  Lexing is the exact ``"all"`` policy with no ``%ignore``: whitespace
is part of the punctuation terminals and bounded, so no unbounded whitespace loop exists.

Objects (schema order): declared properties appear in the order the schema lists them, each
at most once, required ones always; required names that no ``properties`` declares have no
schema order and may come anywhere (each once); names the schema does not declare (where
``additionalProperties``/``patternProperties`` allow them) may appear between them.  With
``property_order="any"`` declared properties may come in any order (tracked as a set, so
each appears at most once).  An object with more than :data:`MAX_ANY_ORDER` declared and
required names (the set would need ``2**n`` states) repeats its members in the grammar
instead, and the matcher's value check keeps keys distinct and required names present
(:meth:`Lowering._bag_object`, :mod:`constrain.jsonschema.uniquecheck`); where the check
cannot be exact (a path shared with other object shapes, ``maxProperties``, undeclared names
that can get stuck) it keeps schema order: sound, but narrower than asked
(``bench/conformance_report.py`` counts what that loses).
``minProperties`` counts declared properties plus at most one undeclared name (a model could
repeat an undeclared name, and JSON keeps the last one, so only one of them is sure to
count); ``maxProperties`` counts all members.  Arrays: prefix items, the rest, ``minItems``/``maxItems`` and ``contains``
counts are tracked in the nonterminal; ``uniqueItems`` is enforced exactly when every item
is one of a small finite set of scalar values (the set of values used so far is tracked, see
:mod:`constrain.jsonschema.unique`), by the matcher's value check when every item is a string
with infinitely many completions (:mod:`constrain.jsonschema.uniquecheck`), and refused
otherwise (not context-free).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from constrain.errors import LimitExceeded, UnsupportedSchemaFeature
from constrain.grammar.dfa import ByteDFA
from constrain.grammar.ir import GrammarBuilder, Terminal
from constrain.grammar.regex import compile_regex, literal_dfa
from constrain.grammar.regex import any_string_dfa
from constrain.jsonschema.algebra import ANY_C, ArrC, ObjC, Val, all_strings
from constrain.jsonschema.normalize import Normalizer
from constrain.jsonschema.strings import json_literal_dfa, json_string_dfa

MAX_STATES_PER_SHAPE = 20_000
MAX_DFA_LENGTH = 256  # a length bound folded into a content DFA (pattern/format + maxLength)
CHUNK = 16
# one character of a JSON string literal, as the string DFAs spell it (see strings.py)
_JSON_CHAR = r'(?:[^"\\\x00-\x1f]|\\["\\/bfnrt]|\\u00[01][0-9a-fA-F])'
MAX_ANY_ORDER = 10
MAX_SOME = 4  # "some undeclared member breaks it" requirements in one object shape
MAX_CHECKED_MIN_LENGTH = 64  # a minLength folded into the content DFA when the check counts maxLength
MAX_BAG_REQUIRED = 6  # required names an any-order object with repeatable members tracks in its states
MAX_UNIQUE_RULES = 20_000  # rules of one uniqueItems shape (sets of used values x values)


@dataclass(frozen=True)
class Whitespace:
    """Spelling of the punctuation.  ``item``/``key`` are fixed separators (json.dumps
    ``separators=``); ``flexible`` > 0 allows up to that many whitespace bytes around each
    punctuation mark instead."""

    item: str = ","
    key: str = ":"
    flexible: int = 0


class _States:
    """Nonterminals for the states of one array/object shape, made on first use; ``todo``
    holds the states whose rules are still to be written."""

    def __init__(self, low: "Lowering", hint: str, what: str):
        self.low, self.hint, self.what = low, hint, what
        self.names: dict = {}
        self.todo: list = []

    def __call__(self, st) -> int:
        x = self.names.get(st)
        if x is None:
            if len(self.names) >= MAX_STATES_PER_SHAPE:
                raise LimitExceeded(f"{self.what} needs too many grammar states", limit="max_shape_states",
                                    value=MAX_STATES_PER_SHAPE)
            x = self.names[st] = self.low._fresh(self.hint)
            self.todo.append(st)
        return x


class Lowering:
    def __init__(self, norm: Normalizer, *, ws: Whitespace, property_order: str = "schema", no_bag=()):
        self.norm = norm
        self.ws = ws
        self.order = property_order
        self.b = GrammarBuilder("json-schema")
        self._nt: dict[frozenset, int] = {}
        self._todo: list[tuple[int, frozenset]] = []
        self._terms: dict[str, int] = {}
        self._n = 0
        self._punct = self._make_punct()
        self._item_values_memo: dict = {}
        #: array shapes lowered; those whose uniqueItems a value check enforces; those refused
        self.arrays: set = set()
        self.checked: dict = {}
        self.unique_refused: set = set()
        #: object shapes lowered; those in any order by the check (shape -> its check spec); those
        #: that must keep schema order (a path state mixes them with other objects)
        self.objects: set = set()
        self.bags: dict = {}
        self.no_bag: set = set(no_bag)
        #: string shapes whose maxLength the value check counts: StrPart -> (content DFA, maxLength)
        self.len_checked: dict = {}

    # ------------------------------------------------------------------ terminals
    def _term(self, key: str, make, kind: str = "regex", source: str = "") -> int:
        t = self._terms.get(key)
        if t is None:
            name = f"T{len(self._terms)}_{source[:24]}" if source else f"T{len(self._terms)}"
            t = self.b.terminal(Terminal(name, make(), kind=kind, source=source or key))
            self._terms[key] = t
        return t

    def _make_punct(self) -> dict:
        ws = self.ws
        if ws.flexible:
            w = f"[ \\t\\n\\r]{{0,{ws.flexible}}}"
            spec = {"{": r"\{" + w, "}": w + r"\}", "[": r"\[" + w, "]": w + r"\]", ",": w + "," + w,
                    ":": w + ":" + w, "{}": r"\{" + w + r"\}", "[]": r"\[" + w + r"\]"}
            return {k: self._term("P" + k, lambda v=v: compile_regex(v), "regex", k) for k, v in spec.items()}
        spec = {"{": "{", "}": "}", "[": "[", "]": "]", ",": ws.item, ":": ws.key, "{}": "{}", "[]": "[]"}
        return {k: self._term("P" + k, lambda v=v: literal_dfa(v), "literal", v) for k, v in spec.items()}

    def _string_term(self, content) -> int:
        fp = content.fingerprint()
        return self._term("S" + fp, lambda: json_string_dfa(content), "regex", "string")

    def _literal_string_term(self, text: str) -> int:
        """The terminal of the JSON string ``text`` (a key, an enum or const string): the same
        terminal as ``_string_term(literal_dfa(text))``, built directly when its spelling is
        unique (:func:`json_literal_dfa`)."""
        content = literal_dfa(text)

        def make() -> ByteDFA:
            d = json_literal_dfa(text)
            return json_string_dfa(content) if d is None else d

        return self._term("S" + content.fingerprint(), make, "regex", "string")

    def _number_term(self, dfa) -> int:
        return self._term("N" + dfa.fingerprint(), lambda: dfa, "regex", "number")

    def _lit(self, text: str) -> int:
        return self._term("L" + text, lambda: literal_dfa(text), "literal", text)

    def _fresh(self, hint: str) -> int:
        self._n += 1
        return self.b.nonterminal(f"{hint}{self._n}")

    # ------------------------------------------------------------------ driver
    def nt(self, conj: frozenset) -> int:
        n = self._nt.get(conj)
        if n is None:
            n = self._nt[conj] = self._fresh("v")
            self._todo.append((n, conj))
        return n

    def build(self, root: frozenset):
        start = self.nt(root)
        from constrain.limits import check_deadline

        while self._todo:
            check_deadline()
            n, conj = self._todo.pop()
            self._value(n, self.norm.conj(conj), conj)
        grammar = self.b.build(start, lexing="all")
        if self.checked or self.bags or self.len_checked:
            from dataclasses import replace

            from constrain.jsonschema.uniquecheck import build

            refused = self.unique_refused
            vc = build(self.norm, root, lowered=self.arrays, checked=self.checked,
                       allows_duplicates=lambda a: not a.unique or a in refused,
                       objects=self.objects, bags=self.bags, strings=self.len_checked)
            if vc is not None:
                grammar = replace(grammar, value_check=vc, _fp=[])
            else:  # lenient, and the check was refused: what it would have enforced is dropped too
                said = {(k, p) for k, p, _ in self.norm.unenforced}
                for kw, ptr in sorted({("uniqueItems", a.unique_ptr) for a in self.checked} |
                                      ({("maxLength", "")} if self.len_checked else set())):
                    if (kw, ptr) not in said:
                        self.norm.unenforced.append((kw, ptr, "dropped with the value check"))
        return grammar

    # ------------------------------------------------------------------ one value
    def _value(self, n: int, v: Val, conj) -> None:
        b = self.b
        if v.null:
            b.rule(n, [self._lit("null")])
        for x in sorted(v.bools):
            b.rule(n, [self._lit("true" if x else "false")])
        if v.number is not None and not v.number.is_empty():
            b.rule(n, [self._number_term(v.number)])
        if v.string is not None and not v.string.is_empty():
            self._string(n, v.string)
        for a in v.arrays:
            self._array(n, a)
        for o in v.objects:
            self._object(n, o)

    # ------------------------------------------------------------------ strings
    def _full(self, part):
        try:
            return part.full_dfa()
        except LimitExceeded as e:
            self.norm.refuse("maxLength", "", f"a length bound together with pattern/format: {e}")
            return part.dfa

    def _string_rule(self, n: int, dfa) -> None:
        # a length bound together with a pattern/format can leave no string at all (found by the
        # fuzz suite: minLength 3 with ^[0-9]{2}$); then this value has no string alternative
        if not dfa.is_empty():
            self.b.rule(n, [self._string_term(dfa)])

    def _string(self, n: int, part) -> None:
        if part.length is None:
            self._string_rule(n, part.dfa)
            return
        lo, hi = part.length
        from constrain.limits import current_limits

        huge = hi is not None and hi > current_limits().max_string_length
        if part.dfa is not any_string_dfa() or huge:
            if (hi if hi is not None else lo) <= MAX_DFA_LENGTH:
                try:
                    self._string_rule(n, part.full_dfa())
                    return
                except LimitExceeded:
                    pass
            # the product of the content automaton and a length counter is too large: the
            # grammar keeps the content (and a small minLength), the matcher's value check counts
            # code points up to maxLength (constrain.grammar.checks)
            if hi is not None and lo <= MAX_CHECKED_MIN_LENGTH:
                from constrain.jsonschema.strings import length_dfa

                dfa = part.dfa if lo == 0 else part.dfa.intersect(length_dfa(lo, None))
                if not dfa.is_empty():
                    self.len_checked[part] = (dfa, hi)
                    self._string_rule(n, dfa)
                return
            self.norm.refuse("maxLength" if hi is not None else "minLength", "",
                             f"a length bound over {MAX_DFA_LENGTH} (or a large product automaton) together "
                             f"with pattern/format/enum, and a minLength over {MAX_CHECKED_MIN_LENGTH}, "
                             "is not supported")
            self._string_rule(n, part.dfa)
            return
        self._counted_string(n, *part.length)

    def _counted_string(self, n: int, lo: int, hi: int | None) -> None:
        """Any string of lo..hi code points, counted by rules over 16-character chunks: the
        grammar grows with hi/16 and no automaton ever counts (see :class:`StrPart`)."""
        K = CHUNK
        quote = self._lit('"')
        char = self._term("Cchar", lambda: compile_regex(_JSON_CHAR), "regex", "char")
        chunk = self._term(f"Cchunk{K}", lambda: compile_regex(f"{_JSON_CHAR}{{{K}}}"), "regex", f"chunk{K}")
        body: dict = {}
        tails: dict = {}

        def T(a, b):  # a..b single characters, then the closing quote
            x = tails.get((a, b))
            if x is None:
                x = tails[(a, b)] = self._fresh("tail")
                if a == 0:
                    self.b.rule(x, [quote])
                if b > 0:
                    self.b.rule(x, [char, T(max(a - 1, 0), b - 1)])
            return x

        qcap = -(-lo // K) if hi is None else hi // K
        for q in range(qcap + 1):
            body[q] = self._fresh("str")
        for q in range(qcap + 1):
            x = body[q]
            if hi is None:
                self.b.rule(x, [chunk, body[min(q + 1, qcap)]])
                a, b = max(0, lo - q * K), K - 1
            else:
                if (q + 1) * K <= hi:
                    self.b.rule(x, [chunk, body[q + 1]])
                a, b = max(0, lo - q * K), min(K - 1, hi - q * K)
            if a <= b:
                self.b.rule(x, [T(a, b)])
        self.b.rule(n, [quote, body[0]])

    # ------------------------------------------------------------------ arrays
    def _array(self, n: int, a: ArrC) -> None:
        self.arrays.add(a)
        if a.unique and (a.max is None or a.max > 1) and a not in self.checked:
            from constrain.jsonschema.unique import NotFinite
            from constrain.jsonschema.uniquecheck import NotCheckable, checkable_items

            try:
                self._unique_array(n, a)
                return
            except NotFinite as e:
                try:
                    spec = checkable_items(self.norm, a)
                except NotCheckable as e2:
                    self.unique_refused.add(a)
                    self.norm.refuse("uniqueItems", a.unique_ptr,
                                     f"uniqueness of array items is enforced only when the items are a small "
                                     f"finite set of scalar values, or strings (checked token by token), and "
                                     f"{e.args[0]} and {e2.args[0]}; not enforced")
                    if self.norm.strict:
                        return
                else:
                    # the grammar allows duplicates; the matcher's tracker rejects them
                    # (constrain.jsonschema.uniquecheck builds it after the grammar)
                    self.checked[a] = spec
        P = self._punct
        k = len(a.prefix)
        cap_i = max(k, a.min) if a.max is None else a.max
        caps = [(mx + 1 if mx is not None else mn) for _, mn, mx in a.contains]
        start = (0,) + (0,) * len(a.contains)

        def accepting(st):
            i, cs = st[0], st[1:]
            return i >= a.min and all(c >= mn for c, (_, mn, _) in zip(cs, a.contains)) and \
                all(mx is None or c <= mx for c, (_, _, mx) in zip(cs, a.contains))

        def moves(st):
            """(element conjunction, next state) pairs."""
            i, cs = st[0], st[1:]
            if a.max is not None and i >= a.max:
                return []
            base = a.at(i)
            out = []
            for bits in itertools.product((True, False), repeat=len(a.contains)):
                c = set(base)
                ncs = []
                ok = True
                for hit, cnt, (cc, mn, mx) in zip(bits, cs, a.contains):
                    if hit:
                        c |= cc
                        cnt = min(cnt + 1, caps[len(ncs)])
                        if mx is not None and cnt > mx:
                            ok = False
                    else:
                        neg = self._negate_conj(cc)
                        if neg is None:
                            ok = False
                        else:
                            c |= neg
                    ncs.append(cnt)
                if ok:
                    out.append((frozenset(c), (min(i + 1, cap_i),) + tuple(ncs)))
            return out

        # A(st): after at least one element, in state st
        A = _States(self, "arr", "array shape (maxItems/contains counts)")
        names, todo = A.names, A.todo

        if accepting(start):
            self.b.rule(n, [P["[]"]])
        for c, nxt in moves(start):
            self.b.rule(n, [P["["], self.nt(c), A(nxt)])
        while todo:
            st = todo.pop()
            x = names[st]
            if accepting(st):
                self.b.rule(x, [P["]"]])
            for c, nxt in moves(st):
                self.b.rule(x, [P[","], self.nt(c), A(nxt)])

    def _item_values(self, conj: frozenset) -> dict:
        """``{value key: terminal}`` for the values an item under ``conj`` may take (see
        :mod:`constrain.jsonschema.unique`); raises NotFinite."""
        from constrain.jsonschema.algebra import Val
        from constrain.jsonschema.unique import NotFinite, number_values, string_values

        memo = self._item_values_memo
        if conj in memo:
            return memo[conj]
        v = self.norm.conj(conj)
        if (v.arrays or v.objects) and not self.norm.is_empty(Val(arrays=v.arrays, objects=v.objects), depth=1):
            raise NotFinite("the items may be arrays or objects (or anything)")
        out = {}
        if v.null:
            out[("null",)] = self._lit("null")
        for x in sorted(v.bools):
            out[("bool", x)] = self._lit("true" if x else "false")
        if v.number is not None and not v.number.is_empty():
            for x, d in number_values(v.number):
                out[("num", x)] = self._number_term(d)
        if v.string is not None and not v.string.is_empty():
            for x in string_values(v.string):
                out[("str", x)] = self._literal_string_term(x)
        memo[conj] = out
        return out

    def _unique_array(self, n: int, a: ArrC) -> None:
        """Arrays of pairwise distinct items, each from a small finite set of values: the state
        is the set of values used so far (so the length is its size) and the contains counts."""
        from constrain.jsonschema.unique import NotFinite

        P = self._punct
        k = len(a.prefix)
        span = k + 1 if a.max is None else min(a.max, k + 1)  # position classes in use
        vals = [self._item_values(a.prefix[i] if i < k else a.items) for i in range(span)]
        universe: dict = {}
        for vs in vals:
            for key in vs:
                universe.setdefault(key, len(universe))
        nu = len(universe)
        longest = nu if a.max is None else min(a.max, nu)
        hits = []  # per contains: per position class, the value keys it counts
        for cc, _, _ in a.contains:
            per = []
            for i in range(span):
                c = (a.prefix[i] if i < k else a.items) | cc
                if self.norm.conj(c).string is not None and not self.norm.conj(c).string.exact:
                    raise NotFinite("a contains schema over a format enforced only as a subset cannot be counted")
                per.append(set(self._item_values(c)) if vals[i] else set())
            hits.append(per)
        from math import comb

        # rules: one per (set of used values, next value), plus a close per set
        rules = sum(comb(nu, j) * (nu - j + 1) for j in range(longest)) + comb(nu, longest)
        for _, mn, mx in a.contains:
            rules *= (mx + 2 if mx is not None else mn + 1)
        if rules > MAX_UNIQUE_RULES:
            raise NotFinite(f"its {nu} distinct item values make too many sets of used values "
                            f"(over {MAX_UNIQUE_RULES} grammar rules)")
        caps = [(mx + 1 if mx is not None else mn) for _, mn, mx in a.contains]

        def accepting(st):
            mask, cs = st
            return bin(mask).count("1") >= a.min and all(
                c >= mn and (mx is None or c <= mx) for c, (_, mn, mx) in zip(cs, a.contains))

        def moves(st):
            mask, cs = st
            i = bin(mask).count("1")
            if a.max is not None and i >= a.max:
                return []
            p = min(i, k)
            out = []
            for key, term in vals[p].items():
                bit = 1 << universe[key]
                if mask & bit:
                    continue
                ncs = []
                for j, cnt in enumerate(cs):
                    if key in hits[j][p]:
                        cnt = min(cnt + 1, caps[j])
                    ncs.append(cnt)
                if any(mx is not None and c > mx for c, (_, _, mx) in zip(ncs, a.contains)):
                    continue
                out.append((term, (mask | bit, tuple(ncs))))
            return out

        A = _States(self, "uarr", "array shape (uniqueItems)")
        start = (0, (0,) * len(a.contains))
        if accepting(start):
            self.b.rule(n, [P["[]"]])
        for term, nxt in moves(start):
            self.b.rule(n, [P["["], term, A(nxt)])
        while A.todo:
            st = A.todo.pop()
            x = A.names[st]
            if accepting(st):
                self.b.rule(x, [P["]"]])
            for term, nxt in moves(st):
                self.b.rule(x, [P[","], term, A(nxt)])

    def _negate_conj(self, c: frozenset):
        """¬(l1 ∧ l2 ...) as one conjunction, when c is a single literal; else None (skip)."""
        if len(c) == 1:
            (loc, pos), = c
            return frozenset({(loc, not pos)})
        if not c:
            return None  # ¬any = nothing
        raise UnsupportedSchemaFeature("contains with a combined item schema is not supported", pointer="")

    # ------------------------------------------------------------------ objects
    def _object(self, n: int, o: ObjC) -> None:
        self.objects.add(o)
        if o.required & o.forbidden:
            return
        alg = self.norm.alg
        P = self._punct
        names_dfa = all_strings().dfa
        for c in o.names:
            v = self.norm.conj(c)
            if v.string is None:
                names_dfa = None
                break
            names_dfa = names_dfa.intersect(self._full(v.string))
        declared = [(nm, c) for nm, c in o.props if nm not in o.forbidden]
        dnames = {nm for nm, _ in declared}
        missing = o.required - dnames
        # required names no schema declares have no schema order: they may come in any order
        free = [(r, alg.undeclared_conj(o, r)) for r in
                [r for r in o.req_order if r in missing] + sorted(missing - set(o.req_order))]
        if names_dfa is not None:
            for nm, _ in free:
                if not names_dfa.matches(nm.encode("utf-8")):
                    return  # a required name the propertyNames schema forbids: no such object
            kept = []
            for nm, c in declared:
                if names_dfa.matches(nm.encode("utf-8")):
                    kept.append((nm, c))
                elif nm in o.required:
                    return
            declared = kept
        if self.order == "any" and len(declared) + len(free) <= MAX_ANY_ORDER:
            free = declared + free
            declared = []
        elif self.order == "any" and o.max is None and not o.some and o not in self.no_bag:
            if self._bag_object(n, o, declared + free, names_dfa):
                return
        if len(free) > MAX_ANY_ORDER:
            raise UnsupportedSchemaFeature(
                f"more than {MAX_ANY_ORDER} required names without a property schema (or in any-order mode)",
                pointer="")
        if len(o.some) > MAX_SOME:
            raise UnsupportedSchemaFeature(f"more than {MAX_SOME} complements of additionalProperties/"
                                           "patternProperties meet in one object", pointer="")

        def variants(c, js):
            """(value nonterminal, bits of ``o.some`` it satisfies): a member whose name is in the
            classes ``js`` may satisfy any subset of their conjunctions."""
            out = []
            for r in range(len(js) + 1):
                for sub in itertools.combinations(js, r):
                    cc = frozenset(c).union(*(o.some[j][1] for j in sub))
                    out.append((self.nt(cc), sum(1 << j for j in sub)))
            return out

        def named(nm):
            return [j for j, (names, _) in enumerate(o.some) if names.matches(nm.encode("utf-8"))]

        ordered = [(self._literal_string_term(nm), variants(c, named(nm)), nm in o.required) for nm, c in declared]
        unordered = [(self._literal_string_term(nm), variants(c, named(nm)), nm in o.required) for nm, c in free]
        all_names = {nm for nm, _ in declared} | {nm for nm, _ in free}
        regions = self._regions(o, all_names | set(o.forbidden), names_dfa)
        extras = []
        for d, c in regions:
            # split the region by the name classes of o.some, so each piece knows which it is in
            for bits in itertools.product((True, False), repeat=len(o.some)):
                dd = d
                for (names, _), hit in zip(o.some, bits):
                    dd = dd.intersect(names if hit else names.complement(utf8=True))
                    if dd.is_empty():
                        break
                if not dd.is_empty():
                    extras.append((self._string_term(dd), variants(c, [j for j, hit in enumerate(bits) if hit])))
        full = (1 << len(o.some)) - 1
        count_decl = o.min > 0
        count_all = o.max is not None
        lo, hi = o.min, o.max
        m = len(ordered)
        req_mask = 0
        for i, (_, _, req) in enumerate(unordered):
            if req:
                req_mask |= 1 << i
        last_req = max([i + 1 for i, (_, _, req) in enumerate(ordered) if req], default=0)

        # state: (ordered position, emitted unordered set, first, (declared count, any undeclared
        # yet), all count).  Undeclared names add at most 1 towards minProperties: a repeated
        # name collapses when parsed, but one present name always counts.
        def close_ok(st):
            pos, mask, first, d, a, sat = st
            if pos < last_req or mask & req_mask != req_mask or sat != full:
                return False
            return d[0] + d[1] >= lo and (hi is None or a <= hi)

        def bump(d, a, decl):
            if count_decl:
                d = (min(d[0] + 1, lo), d[1]) if decl else (d[0], 1)
            if count_all:
                a += 1
                if a > hi:
                    return None
            return d, a

        X = _States(self, "obj", "object shape")
        names, todo = X.names, X.todo

        start = (0, 0, True, (0, 0), 0, 0)
        self.b.rule(n, [P["{"], X(start)])
        if close_ok(start):
            self.b.rule(n, [P["{}"]])
        while todo:
            st = todo.pop()
            x = names[st]
            pos, mask, first, d, a, sat = st
            sep = [] if first else [P[","]]
            if close_ok(st) and not first:
                self.b.rule(x, [P["}"]])
            for j, (kt, vs, req) in enumerate(unordered):
                if mask >> j & 1:
                    continue
                nb = bump(d, a, True)
                if nb is not None:
                    for vt, bits in vs:
                        self.b.rule(x, sep + [kt, P[":"], vt, X((pos, mask | 1 << j, False) + nb + (sat | bits,))])
            if pos < m:
                kt, vs, req = ordered[pos]
                nb = bump(d, a, True)
                if nb is not None:
                    for vt, bits in vs:
                        self.b.rule(x, sep + [kt, P[":"], vt, X((pos + 1, mask, False) + nb + (sat | bits,))])
                if not req:
                    self.b.rule(x, [X((pos + 1, mask, first, d, a, sat))])
            for kt, vs in extras:
                nb = bump(d, a, False)
                if nb is not None:
                    for vt, bits in vs:
                        self.b.rule(x, sep + [kt, P[":"], vt, X((pos, mask, False) + nb + (sat | bits,))])

    def _bag_object(self, n: int, o: ObjC, members: list, names_dfa) -> bool:
        """Any order for an object with more names than a set of them can be a grammar state:
        members are repeatable here and the matcher's :class:`~constrain.grammar.checks.DistinctCheck`
        rejects a repeated key and a key no unused name completes.  Required names are tracked
        by the grammar when they are few (:data:`MAX_BAG_REQUIRED`: then several shapes with the
        same names may share a path, e.g. ``anyOf`` over ``required`` sets), else by the check
        (a ``}`` before every required name).  False (the caller keeps schema order) when an
        undeclared name could get stuck with finitely many completions, which the check cannot see."""
        from constrain.jsonschema.uniquecheck import inexhaustible

        all_names = {nm for nm, _ in members}
        regions = self._regions(o, all_names | set(o.forbidden), names_dfa)
        if not all(inexhaustible(d) for d, _ in regions):
            return False
        P = self._punct
        lo = o.min
        req = sorted(o.required) if len(o.required) <= MAX_BAG_REQUIRED else []
        bit = {nm: 1 << i for i, nm in enumerate(req)}
        full = (1 << len(req)) - 1
        terms = [(self._literal_string_term(nm), self.nt(c), True, bit.get(nm, 0)) for nm, c in members]
        terms += [(self._string_term(d), self.nt(c), False, 0) for d, c in regions]

        # state: (first, declared members counted up to minProperties, any undeclared yet, required
        # names seen); keys are distinct (the check), so the counts are exact
        def bump(st, decl, b):
            _, d, u, r = st
            return (False, min(d + 1, lo), u, r | b) if decl else (False, d, 1, r)

        X = _States(self, "bag", "object shape (any order)")
        start = (True, 0, 0, 0)
        self.b.rule(n, [P["{"], X(start)])
        if lo == 0 and not o.required:
            self.b.rule(n, [P["{}"]])
        while X.todo:
            st = X.todo.pop()
            x = X.names[st]
            first, d, u, r = st
            if not first and d + u >= lo and r == full:
                self.b.rule(x, [P["}"]])
            sep = [] if first else [P[","]]
            for kt, vt, decl, b in terms:
                self.b.rule(x, sep + [kt, P[":"], vt, X(bump(st, decl, b))])
        self.bags[o] = (frozenset(all_names), frozenset() if req or not o.required else frozenset(o.required),
                        bool(regions))
        return True

    def _regions(self, o: ObjC, declared: set, names_dfa):
        """Undeclared names, split by which patterns they match: [(key content DFA, value Conj)]."""
        if names_dfa is None:
            return []
        pats = []
        for patterns, _ in o.rest:
            for p, _ in patterns:
                if p not in pats:
                    pats.append(p)
        if len(pats) > 6:
            raise UnsupportedSchemaFeature("more than 6 patternProperties patterns in one object", pointer="")
        base = names_dfa
        if declared:
            from constrain.grammar.regex import compile_choices

            base = base.intersect(compile_choices(sorted(declared)).complement(utf8=True))
        out = []
        pdfa = {p: self.norm.pattern_dfa(p) for p in pats}
        for bits in itertools.product((True, False), repeat=len(pats)):
            d = base
            for p, hit in zip(pats, bits):
                d = d.intersect(pdfa[p] if hit else pdfa[p].complement(utf8=True))
                if d.is_empty():
                    break
            if d.is_empty():
                continue
            hits = {p for p, hit in zip(pats, bits) if hit}
            conj = set()
            for patterns, additional in o.rest:
                matched = [c for p, c in patterns if p in hits]
                if matched:
                    for c in matched:
                        conj |= c
                else:
                    conj |= additional
            conj = frozenset(conj)
            if self.norm.is_empty(self.norm.conj(conj), depth=1):
                continue
            out.append((d, conj))
        return out
