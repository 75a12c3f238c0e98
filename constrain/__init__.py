"""constrain: structured (constrained) generation from language models.

Data flows one way: grammar / schema → ``Grammar`` → per-tokenizer store → ``Matcher`` →
decoding.  Importing ``constrain`` is cheap: torch and transformers load only when a decoding
or model function is first used.
"""

from constrain.errors import (
    CacheVersionError,
    ConfigError,
    ConstrainError,
    GrammarError,
    InvalidSchema,
    LimitExceeded,
    ModelLoadError,
    RegexError,
    TokenizerMismatchError,
    UnsupportedSchemaFeature,
    VocabularyError,
)
from constrain.limits import Limits, compile_in_subprocess, use_limits
from constrain.tokenizers import TokenKind, Vocabulary

__version__ = "0.1.0.dev0"

__all__ = [
    "CacheVersionError",
    "ConfigError",
    "ConstrainError",
    "GrammarError",
    "InvalidSchema",
    "LimitExceeded",
    "Limits",
    "ModelLoadError",
    "RegexError",
    "TokenKind",
    "TokenizerMismatchError",
    "UnsupportedSchemaFeature",
    "Vocabulary",
    "VocabularyError",
    "__version__",
    "compile_in_subprocess",
    "use_limits",
    # lazy (torch / transformers load on first use)
    "GrammarLogitsProcessor",
    "JsonResult",
    "LogitsProcessor",
    "TextResult",
    "generate",
    "generate_json",
    "stream",
    "stream_json",
]

_LAZY = {
    "GrammarLogitsProcessor": ("constrain.decoding.processor", "GrammarLogitsProcessor"),
    "LogitsProcessor": ("constrain.decoding.processor", "GrammarLogitsProcessor"),
    "JsonResult": ("constrain.decoding.generate", "JsonResult"),
    "TextResult": ("constrain.decoding.generate", "TextResult"),
    "generate": ("constrain.decoding.generate", "generate"),
    "generate_json": ("constrain.decoding.generate", "generate_json"),
    "stream": ("constrain.decoding.generate", "stream"),
    "stream_json": ("constrain.decoding.generate", "stream_json"),
}


def __getattr__(name):
    # PEP 562: decoding modules are imported on first access, so ``import constrain`` stays cheap
    target = _LAZY.get(name)
    if target is None:
        raise AttributeError(f"module 'constrain' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(target[0]), target[1])
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
