"""Property-based test data: constrain.hypothesis vs hypothesis-jsonschema and hypothesis.extra.lark.

    python bench/hypothesis_bench.py --limit 40            # 40 JSONSchemaBench schemas + grammars + shrinking
    python bench/hypothesis_bench.py --limit 40 --skip-shrink --json bench/reports/hypothesis.json

Schemas (JSONSchemaBench development sample, a seeded sample of ``--limit`` files across the
subsets): per tool, run a ``@given`` test for up to ``--examples`` examples within
``--seconds`` (strategy construction and compilation included) and validate every example with
``jsonschema`` (the schema's own draft, formats asserted).  A schema counts as a success when
the tool produced ``--examples`` valid examples (or exhausted a smaller language) in time with
no invalid one.  Grammars (grammars/*.lark): the same with Lark's own parser as the judge.
Shrinking: ``hypothesis.find`` on properties that fail on a key or keyword; the size of the
shrunk example.

Examples per second are over the examples each tool produced (the schemas it succeeded on
and the ones it timed out on).  The machine is shared: the numbers are ratios, not absolutes.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import signal
import sys
import time
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
DATA = REPO.parent / "shared" / "data" / "jsonschemabench-dev"


class _Timeout(KeyboardInterrupt):  # hypothesis re-raises it at once (no replay, no "Flaky")
    pass


def _alarm(_sig, _frame):
    raise _Timeout()


def _run_given(strategy_factory, judge, n_examples: int, seconds: float) -> dict:
    """Run ``@given(strategy)`` for ``n_examples`` examples with a hard time limit."""
    from hypothesis import HealthCheck, Phase, given, settings

    out = {"n": 0, "valid": 0, "invalid": 0, "error": None, "timeout": False, "seconds": 0.0,
           "invalid_example": None}
    t0 = time.perf_counter()
    signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        strategy = strategy_factory()

        @settings(max_examples=n_examples, deadline=None, database=None, phases=[Phase.generate],
                  suppress_health_check=list(HealthCheck))
        @given(strategy)
        def body(x):
            out["n"] += 1
            if judge(x):
                out["valid"] += 1
            else:
                out["invalid"] += 1
                if out["invalid_example"] is None:
                    out["invalid_example"] = repr(x)[:300]

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            body()
    except _Timeout:
        out["timeout"] = True
    except Exception as e:  # unsupported schema, generation failure
        out["error"] = f"{type(e).__name__}: {str(e)[:160]}"
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        out["seconds"] = time.perf_counter() - t0
    if out["seconds"] > seconds * 1.05:
        out["timeout"] = True  # the alarm can land in a gc callback, where Python swallows it
    out["ok"] = (not out["timeout"] and out["error"] is None and out["invalid"] == 0 and out["n"] > 0)
    return out


def _schema_files(limit: int) -> list[Path]:
    files = sorted(p for p in DATA.glob("*/*.json"))
    random.Random(12).shuffle(files)
    return files[:limit]


def _patch_hypothesis_jsonschema() -> None:
    """hypothesis-jsonschema 0.23.1 drives ``hypothesis.internal.conjecture.utils.many`` with
    the old ``while elements.more(): ... elements.reject()`` protocol, which hypothesis 6.170
    replaced by a context manager (``AttributeError: 'many' object has no attribute 'more'``
    on every array or object).  Give it a subclass that speaks the old protocol through the
    new one, on hypothesis-jsonschema's own reference to the module only."""
    import types

    import hypothesis.internal.conjecture.utils as cu
    import hypothesis_jsonschema._from_schema as hjs

    if getattr(hjs.cu, "_constrain_compat", False) or hasattr(cu.many, "more"):
        return

    class _CompatMany(cu.many):
        def more(self):
            if self._depth is None:
                self.__enter__()
                self._it = iter(self)
            try:
                next(self._it)
                return True
            except StopIteration:
                self._closed = True
                return False

    proxy = types.ModuleType("hypothesis_conjecture_utils_compat")
    proxy.__dict__.update(cu.__dict__)
    proxy.many = _CompatMany
    proxy._constrain_compat = True
    hjs.cu = proxy


def bench_schemas(limit: int, n_examples: int, seconds: float) -> dict:
    import jsonschema
    from hypothesis_jsonschema import from_schema as hj_from_schema

    _patch_hypothesis_jsonschema()

    from constrain.hypothesis import from_schema as c_from_schema

    rows = []
    for path in _schema_files(limit):
        schema = json.loads(path.read_text())["schema"]
        cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
        try:
            validator = cls(schema, format_checker=cls.FORMAT_CHECKER)
        except Exception:
            continue

        def judge(value, v=validator):
            try:
                return v.is_valid(value)
            except Exception:
                return False

        row = {"schema": path.name}
        row["constrain"] = _run_given(lambda s=schema: c_from_schema(s), judge, n_examples, seconds)
        row["hypothesis-jsonschema"] = _run_given(lambda s=schema: hj_from_schema(s), judge, n_examples, seconds)
        rows.append(row)
        c, h = row["constrain"], row["hypothesis-jsonschema"]
        print(f"{path.name[:48]:48s} constrain {_cell(c):28s} hypothesis-jsonschema {_cell(h)}", flush=True)
    return {"rows": rows, "summary": {tool: _summary([r[tool] for r in rows]) for tool in ("constrain", "hypothesis-jsonschema")}}


def _cell(r: dict) -> str:
    tag = "ok" if r["ok"] else ("timeout" if r["timeout"] else ("invalid" if r["invalid"] else "error"))
    return f"{tag:7s} n={r['n']:3d} bad={r['invalid']} {r['seconds']:.1f}s"


def _summary(results: list[dict]) -> dict:
    n = sum(r["n"] for r in results)
    secs = sum(r["seconds"] for r in results if r["n"])
    return {"schemas": len(results), "ok": sum(r["ok"] for r in results),
            "share_ok": round(sum(r["ok"] for r in results) / max(1, len(results)), 3),
            "errors": sum(r["error"] is not None for r in results),
            "timeouts": sum(r["timeout"] for r in results),
            "examples": n, "invalid": sum(r["invalid"] for r in results),
            "schemas_with_invalid": sum(r["invalid"] > 0 for r in results),
            "examples_per_s": round(n / secs, 1) if secs else 0.0}


def _lark_judge(path: Path):
    from constrain.hypothesis import _lark_checker

    check = _lark_checker(path.read_text(encoding="utf-8"), str(path))

    def judge(doc) -> bool:
        try:
            check(doc)
            return True
        except Exception:
            return False

    return judge


def _hyp_lark(path: Path):
    from hypothesis.extra.lark import from_lark
    from lark import Lark

    from constrain.grammar.lark_frontend import read_header

    opts = read_header(path.read_text(encoding="utf-8"))
    kwargs = {k: opts[k] for k in ("start", "parser", "lexer") if k in opts}
    return from_lark(Lark.open(str(path), **kwargs), start=kwargs.get("start"))


def bench_grammars(n_examples: int, seconds: float, max_size: int) -> dict:
    from constrain.hypothesis import from_grammar

    rows = []
    for path in sorted((REPO / "grammars").glob("*.lark")):
        judge = _lark_judge(path)
        row = {"grammar": path.stem}
        row["constrain"] = _run_given(lambda p=path: from_grammar(str(p), max_size=max_size), judge, n_examples, seconds)
        row["constrain ascii_only"] = _run_given(lambda p=path: from_grammar(str(p), max_size=max_size, ascii_only=True),
                                                 judge, n_examples, seconds)
        row["hypothesis.extra.lark"] = _run_given(lambda p=path: _hyp_lark(p), judge, n_examples, seconds)
        rows.append(row)
        print(f"{path.stem:10s} " + "  ".join(f"{k} {_cell(row[k])}" for k in row if k != "grammar"), flush=True)
    return {"rows": rows}


def _shrink(strategy_factory, condition, seconds: float) -> dict:
    from hypothesis import HealthCheck, find, settings

    out = {"found": None, "size": None, "seconds": 0.0, "error": None}
    t0 = time.perf_counter()
    signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            found = find(strategy_factory(), condition,
                         settings=settings(database=None, max_examples=2000, deadline=None,
                                           suppress_health_check=list(HealthCheck)))
        text = found if isinstance(found, str) else json.dumps(found, separators=(",", ":"))
        out["found"] = text[:200]
        out["size"] = len(text)
    except _Timeout:
        out["error"] = "timeout"
    except Exception as e:
        out["error"] = f"{type(e).__name__}: {str(e)[:120]}"
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        out["seconds"] = round(time.perf_counter() - t0, 1)
    return out


def bench_shrinking(seconds: float) -> dict:
    from hypothesis_jsonschema import from_schema as hj_from_schema

    _patch_hypothesis_jsonschema()

    from constrain.hypothesis import from_grammar, from_schema

    schema = {"type": "object", "properties": {"name": {"type": "string"}, "size": {"type": "integer"},
                                                "debug": {"type": "boolean"},
                                                "items": {"type": "array", "items": {"type": "string"}}}}
    g = REPO / "grammars"
    cases = {
        "schema key 'debug'": (lambda: from_schema(schema), lambda: hj_from_schema(schema),
                               lambda v: isinstance(v, dict) and "debug" in v),
        "json.lark any one-letter key": (lambda: from_grammar(str(g / "json.lark"), max_size=60),
                                         lambda: _hyp_lark(g / "json.lark"),
                                         lambda d: re.search(r'"[a-z]"\s*:', d) is not None),
        "json.lark null inside an array": (lambda: from_grammar(str(g / "json.lark"), max_size=60),
                                           lambda: _hyp_lark(g / "json.lark"),
                                           lambda d: re.search(r"\[[^]]*null", d) is not None),
        "python.lark keyword 'if'": (lambda: from_grammar(str(g / "python.lark"), max_size=40), None,
                                     lambda d: re.search(r"\bif\b", d) is not None),
        "sql.lark keyword 'where'": (lambda: from_grammar(str(g / "sql.lark"), max_size=60, ascii_only=True),
                                     lambda: _hyp_lark(g / "sql.lark"),
                                     lambda d: re.search(r"\bwhere\b", d, re.I) is not None),
    }
    rows = {}
    for name, (ours, theirs, cond) in cases.items():
        rows[name] = {"constrain": _shrink(ours, cond, seconds),
                      "peer": _shrink(theirs, cond, seconds) if theirs else {"error": "unsupported (indenter)"}}
        print(f"shrink {name:30s} constrain {rows[name]['constrain']}  peer {rows[name]['peer']}", flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--limit", type=int, default=40, help="number of JSONSchemaBench schemas (seeded sample)")
    ap.add_argument("--examples", type=int, default=50)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--grammar-size", type=int, default=256, help="max_size for constrain's grammar documents")
    ap.add_argument("--shrink-seconds", type=float, default=60.0)
    ap.add_argument("--skip-shrink", action="store_true")
    ap.add_argument("--skip-grammars", action="store_true")
    ap.add_argument("--json", type=Path, default=REPO / "bench" / "reports" / "hypothesis_bench.json")
    args = ap.parse_args()

    report = {"args": {k: str(v) for k, v in vars(args).items()}, "started": time.strftime("%Y-%m-%d %H:%M:%S")}
    report["schemas"] = bench_schemas(args.limit, args.examples, args.seconds) if args.limit else {"rows": [], "summary": {}}
    if not args.skip_grammars:
        report["grammars"] = bench_grammars(args.examples, args.seconds, args.grammar_size)
    if not args.skip_shrink:
        report["shrinking"] = bench_shrinking(args.shrink_seconds)
        if args.limit == 0 and args.skip_grammars and args.json.exists():
            # shrink-only rerun: merge into an existing report
            old = json.loads(args.json.read_text())
            old["shrinking"] = report["shrinking"]
            old.setdefault("notes", []).append(f"shrinking rerun {report['started']} ({args.shrink_seconds}s each)")
            report = old

    print("\n== schemas: share producing", args.examples, "valid examples within", args.seconds, "s ==")
    print(f"{'tool':24s} {'ok':>8s} {'share':>6s} {'errors':>6s} {'timeouts':>8s} {'examples':>8s} {'invalid':>7s} {'ex/s':>7s}")
    for tool, s in report["schemas"]["summary"].items():
        print(f"{tool:24s} {s['ok']:>4d}/{s['schemas']:<3d} {s['share_ok']:>6.2f} {s['errors']:>6d} {s['timeouts']:>8d} "
              f"{s['examples']:>8d} {s['invalid']:>7d} {s['examples_per_s']:>7.1f}")
    if "grammars" in report:
        print("\n== grammars: validity by Lark re-parse ==")
        print(f"{'grammar':10s} {'tool':22s} {'n':>4s} {'invalid':>7s} {'ex/s':>7s} note")
        for row in report["grammars"]["rows"]:
            for tool in ("constrain", "constrain ascii_only", "hypothesis.extra.lark"):
                r = row[tool]
                rate = r["n"] / r["seconds"] if r["seconds"] and r["n"] else 0.0
                note = r["error"] or ("timeout" if r["timeout"] else "")
                print(f"{row['grammar']:10s} {tool:22s} {r['n']:>4d} {r['invalid']:>7d} {rate:>7.1f} {note[:60]}")
    if "shrinking" in report:
        print("\n== shrinking: size of the shrunk failing example (bytes) ==")
        for name, r in report["shrinking"].items():
            print(f"{name:30s} constrain {r['constrain'].get('size')!s:>5s} {r['constrain'].get('found')!r:30s} "
                  f"peer {r['peer'].get('size')!s:>5s} {str(r['peer'].get('found') or r['peer'].get('error'))[:40]!r}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=1))
    print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
