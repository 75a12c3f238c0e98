"""The public entry points: :func:`compile_json_schema`, :func:`from_pydantic`, :func:`from_type`."""

from __future__ import annotations

import json
import warnings

from constrain.errors import ConfigError, ConstrainError, GrammarError, UnsupportedSchemaFeature
from constrain.grammar.ir import Grammar


class SchemaWarning(UserWarning):
    """Lenient mode: a keyword of the schema is not enforced by the compiled grammar."""


def compile_json_schema(schema, *, strict: bool = True, lenient: bool = False, whitespace: str = "compact",
                        separators: tuple[str, str] | None = None, max_whitespace: int = 2,
                        property_order: str = "schema", dialect: str = "2020-12", registry=None,
                        limits=None):
    """Compile a JSON Schema into a :class:`~constrain.grammar.ir.Grammar` of JSON text.

    Every document the grammar accepts is valid against ``schema`` (as ``jsonschema``
    validates it, formats asserted).  Each keyword is enforced exactly or the call fails with
    :class:`~constrain.errors.UnsupportedSchemaFeature` naming the keyword and its JSON pointer.

    Parameters
    ----------
    schema:
        A dict/bool, or JSON text (numbers in text keep their exact decimal value).
    strict, lenient:
        ``strict=True`` (default) refuses what cannot be enforced.  ``lenient=True`` (which
        implies ``strict=False``) drops those keywords instead, warns (:class:`SchemaWarning`)
        and returns ``(grammar, unenforced)`` with ``unenforced`` a list of
        ``(keyword, json_pointer, reason)``.
    whitespace:
        ``"compact"`` (default: ``{"a":1,"b":[2,3]}``) or ``"flexible"`` (up to
        ``max_whitespace`` spaces/tabs/newlines around each punctuation mark — bounded, so a
        model cannot loop on whitespace).  ``separators=(item, key)`` spells the punctuation
        like ``json.dumps(separators=...)``, e.g. ``(", ", ": ")``.
    property_order:
        ``"schema"``: declared properties in the order the schema lists them; ``"any"``: any
        order, each at most once.
    dialect:
        Default dialect when the schema has no ``$schema``: ``"2020-12"``, ``"2019-09"``, ``"7"``.
    registry:
        A ``referencing.Registry`` holding the documents remote ``$ref`` s point to.
    limits:
        A :class:`constrain.Limits` (default: the limits in force, see :mod:`constrain.limits`):
        compile time, schema depth and size, the largest counts; each cap that is hit raises
        :class:`~constrain.errors.LimitExceeded`.
    """
    from constrain.limits import compile_budget, use_limits

    with use_limits(limits), compile_budget("the schema"):
        try:
            return _compile(schema, strict=strict, lenient=lenient, whitespace=whitespace, separators=separators,
                            max_whitespace=max_whitespace, property_order=property_order, dialect=dialect,
                            registry=registry)
        except (ConstrainError, RecursionError, MemoryError):
            raise
        except Exception as e:  # noqa: BLE001 - a bug; never leak an internal error type to a server
            raise GrammarError(f"cannot compile the schema: internal error {type(e).__name__}: {e} "
                               "(please report this schema)", pointer="") from e


def _compile(schema, *, strict, lenient, whitespace, separators, max_whitespace, property_order, dialect,
             registry):
    from constrain.jsonschema.lower import Lowering, Whitespace
    from constrain.jsonschema.normalize import Normalizer
    from constrain.jsonschema.resolve import SchemaDocument

    if lenient:
        strict = False
    if whitespace not in ("compact", "flexible"):
        raise ConfigError(f"whitespace must be 'compact' or 'flexible', got {whitespace!r}")
    if property_order not in ("schema", "any"):
        raise ConfigError(f"property_order must be 'schema' or 'any', got {property_order!r}")
    if separators is not None:
        if whitespace != "compact":
            raise ConfigError("separators= spells the punctuation exactly; it cannot be combined with flexible whitespace")
        item, key = separators
        if item.strip() != "," or key.strip() != ":" or any(c not in " \t\n\r,:" for c in item + key):
            raise ConfigError(f"separators must be ',' and ':' with optional whitespace, got {separators!r}")
        ws = Whitespace(item=item, key=key)
    elif whitespace == "flexible":
        if not isinstance(max_whitespace, int) or not 1 <= max_whitespace <= 64:
            raise ConfigError("max_whitespace must be an int in 1..64")
        ws = Whitespace(flexible=max_whitespace)
    else:
        ws = Whitespace()
    from constrain.jsonschema.uniquecheck import MixedBag

    doc = SchemaDocument(schema, default_dialect=dialect, registry=registry)
    no_bag: set = set()
    try:
        while True:
            norm = Normalizer(doc, strict=strict)
            low = Lowering(norm, ws=ws, property_order=property_order, no_bag=no_bag)
            try:
                grammar = low.build(frozenset({(doc.root, True)}))
                break
            except MixedBag as e:  # these any-order objects share a path with other shapes
                if e.args[0] <= no_bag:  # pragma: no cover - cannot happen: each round shrinks the bags
                    raise GrammarError("any-order objects: the check's shapes did not settle", pointer="") from None
                no_bag |= e.args[0]
    except UnsupportedSchemaFeature:
        raise
    except GrammarError as e:
        if "is empty" in e.message:
            raise UnsupportedSchemaFeature("the schema accepts no JSON value at all", pointer="") from None
        raise
    if lenient:
        for kw, ptr, why in norm.unenforced:
            warnings.warn(f"{kw} at {ptr or '/'} is not enforced: {why}", SchemaWarning, stacklevel=3)
        return grammar, list(norm.unenforced)
    return grammar


def close_pydantic_objects(schema):
    """A copy of a pydantic-generated schema where every object that says nothing about extra
    keys gets ``additionalProperties: false``.

    Pydantic's default (``extra="ignore"``) writes nothing, which JSON Schema reads as "any
    other key is fine"; but pydantic drops such keys on validation, so generating them only
    wastes tokens (and small models wander off into invented keys).  ``extra="allow"`` and
    ``extra="forbid"`` write ``additionalProperties`` explicitly and are kept as they are.
    """
    if isinstance(schema, list):
        return [close_pydantic_objects(x) for x in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: close_pydantic_objects(v) if k not in ("const", "enum", "default", "examples") else v
           for k, v in schema.items()}
    if "properties" in out and not any(k in out for k in ("additionalProperties", "patternProperties",
                                                             "unevaluatedProperties")):
        out["additionalProperties"] = False
    return out


def from_pydantic(model, *, extra_keys: bool = False, **options) -> Grammar:
    """Grammar for the JSON form of a pydantic model (its ``model_json_schema()``).

    Objects of models with pydantic's default ``extra="ignore"`` are closed (no undeclared
    keys, see :func:`close_pydantic_objects`) unless ``extra_keys=True``."""
    try:
        schema = model.model_json_schema()
    except AttributeError:
        raise ConfigError(f"{model!r} is not a pydantic v2 model class") from None
    return compile_json_schema(schema if extra_keys else close_pydantic_objects(schema), **options)


def from_type(tp, **options) -> Grammar:
    """Grammar for a Python type hint (``list[int]``, ``Literal[...]``, ``TypedDict``,
    dataclasses …), via pydantic's ``TypeAdapter`` (pydantic must be installed)."""
    try:
        from pydantic import TypeAdapter
    except ImportError:
        raise ConfigError("from_type needs pydantic>=2 (pip install pydantic)") from None
    schema = json.loads(json.dumps(TypeAdapter(tp).json_schema()))
    return compile_json_schema(close_pydantic_objects(schema), **options)
