"""Sampling benchmark: masking bias vs ASAp, and AWRS's constraint cost vs full masking.

    python bench/sampling_bench.py                    # toy setup only (seconds)
    python bench/sampling_bench.py --smollm2          # + SmolLM2 with a JSON schema and the SQL grammar

Two tables:

1. **KL to the target on the toy setup** (the tests' tiny vocabulary, 9-word grammar, seeded
   table LM; target known exactly by enumeration).  For masking and ASAp after 10 / 100 /
   1000 samples: the empirical KL(emp || Q) over the observed support (the paper's metric;
   it carries a finite-sample bias of roughly (cells - 1) / 2n), and for ASAp the exact
   KL(Q || q_n) of its current proposal.  Means over ``--seeds`` seeds.
2. **Constraint work per token, AWRS vs full masking**: the same decoding states (collected by
   masked sampling) are served by both; reported are checks per token (a full mask counts the
   vocabulary size; ``try_accept`` calls count 1) and constraint time per token (the model's
   forward pass is excluded, and reported separately for SmolLM2).  Both totals include the
   O(V) numpy work every sampler pays (normalising, drawing); the "mask fill" and "AWRS checks"
   columns isolate the constraint evaluation itself.

Writes JSON to ``--out`` (default ``bench/results/sampling.json``).
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from constrain.engine.matcher import Matcher  # noqa: E402
from constrain.grammar import from_choices  # noqa: E402
from constrain.sampling import ASApSampler, TableLM, awrs_step, mask_sample  # noqa: E402
from constrain.sampling.base import log_softmax  # noqa: E402
from constrain.sampling.exact import empirical, enumerate_sequences, kl  # noqa: E402
from constrain.tokenizers import Vocabulary  # noqa: E402

TOY_TOKENS = [b"a", b"b", b"c", b"ab", b"ba", b"ca"]
TOY_WORDS = ["ab", "abc", "b", "ca", "cab", "bb", "abab", "cba", "bca"]
TOY_MAX = 6


def toy():
    eos = len(TOY_TOKENS)
    vocab = Vocabulary(TOY_TOKENS + [b""], kinds=[0] * eos + [1], special_tokens={"<eos>": eos}, eos_ids=[eos])
    matcher = Matcher(from_choices(TOY_WORDS), vocab)
    lm = TableLM(eos + 1, eos, seed=3, alpha=0.5, max_len=TOY_MAX)
    return lm, matcher


def kl_table(seeds: int) -> dict:
    lm, matcher = toy()
    ex = enumerate_sequences(lm, matcher, max_tokens=TOY_MAX)
    target = ex.as_dict()
    points = (10, 100, 1000)
    rows = {"mask_emp": {n: [] for n in points}, "asap_emp": {n: [] for n in points},
            "asap_proposal": {n: [] for n in points}}
    for seed in range(seeds):
        rng = np.random.default_rng(seed)
        draws = [mask_sample(lm, matcher, max_tokens=TOY_MAX, rng=rng).token_ids for _ in range(max(points))]
        s = ASApSampler(lm, matcher, max_tokens=TOY_MAX)
        adraws = []
        for n in points:
            rows["mask_emp"][n].append(kl(empirical(draws[:n]), target))
            while s.n_samples < n:
                adraws.append(s.sample(rng).token_ids)
            rows["asap_emp"][n].append(kl(empirical(adraws), target))
            q = {w: math.exp(s.proposal_log_prob(w)) for w in ex.seqs}
            rows["asap_proposal"][n].append(kl(target, q))
    return {"z": ex.z, "n_sequences": len(ex.seqs), "seeds": seeds,
            "mask_exact_kl_mask_vs_target": kl(ex.as_dict("masking"), target),
            "mask_exact_kl_target_vs_mask": kl(target, ex.as_dict("masking")),
            **{k: {str(n): statistics.fmean(v) for n, v in d.items()} for k, d in rows.items()}}


def _states_by_masking(lm, matcher, n_seqs: int, max_tokens: int, rng):
    """(matcher copy, log-probs) at every step of ``n_seqs`` masked samples, plus model time."""
    states, t_model, n_model = [], 0.0, 0
    for _ in range(n_seqs):
        m = matcher.copy()
        ids: list[int] = []
        for _ in range(max_tokens):
            t0 = time.perf_counter()
            lp = log_softmax(lm(ids))
            t_model += time.perf_counter() - t0
            n_model += 1
            states.append((m.copy(), lp))
            allowed = np.zeros(lp.shape[0], bool)
            allowed[: m.vocab.n_vocab] = m.next_token_mask()
            p = np.where(allowed, np.exp(lp), 0.0)
            t = int(rng.choice(p.shape[0], p=p / p.sum()))
            ids.append(t)
            m.accept_token(t)
            if m.is_finished():
                break
    return states, t_model / max(n_model, 1)


def constraint_cost(states, rng, reps: int = 3) -> dict:
    n_vocab = states[0][0].vocab.n_vocab
    mask_t, awrs_t, fill_t, check_t, checks, fallbacks = [], [], [], [], [], 0
    for m, lp in states:
        best_m, best_a, best_f, best_c = math.inf, math.inf, math.inf, math.inf
        for _ in range(reps):
            t0 = time.perf_counter()
            allowed = np.zeros(lp.shape[0], bool)
            allowed[:n_vocab] = m.next_token_mask()
            t1 = time.perf_counter()
            p = np.where(allowed, np.exp(lp), 0.0)
            rng.choice(p.shape[0], p=p / p.sum())
            best_m = min(best_m, time.perf_counter() - t0)
            best_f = min(best_f, t1 - t0)
            spent = [0.0]
            real = m.try_accept

            def timed(t, real=real, spent=spent):
                a = time.perf_counter()
                ok = real(t)
                spent[0] += time.perf_counter() - a
                return ok

            m.try_accept = timed  # instance attribute: awrs_step calls it through the matcher
            t0 = time.perf_counter()
            s = awrs_step(lp, m, rng=rng)
            best_a = min(best_a, time.perf_counter() - t0)
            del m.try_accept
            best_c = min(best_c, spent[0])
        mask_t.append(best_m)
        awrs_t.append(best_a)
        fill_t.append(best_f)
        check_t.append(best_c)
        checks.append(s.n_checks + (n_vocab if s.fell_back else 0))
        fallbacks += s.fell_back
    return {"tokens": len(states), "mask_checks_per_token": n_vocab, "awrs_checks_per_token": statistics.fmean(checks),
            "awrs_checks_p50": statistics.median(checks), "awrs_fallbacks": fallbacks,
            "mask_us_per_token": 1e6 * statistics.fmean(mask_t), "awrs_us_per_token": 1e6 * statistics.fmean(awrs_t),
            "mask_us_p50": 1e6 * statistics.median(mask_t), "awrs_us_p50": 1e6 * statistics.median(awrs_t),
            "mask_fill_us_per_token": 1e6 * statistics.fmean(fill_t),
            "awrs_check_us_per_token": 1e6 * statistics.fmean(check_t)}


def smollm2_cost(n_seqs: int, max_tokens: int, rng) -> dict:
    from constrain import models
    from constrain.grammar import from_lark
    from constrain.jsonschema import compile_json_schema
    from constrain.sampling import TransformersLM
    from constrain.tokenizers.adapters import vocabulary_from

    model, tok = models.load_default()
    vocab = vocabulary_from(tok)
    cases = {
        "json_person": (compile_json_schema({"type": "object", "properties": {
            "name": {"type": "string"}, "age": {"type": "integer", "minimum": 0}, "city": {"type": "string"}},
            "required": ["name", "age", "city"]}), "Invent a person who lives in Lisbon. Reply in JSON."),
        "sql": (from_lark(str(REPO / "grammars" / "sql.lark")),
                "Write one SQL query listing the names of customers from Lisbon, ordered by name."),
    }
    out = {}
    for name, (g, text) in cases.items():
        prompt = tok.apply_chat_template([{"role": "user", "content": text}], add_generation_prompt=True, tokenize=True)
        if hasattr(prompt, "keys"):
            prompt = prompt["input_ids"]
        lm = TransformersLM(model, prompt)
        states, model_s = _states_by_masking(lm, Matcher(g, vocab), n_seqs, max_tokens, rng)
        out[name] = {**constraint_cost(states, rng), "model_ms_per_token": 1e3 * model_s}
        print(f"  {name}: {out[name]}", file=sys.stderr, flush=True)
    return out


def render(res: dict) -> str:
    k = res["kl"]
    lines = [f"KL to the target, toy setup (Z = {k['z']:.4f}, {k['n_sequences']} grammatical sequences, "
             f"mean of {k['seeds']} seeds; masking's exact KL(Q_mask||Q) = {k['mask_exact_kl_mask_vs_target']:.3f}, "
             f"KL(Q||Q_mask) = {k['mask_exact_kl_target_vs_mask']:.3f})",
             "| samples | masking KL(emp‖Q) | ASAp KL(emp‖Q) | ASAp proposal KL(Q‖q_n) |", "|---|---|---|---|"]
    for n in ("10", "100", "1000"):
        lines.append(f"| {n} | {k['mask_emp'][n]:.4f} | {k['asap_emp'][n]:.4f} | {k['asap_proposal'][n]:.5f} |")
    lines += ["", "Constraint work per token (model forward excluded)",
              "| setup | tokens | mask checks/token | AWRS checks/token (p50) | AWRS fallbacks | mask µs/token | AWRS µs/token "
              "| of which mask fill / AWRS checks µs | model ms/token |",
              "|---|---|---|---|---|---|---|---|---|"]
    for name, c in res["cost"].items():
        mm = f"{c['model_ms_per_token']:.1f}" if "model_ms_per_token" in c else "–"
        lines.append(f"| {name} | {c['tokens']} | {c['mask_checks_per_token']} | {c['awrs_checks_per_token']:.2f} "
                     f"({c['awrs_checks_p50']:.0f}) | {c['awrs_fallbacks']} | {c['mask_us_per_token']:.1f} | "
                     f"{c['awrs_us_per_token']:.1f} | {c['mask_fill_us_per_token']:.1f} / "
                     f"{c['awrs_check_us_per_token']:.1f} | {mm} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--smollm2", action="store_true", help="also measure on SmolLM2 (JSON schema, SQL grammar)")
    ap.add_argument("--seqs", type=int, default=2, help="sequences per SmolLM2 case")
    ap.add_argument("--max-tokens", type=int, default=48)
    ap.add_argument("--out", default=str(REPO / "bench" / "results" / "sampling.json"))
    a = ap.parse_args(argv)
    rng = np.random.default_rng(0)
    res = {"kl": kl_table(a.seeds)}
    lm, matcher = toy()
    states, _ = _states_by_masking(lm, matcher, 300, TOY_MAX, rng)
    res["cost"] = {"toy": constraint_cost(states, rng)}
    if a.smollm2:
        res["cost"].update(smollm2_cost(a.seqs, a.max_tokens, rng))
    print(render(res))
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
