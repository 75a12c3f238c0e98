"""Distribution-correct sampling under a grammar: ASAp, AWRS and SMC (issue #8).

Masking guarantees valid output but samples from locally renormalised conditionals, not from
the model conditioned on the grammar, ``Q(w) = P(w) 1[w in L] / Z``.  This package offers
the remedies of algorithms.md §6-§7 behind one call, :func:`sample`, over a minimal model
protocol (``lm(prefix_ids) -> next-token log-probs``, :mod:`constrain.sampling.lm`):

- :class:`ASApSampler` -- learned expected-future-grammaticality trie; draws converge to Q.
- :func:`awrs_step` / :func:`awrs_sample` -- rejection sampling without a mask, with unbiased
  allowed-mass weights.
- :func:`smc` -- particles with AWRS proposals; weighted samples and ``P(grammatical)``.

:mod:`constrain.sampling.exact` enumerates the exact target for small grammars (tests, bench).
"""

from constrain.sampling.api import METHODS, sample
from constrain.sampling.asap import ASApSampler
from constrain.sampling.awrs import AWRSStep, awrs_sample, awrs_step, awrs_step_fn
from constrain.sampling.base import (DeadEndError, Sample, SamplerStateError, SamplingError, SamplingResult,
                                     mask_sample)
from constrain.sampling.lm import LanguageModel, TableLM, TransformersLM
from constrain.sampling.smc import SMCResult, smc

__all__ = ["ASApSampler", "AWRSStep", "DeadEndError", "LanguageModel", "METHODS", "SMCResult", "Sample",
           "SamplerStateError", "SamplingError", "SamplingResult", "TableLM", "TransformersLM", "awrs_sample",
           "awrs_step", "awrs_step_fn", "mask_sample", "sample", "smc"]
