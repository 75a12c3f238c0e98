"""Sequential Monte Carlo over AWRS particles (Lipkin et al. 2025; algorithms.md §7).

``N`` particles decode in lock-step.  At every step each live particle draws its next token
with :func:`~constrain.sampling.awrs.awrs_step_fn` (an exact draw from the locally constrained
distribution) and multiplies its weight by the step's unbiased allowed-mass estimate.  Because
each (token, weight) pair is properly weighted, the weighted particles target the *global*
distribution ``Q(w) ∝ P(w) 1[w in L]`` -- the correction masking lacks -- and the mean
final weight is an unbiased estimate of ``Z = P(grammatical | prompt)`` (within
``max_tokens``).

When the effective sample size ``(sum w)^2 / sum w^2`` falls below ``ess_threshold * N``
the particles are resampled (multinomial or systematic, both unbiased for ``Z``) and every
weight is reset to the mean weight, which keeps ``mean(w)`` an unbiased estimate of ``Z``.
Finished particles stay in the pool (they can be duplicated or dropped by resampling) and
stop growing.  A particle whose step finds no allowed token with positive probability gets
weight 0; one that reaches ``max_tokens`` unfinished gets weight 0 too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from constrain.errors import ConfigError
from constrain.sampling.awrs import _check_args, _matcher_mask, awrs_step_fn
from constrain.sampling.base import MatcherSource, Sample, SamplingResult, check_common, new_matcher, probs

__all__ = ["SMCResult", "smc"]


@dataclass
class _Particle:
    matcher: object
    ids: list[int]
    log_w: float = 0.0
    log_p: float = 0.0
    finished: bool = False
    checks: int = 0

    def clone(self) -> "_Particle":
        return _Particle(self.matcher.copy(), list(self.ids), self.log_w, self.log_p, self.finished, self.checks)


@dataclass
class SMCResult(SamplingResult):
    """:class:`SamplingResult` plus the SMC diagnostics: ``ess`` after every step and the
    steps at which the particles were resampled."""

    ess: list[float] = field(default_factory=list)
    resampled_at: list[int] = field(default_factory=list)


def _resample_indices(w: np.ndarray, n: int, rng: np.random.Generator, scheme: str) -> np.ndarray:
    if scheme == "multinomial":
        return rng.choice(w.shape[0], size=n, p=w)
    u = (rng.random() + np.arange(n)) / n  # systematic
    idx = np.searchsorted(np.cumsum(w), u, side="right")
    return np.minimum(idx, w.shape[0] - 1)


def _normalise(log_w: np.ndarray) -> tuple[np.ndarray, float]:
    """(normalised weights, log of the mean weight); all-dead gives zeros and -inf."""
    mx = float(np.max(log_w))
    if mx == -math.inf:
        return np.zeros_like(log_w), -math.inf
    e = np.exp(log_w - mx)
    s = float(e.sum())
    return e / s, mx + math.log(s / log_w.shape[0])


def smc(lm, matcher: MatcherSource, *, particles: int = 8, max_tokens: int = 256,
        rng: np.random.Generator | int | None = None, ess_threshold: float = 0.5, resampling: str = "systematic",
        estimator: str = "recursive", max_rejects: int | None = 64, r: int = 2) -> SMCResult:
    """Run SMC with AWRS proposals; returns weighted particles and ``log_z``.

    ``ess_threshold`` in [0, 1]: 0 never resamples (importance sampling with AWRS), 1 always
    does.  ``resampling`` is ``"systematic"`` (lower variance) or ``"multinomial"``.
    Particles ask the model one at a time (no batching yet), in particle order each step.
    """
    check_common(max_tokens, particles)
    _check_args(estimator, max_rejects, r)
    if not 0.0 <= ess_threshold <= 1.0:
        raise ConfigError(f"ess_threshold must be in [0, 1], got {ess_threshold!r}")
    if resampling not in ("systematic", "multinomial"):
        raise ConfigError(f"resampling must be 'systematic' or 'multinomial', got {resampling!r}")
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    template = new_matcher(matcher)
    n_vocab = template.vocab.n_vocab
    ps = [_Particle(template.copy(), []) for _ in range(particles)]
    ess_hist: list[float] = []
    resampled: list[int] = []
    n_fallbacks = 0
    total_checks = 0
    total_steps = 0
    for step in range(max_tokens):
        live = [p for p in ps if not p.finished and p.log_w > -math.inf]
        if not live:
            break
        for p in live:
            pr = probs(lm(p.ids))
            m = p.matcher
            s = awrs_step_fn(pr, m.try_accept, rng=rng, full_mask=_matcher_mask(m, pr.shape[0]), estimator=estimator,
                             max_rejects=max_rejects, r=r)
            c = s.n_checks + (n_vocab if s.fell_back else 0)
            p.checks += c
            total_checks += c
            total_steps += 1
            n_fallbacks += int(s.fell_back)
            if s.token < 0 or s.weight <= 0.0:
                p.log_w = -math.inf
                continue
            p.log_w += math.log(s.weight)
            p.log_p += math.log(pr[s.token])
            p.ids.append(s.token)
            m.accept_token(s.token)
            p.finished = m.is_finished()
        if step == max_tokens - 1:
            break  # no resampling after the last step: unfinished particles are about to die
        log_w = np.array([p.log_w for p in ps])
        w, log_mean = _normalise(log_w)
        ess = float(1.0 / np.sum(w * w)) if log_mean > -math.inf else 0.0
        ess_hist.append(ess)
        if log_mean > -math.inf and ess < ess_threshold * particles and any(not p.finished for p in ps):
            idx = _resample_indices(w, particles, rng, resampling)
            seen: set[int] = set()
            new = []
            for i in idx.tolist():
                new.append(ps[i] if i not in seen else ps[i].clone())
                seen.add(i)
            for p in new:
                p.log_w = log_mean
            ps = new
            resampled.append(step)
    for p in ps:
        if not p.finished:
            p.log_w = -math.inf
    log_w = np.array([p.log_w for p in ps])
    w, log_z = _normalise(log_w)
    samples = [Sample(p.ids, p.matcher.output, p.finished, p.log_p, p.log_w, p.checks, len(p.ids)) for p in ps]
    return SMCResult("smc", samples, w, log_z,
                     {"particles": particles, "n_resamples": len(resampled), "n_fallbacks": n_fallbacks,
                      "checks": total_checks, "steps": total_steps,
                      "checks_per_token": total_checks / max(total_steps, 1)},
                     ess_hist, resampled)
