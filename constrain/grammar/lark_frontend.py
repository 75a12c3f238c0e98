"""Lark grammar files → :class:`~constrain.grammar.ir.Grammar`.

The ``lark`` package loads and normalises the grammar (imports, templates, ``?rule`` inlining,
EBNF operators, ``~n..m`` repetition); this module only lowers its output — terminal
definitions and BNF rules — to byte DFAs and flat rule arrays.  Tree-shaping (aliases, ``?``,
``_rule``, ``keep_all_tokens``) does not change the language and is dropped.

A grammar file may say how it is meant to be parsed in a header comment, which sets the
lexing policy to match Lark's semantics for it::

    // start: start  parser: lalr  lexer: basic

``parser: earley`` with ``lexer: dynamic`` (Lark's defaults) → lexing ``"all"``;
``lexer: basic`` → ``"longest"`` over all terminals; ``lexer: contextual`` (LALR's default) →
``"longest"`` over the parser's next terminals.

``postlex: python_indenter`` adds Lark's ``PythonIndenter``: ``_NEWLINE`` lexemes (outside
brackets) produce zero-width ``_INDENT``/``_DEDENT`` tokens from the indentation they end with
(tabs count 8 columns); newlines inside brackets are ignored.  It implies maximal munch.

Terminals written with lookaround in Lark's own ``common.lark`` (``ESCAPED_STRING`` and its
helpers) are replaced by their intended regular languages, since lookaround is not regular
in general and is refused elsewhere.
"""

from __future__ import annotations

import re
from pathlib import Path

from constrain.errors import ConfigError, ConstrainError, GrammarError, LimitExceeded, RegexError
from constrain.grammar.ir import Grammar, GrammarBuilder, Terminal
from constrain.grammar.regex import compile_choices, compile_regex, literal_dfa

# Lark common.lark patterns that use lookbehind, keyed by their exact pattern text,
# mapped to the regular language they are meant to denote.
_KNOWN_REWRITES = {
    # ESCAPED_STRING: "..." with backslash escapes; "." excludes newline
    r'".*?(?<!\\)(\\\\)*?"': r'"(?:[^"\\\n]|\\[^\n])*"',
    # _STRING_ESC_INNER alone (used by some grammars): body of such a string
    r'.*?(?<!\\)(\\\\)*?': r'(?:[^"\\\n]|\\[^\n])*',
}

def _python_indenter():
    from lark.indenter import PythonIndenter

    return PythonIndenter


_POSTLEXERS = {"python_indenter": _python_indenter}

_HEADER = re.compile(r"^\s*//\s*(.*)$")
_KEYVAL = re.compile(r"(start|parser|lexer|postlex)\s*:\s*([\w.]+)")


def read_header(text: str) -> dict[str, str]:
    """Options from ``// start: X  parser: Y  lexer: Z`` comments at the top of a grammar."""
    opts: dict[str, str] = {}
    for line in text.splitlines():
        m = _HEADER.match(line)
        if not m:
            if line.strip():
                break
            continue
        for k, v in _KEYVAL.findall(m.group(1)):
            opts.setdefault(k, v)
    return opts


def _lark_error(e: Exception, text: str, name: str) -> GrammarError:
    line = getattr(e, "line", None)
    column = getattr(e, "column", None)
    msg = str(e).strip()
    if line is None:
        m = re.search(r"at line (\d+) column (\d+)", msg)
        if m:
            line, column = int(m.group(1)), int(m.group(2))
    context = None
    if isinstance(line, int) and line > 0:
        lines = text.splitlines()
        if line <= len(lines):
            context = lines[line - 1] + "\n" + " " * max(0, (column or 1) - 1) + "^"
    first = msg.splitlines()[0] if msg else type(e).__name__
    return GrammarError(f"{name}: {first}", line=line if isinstance(line, int) and line > 0 else None,
                        column=column if isinstance(column, int) and column > 0 else None, context=context)


def _line_of(text: str, needle: str) -> int | None:
    """1-based line of the first occurrence of ``needle`` in ``text`` (for messages)."""
    if not needle:
        return None
    i = text.find(needle)
    return None if i < 0 else text.count("\n", 0, i) + 1


def _rule_line(text: str, rule: str) -> int | None:
    m = re.search(r"^[ \t]*[?!]?" + re.escape(rule) + r"(\{[^}]*\})?[ \t]*(\.[-\d]+)?[ \t]*:", text, re.M)
    return None if m is None else text.count("\n", 0, m.start()) + 1


def _nesting(text: str, cap: int) -> None:
    """Refuse grammar text whose parentheses/brackets nest deeper than ``cap`` (lark's own
    loader recurses on them), skipping strings, regexes and comments."""
    depth = 0
    line = 1
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == "\n":
            line += 1
        elif c == '"' or (c == "/" and not text.startswith("//", i)):
            j = i + 1
            while j < n and text[j] != c and text[j] != "\n":
                j += 2 if text[j] == "\\" else 1
            i = j
        elif c == "/" or c == "#":
            j = text.find("\n", i)
            i = n if j < 0 else j
            continue
        elif c in "([":
            depth += 1
            if depth > cap:
                raise LimitExceeded("the grammar's parentheses/brackets nest too deeply", limit="max_grammar_depth",
                                    value=cap, line=line)
        elif c in ")]":
            depth = max(0, depth - 1)
        i += 1


def _terminal_dfa(tdef, name: str, text: str = ""):
    from lark.lexer import PatternStr

    pat = tdef.pattern
    flags = "".join(sorted(pat.flags))
    if isinstance(pat, PatternStr):
        if "i" in pat.flags:
            # an ASCII keyword ("select"i) folds ASCII case only.  Python's re (and so Lark) would
            # also match Unicode folds (ſ for s, ı for i, K for k), and Lark's lexer, which takes
            # the first regex alternative rather than the longest match, then reaches them only
            # at some positions (``dıstinct`` lexes as d / ıs / tinct there): maximal munch over
            # the full fold would accept such words where Lark rejects them.  Without the exotic
            # folds constrain's language stays inside Lark's (it refuses ``ſelect``, which Lark
            # takes), the safe side for generation.
            return (compile_regex(re.escape(pat.value), flags="i", ascii=pat.value.isascii()), "literal",
                    pat.value)
        try:
            return literal_dfa(pat.value), "literal", pat.value
        except LimitExceeded as e:
            raise LimitExceeded(f"{name}: terminal {tdef.name}: {e.message}", limit=e.limit, value=e.value,
                                line=_line_of(text, pat.value[:64])) from None
    value = _KNOWN_REWRITES.get(pat.value, pat.value)
    try:
        return compile_regex(value, flags=flags), "regex", pat.value
    except RegexError as e:
        raise GrammarError(f"{name}: terminal {tdef.name} /{pat.value}/: {e.message}",
                           line=_line_of(text, pat.value[:64])) from None
    except LimitExceeded as e:
        raise LimitExceeded(f"{name}: terminal {tdef.name} /{pat.value[:80]}/: {e.message}", limit=e.limit,
                            value=e.value, line=_line_of(text, pat.value[:64])) from None


def from_lark(grammar: str | Path, *, start: str | None = None, lexing: str | None = None,
              name: str | None = None, import_paths: list | None = None, limits=None) -> Grammar:
    """Compile a Lark grammar (text, or a path to a ``.lark`` file) to a :class:`Grammar`.

    Parameters
    ----------
    grammar:
        Grammar text, or a path (``Path`` or a string ending in ``.lark`` that exists).
    start:
        Start rule; default from the header comment, else ``start``.
    lexing:
        ``"all"`` or ``"longest"``; default from the header comment (see module docstring).
    limits:
        A :class:`constrain.Limits` (default: those in force): grammar size and nesting, literal
        size, compile time; each cap that is hit raises :class:`~constrain.errors.LimitExceeded`.
    """
    from constrain.limits import compile_budget, use_limits

    if not isinstance(grammar, (str, Path)):
        raise ConfigError(f"from_lark expects grammar text or a path, got {type(grammar).__name__}")
    with use_limits(limits), compile_budget("the grammar", "max_grammar_depth"):
        try:
            return _from_lark(grammar, start=start, lexing=lexing, name=name, import_paths=import_paths)
        except (ConstrainError, RecursionError, MemoryError):
            raise
        except Exception as e:  # noqa: BLE001 - lark raises many types on odd input; never leak them
            raise GrammarError(f"cannot compile the grammar: {type(e).__name__}: {e}") from e


def _lark_meta_parser() -> None:
    """Build Lark's parser for ``.lark`` syntax once per process, without its collision check.

    Lark makes that parser (a fixed grammar of its own) on its first ``load_grammar`` and, when
    ``interegular`` is installed (it is: a constrain dependency), checks its ~30 terminals'
    regexes pairwise for overlaps, which only logs a warning about Lark's own grammar and took
    0.33 s, a third of the first Lark grammar's compile in a process.  The check is switched
    off for that one construction; where Lark's internals differ from what this expects, Lark
    builds it as usual."""
    try:
        import lark.lexer as lark_lexer
        from lark.load_grammar import _get_parser
    except ImportError:  # another Lark layout
        return
    if hasattr(_get_parser, "cache") or not hasattr(lark_lexer, "has_interegular"):
        return
    saved = lark_lexer.has_interegular
    lark_lexer.has_interegular = False
    try:
        _get_parser()
    finally:
        lark_lexer.has_interegular = saved


def _from_lark(grammar, *, start, lexing, name, import_paths) -> Grammar:
    from lark import exceptions as lark_exc

    from constrain.limits import current_limits
    from lark.load_grammar import load_grammar

    _lark_meta_parser()

    path = None
    if isinstance(grammar, Path) or (isinstance(grammar, str) and grammar.endswith(".lark") and "\n" not in grammar):
        path = Path(grammar)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as e:
            raise GrammarError(f"cannot read grammar file {path}: {e}") from None
    else:
        text = grammar
    label = name or (path.name if path else "<grammar>")
    lim = current_limits()
    if len(text) > lim.max_grammar_bytes:
        raise LimitExceeded(f"{label}: the grammar text has {len(text)} characters", limit="max_grammar_bytes",
                            value=lim.max_grammar_bytes)
    _nesting(text, lim.max_grammar_depth)
    header = read_header(text)
    start = start or header.get("start", "start")
    lexer = header.get("lexer", "dynamic" if header.get("parser", "earley") == "earley" else "contextual")
    if lexing is None:
        lexing = "all" if lexer.startswith("dynamic") else "longest"
    contextual = lexer != "basic"
    postlex = header.get("postlex")
    if postlex is not None and postlex not in _POSTLEXERS:
        raise GrammarError(f"{label}: unknown post-lexer {postlex!r}; supported: {', '.join(_POSTLEXERS)}")
    if postlex is not None:
        lexing = "longest"
    paths = list(import_paths or [])
    if path is not None:
        paths.append(str(path.parent))
    try:
        g, _ = load_grammar(text, label, paths, False)
        tdefs, rules, ignore = g.compile([start], set())
    except (lark_exc.GrammarError, lark_exc.LarkError) as e:
        err = _lark_error(e, text, label)
        m = re.search(r"\(in rule (\w+)\)", err.message)
        if err.line is None and m:
            err = GrammarError(err.message, line=_rule_line(text, m.group(1)))
        raise err from None
    except (KeyError, AssertionError) as e:
        raise GrammarError(f"{label}: {type(e).__name__}: {e}") from None
    b = GrammarBuilder(label)
    tindex: dict[str, int] = {}
    for td in tdefs:
        dfa, kind, src = _terminal_dfa(td, label, text)
        try:
            tindex[td.name] = b.terminal(Terminal(td.name, dfa, kind=kind, source=src, priority=td.priority))
        except GrammarError as e:
            raise GrammarError(f"{label}: {e.message}", line=_rule_line(text, str(td.name))
                               or _line_of(text, str(src)[:64])) from None
    ind_spec = None
    if postlex is not None:
        cls = _POSTLEXERS[postlex]()
        for vname in (cls.INDENT_type, cls.DEDENT_type):
            if vname not in tindex:
                tindex[vname] = b.terminal(Terminal(vname, compile_choices([]), kind="virtual", source=postlex))
        if cls.NL_type not in tindex:
            raise GrammarError(f"{label}: post-lexer {postlex} needs a terminal {cls.NL_type}")
        ind_spec = {"newline": tindex[cls.NL_type], "indent": tindex[cls.INDENT_type], "dedent": tindex[cls.DEDENT_type],
                    "open": [tindex[n] for n in cls.OPEN_PAREN_types if n in tindex],
                    "close": [tindex[n] for n in cls.CLOSE_PAREN_types if n in tindex], "tab_len": cls.tab_len}
    for r in rules:
        lhs = b.nonterminal(str(r.origin.name))
        rhs = []
        for s in r.expansion:
            if s.is_term:
                if s.name not in tindex:
                    raise GrammarError(f"{label}: terminal {s.name} is declared but never defined "
                                       "(%declare needs a post-lexer)")
                rhs.append(tindex[s.name])
            else:
                rhs.append(b.nonterminal(str(s.name)))
        b.rule(lhs, rhs, where=r.origin.name)
    for ig in ignore:
        if ig not in tindex:
            raise GrammarError(f"{label}: %ignore {ig} names no terminal")
        b.ignore.append(tindex[ig])
    if start not in {r.origin.name for r in rules}:
        raise GrammarError(f"{label}: start rule {start!r} is not defined")
    try:
        return b.build(b.nonterminal(start), lexing=lexing, contextual=contextual, indenter=ind_spec)
    except GrammarError as e:
        if e.line is not None or "start rule" not in e.message:
            raise
        raise GrammarError(f"{label}: {e.message}", line=_rule_line(text, str(start))) from None
