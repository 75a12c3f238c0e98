"""Schema documents, sub-schema locations and ``$ref`` resolution.

Every sub-schema the compiler looks at gets a small integer *location*.  A location stands
for one schema object at one place in a document, so ``$ref`` cycles become cycles between
locations, and the compiler can key its work (normal forms, grammar nonterminals) on sets of
locations; recursion of any depth then needs no unrolling.

Resolution of ``$ref`` / ``$id`` / ``$anchor`` / JSON pointers is delegated to the
``referencing`` package (the resolver ``jsonschema`` itself uses), with the dialect taken from
``$schema`` or the caller's default.  The base URI of a schema object is a property of where it
sits in its document (``$id`` scoping is lexical), so a location is keyed by the object's
identity and remembers the resolver of its first visit.  ``$dynamicRef``/``$recursiveRef``
(dynamic scope) are not resolved here; the compiler refuses them.

Remote references are refused unless the caller passes a ``referencing.Registry`` holding
them: constrain never fetches anything over the network.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal

import referencing
import referencing.exceptions
import referencing.jsonschema as rj

from constrain.errors import ConfigError, InvalidSchema, LimitExceeded, UnsupportedSchemaFeature

DIALECTS = {
    "2020-12": rj.DRAFT202012,
    "2019-09": rj.DRAFT201909,
    "7": rj.DRAFT7,
    "6": rj.DRAFT6,
    "4": rj.DRAFT4,
}
_DIALECT_ALIASES = {"draft2020-12": "2020-12", "draft2019-09": "2019-09", "draft7": "7", "draft-07": "7",
                    "draft6": "6", "draft-06": "6", "draft4": "4", "draft-04": "4"}
_ROOT_URI = "urn:constrain:root"


def dialect_spec(name: str):
    key = _DIALECT_ALIASES.get(name, name)
    if key not in DIALECTS:
        raise ConfigError(f"unknown JSON Schema dialect {name!r}; use one of {sorted(DIALECTS)}")
    return DIALECTS[key]


_VOCABS = {
    "2020-12": ("core", "applicator", "unevaluated", "validation", "meta-data", "format-annotation",
                "format-assertion", "content"),
    "2019-09": ("core", "applicator", "validation", "meta-data", "format", "content"),
}
KNOWN_VOCABULARIES = frozenset(f"https://json-schema.org/draft/{d}/vocab/{v}" for d, vs in _VOCABS.items() for v in vs)


def _dialect_of(uri: str, registry, depth: int = 0):
    """The specification for a ``$schema`` URI: a standard dialect, or a custom meta-schema the
    caller's registry holds whose own ``$schema`` is one (followed a few levels).

    A custom meta-schema's ``$vocabulary`` can only switch standard vocabularies *off* (their
    keywords then are annotations, so enforcing them anyway only narrows the language: sound)
    or add vocabularies: an unknown one it marks required (``true``) is refused, as the
    specification asks; an optional unknown one (``false``) is ignored, which it allows."""
    try:
        return rj.specification_with(uri)
    except Exception:  # noqa: BLE001 - CannotDetermineSpecification, UnknownDialect
        pass
    meta = None
    if registry is not None and depth < 4:
        try:
            meta = registry[uri.split("#", 1)[0]].contents
        except Exception:  # noqa: BLE001 - not in the registry (never fetched)
            meta = None
    if not isinstance(meta, dict) or not isinstance(meta.get("$schema"), str) or meta["$schema"] == uri:
        raise UnsupportedSchemaFeature(f"unknown $schema dialect {uri!r}", pointer="/$schema")
    vocab = meta.get("$vocabulary", {})
    if isinstance(vocab, dict):
        for v, required in vocab.items():
            if required is True and v not in KNOWN_VOCABULARIES:
                raise UnsupportedSchemaFeature(
                    f"$schema {uri!r} requires the vocabulary {v!r}, which constrain does not know",
                    pointer="/$schema")
    return _dialect_of(meta["$schema"], registry, depth + 1)


def _limits():
    from constrain.limits import current_limits

    return current_limits()


def _ptr(path) -> str:
    return "".join("/" + str(x).replace("~", "~0").replace("/", "~1") for x in path)


def check_size(schema) -> None:
    """Refuse documents nested deeper than ``max_schema_depth`` or with more than
    ``max_schema_nodes`` objects/arrays, before anything recursive looks at them (iterative)."""
    lim = _limits()
    max_depth, max_nodes = lim.max_schema_depth, lim.max_schema_nodes
    stack = [(schema, 0, ())]
    nodes = 0
    while stack:
        x, d, path = stack.pop()
        if isinstance(x, dict):
            items = x.items()
        elif isinstance(x, list):
            items = enumerate(x)
        else:
            continue
        nodes += 1
        if d >= max_depth:
            raise LimitExceeded(f"the schema is nested more than {max_depth} levels deep", limit="max_schema_depth",
                                value=max_depth, pointer=_ptr(path))
        if nodes > max_nodes:
            raise LimitExceeded(f"the schema has more than {max_nodes} objects and arrays", limit="max_schema_nodes",
                                value=max_nodes, pointer=_ptr(path))
        for k, v in items:
            if isinstance(x, dict) and not isinstance(k, str):
                raise InvalidSchema(f"object keys must be strings, got {type(k).__name__} {k!r:.40}",
                                    pointer=_ptr(path))
            if isinstance(v, (dict, list)):
                stack.append((v, d + 1, path + (k,)))


def _validator_class(spec):
    import jsonschema

    return {rj.DRAFT202012: jsonschema.Draft202012Validator, rj.DRAFT201909: jsonschema.Draft201909Validator,
            rj.DRAFT7: jsonschema.Draft7Validator, rj.DRAFT6: jsonschema.Draft6Validator,
            rj.DRAFT4: jsonschema.Draft4Validator}.get(spec)


def _plain_numbers(v):
    """``v`` with the ``Decimal`` numbers schemas are parsed with (exact ``multipleOf``) turned
    into ``int`` when integral and ``float`` otherwise, for the meta-schema check: jsonschema's
    type checkers do not know ``Decimal``, and ``maxLength: 2.0`` is an integer to JSON Schema
    (since draft 6).  The compiler itself keeps the exact values."""
    if isinstance(v, Decimal):
        if not v.is_finite():
            return float(v)
        if v.adjusted() > 300:  # 1e999999999: int() would build a billion-digit number
            return (-1 if v < 0 else 1) * 10 ** 301
        if v and v.adjusted() < -300:  # a positive (negative) number too small for a float
            return -5e-324 if v < 0 else 5e-324
        return int(v) if v == v.to_integral_value() else float(v)
    if isinstance(v, dict):
        return {k: _plain_numbers(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_plain_numbers(x) for x in v]
    return v


def check_meta_schema(schema, spec) -> None:
    """Refuse a schema whose keywords have values of the wrong type (the dialect's meta-schema
    decides), naming the keyword's JSON pointer: ``{"properties": [1]}``, ``{"required": "a"}``."""
    cls = _validator_class(spec)
    if cls is None or schema is True or schema is False:
        return
    from constrain.jsonschema.meta import meta_valid

    if meta_valid(schema, _draft_number(spec)):  # the common keywords, checked directly
        return
    import jsonschema.exceptions

    try:
        errors = list(cls(cls.META_SCHEMA).iter_errors(_plain_numbers(schema)))
    except RecursionError:
        raise LimitExceeded("the schema is nested too deeply to check", limit="max_schema_depth",
                            value=_limits().max_schema_depth, pointer="") from None
    except Exception:  # noqa: BLE001 - the meta-schema check is a courtesy; the compiler re-checks
        return
    if not errors:
        return
    e = jsonschema.exceptions.best_match(errors)
    # the deepest error on the path names the keyword (not the combinator around it)
    while e.context:
        e = jsonschema.exceptions.best_match(e.context)
    path = list(e.absolute_path)
    kw = str(path[-1]) if path else "the schema"
    raise InvalidSchema(f"invalid value for {kw}: {e.message}", pointer=_ptr(path))


@dataclass
class Loc:
    """One sub-schema: the object, the resolver for its base URI, a JSON pointer for messages."""

    schema: object
    resolver: object
    pointer: str
    draft: int  # 4, 6, 7, 2019, 2020


def _draft_number(spec) -> int:
    return {rj.DRAFT202012: 2020, rj.DRAFT201909: 2019, rj.DRAFT7: 7, rj.DRAFT6: 6, rj.DRAFT4: 4}.get(spec, 2020)


def _has_key(x, keys, depth: int = 0) -> bool:
    """Some object inside ``x`` has one of ``keys`` (the schema's size is capped on load)."""
    if isinstance(x, dict):
        return any(k in x for k in keys) or any(_has_key(v, keys, depth + 1) for v in x.values())
    if isinstance(x, list):
        return any(_has_key(v, keys, depth + 1) for v in x)
    return False


class SchemaDocument:
    """The root schema plus everything reachable from it, as numbered locations.

    Lifetime: one per compile call.  Synthetic schemas (``{"const": v}`` for parts of an enum
    value, the negations the compiler introduces) are added as locations too, so the rest of
    the compiler only ever handles location numbers.
    """

    TRUE = 0
    FALSE = 1

    def __init__(self, schema, *, default_dialect: str = "2020-12", registry=None):
        if isinstance(schema, (str, bytes)):
            try:
                schema = json.loads(schema, parse_float=Decimal)
            except (json.JSONDecodeError, UnicodeDecodeError) as e:
                raise InvalidSchema(f"the schema is not valid JSON: {e}", pointer="") from None
            except RecursionError:
                raise LimitExceeded("the schema text is nested too deeply to parse", limit="max_schema_depth",
                                    value=_limits().max_schema_depth, pointer="") from None
        if not isinstance(schema, (dict, bool)):
            raise InvalidSchema(
                f"a schema must be a JSON object or a boolean, got {type(schema).__name__}", pointer="")
        default = dialect_spec(default_dialect)
        spec = default
        if isinstance(schema, dict) and isinstance(schema.get("$schema"), str):
            spec = _dialect_of(schema["$schema"], registry)
        self.spec = spec
        self.draft = _draft_number(spec)
        check_size(schema)
        check_meta_schema(schema, spec)
        resource = spec.create_resource(schema)
        reg = registry if registry is not None else referencing.Registry()
        if not isinstance(reg, referencing.Registry):
            raise ConfigError("registry must be a referencing.Registry")
        base = resource.id() or _ROOT_URI
        self.registry = reg.with_resource(base, resource).crawl()
        self.root_resolver = self.registry.resolver(base_uri=base)
        self.locs: list[Loc] = [Loc(True, self.root_resolver, "", self.draft),
                                Loc(False, self.root_resolver, "", self.draft)]
        self._by_id: dict[int, int] = {}
        self._keep: list = []  # synthetic objects stay alive so their ids stay unique
        self.root = self.loc(schema, self.root_resolver, "")

    @property
    def dynamic(self) -> bool:
        """Some schema seen so far uses ``$dynamicRef``/``$recursiveRef`` (whose meaning depends
        on the path of evaluation, so a sub-schema cannot be validated on its own)."""
        for L in self.locs[self._dyn_checked:]:
            if not self._dyn and _has_key(L.schema, ("$dynamicRef", "$recursiveRef")):
                self._dyn = True
        self._dyn_checked = len(self.locs)
        return self._dyn

    _dyn = False
    _dyn_checked = 0

    # ------------------------------------------------------------------ locations
    def loc(self, schema, resolver, pointer: str) -> int:
        """The location of ``schema`` (a child reached from ``resolver``'s base URI)."""
        if schema is True:
            return self.TRUE
        if schema is False:
            return self.FALSE
        key = id(schema)
        found = self._by_id.get(key)
        if found is not None:
            return found
        if not isinstance(schema, dict):
            raise UnsupportedSchemaFeature(
                f"a schema must be a JSON object or a boolean, got {type(schema).__name__}", pointer=pointer)
        if isinstance(schema.get("$id"), str) or (self.draft <= 6 and isinstance(schema.get("id"), str)):
            try:
                resolver = resolver.in_subresource(self.spec.create_resource(schema))
            except Exception as e:  # noqa: BLE001 - referencing raises several types here
                raise UnsupportedSchemaFeature(f"cannot use $id here: {e}", pointer=pointer) from None
        self._by_id[key] = len(self.locs)
        self.locs.append(Loc(schema, resolver, pointer, self.draft))
        return len(self.locs) - 1

    def child(self, parent: int, schema, *path) -> int:
        p = self.locs[parent]
        ptr = p.pointer + "".join("/" + str(x).replace("~", "~0").replace("/", "~1") for x in path)
        return self.loc(schema, p.resolver, ptr)

    def synthetic(self, schema: dict, pointer: str) -> int:
        """A location for a schema the compiler made up (kept alive, never deduplicated)."""
        self._keep.append(schema)
        key = id(schema)
        self._by_id[key] = len(self.locs)
        self.locs.append(Loc(schema, self.root_resolver, pointer, self.draft))
        return len(self.locs) - 1

    def dynamic_ref(self, at: int, ref: str) -> int | None:
        """``$dynamicRef`` resolved statically when that is exact: the anchor name it looks up
        occurs at most once among the documents involved, so every dynamic scope finds the same
        schema.  ``None`` when it is not (the caller refuses)."""
        if not isinstance(ref, str) or "#" not in ref:
            return None
        name = ref.split("#", 1)[1]
        if not name or "/" in name:
            return self.ref(at, ref)  # a JSON pointer: plain $ref semantics
        target = self.ref(at, ref)
        found = set()

        def walk(x):
            if isinstance(x, dict):
                if x.get("$dynamicAnchor") == name:
                    found.add(id(x))
                for v in x.values():
                    walk(v)
            elif isinstance(x, list):
                for v in x:
                    walk(v)

        walk(self.locs[2].schema if len(self.locs) > 2 else None)
        walk(self.locs[target].schema)
        return target if len(found) <= 1 else None

    def ref(self, at: int, ref: str) -> int:
        """Resolve ``$ref`` written at location ``at``."""
        p = self.locs[at]
        if not isinstance(ref, str):
            raise UnsupportedSchemaFeature("$ref must be a string", pointer=p.pointer + "/$ref")
        try:
            resolved = p.resolver.lookup(ref)
        except referencing.exceptions.Unresolvable as e:
            raise UnsupportedSchemaFeature(
                f"$ref {ref!r} cannot be resolved inside the schema ({type(e).__name__}); remote references "
                "are refused unless you pass a referencing.Registry that holds them",
                pointer=p.pointer + "/$ref") from None
        target = resolved.contents
        if target is True:
            return self.TRUE
        if target is False:
            return self.FALSE
        found = self._by_id.get(id(target))
        if found is not None:
            return found
        ptr = f"{ref}"  # where a target outside the traversal so far came from
        if not isinstance(target, dict):
            raise UnsupportedSchemaFeature(f"$ref {ref!r} points at a {type(target).__name__}, not a schema",
                                           pointer=p.pointer + "/$ref")
        self._by_id[id(target)] = len(self.locs)
        self.locs.append(Loc(target, resolved.resolver, ptr, self.draft))
        return len(self.locs) - 1
