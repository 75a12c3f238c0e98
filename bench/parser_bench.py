"""Grammar compile time and reference-parser cost per byte, for every grammar in grammars/.

    python bench/parser_bench.py [--out bench/results/parser.json]

Prints a table and writes JSON.  "compile" is Lark load + regex → DFA + IR (cold: first call in
the process pays for Lark's meta-grammar; warm: best of 5).  "parse µs/byte" feeds each accepted
corpus document one byte at a time through the reference (pure-Python) Earley parser.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=str(REPO / "bench" / "results" / "parser.json"))
    args = ap.parse_args(argv)
    from constrain.engine.earley import ByteParser, CompiledParserTables
    from constrain.errors import ConstrainError
    from constrain.grammar import from_lark

    rows = []
    for path in sorted((REPO / "grammars").glob("*.lark")):
        name = path.stem
        t0 = time.perf_counter()
        try:
            g = from_lark(path)
        except ConstrainError as e:
            rows.append({"grammar": name, "error": str(e).splitlines()[0]})
            continue
        cold = time.perf_counter() - t0
        warm = min(_timed(lambda: from_lark(path)) for _ in range(5))
        tables = CompiledParserTables(g)
        docs = [p.read_bytes() for p in sorted((REPO / "tests" / "data" / "grammars" / name / "accept").glob("*.txt"))]
        n_bytes = sum(len(d) for d in docs)
        t0 = time.perf_counter()
        for d in docs:
            p = ByteParser(tables)
            for i in range(len(d)):
                p.feed(d[i:i + 1])
            assert p.is_complete(), (name, d[:60])
        dt = time.perf_counter() - t0
        rows.append({"grammar": name, "terminals": g.n_terminals, "rules": g.n_rules, "lexing": g.lexing,
                     "compile_cold_ms": round(cold * 1e3, 1), "compile_warm_ms": round(warm * 1e3, 1),
                     "docs": len(docs), "bytes": n_bytes, "parse_us_per_byte": round(dt / n_bytes * 1e6, 1),
                     "lexer_states": tables.lexer.n_states})
    hdr = ["grammar", "terminals", "rules", "lexing", "compile_cold_ms", "compile_warm_ms", "bytes",
           "parse_us_per_byte", "lexer_states"]
    print(" | ".join(hdr))
    for r in rows:
        print(" | ".join(str(r.get(h, r.get("error", "") if h == "terminals" else "")) for h in hdr))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(rows, indent=2))
    return 0


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


if __name__ == "__main__":
    raise SystemExit(main())
