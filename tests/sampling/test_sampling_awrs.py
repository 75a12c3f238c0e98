"""AWRS one-step law and weights.

Exactness of the recursive estimator is checked by enumerating every visit order of small
random distributions (Hypothesis); the Gumbel-ordered sampler itself by a chi-square test of
its draws against the renormalised allowed distribution at real matcher states, and its
weights against the exact allowed mass.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from constrain.engine.matcher import Matcher
from constrain.errors import ConfigError, ConstrainError
from constrain.sampling import awrs_sample, awrs_step, awrs_step_fn
from constrain.sampling.awrs import FixedOrder, GumbelOrder, SequentialOrder
from constrain.sampling.exact import chi_square

from conftest import WIDE_EOS


def _order_prob(p, order):
    rem, out = 1.0, 1.0
    for t in order:
        out *= p[t] / rem
        rem -= p[t]
    return out


@settings(max_examples=150, deadline=None)
@given(st.lists(st.floats(0.01, 1.0), min_size=1, max_size=5), st.data())
def test_recursive_weight_is_exactly_properly_weighted(raw, data):
    """Over every visit order: E[w 1(x = t)] = p(t) c(t) for every token t, so the weight is
    unbiased for Z and the pair is properly weighted, with and without the cap."""
    n = len(raw)
    p = np.array(raw) / sum(raw)
    allowed = np.array(data.draw(st.lists(st.booleans(), min_size=n, max_size=n)))
    max_rejects = data.draw(st.one_of(st.none(), st.integers(0, 3)))
    z = float(p[allowed].sum())
    expect = np.zeros(n)
    rng = np.random.default_rng(0)
    for order in itertools.permutations(range(n)):
        pr = _order_prob(p, order)
        s = awrs_step_fn(p, lambda t: bool(allowed[t]), rng=rng, full_mask=lambda: allowed, order=FixedOrder(order),
                         max_rejects=max_rejects)
        if s.fell_back:
            assert s.weight == pytest.approx(z)
            expect += pr * np.where(allowed, p, 0.0)  # Z * q(t): the fallback's token is an exact q draw
        elif s.token >= 0:
            assert allowed[s.token]
            expect[s.token] += pr * s.weight
        else:
            assert s.weight == 0.0 and z == 0.0
    np.testing.assert_allclose(expect, np.where(allowed, p, 0.0), atol=1e-12)


@pytest.mark.parametrize("order_cls", [SequentialOrder, GumbelOrder])
def test_orders_are_draws_without_replacement(order_cls):
    p = np.array([0.5, 0.3, 0.15, 0.05, 0.0])
    rng = np.random.default_rng(1)
    n = 20000
    firsts = np.zeros(5)
    seconds_after_0 = np.zeros(5)
    lasts = np.zeros(5)
    for _ in range(n):
        o = order_cls(p, rng)
        a, b = o.get(0), o.get(1)
        assert o.get(4) == -1  # zero-probability tokens are never visited
        assert sorted(o.get(i) for i in range(4)) == [0, 1, 2, 3]
        firsts[a] += 1
        lasts[o.get(3)] += 1
        if a == 0:
            seconds_after_0[b] += 1
    assert chi_square(firsts, p)[1] > 1e-3
    assert chi_square(seconds_after_0, np.where(np.arange(5) == 0, 0.0, p) / 0.5)[1] > 1e-3
    # P(last = t) = sum over orders; for a 4-token support it is checked against enumeration
    exact_last = np.zeros(5)
    for perm in itertools.permutations(range(4)):
        exact_last[perm[-1]] += _order_prob(p, perm)
    assert chi_square(lasts, exact_last)[1] > 1e-3


def _wide_logp(seed: int, n: int, alpha: float = 1.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.log(rng.dirichlet(np.full(n, alpha)))


@pytest.mark.parametrize("prefix", [b"", b"ab"])
@pytest.mark.parametrize("estimator,max_rejects", [("recursive", 64), ("geometric", 64), ("recursive", 1),
                                                    ("geometric", 2), ("auto", 64)])
def test_one_step_draws_follow_the_allowed_distribution(wide_grammar, wide_vocab, prefix, estimator, max_rejects):
    m = Matcher(wide_grammar, wide_vocab)
    assert m.accept_bytes(prefix)
    lp = _wide_logp(7, wide_vocab.n_vocab)
    allowed = m.next_token_mask()
    assert 2 <= allowed.sum() < wide_vocab.n_vocab - 5  # a real constraint
    p = np.exp(lp)
    z = float(p[allowed].sum())
    q = np.where(allowed, p, 0.0) / z
    rng = np.random.default_rng(11)
    n = 6000
    counts = np.zeros(wide_vocab.n_vocab)
    w = np.empty(n)
    fell = 0
    for i in range(n):
        s = awrs_step(lp, m, rng=rng, estimator=estimator, max_rejects=max_rejects)
        counts[s.token] += 1
        w[i] = s.weight
        fell += s.fell_back
    stat, pval = chi_square(counts, q)
    assert pval > 1e-3, (stat, pval)
    se = w.std(ddof=1) / math.sqrt(n)
    assert abs(w.mean() - z) <= 4 * se + 1e-12, (w.mean(), z, se)
    assert m.output == prefix  # awrs_step never changes the matcher
    if max_rejects <= 2:
        assert fell > 0  # the cap was exercised


def test_chi_square_detects_masking_the_wrong_law(wide_grammar, wide_vocab):
    """The chi-square test above can fail: unconstrained draws restricted afterwards, with the
    wrong (unrenormalised top-k) law, are rejected."""
    lp = _wide_logp(7, wide_vocab.n_vocab)
    m = Matcher(wide_grammar, wide_vocab)
    allowed = m.next_token_mask()
    p = np.where(allowed, np.exp(lp), 0.0)
    q = p / p.sum()
    wrong = np.where(allowed, 1.0, 0.0) / allowed.sum()  # uniform over allowed
    counts = np.random.default_rng(0).multinomial(6000, wrong)
    assert chi_square(counts, q)[1] < 1e-6


def test_aligned_model_needs_few_checks_and_the_cap_bounds_the_worst_case(wide_grammar, wide_vocab):
    m = Matcher(wide_grammar, wide_vocab)
    allowed = m.next_token_mask()
    rng = np.random.default_rng(3)
    aligned = np.where(allowed, 0.95 / allowed.sum(), 0.05 / (~allowed).sum())
    checks = [awrs_step(np.log(aligned), m, rng=rng).n_checks for _ in range(2000)]
    assert np.mean(checks) < 2.2  # one check plus the estimator's extra one, mostly
    assert np.mean(checks) < allowed.shape[0] / 5
    hostile = np.where(allowed, 1e-6, 1.0)
    for _ in range(200):
        s = awrs_step(np.log(hostile), m, rng=rng, max_rejects=3)
        assert s.n_checks <= 5 and allowed[s.token]
        assert s.fell_back or s.n_checks <= 5


def test_zero_allowed_mass_kills_the_particle(wide_grammar, wide_vocab):
    m = Matcher(wide_grammar, wide_vocab)
    allowed = m.next_token_mask()
    lp = np.where(allowed, -np.inf, 0.0)
    for est in ("recursive", "geometric"):
        for cap in (None, 0, 2):
            s = awrs_step(lp, m, rng=np.random.default_rng(0), estimator=est, max_rejects=cap)
            assert s.token == -1 and s.weight == 0.0


def test_awrs_sequences_are_grammatical_and_weights_estimate_z(lm, matcher, exact):
    from conftest import TOY_WORDS

    rng = np.random.default_rng(5)
    ws = []
    for _ in range(1500):
        s = awrs_sample(lm, matcher, max_tokens=6, rng=rng)
        if s.finished:
            assert s.text.decode() in TOY_WORDS
        ws.append(math.exp(s.log_weight))
    ws = np.array(ws)
    se = ws.std(ddof=1) / math.sqrt(ws.size)
    assert abs(ws.mean() - exact.z) <= 4 * se


def test_bad_arguments_are_constrain_errors(wide_grammar, wide_vocab):
    m = Matcher(wide_grammar, wide_vocab)
    lp = _wide_logp(0, wide_vocab.n_vocab)
    rng = np.random.default_rng(0)
    for kw in ({"estimator": "magic"}, {"max_rejects": -1}, {"r": 1}):
        with pytest.raises(ConfigError):
            awrs_step(lp, m, rng=rng, **kw)
    with pytest.raises(ConstrainError):
        awrs_step_fn(np.exp(lp), lambda t: False, rng=rng, max_rejects=0)  # a cap needs a fallback
    assert WIDE_EOS == wide_vocab.n_vocab - 1


def test_awrs_sequences_follow_the_masking_law_and_weights_correct_it(lm, matcher, exact):
    """Sequence level: AWRS draws have masking's law (chi-square over the 20 sequences), and
    weighting them by their importance weights recovers the target."""
    from constrain.sampling.exact import empirical, kl

    rng = np.random.default_rng(8)
    draws = [awrs_sample(lm, matcher, max_tokens=6, rng=rng) for _ in range(3000)]
    index = {w: i for i, w in enumerate(exact.seqs)}
    counts = np.zeros(len(exact.seqs))
    for d in draws:
        counts[index[tuple(d.token_ids)]] += 1
    assert chi_square(counts, exact.masking)[1] > 1e-3
    assert chi_square(counts, exact.target)[1] < 1e-12  # ... which is not the target
    weighted = empirical([d.token_ids for d in draws], [math.exp(d.log_weight) for d in draws])
    assert kl(weighted, exact.as_dict()) < 0.05
