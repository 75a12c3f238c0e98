"""Shared pieces of the distribution-correct samplers: results, errors, the masking baseline.

Every sampler here targets the same distribution, the model conditioned on the grammar::

    Q(w) = P(w) * 1[w in L] / Z,        Z = P(grammatical | prompt)

where ``w`` is a token sequence that ends with a stop id.  Plain masking (:func:`mask_sample`)
does *not* sample from Q: it renormalises locally at every step, which over-weights sequences
that pass through low-mass prefixes (algorithms.md §6).  It is kept here as the baseline the
others are measured against, and because its importance weight ``prod_i Z_i`` makes it an
unbiased (if high-variance) estimator of ``Z``.

Sequences are capped at ``max_tokens``: a sequence that has not ended by then is counted as
ungrammatical, so every estimate of ``Z`` here is of ``P(grammatical and at most max_tokens
tokens)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Union

import numpy as np

from constrain.engine.matcher import Matcher
from constrain.errors import ConfigError, ConstrainError

__all__ = ["DeadEndError", "MatcherSource", "Sample", "SamplerStateError", "SamplingError", "SamplingResult",
           "log_softmax", "mask_sample", "new_matcher", "probs"]

MatcherSource = Union[Matcher, Callable[[], Matcher]]


class SamplingError(ConstrainError):
    """A sampler could not produce what was asked (base of the sampling errors)."""


class DeadEndError(SamplingError):
    """Every allowed next token has probability 0 under the model, at ``step`` of a sequence.

    The mask is exact (every allowed token keeps the output viable), so this only happens when
    the model itself gives zero mass to all grammatical continuations (``-inf`` logits, a
    ``top_k`` cut made before the sampler).  ASAp records such a node as ``theta = 0`` and
    retries; the others report it.
    """

    def __init__(self, message: str, *, step: int):
        self.step = step
        super().__init__(f"{message} (at step {step})")


class SamplerStateError(SamplingError, ValueError):
    """A saved sampler state does not match what it is loaded for (format, grammar,
    vocabulary or prompt key differ), or is malformed."""


@dataclass
class Sample:
    """One sampled sequence.

    ``token_ids`` includes the final stop id when ``finished``.  ``log_prob`` is
    ``log P(token_ids)`` under the model; ``log_weight`` is the log importance weight of the
    sample with respect to the unnormalised target ``P(w) 1[w in L]`` (``-inf`` for a sequence
    that did not finish), so ``mean(exp(log_weight))`` over independent samples estimates
    ``Z``.  ``n_checks`` counts constraint evaluations (a ``try_accept`` or a full mask counts
    one per token checked; a full mask counts the vocabulary size).
    """

    token_ids: list[int]
    text: bytes
    finished: bool
    log_prob: float
    log_weight: float
    n_checks: int = 0
    n_steps: int = 0


@dataclass
class SamplingResult:
    """What :func:`constrain.sampling.sample` returns.

    ``weights`` are normalised (sum 1): uniform for ASAp and masking (their samples are meant
    to be used as drawn), the particle weights for SMC and the per-sequence importance
    weights for AWRS (whose draws follow the locally constrained law, like masking).
    ``log_z`` estimates ``log P(grammatical | prompt)`` (within ``max_tokens``).
    """

    method: str
    samples: list[Sample]
    weights: np.ndarray
    log_z: float
    stats: dict = field(default_factory=dict)

    @property
    def p_grammatical(self) -> float:
        return float(np.exp(self.log_z))

    def resample(self, n: int, rng: np.random.Generator | int | None = None) -> list[Sample]:
        """Draw ``n`` samples with probability proportional to ``weights`` (with replacement):
        the way to turn weighted SMC particles into unweighted draws."""
        rng = np.random.default_rng(rng)
        if not np.isfinite(self.log_z) or len(self.samples) == 0:
            raise SamplingError("no sample has positive weight; nothing to resample")
        idx = rng.choice(len(self.samples), size=int(n), p=self.weights)
        return [self.samples[i] for i in idx]


def log_softmax(logits) -> np.ndarray:
    """Normalised float64 log-probabilities; ``-inf`` entries stay ``-inf``.  Accepts numpy
    or anything ``np.asarray`` takes (a CPU torch tensor)."""
    x = np.asarray(logits, dtype=np.float64).reshape(-1)
    m = np.max(x)
    if not np.isfinite(m):
        raise SamplingError("the model returned no finite log-probability")
    z = x - m
    return z - np.log(np.sum(np.exp(z)))


def probs(logits) -> np.ndarray:
    """Normalised float64 probabilities from log-probabilities or logits: one ``exp`` over the
    vocabulary (cheaper than :func:`log_softmax` followed by ``exp``, which the AWRS hot path
    would otherwise pay per token)."""
    x = np.asarray(logits, dtype=np.float64).reshape(-1)
    m = np.max(x)
    if not np.isfinite(m):
        raise SamplingError("the model returned no finite log-probability")
    p = np.exp(x - m)
    p /= p.sum()
    return p


def new_matcher(source: MatcherSource) -> Matcher:
    """A fresh matcher from a template (copied) or a zero-argument factory (called)."""
    if isinstance(source, Matcher):
        return source.copy()
    if callable(source):
        m = source()
        if not isinstance(m, Matcher):
            raise ConfigError(f"matcher factory returned {type(m).__name__}, expected a Matcher")
        return m
    raise ConfigError(f"expected a Matcher or a zero-argument callable returning one, got {type(source).__name__}")


def check_common(max_tokens: int, n: int | None = None) -> None:
    if not isinstance(max_tokens, (int, np.integer)) or max_tokens < 1:
        raise ConfigError(f"max_tokens must be a positive integer, got {max_tokens!r}")
    if n is not None and (not isinstance(n, (int, np.integer)) or n < 1):
        raise ConfigError(f"the number of samples must be a positive integer, got {n!r}")


def mask_sample(lm, matcher: MatcherSource, *, max_tokens: int, rng: np.random.Generator) -> Sample:
    """One sequence by plain grammar masking: at each step sample from ``P(x | prefix)``
    restricted to the mask and renormalised.  Biased for Q (see the module docstring); its
    importance weight is ``prod_i Z_i`` with ``Z_i`` the allowed mass at step ``i``."""
    check_common(max_tokens)
    m = new_matcher(matcher)
    ids: list[int] = []
    log_p = 0.0
    log_w = 0.0
    n_vocab = m.vocab.n_vocab
    checks = 0
    for step in range(max_tokens):
        lp = log_softmax(lm(ids))
        allowed = np.zeros(lp.shape[0], bool)
        allowed[:n_vocab] = m.next_token_mask()
        checks += n_vocab
        p = np.where(allowed, np.exp(lp), 0.0)
        z = p.sum()
        if z <= 0.0:
            raise DeadEndError("no allowed token has positive probability", step=step)
        t = int(rng.choice(p.shape[0], p=p / z))
        log_p += lp[t]
        log_w += np.log(z)
        ids.append(t)
        m.accept_token(t)
        if m.is_finished():
            return Sample(ids, m.output, True, float(log_p), float(log_w), checks, step + 1)
    return Sample(ids, m.output, False, float(log_p), float("-inf"), checks, max_tokens)
