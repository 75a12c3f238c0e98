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

from constrain.errors import ConfigError, UnsupportedSchemaFeature

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


@dataclass
class Loc:
    """One sub-schema: the object, the resolver for its base URI, a JSON pointer for messages."""

    schema: object
    resolver: object
    pointer: str
    draft: int  # 4, 6, 7, 2019, 2020


def _draft_number(spec) -> int:
    return {rj.DRAFT202012: 2020, rj.DRAFT201909: 2019, rj.DRAFT7: 7, rj.DRAFT6: 6, rj.DRAFT4: 4}.get(spec, 2020)


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
            except json.JSONDecodeError as e:
                raise UnsupportedSchemaFeature(f"the schema is not valid JSON: {e}", pointer="") from None
        if not isinstance(schema, (dict, bool)):
            raise UnsupportedSchemaFeature(
                f"a schema must be a JSON object or a boolean, got {type(schema).__name__}", pointer="")
        default = dialect_spec(default_dialect)
        spec = default
        if isinstance(schema, dict) and isinstance(schema.get("$schema"), str):
            try:
                spec = rj.specification_with(schema["$schema"])
            except Exception:  # noqa: BLE001 - CannotDetermineSpecification, UnknownDialect
                raise UnsupportedSchemaFeature(
                    f"unknown $schema dialect {schema['$schema']!r}", pointer="/$schema") from None
        self.spec = spec
        self.draft = _draft_number(spec)
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
