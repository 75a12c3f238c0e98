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


class _Slot:
    """One KV cache and the ids whose keys/values it holds."""

    __slots__ = ("cache", "ids", "logits", "used")

    def __init__(self):
        self.cache = None
        self.ids: list[int] = []
        self.logits = None  # logits after self.ids
        self.used = 0


def _lcp(a: list[int], b: list[int]) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


class TransformersLM:
    """A transformers causal LM as a :class:`LanguageModel`, for one prompt.

    ``prompt_ids`` is the tokenised prompt (chat template applied by the caller).  The adapter
    keeps ``n_caches`` KV caches; a call uses the one sharing the longest prefix with what it
    is asked about and feeds only the new tokens.  When that cache would have to be cut back
    (a sampler jumped to another branch) and ``n_caches > 1``, a copy of it is cut instead,
    in an unused or the least recently used slot, so SMC particles (give ``n_caches =
    particles``) and ASAp branches keep their own caches and each step costs one token.
    ``temperature`` divides the logits (the target is then the tempered model).  Results are
    float64 log-probabilities on the CPU.  One sequence per forward pass (no batching yet).
    """

    def __init__(self, model, prompt_ids: Sequence[int], *, temperature: float = 1.0, device=None,
                 n_caches: int = 1):
        import torch

        if temperature <= 0:
            raise ConfigError(f"temperature must be positive for sampling, got {temperature}")
        if not isinstance(n_caches, int) or n_caches < 1:
            raise ConfigError(f"n_caches must be a positive integer, got {n_caches!r}")
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
        self._slots = [_Slot() for _ in range(n_caches)]
        self._clock = 0
        self.n_forward_tokens = 0
        self.n_calls = 0

    def _forward(self, slot: _Slot, new: list[int]) -> None:
        torch = self._torch
        from transformers import DynamicCache

        if slot.cache is None:
            slot.cache = DynamicCache()
        x = torch.tensor([new], dtype=torch.long, device=self.device)
        with torch.no_grad():
            # the cache object is updated in place; transformers 5 names the argument `cache`
            out = self.model(input_ids=x, use_cache=True, **{self._cache_kw: slot.cache})
        slot.ids = slot.ids + new
        slot.logits = out.logits[0, -1].float()
        self.n_forward_tokens += len(new)

    @staticmethod
    def _cut(slot: _Slot, keep: int) -> None:
        if keep >= len(slot.ids):
            return
        if keep == 0 or slot.cache is None:
            slot.cache, slot.ids, slot.logits = None, [], None
        else:
            slot.cache.crop(keep - len(slot.ids))  # negative: "remove this many" in 4.x and 5.x
            slot.ids = slot.ids[:keep]
            slot.logits = None

    def __call__(self, prefix: Sequence[int]) -> np.ndarray:
        self.n_calls += 1
        self._clock += 1
        want = self.prompt_ids + [int(t) for t in prefix]
        lcps = [_lcp(want, sl.ids) for sl in self._slots]
        best = max(range(len(self._slots)), key=lambda i: (lcps[i], self._slots[i].used))
        slot = self._slots[best]
        lcp = lcps[best]
        if not (lcp == len(want) == len(slot.ids) and slot.logits is not None):
            keep = min(lcp, len(want) - 1)  # at least one token must be fed to get logits
            if keep < len(slot.ids) and len(self._slots) > 1:
                # keep this branch's cache: cut a copy, in an empty or the least recently used slot
                others = [i for i in range(len(self._slots)) if i != best]
                tgt = min(others, key=lambda i: (self._slots[i].cache is not None, self._slots[i].used))
                target = self._slots[tgt]
                if keep > 0 and slot.cache is not None:
                    import copy

                    target.cache = copy.deepcopy(slot.cache)
                    target.ids = list(slot.ids)
                    self._cut(target, keep)
                else:
                    target.cache, target.ids, target.logits = None, [], None
                slot = target
            else:
                self._cut(slot, keep)
            self._forward(slot, want[len(slot.ids):])
        slot.used = self._clock
        logits = slot.logits / self.temperature
        return self._torch.log_softmax(logits.double(), dim=-1).cpu().numpy()
