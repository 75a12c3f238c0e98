"""Regex and choice-list front-ends: one-terminal grammars.

A regex or a list of choices is a regular language; it becomes a :class:`Grammar` whose start
rule is a single terminal, so the same engine (lexer automaton, parser, mask store) serves it.
Terminals may not match the empty string, so a language containing ``""`` becomes
``start: T | <empty>`` with ``T`` the language minus ``""``.
"""

from __future__ import annotations

from typing import Iterable

from constrain.errors import GrammarError
from constrain.grammar.dfa import ByteDFA
from constrain.grammar.ir import Grammar, GrammarBuilder, Terminal
from constrain.grammar.regex import compile_choices, compile_regex, literal_dfa


def _single(dfa: ByteDFA, name: str, kind: str, source: str) -> Grammar:
    b = GrammarBuilder(name)
    start = b.nonterminal("start")
    empty = dfa.matches(b"")
    if empty:
        dfa = dfa.intersect(literal_dfa(b"").complement()).minimize()
        b.rule(start, [])
    if not dfa.is_empty():
        t = b.terminal(Terminal(name.upper(), dfa, kind=kind, source=source))
        b.rule(start, [t])
    elif not empty:
        raise GrammarError(f"{name} {source!r} matches nothing")
    return b.build(start, lexing="all")


def from_regex(pattern: str, *, flags: str = "", ascii: bool = False) -> Grammar:
    """Grammar for strings fully matching ``pattern`` (Python ``re`` syntax, Unicode text)."""
    return _single(compile_regex(pattern, flags=flags, ascii=ascii), "regex", "regex", pattern)


def from_choices(choices: Iterable[str | bytes]) -> Grammar:
    """Grammar for exactly one of ``choices``."""
    if isinstance(choices, (str, bytes)) or not hasattr(choices, "__iter__"):
        from constrain.errors import ConfigError

        raise ConfigError(f"choices must be a list of str/bytes, got {type(choices).__name__}")
    items = list(choices)
    if not items:
        raise GrammarError("choices: the list is empty, so no output could ever be valid")
    return _single(compile_choices(items), "choices", "literal", repr(items[:5])[:200])
