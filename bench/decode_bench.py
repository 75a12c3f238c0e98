#!/usr/bin/env python3
"""Constrained vs unconstrained decoding on the embedded model over JSONSchemaBench schemas.

    python bench/decode_bench.py                       # 50 schemas, greedy, 1 torch thread
    python bench/decode_bench.py --schemas 10 --max-new-tokens 96

For each schema (the first that compile in strict mode, taken round-robin over subsets of
``../shared/data/jsonschemabench-dev``) both runs get the same chat prompt: the schema's
description, the schema itself when it is short, and the expected keys.

- unconstrained: ``model.generate`` greedy; the first JSON value in the text is validated
  with ``jsonschema`` (formats asserted);
- constrained: :func:`constrain.generate_json` greedy (fast-forward on), its value validated
  again here, independently of the library.

Reports valid-output rates (constrained: of completed outputs, must be 100%), tokens/s of both
and their ratio from the same run (runs alternate per schema so load drifts hit both), the share
of fast-forwarded tokens and forward passes saved.  Prints a table, writes JSON.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "jsonschemabench-dev"
SUBSETS = ["Github_easy", "Glaiveai2K", "JME", "Github_medium", "Handwritten", "Github_trivial", "Snowplow",
           "Kubernetes", "BFCL", "JsonSchemaStore", "WashingtonPost", "Github_hard", "MCPspec"]


def extract_json(text: str):
    dec = json.JSONDecoder()
    for i, ch in enumerate(text):
        if ch in "{[":
            try:
                return dec.raw_decode(text[i:])[0], True
            except ValueError:
                continue
    return None, False


def validator(schema):
    import jsonschema

    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


def select(n: int, compile_schema):
    """The first ``n`` schemas (round-robin over subsets) that compile strictly."""
    files = {s: sorted((DATA / s).glob("*.json")) for s in SUBSETS if (DATA / s).is_dir()}
    out, refused, tried = [], 0, 0
    idx = 0
    while len(out) < n and any(idx < len(v) for v in files.values()):
        for s, fs in files.items():
            if idx >= len(fs) or len(out) >= n:
                continue
            doc = json.loads(fs[idx].read_text())
            tried += 1
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    t0 = time.perf_counter()
                    cs = compile_schema(doc["schema"])
                    ct = time.perf_counter() - t0
            except Exception as e:  # refused keyword, limit, unsupported: counted, skipped
                refused += 1
                continue
            out.append((f"{s}/{fs[idx].name}", doc["schema"], cs, ct))
        idx += 1
    return out, refused, tried


def prompt_for(schema, with_schema: bool = False) -> str:
    """The schema's description and its keys (``schema_instruction``); with ``with_schema`` also
    the schema text when short.  SmolLM2-135M given a schema tends to copy it (a schema is a
    valid instance of a schema that allows extra keys), so the default leaves it out."""
    from constrain.decoding.generate import schema_instruction

    desc = (schema.get("description") or schema.get("title") or "a realistic record") if isinstance(schema, dict) else ""
    text = json.dumps(schema, separators=(",", ":"))
    parts = [f"Write a JSON document: {str(desc)[:300]}"]
    if with_schema and len(text) <= 1200:
        parts.append(f"It must follow this JSON Schema:\n{text}")
    parts.append(schema_instruction(schema))
    return "\n".join(parts)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--schemas", type=int, default=50)
    ap.add_argument("--max-new-tokens", type=int, default=160)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--schema-in-prompt", action="store_true", help="also put the schema text in the prompt")
    ap.add_argument("--out", default=str(ROOT / "bench" / "reports" / f"decode-{time.strftime('%Y-%m-%d')}.json"))
    args = ap.parse_args()

    import torch

    from constrain import models
    from constrain.decoding.generate import OutputValidationError, compile_schema, generate_json
    from constrain.decoding.text import chat_input_ids

    model, tok = models.load_default(threads=args.threads)
    chosen, refused, tried = select(args.schemas, compile_schema)
    print(f"{len(chosen)} schemas compiled of {tried} tried ({refused} refused or failed); "
          f"compile p50 {statistics.median([c[3] for c in chosen]) * 1e3:.1f} ms", flush=True)
    rows = []
    # warm-up: numba and the first store, outside the timings
    generate_json(model, tok, chosen[0][2], "Hi.", max_new_tokens=8)
    for i, (name, schema, cs, ct) in enumerate(chosen):
        prompt = prompt_for(schema, args.schema_in_prompt)
        ids = chat_input_ids(tok, prompt)
        row = {"schema": name, "compile_ms": round(ct * 1e3, 2), "prompt_tokens": int(ids.shape[1])}

        def unconstrained():
            t0 = time.perf_counter()
            with torch.inference_mode():
                out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), do_sample=False,
                                     max_new_tokens=args.max_new_tokens, pad_token_id=tok.eos_token_id)
            dt = time.perf_counter() - t0
            new = out[0, ids.shape[1]:]
            text = tok.decode(new, skip_special_tokens=True)
            value, found = extract_json(text)
            ok = found and not list(validator(schema).iter_errors(value))
            row.update(u_tokens=int(new.shape[0]), u_seconds=dt, u_found=found, u_valid=bool(ok),
                       u_finished=bool(new.shape[0] < args.max_new_tokens))

        def constrained():
            try:
                r = generate_json(model, tok, cs, prompt, max_new_tokens=args.max_new_tokens, instruction=False)
            except OutputValidationError as e:  # a bug: counted, never hidden
                row.update(c_bug=str(e)[:300], c_tokens=0, c_seconds=0.0, c_complete=False, c_valid=False)
                return
            ok = r.complete and not list(validator(schema).iter_errors(json.loads(r.text)))
            row.update(c_tokens=r.new_tokens, c_seconds=r.seconds, c_complete=r.complete, c_valid=bool(ok),
                       c_forced=r.forced_tokens, c_forward=r.forward_passes, c_lib_valid=r.valid)

        for f in ((constrained, unconstrained) if i % 2 == 0 else (unconstrained, constrained)):
            f()
        rows.append(row)
        print(f"[{i + 1}/{len(chosen)}] {name}: constrained {'valid' if row['c_valid'] else 'complete=' + str(row['c_complete'])}"
              f" {row['c_tokens']} tok {row['c_seconds']:.1f}s | unconstrained {'valid' if row['u_valid'] else 'invalid'}"
              f" {row['u_tokens']} tok {row['u_seconds']:.1f}s", flush=True)

    n = len(rows)
    c_done = [r for r in rows if r["c_complete"]]
    summary = {
        "schemas": n, "tried": tried, "refused_or_failed": refused, "max_new_tokens": args.max_new_tokens,
        "threads": args.threads, "schema_in_prompt": args.schema_in_prompt,
        "constrained_complete": len(c_done),
        "constrained_valid_of_complete": sum(r["c_valid"] for r in c_done),
        "constrained_bugs": sum(1 for r in rows if "c_bug" in r),
        "unconstrained_valid": sum(r["u_valid"] for r in rows),
        "unconstrained_json_found": sum(r["u_found"] for r in rows),
        "constrained_tok_s": sum(r["c_tokens"] for r in rows) / max(1e-9, sum(r["c_seconds"] for r in rows)),
        "unconstrained_tok_s": sum(r["u_tokens"] for r in rows) / max(1e-9, sum(r["u_seconds"] for r in rows)),
        "forced_share": sum(r.get("c_forced", 0) for r in rows) / max(1, sum(r["c_tokens"] for r in rows)),
        "forward_passes_per_token": sum(r.get("c_forward", 0) or 0 for r in rows) / max(1, sum(r["c_tokens"] for r in rows)),
    }
    summary["tok_s_ratio_constrained_over_unconstrained"] = summary["constrained_tok_s"] / summary["unconstrained_tok_s"]
    print()
    print("| measure | constrained | unconstrained |")
    print("|---|---|---|")
    print(f"| valid outputs | {summary['constrained_valid_of_complete']}/{summary['constrained_complete']} completed "
          f"({len(c_done)}/{n} completed within {args.max_new_tokens} tokens) | {summary['unconstrained_valid']}/{n} |")
    print(f"| tokens/s | {summary['constrained_tok_s']:.1f} | {summary['unconstrained_tok_s']:.1f} |")
    print(f"| ratio constrained/unconstrained tok/s | {summary['tok_s_ratio_constrained_over_unconstrained']:.2f} | |")
    print(f"| fast-forwarded share of tokens | {summary['forced_share']:.1%} | – |")
    print(f"| forward passes per token | {summary['forward_passes_per_token']:.2f} | 1.00 |")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"summary": summary, "rows": rows}, indent=1))
    print(f"\nwrote {args.out}")
    return 0 if summary["constrained_bugs"] == 0 and summary["constrained_valid_of_complete"] == len(c_done) else 1


if __name__ == "__main__":
    sys.exit(main())
