"""The one intermediate representation every front-end lowers to: :class:`Grammar`.

A Grammar is a context-free grammar over *terminals*, each terminal a byte-level DFA.  Lark
files, regexes, choice lists and JSON Schemas all become one of these; the engine never sees
the front-end.  It is independent of any tokenizer, immutable, picklable and identified by a
stable :attr:`Grammar.fingerprint` (the key of every per-grammar cache).

Symbols are small integers: terminal ``t`` is ``t >= 0``; nonterminal ``n`` is ``~n`` (negative).
Rules are flat arrays (``rule_lhs``, ``rule_start`` into ``rhs``) so numba kernels can walk them.

Lexing policy (how a byte string is cut into terminals):

``"all"``
    every cut that leads to a word is kept: the language is the CFG with each terminal replaced
    by its regular language, with ignored terminals allowed between any two terminals.  This is
    Lark's Earley parser with ``lexer="dynamic_complete"``.  It never loses a word.
``"longest"``
    maximal munch, as Lark's standard (``basic``/``contextual``) lexers do: a lexeme extends while
    any candidate terminal can extend it; when it cannot, it ends at its last accepting point
    and the bytes read past that point are lexed again.
    Same-length ties go to the higher priority, then to string literals over regexes (Lark's
    keyword rule).  ``contextual=True`` limits candidates to the terminals the parser accepts
    next (Lark's contextual lexer); otherwise all terminals compete (Lark's basic lexer).
"""

from __future__ import annotations

import hashlib
import pickle
from dataclasses import dataclass, field

import numpy as np

from constrain.errors import GrammarError, LimitExceeded
from constrain.grammar.dfa import ByteDFA

_IR_VERSION = b"constrain-grammar-ir-v1"


@dataclass(frozen=True)
class Terminal:
    """A lexeme kind: a name (for messages), its byte DFA, and how it was written."""

    name: str
    dfa: ByteDFA
    #: "literal" (a fixed string, e.g. a keyword), "regex", or "special" (a tokenizer special token by name)
    kind: str = "regex"
    #: the pattern or literal as the user wrote it (for messages)
    source: str = ""
    priority: int = 0


@dataclass(frozen=True)
class Grammar:
    """A CFG over byte-DFA terminals.  Build with the front-ends, not by hand.

    Attributes
    ----------
    terminals : tuple[Terminal, ...]
    nonterminals : tuple[str, ...]
        Names for messages; nonterminal ``n`` is written ``~n`` in ``rhs``.
    rule_lhs : int32[n_rules]
        Nonterminal index of each rule's left-hand side.
    rule_start : int32[n_rules + 1]
        ``rhs[rule_start[r]:rule_start[r+1]]`` is rule ``r``'s right-hand side.
    rhs : int32[...]
        Symbols (terminal ``t >= 0``, nonterminal ``~n``).
    start : int
        Start nonterminal index.
    ignore : tuple[int, ...]
        Terminals allowed between any two terminals (and at both ends), then dropped.
    lexing : str
        ``"all"`` or ``"longest"`` (see module docstring).
    contextual : bool
        For ``"longest"``: candidates are the parser's next terminals (True) or all terminals.
    name : str
        Where it came from (file name, "regex", "json-schema"), for messages.
    """

    terminals: tuple
    nonterminals: tuple
    rule_lhs: np.ndarray
    rule_start: np.ndarray
    rhs: np.ndarray
    start: int
    ignore: tuple = ()
    lexing: str = "all"
    contextual: bool = True
    name: str = ""
    #: Lark ``Indenter`` post-lexer: (newline, indent, dedent, open ids, close ids, tab_len) or None
    indenter: tuple | None = None
    #: a constraint the CFG cannot carry, enforced by the matcher next to it (e.g.
    #: :class:`~constrain.grammar.checks.DistinctCheck`), or None
    value_check: object | None = None
    _fp: list = field(default_factory=list, repr=False, compare=False)

    # ------------------------------------------------------------ accessors
    @property
    def n_terminals(self) -> int:
        return len(self.terminals)

    @property
    def n_rules(self) -> int:
        return int(self.rule_lhs.shape[0])

    def rule(self, r: int) -> tuple[int, tuple[int, ...]]:
        s, e = int(self.rule_start[r]), int(self.rule_start[r + 1])
        return int(self.rule_lhs[r]), tuple(int(x) for x in self.rhs[s:e])

    def symbol_name(self, sym: int) -> str:
        return self.terminals[sym].name if sym >= 0 else self.nonterminals[~sym]

    def rule_text(self, r: int) -> str:
        lhs, rhs = self.rule(r)
        return f"{self.nonterminals[lhs]}: " + (" ".join(self.symbol_name(s) for s in rhs) or "<empty>")

    def __str__(self) -> str:
        lines = [f"// grammar {self.name!r}: {self.n_terminals} terminals, {self.n_rules} rules, lexing={self.lexing}"]
        lines += [self.rule_text(r) for r in range(self.n_rules)]
        for t in self.terminals:
            lines.append(f"{t.name}: {t.source!r} ({t.kind}, {t.dfa.n_states} states)")
        if self.ignore:
            lines.append("%ignore " + " ".join(self.terminals[i].name for i in self.ignore))
        return "\n".join(lines)

    # -------------------------------------------------------------- identity
    @property
    def fingerprint(self) -> str:
        """Stable digest of the language-defining content (not of names)."""
        if not self._fp:
            h = hashlib.sha256(_IR_VERSION)
            for arr in (self.rule_lhs, self.rule_start, self.rhs):
                h.update(np.ascontiguousarray(arr, dtype="<i4").tobytes())
                h.update(b"|")
            for t in self.terminals:
                h.update(t.dfa.fingerprint().encode() + t.kind.encode() + str(t.priority).encode() + b";")
            h.update(repr((self.start, self.ignore, self.lexing, self.contextual, self.indenter)).encode())
            if self.value_check is not None:
                h.update(b"check:" + self.value_check.fingerprint.encode())
            self._fp.append(h.hexdigest()[:32])
        return self._fp[0]

    def __hash__(self) -> int:
        return hash(self.fingerprint)

    def __eq__(self, other) -> bool:
        return isinstance(other, Grammar) and other.fingerprint == self.fingerprint

    def __reduce__(self):
        return (_rebuild, (self.terminals, self.nonterminals, self.rule_lhs, self.rule_start, self.rhs, self.start,
                           self.ignore, self.lexing, self.contextual, self.name, self.indenter, self.value_check))


def _rebuild(*args) -> Grammar:
    return Grammar(*args)


class GrammarBuilder:
    """Accumulates terminals and rules, then cleans and freezes them into a :class:`Grammar`.

    Cleaning removes rules with non-productive or unreachable symbols; a start symbol that
    derives no terminal string is an error (the language is empty).
    """

    def __init__(self, name: str = ""):
        self.name = name
        self.terminals: list[Terminal] = []
        self._term_index: dict[str, int] = {}
        self.nonterminals: list[str] = []
        self._nt_index: dict[str, int] = {}
        self.rules: list[tuple[int, tuple[int, ...]]] = []
        self.rule_where: list[str] = []
        self.ignore: list[int] = []

    def terminal(self, t: Terminal) -> int:
        if t.name in self._term_index:
            return self._term_index[t.name]
        if t.kind == "virtual":  # produced by a post-lexer, never lexed from bytes
            self._term_index[t.name] = len(self.terminals)
            self.terminals.append(t)
            return len(self.terminals) - 1
        if t.dfa.matches(b""):
            raise GrammarError(f"terminal {t.name} ({t.source!r}) matches the empty string; "
                               "make it match at least one character and use ? or * in the rule instead")
        if t.dfa.is_empty():
            raise GrammarError(f"terminal {t.name} ({t.source!r}) matches nothing")
        self._term_index[t.name] = len(self.terminals)
        self.terminals.append(t)
        return len(self.terminals) - 1

    def nonterminal(self, name: str) -> int:
        if name not in self._nt_index:
            self._nt_index[name] = len(self.nonterminals)
            self.nonterminals.append(name)
        return ~self._nt_index[name]

    def rule(self, lhs: int, rhs, where: str = "") -> None:
        assert lhs < 0
        if not len(self.rules) & 1023:
            from constrain.limits import check_deadline, current_limits

            check_deadline()
            cap = current_limits().max_grammar_rules
            if len(self.rules) >= cap:
                raise LimitExceeded(f"grammar {self.name!r} needs more than {cap} rules", limit="max_grammar_rules",
                                    value=cap)
        self.rules.append((~lhs, tuple(int(s) for s in rhs)))
        self.rule_where.append(where)

    def build(self, start: int, *, lexing: str = "all", contextual: bool = True,
              indenter: dict | None = None) -> Grammar:
        """Clean and freeze.  ``indenter`` maps roles ("newline", "indent", "dedent", "open",
        "close") to terminal ids, plus "tab_len"; it requires ``lexing="longest"``."""
        if lexing not in ("all", "longest"):
            raise GrammarError(f"unknown lexing policy {lexing!r} (use 'all' or 'longest')")
        start_nt = ~start
        # productive nonterminals (fixpoint)
        # (worklist, linear in the grammar size: a rule becomes productive when its last
        # non-productive nonterminal does)
        productive: set[int] = set()
        need: list[int] = []
        users: dict[int, list[int]] = {}
        queue: list[int] = []
        for i, (lhs, rhs) in enumerate(self.rules):
            nts = {~x for x in rhs if x < 0}
            need.append(len(nts))
            for x in nts:
                users.setdefault(x, []).append(i)
            if not nts:
                queue.append(lhs)
        while queue:
            x = queue.pop()
            if x in productive:
                continue
            productive.add(x)
            for i in users.get(x, ()):
                need[i] -= 1
                if need[i] == 0:
                    queue.append(self.rules[i][0])
        if start_nt not in productive:
            raise GrammarError(f"the language of start rule {self.nonterminals[start_nt]!r} is empty: "
                               "it never derives a finite string (every alternative recurses forever or uses an empty rule)")
        rules = [(l, r) for l, r in self.rules if l in productive and all(s >= 0 or ~s in productive for s in r)]
        # reachable from start
        by_lhs: dict[int, list] = {}
        for l, r in rules:
            by_lhs.setdefault(l, []).append(r)
        reach = {start_nt}
        stack = [start_nt]
        used_terms: set[int] = set()
        while stack:
            n = stack.pop()
            for r in by_lhs.get(n, ()):
                for s in r:
                    if s < 0 and ~s not in reach:
                        reach.add(~s)
                        stack.append(~s)
                    elif s >= 0:
                        used_terms.add(s)
        used_terms |= set(self.ignore)
        if indenter is not None:
            if lexing != "longest":
                raise GrammarError("an indentation post-lexer needs the maximal-munch lexer (lexing='longest')")
            used_terms |= {indenter["newline"], indenter["indent"], indenter["dedent"]}
            used_terms |= set(indenter["open"]) | set(indenter["close"])
        rules = [(l, r) for l, r in rules if l in reach]
        # renumber: terminals in original order, nonterminals with start first
        t_map = {old: new for new, old in enumerate(sorted(used_terms))}
        nts = [start_nt] + sorted(reach - {start_nt})
        n_map = {old: new for new, old in enumerate(nts)}

        def m(s):
            return t_map[s] if s >= 0 else ~n_map[~s]

        rules.sort(key=lambda lr: n_map[lr[0]])
        lhs_arr = np.asarray([n_map[l] for l, _ in rules], dtype=np.int32)
        starts = np.zeros(len(rules) + 1, dtype=np.int32)
        np.cumsum([len(r) for _, r in rules], out=starts[1:])
        rhs_arr = np.asarray([m(s) for _, r in rules for s in r], dtype=np.int32)
        for a in (lhs_arr, starts, rhs_arr):
            a.setflags(write=False)
        return Grammar(
            terminals=tuple(self.terminals[o] for o in sorted(used_terms)),
            nonterminals=tuple(self.nonterminals[o] for o in nts),
            rule_lhs=lhs_arr, rule_start=starts, rhs=rhs_arr, start=0,
            ignore=tuple(sorted(t_map[i] for i in set(self.ignore))),
            lexing=lexing, contextual=contextual, name=self.name,
            indenter=None if indenter is None else (
                t_map[indenter["newline"]], t_map[indenter["indent"]], t_map[indenter["dedent"]],
                tuple(sorted(t_map[t] for t in indenter["open"])), tuple(sorted(t_map[t] for t in indenter["close"])),
                int(indenter.get("tab_len", 8))),
        )
