"""Toy setups with an enumerable target: a tiny vocabulary, a finite grammar and a seeded
next-token table, so P(w | w in L) is known exactly (constrain.sampling.exact)."""

from __future__ import annotations

import pytest

from constrain.engine.matcher import Matcher
from constrain.grammar import from_choices, from_regex
from constrain.sampling import TableLM
from constrain.sampling.exact import enumerate_sequences
from constrain.tokenizers import Vocabulary

TOY_TOKENS = [b"a", b"b", b"c", b"ab", b"ba", b"ca"]
TOY_EOS = len(TOY_TOKENS)
TOY_WORDS = ["ab", "abc", "b", "ca", "cab", "bb", "abab", "cba", "bca"]
TOY_MAX = 6


def toy_vocab() -> Vocabulary:
    return Vocabulary(TOY_TOKENS + [b""], kinds=[0] * len(TOY_TOKENS) + [1], special_tokens={"<eos>": TOY_EOS},
                      eos_ids=[TOY_EOS], name="toy")


@pytest.fixture(scope="session")
def vocab():
    return toy_vocab()


@pytest.fixture(scope="session")
def grammar():
    return from_choices(TOY_WORDS)


@pytest.fixture
def matcher(grammar, vocab):
    return Matcher(grammar, vocab)


@pytest.fixture(scope="session")
def lm():
    # skewed rows (alpha 0.5): masking's local renormalisation distorts the target a lot here
    return TableLM(len(TOY_TOKENS) + 1, TOY_EOS, seed=3, alpha=0.5, max_len=TOY_MAX)


@pytest.fixture(scope="session")
def exact(lm, grammar, vocab):
    return enumerate_sequences(lm, Matcher(grammar, vocab), max_tokens=TOY_MAX)


# a wider vocabulary for one-step tests: every string of 1-2 letters over "abcd", plus EOS
WIDE_TOKENS = [bytes([x]) for x in b"abcd"] + [bytes([x, y]) for x in b"abcd" for y in b"abcd"]
WIDE_EOS = len(WIDE_TOKENS)


@pytest.fixture(scope="session")
def wide_vocab():
    return Vocabulary(WIDE_TOKENS + [b""], kinds=[0] * len(WIDE_TOKENS) + [1], special_tokens={"<eos>": WIDE_EOS},
                      eos_ids=[WIDE_EOS], name="wide")


@pytest.fixture(scope="session")
def wide_grammar():
    return from_regex("(ab|cd|acd)+b?")
