"""One-call constrained generation with a transformers model.

    >>> from constrain import generate_json, models                         # doctest: +SKIP
    >>> model, tok = models.load_default()                                    # doctest: +SKIP
    >>> r = generate_json(model, tok, {"type": "object", "properties": {"name": {"type": "string"}},
    ...                                "required": ["name"]}, "Invent a person.")  # doctest: +SKIP
    >>> r.value, r.finish_reason                                              # doctest: +SKIP
    ({'name': 'Maria'}, 'stop')

:func:`generate_json` compiles a schema (a dict, JSON text, a pydantic model class or a Python
type), applies the chat template, adds a short instruction naming the expected keys, decodes
under a :class:`~constrain.decoding.processor.GrammarLogitsProcessor` and returns a
:class:`JsonResult` whose ``value`` has been parsed and checked with ``jsonschema``.
:func:`generate` does the same for Lark grammars, regexes and choice lists (:class:`TextResult`).

The text of a result is the exact bytes the grammar matched (the matcher's output), not a
re-decoding of the token ids.  When ``max_new_tokens`` runs out before the grammar is complete
the result has ``finish_reason == "length"`` and ``value is None``: a truncated document is
never returned as if it were one.

Sampling: ``temperature > 0`` samples; temperature and ``top_p`` are applied *after* the grammar
mask (transformers' own warpers, which run before custom processors, are switched off), so a
top-p cut never removes every allowed token.
"""

from __future__ import annotations

import codecs
import json
import os
import time
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from constrain.errors import ConfigError, ConstrainError

__all__ = ["CompiledSchema", "GenerationStream", "JsonResult", "OutputValidationError", "StreamChunk", "TextResult",
           "compile_schema", "generate", "generate_json", "schema_instruction", "stream", "stream_json"]


class OutputValidationError(ConstrainError, AssertionError):
    """A completed constrained output does not parse or does not validate against its schema.

    The grammar guarantees validity, so this is a bug in constrain (report it with the schema
    and ``text``); lenient mode with unenforced keywords reports such errors in the result instead.
    """

    def __init__(self, message: str, *, text: str, errors: list[str]):
        self.text = text
        self.errors = errors
        super().__init__(message)


@dataclass
class TextResult:
    """Result of :func:`generate`.

    ``finish_reason`` is ``"stop"`` when the grammar was complete and the model ended (or
    nothing but the end could follow), ``"length"`` when ``max_new_tokens`` ran out first.
    """

    text: str
    finish_reason: str
    prompt_tokens: int
    new_tokens: int
    seconds: float
    tokens_per_second: float
    #: tokens appended by fast-forward (forced by the grammar, not sampled); included in new_tokens
    forced_tokens: int = 0
    #: model calls, prompt included (None for beam search through ``model.generate``)
    forward_passes: int | None = None
    #: ``sampling="asap"|"awrs"|"smc"``: the method, ``p_grammatical`` (its estimate of
    #: P(grammatical | prompt) within ``max_new_tokens``) and constraint checks per token
    sampling: dict | None = None
    token_ids: list[int] = field(default_factory=list, repr=False)

    @property
    def complete(self) -> bool:
        return self.finish_reason == "stop"

    def as_dict(self) -> dict:
        d = {k: getattr(self, k) for k in self.__dataclass_fields__ if k != "token_ids"}
        d["seconds"] = round(self.seconds, 3)
        d["tokens_per_second"] = round(self.tokens_per_second, 2)
        if self.sampling is not None:
            d["sampling"] = {k: v for k, v in self.sampling.items() if k != "sampler"}
        return d


@dataclass
class JsonResult(TextResult):
    """Result of :func:`generate_json`.

    ``value`` is the parsed document (a pydantic instance when a pydantic model was given, the
    validated Python object when a Python type was given) or ``None`` when ``finish_reason`` is
    ``"length"``.  ``valid``/``errors`` say whether ``value`` validates against the schema (always
    true for a complete output unless lenient mode left keywords unenforced); ``unenforced``
    lists the ``(keyword, json_pointer, reason)`` that lenient mode dropped.
    """

    value: Any = None
    valid: bool = False
    errors: list[str] = field(default_factory=list)
    unenforced: list = field(default_factory=list)

    def as_dict(self) -> dict:
        d = super().as_dict()
        v = self.value
        if hasattr(v, "model_dump"):
            v = v.model_dump(mode="json")
        d["value"] = v
        d["unenforced"] = [list(u) for u in self.unenforced]
        return d


# --------------------------------------------------------------------------- helpers

_vocab_cache: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def _vocabulary(tokenizer):
    """The tokenizer's byte vocabulary, built once per tokenizer object."""
    from constrain.tokenizers.adapters import vocabulary_from
    from constrain.tokenizers.vocabulary import Vocabulary

    if isinstance(tokenizer, Vocabulary):
        return tokenizer
    try:
        v = _vocab_cache.get(tokenizer)
    except TypeError:  # not weak-referenceable / hashable
        return vocabulary_from(tokenizer)
    if v is None:
        v = _vocab_cache[tokenizer] = vocabulary_from(tokenizer)
    return v


def _stream_callback(stream) -> Callable[[str], None] | None:
    if stream is None or stream is False:
        return None
    if callable(stream):
        return stream
    if hasattr(stream, "write"):
        def cb(s, _f=stream):
            _f.write(s)
            if hasattr(_f, "flush"):
                _f.flush()
        return cb
    raise ConfigError(f"stream must be a callable or a writable file, got {type(stream).__name__}")


class _ByteStreamer:
    """A transformers streamer (``put``/``end``) that decodes the exact token bytes of the
    vocabulary incrementally and hands text pieces to a callback, in the generating thread."""

    def __init__(self, vocab, callback):
        self.callback = callback
        self.prompt_seen = False
        self.text = _TextDecoder(vocab)

    def put(self, value):
        if not self.prompt_seen:  # generate passes the prompt first
            self.prompt_seen = True
            return
        s = self.text.push(value.reshape(-1).tolist())
        if s:
            self.callback(s)

    def end(self):
        s = self.text.flush()
        if s:
            self.callback(s)


class _TextDecoder:
    """Exact token bytes -> text pieces, incrementally (a UTF-8 character split across tokens
    comes out whole once its last byte arrives)."""

    def __init__(self, vocab):
        self.vocab = vocab
        self.decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self._text = vocab.text_mask

    def push(self, ids) -> str:
        n = self.vocab.n_vocab
        data = b"".join(self.vocab.token_bytes(t) for t in ids if 0 <= t < n and self._text[t])
        return self.decoder.decode(data) if data else ""

    def flush(self) -> str:
        return self.decoder.decode(b"", final=True)


def _check_sampling(max_new_tokens, temperature, top_p, num_beams) -> None:
    from constrain.decoding.loop import check_options

    check_options(max_new_tokens, temperature, top_p)
    if num_beams < 1:
        raise ConfigError(f"num_beams must be >= 1, got {num_beams}")


def _encoder(tokenizer):
    """``text -> ids`` without special tokens, for fast-forward (``None`` if the tokenizer has none)."""
    enc = getattr(tokenizer, "encode", None)
    if enc is None:
        return None

    def encode(text, _enc=enc):
        try:
            return list(_enc(text, add_special_tokens=False))
        except TypeError:  # a tokenizer whose encode takes no such keyword
            return list(_enc(text))

    return encode


def _steps(model, tokenizer, processor, input_ids, *, max_new_tokens: int, temperature: float, top_p: float,
           seed: int | None, fast_forward: bool, overlap, run: dict):
    """Yield the token ids of each step of the one-sequence loop (:mod:`.loop`); fill ``run``."""
    from constrain.decoding.loop import DecodeStats, decode

    m = processor.new_matcher()
    stats = DecodeStats()
    run.update(matcher=m, stats=stats, prompt_tokens=int(input_ids.shape[1]))
    new: list[int] = []
    for step in decode(model, m, input_ids, encode=_encoder(tokenizer) if fast_forward else None,
                       max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p, seed=seed,
                       fast_forward=fast_forward, overlap=overlap, stats=stats):
        new.extend(step)
        yield step
    run.update(finished=stats.finished, new_tokens=stats.new_tokens, seconds=stats.seconds, token_ids=new)


def _run_generate(model, tokenizer, processor, input_ids, *, max_new_tokens: int, temperature: float, top_p: float,
                  seed: int | None, num_beams: int, stream) -> dict:
    """Run ``model.generate`` under ``processor`` (beam search); return the replayed matcher and timings."""
    import torch
    from transformers import LogitsProcessorList, TemperatureLogitsWarper, TopPLogitsWarper

    callback = _stream_callback(stream)
    if callback is not None and num_beams > 1:
        raise ConfigError("streaming is not possible with beam search (transformers streams one sequence)")
    do_sample = temperature > 0
    procs = LogitsProcessorList([processor])
    if do_sample:
        # after the grammar mask: a warper run first could cut away every allowed token
        if temperature != 1.0:
            procs.append(TemperatureLogitsWarper(float(temperature)))
        if top_p < 1.0:
            procs.append(TopPLogitsWarper(float(top_p), min_tokens_to_keep=max(1, num_beams)))
    if seed is not None:
        torch.manual_seed(int(seed))
    device = getattr(model, "device", None)
    if device is not None:
        input_ids = input_ids.to(device)
    pad = tokenizer.pad_token_id if getattr(tokenizer, "pad_token_id", None) is not None else tokenizer.eos_token_id
    kwargs = dict(input_ids=input_ids, attention_mask=torch.ones_like(input_ids), max_new_tokens=int(max_new_tokens),
                  min_new_tokens=0, do_sample=do_sample, num_beams=int(num_beams), logits_processor=procs,
                  pad_token_id=pad)
    if processor.vocab.eos_ids:
        # stop exactly on the ids the grammar ends with (a model's generation config may list others)
        kwargs["eos_token_id"] = list(processor.vocab.eos_ids)
    if do_sample:
        kwargs.update(temperature=1.0, top_k=0, top_p=1.0)  # transformers' warpers off (ours run after the mask)
    if callback is not None:
        kwargs["streamer"] = _ByteStreamer(processor.vocab, callback)
    processor.reset()
    t0 = time.perf_counter()
    with torch.inference_mode():
        out = model.generate(**kwargs)
    seconds = time.perf_counter() - t0
    seq = out[0] if not hasattr(out, "sequences") else out.sequences[0]
    n_prompt = int(input_ids.shape[1])
    new = seq[n_prompt:].tolist()
    m = processor.replay(new)
    finished = m.is_finished()
    if not finished and m.is_complete():
        # the limit was hit exactly when the grammar could only end: nothing is missing
        finished = not m.parser.next_bytes(limit=1)
    n_new = m.n_tokens if m.is_finished() else len(new)
    return {"matcher": m, "finished": finished, "prompt_tokens": n_prompt, "new_tokens": n_new,
            "seconds": seconds, "token_ids": new[:n_new], "stats": None}


def _run(model, tokenizer, processor, input_ids, *, max_new_tokens: int, temperature: float, top_p: float,
         seed: int | None, num_beams: int, stream, fast_forward: bool = True, overlap: bool | str = "auto",
         sampling: str | None = None, particles: int | None = None, asap_sampler=None) -> dict:
    """Decode one prompt: the one-sequence loop (fast-forward, overlapped masks), or
    ``model.generate`` with the logits processor for beam search."""
    _check_sampling(max_new_tokens, temperature, top_p, num_beams)
    if sampling not in (None, "mask"):
        if num_beams > 1:
            raise ConfigError(f"sampling={sampling!r} does not combine with beam search")
        return _run_sampling(model, processor, input_ids, sampling=sampling, particles=particles,
                             asap_sampler=asap_sampler, max_new_tokens=max_new_tokens, temperature=temperature,
                             top_p=top_p, seed=seed, stream=stream)
    if particles is not None or asap_sampler is not None:
        raise ConfigError("particles= / asap_sampler= need sampling='smc' / 'asap'")
    if num_beams > 1:
        return _run_generate(model, tokenizer, processor, input_ids, max_new_tokens=max_new_tokens,
                             temperature=temperature, top_p=top_p, seed=seed, num_beams=num_beams, stream=stream)
    callback = _stream_callback(stream)
    run: dict = {}
    text = _TextDecoder(processor.vocab)
    for step in _steps(model, tokenizer, processor, input_ids, max_new_tokens=max_new_tokens,
                       temperature=temperature, top_p=top_p, seed=seed, fast_forward=fast_forward, overlap=overlap,
                       run=run):
        piece = text.push(step)
        if callback is not None and piece:
            callback(piece)
    piece = text.flush()
    if callback is not None and piece:
        callback(piece)
    return run


def _run_sampling(model, processor, input_ids, *, sampling: str, particles, asap_sampler, max_new_tokens: int,
                  temperature: float, top_p: float, seed, stream) -> dict:
    """One sequence by ASAp / AWRS / SMC (:mod:`constrain.sampling`).  They sample the model's own
    distribution, so they need ``temperature > 0`` and no nucleus cut; SMC returns one particle
    drawn by weight.  The whole text is streamed at the end (these methods finish sequences
    before choosing one)."""
    from constrain.sampling import METHODS, SamplingError, TransformersLM, sample

    if sampling not in METHODS:
        raise ConfigError(f"sampling must be one of {METHODS}, got {sampling!r}")
    if temperature <= 0 or top_p < 1:
        raise ConfigError(f"sampling={sampling!r} samples the model's distribution: it needs temperature > 0 "
                          f"and top_p=1 (got temperature={temperature}, top_p={top_p})")
    callback = _stream_callback(stream)
    lm = TransformersLM(model, input_ids[0], temperature=temperature, n_caches=particles or 1)
    if asap_sampler is not None:
        asap_sampler.lm = lm  # the trie persists; the model wrapper is this call's
    t0 = time.perf_counter()
    r = sample(lm, processor.new_matcher(), method=sampling, n=1, max_tokens=max_new_tokens, rng=seed,
               particles=particles if sampling == "smc" else None,
               sampler=asap_sampler if sampling == "asap" else None)
    if sampling == "asap":
        s = r.samples[0]
    else:
        try:
            s = r.resample(1, rng=seed)[0]  # a particle (or the AWRS draw) by importance weight
        except SamplingError:  # no particle finished: report the first, unfinished
            s = r.samples[0]
    seconds = time.perf_counter() - t0
    m = processor.replay(s.token_ids)
    if callback is not None and m.output:
        callback(m.output.decode("utf-8", errors="replace"))
    info = {"method": sampling, "p_grammatical": r.p_grammatical,
            "checks_per_token": s.n_checks / max(1, s.n_steps)}
    if sampling == "asap":
        info["sampler"] = r.stats.get("sampler")
    return {"matcher": m, "finished": m.is_finished(), "prompt_tokens": int(input_ids.shape[1]),
            "new_tokens": len(s.token_ids), "seconds": seconds, "token_ids": list(s.token_ids), "stats": None,
            "sampling": info}


def _result_fields(run: dict) -> dict:
    m = run["matcher"]
    st = run.get("stats")
    return dict(text=m.output.decode("utf-8", errors="replace"), finish_reason="stop" if run["finished"] else "length",
                prompt_tokens=run["prompt_tokens"], new_tokens=run["new_tokens"], seconds=run["seconds"],
                tokens_per_second=run["new_tokens"] / run["seconds"] if run["seconds"] > 0 else 0.0,
                forced_tokens=st.forced_tokens if st is not None else 0,
                forward_passes=st.forward_passes if st is not None else None,
                sampling=run.get("sampling"), token_ids=run["token_ids"])


# --------------------------------------------------------------------------- schemas

@dataclass
class _SchemaSpec:
    schema: Any  # dict / bool: what jsonschema validates against
    source: Any  # what compile_json_schema gets (JSON text keeps exact decimals)
    convert: Callable[[str, Any], Any] | None = None  # (text, parsed) -> value (pydantic)


def _looks_like_json_text(s: str) -> bool:
    t = s.strip()
    return t.startswith("{") or t in ("true", "false")


def _schema_spec(schema) -> _SchemaSpec:
    from constrain.jsonschema.compiler import close_pydantic_objects

    if isinstance(schema, (dict, bool)):
        return _SchemaSpec(schema, schema)
    if isinstance(schema, (str, os.PathLike)):
        if isinstance(schema, str) and _looks_like_json_text(schema):
            text = schema
        else:
            p = Path(schema)
            try:
                text = p.read_text(encoding="utf-8")
            except OSError as e:
                raise ConfigError(f"schema is neither JSON text nor a readable file: {schema!s:.80}: {e}") from None
        try:
            return _SchemaSpec(json.loads(text), text)
        except ValueError as e:
            raise ConfigError(f"schema is not valid JSON: {e}") from None
    if schema is None or isinstance(schema, (list, tuple, int, float, bytes)):
        raise ConfigError(f"a JSON Schema is an object or a boolean, got {type(schema).__name__}")
    if isinstance(schema, type) and hasattr(schema, "model_json_schema") and hasattr(schema, "model_validate_json"):
        s = close_pydantic_objects(schema.model_json_schema())
        return _SchemaSpec(s, s, lambda text, _v, _m=schema: _m.model_validate_json(text))
    try:
        from pydantic import TypeAdapter
    except ImportError:
        raise ConfigError(f"schema must be a dict, JSON text or a path; {schema!r} needs pydantic>=2 "
                          "to be read as a Python type") from None
    try:
        ta = TypeAdapter(schema)
        s = close_pydantic_objects(json.loads(json.dumps(ta.json_schema())))
    except Exception as e:  # pydantic raises several types for unsupported hints
        raise ConfigError(f"cannot derive a JSON Schema from {schema!r}: {e}") from None
    return _SchemaSpec(s, s, lambda text, _v, _ta=ta: _ta.validate_json(text))


@dataclass
class CompiledSchema:
    """A schema compiled once for repeated :func:`generate_json` calls (see :func:`compile_schema`)."""

    grammar: Any
    schema: Any  # what the output is validated against
    unenforced: list = field(default_factory=list)
    convert: Callable[[str, Any], Any] | None = field(default=None, repr=False)
    options: dict = field(default_factory=dict, repr=False)


def compile_schema(schema, *, lenient: bool = False, whitespace: str = "compact", **options) -> CompiledSchema:
    """Compile anything :func:`generate_json` accepts as a schema; pass the result to
    :func:`generate_json` to skip compiling on every call.  Raises
    :class:`~constrain.errors.UnsupportedSchemaFeature` (strict mode) or ``ConfigError``."""
    from constrain.jsonschema import compile_json_schema

    if isinstance(schema, CompiledSchema):
        return schema
    spec = _schema_spec(schema)
    if lenient:
        grammar, unenforced = compile_json_schema(spec.source, lenient=True, whitespace=whitespace, **options)
    else:
        grammar, unenforced = compile_json_schema(spec.source, whitespace=whitespace, **options), []
    return CompiledSchema(grammar, spec.schema, list(unenforced), spec.convert, dict(options))


def schema_instruction(schema) -> str:
    """A short instruction for the user turn.  Small chat models follow a list of keys far
    better than a whole schema (SmolLM2-135M copies schemas instead of filling them)."""
    if not isinstance(schema, dict):
        return "Answer in JSON."
    props = schema.get("properties")
    if schema.get("type") == "object" or props:
        names = list(props) if isinstance(props, dict) else []
        required = [k for k in schema.get("required", []) if isinstance(k, str)]
        if not names and not required:
            return "Answer with a JSON object."
        if not required:
            return f"Answer with a JSON object with the keys: {', '.join(names)}."
        # listing optional keys as such keeps small models from wandering into every one of them
        optional = [k for k in names if k not in required]
        return (f"Answer with a JSON object with the keys: {', '.join(required)}"
                + (f" (optional: {', '.join(optional)})" if optional else "") + ".")
    if schema.get("type") == "array":
        return "Answer with a JSON array."
    if "enum" in schema and isinstance(schema["enum"], list) and len(schema["enum"]) <= 20:
        return "Answer with one of: " + ", ".join(json.dumps(v) for v in schema["enum"]) + "."
    return "Answer in JSON."


def _validator(schema, registry=None):
    import jsonschema

    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    kw = {"format_checker": cls.FORMAT_CHECKER}
    if registry is not None:
        kw["registry"] = registry
    return cls(schema, **kw)


def _validation_errors(cs: "CompiledSchema", text: str, parsed) -> list[str]:
    """jsonschema errors of ``parsed``.  jsonschema checks numbers in binary floating point
    (``0.3`` is "not a multiple of ``0.1``"); the grammar's number automata are exact
    decimals, so a float-only failure is re-checked with ``Decimal`` numbers on both sides."""
    registry = cs.options.get("registry")

    def run(schema, value):
        return [f"{e.message} (at /{'/'.join(str(p) for p in e.absolute_path)})"
                for e in _validator(schema, registry).iter_errors(value)]

    errors = run(cs.schema, parsed)
    if errors and isinstance(cs.schema, dict):
        from decimal import Decimal

        try:
            exact = run(json.loads(json.dumps(cs.schema), parse_float=Decimal), json.loads(text, parse_float=Decimal))
        except Exception:  # a schema jsonschema cannot evaluate on Decimals: keep the float verdict
            return errors
        if not exact:
            return []
    return errors


def _with_instruction(prompt: str, instruction) -> str:
    if not instruction:
        return prompt
    return f"{prompt}\n{instruction}"


# --------------------------------------------------------------------------- public

def generate_json(model, tokenizer, schema, prompt: str, *, max_new_tokens: int = 256, temperature: float = 0.0,
                  top_p: float = 1.0, seed: int | None = None, system: str | None = None, lenient: bool = False,
                  whitespace: str = "compact", stream=None, num_beams: int = 1, instruction: str | bool | None = None,
                  fast_forward: bool = True, overlap: bool | str = "auto", sampling: str | None = None,
                  particles: int | None = None, asap_sampler=None, **compile_options) -> JsonResult:
    """Generate one JSON document valid against ``schema``.

    Parameters
    ----------
    schema:
        A JSON Schema (dict or bool), JSON text, a path to a schema file, a pydantic model class,
        a Python type (``list[int]``, a ``TypedDict``, a dataclass …; needs pydantic), or a
        :class:`CompiledSchema` from :func:`compile_schema` (compiled once, reused).
    prompt, system:
        The user turn (the chat template is applied when the tokenizer has one) and an optional
        system turn.
    max_new_tokens, temperature, top_p, seed, num_beams:
        Decoding: ``temperature == 0`` is greedy; ``seed`` seeds torch before sampling.
    lenient, whitespace, **compile_options:
        Passed to :func:`~constrain.jsonschema.compile_json_schema` (``separators=``,
        ``property_order=``, ``max_whitespace=``, ``dialect=``, ``registry=``).
    stream:
        A callable (or a writable file) receiving text pieces as they are generated
        (:func:`stream_json` is the iterator form, with the partial value).
    fast_forward, overlap:
        Append grammar-forced tokens without sampling them (one forward pass for all), and fill
        each mask on a worker thread while the model runs (see :mod:`constrain.decoding.loop`).
    sampling, particles, asap_sampler:
        ``None`` (masking, the default) or a distribution-correct method of
        :mod:`constrain.sampling`: ``"asap"`` (pass ``asap_sampler=ASApSampler(...)`` to keep its
        learned estimates across calls), ``"awrs"`` (rejection sampling with importance weights,
        no full masks), ``"smc"`` with ``particles=N``.  They need ``temperature > 0``;
        ``result.sampling`` has the estimate of P(grammatical | prompt).
    instruction:
        Appended to the prompt: ``None`` = a short one from the schema (the expected keys),
        ``False`` = none, a string = that string.

    Raises :class:`~constrain.errors.UnsupportedSchemaFeature` (strict mode) before the model
    runs, and :class:`OutputValidationError` if a complete output ever fails validation (a bug).
    """
    cs, ids, proc = _json_setup(tokenizer, schema, prompt, lenient=lenient, whitespace=whitespace, system=system,
                                instruction=instruction, compile_options=compile_options)
    run = _run(model, tokenizer, proc, ids, max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p,
               seed=seed, num_beams=num_beams, stream=stream, fast_forward=fast_forward, overlap=overlap,
               sampling=sampling, particles=particles, asap_sampler=asap_sampler)
    return _json_result(cs, _result_fields(run), max_new_tokens)


def _json_setup(tokenizer, schema, prompt, *, lenient, whitespace, system, instruction, compile_options):
    from constrain.decoding.processor import GrammarLogitsProcessor
    from constrain.decoding.text import chat_input_ids

    if isinstance(schema, CompiledSchema):
        if compile_options or lenient or whitespace != "compact":
            raise ConfigError("schema is already compiled: pass lenient=/whitespace=/... to compile_schema instead")
        cs = schema
    else:
        cs = compile_schema(schema, lenient=lenient, whitespace=whitespace, **compile_options)
    if instruction is None:
        instruction = schema_instruction(cs.schema)
    ids = chat_input_ids(tokenizer, _with_instruction(prompt, instruction), system)
    proc = GrammarLogitsProcessor(cs.grammar, _vocabulary(tokenizer),
                                  pad_token_id=getattr(tokenizer, "pad_token_id", None))
    return cs, ids, proc


def _json_result(cs: CompiledSchema, fields: dict, max_new_tokens: int) -> JsonResult:
    """Parse and validate a finished run (a truncated one is reported, never returned as a value)."""
    unenforced = cs.unenforced
    text = fields["text"]
    if fields["finish_reason"] != "stop":
        return JsonResult(**fields, value=None, valid=False, unenforced=unenforced,
                          errors=[f"output truncated: max_new_tokens={max_new_tokens} ran out before the JSON "
                                  f"document was complete"])
    try:
        parsed = json.loads(text)
    except ValueError as e:
        raise OutputValidationError(f"constrained output is not JSON ({e}); this is a bug in constrain: {text[:200]!r}",
                                    text=text, errors=[str(e)]) from None
    errors = _validation_errors(cs, text, parsed)
    if errors and not unenforced:
        raise OutputValidationError(
            f"constrained output does not validate against its schema; this is a bug in constrain: "
            f"{'; '.join(errors[:3])}; output {text[:200]!r}", text=text, errors=errors)
    value = parsed
    if cs.convert is not None and not errors:
        value = cs.convert(text, parsed)
    return JsonResult(**fields, value=value, valid=not errors, errors=errors, unenforced=unenforced)


def _text_grammar(grammar, regex, choices):
    from constrain.grammar import Grammar, from_choices, from_lark, from_regex

    given = [x is not None for x in (grammar, regex, choices)]
    if sum(given) != 1:
        raise ConfigError("pass exactly one of grammar=, regex=, choices=")
    if grammar is not None:
        if isinstance(grammar, Grammar):
            return grammar
        if isinstance(grammar, os.PathLike):
            return from_lark(Path(grammar))
        return from_lark(grammar)
    if regex is not None:
        return from_regex(regex)
    choices = list(choices)
    if not choices or not all(isinstance(c, str) for c in choices):
        raise ConfigError("choices must be a non-empty list of strings")
    return from_choices(choices)


def generate(model, tokenizer, prompt: str, *, grammar=None, regex: str | None = None, choices=None,
             max_new_tokens: int = 128, temperature: float = 0.0, top_p: float = 1.0, seed: int | None = None,
             system: str | None = None, stream=None, num_beams: int = 1,
             instruction: str | bool | None = None, fast_forward: bool = True, overlap: bool | str = "auto",
             sampling: str | None = None, particles: int | None = None, asap_sampler=None) -> TextResult:
    """Generate text matching a Lark grammar (a :class:`~constrain.grammar.ir.Grammar`, grammar
    text or a ``.lark`` path), a regular expression, or one of a list of strings.

    ``instruction=None`` appends "Answer with one of: …" for ``choices`` and nothing otherwise.
    The decoding options are :func:`generate_json`'s (``sampling=`` included).
    """
    ids, proc = _text_setup(tokenizer, prompt, grammar, regex, choices, system=system, instruction=instruction)
    run = _run(model, tokenizer, proc, ids, max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p,
               seed=seed, num_beams=num_beams, stream=stream, fast_forward=fast_forward, overlap=overlap,
               sampling=sampling, particles=particles, asap_sampler=asap_sampler)
    return TextResult(**_result_fields(run))


def _text_setup(tokenizer, prompt, grammar, regex, choices, *, system, instruction):
    from constrain.decoding.processor import GrammarLogitsProcessor
    from constrain.decoding.text import chat_input_ids

    g = _text_grammar(grammar, regex, choices)
    if instruction is None:
        instruction = ("Answer with one of: " + ", ".join(choices) + ".") if choices is not None else False
    ids = chat_input_ids(tokenizer, _with_instruction(prompt, instruction), system)
    proc = GrammarLogitsProcessor(g, _vocabulary(tokenizer), pad_token_id=getattr(tokenizer, "pad_token_id", None))
    return ids, proc


# --------------------------------------------------------------------------- streaming

@dataclass
class StreamChunk:
    """One step of a stream: the text it added, the whole text so far, and (JSON streams) the
    value that text determines so far (:func:`~constrain.decoding.partial_json.parse_partial`;
    ``MISSING`` before any value has started)."""

    text: str
    output: str
    tokens: list[int]
    #: how many of ``tokens`` were fast-forwarded (forced by the grammar)
    forced: int
    #: whether ``partial`` reads ``output`` as JSON (JSON streams) or is ``None``
    is_json: bool = False

    @property
    def partial(self) -> Any:
        # parsed on first access only: re-reading the whole output at every step would make a
        # stream quadratic for consumers that never look at the value
        if not self.is_json:
            return None
        if "_partial" not in self.__dict__:
            from constrain.decoding.partial_json import parse_partial

            self.__dict__["_partial"] = parse_partial(self.output)
        return self.__dict__["_partial"]


class GenerationStream:
    """An iterator of :class:`StreamChunk`; once exhausted, :attr:`result` holds the
    :class:`JsonResult` / :class:`TextResult` that :func:`generate_json` / :func:`generate`
    would have returned.  Lifetime: one generation; iterate it once."""

    def __init__(self, steps, vocab, finish, *, partial: bool, run: dict):
        self._steps = steps
        self._run = run
        self._finish = finish
        self._partial = partial
        self._text = _TextDecoder(vocab)
        self._vocab = vocab
        self.result = None
        self.output = ""

    def __iter__(self):
        forced_before = 0
        for step in self._steps:
            piece = self._text.push(step)
            self.output += piece
            forced_now = self._run["stats"].forced_tokens
            forced, forced_before = forced_now - forced_before, forced_now
            yield StreamChunk(piece, self.output, list(step), forced, self._partial)
        tail = self._text.flush()
        if tail:
            self.output += tail
            yield StreamChunk(tail, self.output, [], 0, self._partial)
        self.result = self._finish()


def stream_json(model, tokenizer, schema, prompt: str, *, max_new_tokens: int = 256, temperature: float = 0.0,
                top_p: float = 1.0, seed: int | None = None, system: str | None = None, lenient: bool = False,
                whitespace: str = "compact", instruction: str | bool | None = None, fast_forward: bool = True,
                overlap: bool | str = "auto", **compile_options) -> GenerationStream:
    """:func:`generate_json` as an iterator of :class:`StreamChunk` with the partial value::

        s = stream_json(model, tok, schema, "Invent a person.")
        for chunk in s:
            print(chunk.partial)        # {} → {'name': 'Ma'} → {'name': 'Maria', 'age': 3} → ...
        s.result.value                  # the validated document

    The schema is compiled (and refused) when this is called, before the model runs.
    """
    cs, ids, proc = _json_setup(tokenizer, schema, prompt, lenient=lenient, whitespace=whitespace, system=system,
                                instruction=instruction, compile_options=compile_options)
    _check_sampling(max_new_tokens, temperature, top_p, 1)
    run: dict = {}
    steps = _steps(model, tokenizer, proc, ids, max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p,
                   seed=seed, fast_forward=fast_forward, overlap=overlap, run=run)
    return GenerationStream(steps, proc.vocab, lambda: _json_result(cs, _result_fields(run), max_new_tokens),
                            partial=True, run=run)


def stream(model, tokenizer, prompt: str, *, grammar=None, regex: str | None = None, choices=None,
           max_new_tokens: int = 128, temperature: float = 0.0, top_p: float = 1.0, seed: int | None = None,
           system: str | None = None, instruction: str | bool | None = None, fast_forward: bool = True,
           overlap: bool | str = "auto") -> GenerationStream:
    """:func:`generate` as an iterator of :class:`StreamChunk` (``partial`` is ``None``)."""
    ids, proc = _text_setup(tokenizer, prompt, grammar, regex, choices, system=system, instruction=instruction)
    _check_sampling(max_new_tokens, temperature, top_p, 1)
    run: dict = {}
    steps = _steps(model, tokenizer, proc, ids, max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p,
                   seed=seed, fast_forward=fast_forward, overlap=overlap, run=run)
    return GenerationStream(steps, proc.vocab, lambda: TextResult(**_result_fields(run)), partial=False, run=run)
