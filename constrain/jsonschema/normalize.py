"""JSON Schema keywords → :class:`~constrain.jsonschema.algebra.Val`, one location at a time.

Each keyword is enforced exactly, or refused by name and JSON pointer (``strict``), or — in
lenient mode only — recorded as not enforced and dropped.  Annotation keywords (``title``,
``description``, ``default``, ``examples``, ``$comment``, ``readOnly`` …) do not constrain
values and are ignored, as the specification says; so are unknown keywords (the spec's rule),
but they are listed in :attr:`Normalizer.unknown` so a caller can warn about typos.
"""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

from constrain.errors import ConstrainError, LimitExceeded, UnsupportedSchemaFeature
from constrain.jsonschema.algebra import (
    ANY_C,
    NOTHING,
    Algebra,
    ArrC,
    ObjC,
    StrPart,
    Val,
    all_numbers,
    all_strings,
    any_val,
    and_str,
    const_string,
    to_fraction,
)
from constrain.jsonschema.resolve import SchemaDocument

ANNOTATIONS = frozenset({
    "$schema", "$id", "id", "$defs", "definitions", "$anchor", "$dynamicAnchor", "$recursiveAnchor", "$comment",
    "$vocabulary", "title", "description", "default", "examples", "deprecated", "readOnly", "writeOnly",
    "contentMediaType", "contentEncoding", "contentSchema", "discriminator", "nullable_annotation",
})
TYPE_NAMES = ("null", "boolean", "object", "array", "number", "integer", "string")

_STRING_KW = ("minLength", "maxLength", "pattern", "format")
#: OpenAPI's numeric formats (OpenAPI 3.1 "Data Types"): ``int32`` / ``int64`` make a number an
#: integer in that range (exact, by the number automata); ``float`` / ``double`` say only that it
#: is a number.  They constrain numbers only: a string with one of them is unconstrained by it,
#: as JSON Schema applies a format to the instance types it is defined for.
NUMERIC_FORMATS = {"int32": (-(2**31), 2**31 - 1), "int64": (-(2**63), 2**63 - 1), "float": None, "double": None}

_NUMBER_KW = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf")
_ARRAY_KW = ("items", "prefixItems", "additionalItems", "minItems", "maxItems", "contains", "minContains",
             "maxContains", "uniqueItems")
_OBJECT_KW = ("properties", "patternProperties", "additionalProperties", "required", "propertyNames",
              "minProperties", "maxProperties", "dependentRequired", "dependentSchemas", "dependencies")
_COMBINATORS = ("allOf", "anyOf", "oneOf", "not", "if", "then", "else", "$ref", "$dynamicRef", "enum", "const",
                "type")
KNOWN = frozenset(_STRING_KW + _NUMBER_KW + _ARRAY_KW + _OBJECT_KW + _COMBINATORS) | ANNOTATIONS
REFUSED = ("$recursiveRef", "unevaluatedProperties", "unevaluatedItems")

MAX_CHECKED_LENGTH = 2 ** 53  # the largest maxLength the value check counts (beyond: refused as a cap)
MAX_LENGTH_STATES = 4096  # code points a length automaton may count before it is refused


class Normalizer:
    """Turns locations and conjunctions of locations into :class:`Val` (memoised)."""

    def __init__(self, doc: SchemaDocument, *, strict: bool = True):
        from constrain.jsonschema.ecma import pattern_dfa

        self.doc = doc
        self.strict = strict
        self.pattern_dfa = pattern_dfa
        self.alg = Algebra(pattern_dfa)
        self.unenforced: list[tuple[str, str, str]] = []  # (keyword, pointer, why)
        self.unknown: list[tuple[str, str]] = []
        self._loc_memo: dict[int, Val] = {}
        self._conj_memo: dict[frozenset, Val] = {}
        self._busy: set[int] = set()

    # ------------------------------------------------------------------ errors
    def refuse(self, keyword: str, pointer: str, why: str) -> None:
        """Strict: raise.  Lenient: record and let the caller drop the keyword."""
        if self.strict:
            e = UnsupportedSchemaFeature(f"{keyword}: {why}", pointer=pointer)
            e.refused = True  # (the enum/const fallback of loc() only follows these)
            raise e
        self.unenforced.append((keyword, pointer, why))

    # ------------------------------------------------------------------ entry points
    def conj(self, c: frozenset) -> Val:
        v = self._conj_memo.get(c)
        if v is not None:
            return v
        out = any_val()
        for loc, pos in sorted(c):
            part = self.loc(loc)
            if not pos:
                part = self.negate(part, self.doc.locs[loc].pointer)
            out = self.alg.and_(out, part)
        self._conj_memo[c] = out
        return out

    def negate(self, v: Val, pointer: str) -> Val:
        try:
            return self.alg.not_(v, pointer)
        except UnsupportedSchemaFeature as e:
            self.refuse("not", pointer, e.message)
            return any_val()

    def loc(self, loc: int) -> Val:
        v = self._loc_memo.get(loc)
        if v is not None:
            return v
        if loc in self._busy:
            p = self.doc.locs[loc].pointer
            raise UnsupportedSchemaFeature(
                "this schema refers to itself through allOf/anyOf/oneOf/not/$ref without going through a "
                "property or an array item, so it has no finite meaning", pointer=p)
        from constrain.limits import check_deadline

        check_deadline()
        self._busy.add(loc)
        n_unenforced = len(self.unenforced)
        try:
            try:
                v = self._schema(loc)
            except UnsupportedSchemaFeature as e:
                if not getattr(e, "refused", False):  # a bad schema, not something without a finite form
                    raise
                v = self._by_values(loc, n_unenforced)
                if v is None:
                    raise
            else:
                if len(self.unenforced) > n_unenforced:  # lenient: something was dropped
                    v = self._by_values(loc, n_unenforced) or v
        finally:
            self._busy.discard(loc)
        self._loc_memo[loc] = v
        return v

    def _by_values(self, loc: int, n_unenforced: int) -> Val | None:
        """When ``loc`` cannot be normalised (a complement with no finite form, too many shapes …)
        but only ever accepts values of a finite list — an ``enum``/``const`` in it or in a
        conjunctive part (``allOf``, ``$ref``) — its value set is those of the listed values that
        ``jsonschema`` itself validates against the whole sub-schema.  Exact (the reference
        semantics decides each value) and free of complements.  None when there is no such list,
        or the document uses dynamic references (their meaning depends on the path taken)."""
        if self.doc.dynamic:
            return None
        values = self._listed_values(loc, set())
        if values is None:
            return None
        L = self.doc.locs[loc]
        import jsonschema

        cls = {2020: jsonschema.Draft202012Validator, 2019: jsonschema.Draft201909Validator,
               7: jsonschema.Draft7Validator, 6: jsonschema.Draft6Validator,
               4: jsonschema.Draft4Validator}.get(L.draft, jsonschema.Draft202012Validator)
        try:
            val = cls(L.schema, format_checker=cls.FORMAT_CHECKER, _resolver=L.resolver)
            kept = [x for x in values if val.is_valid(x)]
        except Exception:  # noqa: BLE001 - a schema jsonschema cannot evaluate: keep the refusal
            return None
        del self.unenforced[n_unenforced:]
        return self._enum(kept, loc, f"{L.pointer}/enum") if kept else NOTHING

    def _listed_values(self, loc: int, seen: set):
        """The ``enum``/``const`` values some conjunctive part of ``loc`` restricts it to, or None."""
        if loc in seen:
            return None
        seen.add(loc)
        L = self.doc.locs[loc]
        s = L.schema
        if not isinstance(s, dict):
            return None
        if "const" in s:
            return [s["const"]]
        if isinstance(s.get("enum"), list):
            return list(s["enum"])
        parts = []
        if "$ref" in s:
            try:
                parts.append(self.doc.ref(loc, s["$ref"]))
            except ConstrainError:
                pass
        if L.draft > 7 or "$ref" not in s:
            allof = s.get("allOf")
            if isinstance(allof, list):
                parts += [self.doc.child(loc, sub, "allOf", i) for i, sub in enumerate(allof)]
        for p in parts:
            v = self._listed_values(p, seen)
            if v is not None:
                return v
        return None

    # ------------------------------------------------------------------ one schema object
    def _schema(self, loc: int) -> Val:
        doc = self.doc
        L = doc.locs[loc]
        s = L.schema
        if s is True:
            return any_val()
        if s is False:
            return NOTHING
        ptr = L.pointer
        if "$ref" in s and L.draft <= 7:
            return self.loc(doc.ref(loc, s["$ref"]))  # draft 7 and older: siblings of $ref are ignored
        for k in s:
            if k in REFUSED:
                if k.startswith("unevaluated"):
                    continue
                self.refuse(k, f"{ptr}/{k}", "not supported (dynamic/unevaluated keywords need evaluation state)")
            elif k in ("contentMediaType", "contentEncoding") and L.draft <= 7:
                self.refuse(k, f"{ptr}/{k}", "draft 7 lets validators assert content encodings; not enforced")
            elif k not in KNOWN:
                self.unknown.append((k, ptr))

        base = any_val()
        st = self._string(loc, s, ptr)
        if st is not all_strings():
            base = replace(base, string=st)
        num = self._number(loc, s, ptr)
        if num is not None:
            base = replace(base, number=num)
        arr = self._array(loc, s, ptr)
        if arr is not None:
            base = replace(base, arrays=(arr,))
        objs = self._object(loc, s, ptr)
        if objs is not None:
            base = replace(base, objects=objs)
        out = base
        if "type" in s:
            out = self.alg.and_(out, self._type(s["type"], f"{ptr}/type", draft=L.draft))
        if "const" in s:
            out = self.alg.and_(out, self.const(s["const"], loc, f"{ptr}/const"))
        if "enum" in s:
            vals = s["enum"]
            if not isinstance(vals, list):
                raise UnsupportedSchemaFeature("enum must be an array", pointer=f"{ptr}/enum")
            out = self.alg.and_(out, self._enum(vals, loc, f"{ptr}/enum"))
        if "$ref" in s:
            out = self.alg.and_(out, self.loc(doc.ref(loc, s["$ref"])))
        if "$dynamicRef" in s:
            target = doc.dynamic_ref(loc, s["$dynamicRef"])
            if target is None:
                self.refuse("$dynamicRef", f"{ptr}/$dynamicRef",
                            "the anchor it names is defined more than once, so its target depends on the dynamic "
                            "scope; not supported")
            else:
                out = self.alg.and_(out, self.loc(target))
        for i, sub in enumerate(self._list(s, "allOf", ptr)):
            out = self.alg.and_(out, self.loc(doc.child(loc, sub, "allOf", i)))
        if "anyOf" in s:
            u = NOTHING
            for i, sub in enumerate(self._list(s, "anyOf", ptr)):
                u = self.alg.or_(u, self.loc(doc.child(loc, sub, "anyOf", i)))
            out = self.alg.and_(out, u)
        # oneOf / not / if need complements; they are taken only over the JSON types the sibling
        # keywords still allow (exact: ``out ∩ op(B) = out ∩ op(B ∩ types(out))``), so a branch's
        # object part, say, is never complemented when the siblings already rule objects out
        if "oneOf" in s:
            out = self.alg.and_(out, self._one_of(loc, s, ptr, out))
        if "not" in s:
            n_v = restrict_types(self.loc(doc.child(loc, s["not"], "not")), out)
            out = self.alg.and_(out, self.negate(n_v, f"{ptr}/not"))
        if "if" in s and ("then" in s or "else" in s):
            i_v = restrict_types(self.loc(doc.child(loc, s["if"], "if")), out)
            t_v = self.loc(doc.child(loc, s["then"], "then")) if "then" in s else any_val()
            e_v = self.loc(doc.child(loc, s["else"], "else")) if "else" in s else any_val()
            not_i = self.negate(i_v, f"{ptr}/if")
            out = self.alg.and_(out, self.alg.or_(self.alg.and_(i_v, t_v), self.alg.and_(not_i, e_v)))
        if "unevaluatedProperties" in s:
            c = frozenset({(doc.child(loc, s["unevaluatedProperties"], "unevaluatedProperties"), True)})
            out = replace(out, objects=tuple(self.alg.unevaluated_props(o, c) for o in out.objects))
        if "unevaluatedItems" in s:
            c = frozenset({(doc.child(loc, s["unevaluatedItems"], "unevaluatedItems"), True)})
            out = replace(out, arrays=tuple(self.alg.unevaluated_items(a, c) for a in out.arrays))
        return out

    @staticmethod
    def _list(s, key, ptr):
        v = s.get(key, [])
        if not isinstance(v, list) or (key != "allOf" and not v):
            raise UnsupportedSchemaFeature(f"{key} must be a non-empty array", pointer=f"{ptr}/{key}")
        return v

    def _one_of(self, loc: int, s, ptr: str, mask: Val | None = None) -> Val:
        """Exactly one branch, type by type: a JSON value has one type, so ``oneOf`` is the union
        over the types ``T`` of ``oneOf(B₁ ∩ T, …)``.  Per type, pairwise disjoint branches are a
        plain union; otherwise ``∪ᵢ (Aᵢ ∩ ⋂ⱼ≠ᵢ ¬Aⱼ)``, which needs complements of that type only
        (so an overlap between the branches' strings never asks for the complement of their
        objects' additionalProperties).  ``mask``: the sibling keywords' value set, whose types
        alone are kept (the caller intersects with it)."""
        vals = [self.loc(self.doc.child(loc, sub, "oneOf", i)) for i, sub in enumerate(self._list(s, "oneOf", ptr))]
        if mask is not None:
            vals = [restrict_types(v, mask) for v in vals]
        out = NOTHING
        for kind in _KINDS:
            parts = [p for p in (only_kind(v, kind) for v in vals) if not _trivially_empty(p)]
            # branch i only needs ¬branch j where the two may overlap: a discriminating const
            # makes most pairs disjoint, and each complement multiplies the shapes
            overlap = {(i, j) for i in range(len(parts)) for j in range(i + 1, len(parts))
                       if not self.is_empty(self.alg.and_(parts[i], parts[j]))}
            if not overlap:
                for p in parts:
                    out = self.alg.or_(out, p)
                continue
            negs = {}
            try:
                for j in sorted({j for pair in overlap for j in pair}):
                    negs[j] = self.alg.not_(parts[j], f"{ptr}/oneOf")
            except UnsupportedSchemaFeature as e:
                self.refuse("oneOf", f"{ptr}/oneOf", "branches may overlap and cannot be made disjoint: " + e.message)
                for p in parts:
                    out = self.alg.or_(out, p)
                continue
            for i, p in enumerate(parts):
                for j in range(len(parts)):
                    if (min(i, j), max(i, j)) in overlap:
                        p = self.alg.and_(p, negs[j])
                out = self.alg.or_(out, p)
        return out

    # ------------------------------------------------------------------ emptiness
    def is_empty(self, v: Val, depth: int = 3) -> bool:
        """True only when ``v`` is certainly empty (False when unsure)."""
        if v.null or v.bools or v.number is not None or v.string is not None:
            return False
        return all(self._arr_empty(a, depth) for a in v.arrays) and all(self._obj_empty(o, depth) for o in v.objects)

    def _obj_empty(self, o: ObjC, depth: int) -> bool:
        if o.required & o.forbidden or (o.max is not None and (o.min > o.max or len(o.required) > o.max)):
            return True
        if depth <= 0:
            return False
        for r in o.required:
            try:
                if self.is_empty(self.conj(self.alg.name_conj(o, r)), depth - 1):
                    return True
            except ConstrainError:
                return False
        return False

    def _arr_empty(self, a: ArrC, depth: int) -> bool:
        if a.max is not None and a.min > a.max:
            return True
        if a.max is not None and sum(mn for _, mn, _ in a.contains) > a.max and len(a.contains) == 1:
            return True
        if depth <= 0:
            return False
        for i in range(min(a.min, len(a.prefix) + 1)):
            try:
                if self.is_empty(self.conj(a.at(i)), depth - 1):
                    return True
            except ConstrainError:
                return False
        return False

    # ------------------------------------------------------------------ type, const
    def _type(self, t, ptr: str, *, draft: int = 2020) -> Val:
        names = t if isinstance(t, list) else [t]
        out = NOTHING
        for n in names:
            if n not in TYPE_NAMES:
                raise UnsupportedSchemaFeature(f"unknown type {n!r} (use one of {', '.join(TYPE_NAMES)})", pointer=ptr)
            if n == "null":
                v = Val(null=True)
            elif n == "boolean":
                v = Val(bools=frozenset((True, False)))
            elif n == "number":
                v = Val(number=all_numbers())
            elif n == "integer":
                from constrain.jsonschema.numbers import integer_literal_dfa, plain_integer_dfa

                # draft 4 counts only literals without fraction or exponent as integers (``5.0``
                # is a number there); later drafts count every integral value
                v = Val(number=plain_integer_dfa() if draft <= 4 else integer_literal_dfa())
            elif n == "string":
                v = Val(string=all_strings())
            elif n == "array":
                v = Val(arrays=(ArrC(),))
            else:
                v = Val(objects=(ObjC(),))
            out = self.alg.or_(out, v)
        return out

    def _enum(self, vals: list, loc: int, ptr: str) -> Val:
        """Union of consts, with all strings in one trie DFA and numbers unioned as a balanced
        tree (an enum of hundreds of strings must not cost hundreds of DFA products)."""
        from constrain.grammar.regex import compile_choices

        strings = [x for x in vals if isinstance(x, str)]
        nums = [self.const(x, loc, f"{ptr}/{i}").number for i, x in enumerate(vals)
                if isinstance(x, (int, float, Decimal)) and not isinstance(x, bool)]
        while len(nums) > 1:
            nums = [a.union(b) if b is not None else a for a, b in zip(nums[::2], nums[1::2] + [None])]
        try:
            sdfa = compile_choices(strings) if strings else None
        except LimitExceeded as e:
            raise LimitExceeded(e.message, limit=e.limit, value=e.value, pointer=ptr) from None
        e = Val(string=StrPart(sdfa, True) if strings else None, number=nums[0] if nums else None)
        for i, x in enumerate(vals):
            if x is None or isinstance(x, (bool, list, dict)):
                e = self.alg.or_(e, self.const(x, loc, f"{ptr}/{i}"))
        return e

    def const(self, x, loc: int, ptr: str) -> Val:
        """The set {x} (JSON equality: 1 == 1.0, false != 0)."""
        if x is None:
            return Val(null=True)
        if isinstance(x, bool):
            return Val(bools=frozenset((x,)))
        if isinstance(x, (int, float, Decimal)):
            from constrain.jsonschema.numbers import number_dfa

            f = to_fraction(x, ptr)
            return Val(number=number_dfa(minimum=f, maximum=f, pointer=ptr))
        if isinstance(x, str):
            try:
                return Val(string=const_string(x))
            except LimitExceeded as e:
                raise LimitExceeded(e.message, limit=e.limit, value=e.value, pointer=ptr) from None
        if isinstance(x, list):
            kids = tuple(frozenset({(self.doc.synthetic({"const": y}, f"{ptr}/{i}"), True)}) for i, y in enumerate(x))
            return Val(arrays=(ArrC(prefix=kids, items=frozenset({(self.doc.FALSE, True)}), min=len(x),
                                    max=len(x)),))
        if isinstance(x, dict):
            props = tuple((k, frozenset({(self.doc.synthetic({"const": y}, f"{ptr}/{k}"), True)})) for k, y in x.items())
            return Val(objects=(ObjC(props=props, rest=(((), frozenset({(self.doc.FALSE, True)})),),
                                     required=frozenset(x), req_order=tuple(x)),))
        raise UnsupportedSchemaFeature(f"const/enum value of type {type(x).__name__} is not JSON", pointer=ptr)

    # ------------------------------------------------------------------ strings
    def _string(self, loc: int, s, ptr: str) -> StrPart:
        part = all_strings()
        if not any(k in s for k in _STRING_KW):
            return part
        lo = s.get("minLength", 0)
        hi = s.get("maxLength")
        if not _is_count(lo) or (hi is not None and not _is_count(hi)):
            raise UnsupportedSchemaFeature("minLength/maxLength must be non-negative integers", pointer=ptr)
        lo, hi = _as_int(lo), _as_int(hi)
        cap = _limits().max_string_length
        # a maxLength over the cap (up to MAX_CHECKED_LENGTH) is counted by the matcher's value
        # check instead of grammar rules (Lowering._string), in O(1) per token; a minLength that
        # large would need the rules
        for key, x in (("minLength", lo), ("maxLength", hi)):
            if x is not None and x > (cap if key == "minLength" else max(cap, MAX_CHECKED_LENGTH)):
                if self.strict:
                    raise LimitExceeded(f"{key} {s[key]} is larger than the largest length counted exactly",
                                        limit="max_string_length", value=cap, pointer=f"{ptr}/{key}")
                self.refuse(key, f"{ptr}/{key}", f"{key} {x} is over the limit max_string_length={cap}")
                if key == "minLength":
                    lo = 0
                else:
                    hi = None
        if lo > 0 or hi is not None:
            if hi is not None and hi < lo:
                return None
            try:
                part = and_str(part, StrPart(all_strings().dfa, True, (lo, hi)))
            except LimitExceeded as e:
                self.refuse("maxLength" if hi is not None else "minLength", ptr, str(e))
        if "pattern" in s and part is not None:
            try:
                part = and_str(part, StrPart(self.pattern_dfa(s["pattern"], pointer=f"{ptr}/pattern"), True))
            except UnsupportedSchemaFeature as e:
                self.refuse("pattern", f"{ptr}/pattern", e.message)
        if "format" in s and part is not None and s["format"] not in NUMERIC_FORMATS:
            from constrain.jsonschema.formats import format_dfa, format_is_exact

            f = s["format"]
            d = format_dfa(f, pointer=f"{ptr}/format") if isinstance(f, str) else None
            if d is None:
                self.refuse("format", f"{ptr}/format", f"unknown format {f!r}")
            else:
                part = and_str(part, StrPart(d, format_is_exact(f)))
        return part

    # ------------------------------------------------------------------ numbers
    def _number(self, loc: int, s, ptr: str):
        fmt = NUMERIC_FORMATS.get(s.get("format")) if isinstance(s.get("format"), str) else None
        if not any(k in s for k in _NUMBER_KW) and fmt is None:
            return None
        from constrain.jsonschema.numbers import number_dfa

        kw = {}
        if fmt:  # an OpenAPI integer format: an integer within its range
            kw.update(integer=True, minimum=fmt[0], maximum=fmt[1])
        for key, arg in (("minimum", "minimum"), ("maximum", "maximum"), ("multipleOf", "multiple_of")):
            if key in s:
                x = to_fraction(s[key], f"{ptr}/{key}")
                if arg in kw:  # tightest of the format's range and the keyword
                    x = max(x, kw[arg]) if arg == "minimum" else min(x, kw[arg])
                kw[arg] = x
        for key, arg, incl in (("exclusiveMinimum", "exclusive_minimum", "minimum"),
                               ("exclusiveMaximum", "exclusive_maximum", "maximum")):
            if key in s:
                x = s[key]
                if isinstance(x, bool):  # draft 4: a flag on minimum/maximum
                    if x and incl in kw:
                        kw[arg] = kw.pop(incl)
                    continue
                kw[arg] = to_fraction(x, f"{ptr}/{key}")
        if "multiple_of" in kw and kw["multiple_of"] <= 0:
            raise UnsupportedSchemaFeature("multipleOf must be > 0", pointer=f"{ptr}/multipleOf")
        try:
            d = number_dfa(pointer=ptr, **kw)
        except LimitExceeded as e:
            self.refuse("multipleOf" if "multiple_of" in kw else "minimum", ptr, str(e))
            kw.pop("multiple_of", None)
            try:
                d = number_dfa(pointer=ptr, **kw)
            except LimitExceeded:  # the bounds themselves are too large to count (lenient only)
                from constrain.jsonschema.numbers import number_literal_dfa

                d = number_literal_dfa()
        return d

    # ------------------------------------------------------------------ arrays
    def _array(self, loc: int, s, ptr: str):
        if not any(k in s for k in _ARRAY_KW):
            return None
        doc = self.doc
        draft = doc.locs[loc].draft
        prefix: tuple = ()
        items = ANY_C

        def one(sub, *path):
            return frozenset({(doc.child(loc, sub, *path), True)})

        if draft >= 2020:
            if "prefixItems" in s:
                prefix = tuple(one(x, "prefixItems", i) for i, x in enumerate(s["prefixItems"]))
            if "items" in s:
                items = one(s["items"], "items")
        else:
            it = s.get("items")
            if isinstance(it, list):
                prefix = tuple(one(x, "items", i) for i, x in enumerate(it))
                if "additionalItems" in s:
                    items = one(s["additionalItems"], "additionalItems")
            elif it is not None:
                items = one(it, "items")
        lo = s.get("minItems", 0)
        hi = s.get("maxItems")
        if not _is_count(lo) or (hi is not None and not _is_count(hi)):
            raise UnsupportedSchemaFeature("minItems/maxItems must be non-negative integers", pointer=ptr)
        lo, hi = self._check_counts(s, ptr, ("minItems", "maxItems"), lo, hi)
        contains = ()
        if "contains" in s:
            cmin = s.get("minContains", 1) if draft >= 2019 else 1
            cmax = s.get("maxContains") if draft >= 2019 else None
            if not _is_count(cmin) or (cmax is not None and not _is_count(cmax)):
                raise UnsupportedSchemaFeature("minContains/maxContains must be non-negative integers", pointer=ptr)
            cmin, cmax = self._check_counts(s, ptr, ("minContains", "maxContains"), cmin, cmax)
            contains = ((one(s["contains"], "contains"), int(cmin), None if cmax is None else int(cmax)),)
        # kept on the shape: the lowering enforces it exactly when the items are a small finite
        # set of values (after every allOf/type intersection), and refuses it by name otherwise
        unique = s.get("uniqueItems", False) is True and (hi is None or int(hi) > 1)
        has_items = ("items" in s and draft >= 2020) or (draft < 2020 and (
            (not isinstance(s.get("items"), list) and "items" in s) or "additionalItems" in s))
        return ArrC(prefix, items, int(lo), None if hi is None else int(hi), contains, unique,
                    len(prefix), has_items, f"{ptr}/uniqueItems" if unique else "")

    def _check_counts(self, s, ptr: str, keys, lo, hi):
        """Counts over ``max_count`` are refused (strict: :class:`LimitExceeded` with the
        pointer; lenient: dropped, the lower bound to 0)."""
        cap = _limits().max_count
        out = []
        for key, x in zip(keys, (lo, hi)):
            x = _as_int(x)
            if x is not None and x > cap:
                if self.strict:
                    raise LimitExceeded(f"{key} {s.get(key, x)} is larger than the largest count enforced exactly",
                                        limit="max_count", value=cap, pointer=f"{ptr}/{key}")
                self.refuse(key, f"{ptr}/{key}", f"{key} {s.get(key, x)} is over the limit max_count={cap}")
                x = 0 if key.startswith("min") else None
            out.append(x)
        return out[0], out[1]

    # ------------------------------------------------------------------ objects
    def _object(self, loc: int, s, ptr: str):
        if not any(k in s for k in _OBJECT_KW):
            return None
        doc = self.doc
        props_s = s.get("properties", {})
        pats_s = s.get("patternProperties", {})
        if not isinstance(props_s, dict) or not isinstance(pats_s, dict):
            raise UnsupportedSchemaFeature("properties/patternProperties must be objects", pointer=ptr)
        patterns = tuple((p, frozenset({(doc.child(loc, sub, "patternProperties", p), True)}))
                         for p, sub in pats_s.items())
        for p, _ in patterns:
            self.pattern_dfa(p, pointer=f"{ptr}/patternProperties")  # refuse early, with the pointer
        props = []
        for name, sub in props_s.items():
            c = {(doc.child(loc, sub, "properties", name), True)}
            for p, pc in patterns:
                if self.pattern_dfa(p).matches(name.encode("utf-8")):
                    c |= pc
            props.append((name, frozenset(c)))
        additional = ANY_C
        if "additionalProperties" in s:
            additional = frozenset({(doc.child(loc, s["additionalProperties"], "additionalProperties"), True)})
        required = s.get("required", [])
        if not isinstance(required, list) or not all(isinstance(r, str) for r in required):
            required = []  # draft 3 style booleans: not a constraint we know; the draft-4+ form is a list
        names = ()
        if "propertyNames" in s:
            names = (frozenset({(doc.child(loc, s["propertyNames"], "propertyNames"), True)}),)
        lo = s.get("minProperties", 0)
        hi = s.get("maxProperties")
        if not _is_count(lo) or (hi is not None and not _is_count(hi)):
            raise UnsupportedSchemaFeature("minProperties/maxProperties must be non-negative integers", pointer=ptr)
        lo, hi = self._check_counts(s, ptr, ("minProperties", "maxProperties"), lo, hi)
        rest = ((patterns, additional),) if (patterns or additional) else ()
        base = ObjC(tuple(props), rest, frozenset(required), frozenset(), names, int(lo),
                    None if hi is None else int(hi), tuple(dict.fromkeys(required)),
                    frozenset(props_s), tuple(pats_s), "additionalProperties" in s)
        shapes = [base]
        # dependencies: (a absent) or (a present and ...) — exact, by distribution
        deps = []
        for key in ("dependentRequired", "dependentSchemas", "dependencies"):
            d = s.get(key)
            if isinstance(d, dict):
                for a, dep in d.items():
                    deps.append((key, a, dep))
        for key, a, dep in deps:
            absent = ObjC(forbidden=frozenset({a}))
            if isinstance(dep, list):
                present = [ObjC(required=frozenset({a, *dep}), req_order=tuple(dict.fromkeys([a, *dep])))]
            else:
                present = []
                v = self.loc(doc.child(loc, dep, key, a))
                for o in v.objects:
                    present.append(self.alg.and_obj(ObjC(required=frozenset({a})), o))
            alts = [absent] + present
            new = [self.alg.and_obj(x, y) for x in shapes for y in alts]
            if len(new) > 64:
                self.refuse(key, f"{ptr}/{key}", "too many dependency combinations")
                break
            shapes = new
        return tuple(shapes)


_KINDS = ("null", "bools", "number", "string", "arrays", "objects")


def only_kind(v: Val, kind: str) -> Val:
    """The part of ``v`` of one JSON type (``_KINDS``)."""
    if kind == "null":
        return Val(null=v.null)
    if kind == "bools":
        return Val(bools=v.bools)
    return Val(**{kind: getattr(v, kind)})


def _trivially_empty(v: Val) -> bool:
    return not (v.null or v.bools or v.number is not None or v.string is not None or v.arrays or v.objects)


def restrict_types(v: Val, mask: Val) -> Val:
    """``v`` without the JSON types ``mask`` has no value of (a superset of ``v ∩ mask``)."""
    return Val(v.null and mask.null, v.bools & mask.bools, v.number if mask.number is not None else None,
               v.string if mask.string is not None else None, v.arrays if mask.arrays else (),
               v.objects if mask.objects else ())


def _limits():
    from constrain.limits import current_limits

    return current_limits()


def _as_int(x):
    """``int(x)`` for a count; a Decimal with an exponent beyond 18 digits (``1e999999999``)
    becomes ``10**19`` (over every cap) instead of a billion-digit integer."""
    if x is None:
        return None
    if isinstance(x, Decimal) and x.adjusted() > 18:
        return 10 ** 19
    return int(x)


def _is_count(x) -> bool:
    if isinstance(x, bool):
        return False
    if isinstance(x, float) or isinstance(x, Decimal):
        return x >= 0 and (x == x.to_integral_value() if isinstance(x, Decimal) else x == int(x))
    return isinstance(x, int) and x >= 0
