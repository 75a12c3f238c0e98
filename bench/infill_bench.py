"""Autoregressive multi-region infilling of JSON templates with SmolLM2-135M: valid-output rate
with and without the infilling constraint, time per check, decoding-time overhead.

    python bench/infill_bench.py [--samples 2]

Templates: person.json documents (examples/schemas/person.json) and plain JSON (json.lark)
with values masked (1-3 holes, some inside strings).  Each template is run greedily and with
``--samples`` sampled seeds (temperature 1), constrained and unconstrained (the same loop,
every candidate accepted; validity by the Earley parser).
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

from constrain import models  # noqa: E402
from constrain.diffusion import InfillChecker, infill  # noqa: E402
from constrain.grammar import from_lark  # noqa: E402
from constrain.jsonschema import compile_json_schema  # noqa: E402

H = "<hole>"
TEMPLATES = {
    "person": [
        '{"name":<hole>,"age":<hole>,"city":"Paris"}',
        '{"name":"Ada Lovelace","age":36,"city":<hole>,"email":<hole>}',
        '{"name":"Grace","age":<hole>,"city":<hole>,"hobbies":[<hole>]}',
        '{"name":"Linus","age":<hole>,"city":"Helsinki","email":"<hole>"}',
        '{"name":"<hole>","age":<hole>,"city":"<hole>"}',
        '{"name":"Alan Turing",<hole>}',
    ],
    "json": [
        '{"id": <hole>, "tags": [<hole>], "ok": <hole>}',
        '[<hole>, 2, <hole>]',
        '{"user": {"name": <hole>, "langs": [<hole>]}, "score": <hole>}',
        '{"a": <hole>}',
    ],
}
PROMPT = "Here is a JSON record:\n"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--samples", type=int, default=2)
    ap.add_argument("--max-tokens", type=int, default=12)
    a = ap.parse_args()
    model, tok = models.load_default(threads=1)
    gs = {"person": compile_json_schema(json.loads((ROOT / "examples/schemas/person.json").read_text())),
          "json": from_lark(ROOT / "grammars/json.lark")}
    rows = []
    print(f"{'grammar':8s} {'mode':10s} {'runs':>4s} {'valid':>7s} {'by witness':>10s} {'s/run':>6s} {'tokens':>6s}")
    checks_all, t_con, t_unc, tok_con, tok_unc = [], 0.0, 0.0, 0, 0
    for name, tpls in TEMPLATES.items():
        ck = InfillChecker(gs[name])
        ck.check([b"x"])
        for constrained in (False, True):
            n = valid = wit = ntok = 0
            secs = 0.0
            for tpl in tpls:
                for s in range(a.samples + 1):
                    temp = 0.0 if s == 0 else 1.0
                    r = infill(model, tok, ck, tpl, prompt=PROMPT, constrained=constrained, temperature=temp,
                               seed=s, max_tokens=a.max_tokens)
                    n += 1
                    valid += r.valid
                    wit += "witness" in r.finished_by
                    secs += r.seconds
                    ntok += r.n_tokens
                    if constrained:
                        checks_all += r.check_seconds
                        t_con += r.seconds
                        tok_con += r.n_tokens
                    else:
                        t_unc += r.seconds
                        tok_unc += r.n_tokens
                    rows.append(dict(grammar=name, template=tpl, constrained=constrained, temperature=temp,
                                     seed=s, valid=r.valid, text=r.text.decode("utf-8", "replace"),
                                     finished_by=r.finished_by, n_checks=r.n_checks, n_rejections=r.n_rejections))
            mode = "constr." if constrained else "unconstr."
            print(f"{name:8s} {mode:10s} {n:4d} {valid:3d}/{n:<3d} {wit:10d} {secs / n:6.2f} {ntok / n:6.1f}",
                  flush=True)
    c = np.asarray(checks_all) * 1e3
    print(f"checks: {len(c)}, p50 {np.percentile(c, 50):.2f} ms, p99 {np.percentile(c, 99):.2f} ms, "
          f"mean {c.mean():.2f} ms")
    print(f"time per generated token: unconstrained {t_unc / max(tok_unc, 1) * 1e3:.1f} ms, "
          f"constrained {t_con / max(tok_con, 1) * 1e3:.1f} ms (ratio {t_con / max(tok_con, 1) / (t_unc / max(tok_unc, 1)):.2f}); "
          f"per run ratio {t_con / max(t_unc, 1e-9):.2f}")
    for r in rows[:: max(len(rows) // 8, 1)]:
        print(f"  {'C' if r['constrained'] else 'U'} {r['valid']!s:5s} {r['text'][:90]}")


if __name__ == "__main__":
    main()
