"""The ``constrain`` command.

    constrain json --schema FILE PROMPT      JSON valid against a JSON Schema (constrained decoding),
                                             on the embedded default model
    constrain generate (--grammar FILE | --regex R | --choices A,B,C) PROMPT
                                             text in a Lark grammar's language, matching a regex,
                                             or one of a list of strings
    constrain check SCHEMA_OR_GRAMMAR        compile verdict (refused keywords with JSON pointers),
                                             compile time, mask-time percentiles, an example document
    constrain explain SCHEMA_OR_GRAMMAR TEXT walk TEXT token by token: allowed-token counts, forced
                                             bytes, and where and why it is rejected
    constrain audit-tokenizer NAME_OR_PATH   check a tokenizer's byte vocabulary
    constrain model-info                     where the default model is cached, load time

Every subcommand takes ``--json`` for machine-readable output where it makes sense.  ``json``
and ``generate`` stream the output to stdout as it is produced (stats go to stderr); with
``--json`` they print one object: ``text``, ``value`` (``json`` only), ``valid``, ``errors``,
``finish_reason`` (``"stop"``, or ``"length"`` when ``--max-new-tokens`` ran out first: then
``value`` is null), token counts and timings.

Exit codes: 0 generated (check ``finish_reason`` for truncation), 1 generation failed,
2 bad input (unreadable schema or grammar, a keyword that cannot be enforced — its JSON
pointer is printed; ``--lenient`` drops such keywords instead).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from pathlib import Path


def _progress(msg: str) -> None:
    print(f"[constrain] {msg}", file=sys.stderr, flush=True)


def _load_model(args):
    from constrain import models

    threads = args.threads if args.threads is not None else (
        int(os.environ["CONSTRAIN_NUM_THREADS"]) if os.environ.get("CONSTRAIN_NUM_THREADS") else None)
    t0 = time.perf_counter()
    if args.model:
        models.set_num_threads(threads)
        _progress(f"loading model from {args.model}")
        model, tok = models.load_pretrained_dir(args.model)
    else:
        if not models.is_cached():
            _progress("first run: preparing the embedded default model SmolLM2-135M-Instruct")
        model, tok = models.load_default(threads=threads, progress=_progress)
    _progress(f"model ready in {time.perf_counter() - t0:.1f} s")
    return model, tok


def _warm_store(grammar, tok) -> None:
    """Build the vocabulary, the (grammar, vocabulary) token store and the first mask now, with
    a progress line: on a first run this includes loading numba's compiled kernels."""
    from constrain.decoding.generate import _vocabulary
    from constrain.engine.matcher import Matcher

    t0 = time.perf_counter()
    vocab = _vocabulary(tok)
    Matcher(grammar, vocab).next_token_mask()
    _progress(f"token store ready in {time.perf_counter() - t0:.1f} s (vocabulary, numba kernels, first mask)")


def _schema_error(path: str, e) -> int:
    from constrain.errors import UnsupportedSchemaFeature

    kind = "unsupported schema keyword" if isinstance(e, UnsupportedSchemaFeature) else "invalid schema"
    where = f" at {e.pointer or '/'}" if getattr(e, "pointer", None) is not None else ""
    msg = getattr(e, "message", None) or str(e)
    print(f"constrain: {kind} in {path}{where}: {msg}", file=sys.stderr)
    if isinstance(e, UnsupportedSchemaFeature):
        print("constrain: --lenient generates anyway, without enforcing what cannot be enforced", file=sys.stderr)
    return 2


def _stream_to_terminal(args):
    if args.json:
        return None

    def write(piece: str) -> None:
        sys.stdout.write(piece)
        sys.stdout.flush()

    return write


def _decoding_opts(args) -> dict:
    opts = dict(max_new_tokens=args.max_new_tokens, temperature=args.temperature, top_p=args.top_p, seed=args.seed,
                system=args.system)
    if args.sampling != "mask":
        opts.update(sampling=args.sampling, particles=args.particles if args.sampling == "smc" else None)
    return opts


def _run_decoding(call):
    """The result of ``call()``, or the exit code after printing why it failed: 2 for a bad
    option (``--max-new-tokens 0``, ``--top-p 2``), 1 for a generation that failed."""
    from constrain.errors import ConfigError, ConstrainError

    try:
        return call()
    except ConfigError as e:
        print(f"constrain: {e}", file=sys.stderr)
        return 2
    except ConstrainError as e:
        print(f"\nconstrain: {e}", file=sys.stderr)
        return 1


def _report(args, result, extra: dict, summary: str) -> None:
    if args.json:
        d = {**result.as_dict(), **extra}
        print(json.dumps(d, ensure_ascii=False))
        return
    print()
    ff = f", {result.forced_tokens} fast-forwarded" if result.forced_tokens else ""
    _progress(f"{result.new_tokens} tokens{ff} in {result.seconds:.1f} s ({result.tokens_per_second:.1f} tok/s), "
              f"finish={result.finish_reason}; {summary}")


def cmd_json(args) -> int:
    from constrain.decoding.generate import compile_schema, generate_json
    from constrain.errors import ConstrainError, GrammarError

    try:
        with open(args.schema, encoding="utf-8") as f:
            text = f.read()
        schema = json.loads(text)
    except (OSError, ValueError) as e:
        print(f"constrain: cannot read schema {args.schema}: {e}", file=sys.stderr)
        return 2
    opts = dict(lenient=args.lenient, whitespace=args.whitespace, property_order=args.property_order)
    # compile before loading the model: a schema error costs no model load
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # lenient mode: reported once below
            # the file's text keeps numbers as exact decimals (multipleOf 0.1, bounds)
            compiled = compile_schema(text if isinstance(schema, (dict, bool)) else schema, **opts)
    except GrammarError as e:
        return _schema_error(args.schema, e)
    except ConstrainError as e:
        print(f"constrain: {e}", file=sys.stderr)
        return 2
    for kw, ptr, why in compiled.unenforced:
        _progress(f"lenient: {kw} at {ptr or '/'} is not enforced ({why})")
    model, tok = _load_model(args)
    _warm_store(compiled.grammar, tok)
    result = _run_decoding(lambda: generate_json(model, tok, compiled, args.prompt, stream=_stream_to_terminal(args),
                                                 **_decoding_opts(args)))
    if isinstance(result, int):
        return result
    if result.finish_reason == "stop":
        summary = "schema-valid: " + ("yes" if result.valid else "no (lenient): " + "; ".join(result.errors[:3]))
    else:
        summary = f"truncated: raise --max-new-tokens (now {args.max_new_tokens}) for a complete document"
    _report(args, result, {"constrained": True}, summary)
    return 0


def cmd_generate(args) -> int:
    from constrain.decoding.generate import _text_grammar, generate
    from constrain.errors import ConstrainError

    choices = None
    if args.choices is not None:
        choices = args.choices.split(args.sep)
    grammar = None
    if args.grammar is not None:
        grammar = Path(args.grammar)
        if not grammar.is_file():
            print(f"constrain: cannot read grammar {args.grammar}: no such file", file=sys.stderr)
            return 2
    try:
        g = _text_grammar(grammar, args.regex, choices)  # errors before the model loads
    except ConstrainError as e:
        print(f"constrain: {e}", file=sys.stderr)
        return 2
    model, tok = _load_model(args)
    _warm_store(g, tok)
    # a choice list is spelled out for the model; a grammar or regex is the user's to describe
    instruction = ("Answer with one of: " + ", ".join(choices) + ".") if choices is not None else False
    result = _run_decoding(lambda: generate(model, tok, args.prompt, grammar=g, stream=_stream_to_terminal(args),
                                            instruction=instruction, **_decoding_opts(args)))
    if isinstance(result, int):
        return result
    complete = result.finish_reason == "stop"
    errors = [] if complete else [f"output truncated: max_new_tokens={args.max_new_tokens} ran out first"]
    _report(args, result, {"constrained": True, "valid": complete, "errors": errors},
            "matches the grammar" if complete else f"truncated: raise --max-new-tokens (now {args.max_new_tokens})")
    return 0


# ----------------------------------------------------------------- check / explain

def _encode_fn(tok):
    """``text -> ids`` (no special tokens) for the tokenizer objects ``load_named`` returns."""
    if hasattr(tok, "encode_batch") and hasattr(tok, "get_vocab"):  # tokenizers.Tokenizer
        return lambda s: tok.encode(s, add_special_tokens=False).ids
    if hasattr(tok, "EncodeAsIds"):  # sentencepiece
        return lambda s: list(tok.encode(s))
    if type(tok).__name__ == "Tekkenizer":
        return lambda s: list(tok.encode(s, bos=False, eos=False))
    return lambda s: list(tok.encode(s, add_special_tokens=False))


class _Source:
    """A schema / grammar / regex named on the command line, compiled."""

    def __init__(self, grammar, kind: str, label: str, seconds: float, refused: list, error: str | None = None):
        self.grammar, self.kind, self.label, self.seconds, self.refused, self.error = (
            grammar, kind, label, seconds, refused, error)


def _compile_source(spec: str, *, regex: bool, lenient_walk: bool = True) -> _Source:
    """Compile a JSON Schema file (``.json``), a Lark file (``.lark``) or, with ``regex``, a
    pattern.  A schema that strict mode refuses is compiled again leniently to list every
    refused keyword (and still walk a sample)."""
    from constrain.errors import UnsupportedSchemaFeature
    from constrain.grammar import from_lark, from_regex
    from constrain.jsonschema import compile_json_schema

    if regex:
        t0 = time.perf_counter()
        g = from_regex(spec)
        return _Source(g, "regex", spec, time.perf_counter() - t0, [])
    p = Path(spec)
    if not p.is_file():
        raise FileNotFoundError(f"no such file: {spec}")
    text = p.read_text(encoding="utf-8")
    is_schema = p.suffix == ".json" or (p.suffix != ".lark" and text.lstrip().startswith("{"))
    if not is_schema:
        t0 = time.perf_counter()
        g = from_lark(p)
        return _Source(g, "lark", str(p), time.perf_counter() - t0, [])
    json.loads(text)  # a clear ValueError for a file that is not JSON
    t0 = time.perf_counter()
    try:
        g = compile_json_schema(text)
        return _Source(g, "json-schema", str(p), time.perf_counter() - t0, [])
    except UnsupportedSchemaFeature as e:
        first = e
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t0 = time.perf_counter()
        g, dropped = compile_json_schema(text, lenient=True)
    refused = [(kw, ptr or "/", why) for kw, ptr, why in dropped] or [
        (getattr(first, "keyword", "?"), getattr(first, "pointer", None) or "/", str(first))]
    return _Source(g, "json-schema", str(p), time.perf_counter() - t0, refused, error=str(first))


def _load_inputs(args):
    """``(source, tokenizer, tokenizer name, vocabulary)`` for ``check`` / ``explain``, or exit
    code 2 after saying what could not be read or compiled."""
    from constrain.errors import ConstrainError
    from constrain.tokenizers import Vocabulary
    from constrain.tokenizers.audit import load_named

    try:
        src = _compile_source(args.source, regex=args.regex)
    except (OSError, ValueError) as e:
        print(f"constrain: cannot read {args.source}: {e}", file=sys.stderr)
        return 2
    except ConstrainError as e:
        print(f"constrain: {args.source}: {e}", file=sys.stderr)
        return 2
    try:
        tok, tname, eos = load_named(args.tokenizer)
        return src, tok, tname, Vocabulary.from_tokenizer(tok, eos_ids=eos)
    except ConstrainError as e:
        print(f"constrain: {e}", file=sys.stderr)
        return 2


def _percentiles(xs: list[float]) -> dict:
    import numpy as np

    if not xs:
        return {}
    a = np.asarray(xs) * 1e6
    return {"p50_us": round(float(np.percentile(a, 50)), 1), "p90_us": round(float(np.percentile(a, 90)), 1),
            "p99_us": round(float(np.percentile(a, 99)), 1), "max_us": round(float(a.max()), 1),
            "mean_us": round(float(a.mean()), 1), "n": len(xs)}


def _example_document(grammar, seed: int, max_size: int) -> bytes | None:
    import random

    from constrain.hypothesis import DocumentGenerator

    gen = DocumentGenerator(grammar, max_size=max_size)
    rng = random.Random(seed)
    # choice 0 is the simplest continuation: mostly simple, sometimes anything
    return gen.generate(lambda n: min(int(rng.expovariate(0.8)), n - 1))


def cmd_check(args) -> int:
    from constrain.engine.bitmask import allocate_token_bitmask
    from constrain.engine.matcher import Matcher, get_store

    loaded = _load_inputs(args)
    if isinstance(loaded, int):
        return loaded
    src, tok, tname, vocab = loaded
    report: dict = {"source": src.label, "kind": src.kind, "enforced": not src.refused,
                    "refused": [{"keyword": k, "pointer": p, "reason": w} for k, p, w in src.refused],
                    "compile_ms": round(src.seconds * 1e3, 2), "tokenizer": tname, "n_vocab": vocab.n_vocab}
    t0 = time.perf_counter()
    store = get_store(src.grammar, vocab)
    m = Matcher(src.grammar, vocab, store=store)
    bm = allocate_token_bitmask(1, vocab.n_vocab)
    m.fill_next_token_bitmask(bm)
    report["first_mask_ms"] = round((time.perf_counter() - t0) * 1e3, 2)
    doc = _example_document(src.grammar, args.seed, args.max_size)
    report["example"] = None if doc is None else doc.decode("utf-8", errors="replace")
    times: list[float] = []
    warm: list[float] = []
    if doc is not None:
        encode = _encode_fn(tok)
        ids = encode(doc.decode("utf-8", errors="replace"))
        if vocab.decode(ids) != doc:
            report["walk_note"] = "the tokenizer does not spell the example exactly (it drops or changes bytes)"
        walk = ids + list(vocab.eos_ids[:1])
        for timings in (times, warm):  # the second walk finds every mask in the store's caches
            m.reset()
            for t in walk:
                t1 = time.perf_counter()
                m.fill_next_token_bitmask(bm)
                timings.append(time.perf_counter() - t1)
                if not m.accept_token(t):
                    break
        report["walk_tokens"] = len(times)
        report["walk_complete"] = m.is_finished()
    report["mask_cold"] = _percentiles(times)
    report["mask_warm"] = _percentiles(warm)
    if args.json:
        print(json.dumps(report, ensure_ascii=False))
    else:
        verdict = "enforced exactly" if not src.refused else (
            f"REFUSED in strict mode ({len(src.refused)} keyword(s) cannot be enforced; --lenient drops them)")
        print(f"{src.kind:12s} {src.label}")
        print(f"verdict      {verdict}")
        for k, p, w in src.refused:
            print(f"  refused    {k} at {p}: {w}")
        print(f"compile      {report['compile_ms']} ms")
        print(f"tokenizer    {tname} ({vocab.n_vocab} ids); first mask {report['first_mask_ms']} ms (store + first walk)")
        if doc is not None:
            print(f"sample walk  {report['walk_tokens']} tokens, complete={report['walk_complete']}"
                  + (f" ({report['walk_note']})" if report.get("walk_note") else ""))
            for label in ("cold", "warm"):
                mk = report[f"mask_{label}"]
                print(f"mask {label:6s}  p50 {mk.get('p50_us')} µs, p90 {mk.get('p90_us')}, p99 {mk.get('p99_us')}, "
                      f"max {mk.get('max_us')}" + ("  (first visits build store entries)" if label == "cold" else ""))
            print(f"example      {report['example']}")
        else:
            print("example      (none found within --max-size; raise it)")
    return 1 if src.refused else 0


def _terminal_names(grammar, names) -> list[str]:
    """Literal terminals as the text they match (``","``), others by name."""
    by_name = {t.name: t for t in grammar.terminals}
    out = []
    for n in sorted(names):
        t = by_name.get(n)
        out.append(json.dumps(t.source) if t is not None and t.kind == "literal" and t.source else n)
    return out


def _show_bytes(b: bytes, limit: int = 40) -> str:
    r = repr(b)[2:-1]
    return r if len(r) <= limit else r[: limit - 1] + "…"


def cmd_explain(args) -> int:
    from constrain.engine.bitmask import allocate_token_bitmask, bitmask_to_bool
    from constrain.engine.matcher import Matcher

    loaded = _load_inputs(args)
    if isinstance(loaded, int):
        return loaded
    src, tok, tname, vocab = loaded
    text = args.text
    if args.text_file:
        text = Path(args.text).read_text(encoding="utf-8")
    encode = _encode_fn(tok)
    ids = encode(text)
    m = Matcher(src.grammar, vocab)
    bm = allocate_token_bitmask(1, vocab.n_vocab)
    steps = []
    rejected = None
    for i, t in enumerate(ids):
        m.fill_next_token_bitmask(bm)
        allowed = bitmask_to_bool(bm[0], vocab.n_vocab)
        n_allowed = int(allowed.sum())
        forced = m.forced_bytes()
        tb = vocab.token_bytes(t)
        ok = bool(allowed[t]) if 0 <= t < vocab.n_vocab else False
        step = {"i": i, "token": t, "bytes": tb.decode("utf-8", errors="backslashreplace"), "allowed": n_allowed,
                "forced": forced.decode("utf-8", errors="backslashreplace"), "ok": ok}
        steps.append(step)
        if not ok or not m.accept_token(t):
            # find the first byte of the token that breaks the output, and what was expected there
            good = 0
            probe = m.copy()
            for b in tb:
                if not probe.accept_bytes(bytes([b])):
                    break
                good += 1
            offset = len(m.output) + good
            expected = _terminal_names(src.grammar, probe.parser.allowed_terminals())
            nxt = probe.parser.next_bytes()
            rejected = {"token_index": i, "byte_offset": offset, "token": t, "bytes": step["bytes"],
                        "byte": tb[good:good + 1].decode("latin-1"), "expected_terminals": expected,
                        "next_bytes": bytes(nxt[:24]).decode("latin-1"), "complete_before": probe.is_complete()}
            break
    complete = rejected is None and m.is_complete()
    if args.json:
        print(json.dumps({"source": src.label, "tokenizer": tname, "steps": steps, "rejected": rejected,
                          "complete": complete, "refused": [list(r) for r in src.refused]}, ensure_ascii=False))
    else:
        if src.refused:
            print(f"note: {len(src.refused)} keyword(s) are not enforced (strict mode refuses this schema): "
                  + ", ".join(f"{k} at {p}" for k, p, _ in src.refused))
        print(f"{'#':>4}  {'token':>7}  {'bytes':24s} {'allowed':>8}  forced next")
        for s in steps:
            mark = "" if s["ok"] else "   <-- rejected"
            print(f"{s['i']:>4}  {s['token']:>7}  {_show_bytes(s['bytes'].encode(), 24):24s} {s['allowed']:>8}  "
                  f"{_show_bytes(s['forced'].encode(), 30)}{mark}")
        if rejected is not None:
            r = rejected
            print(f"rejected at byte {r['byte_offset']} (token {r['token_index']}, {r['bytes']!r}): byte {r['byte']!r} "
                  f"cannot follow; expected {', '.join(r['expected_terminals']) or 'the end'}"
                  + (f" (next bytes allowed: {r['next_bytes']!r})" if r["next_bytes"] else "")
                  + ("; the text before it was already complete" if r["complete_before"] else ""))
        elif complete:
            print("complete: the text is a word of the grammar (the stop token would be allowed)")
        else:
            print("incomplete: the text is a viable prefix but not a complete word; next could be "
                  + _show_bytes(bytes(m.parser.next_bytes()[:24])))
    return 0 if complete else 1


def cmd_audit(args) -> int:
    from constrain.errors import ConstrainError
    from constrain.tokenizers.audit import audit, load_named

    try:
        tok, name, eos = load_named(args.tokenizer)
        report = audit(tok, name=name, eos_ids=eos)
    except ConstrainError as e:
        print(f"constrain: {e}", file=sys.stderr)
        return 2
    if args.json:
        d = report.as_dict()
        d["invalid_utf8_sample"] = [(i, b.hex()) for i, b in report.invalid_utf8_sample]
        print(json.dumps(d, ensure_ascii=False))
    else:
        print(report.render())
    return 1 if report.failures else 0


def cmd_model_info(args) -> int:
    from constrain import models

    t0 = time.perf_counter()
    model, tok = _load_model(args)
    info = {"cache_dir": str(models.model_cache_dir()), "load_seconds": round(time.perf_counter() - t0, 3),
            "dtype": str(model.dtype), "parameters": sum(p.numel() for p in model.parameters()),
            "vocab": len(tok)}
    print(json.dumps(info) if args.json else "\n".join(f"{k:14s} {v}" for k, v in info.items()))
    return 0


def cmd_warmup(args) -> int:
    from constrain.warmup import warmup

    t0 = time.perf_counter()
    times = warmup(diffusion=not args.no_diffusion, formats=not args.no_formats)
    times["total"] = time.perf_counter() - t0
    if args.json:
        print(json.dumps({k: round(v, 3) for k, v in times.items()}))
    else:
        for k, v in times.items():
            print(f"{k:18s} {v:7.2f} s")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="constrain", description="Structured generation from language models.")
    sub = p.add_subparsers(dest="cmd", required=True)

    def model_opts(sp):
        sp.add_argument("--model", help="local transformers model directory (default: embedded SmolLM2-135M-Instruct)")
        sp.add_argument("--threads", type=int, default=None,
                        help="torch threads (default: $CONSTRAIN_NUM_THREADS or torch's default)")
        sp.add_argument("--json", action="store_true", help="print one JSON object instead of streaming text")

    def decoding_opts(sp, max_new_tokens):
        sp.add_argument("prompt")
        sp.add_argument("--max-new-tokens", type=int, default=max_new_tokens)
        sp.add_argument("--temperature", type=float, default=0.0, help="0 = greedy")
        sp.add_argument("--top-p", type=float, default=1.0, help="nucleus sampling, applied after the grammar mask")
        sp.add_argument("--seed", type=int, default=None)
        sp.add_argument("--system", default=None, help="system turn for the chat template")
        sp.add_argument("--sampling", choices=("mask", "asap", "awrs", "smc"), default="mask",
                        help="mask (default), or a distribution-correct sampler (needs --temperature > 0)")
        sp.add_argument("--particles", type=int, default=4, help="particles for --sampling smc")

    j = sub.add_parser("json", help="generate JSON valid against a JSON Schema")
    j.add_argument("--schema", required=True, help="JSON Schema file")
    decoding_opts(j, 160)
    j.add_argument("--lenient", action="store_true",
                   help="drop keywords that cannot be enforced (listed on stderr) instead of refusing the schema")
    j.add_argument("--whitespace", choices=("compact", "flexible"), default="compact")
    j.add_argument("--property-order", choices=("schema", "any"), default="schema")
    model_opts(j)
    j.set_defaults(func=cmd_json)

    g = sub.add_parser("generate", help="generate text matching a Lark grammar, a regex or a choice list")
    src = g.add_mutually_exclusive_group(required=True)
    src.add_argument("--grammar", help="Lark grammar file")
    src.add_argument("--regex", help="regular expression the whole output must match")
    src.add_argument("--choices", help="comma-separated list of allowed outputs")
    g.add_argument("--sep", default=",", help="separator of --choices (default ',')")
    decoding_opts(g, 128)
    model_opts(g)
    g.set_defaults(func=cmd_generate)

    c = sub.add_parser("check", help="compile a schema/grammar: verdict, compile time, mask times, an example")
    c.add_argument("source", help="JSON Schema file (.json), Lark grammar (.lark), or a regex with --regex")
    c.add_argument("--regex", action="store_true", help="SOURCE is a regular expression")
    c.add_argument("--tokenizer", default="smollm2", help="smollm2 | deepseek | mistral | tekken | a path")
    c.add_argument("--seed", type=int, default=0, help="seed of the example document")
    c.add_argument("--max-size", type=int, default=160, help="byte budget of the example document")
    c.add_argument("--json", action="store_true")
    c.set_defaults(func=cmd_check)

    e = sub.add_parser("explain", help="walk a text token by token: allowed counts, forced bytes, where it fails")
    e.add_argument("source", help="JSON Schema file (.json), Lark grammar (.lark), or a regex with --regex")
    e.add_argument("text", help="the text (or a file with --text-file)")
    e.add_argument("--text-file", action="store_true", help="TEXT is a file to read")
    e.add_argument("--regex", action="store_true", help="SOURCE is a regular expression")
    e.add_argument("--tokenizer", default="smollm2", help="smollm2 | deepseek | mistral | tekken | a path")
    e.add_argument("--json", action="store_true")
    e.set_defaults(func=cmd_explain)

    a = sub.add_parser("audit-tokenizer", help="check a tokenizer's byte vocabulary against its own decoder")
    a.add_argument("tokenizer", help="smollm2 | deepseek | mistral | mistral-v3 | tekken | a path")
    a.add_argument("--json", action="store_true")
    a.set_defaults(func=cmd_audit)

    w = sub.add_parser("warmup", help="compile numba's kernels once (cached on disk for every later process)")
    w.add_argument("--no-diffusion", action="store_true", help="skip the diffusion checker's kernels")
    w.add_argument("--no-formats", action="store_true",
                   help="skip building the JSON Schema format automata into the disk cache")
    w.add_argument("--json", action="store_true")
    w.set_defaults(func=cmd_warmup)

    m = sub.add_parser("model-info", help="load the model and print where it is cached")
    model_opts(m)
    m.set_defaults(func=cmd_model_info)
    return p


def main(argv=None) -> int:
    from constrain.errors import ConstrainError, ModelLoadError

    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except ModelLoadError as e:  # a bad --model path, a failed download or conversion
        print(f"constrain: {e}", file=sys.stderr)
        return 2
    except ConstrainError as e:  # anything else the library reports: a message, not a traceback
        print(f"constrain: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nconstrain: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
