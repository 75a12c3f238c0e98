"""Time per infilling check (p50 / p99) on masked real documents, and constrained diffusion runs.

    python bench/diffusion_bench.py [--quick]
    python bench/diffusion_bench.py --trace [--quick]     # the lexing memo on real unmasking traces

Workloads (per grammar): a real document tokenised with the SmolLM2 tokenizer, a random
fraction of its tokens masked (runs of masked tokens become gaps), checked with unbounded gaps
(Σ*) and with length-aware gaps (k tokens <= k * max token bytes, bounded under 16 bytes).
Then a random-logit denoiser run of constrained decoding (SmolLM2 vocabulary restricted to the
tokens of the corpus) and its per-check times.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from constrain.diffusion import DiffusionConstraint, InfillChecker, RandomDenoiser, diffusion_generate  # noqa: E402
from constrain.diffusion.checker import Gap  # noqa: E402
from constrain.engine.earley import accepts  # noqa: E402
from constrain.grammar import from_lark  # noqa: E402
from constrain.jsonschema import compile_json_schema  # noqa: E402
from constrain.tokenizers import Vocabulary  # noqa: E402

DOCS = {
    "json": [b'{"name": "Ada Lovelace", "age": 36, "email": "ada@example.org", "active": true, '
             b'"city": "London", "tags": ["math", "poetry"], "scores": [1.5, -2e3, 0]}',
             b'[{"id": 1, "ok": false}, {"id": 2, "ok": null, "sub": {"a": [[]], "b": "x\\"y"}}]'],
    "arithmetic": [b"(1 + 2.5) * 3 ^ -2 - 4 / (5 ** 2 + -6) * ((7))", b"12 * (3 + 4) - 5 / 6 ^ 2 ^ -1"],
    "schema": [b'{"name":"Ada","age":36,"city":"Lisbon","email":"ada@example.org","hobbies":["chess","tea"]}'],
}


def grammar(name):
    if name == "schema":
        return compile_json_schema(json.loads((ROOT / "examples/schemas/person.json").read_text()))
    return from_lark(ROOT / f"grammars/{name}.lark")


def pct(xs, q):
    return float(np.percentile(np.asarray(xs) * 1e3, q)) if xs else float("nan")


def masked_segments(tb: list[bytes], frac: float, rng, bounded: bool, maxlen: int):
    mask = rng.random(len(tb)) < frac
    segs = []
    i = 0
    while i < len(tb):
        if mask[i]:
            j = i
            while j < len(tb) and mask[j]:
                j += 1
            k = j - i
            mx = k * maxlen
            segs.append(Gap(max_bytes=mx, min_bytes=k) if bounded and mx <= 16 else Gap(min_bytes=k))
            i = j
        else:
            segs.append(tb[i])
            i += 1
    return segs


def record_traces(quick: bool):
    """The check calls (segments) of real constrained unmasking runs, in order: the tiny MDLM on
    its record schema (64 positions, 16 steps) and a random denoiser on person.json."""
    sys.path.insert(0, str(ROOT / "examples"))
    from diffusion_tiny_mdlm import SCHEMA, TinyDenoiser

    vocab = Vocabulary.from_tokenizer(ROOT / "tests/data/tokenizers/smollm2")
    traces = {}

    def run(name, g, make_den, allowed, length, n):
        ck = InfillChecker(g)
        calls = []
        orig = ck.check_segments

        def rec(segs, **kw):
            calls.append(list(segs))
            return orig(segs, **kw)

        ck.check_segments = rec
        for seed in range(n):
            con = DiffusionConstraint(ck, vocab, length, allowed_ids=allowed)
            diffusion_generate(make_den(seed), con, steps=16, seed=seed, max_rejections=100)
        traces[name] = (g, calls)

    den = TinyDenoiser(n_vocab=vocab.n_vocab)
    run("tiny-mdlm record schema L=64", compile_json_schema(SCHEMA, separators=(", ", ": ")), lambda s: den,
        den.local, 64, 2 if quick else 6)
    g = grammar("schema")
    tok_ids = sorted({i for d in DOCS["schema"] for i in _tok().encode(d.decode(), add_special_tokens=False).ids})
    run("random person.json L=32", g, lambda s: RandomDenoiser(vocab.n_vocab, allowed=tok_ids + list(vocab.eos_ids),
                                                               seed=s, scale=3.0), tok_ids, 32, 2 if quick else 4)
    return traces


def _tok():
    from tokenizers import Tokenizer
    return Tokenizer.from_file(str(ROOT / "tests/data/tokenizers/smollm2/tokenizer.json"))


def replay(g, calls, **kw):
    """Per-check seconds of ``calls`` on a fresh checker (whole-check cache on, as in decoding)."""
    ck = InfillChecker(g, **kw)
    ck.check([b"x"])
    out = []
    for segs in calls:
        t = time.perf_counter()
        ck.check_segments(segs)
        out.append(time.perf_counter() - t)
    return out, ck.lex_stats


def trace_main(quick: bool):
    traces = record_traces(quick)
    print(f"{'trace':30s} {'memo':>4s} {'checks':>6s} {'p50 ms':>8s} {'p99 ms':>8s} {'mean ms':>8s} {'nodes reused':>12s}")
    for name, (g, calls) in traces.items():
        for memo in (False, True):
            ts, st = replay(g, calls, lex_memo=memo)
            reused = st["nodes_reused"] / max(st["nodes_reused"] + st["nodes_swept"], 1)
            print(f"{name:30s} {'on' if memo else 'off':>4s} {len(ts):6d} {pct(ts, 50):8.3f} {pct(ts, 99):8.3f} "
                  f"{np.mean(ts) * 1e3:8.3f} {reused:11.0%}")
    return traces


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--trace", action="store_true", help="only the lexing-memo replay of real unmasking traces")
    ap.add_argument("--save-trace", default=None, help="pickle the recorded traces here")
    ap.add_argument("--reps", type=int, default=None, help="checks per workload (default 100, quick 20)")
    args = ap.parse_args()
    if args.trace:
        traces = trace_main(args.quick)
        if args.save_trace:
            import pickle
            with open(args.save_trace, "wb") as f:
                pickle.dump({k: (v[1]) for k, v in traces.items()}, f)
        return
    vocab = Vocabulary.from_tokenizer(ROOT / "tests/data/tokenizers/smollm2")
    from tokenizers import Tokenizer
    tok = Tokenizer.from_file(str(ROOT / "tests/data/tokenizers/smollm2/tokenizer.json"))
    n_rep = args.reps or (20 if args.quick else 100)
    rng = np.random.default_rng(0)
    print(f"{'workload':34s} {'checks':>6s} {'p50 ms':>8s} {'p99 ms':>8s} {'max ms':>8s} {'nonempty':>8s} {'Q p50':>6s}")
    for name, docs in DOCS.items():
        g = grammar(name)
        t0 = time.perf_counter()
        ck = InfillChecker(g)
        init = time.perf_counter() - t0
        ck.check([b"x"])  # warm the JIT
        ids_all = sorted({i for d in docs for i in tok.encode(d.decode(), add_special_tokens=False).ids})
        maxlen = int(vocab.token_lengths[ids_all].max())
        for frac in (0.2, 0.5, 0.8):
            for bounded in (False, True):
                times, ne, qs = [], 0, []
                for r in range(n_rep):
                    d = docs[r % len(docs)]
                    ids = tok.encode(d.decode(), add_special_tokens=False).ids
                    tb = [vocab.token_bytes(i) for i in ids]
                    segs = masked_segments(tb, frac, rng, bounded, maxlen)
                    ck._cache.clear()
                    t = time.perf_counter()
                    res = ck.check_segments(segs)
                    times.append(time.perf_counter() - t)
                    ne += res.status == "nonempty"
                    qs.append(res.n_states)
                label = f"{name} mask={frac} {'len-aware' if bounded else 'unbounded'}"
                print(f"{label:34s} {len(times):6d} {pct(times, 50):8.3f} {pct(times, 99):8.3f} "
                      f"{max(times) * 1e3:8.3f} {ne:8d} {int(np.median(qs)):6d}")
        # decoding with a random denoiser over the corpus tokens
        eos = list(vocab.eos_ids)
        runs = 3 if args.quick else 10
        checks, gen, valid, commits = [], [], 0, 0
        for seed in range(runs):
            con = DiffusionConstraint(ck, vocab, 32, allowed_ids=ids_all)
            den = RandomDenoiser(vocab.n_vocab, allowed=ids_all + eos, seed=seed, scale=3.0)
            t = time.perf_counter()
            res = diffusion_generate(den, con, steps=16, seed=seed, max_rejections=100)
            gen.append(time.perf_counter() - t)
            checks += res.check_seconds
            valid += bool(res.valid and accepts(g, res.text))
            commits += res.finished_by == "commits"
        print(f"{name + ' decode L=32 steps=16':34s} {len(checks):6d} {pct(checks, 50):8.3f} {pct(checks, 99):8.3f} "
              f"{max(checks) * 1e3:8.3f}   valid {valid}/{runs}, all-commit {commits}/{runs}, "
              f"gen p50 {np.median(gen):.2f}s; checker init {init * 1e3:.1f} ms")


if __name__ == "__main__":
    main()
