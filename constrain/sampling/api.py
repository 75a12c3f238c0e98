"""One entry point for the decoding layer: ``sample(lm, matcher, method=...)``.

``method`` picks how grammatical sequences are drawn (all target ``P(w | w in L)`` except
``"mask"``, the biased baseline):

``"mask"``   plain masking; uniform weights; ``log_z`` from the masking importance weights.
``"asap"``   ASAp; pass ``sampler=`` (an :class:`~constrain.sampling.asap.ASApSampler`) to
             keep learning across calls for the same (prompt, grammar); uniform weights
             (draws converge to the target as the trie learns); ``log_z`` unbiased (IS).
``"awrs"``   independent AWRS sequences: same law as masking, a few checks per token instead
             of a mask, each with its importance weight (``weights`` are those, normalised:
             weighting or :meth:`SamplingResult.resample` corrects the bias).
``"smc"``    SMC with AWRS proposals over ``particles`` particles: weighted particles and an
             unbiased ``log_z``.
"""

from __future__ import annotations

import math

import numpy as np

from constrain.errors import ConfigError
from constrain.sampling.asap import ASApSampler
from constrain.sampling.awrs import awrs_sample
from constrain.sampling.base import MatcherSource, SamplingResult, check_common, mask_sample
from constrain.sampling.smc import smc

__all__ = ["METHODS", "sample"]

METHODS = ("mask", "asap", "awrs", "smc")


def _weights_and_log_z(samples) -> tuple[np.ndarray, float]:
    lw = np.array([s.log_weight for s in samples], np.float64)
    mx = float(lw.max()) if lw.size else -math.inf
    if mx == -math.inf:
        return np.zeros_like(lw), -math.inf
    e = np.exp(lw - mx)
    return e / e.sum(), mx + math.log(e.sum() / lw.size)


def sample(lm, matcher: MatcherSource, *, method: str = "asap", n: int = 1, max_tokens: int = 256,
           rng: np.random.Generator | int | None = None, particles: int | None = None,
           sampler: ASApSampler | None = None, **options) -> SamplingResult:
    """Draw grammatical sequences from ``lm`` constrained by ``matcher``.

    ``lm(prefix_ids) -> log-probs`` (see :mod:`constrain.sampling.lm`); ``matcher`` is a fresh
    Matcher (copied for every sequence) or a factory.  ``n`` sequences for mask/asap/awrs;
    ``particles`` (default ``n``) for smc.  ``options`` go to the method: ``estimator``,
    ``max_rejects``, ``r`` (awrs, smc), ``ess_threshold``, ``resampling`` (smc),
    ``max_attempts`` (asap).
    """
    if method not in METHODS:
        raise ConfigError(f"method must be one of {METHODS}, got {method!r}")
    check_common(max_tokens, n)
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    allowed = {"mask": set(), "asap": {"max_attempts"}, "awrs": {"estimator", "max_rejects", "r"},
               "smc": {"estimator", "max_rejects", "r", "ess_threshold", "resampling"}}[method]
    extra = set(options) - allowed
    if extra:
        raise ConfigError(f"option(s) {sorted(extra)} do not apply to method {method!r} (accepted: {sorted(allowed)})")
    if particles is not None and method != "smc":
        raise ConfigError(f"particles= applies to method 'smc', not {method!r}")
    if sampler is not None and method != "asap":
        raise ConfigError(f"sampler= applies to method 'asap', not {method!r}")
    if method == "smc":
        return smc(lm, matcher, particles=particles if particles is not None else n, max_tokens=max_tokens, rng=rng,
                   **options)
    if method == "asap":
        if sampler is None:
            sampler = ASApSampler(lm, matcher, max_tokens=max_tokens, **options)
        elif sampler.max_tokens != max_tokens:
            raise ConfigError(f"the ASAp sampler was built for max_tokens={sampler.max_tokens}, not {max_tokens}")
        out = sampler.samples(n, rng)
        return SamplingResult("asap", out, np.full(n, 1.0 / n), sampler.log_z,
                              {"n_nodes": sampler.n_nodes, "root_estimate": sampler.root_estimate,
                               "n_attempts": sampler.n_attempts, "sampler": sampler})
    if method == "mask":
        out = [mask_sample(lm, matcher, max_tokens=max_tokens, rng=rng) for _ in range(n)]
        _, log_z = _weights_and_log_z(out)
        return SamplingResult("mask", out, np.full(n, 1.0 / n), log_z, {})
    out = [awrs_sample(lm, matcher, max_tokens=max_tokens, rng=rng, **options) for _ in range(n)]
    w, log_z = _weights_and_log_z(out)
    steps = sum(s.n_steps for s in out)
    return SamplingResult("awrs", out, w, log_z,
                          {"checks_per_token": sum(s.n_checks for s in out) / max(steps, 1)})
