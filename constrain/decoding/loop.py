"""The constrained decoding loop for one sequence: KV cache, fast-forward, overlapped masks.

``model.generate`` with a logits processor (:mod:`.processor`) runs one forward pass per token
and computes each mask after the forward pass that needs it.  For one sequence this loop does
better, in two ways the processor cannot:

*Fast-forward.*  After each sampled token the matcher reports the bytes the grammar forces next
(``{"name":"`` after ``{`` in a fixed-key object).  Their canonical tokens
(:meth:`~constrain.engine.matcher.Matcher.forced_tokens`: the tokenizer's own encoding, minus
any tail a longer token could span) are appended without sampling, and the model reads the
sampled token and all forced ones in **one** forward pass.  When only a stop id can follow, the
loop ends without running the model at all.

*Overlap.*  The mask for step ``t`` depends only on tokens up to ``t - 1``, which are known
before the forward pass of step ``t`` starts; so a worker thread fills the mask while the model
runs (the numba mask kernels release the GIL, and so do torch's kernels).  ``overlap=False``
computes it after the forward pass instead; the default ``"auto"`` overlaps only when torch
leaves a core free (see :func:`_free_core`); ``bench/decode_bench.py`` measures both.

Sampling happens after the mask: disallowed logits become ``-inf``, then temperature and top-p
(nucleus) apply to what is left, so a nucleus never cuts away every allowed token.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np

from constrain.errors import ConfigError, ConstrainError

__all__ = ["DecodeStats", "decode"]


@dataclass
class DecodeStats:
    """Counters of one :func:`decode` run.

    ``new_tokens`` = ``sampled_tokens + forced_tokens`` (stop id included when one was sampled);
    ``forward_passes`` counts model calls, prompt included; ``mask_seconds`` is the time spent
    filling masks (hidden behind the model when ``overlap`` is on).
    """

    prompt_tokens: int = 0
    new_tokens: int = 0
    sampled_tokens: int = 0
    forced_tokens: int = 0
    forward_passes: int = 0
    seconds: float = 0.0
    mask_seconds: float = 0.0
    first_token_seconds: float = 0.0
    finished: bool = False

    @property
    def forced_share(self) -> float:
        return self.forced_tokens / self.new_tokens if self.new_tokens else 0.0


def check_options(max_new_tokens, temperature, top_p) -> None:
    """``ConfigError`` for a decoding option out of range (shared by every decoding entry point)."""
    if max_new_tokens < 1:
        raise ConfigError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
    if temperature < 0:
        raise ConfigError(f"temperature must be >= 0, got {temperature}")
    if not 0 < top_p <= 1:
        raise ConfigError(f"top_p must be in (0, 1], got {top_p}")


def _sample(logits, allowed_words: np.ndarray, n_vocab: int, temperature: float, top_p: float, gen):
    """Pick a token from ``logits`` (1-D float tensor) restricted to the bitmask ``allowed_words``."""
    import torch

    from constrain.engine.bitmask import apply_token_bitmask

    scores = logits.float().clone()
    apply_token_bitmask(scores[None, :], torch.from_numpy(allowed_words[None, :]), vocab_size=n_vocab)
    if temperature == 0:
        return int(torch.argmax(scores))
    scores = scores / temperature
    probs = torch.softmax(scores, dim=-1)
    if top_p < 1.0:
        sp, si = torch.sort(probs, descending=True)
        cum = torch.cumsum(sp, dim=-1)
        keep = cum - sp < top_p  # the smallest prefix whose mass reaches top_p (first always kept)
        probs = torch.zeros_like(probs).scatter_(0, si[keep], sp[keep])
    return int(torch.multinomial(probs, 1, generator=gen))


def _free_core() -> bool:
    """Whether a core is left over by torch's intra-op threads.  Overlap wins only then: with
    every core busy in the forward pass, a mask thread competes with torch's OpenMP workers
    (measured on 2 cores: 1 torch thread + mask thread 20 tok/s vs 14 in sequence; 2 torch
    threads + mask thread several times slower than without it)."""
    import os

    import torch

    return torch.get_num_threads() < (os.cpu_count() or 1)


def _forward_keywords(model) -> tuple[str, dict]:
    """The KV-cache keyword of ``model.forward`` (transformers 5 renamed ``past_key_values`` to
    ``cache``) and ``logits_to_keep=1`` where supported (no logits for the prompt's positions)."""
    import inspect

    try:
        params = inspect.signature(model.forward).parameters
    except (TypeError, ValueError):  # pragma: no cover - a C-implemented forward
        params = {}
    cache_kw = "cache" if "cache" in params else "past_key_values"
    last_only = {"logits_to_keep": 1} if "logits_to_keep" in params else {}
    return cache_kw, last_only


def decode(model, matcher, input_ids, *, encode: Callable[[str], list] | None, max_new_tokens: int,
           temperature: float = 0.0, top_p: float = 1.0, seed: int | None = None, fast_forward: bool = True,
           overlap: bool | str = "auto", stats: DecodeStats | None = None) -> Iterator[list[int]]:
    """Decode one sequence under ``matcher``; yield the token ids added at each step.

    ``input_ids`` is the prompt (``[1, n]`` tensor).  ``encode(text) -> ids`` is the tokenizer's
    encoder (no special tokens), needed for fast-forward (``None`` disables it).  The matcher is
    advanced in place: after the generator is exhausted, ``matcher.output`` is the text and
    ``stats.finished`` says whether a stop id ended it (otherwise ``max_new_tokens`` ran out).
    """
    import torch

    check_options(max_new_tokens, temperature, top_p)
    if input_ids.ndim != 2 or input_ids.shape[0] != 1:
        raise ConfigError(f"decode() takes one sequence ([1, n] input_ids), got shape {tuple(input_ids.shape)}")
    st = stats if stats is not None else DecodeStats()
    vocab = matcher.vocab
    n_vocab = vocab.n_vocab
    eos = set(vocab.eos_ids)
    if not eos:
        raise ConfigError("the vocabulary has no stop id: the grammar could never end generation")
    gen = None
    if temperature > 0:
        gen = torch.Generator()
        gen.manual_seed(int(seed) if seed is not None else int(torch.seed() % (1 << 62)))
    device = getattr(model, "device", None)
    words = np.zeros(matcher.store.n_words, np.int32)
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    vocab.check_logits_width(int(head.weight.shape[0]) if head is not None else n_vocab)

    def fill() -> float:
        t0 = time.perf_counter()
        matcher.fill_next_token_bitmask(words)
        return time.perf_counter() - t0

    cache_kw, last_only = _forward_keywords(model)
    if overlap == "auto":
        overlap = _free_core()
    pool = ThreadPoolExecutor(1, thread_name_prefix="constrain-mask") if overlap else None
    st.prompt_tokens = int(input_ids.shape[1])
    feed = input_ids if device is None else input_ids.to(device)
    cache = None
    t_start = time.perf_counter()
    try:
        while True:
            budget = max_new_tokens - st.new_tokens
            if matcher.is_complete() and not matcher.parser.next_bytes(limit=1):
                # only a stop id can follow: end without running the model (and without a stop
                # token when the budget is spent: nothing is missing from the output)
                st.finished = True
                if budget > 0:
                    stop = min(eos)
                    if not matcher.accept_token(stop):  # pragma: no cover - complete implies accepted
                        raise ConstrainError("matcher refused a stop id on a complete output")
                    st.new_tokens += 1
                    st.forced_tokens += 1
                    yield [stop]
                return
            if budget <= 0:
                return
            fut = pool.submit(fill) if pool is not None else None
            with torch.inference_mode():
                out = model(input_ids=feed, **{cache_kw: cache}, use_cache=True, **last_only)
            st.forward_passes += 1
            cache = getattr(out, cache_kw, None)
            logits = out.logits[0, -1]
            st.mask_seconds += fut.result() if fut is not None else fill()
            if not words.any():
                raise ConstrainError(f"the grammar allows no token of the vocabulary after {matcher.output[-60:]!r}")
            tok = _sample(logits, words, n_vocab, temperature, top_p, gen)
            if st.sampled_tokens == 0:
                st.first_token_seconds = time.perf_counter() - t_start
            if not matcher.accept_token(tok):
                raise ConstrainError(f"sampled token {tok} was allowed by the mask but the matcher rejected it "
                                     f"after {matcher.output[-60:]!r}; this is a bug in constrain")
            st.sampled_tokens += 1
            step = [tok]
            if tok in eos:
                st.finished = True
                st.new_tokens += 1
                yield step
                return
            if fast_forward and encode is not None and budget > 1:
                ff = matcher.forced_tokens(encode)[: budget - 1]
                if ff:
                    if not matcher.accept_tokens(ff):  # pragma: no cover - forced_tokens validates
                        raise ConstrainError("forced tokens were rejected by the matcher")
                    st.forced_tokens += len(ff)
                    step.extend(ff)
            st.new_tokens += len(step)
            yield step
            feed = torch.tensor([step], dtype=torch.long, device=device)
    finally:
        st.seconds = time.perf_counter() - t_start
        if pool is not None:
            pool.shutdown(wait=True)
