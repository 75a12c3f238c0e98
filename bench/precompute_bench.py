"""What an eager, saved mask store costs and buys: ``TokenStore.precompute()`` + ``save()``/``load()``.

    python bench/precompute_bench.py                         # every workload, smollm2
    python bench/precompute_bench.py --workloads cfg_json --seconds 10 --tokenizers smollm2,deepseek

Per workload and tokenizer, in fresh worker processes (numba's cache warm, so JIT is not counted):

1. *build*: compile, ``precompute(max_seconds=S)`` (time, rows reached, entries and whole masks
   built, bytes, whether the walk was complete), ``save()`` (time, file size);
2. *lazy*: a fresh process walks the workload's documents once from an empty store;
3. *loaded*: a fresh process loads the saved store (time) and walks the same documents.

Reported for 2 and 3: time to first mask (compile or load + first fill) and the walk's mask
mean / p99.  The documents are the same as ``bench/mask_bench.py``'s; the masks of 3 are the
masks of 2 (checked here), so the difference is only where the work happens.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))

from mask_bench import _pct, _tokenizer_path, workloads  # noqa: E402


def _grammar(wl):
    from constrain.grammar import from_lark
    from constrain.jsonschema import compile_json_schema

    if "schema" in wl:
        return compile_json_schema(wl["schema"], whitespace="flexible")
    return from_lark(Path(wl["lark_path"]) if "lark_path" in wl else wl["lark"])


def worker(mode: str, tok: str, name: str, seconds: float, out: str) -> None:
    import numpy as np
    from tokenizers import Tokenizer

    from constrain.engine.matcher import Matcher, get_store
    from constrain.tokenizers import Vocabulary
    from constrain.warmup import warmup

    warmup(diffusion=False)
    tok_path = _tokenizer_path(tok)
    vocab = Vocabulary.from_tokenizer(tok_path)
    hf = Tokenizer.from_file(str(Path(tok_path) / "tokenizer.json"))
    wl = workloads()[name]
    rec: dict = {"mode": mode, "tokenizer": tok, "workload": name}
    t0 = time.perf_counter()
    g = _grammar(wl)
    rec["compile_ms"] = (time.perf_counter() - t0) * 1e3
    t1 = time.perf_counter()
    store = get_store(g, vocab, persist=(mode == "loaded"))
    rec["store_ms"] = (time.perf_counter() - t1) * 1e3
    if mode == "build":
        r = store.precompute(max_seconds=seconds)
        rec.update({"precompute_s": r.seconds, "rows": r.rows, "entries": r.entries_built,
                    "entry_mb": r.entry_bytes / 2**20, "masks": r.masks, "mask_mb": r.mask_bytes / 2**20,
                    "complete": r.complete})
        t2 = time.perf_counter()
        path = store.save()
        rec["save_s"] = time.perf_counter() - t2
        rec["file_mb"] = path.stat().st_size / 2**20 if path else 0.0
        Path(out).write_text(json.dumps(rec))
        return
    rec["loaded_entries"] = store.n_entries
    bm = np.zeros((1, store.n_words), np.int32)
    times, first = [], None
    digest = hashlib.sha256()
    for doc in wl["docs"]:
        m = Matcher(g, vocab, store=store)
        for t in hf.encode(doc, add_special_tokens=False).ids + [None]:
            s0 = time.perf_counter()
            m.fill_next_token_bitmask(bm)
            dt = time.perf_counter() - s0
            if first is None:
                first = dt
            times.append(dt * 1e6)
            digest.update(bm.tobytes())
            if t is None:
                break
            assert m.accept_token(t), (name, doc[:40])
    rec.update({"ttfm_ms": rec["compile_ms"] + rec["store_ms"] + first * 1e3, "mean_us": sum(times) / len(times),
                "p50_us": _pct(times, 0.5), "p99_us": _pct(times, 0.99), "steps": len(times),
                "digest": digest.hexdigest()})
    Path(out).write_text(json.dumps(rec))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tokenizers", default="smollm2")
    ap.add_argument("--workloads", default="cfg_json,cfg_arith,cfg_sql,schema_simple,schema_medium,schema_complex")
    ap.add_argument("--seconds", type=float, default=20.0, help="precompute budget per workload")
    ap.add_argument("--out", default=str(REPO / "bench" / "results" / "precompute.json"))
    ap.add_argument("--worker", nargs=5, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.worker:
        mode, tok, name, secs, out = a.worker
        worker(mode, tok, name, float(secs), out)
        return 0
    wls = workloads()
    rows = []
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, CONSTRAIN_CACHE_DIR=cache)  # a private disk cache: only this run's stores
        for tok in a.tokenizers.split(","):
            for name in [w for w in a.workloads.split(",") if w in wls]:
                recs = {}
                for mode in ("lazy", "build", "loaded"):
                    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
                        out = f.name
                    subprocess.run([sys.executable, __file__, "--worker", mode, tok, name, str(a.seconds), out],
                                   check=True, env=env, cwd=REPO)
                    recs[mode] = json.loads(Path(out).read_text())
                    os.unlink(out)
                b, lz, ld = recs["build"], recs["lazy"], recs["loaded"]
                same = lz["digest"] == ld["digest"]
                rows.append({"tokenizer": tok, "workload": name, **{f"build_{k}": v for k, v in b.items()},
                             **{f"lazy_{k}": v for k, v in lz.items()}, **{f"loaded_{k}": v for k, v in ld.items()},
                             "same_masks": same})
                print(f"{tok:8s} {name:16s} precompute {b['precompute_s']:5.1f} s rows {b['rows']:5d} "
                      f"entries {b['entries']:6d} ({b['entry_mb']:.1f} MB) masks {b['masks']:6d} ({b['mask_mb']:.1f} MB) "
                      f"file {b['file_mb']:.1f} MB complete {b['complete']} | TTFM lazy {lz['ttfm_ms']:.1f} ms "
                      f"loaded {ld['ttfm_ms']:.1f} ms | mean lazy {lz['mean_us']:.0f} µs loaded {ld['mean_us']:.0f} µs "
                      f"| same masks {same}", file=sys.stderr, flush=True)
                if not same:
                    print("  MASKS DIFFER between the lazy and the loaded store", file=sys.stderr)
    lines = ["| tokenizer | workload | precompute s | rows | complete | entries (MB) | masks (MB) | file MB | save s | "
             "load ms | TTFM lazy / loaded ms | mask mean lazy / loaded µs | p99 lazy / loaded µs | same masks |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['tokenizer']} | {r['workload']} | {r['build_precompute_s']:.1f} | {r['build_rows']} | "
                     f"{r['build_complete']} | {r['build_entries']} ({r['build_entry_mb']:.1f}) | {r['build_masks']} "
                     f"({r['build_mask_mb']:.1f}) | {r['build_file_mb']:.1f} | {r['build_save_s']:.2f} | "
                     f"{r['loaded_store_ms']:.0f} | {r['lazy_ttfm_ms']:.1f} / {r['loaded_ttfm_ms']:.1f} | "
                     f"{r['lazy_mean_us']:.0f} / {r['loaded_mean_us']:.0f} | {r['lazy_p99_us']:.0f} / "
                     f"{r['loaded_p99_us']:.0f} | {r['same_masks']} |")
    table = "\n".join(lines)
    print(table)
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(rows, indent=1))
    return 0 if all(r["same_masks"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
