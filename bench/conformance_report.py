"""One conformance measurement of constrain in both property-order modes, per corpus.

Runs ``../shared/bench/conformance.py`` twice per corpus (``ConstrainAdapter``: the defaults,
schema property order; ``ConstrainAnyOrderAdapter``: ``property_order="any"``) and merges the
two result files case by case, so that one table says, per corpus:

* compiled schemas, invalid instances accepted ("under") in *both* modes, valid instances
  accepted in the default mode, compile time p50/p99 (default mode);
* ``order_only``: valid instances the default mode rejects and the any-order mode accepts —
  rejected only because their properties are not in schema order (the issue counts them apart);
* what the remaining lost valid instances are lost to (refusal messages, or "rejected" with the
  schema id when the schema compiled).

Usage (from the repository root, under the bench lock)::

    flock /tmp/constrain-bench.lock python bench/conformance_report.py run \\
        --corpus jsts:draft2020-12 --corpus jsts:draft7 --corpus jsb:dev
    python bench/conformance_report.py summarize --out bench/results/conformance

``summarize`` re-reads the result files of an earlier ``run``.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
HARNESS = os.path.abspath(os.path.join(ROOT, "..", "shared", "bench", "conformance.py"))
PEERS = {"schema": "bench.conformance_constrain:ConstrainAdapter",
         "any": "bench.conformance_constrain:ConstrainAnyOrderAdapter"}
NAMES = {"schema": "constrain", "any": "constrain-any-order"}


def _tag(corpus: str) -> str:
    return corpus.replace(":", "_").replace("/", "_")


def _result_path(out: str, mode: str, corpus: str) -> str:
    return os.path.join(out, f"{NAMES[mode]}__{_tag(corpus)}.json")


def run(corpora, out: str, extra=()) -> None:
    os.makedirs(out, exist_ok=True)
    env = dict(os.environ)
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    env.setdefault("CONSTRAIN_NUM_THREADS", "1")
    for corpus in corpora:
        for mode, peer in PEERS.items():
            cmd = [sys.executable, HARNESS, "run", "--peer", peer, "--corpus", corpus, "--out", out, *extra]
            print("+", " ".join(cmd), file=sys.stderr, flush=True)
            subprocess.run(cmd, check=True, cwd=ROOT, env=env)


def _pct(a, b):
    return round(100.0 * a / b, 1) if b else None


def _q(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * (len(xs) - 1)))] if xs else None


def summarize_corpus(default: dict, anyorder: dict | None) -> dict:
    cases = default["cases"]
    other = {c["id"]: c for c in anyorder["cases"]} if anyorder else {}
    comp = [c for c in cases if c["status"] == "compiled"]
    valid = [o for c in cases for o in c["instances"] if o["valid"]]
    under = sum(o["outcome"] == "under" for c in cases for o in c["instances"])
    under_any = sum(o["outcome"] == "under" for c in other.values() for o in c["instances"])
    ok = sum(o["outcome"] == "correct" for o in valid)
    times = [1000 * c["compile_s"] for c in comp if c.get("compile_s") is not None]
    order_only = 0
    lost = collections.Counter()
    order_cases = []
    for c in cases:
        oc = other.get(c["id"])
        for j, o in enumerate(c["instances"]):
            if not o["valid"] or o["outcome"] == "correct":
                continue
            if c["status"] != "compiled":
                lost[(c.get("error") or c["status"])[:100]] += 1
                continue
            if oc is not None and oc["status"] == "compiled" and oc["instances"][j]["outcome"] == "correct":
                order_only += 1
                order_cases.append(c["id"])
            else:
                lost[f"rejected in compiled schema: {c['group']}"] += 1
    return {
        "schemas": len(cases), "compiled": len(comp),
        "compiled_any_order": sum(c["status"] == "compiled" for c in other.values()) if other else None,
        "under": under, "under_any_order": under_any if other else None,
        "valid": len(valid), "valid_accepted": ok, "valid_accepted_pct": _pct(ok, len(valid)),
        "order_only": order_only, "order_only_cases": sorted(set(order_cases)),
        "valid_accepted_any_order_pct": _pct(ok + order_only, len(valid)),
        "compile_p50_ms": round(_q(times, 0.5), 1) if times else None,
        "compile_p99_ms": round(_q(times, 0.99), 1) if times else None,
        "lost": lost.most_common(),
    }


def summarize(corpora, out: str, show_lost: int = 25) -> dict:
    res = {}
    for corpus in corpora:
        p = _result_path(out, "schema", corpus)
        if not os.path.exists(p):
            continue
        pa = _result_path(out, "any", corpus)
        with open(p) as f:
            d = json.load(f)
        a = None
        if os.path.exists(pa):
            with open(pa) as f:
                a = json.load(f)
        res[corpus] = summarize_corpus(d, a)
    print("| corpus | compiled | under (schema order / any order) | valid accepted | + any order only "
          "| compile p50 / p99 ms |")
    print("|---|---|---|---|---|---|")
    for corpus, s in res.items():
        print(f"| {corpus} | {s['compiled']}/{s['schemas']} | {s['under']} / {s['under_any_order']} "
              f"| {s['valid_accepted_pct']}% ({s['valid_accepted']}/{s['valid']}) "
              f"| +{s['order_only']} ({s['valid_accepted_any_order_pct']}%) "
              f"| {s['compile_p50_ms']} / {s['compile_p99_ms']} |")
    for corpus, s in res.items():
        print(f"\n{corpus}: lost valid instances by cause")
        for k, n in s["lost"][:show_lost]:
            print(f"  {n:4d}  {k}")
    return res


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["run", "summarize"])
    ap.add_argument("--corpus", action="append")
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "results", "conformance"))
    ap.add_argument("--json", help="also write the summary here")
    ap.add_argument("--lost", type=int, default=25, help="causes listed per corpus")
    a, extra = ap.parse_known_args()
    corpora = a.corpus or ["jsts:draft2020-12", "jsts:draft7", "jsb:dev"]
    if a.mode == "run":
        run(corpora, a.out, extra)
    res = summarize(corpora, a.out, a.lost)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(res, f, indent=1)


if __name__ == "__main__":
    main()
