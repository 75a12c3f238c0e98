"""Cold start: what a fresh process pays before its first mask (numba's disk cache warm).

    python bench/cold_start.py                    # 3 fresh processes per case, medians
    python bench/cold_start.py --runs 5 --workloads cfg_json,schema_simple

Per case a new interpreter times, in order: ``import constrain`` (numba included), loading the
SmolLM2 vocabulary, then either

* ``preload``: :func:`constrain.warmup.warmup` (``diffusion=False``: numba's cached kernels
  loaded, the Lark and JSON Schema paths run once), compile, first mask — a server that
  preloads at start; or
* ``direct``: compile and first mask straight away — a library user's first call, which pays
  the kernel loads inside them.

The whole is what a user waits for from ``python -c`` to the first bitmask.  Run
``constrain warmup`` once per environment first (numba's cache and the format automata); a
cache left cold measures compilation instead.  Writes ``bench/results/cold_start.json``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

CHILD = r"""
import json, sys, time
t0 = time.perf_counter()
import constrain, constrain.engine.matcher, constrain.grammar, constrain.jsonschema  # noqa
t1 = time.perf_counter()
sys.path.insert(0, {bench!r})
import mask_bench as mb
from constrain.tokenizers import Vocabulary
vocab = Vocabulary.from_tokenizer(mb._tokenizer_path("smollm2"))
t2 = time.perf_counter()
pre = 0.0
if {preload!r}:
    from constrain.warmup import warmup
    warmup(diffusion=False)
    pre = time.perf_counter() - t2
t3 = time.perf_counter()
wl = mb.workloads()[{name!r}]
from constrain.engine.matcher import Matcher, compile_grammar
from constrain.grammar import from_lark
from constrain.jsonschema import compile_json_schema
g = compile_json_schema(wl["schema"], whitespace="flexible") if "schema" in wl else from_lark(wl["lark"])
compile_grammar(g)
m = Matcher(g, vocab)
t4 = time.perf_counter()
import numpy as np
bm = np.zeros((1, (vocab.n_vocab + 31) // 32), np.int32)
m.fill_next_token_bitmask(bm)
t5 = time.perf_counter()
print(json.dumps({{"import_s": t1 - t0, "vocab_s": t2 - t1, "preload_s": pre, "compile_s": t4 - t3,
                  "first_mask_s": t5 - t4, "total_s": t5 - t0}}))
"""


def run(name: str, preload: bool) -> dict:
    code = CHILD.format(bench=str(REPO / "bench"), preload=preload, name=name)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--workloads", default="cfg_json,cfg_arith,schema_simple,schema_medium")
    ap.add_argument("--out", default=str(REPO / "bench" / "results" / "cold_start.json"))
    a = ap.parse_args(argv)
    rows = []
    for name in a.workloads.split(","):
        for preload in (True, False):
            runs = [run(name, preload) for _ in range(a.runs)]
            med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
            rows.append({"workload": name, "case": "preload" if preload else "direct", "runs": a.runs, **med})
    cols = ["import_s", "vocab_s", "preload_s", "compile_s", "first_mask_s", "total_s"]
    lines = ["| workload | case | " + " | ".join(c[:-2].replace("_", " ") + " s" for c in cols) + " |",
             "|---|---|" + "---|" * len(cols)]
    for r in rows:
        lines.append(f"| {r['workload']} | {r['case']} | " + " | ".join(f"{r[c]:.3f}" for c in cols) + " |")
    table = "\n".join(lines)
    print(table)
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps({"rows": rows, "table": table}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
