"""One exception tree for everything constrain raises.

Every public error derives from :class:`ConstrainError`, so a server can catch one class
around a request and fail only that request.  Messages say what was found, what was
required and where (grammar line/column, JSON pointer, token id).

The hot path (``Matcher.accept_token`` and mask fills) never raises on data: it returns
``False`` and leaves its state unchanged.  Only API misuse (wrong shapes, dtypes) raises.
"""

from __future__ import annotations


class ConstrainError(Exception):
    """Root of every error constrain raises on purpose."""


class ConfigError(ConstrainError, ValueError):
    """An argument or option is invalid (wrong type, out of range, inconsistent)."""


class VocabularyError(ConstrainError):
    """A tokenizer cannot be turned into an exact byte vocabulary.

    Raised, for example, when a token's text cannot be mapped to bytes, when the EOS id
    is outside the vocabulary, or when model logits are narrower than the vocabulary.
    """


class TokenizerMismatchError(VocabularyError):
    """A tokenizer or vocabulary does not match what it is used with (fingerprint differs)."""


class GrammarError(ConstrainError):
    """A grammar, regex or schema is malformed or describes an unusable language.

    Parameters
    ----------
    message:
        What is wrong, in words.
    line, column:
        1-based position in grammar text, where known.
    pointer:
        JSON pointer into a schema, where the input was a JSON Schema.
    context:
        A snippet of the input with a caret under the offending position.
    """

    def __init__(self, message: str, *, line: int | None = None, column: int | None = None,
                 pointer: str | None = None, context: str | None = None):
        self.message = message
        self.line = line
        self.column = column
        self.pointer = pointer
        self.context = context
        super().__init__(self._render())

    def __reduce__(self):  # picklable across processes (compile_in_subprocess), fields kept
        return _rebuild, (type(self), (self.message,), {"line": self.line, "column": self.column,
                                                        "pointer": self.pointer, "context": self.context})

    def _render(self) -> str:
        where = []
        if self.line is not None:
            where.append(f"line {self.line}" + (f", column {self.column}" if self.column is not None else ""))
        if self.pointer is not None:
            where.append(f"at {self.pointer or '/'}")
        text = self.message
        if where:
            text = f"{text} ({'; '.join(where)})"
        if self.context:
            text = f"{text}\n{self.context}"
        return text


class RegexError(GrammarError):
    """A regular expression is malformed or uses a feature constrain cannot enforce exactly."""


class UnsupportedSchemaFeature(GrammarError):
    """A JSON Schema keyword cannot be enforced exactly; raised in strict mode, recorded in lenient mode."""


class InvalidSchema(UnsupportedSchemaFeature):
    """The input is not a JSON Schema at all: not JSON, or a keyword with a value of the wrong
    type (as the dialect's meta-schema says).  ``pointer`` is where in the schema."""


class LimitExceeded(ConstrainError):
    """A resource cap (compile time, states, memory, per-step work) was hit.

    ``limit`` names the cap (an attribute of :class:`constrain.Limits`), ``value`` is the cap;
    ``pointer`` (a JSON pointer) or ``line`` say where in the input it was hit, where known.
    """

    def __init__(self, message: str, *, limit: str, value=None, pointer: str | None = None,
                 line: int | None = None):
        self.message = message
        self.limit = limit
        self.value = value
        self.pointer = pointer
        self.line = line
        where = ""
        if pointer is not None:
            where += f" at {pointer or '/'}"
        if line is not None:
            where += f" on line {line}"
        super().__init__(f"{message}{where} (limit {limit}={value!r})")

    def __reduce__(self):
        return _rebuild, (type(self), (self.message,), {"limit": self.limit, "value": self.value,
                                                        "pointer": self.pointer, "line": self.line})


class CacheVersionError(ConstrainError):
    """A cache file was written by another format version or for other inputs."""


class ModelLoadError(ConstrainError):
    """The embedded default model could not be fetched, converted or loaded."""


def _rebuild(cls, args, kwargs):
    return cls(*args, **kwargs)
