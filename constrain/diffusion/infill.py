"""Left-to-right infilling with an autoregressive model through the infilling checker.

A template is fixed text with holes (fill-in-the-middle: one hole; multi-region infilling:
several).  The model fills each hole left to right, conditioned on everything before it.  At
every step the candidate next tokens are visited in order of probability (greedy) or of
Gumbel-perturbed log-probability (sampling without replacement), and the first one that keeps
the rest fillable is taken: :class:`InfillChecker` decides whether the text so far, an open
gap for the rest of this hole, and every later fixed chunk with a gap per later hole, can still
be completed to a word of the grammar.  Closing the hole is one more candidate ("the model
starts writing the next fixed chunk"), scored by the probability of the tokens that spell a
prefix of that chunk (for the last hole of a template that ends in a hole: the EOS tokens).

Rejections are capped per step; when the cap or the hole's token budget runs out, the
checker's witness completes the hole.  So every finished output is a word of the grammar
(``valid``), whatever the model does; ``finished_by`` says per hole whether the model or the
witness closed it.

The rest of the current hole is an unbounded gap (Σ*): token budgets bound the model's steps,
not the witness, so a hole closed by the witness may hold more bytes than its budget allows.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from constrain.diffusion.checker import Gap, InfillChecker
from constrain.errors import ConfigError
from constrain.grammar.ir import Grammar

__all__ = ["Hole", "InfillResult", "infill", "parse_template"]


@dataclass(frozen=True)
class Hole:
    """A hole of a template: at most ``max_tokens`` model tokens (None: the call's default)."""

    max_tokens: int | None = None


@dataclass
class InfillResult:
    """``text`` is the filled template (always a word of the grammar when ``valid``)."""

    text: bytes | None
    fills: list
    valid: bool
    finished_by: list = field(default_factory=list)     # per hole: "model", "witness" or "failed"
    n_tokens: int = 0
    n_checks: int = 0
    n_rejections: int = 0
    check_seconds: list = field(default_factory=list)
    model_seconds: float = 0.0
    seconds: float = 0.0


def parse_template(template, marker: str | bytes = "<hole>") -> list:
    """A template as alternating fixed chunks (bytes) and :class:`Hole` s.

    ``template`` is a string (holes written as ``marker``) or a sequence of str/bytes and
    :class:`Hole` items.  The result always starts and ends with a chunk (possibly empty), with
    exactly one :class:`Hole` between consecutive chunks; adjacent holes are one hole.
    """
    if isinstance(template, (str, bytes)):
        t = template.encode() if isinstance(template, str) else template
        m = marker.encode() if isinstance(marker, str) else marker
        parts = t.split(m)
        items: list = []
        for i, p in enumerate(parts):
            if i:
                items.append(Hole())
            items.append(p)
    else:
        items = list(template)
    out: list = [b""]
    for it in items:
        if isinstance(it, Hole):
            if isinstance(out[-1], Hole):
                a, b = out[-1].max_tokens, it.max_tokens
                out[-1] = Hole(None if a is None or b is None else a + b)
            else:
                out.append(it)
        elif isinstance(it, (str, bytes, bytearray)):
            b = it.encode() if isinstance(it, str) else bytes(it)
            if isinstance(out[-1], Hole):
                out.append(b)
            else:
                out[-1] += b
        else:
            raise ConfigError(f"a template item is text or a Hole, got {it!r}")
    if isinstance(out[-1], Hole):
        out.append(b"")
    return out


def _checker(grammar_or_schema) -> InfillChecker:
    if isinstance(grammar_or_schema, InfillChecker):
        return grammar_or_schema
    if isinstance(grammar_or_schema, Grammar):
        return InfillChecker(grammar_or_schema)
    if isinstance(grammar_or_schema, (dict, bool)):
        from constrain.jsonschema import compile_json_schema
        return InfillChecker(compile_json_schema(grammar_or_schema))
    raise ConfigError(f"infill needs a Grammar, a JSON Schema dict or an InfillChecker, got {type(grammar_or_schema)}")


class _Encoder:
    """Text bytes -> ids for the model's context: the tokenizer when it round-trips, else a
    longest-match over the vocabulary's token bytes."""

    def __init__(self, tokenizer, vocab):
        self.vocab = vocab
        self.enc = getattr(tokenizer, "encode", None) if tokenizer is not vocab else None
        tb = vocab.all_token_bytes
        self.by = {}
        for i in np.flatnonzero(vocab.text_mask).tolist():
            self.by.setdefault(tb[i], i)
        self.maxlen = max((len(b) for b in self.by), default=1)

    def __call__(self, data: bytes) -> list[int]:
        if not data:
            return []
        if self.enc is not None:
            try:
                try:
                    ids = list(self.enc(data.decode("utf-8"), add_special_tokens=False))
                except TypeError:
                    ids = list(self.enc(data.decode("utf-8")))
                if self.vocab.decode(ids) == data:
                    return ids
            except UnicodeDecodeError:
                pass
        out, i = [], 0
        while i < len(data):
            for ln in range(min(self.maxlen, len(data) - i), 0, -1):
                t = self.by.get(data[i:i + ln])
                if t is not None:
                    out.append(t)
                    i += ln
                    break
            else:
                raise ConfigError(f"the vocabulary cannot spell byte {data[i]:#x}")
        return out


def _vocab_of(tokenizer):
    from constrain.tokenizers import Vocabulary

    if isinstance(tokenizer, Vocabulary):
        return tokenizer
    from constrain.decoding.generate import _vocabulary
    return _vocabulary(tokenizer)


def infill(model, tokenizer, grammar_or_schema, template, *, prompt: str | bytes = "", marker="<hole>",
           max_tokens: int = 32, temperature: float = 0.0, seed: int | None = None, constrained: bool = True,
           max_rejections_per_step: int = 16, max_rejections: int = 256, budget: int | None = None,
           unknown: str = "reject") -> InfillResult:
    """Fill the holes of ``template`` with ``model``, left to right, keeping the result a word of
    ``grammar_or_schema`` (a :class:`Grammar`, a JSON Schema dict or an :class:`InfillChecker`).

    ``model``: a transformers causal LM (wrapped with a KV cache, conditioned on ``prompt`` and
    the text so far), or any :class:`~constrain.sampling.lm.LanguageModel` callable
    ``lm(ids) -> log-probs`` over the ids after the prompt.  ``tokenizer``: its tokenizer or a
    :class:`~constrain.tokenizers.Vocabulary`.  ``temperature`` 0 is greedy.
    ``constrained=False`` runs the same loop with every candidate accepted (the baseline):
    then ``valid`` is decided by the Earley parser.  ``unknown``: what a checker "unknown"
    (work budget) means for a candidate, "reject" or "accept".
    """
    if unknown not in ("reject", "accept"):
        raise ConfigError(f"unknown must be 'reject' or 'accept', got {unknown!r}")
    t_start = time.perf_counter()
    ck = _checker(grammar_or_schema)
    vocab = _vocab_of(tokenizer)
    enc = _Encoder(tokenizer, vocab)
    parts = parse_template(template, marker)
    chunks = parts[0::2]
    holes = parts[1::2]
    pb = prompt.encode() if isinstance(prompt, str) else bytes(prompt)
    lm, first = _language_model(model, enc(pb + chunks[0]), vocab)
    rng = np.random.default_rng(seed)
    v = vocab.n_vocab
    text_ok = vocab.text_mask.copy()
    tb = vocab.all_token_bytes
    eos = list(vocab.eos_ids)
    res = InfillResult(None, [], False)
    ctx: list[int] = list(first)          # ids after the prompt given to the model
    left: list[bytes] = [chunks[0]]       # the text so far, as pieces (token cuts for the lexing memo)

    def tail(h):  # the segments after hole h's fill: later chunks and one gap per later hole
        segs: list = []
        for k in range(h + 1, len(chunks)):
            segs.append(chunks[k])
            if k < len(holes):
                segs.append(Gap())
        return segs

    def check(segs):
        t0 = time.perf_counter()
        r = ck.check_segments(segs, budget=budget)
        res.check_seconds.append(time.perf_counter() - t0)
        res.n_checks += 1
        return r

    def ok(r):
        return r.status == "nonempty" or (r.status == "unknown" and unknown == "accept")

    total_rej = 0
    for h, hole in enumerate(holes):
        nxt = chunks[h + 1]
        limit = hole.max_tokens if hole.max_tokens is not None else max_tokens
        # END candidates: tokens that spell a non-empty prefix of the next chunk (or EOS at the end)
        if nxt:
            end_ids = [i for i in (enc.by.get(nxt[:ln]) for ln in range(1, min(len(nxt), enc.maxlen) + 1))
                       if i is not None]
        else:
            end_ids = eos if h == len(holes) - 1 else []
        fill: list[bytes] = []
        how = None
        for step in range(limit + 1):
            t0 = time.perf_counter()
            logp = np.asarray(lm(ctx), dtype=np.float64)[:v]
            res.model_seconds += time.perf_counter() - t0
            with np.errstate(invalid="ignore"):
                lg = np.where(text_ok, logp, -np.inf)
            end_score = float(np.logaddexp.reduce(logp[end_ids])) if end_ids else -np.inf
            if step == limit:       # budget spent: only closing is left
                lg = np.full_like(lg, -np.inf)
            scores = np.append(lg, end_score)
            if temperature > 0:
                scores = scores / temperature + rng.gumbel(size=scores.shape)
            n_fin = int(np.isfinite(scores).sum())
            n_try = min(n_fin, max_rejections_per_step + 1 if constrained else 1)
            if n_try <= 0:
                break
            top = np.argpartition(-scores, n_try - 1)[:n_try]
            top = top[np.argsort(-scores[top], kind="stable")]
            chosen = None
            for c in top.tolist():
                if c == v:    # close the hole
                    segs = left + fill + tail(h)
                else:
                    segs = left + fill + [tb[c], Gap()] + tail(h)
                if not constrained or ok(check(segs)):
                    chosen = c
                    break
                res.n_rejections += 1
                total_rej += 1
                if total_rej >= max_rejections:
                    break
            if chosen is None:
                break
            if chosen == v:
                how = "model"
                break
            fill.append(tb[chosen])
            ctx.append(chosen)
            res.n_tokens += 1
            if total_rej >= max_rejections:
                break
        if how is None:
            if not constrained:
                how = "budget"
            else:   # the witness completes this hole
                r = check(left + fill + [Gap()] + tail(h))
                if r.status != "nonempty":
                    res.finished_by.append("failed")
                    res.fills.append(b"".join(fill))
                    res.seconds = time.perf_counter() - t_start
                    return res
                rest = r.fills()[0]
                if rest:
                    fill.append(rest)
                    ctx.extend(enc(rest))
                how = "witness"
        res.finished_by.append(how)
        f = b"".join(fill)
        res.fills.append(f)
        left = left + fill + ([nxt] if nxt else [])
        ctx.extend(enc(nxt))
    text = b"".join(left)
    res.text = text
    if constrained and ck.exact:
        res.valid = all(x in ("model", "witness") for x in res.finished_by)
    else:
        from constrain.engine.earley import accepts
        res.valid = bool(accepts(ck.grammar, text))
    res.seconds = time.perf_counter() - t_start
    return res


def _language_model(model, prompt_ids: Sequence[int], vocab) -> tuple[Callable, list[int]]:
    """(lm, ids already in the context after the prompt)."""
    if hasattr(model, "parameters") and hasattr(model, "forward"):
        from constrain.sampling.lm import TransformersLM

        ids = list(prompt_ids)
        if not ids:  # the model needs one token to start from
            ids = [vocab.eos_ids[0]] if vocab.eos_ids else [0]
        return TransformersLM(model, ids), []
    if not callable(model):
        raise ConfigError(f"model must be a transformers model or a callable ids -> log-probs, got {type(model)}")
    return model, list(prompt_ids)
