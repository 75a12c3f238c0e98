"""The ``constrain`` command.

    constrain json --schema FILE PROMPT      JSON valid against a JSON Schema (constrained decoding),
                                             on the embedded default model
    constrain generate (--grammar FILE | --regex R | --choices A,B,C) PROMPT
                                             text in a Lark grammar's language, matching a regex,
                                             or one of a list of strings
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
    return dict(max_new_tokens=args.max_new_tokens, temperature=args.temperature, top_p=args.top_p, seed=args.seed,
                system=args.system)


def _report(args, result, extra: dict, summary: str) -> None:
    if args.json:
        d = {**result.as_dict(), **extra}
        print(json.dumps(d, ensure_ascii=False))
        return
    print()
    _progress(f"{result.new_tokens} tokens in {result.seconds:.1f} s ({result.tokens_per_second:.1f} tok/s), "
              f"finish={result.finish_reason}; {summary}")


def cmd_json(args) -> int:
    from constrain.decoding.generate import compile_schema, generate_json
    from constrain.errors import ConfigError, ConstrainError, GrammarError

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
    try:
        result = generate_json(model, tok, compiled, args.prompt, stream=_stream_to_terminal(args),
                               **_decoding_opts(args))
    except ConfigError as e:  # a bad option (--max-new-tokens 0, --top-p 2)
        print(f"constrain: {e}", file=sys.stderr)
        return 2
    except ConstrainError as e:
        print(f"\nconstrain: {e}", file=sys.stderr)
        return 1
    if result.finish_reason == "stop":
        summary = "schema-valid: " + ("yes" if result.valid else "no (lenient): " + "; ".join(result.errors[:3]))
    else:
        summary = f"truncated: raise --max-new-tokens (now {args.max_new_tokens}) for a complete document"
    _report(args, result, {"constrained": True}, summary)
    return 0


def cmd_generate(args) -> int:
    from constrain.decoding.generate import _text_grammar, generate
    from constrain.errors import ConfigError, ConstrainError

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
    # a choice list is spelled out for the model; a grammar or regex is the user's to describe
    instruction = ("Answer with one of: " + ", ".join(choices) + ".") if choices is not None else False
    try:
        result = generate(model, tok, args.prompt, grammar=g, stream=_stream_to_terminal(args),
                          instruction=instruction, **_decoding_opts(args))
    except ConfigError as e:  # a bad option (--max-new-tokens 0, --top-p 2)
        print(f"constrain: {e}", file=sys.stderr)
        return 2
    except ConstrainError as e:
        print(f"\nconstrain: {e}", file=sys.stderr)
        return 1
    complete = result.finish_reason == "stop"
    errors = [] if complete else [f"output truncated: max_new_tokens={args.max_new_tokens} ran out first"]
    _report(args, result, {"constrained": True, "valid": complete, "errors": errors},
            "matches the grammar" if complete else f"truncated: raise --max-new-tokens (now {args.max_new_tokens})")
    return 0


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

    a = sub.add_parser("audit-tokenizer", help="check a tokenizer's byte vocabulary against its own decoder")
    a.add_argument("tokenizer", help="smollm2 | deepseek | mistral | mistral-v3 | tekken | a path")
    a.add_argument("--json", action="store_true")
    a.set_defaults(func=cmd_audit)

    m = sub.add_parser("model-info", help="load the model and print where it is cached")
    model_opts(m)
    m.set_defaults(func=cmd_model_info)
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
