"""Engine-independent pieces shared by the serving-engine adapters.

Nothing here imports vLLM: the spec parser, the grammar compile cache (memory + disk), the
vocabulary cache (one per tokenizer × logits width × stop-id set) and the torch mask applier are
plain constrain + numpy/torch, so the unit tests exercise them without a serving engine.

Grammar specs
-------------
A spec is ``(kind, text)`` with ``kind`` one of :data:`KINDS`:

- ``"json_schema"``: a JSON Schema (text or an already-parsed dict / bool);
- ``"json_object"``: any JSON object (``text`` ignored);
- ``"grammar"``: Lark grammar text (the ``// start: … lexer: …`` header picks the lexing policy);
- ``"regex"``: a Python ``re`` pattern matched in full;
- ``"choice"``: a JSON list of strings (or a Python list).

Compiled grammars are cached in memory (LRU by spec digest) and on disk under
``$CONSTRAIN_CACHE_DIR/grammars/`` (pickles keyed by the spec digest, constrain's version and
the cache format), so every worker process and replica that sees a spec loads it in
milliseconds instead of recompiling (a schema with ``format: email`` takes seconds).  Compiles
of the same spec in several threads at once are de-duplicated.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import pickle
import threading
from collections import OrderedDict
from typing import Any, Iterable

import numpy as np

from constrain import __version__
from constrain._cache import CACHE_FORMAT, cache_path, cache_root, discard, read_verified, write_verified
from constrain.errors import ConstrainError, GrammarError
from constrain.grammar.ir import Grammar
from constrain.tokenizers.vocabulary import Vocabulary

log = logging.getLogger("constrain.integrations")

KINDS = ("json_schema", "json_object", "grammar", "regex", "choice")
_ALIASES = {"json": "json_schema", "schema": "json_schema", "json_schema": "json_schema",
            "json_object": "json_object", "grammar": "grammar", "lark": "grammar", "regex": "regex",
            "pattern": "regex", "choice": "choice", "choices": "choice"}
#: options of :func:`constrain.jsonschema.compile_json_schema` a spec may set
_SCHEMA_OPTIONS = ("whitespace", "separators", "max_whitespace", "property_order", "lenient", "dialect")

_GRAMMAR_CACHE_VERSION = 1


class SpecError(GrammarError):
    """A request's grammar spec is malformed (unknown kind, several kinds, wrong type)."""


# ----------------------------------------------------------------------------- spec parsing
def parse_spec(spec: Any) -> tuple[str, Any, dict]:
    """Normalise a request's spec to ``(kind, payload, options)``.

    Accepts ``{"json_schema": …}``, ``{"grammar": "…lark…"}``, ``{"regex": "…"}``,
    ``{"choice": [...]}``, ``{"json_object": true}``, optionally with ``"options": {...}``
    (JSON-Schema compile options such as ``whitespace`` or ``property_order``), or a
    ``(kind, payload)`` pair.
    """
    if isinstance(spec, (tuple, list)) and len(spec) == 2 and isinstance(spec[0], str):
        kind = _ALIASES.get(spec[0])
        if kind is None:
            raise SpecError(f"unknown constrain spec kind {spec[0]!r}; expected one of {list(KINDS)}")
        return kind, spec[1], {}
    if not isinstance(spec, dict):
        raise SpecError(f"a constrain spec must be a dict such as {{'json_schema': ...}}, got {type(spec).__name__}")
    options = spec.get("options", {}) or {}
    if not isinstance(options, dict):
        raise SpecError(f"constrain spec 'options' must be a dict, got {type(options).__name__}")
    bad = sorted(set(options) - set(_SCHEMA_OPTIONS))
    if bad:
        raise SpecError(f"unknown constrain spec options {bad}; allowed: {list(_SCHEMA_OPTIONS)}")
    keys = [k for k in spec if k != "options"]
    unknown = [k for k in keys if k not in _ALIASES]
    if unknown:
        raise SpecError(f"unknown constrain spec keys {unknown}; expected exactly one of {list(KINDS)}")
    if len(keys) != 1:
        raise SpecError(f"a constrain spec needs exactly one of {list(KINDS)}, got {keys or 'none'}")
    kind = _ALIASES[keys[0]]
    return kind, spec[keys[0]], dict(options)


def _canonical(kind: str, payload: Any, options: dict) -> str:
    """A canonical text for the spec: the key of both caches."""
    if kind == "json_schema":
        if isinstance(payload, (str, bytes)):
            try:
                payload = json.loads(payload)
            except ValueError as e:
                raise SpecError(f"json_schema is not valid JSON: {e}") from None
        if not isinstance(payload, (dict, bool)):
            raise SpecError(f"json_schema must be an object or a boolean, got {type(payload).__name__}")
        body = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    elif kind == "json_object":
        body = ""
    elif kind == "choice":
        if isinstance(payload, str):
            try:
                payload = json.loads(payload)
            except ValueError as e:
                raise SpecError(f"choice must be a list of strings (or its JSON text): {e}") from None
        if not isinstance(payload, (list, tuple)) or not payload or not all(isinstance(c, str) for c in payload):
            raise SpecError("choice must be a non-empty list of strings")
        body = json.dumps(list(payload), ensure_ascii=False)
    elif kind in ("grammar", "regex"):
        if not isinstance(payload, str):
            raise SpecError(f"{kind} must be a string, got {type(payload).__name__}")
        body = payload
    else:  # pragma: no cover - parse_spec only yields KINDS
        raise SpecError(f"unknown spec kind {kind!r}")
    opts = json.dumps(options, sort_keys=True, default=list)
    return f"{kind}\x00{opts}\x00{body}"


def spec_digest(kind: str, payload: Any, options: dict | None = None) -> str:
    return hashlib.sha256(_canonical(kind, payload, options or {}).encode("utf-8", "surrogatepass")).hexdigest()[:32]


def _compile_uncached(kind: str, payload: Any, options: dict) -> Grammar:
    if kind == "json_schema" or kind == "json_object":
        from constrain.jsonschema import compile_json_schema

        schema = {"type": "object"} if kind == "json_object" else payload
        if isinstance(schema, (str, bytes)):
            schema = json.loads(schema)
        opts = dict(options)
        if "separators" in opts and opts["separators"] is not None:
            opts["separators"] = tuple(opts["separators"])
        out = compile_json_schema(schema, **opts)
        if opts.get("lenient"):
            g, dropped = out
            if dropped:
                log.warning("constrain: schema keywords not enforced: %s", dropped)
            return g
        return out
    if kind == "grammar":
        from constrain.grammar import from_lark

        text = payload
        if "::=" in text and ":" not in text.replace("::=", ""):
            raise GrammarError("this looks like a GBNF/EBNF grammar ('::='); constrain reads Lark grammars "
                               "(rule: expansion); see grammars/*.lark for examples")
        if "\n" not in text:
            text = text + "\n"  # never let request text be taken for a file path (from_lark reads *.lark paths)
        return from_lark(text)
    if kind == "regex":
        from constrain.grammar import from_regex

        return from_regex(payload)
    if kind == "choice":
        from constrain.grammar import from_choices

        choices = json.loads(payload) if isinstance(payload, str) else payload
        return from_choices(list(choices))
    raise SpecError(f"unknown spec kind {kind!r}")  # pragma: no cover


class GrammarCache:
    """Thread-safe spec → :class:`Grammar` cache: memory LRU, then disk, then compile.

    Concurrent requests for the same spec wait for one compile.  A failed compile is remembered
    (per process, LRU-bounded) so a bad schema sent again fails fast with the same message.
    """

    def __init__(self, max_entries: int = 256, *, disk: bool = True):
        self.max_entries = int(max_entries)
        self.disk = bool(disk)
        self._mem: OrderedDict[str, Grammar | ConstrainError] = OrderedDict()
        self._lock = threading.Lock()
        self._inflight: dict[str, threading.Event] = {}
        self.hits = self.disk_hits = self.compiles = 0

    def _disk_path(self, key: str):
        if not self.disk:
            return None
        v = "".join(c if c.isalnum() else "_" for c in __version__)
        return cache_path("grammars", f"{key}-c{CACHE_FORMAT}-g{_GRAMMAR_CACHE_VERSION}-{v}.pkl")

    def get(self, kind: str, payload: Any, options: dict | None = None) -> Grammar:
        options = options or {}
        key = spec_digest(kind, payload, options)
        while True:
            with self._lock:
                got = self._mem.get(key)
                if got is not None:
                    self._mem.move_to_end(key)
                    self.hits += 1
                    if isinstance(got, ConstrainError):
                        raise got
                    return got
                ev = self._inflight.get(key)
                if ev is None:
                    ev = self._inflight[key] = threading.Event()
                    break
            ev.wait()
        try:
            g = self._load_or_compile(key, kind, payload, options)
        except ConstrainError as e:
            self._put(key, e)
            raise
        except Exception as e:  # a front-end bug or a library error: still the request's own failure
            err = GrammarError(f"cannot compile {kind} spec: {type(e).__name__}: {e}")
            self._put(key, err)
            raise err from e
        finally:
            with self._lock:
                self._inflight.pop(key, None)
            ev.set()
        self._put(key, g)
        return g

    def _put(self, key: str, value) -> None:
        with self._lock:
            self._mem[key] = value
            self._mem.move_to_end(key)
            while len(self._mem) > self.max_entries:
                self._mem.popitem(last=False)

    def _load_or_compile(self, key, kind, payload, options) -> Grammar:
        path = self._disk_path(key)
        g = _read_pickle(path, f"grammar:{key}", Grammar)
        if g is not None:
            self.disk_hits += 1
            return g
        self.compiles += 1
        g = _compile_uncached(kind, payload, options)
        _write_pickle(path, f"grammar:{key}", g)
        return g


#: the process-wide grammar cache used by the adapters
GRAMMARS = GrammarCache()


# ----------------------------------------------------------------------------- mask stores
def store_save_interval() -> float:
    """Seconds between two saves of one mask store (``$CONSTRAIN_STORE_SAVE_INTERVAL``, 30)."""
    try:
        return float(os.environ.get("CONSTRAIN_STORE_SAVE_INTERVAL", "30"))
    except ValueError:
        return 30.0


def shared_store(grammar: Grammar, vocab: Vocabulary):
    """The mask store of (``grammar``, ``vocab``) for a serving process: loaded from the disk
    cache when another worker or replica saved one (``$CONSTRAIN_CACHE_DIR/stores/``), so it
    starts with their entries instead of empty."""
    from constrain.engine.matcher import get_store

    return get_store(grammar, vocab, persist=True)


def request_finished(store) -> None:
    """A request of ``store`` ended: save the store on a daemon thread if it grew and the last
    save is older than :func:`store_save_interval` (the engine's step never waits for it)."""
    if store is None or cache_root() is None:
        return
    interval = store_save_interval()
    if store.save_due(min_interval_s=interval):
        threading.Thread(target=store.maybe_save, kwargs={"min_interval_s": interval}, daemon=True,
                         name="constrain-store-save").start()


# ----------------------------------------------------------------------------- vocabularies
def restrict_vocabulary(vocab: Vocabulary, *, width: int | None = None, eos_ids: Iterable[int] | None = None) -> Vocabulary:
    """``vocab`` with another stop-id set and/or cut to a narrower logits ``width``.

    Ids in ``eos_ids`` become SPECIAL stop ids (a stop id never emits text); ids past ``width``
    must be special or unused (checked by :meth:`Vocabulary.check_logits_width`).
    """
    tb = list(vocab.all_token_bytes)
    kinds = np.array(vocab.kinds, dtype=np.uint8)
    specials = vocab.special_tokens
    eos = sorted(set(int(e) for e in (vocab.eos_ids if eos_ids is None else eos_ids)))
    n = vocab.n_vocab
    if width is not None and width < n:
        vocab.check_logits_width(width)
        tb, kinds = tb[:width], kinds[:width]
        specials = {k: v for k, v in specials.items() if v < width}
        n = width
    eos = [e for e in eos if 0 <= e < n]
    if n == vocab.n_vocab and tuple(eos) == tuple(vocab.eos_ids):
        return vocab
    fb = [int(i) for i in vocab.byte_fallback_ids if int(i) < n]
    return Vocabulary(tb, kinds=kinds, special_tokens=specials, eos_ids=eos, name=vocab.name, family=vocab.family,
                      byte_fallback_ids=fb, decode_strips_leading_space=vocab.decode_strips_leading_space)


_VOCAB_CACHE_VERSION = 1


def _tokenizer_cache_path(tokenizer):
    """Disk-cache path of a transformers tokenizer's vocabulary, keyed by its full serialised
    backend (``tokenizer.json`` text: model, added tokens, decoder) and its EOS id."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        return None
    try:
        text = backend.to_str()
    except Exception:  # noqa: BLE001 - no serialisation: no cache
        return None
    h = hashlib.sha256()
    h.update(text.encode("utf-8", "surrogatepass"))
    h.update(repr(getattr(tokenizer, "eos_token_id", None)).encode())
    v = "".join(c if c.isalnum() else "_" for c in __version__)
    return cache_path("vocabularies", f"{h.hexdigest()[:32]}-c{CACHE_FORMAT}-v{_VOCAB_CACHE_VERSION}-{v}.pkl")


def vocabulary_of(tokenizer) -> Vocabulary:
    """The :class:`Vocabulary` of a tokenizer a serving engine hands over.

    vLLM wraps HF tokenizers in a cached subclass (still a transformers tokenizer with a fast
    backend) and Mistral tokenizers in its own class holding the ``mistral_common`` one.  The
    result is cached on disk (``$CONSTRAIN_CACHE_DIR/vocabularies/``), so every engine process
    and replica loads it in milliseconds instead of rebuilding it (about a second per 50k tokens).
    """
    if isinstance(tokenizer, Vocabulary):
        return tokenizer
    path = _tokenizer_cache_path(tokenizer)
    key = f"vocabulary:{path.name}" if path is not None else ""
    v = _read_pickle(path, key, Vocabulary)
    if v is not None:
        return v
    v = _build_vocabulary(tokenizer)
    v.fingerprint  # computed once, stored with it
    _write_pickle(path, key, v)
    return v


def _read_pickle(path, key: str, cls):
    """The object cached at ``path`` for ``key``, or ``None``.  The file is checked (format,
    version, key, sha256: :func:`constrain._cache.read_verified`) *before* it is unpickled, so
    a truncated, corrupted or foreign file is discarded and rebuilt, never loaded."""
    if path is None:
        return None
    data = read_verified(path, key)
    if data is None:
        return None
    try:
        obj = pickle.loads(data)
    except Exception as e:  # noqa: BLE001 - a stale class layout: rebuild
        discard(path, f"{type(e).__name__}: {e}")
        return None
    if not isinstance(obj, cls):
        discard(path, f"holds a {type(obj).__name__}, not a {cls.__name__}")
        return None
    return obj


def _write_pickle(path, key: str, obj) -> None:
    if path is None:
        return
    try:
        write_verified(path, key, pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL))
    except OSError as e:  # caching is an optimisation
        log.warning("constrain: cannot write cache %s: %s", path, e)


def _build_vocabulary(tokenizer) -> Vocabulary:
    try:
        return Vocabulary.from_tokenizer(tokenizer)
    except ConstrainError as first:
        for attr in ("tokenizer", "_tokenizer", "hf_tokenizer", "mistral"):
            inner = getattr(tokenizer, attr, None)
            if inner is not None and inner is not tokenizer:
                try:
                    return Vocabulary.from_tokenizer(inner)
                except ConstrainError:
                    continue
        path = getattr(tokenizer, "name_or_path", None)
        if path:
            try:
                return Vocabulary.from_tokenizer(str(path))
            except ConstrainError:
                pass
        raise first


class VocabularyCache:
    """One vocabulary per (tokenizer, logits width, stop-id set), built once, thread-safe."""

    def __init__(self, tokenizer, width: int | None = None):
        self._tokenizer = tokenizer
        self.width = width
        self._base: Vocabulary | None = None
        self._by_stops: dict[tuple[int, ...] | None, Vocabulary] = {}
        self._lock = threading.Lock()

    @property
    def base(self) -> Vocabulary:
        with self._lock:
            if self._base is None:
                v = vocabulary_of(self._tokenizer)
                if self.width is not None and self.width < v.n_vocab:
                    v = restrict_vocabulary(v, width=self.width)
                self._base = v
            return self._base

    def get(self, stop_ids: Iterable[int] | None = None) -> Vocabulary:
        key = None if stop_ids is None else tuple(sorted(set(int(s) for s in stop_ids)))
        base = self.base
        if key is None or key == tuple(base.eos_ids):
            return base
        with self._lock:
            v = self._by_stops.get(key)
            if v is None:
                v = self._by_stops[key] = restrict_vocabulary(base, eos_ids=key)
            return v


# ----------------------------------------------------------------------------- masks
_SHIFTS: dict = {}


def apply_bitmask_rows(logits, bitmask: np.ndarray, rows: list[int] | None = None) -> None:
    """Set the disallowed logits of ``rows`` (all rows when ``None``) to ``-inf`` in place.

    ``bitmask[i]`` (int32 layout) is the mask of ``logits[rows[i]]``; columns past the
    bitmask's width are disallowed.  Works for CPU and CUDA logits.
    """
    import torch

    k = len(rows) if rows is not None else logits.shape[0]
    if k == 0:
        return
    dev = logits.device
    bm = torch.from_numpy(np.ascontiguousarray(bitmask[:k]))
    if dev.type != "cpu":
        bm = bm.pin_memory().to(dev, non_blocking=True) if torch.cuda.is_available() else bm.to(dev)
    shifts = _SHIFTS.get(dev)
    if shifts is None:
        shifts = _SHIFTS[dev] = torch.arange(32, device=dev, dtype=torch.int32)
    width = logits.shape[1]
    n = min(width, bm.shape[1] * 32)
    allowed = ((bm.unsqueeze(-1) >> shifts) & 1).bool().reshape(k, -1)[:, :n]
    if rows is None:
        logits[:, :n].masked_fill_(~allowed, float("-inf"))
        if n < width:
            logits[:, n:] = float("-inf")
        return
    idx = torch.as_tensor(rows, device=dev, dtype=torch.long)
    sub = logits.index_select(0, idx)
    sub[:, :n].masked_fill_(~allowed, float("-inf"))
    if n < width:
        sub[:, n:] = float("-inf")
    logits.index_copy_(0, idx, sub)
