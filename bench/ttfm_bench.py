"""Where constrain's time to first mask goes: front-end, compile + store, first mask.

    python bench/ttfm_bench.py                        # smollm2, 5 fresh processes
    python bench/ttfm_bench.py --tokenizer deepseek --processes 7

mask_bench's TTFM is one number per worker process, and on this shared machine the same code
differs by up to ~2x from one process to the next.  Here each of ``--processes`` fresh
processes prepares the tokenizer, runs :func:`constrain.warmup.warmup` (numba kernels loaded,
as mask_bench's worker does), then compiles the peer workloads in mask_bench's order (the cfg
workloads first, so later ones find the modules warm as they do there) and times, per
workload:

* ``front``: ``compile_json_schema`` / ``from_lark`` (the schema or grammar to a ``Grammar``);
* ``compile+store``: the parser tables and the empty token store for the tokenizer;
* ``first``: the first ``fill_next_token_bitmask`` (the start state's store entries).

The table keeps each part's minimum over the processes (and TTFM, their sum's minimum);
``--out`` writes every process's numbers as JSON.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

NAMES = ["cfg_json", "cfg_arith", "cfg_sql", "schema_simple", "schema_medium", "schema_complex"]


def child(tok: str) -> dict:
    import numpy as np

    import mask_bench as mb
    from constrain.engine.matcher import Matcher, compile_grammar, get_store
    from constrain.grammar import from_lark
    from constrain.jsonschema import compile_json_schema
    from constrain.tokenizers import Vocabulary
    from constrain.warmup import warmup

    wls = mb.workloads()
    vocab = Vocabulary.from_tokenizer(mb._tokenizer_path(tok))
    vocab.trie, vocab.fingerprint, vocab.token_lengths
    warmup(diffusion=False)
    out = {}
    for n in NAMES:
        wl = wls[n]
        t0 = time.perf_counter()
        g = compile_json_schema(wl["schema"], whitespace="flexible") if "schema" in wl else from_lark(wl["lark"])
        t1 = time.perf_counter()
        compile_grammar(g)
        get_store(g, vocab)
        m = Matcher(g, vocab)
        bm = np.zeros((1, (vocab.n_vocab + 31) // 32), np.int32)
        t2 = time.perf_counter()
        m.fill_next_token_bitmask(bm)
        t3 = time.perf_counter()
        out[n] = {"front_ms": (t1 - t0) * 1e3, "compile_store_ms": (t2 - t1) * 1e3, "first_ms": (t3 - t2) * 1e3,
                  "ttfm_ms": (t3 - t0) * 1e3}
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tokenizer", default="smollm2")
    ap.add_argument("--processes", type=int, default=5)
    ap.add_argument("--out", default="")
    ap.add_argument("--child", default="", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.child:
        print(json.dumps(child(a.child)))
        return 0
    runs = []
    for _ in range(a.processes):
        r = subprocess.run([sys.executable, __file__, "--child", a.tokenizer], capture_output=True, text=True)
        if r.returncode != 0:
            print(r.stderr, file=sys.stderr)
            return r.returncode
        runs.append(json.loads(r.stdout.strip().splitlines()[-1]))
    print(f"constrain time to first mask, {a.tokenizer}, best of {a.processes} processes (ms)\n")
    print("| workload | front | compile+store | first mask | TTFM |")
    print("|---|---|---|---|---|")
    for n in NAMES:
        best = {k: min(r[n][k] for r in runs) for k in runs[0][n]}
        print(f"| {n} | {best['front_ms']:.2f} | {best['compile_store_ms']:.2f} | {best['first_ms']:.2f} | "
              f"{best['ttfm_ms']:.2f} |")
    if a.out:
        Path(a.out).write_text(json.dumps({"tokenizer": a.tokenizer, "runs": runs}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
