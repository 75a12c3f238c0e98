"""What the samplers need from "a language model": next-token log-probabilities for a prefix.

A :class:`LanguageModel` is any callable ``lm(prefix) -> np.ndarray`` where ``prefix`` is the
list of token ids generated so far (the prompt is the model's business, not the sampler's) and
the result is a 1-D array of log-probabilities (or logits: the samplers normalise) over the
model's logits width.  Keeping the protocol this small lets a hand-written table (the toy
models the tests measure distributions with) and a transformers model fit the same samplers,
and lets ASAp skip the model entirely on prefixes it has already expanded.

:class:`TableLM` is the toy: a fixed, seeded next-token table, enumerable and cheap.
:class:`TransformersLM` wraps a causal LM with a KV cache that follows the prefix it is asked
about (cropped back to the longest common prefix when a sampler jumps to another branch).
"""

from __future__ import annotations

from typing import Protocol, Sequence, runtime_checkable

import numpy as np

from constrain.errors import ConfigError

__all__ = ["LanguageModel", "TableLM", "TransformersLM"]


@runtime_checkable
class LanguageModel(Protocol):
    def __call__(self, prefix: Sequence[int]) -> np.ndarray:  # pragma: no cover - protocol
        """Log-probabilities (or logits) of the next token after ``prefix``."""


class TableLM:
    """A fixed next-token distribution for every prefix, drawn once from a seeded Dirichlet.

    ``P(. | prefix)`` is a pure function of ``(seed, prefix)``, so two instances with the same
    arguments are the same model, and the exact distribution over sequences can be enumerated
    (see :func:`constrain.sampling.exact.enumerate_sequences`).  At ``max_len`` tokens the
    model puts all its mass on ``eos_id``, so every sequence ends.  ``alpha`` sets how peaked
    the rows are (small alpha = skewed rows = strong masking bias).  ``table`` overrides rows
    for chosen prefixes (tuples of ids) with given probability vectors.
    """

    def __init__(self, n_vocab: int, eos_id: int, *, seed: int = 0, alpha: float = 0.5, max_len: int = 8,
                 table: dict | None = None):
        if n_vocab < 2 or not 0 <= eos_id < n_vocab:
            raise ConfigError(f"TableLM needs n_vocab >= 2 and 0 <= eos_id < n_vocab, got {n_vocab}, {eos_id}")
        if alpha <= 0:
            raise ConfigError(f"alpha must be positive, got {alpha}")
        self.n_vocab = int(n_vocab)
        self.eos_id = int(eos_id)
        self.seed = int(seed)
        self.alpha = float(alpha)
        self.max_len = int(max_len)
        self._rows: dict[tuple, np.ndarray] = {}
        self.n_calls = 0
        for k, row in (table or {}).items():
            r = np.asarray(row, np.float64)
            if r.shape != (self.n_vocab,) or np.any(r < 0) or not np.isclose(r.sum(), 1.0):
                raise ConfigError(f"table row for prefix {k} must be {self.n_vocab} probabilities summing to 1")
            with np.errstate(divide="ignore"):
                self._rows[tuple(int(t) for t in k)] = np.log(r)

    def __call__(self, prefix: Sequence[int]) -> np.ndarray:
        self.n_calls += 1
        key = tuple(int(t) for t in prefix)
        row = self._rows.get(key)
        if row is None:
            if len(key) >= self.max_len:
                row = np.full(self.n_vocab, -np.inf)
                row[self.eos_id] = 0.0
            else:
                rng = np.random.default_rng([self.seed, len(key), *key])
                p = rng.dirichlet(np.full(self.n_vocab, self.alpha))
                p = np.maximum(p, 1e-12)
                row = np.log(p / p.sum())
            self._rows[key] = row
        return row


class TransformersLM:
    """A transformers causal LM as a :class:`LanguageModel`, for one prompt.

    ``prompt_ids`` is the tokenised prompt (chat template applied by the caller).  Calls for a
    prefix that extends the last one feed only the new tokens through the KV cache; a call
    for another branch crops the cache back to the longest common prefix first, so ASAp's
    and SMC's jumps between branches cost the divergent suffix only.  ``temperature`` divides
    the logits (the target is then the tempered model).  Results are float64 log-probabilities
    on the CPU.
    """

    def __init__(self, model, prompt_ids: Sequence[int], *, temperature: float = 1.0, device=None):
        import torch

        if temperature <= 0:
            raise ConfigError(f"temperature must be positive for sampling, got {temperature}")
        raw = prompt_ids.tolist() if hasattr(prompt_ids, "tolist") else list(prompt_ids)
        if raw and isinstance(raw[0], list):  # a (1, T) tensor, as tokenizers return
            if len(raw) != 1:
                raise ConfigError(f"TransformersLM takes one prompt, got a batch of {len(raw)}")
            raw = raw[0]
        ids = [int(t) for t in raw]
        if not ids:
            raise ConfigError("prompt_ids must hold at least one token")
        self.model = model
        self.prompt_ids = ids
        self.temperature = float(temperature)
        self.device = device if device is not None else next(model.parameters()).device
        self._torch = torch
        import inspect

        try:
            params = inspect.signature(model.forward).parameters
        except (TypeError, ValueError):  # pragma: no cover - exotic wrappers
            params = {}
        self._cache_kw = "cache" if "cache" in params else "past_key_values"
        self._cache = None
        self._cached: list[int] = []  # the ids whose keys/values are in the cache
        self._last_logits = None  # logits after self._cached
        self.n_forward_tokens = 0
        self.n_calls = 0

    def _forward(self, new: list[int]):
        torch = self._torch
        from transformers import DynamicCache

        if self._cache is None:
            self._cache = DynamicCache()
        x = torch.tensor([new], dtype=torch.long, device=self.device)
        with torch.no_grad():
            # the cache object is updated in place; transformers 5 names the argument `cache`
            out = self.model(input_ids=x, use_cache=True, **{self._cache_kw: self._cache})
        self._cached = self._cached + new
        self._last_logits = out.logits[0, -1].float()
        self.n_forward_tokens += len(new)

    def __call__(self, prefix: Sequence[int]) -> np.ndarray:
        self.n_calls += 1
        want = self.prompt_ids + [int(t) for t in prefix]
        have = self._cached
        n = min(len(want), len(have))
        lcp = 0
        while lcp < n and want[lcp] == have[lcp]:
            lcp += 1
        if lcp == len(want) == len(have) and self._last_logits is not None:
            pass
        else:
            keep = min(lcp, len(want) - 1)  # at least one token must be fed to get logits
            if keep < len(have):
                if keep == 0 or self._cache is None:
                    self._cache, self._cached = None, []
                else:
                    self._cache.crop(keep - len(have))  # negative: "remove this many" in 4.x and 5.x
                    self._cached = have[:keep]
            self._forward(want[len(self._cached):])
        logits = self._last_logits / self.temperature
        return self._torch.log_softmax(logits.double(), dim=-1).cpu().numpy()
