"""ASAp against the exact target of the toy setup (tiny vocabulary, 9-word grammar, seeded table
LM; 20 grammatical token sequences, Z = P(grammatical) ~ 0.22).

Measured with fixed seeds, so the numbers are deterministic:
- plain masking: exact KL(Q || Q_mask) ~ 0.42; empirical KL of 2000 draws ~ 1.2;
- ASAp's *proposal* (exact, by enumeration) KL(Q || q_t) falls from ~0.42 (t = 0, i.e.
  masking) to < 0.005 by t = 1000, and the empirical KL of its draws 500..1000 is < 0.05.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from constrain.engine.matcher import Matcher
from constrain.grammar import from_choices
from constrain.sampling import ASApSampler, DeadEndError, SamplerStateError, TableLM, mask_sample
from constrain.sampling.exact import empirical, enumerate_sequences, kl

from conftest import TOY_EOS, TOY_MAX, TOY_WORDS, toy_vocab


def proposal(s: ASApSampler, ex) -> dict:
    return {q: math.exp(s.proposal_log_prob(q)) for q in ex.seqs}


def test_masking_is_biased(lm, matcher, exact):
    target = exact.as_dict()
    assert sum(exact.masking) == pytest.approx(1.0)
    assert kl(target, exact.as_dict("masking")) > 0.3
    rng = np.random.default_rng(0)
    draws = [mask_sample(lm, matcher, max_tokens=TOY_MAX, rng=rng).token_ids for _ in range(2000)]
    emp = empirical(draws)
    assert kl(emp, target) > 0.5  # converges to KL(Q_mask || Q) ~ 1.23, far above sampling noise
    assert kl(emp, exact.as_dict("masking")) < 0.05  # and the draws do follow the masking law


def test_first_asap_proposal_is_masking(lm, matcher, exact):
    s = ASApSampler(lm, matcher, max_tokens=TOY_MAX)
    q = proposal(s, exact)
    np.testing.assert_allclose([q[w] for w in exact.seqs], exact.masking, rtol=1e-9)


def test_asap_converges_to_the_target(lm, matcher, exact):
    target = exact.as_dict()
    s = ASApSampler(lm, matcher, max_tokens=TOY_MAX)
    rng = np.random.default_rng(1)
    draws, kls, roots = [], {}, [s.root_estimate]
    for t in (10, 100, 1000):
        while s.n_samples < t:
            draws.append(s.sample(rng).token_ids)
            roots.append(s.root_estimate)
        q = proposal(s, exact)
        assert sum(q.values()) == pytest.approx(1.0)
        kls[t] = kl(target, q)
    kl0 = kl(target, exact.as_dict("masking"))
    assert kl0 > kls[10] > kls[100] > kls[1000]
    assert kls[1000] < 0.005
    assert kl(empirical(draws[500:]), target) < 0.05
    # theta(root) is an upper bound on Z that never increases, and it tightens
    assert all(a >= b - 1e-12 for a, b in zip(roots, roots[1:]))
    assert min(roots) >= exact.z - 1e-12
    assert roots[-1] - exact.z < 0.01
    # importance weights of the draws estimate Z without bias
    assert math.exp(s.log_z) == pytest.approx(exact.z, rel=0.05)


def test_every_estimate_bounds_the_expected_future(lm, matcher, exact):
    s = ASApSampler(lm, matcher, max_tokens=TOY_MAX)
    s.samples(200, rng=7)
    mass = exact.as_dict("log_p")
    est = s.estimates()
    assert len(est) == s.n_nodes > 10
    for prefix, theta in est.items():
        # EFG(u) = sum of P(w) over grammatical w extending u, divided by P(u)
        below = [math.exp(lp) for w, lp in mass.items() if w[: len(prefix)] == prefix]
        p_u = math.exp(sum(float(lm(list(prefix[:i]))[prefix[i]]) for i in range(len(prefix))))
        efg = sum(below) / p_u
        assert theta >= efg - 1e-9, (prefix, theta, efg)
        assert s.estimate(prefix) == theta
    assert s.estimate((TOY_EOS, TOY_EOS)) is None


def test_samples_are_grammatical_and_model_calls_only_on_new_nodes(matcher):
    lm = TableLM(len(toy_vocab()), TOY_EOS, seed=3, alpha=0.5, max_len=TOY_MAX)
    s = ASApSampler(lm, matcher, max_tokens=TOY_MAX)
    out = s.samples(300, rng=3)
    assert all(x.finished and x.text.decode() in TOY_WORDS for x in out)
    assert all(x.token_ids[-1] == TOY_EOS for x in out)
    # a revisited node is sampled from its stored children: far fewer model calls than tokens
    assert s.n_model_calls < sum(len(x.token_ids) for x in out) / 4


def test_save_load_round_trip_and_refusals(lm, matcher, grammar, vocab, tmp_path):
    s = ASApSampler(lm, matcher, max_tokens=TOY_MAX, key="prompt-1")
    s.samples(150, rng=2)
    path = tmp_path / "trie.npz"
    s.save(path)
    t = ASApSampler.load(path, lm, matcher, key="prompt-1")
    assert t.estimates() == s.estimates()
    assert (t.n_samples, t.n_attempts, t.log_z) == (s.n_samples, s.n_attempts, s.log_z)
    a = [x.token_ids for x in s.samples(50, rng=9)]
    b = [x.token_ids for x in t.samples(50, rng=9)]
    assert a == b and t.estimates() == s.estimates()
    with pytest.raises(SamplerStateError, match="key"):
        ASApSampler.load(path, lm, matcher, key="another prompt")
    other = Matcher(from_choices(["ab", "b"]), vocab)
    with pytest.raises(SamplerStateError, match="grammar"):
        ASApSampler.load(path, lm, other, key="prompt-1")
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a trie")
    with pytest.raises(SamplerStateError):
        ASApSampler.load(bad, lm, matcher)


def test_length_cap_and_dead_ends(vocab):
    # "abab" needs >= 2 tokens, "b" one; with max_tokens=2 only 1-token words (+ EOS) survive
    m = Matcher(from_choices(["abab", "b"]), vocab)
    lm = TableLM(len(vocab), TOY_EOS, seed=1, alpha=0.5, max_len=TOY_MAX)
    ex = enumerate_sequences(lm, m, max_tokens=2)
    assert ex.seqs == [(1, TOY_EOS)]
    s = ASApSampler(lm, m, max_tokens=2)
    assert all(x.token_ids == [1, TOY_EOS] for x in s.samples(200, rng=0))
    assert s.estimate([0]) == 0.0  # "a" can only die at the cap: pruned to theta = 0
    assert ex.z * (1 - 1e-9) <= s.root_estimate <= 1.05 * ex.z  # from 1 to within 5% of Z ~ 6e-5
    # nothing grammatical within the cap: a clear error, not a hang
    none = ASApSampler(lm, Matcher(from_choices(["abab"]), vocab), max_tokens=1)
    with pytest.raises(DeadEndError):
        none.sample(0)
    assert none.root_estimate == 0.0


@settings(max_examples=12, deadline=None)
@given(seed=st.integers(0, 10_000), words=st.lists(st.sampled_from(TOY_WORDS), min_size=1, max_size=5, unique=True))
def test_asap_bounds_hold_on_random_models_and_grammars(seed, words, vocab):
    m = Matcher(from_choices(words), vocab)
    lm = TableLM(len(vocab), TOY_EOS, seed=seed, alpha=0.3, max_len=5)
    ex = enumerate_sequences(lm, m, max_tokens=5)
    s = ASApSampler(lm, m, max_tokens=5)
    for _ in range(40):
        x = s.sample(np.random.default_rng(seed))
        assert x.text.decode() in words
        assert s.root_estimate >= ex.z - 1e-12
    q = proposal(s, ex)
    assert sum(q.values()) == pytest.approx(1.0)
    assert all(v > 0 for v in q.values())  # the proposal never loses support of the target
    lp = ex.as_dict("log_p")
    for prefix, theta in s.estimates().items():
        p_u = math.exp(sum(float(lm(list(prefix[:i]))[prefix[i]]) for i in range(len(prefix))))
        efg = sum(math.exp(v) for w, v in lp.items() if w[: len(prefix)] == prefix) / p_u
        assert theta >= efg * (1 - 1e-9) - 1e-12
