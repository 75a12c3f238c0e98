"""Grammar front-ends and byte-level automata (regex → byte DFA, Lark, lexer)."""

from constrain.grammar.dfa import ByteDFA, ByteNFA
from constrain.grammar.regex import compile_choices, compile_regex, literal_dfa

__all__ = ["ByteDFA", "ByteNFA", "compile_choices", "compile_regex", "literal_dfa"]
