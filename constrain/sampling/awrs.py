"""Adaptive weighted rejection sampling (AWRS, Lipkin et al. 2025; algorithms.md §7).

One decoding step without a full mask: visit tokens in the order of a draw *without
replacement* from the model's next-token distribution ``p`` (lazy inverse-CDF draws,
:class:`SequentialOrder`; Gumbel keys, :class:`GumbelOrder`, give the same law slower), ask
the matcher about each (``try_accept``), and stop at the first allowed one.  That token is an
exact draw from the locally constrained distribution ``q(x) = p(x) c(x) / Z`` (removing
rejected tokens and renormalising is conditioning on ``c``), and the number of checks scales
with how much the grammar disagrees with the model, not with the vocabulary size.

With the token comes an **unbiased estimate of the allowed mass** ``Z = sum_x p(x) c(x)``,
the importance weight SMC needs (:mod:`constrain.sampling.smc`):

``"recursive"`` (default)
    with ``R_k`` the model mass not yet rejected when the first allowed token ``x_k`` is met,
    check one more token ``x_{k+1}``; the weight is ``R_k`` if it is allowed and ``p(x_k)``
    if not (or if there is none).  Conditioned on any history of rejections its expectation
    is exactly ``Z`` (``p(x_k) + (R_k - p(x_k)) * P(x_{k+1} allowed)``), which is also why the
    pair (token, weight) is *properly weighted*: ``E[w f(x)] = sum_x p(x) c(x) f(x)``.
    Cost: one extra check.
``"geometric"``
    simulate *with-replacement* sampling from the without-replacement run (repeats of seen
    tokens are drawn as geometric counts, without new checks) until ``r`` acceptances; with
    ``n`` rejections the weight is ``(r - 1) / (r + n - 1)``, the unbiased inverse-binomial
    estimator.  Lower variance when one token dominates (top probability >= 2/3, the paper's
    switch-over rule, which ``"auto"`` applies).

**The cap.**  After ``max_rejects`` rejections (recursive) or distinct checks (geometric) the
step falls back to the full mask, so the worst case is one mask plus ``max_rejects`` checks.
The fallback keeps both estimators unbiased: the recursive one returns the exact ``Z`` (its
conditional expectation given any rejection history is ``Z``, so switching on the history
costs nothing), and the geometric one finishes its with-replacement simulation exactly with
``Z`` known (the remaining acceptance indicators are i.i.d. Bernoulli(Z)).  The reference
implementation returns weight 0 at its cap instead, which is biased.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from constrain.engine.matcher import Matcher
from constrain.errors import ConfigError
from constrain.sampling.base import MatcherSource, Sample, check_common, new_matcher, probs

__all__ = ["AWRSStep", "GumbelOrder", "SequentialOrder", "awrs_sample", "awrs_step", "awrs_step_fn"]

ESTIMATORS = ("recursive", "geometric", "auto")


@dataclass
class AWRSStep:
    """Result of one step: ``token`` (-1 when no token with positive probability is allowed,
    in which case ``weight == 0``: the particle dies), ``weight`` (unbiased estimate of the
    allowed mass; exact when ``fell_back`` with the recursive estimator), ``n_checks``
    (``try_accept`` calls) and whether the full mask was built."""

    token: int
    weight: float
    n_checks: int
    fell_back: bool = False
    estimator: str = "recursive"


class SequentialOrder:
    """Tokens in the order of a draw without replacement from ``p``, produced lazily by
    inverse-CDF draws from one cumulative sum, rejecting tokens already drawn; the CDF is
    rebuilt without them once they hold half its mass, so every draw costs O(log V) plus an
    amortised O(V) per halving.  A step that stops after 2 checks pays one ``cumsum`` --
    against a Gumbel key per token plus a partial sort for :class:`GumbelOrder` (about 5x
    slower on a 49k vocabulary).  Zero-probability tokens are never produced."""

    def __init__(self, p: np.ndarray, rng: np.random.Generator):
        self._p = p
        self._rng = rng
        self._cdf = np.cumsum(p)
        self._total = float(self._cdf[-1])
        self._n_pos = int(np.count_nonzero(p > 0.0))
        self._seen: list[int] = []
        self._seen_set: set[int] = set()
        self._seen_mass = 0.0  # mass of drawn tokens still inside the current CDF

    def _rebuild(self) -> None:
        q = self._p.copy()
        q[self._seen] = 0.0
        self._cdf = np.cumsum(q)
        self._total = float(self._cdf[-1])
        self._seen_mass = 0.0

    def _draw(self) -> int:
        if len(self._seen) >= self._n_pos:
            return -1
        last = self._cdf.shape[0] - 1
        while True:
            if self._seen_mass > 0.5 * self._total:
                self._rebuild()
                if self._total <= 0.0:
                    return -1
            x = int(np.searchsorted(self._cdf, self._rng.random() * self._total, side="right"))
            x = min(x, last)
            if self._p[x] <= 0.0:  # round-off at the top of the CDF
                continue
            if x not in self._seen_set:
                self._seen.append(x)
                self._seen_set.add(x)
                self._seen_mass += float(self._p[x])
                return x

    def get(self, i: int) -> int:
        """The ``i``-th token of the order, or -1 past the last positive-probability token."""
        while len(self._seen) <= i:
            if self._draw() < 0:
                return -1
        return self._seen[i]


class GumbelOrder:
    """The same law as :class:`SequentialOrder` by Gumbel keys (``log p + G``, largest first),
    sorted lazily by ``argpartition``, doubling as the sampler asks for more."""

    def __init__(self, p: np.ndarray, rng: np.random.Generator, first: int = 8):
        self._ids = np.flatnonzero(p > 0.0)
        self._neg = -(np.log(p[self._ids]) + rng.gumbel(size=self._ids.shape[0]))
        self.n = int(self._ids.shape[0])
        self._sorted = np.empty(0, np.int64)
        self._first = max(1, int(first))

    def _extend(self, m: int) -> None:
        m = min(self.n, max(m, 2 * self._sorted.shape[0], self._first))
        if m >= self.n:
            loc = np.argsort(self._neg, kind="stable")
        else:
            loc = np.argpartition(self._neg, m - 1)[:m]
            loc = loc[np.argsort(self._neg[loc], kind="stable")]
        self._sorted = self._ids[loc]

    def get(self, i: int) -> int:
        """The ``i``-th token of the order, or -1 past the last positive-probability token."""
        if i >= self.n:
            return -1
        if i >= self._sorted.shape[0]:
            self._extend(i + 1)
        return int(self._sorted[i])


class FixedOrder:
    """A given visit order (tests enumerate every order to check unbiasedness exactly)."""

    def __init__(self, order):
        self._o = [int(t) for t in order]

    def get(self, i: int) -> int:
        return self._o[i] if i < len(self._o) else -1


def _check_args(estimator: str, max_rejects, r: int) -> None:
    if estimator not in ESTIMATORS:
        raise ConfigError(f"estimator must be one of {ESTIMATORS}, got {estimator!r}")
    if max_rejects is not None and (not isinstance(max_rejects, (int, np.integer)) or max_rejects < 0):
        raise ConfigError(f"max_rejects must be a non-negative integer or None, got {max_rejects!r}")
    if not isinstance(r, (int, np.integer)) or r < 2:
        raise ConfigError(f"the geometric estimator needs r >= 2 acceptances, got {r!r}")


def _draw_allowed(p: np.ndarray, allowed: np.ndarray, rng: np.random.Generator) -> tuple[int, float]:
    q = np.where(allowed, p, 0.0)
    z = float(q.sum())
    if z <= 0.0:
        return -1, 0.0
    return int(rng.choice(q.shape[0], p=q / z)), z


def _recursive(p, order, check, max_rejects, full_mask, rng) -> AWRSStep:
    remaining = 1.0
    checks = 0
    i = 0
    while True:
        x = order.get(i)
        if x < 0:
            # every positive-probability token was rejected: Z = 0 exactly
            return AWRSStep(-1, 0.0, checks, False, "recursive")
        if max_rejects is not None and i >= max_rejects:
            if full_mask is None:
                raise ConfigError("max_rejects needs a full-mask fallback (full_mask=...)")
            t, z = _draw_allowed(p, full_mask(), rng)
            return AWRSStep(t, z, checks, True, "recursive")
        checks += 1
        if check(x):
            px = float(p[x])
            y = order.get(i + 1)
            if y < 0:
                w = px
            else:
                checks += 1
                w = max(remaining, px) if check(y) else px
            return AWRSStep(x, w, checks, False, "recursive")
        remaining -= float(p[x])
        i += 1


def _geometric(p, order, check, max_rejects, full_mask, rng, r: int) -> AWRSStep:
    m_rej = 0.0  # mass of distinct rejected tokens seen
    m_acc = 0.0  # mass of distinct accepted tokens seen
    acc = 0
    n_rej = 0
    first = -1
    checks = 0
    i = 0
    while acc < r:
        if max_rejects is not None and checks >= max_rejects:
            if full_mask is None:
                raise ConfigError("max_rejects needs a full-mask fallback (full_mask=...)")
            allowed = full_mask()
            if first < 0:
                first, z = _draw_allowed(p, allowed, rng)  # the first acceptance's token: exact q
                if first < 0:
                    return AWRSStep(-1, 0.0, checks, True, "geometric")
            else:
                z = float(np.where(allowed, p, 0.0).sum())
            # the rest of the with-replacement run is i.i.d. Bernoulli(z) trials: the failures
            # before the remaining r - acc successes are negative-binomial
            n_rej += int(rng.negative_binomial(r - acc, min(z, 1.0))) if z < 1.0 else 0
            return AWRSStep(first, (r - 1) / (r + n_rej - 1), checks, True, "geometric")
        free = 1.0 - m_rej
        if free <= 1e-300:
            return AWRSStep(-1, 0.0, checks, False, "geometric")
        if m_rej > 0.0:
            n_rej += int(rng.geometric(min(1.0, free))) - 1  # repeats of rejected tokens
        if m_acc > 0.0 and rng.random() * free < m_acc:
            acc += 1  # a repeat of an accepted token
            continue
        x = order.get(i)
        i += 1
        if x < 0:
            if m_acc > 0.0:  # only rounding mass is left outside the seen tokens
                acc += 1
                continue
            return AWRSStep(-1, 0.0, checks, False, "geometric")
        checks += 1
        px = float(p[x])
        if check(x):
            acc += 1
            m_acc += px
            if first < 0:
                first = x
        else:
            n_rej += 1
            m_rej += px
    return AWRSStep(first, (r - 1) / (r + n_rej - 1), checks, False, "geometric")


def awrs_step_fn(p: np.ndarray, check: Callable[[int], bool], *, rng: np.random.Generator,
                 full_mask: Callable[[], np.ndarray] | None = None, estimator: str = "recursive",
                 max_rejects: int | None = 64, r: int = 2, order=None) -> AWRSStep:
    """One AWRS step from normalised *probabilities* ``p`` and a boolean ``check(token)``.

    ``full_mask()`` (``bool`` over ``p``'s width) is called only when the cap is hit.
    ``order`` replaces the without-replacement order (an object with ``get(i)``; for exact
    tests, or :class:`GumbelOrder`).  ``"auto"`` picks ``"geometric"`` when the top
    probability is at least 2/3, else ``"recursive"``.
    """
    _check_args(estimator, max_rejects, r)
    if estimator == "auto":
        estimator = "geometric" if float(p.max()) >= 2.0 / 3.0 else "recursive"
    if order is None:
        order = SequentialOrder(p, rng)
    if estimator == "recursive":
        return _recursive(p, order, check, max_rejects, full_mask, rng)
    return _geometric(p, order, check, max_rejects, full_mask, rng, int(r))


def _matcher_mask(m: Matcher, width: int) -> Callable[[], np.ndarray]:
    def full() -> np.ndarray:
        out = np.zeros(width, bool)
        mask = m.next_token_mask()
        k = min(width, mask.shape[0])
        out[:k] = mask[:k]
        return out

    return full


def awrs_step(logp, matcher: Matcher, *, rng: np.random.Generator, estimator: str = "recursive",
              max_rejects: int | None = 64, r: int = 2) -> AWRSStep:
    """One AWRS step against a matcher (its state is not changed; accept the returned token
    yourself).  ``logp`` are log-probabilities or logits (normalised here)."""
    p = probs(logp)
    return awrs_step_fn(p, matcher.try_accept, rng=rng, full_mask=_matcher_mask(matcher, p.shape[0]),
                        estimator=estimator, max_rejects=max_rejects, r=r)


def awrs_sample(lm, matcher: MatcherSource, *, max_tokens: int, rng: np.random.Generator,
                estimator: str = "recursive", max_rejects: int | None = 64, r: int = 2) -> Sample:
    """One sequence decoded with AWRS steps.

    The sequence follows the same law as plain masking (each step is an exact draw from the
    locally constrained distribution), found with a few checks per token instead of a mask;
    ``log_weight`` is the sum of the steps' log weights, an unbiased estimate (in ``exp``) of
    the masking weight ``prod_i Z_i``, so weighting these samples (or running SMC over them)
    corrects the masking bias.
    """
    check_common(max_tokens)
    _check_args(estimator, max_rejects, r)
    m = new_matcher(matcher)
    ids: list[int] = []
    log_p = 0.0
    log_w = 0.0
    checks = 0
    for step in range(max_tokens):
        p = probs(lm(ids))
        s = awrs_step_fn(p, m.try_accept, rng=rng, full_mask=_matcher_mask(m, p.shape[0]), estimator=estimator,
                         max_rejects=max_rejects, r=r)
        checks += s.n_checks + (m.vocab.n_vocab if s.fell_back else 0)
        if s.token < 0 or s.weight <= 0.0:
            return Sample(ids, m.output, False, float(log_p), float("-inf"), checks, step + 1)
        log_p += math.log(p[s.token])
        log_w += math.log(s.weight)
        ids.append(s.token)
        m.accept_token(s.token)
        if m.is_finished():
            return Sample(ids, m.output, True, float(log_p), float(log_w), checks, step + 1)
    return Sample(ids, m.output, False, float(log_p), float("-inf"), checks, max_tokens)
