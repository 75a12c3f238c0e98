"""Tokenizers as exact byte vocabularies (see :class:`Vocabulary`)."""

from constrain.tokenizers.vocabulary import TokenKind, Vocabulary

__all__ = ["TokenKind", "Vocabulary"]
