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
    LimitExceeded,
    ModelLoadError,
    RegexError,
    TokenizerMismatchError,
    UnsupportedSchemaFeature,
    VocabularyError,
)
from constrain.tokenizers import TokenKind, Vocabulary

__version__ = "0.1.0.dev0"

__all__ = [
    "CacheVersionError",
    "ConfigError",
    "ConstrainError",
    "GrammarError",
    "LimitExceeded",
    "ModelLoadError",
    "RegexError",
    "TokenKind",
    "TokenizerMismatchError",
    "UnsupportedSchemaFeature",
    "Vocabulary",
    "VocabularyError",
    "__version__",
]
