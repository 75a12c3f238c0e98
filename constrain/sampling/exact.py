"""Exact distributions for small (model, grammar) pairs, and the statistics the tests use.

The distribution-correctness claims of this package are checked against ground truth, which
needs a grammar whose words can all be enumerated: :func:`enumerate_sequences` walks every
viable prefix (with the matcher's exact mask) up to ``max_tokens`` and returns, for every
grammatical token sequence, its model probability, the target ``Q(w) = P(w) / Z`` and the law
of plain masking ``prod_i P(x_i | u_i) / A_i`` (``A_i`` the allowed mass), plus ``Z``.
Also here: KL divergences over token sequences and a chi-square survival function (no scipy
dependency).
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

import numpy as np

from constrain.errors import ConfigError, LimitExceeded
from constrain.sampling.base import MatcherSource, check_common, log_softmax, new_matcher

__all__ = ["ExactDistribution", "chi2_sf", "empirical", "enumerate_sequences", "kl"]


@dataclass
class ExactDistribution:
    """Every grammatical sequence (a tuple of ids ending in a stop id) with ``log_p`` (model),
    ``target`` and ``masking`` probabilities; ``z`` is ``P(grammatical)`` within the cap."""

    seqs: list[tuple[int, ...]]
    log_p: np.ndarray
    target: np.ndarray
    masking: np.ndarray
    z: float

    def as_dict(self, which: str = "target") -> dict[tuple[int, ...], float]:
        arr = getattr(self, which)
        return dict(zip(self.seqs, arr.tolist()))


def enumerate_sequences(lm, matcher: MatcherSource, *, max_tokens: int, limit: int = 200_000) -> ExactDistribution:
    """Enumerate all grammatical sequences of at most ``max_tokens`` tokens (``limit`` caps the
    number of prefixes visited, so a grammar that is not small fails fast)."""
    check_common(max_tokens)
    m = new_matcher(matcher)
    seqs: list[tuple[int, ...]] = []
    log_p: list[float] = []
    log_mask: list[float] = []
    visited = 0
    eos = set(m.vocab.eos_ids)

    def walk(prefix: list[int], lp_acc: float, lq_acc: float) -> None:
        nonlocal visited
        visited += 1
        if visited > limit:
            raise LimitExceeded("too many prefixes to enumerate", limit="enumerate_limit", value=limit)
        if len(prefix) >= max_tokens:
            return
        lp = log_softmax(lm(prefix))
        mask = m.next_token_mask()
        allowed = np.flatnonzero(mask[: lp.shape[0]] & np.isfinite(lp[: mask.shape[0]]))
        if allowed.size == 0:
            return
        a = float(np.exp(lp[allowed]).sum())
        for t in allowed.tolist():
            lpt = float(lp[t])
            if t in eos:
                seqs.append(tuple(prefix) + (t,))
                log_p.append(lp_acc + lpt)
                log_mask.append(lq_acc + lpt - math.log(a))
                continue
            if not m.accept_token(t):  # pragma: no cover - the mask allowed it
                raise AssertionError(f"mask allowed token {t} but accept_token refused it")
            prefix.append(t)
            walk(prefix, lp_acc + lpt, lq_acc + lpt - math.log(a))
            prefix.pop()
            m.rollback(1)

    walk([], 0.0, 0.0)
    lpa = np.array(log_p)
    z = float(np.exp(lpa).sum()) if lpa.size else 0.0
    target = np.exp(lpa) / z if z > 0 else np.zeros_like(lpa)
    masking = np.exp(np.array(log_mask))
    return ExactDistribution(seqs, lpa, target, masking, z)


def empirical(seqs: Iterable[Sequence[int]], weights: Iterable[float] | None = None) -> dict[tuple[int, ...], float]:
    """Normalised (optionally weighted) histogram of token sequences."""
    if weights is None:
        c = Counter(tuple(s) for s in seqs)
        n = sum(c.values())
        return {k: v / n for k, v in c.items()}
    acc: dict[tuple[int, ...], float] = {}
    for s, w in zip(seqs, weights):
        acc[tuple(s)] = acc.get(tuple(s), 0.0) + float(w)
    tot = sum(acc.values())
    if tot <= 0:
        raise ConfigError("weights sum to zero")
    return {k: v / tot for k, v in acc.items()}


def kl(p: Mapping, q: Mapping) -> float:
    """``KL(p || q) = sum_x p(x) log(p(x) / q(x))`` over ``p``'s support (``inf`` where ``q`` is
    0).  With ``p`` an empirical histogram this is the paper's "KL over the observed support"."""
    out = 0.0
    for k, pk in p.items():
        if pk <= 0:
            continue
        qk = q.get(k, 0.0)
        if qk <= 0:
            return math.inf
        out += pk * math.log(pk / qk)
    return out


def _gammainc_upper_reg(a: float, x: float) -> float:
    """Regularised upper incomplete gamma Q(a, x) (Numerical Recipes: series below a + 1,
    Lentz continued fraction above)."""
    if x <= 0:
        return 1.0
    gln = math.lgamma(a)
    if x < a + 1.0:
        ap, s, d = a, 1.0 / a, 1.0 / a
        for _ in range(10_000):
            ap += 1.0
            d *= x / ap
            s += d
            if abs(d) < abs(s) * 1e-15:
                break
        return max(0.0, 1.0 - s * math.exp(-x + a * math.log(x) - gln))
    b = x + 1.0 - a
    c = 1.0 / 1e-300
    d = 1.0 / b
    h = d
    for i in range(1, 10_000):
        an = -i * (i - a)
        b += 2.0
        d = an * d + b
        d = 1e-300 if abs(d) < 1e-300 else d
        c = b + an / c
        c = 1e-300 if abs(c) < 1e-300 else c
        d = 1.0 / d
        de = d * c
        h *= de
        if abs(de - 1.0) < 1e-15:
            break
    return math.exp(-x + a * math.log(x) - gln) * h


def chi2_sf(x: float, dof: int) -> float:
    """P(X >= x) for X ~ chi-square with ``dof`` degrees of freedom (the test's p-value)."""
    if dof < 1:
        raise ConfigError(f"chi-square needs dof >= 1, got {dof}")
    return _gammainc_upper_reg(dof / 2.0, x / 2.0)


def chi_square(counts: np.ndarray, probs: np.ndarray) -> tuple[float, float]:
    """Pearson statistic and p-value of ``counts`` against ``probs`` (cells with zero expected
    count must have zero observed count, else p = 0)."""
    counts = np.asarray(counts, np.float64)
    probs = np.asarray(probs, np.float64)
    n = counts.sum()
    exp = probs * n
    if np.any(counts[exp == 0] > 0):
        return math.inf, 0.0
    keep = exp > 0
    stat = float(((counts[keep] - exp[keep]) ** 2 / exp[keep]).sum())
    return stat, chi2_sf(stat, int(keep.sum()) - 1)
