"""constrain adapters for ``shared/bench/conformance.py`` (model-free JSON Schema conformance).

Run from the repository root (so ``bench`` is importable)::

    PYTHONPATH=. python ../shared/bench/conformance.py run \
        --peer bench.conformance_constrain:ConstrainAdapter --corpus jsts:draft2020-12

``ConstrainAdapter`` compiles with the defaults (compact whitespace, schema property order)
and feeds each instance's real SmolLM2 tokens to a :class:`constrain.Matcher`, then asks for
EOS.  ``ConstrainAnyOrderAdapter`` uses ``property_order="any"``: the difference between the
two runs is the valid instances rejected only for their property order.

``quick`` mode (``python bench/conformance_constrain.py quick --corpus jsts:draft2020-12``)
runs the same checks in-process on bytes, without tokenizing — for development only.
"""

from __future__ import annotations

import glob
import importlib.metadata
import json
import os
import signal
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SHARED = os.path.abspath(os.path.join(HERE, "..", "..", "shared"))
REMOTES = os.path.join(SHARED, "data", "json-schema-test-suite", "remotes")


def remotes_registry(dialect: str):
    """The suite's remotes/ served as http://localhost:1234/ (as the suite asks validators to)."""
    import referencing
    import referencing.jsonschema

    from constrain.jsonschema.resolve import dialect_spec

    spec = dialect_spec(dialect)
    res = []
    for path in glob.glob(os.path.join(REMOTES, "**", "*.json"), recursive=True):
        uri = "http://localhost:1234/" + os.path.relpath(path, REMOTES).replace(os.sep, "/")
        with open(path) as f:
            res.append((uri, referencing.Resource.from_contents(json.load(f), default_specification=spec)))
    return referencing.Registry().with_resources(res)


def _dialect() -> str:
    return {"draft7": "7", "draft2019-09": "2019-09"}.get(os.environ.get("CONFORMANCE_DIALECT", ""), "2020-12")


class ConstrainAdapter:
    name = "constrain"
    serializations = ("compact", "spaced")
    options: dict = {}

    def __init__(self, tokenizer_path):
        sys.path.insert(0, os.path.abspath(os.path.join(HERE, "..")))
        from transformers import AutoTokenizer

        from constrain.tokenizers.adapters import vocabulary_from

        self.tok = AutoTokenizer.from_pretrained(tokenizer_path)
        self.vocab = vocabulary_from(self.tok)
        self.registry = remotes_registry(_dialect())

    def version(self):
        try:
            return importlib.metadata.version("constrain")
        except importlib.metadata.PackageNotFoundError:
            return "dev"

    def compile(self, schema_text):
        from constrain.jsonschema import compile_json_schema

        return compile_json_schema(schema_text, dialect=_dialect(), registry=self.registry, **self.options)

    def accepts(self, grammar, text):
        from constrain.engine.matcher import Matcher

        m = Matcher(grammar, self.vocab)
        ids = self.tok.encode(text, add_special_tokens=False)
        return m.accept_tokens(ids) and m.accept_token(self.vocab.eos_ids[0]) and m.is_finished()


class ConstrainAnyOrderAdapter(ConstrainAdapter):
    name = "constrain-any-order"
    options = {"property_order": "any"}


class _Timeout(BaseException):
    pass


def quick(corpus: str, verbose: bool = False, only: str = "") -> dict:
    """In-process check on bytes (development aid; the real measurement is conformance.py)."""
    sys.path.insert(0, os.path.join(SHARED, "bench"))
    import conformance as C

    from constrain.engine.earley import CompiledParserTables, ByteParser
    from constrain.jsonschema import compile_json_schema

    dialect = {"draft7": "7", "draft2019-09": "2019-09"}.get(corpus.split(":", 1)[1], "2020-12")
    reg = remotes_registry(dialect)
    cases = C.load_corpus(corpus)
    stats = {"schemas": 0, "compiled": 0, "valid": 0, "valid_ok": 0, "invalid": 0, "under": 0, "errors": {}}
    unders = []
    times = []

    def _alarm(*_):
        raise _Timeout()

    signal.signal(signal.SIGALRM, _alarm)
    for c in cases:
        if only and only not in c["id"]:
            continue
        stats["schemas"] += 1
        t0 = time.perf_counter()
        signal.alarm(20)
        try:
            g = compile_json_schema(c["schema"], dialect=dialect, registry=reg)
            t = CompiledParserTables(g)
        except _Timeout:
            stats["errors"]["timeout"] = stats["errors"].get("timeout", 0) + 1
            print("TIMEOUT", c["id"], flush=True)
            continue
        except Exception as e:  # noqa: BLE001
            key = f"{type(e).__name__}: {str(e)[:70]}"
            stats["errors"][key] = stats["errors"].get(key, 0) + 1
            if verbose:
                print("REFUSED", c["id"], key)
            continue
        finally:
            signal.alarm(0)
        times.append(time.perf_counter() - t0)
        stats["compiled"] += 1
        for x in c["instances"]:
            text = C.dumps(x["data"])
            p = ByteParser(t)
            ok = p.feed(text.encode()) and p.is_complete()
            if ok and g.value_check is not None:  # what the Matcher adds (constrain.grammar.checks)
                ok = g.value_check.accepts(text.encode())
            if x["valid"]:
                stats["valid"] += 1
                stats["valid_ok"] += ok
                if verbose and not ok:
                    print("OVER ", c["id"], x["description"], text[:80])
            else:
                stats["invalid"] += 1
                if ok:
                    stats["under"] += 1
                    unders.append((c["id"], x["description"], text[:80]))
    for u in unders:
        print("UNDER", *u)
    times.sort()
    stats["compile_p50_ms"] = round(1000 * times[len(times) // 2], 1) if times else None
    stats["compile_p99_ms"] = round(1000 * times[int(0.99 * (len(times) - 1))], 1) if times else None
    return stats


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["quick"])
    ap.add_argument("--corpus", default="jsts:draft2020-12")
    ap.add_argument("--only", default="")
    ap.add_argument("-v", action="store_true")
    a = ap.parse_args()
    s = quick(a.corpus, a.v, a.only)
    errs = sorted(s.pop("errors").items(), key=lambda kv: -kv[1])
    print(json.dumps(s, indent=1))
    for k, v in errs[:40]:
        print(f"{v:5d}  {k}")
