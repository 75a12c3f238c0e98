"""A tiny masked-diffusion LM over real SmolLM2 token ids, and constrained vs unconstrained decoding.

    python examples/diffusion_tiny_mdlm.py train --seconds 120      # writes tests/diffusion/data/tiny_mdlm.pt
    python examples/diffusion_tiny_mdlm.py eval --n 32               # valid-output rates

Recipe (research/assets.md §3): synthetic JSON records tokenised with the SmolLM2 tokenizer,
a local vocabulary of the ids the corpus uses (+ EOS, + [MASK]), a bidirectional
``nn.TransformerEncoder`` (d=128, 4 heads, 3 layers), the MDLM absorbing-mask loss
(t ~ U(0, 1], mask with probability t, cross-entropy on masked positions weighted 1/t),
AdamW 9e-4, batch 32, one thread.  At sampling time the local logits are scattered into the
full 49,152-id vocabulary (-inf elsewhere), so the constraint sees the real tokenizer.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
CKPT = ROOT / "tests/diffusion/data/tiny_mdlm.pt"
TOK = ROOT / "tests/data/tokenizers/smollm2"
L = 64
NAMES = ["Ada", "Alan", "Grace", "Linus", "Edsger", "Barbara", "Donald", "Ken", "Margaret", "Tim"]
CITIES = ["Lisbon", "Paris", "Tokyo", "Oslo", "Lima", "Cairo", "Rome", "Quito"]
TAGS = ["a", "b", "c", "x"]

SCHEMA = {"type": "object", "properties": {
    "name": {"type": "string"}, "age": {"type": "integer", "minimum": 0},
    "email": {"type": "string"}, "active": {"type": "boolean"}, "city": {"type": "string"},
    "tags": {"type": "array", "items": {"type": "string"}}},
    "required": ["name", "age", "email", "active", "city"], "additionalProperties": False}


def record(rng: random.Random) -> str:
    n = rng.choice(NAMES)
    r = {"name": n, "age": rng.randint(18, 90), "email": f"{n.lower()}@example.org",
         "active": rng.random() < 0.5, "city": rng.choice(CITIES)}
    if rng.random() < 0.5:
        r["tags"] = rng.sample(TAGS, rng.randint(1, 2))
    return json.dumps(r)


def tokenizer():
    from tokenizers import Tokenizer
    return Tokenizer.from_file(str(TOK / "tokenizer.json"))


def build_model(n_local: int):
    import torch
    from torch import nn

    class MDLM(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = nn.Embedding(n_local + 1, 128)          # + [MASK]
            self.pos = nn.Parameter(torch.zeros(L, 128))
            layer = nn.TransformerEncoderLayer(128, 4, 256, dropout=0.0, batch_first=True)
            self.enc = nn.TransformerEncoder(layer, 3)
            self.out = nn.Linear(128, n_local)

        def forward(self, x):
            return self.out(self.enc(self.emb(x) + self.pos))

    return MDLM()


def train(seconds: float, seed: int = 0):
    import torch
    import torch.nn.functional as F

    torch.set_num_threads(1)
    torch.manual_seed(seed)
    rng = random.Random(seed)
    tok = tokenizer()
    from constrain.tokenizers import Vocabulary
    eos = Vocabulary.from_tokenizer(TOK).eos_ids[0]
    corpus = [tok.encode(record(rng), add_special_tokens=False).ids for _ in range(4000)]
    corpus = [c for c in corpus if len(c) < L]
    local = sorted({i for c in corpus for i in c} | {eos})
    to_local = {g: i for i, g in enumerate(local)}
    data = np.full((len(corpus), L), to_local[eos], dtype=np.int64)
    for r, c in enumerate(corpus):
        data[r, :len(c)] = [to_local[i] for i in c]
    data = torch.as_tensor(data)
    model = build_model(len(local))
    opt = torch.optim.AdamW(model.parameters(), lr=9e-4)
    mask_id = len(local)
    t0, step = time.time(), 0
    while time.time() - t0 < seconds:
        x = data[torch.randint(0, len(data), (32,))]
        t = torch.rand(32, 1).clamp_min(1e-3)
        m = torch.rand(32, L) < t
        logits = model(torch.where(m, mask_id, x))
        ce = F.cross_entropy(logits.transpose(1, 2), x, reduction="none")
        loss = ((ce * m) / t).sum() / m.sum().clamp_min(1)
        opt.zero_grad()
        loss.backward()
        opt.step()
        step += 1
        if step % 100 == 0:
            print(f"step {step} loss {loss.item():.3f} ({time.time() - t0:.0f}s)", flush=True)
    CKPT.parent.mkdir(parents=True, exist_ok=True)
    sd = {k: v.half() for k, v in model.state_dict().items()}
    torch.save({"state": sd, "local": local, "steps": step, "seconds": seconds}, CKPT)
    print(f"saved {CKPT} ({CKPT.stat().st_size / 1e6:.1f} MB) after {step} steps")


class TinyDenoiser:
    """The checkpoint as a constrain denoiser: ids (MASK = -1) -> logits over the full vocabulary."""

    def __init__(self, path=CKPT, n_vocab: int = 49152):
        import torch
        torch.set_num_threads(1)
        ck = torch.load(path, map_location="cpu")
        self.local = np.asarray(ck["local"], dtype=np.int64)
        self.to_local = {int(g): i for i, g in enumerate(self.local)}
        self.model = build_model(len(self.local))
        self.model.load_state_dict({k: v.float() for k, v in ck["state"].items()})
        self.model.eval()
        self.n_vocab = n_vocab
        self.mask_id = len(self.local)

    def __call__(self, ids):
        import torch
        x = np.asarray([self.mask_id if i < 0 else self.to_local.get(int(i), self.mask_id) for i in ids])
        with torch.no_grad():
            lg = self.model(torch.as_tensor(x)[None])[0].numpy().astype(np.float64)
        out = np.full((len(ids), self.n_vocab), -np.inf)
        out[:, self.local] = lg
        return out


def unconstrained(den: TinyDenoiser, vocab, rng, steps=16) -> bytes:
    """Plain MDLM sampling: each step sample every masked position, commit the most confident."""
    ids = np.full(L, -1, dtype=np.int64)
    for s in range(steps):
        masked = np.flatnonzero(ids < 0)
        if not len(masked):
            break
        lg = den(ids)[masked]
        lg = lg - lg.max(axis=1, keepdims=True)
        p = np.exp(lg)
        p /= p.sum(axis=1, keepdims=True)
        toks = np.array([rng.choice(len(row), p=row) for row in p])
        conf = p[np.arange(len(masked)), toks]
        k = int(np.ceil(len(masked) / (steps - s)))
        for j in np.argsort(-conf)[:k]:
            ids[masked[j]] = toks[j]
    eos = set(vocab.eos_ids)
    out = []
    for i in ids:
        if int(i) in eos:
            break
        out.append(int(i))
    return vocab.decode(out)


def evaluate(n: int, seed: int = 0, cap: int = 16, token_exact: int = 2, max_rej: int = 100):
    from constrain.diffusion import DiffusionConstraint, InfillChecker, diffusion_generate
    from constrain.engine.earley import accepts
    from constrain.jsonschema import compile_json_schema
    from constrain.tokenizers import Vocabulary

    vocab = Vocabulary.from_tokenizer(TOK)
    den = TinyDenoiser(n_vocab=vocab.n_vocab)
    g = compile_json_schema(SCHEMA, separators=(", ", ": "))
    ck = InfillChecker(g)
    rng = np.random.default_rng(seed)
    t0 = time.perf_counter()
    plain = [unconstrained(den, vocab, rng) for _ in range(n)]
    t_plain = time.perf_counter() - t0
    ok_plain = sum(accepts(g, t) for t in plain)
    t0 = time.perf_counter()
    res, checks = [], []
    for i in range(n):
        con = DiffusionConstraint(ck, vocab, L, allowed_ids=den.local, gap_cap_bytes=cap, token_exact_max=token_exact)
        r = diffusion_generate(den, con, steps=16, seed=seed + i, temperature=1.0, max_rejections=max_rej)
        res.append(r)
        checks += r.check_seconds
    t_con = time.perf_counter() - t0
    ok_con = sum(bool(r.valid and accepts(g, r.text)) for r in res)
    by = {k: sum(r.finished_by == k for r in res) for k in ("commits", "witness", "failed")}
    fit = sum(r.tokens is not None for r in res)
    print(f"unconstrained: {ok_plain}/{n} valid ({t_plain / n:.2f} s/sample)")
    print(f"rejections p50 {np.median([r.n_rejections for r in res]):.0f}")
    print(f"constrained:   {ok_con}/{n} valid ({t_con / n:.2f} s/sample), finished by {by}, tokens fit {fit}/{n}")
    if checks:
        c = np.asarray(checks) * 1e3
        print(f"checks: {len(c)}, p50 {np.percentile(c, 50):.2f} ms, p99 {np.percentile(c, 99):.2f} ms")
    for t in plain[:3]:
        print("  plain:", t[:100])
    for r in res[:3]:
        print("  constrained:", (r.text or b"")[:100])


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("cmd", choices=["train", "eval"])
    ap.add_argument("--seconds", type=float, default=120)
    ap.add_argument("--n", type=int, default=32)
    ap.add_argument("--cap", type=int, default=16, help="gap_cap_bytes")
    ap.add_argument("--token-exact", type=int, default=2, help="token_exact_max")
    ap.add_argument("--max-rejections", type=int, default=100)
    a = ap.parse_args()
    train(a.seconds) if a.cmd == "train" else evaluate(a.n, cap=a.cap, token_exact=a.token_exact,
                                                         max_rej=a.max_rejections)
