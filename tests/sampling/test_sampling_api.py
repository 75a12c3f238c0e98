"""``constrain.sampling.sample``: the one call the decoding layer uses."""

from __future__ import annotations

import math

import numpy as np
import pytest

from constrain.errors import ConfigError, ConstrainError
from constrain.engine.matcher import Matcher
from constrain.sampling import ASApSampler, METHODS, SamplingResult, sample
from constrain.sampling.exact import chi2_sf, empirical, enumerate_sequences, kl

from conftest import TOY_MAX, TOY_WORDS


@pytest.mark.parametrize("method", METHODS)
def test_every_method_returns_grammatical_weighted_samples(lm, matcher, exact, method):
    r = sample(lm, matcher, method=method, n=40, max_tokens=TOY_MAX, rng=0)
    assert isinstance(r, SamplingResult) and r.method == method
    assert len(r.samples) == 40 and r.weights.shape == (40,)
    assert r.weights.sum() == pytest.approx(1.0) and np.all(r.weights >= 0)
    for s, w in zip(r.samples, r.weights):
        if w > 0:
            assert s.finished and s.text.decode() in TOY_WORDS
    assert 0.05 < r.p_grammatical < 0.6  # Z ~ 0.22; each method's estimate is in range
    assert len(r.resample(10, rng=1)) == 10


def test_factory_or_template_and_asap_persistence(lm, grammar, vocab, exact):
    factory = lambda: Matcher(grammar, vocab)  # noqa: E731
    s = ASApSampler(lm, factory, max_tokens=TOY_MAX)
    sample(lm, factory, method="asap", n=300, max_tokens=TOY_MAX, rng=2, sampler=s)
    first = s.n_nodes
    r = sample(lm, factory, method="asap", n=300, max_tokens=TOY_MAX, rng=3, sampler=s)
    assert s.n_samples == 600 and s.n_nodes >= first
    assert r.stats["sampler"] is s
    assert kl(empirical([x.token_ids for x in r.samples]), exact.as_dict()) < 0.1


def test_awrs_checks_fewer_tokens_than_a_mask(lm, matcher):
    r = sample(lm, matcher, method="awrs", n=50, max_tokens=TOY_MAX, rng=0)
    assert r.stats["checks_per_token"] < matcher.vocab.n_vocab


def test_bad_arguments_name_the_problem(lm, matcher):
    with pytest.raises(ConfigError, match="method"):
        sample(lm, matcher, method="beam")
    with pytest.raises(ConfigError, match="particles"):
        sample(lm, matcher, method="awrs", particles=4)
    with pytest.raises(ConfigError, match="ess_threshold"):
        sample(lm, matcher, method="asap", ess_threshold=0.5)
    with pytest.raises(ConfigError):
        sample(lm, matcher, method="mask", n=0)
    with pytest.raises(ConstrainError):
        sample(lm, "not a matcher", method="mask")
    s = ASApSampler(lm, matcher, max_tokens=3)
    with pytest.raises(ConfigError, match="max_tokens"):
        sample(lm, matcher, method="asap", sampler=s, max_tokens=TOY_MAX)


def test_chi2_sf_matches_tables():
    assert chi2_sf(3.841458820694124, 1) == pytest.approx(0.05, rel=1e-6)
    assert chi2_sf(18.307038053275146, 10) == pytest.approx(0.05, rel=1e-6)
    assert chi2_sf(124.34211340, 100) == pytest.approx(0.05, rel=1e-5)
    assert chi2_sf(0.0, 3) == 1.0 and chi2_sf(500.0, 3) < 1e-100


def test_enumeration_agrees_with_brute_force(lm, grammar, vocab):
    """Z from the mask-guided enumeration equals the brute-force sum over every token sequence
    whose bytes are a word (a check on the toy ground truth itself)."""
    import itertools

    eos = vocab.eos_ids[0]
    ex = enumerate_sequences(lm, Matcher(grammar, vocab), max_tokens=4)
    z = 0.0
    text = [t for t in range(vocab.n_vocab) if t != eos]
    for k in range(0, 4):
        for seq in itertools.product(text, repeat=k):
            if b"".join(vocab.token_bytes(t) for t in seq).decode() in TOY_WORDS:
                full = list(seq) + [eos]
                z += math.exp(sum(float(lm(full[:i])[full[i]]) for i in range(len(full))))
    assert ex.z == pytest.approx(z, rel=1e-12)
    assert sum(ex.target) == pytest.approx(1.0)
