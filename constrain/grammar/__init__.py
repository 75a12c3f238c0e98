"""Grammar front-ends and byte-level automata.

Front-ends (all return a tokenizer-independent :class:`~constrain.grammar.ir.Grammar`):
:func:`from_lark`, :func:`from_regex`, :func:`from_choices`.  Automata: :func:`compile_regex`
(regex → :class:`ByteDFA`), :func:`compile_choices`, :func:`literal_dfa`.
"""

from constrain.grammar.dfa import ByteDFA, ByteNFA
from constrain.grammar.ir import Grammar, Terminal
from constrain.grammar.lark_frontend import from_lark
from constrain.grammar.regex import compile_choices, compile_regex, literal_dfa
from constrain.grammar.simple import from_choices, from_regex

__all__ = ["ByteDFA", "ByteNFA", "Grammar", "Terminal", "compile_choices", "compile_regex", "from_choices",
           "from_lark", "from_regex", "literal_dfa"]
