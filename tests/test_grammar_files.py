"""The checked-in Lark grammars (grammars/*.lark) against their corpora.

Every grammar has a corpus under tests/data/grammars/<name>/:
``accept/*.txt`` files must parse and ``reject/*.txt`` files (near-misses)
must not. Each file holds exactly one document. Every document ends with a
newline. For json, sql and arithmetic that newline is insignificant
whitespace. For python and go it is required, because the last statement
needs its line end.

For now these tests use Lark's own parser. GRAMMAR_OPTIONS says how to build
one per grammar. The first line of each .lark file repeats the same options
as a comment (``// start: ...  parser: ...  lexer: ...  [postlex: ...]``),
so that an engine which reads the grammars without Lark's parser knows the
start rule and the lexing model. ``lexer: basic`` means a context-free
longest-match lexer in which keyword strings are reserved: a NAME/IDENT
regex never yields a keyword.
"""

from __future__ import annotations

import ast
import functools
import json
import logging
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from lark import Lark
from lark import logger as lark_logger
from lark.exceptions import LarkError
from lark.indenter import PythonIndenter

REPO = Path(__file__).resolve().parents[1]
GRAMMAR_DIR = REPO / "grammars"
CORPUS_DIR = Path(__file__).resolve().parent / "data" / "grammars"
SHARED_WORKLOADS = Path(__file__).resolve().parents[1].parent / "shared" / "bench" / "workloads"

# Per-grammar parser options. Each one is repeated as the header line of its .lark file.
GRAMMAR_OPTIONS: dict[str, dict[str, str]] = {
    "json": {"start": "start", "parser": "lalr", "lexer": "basic"},
    "sql": {"start": "start", "parser": "lalr", "lexer": "basic"},
    "arithmetic": {"start": "start", "parser": "lalr", "lexer": "basic"},
    "python": {"start": "file_input", "parser": "lalr", "lexer": "basic", "postlex": "python_indenter"},
    "go": {"start": "source_file", "parser": "lalr", "lexer": "basic"},
}

# Grammars whose documents must end with a newline (the last statement's terminator).
NEWLINE_REQUIRED = {"json": False, "sql": False, "arithmetic": False, "python": True, "go": True}

POSTLEXERS = {"python_indenter": PythonIndenter}

MIN_ACCEPT = 15
MIN_REJECT = 10

_HEADER_RE = re.compile(r"(\w+):\s*(\S+)")


def _read(path: Path) -> str:
    with open(path, encoding="utf-8", newline="") as fh:
        return fh.read()


def _header_options(name: str) -> dict[str, str]:
    first = _read(GRAMMAR_DIR / f"{name}.lark").splitlines()[0]
    assert first.startswith("//"), f"{name}.lark must start with a '// start: ...' header comment"
    return dict(_HEADER_RE.findall(first[2:]))


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@functools.lru_cache(maxsize=None)
def _build(name: str) -> tuple[Lark, tuple[str, ...]]:
    """Build the Lark parser for a grammar, and return it with the log messages
    that Lark wrote while building it. Lark resolves LALR shift/reduce
    conflicts silently and only logs them at debug level."""
    opts = dict(GRAMMAR_OPTIONS[name])
    postlex = opts.pop("postlex", None)
    kwargs = {}
    if postlex is not None:
        kwargs["postlex"] = POSTLEXERS[postlex]()
    handler = _Capture()
    old_level = lark_logger.level
    lark_logger.addHandler(handler)
    lark_logger.setLevel(logging.DEBUG)
    try:
        parser = Lark.open(str(GRAMMAR_DIR / f"{name}.lark"), **opts, **kwargs)
    finally:
        lark_logger.removeHandler(handler)
        lark_logger.setLevel(old_level)
    return parser, tuple(handler.messages)


def _parser(name: str) -> Lark:
    return _build(name)[0]


def _corpus(kind: str) -> list[tuple[str, Path]]:
    return [(name, path) for name in GRAMMAR_OPTIONS for path in sorted((CORPUS_DIR / name / kind).glob("*.txt"))]


def _ids(cases: list[tuple[str, Path]]) -> list[str]:
    return [f"{name}/{path.stem}" for name, path in cases]


ACCEPT = _corpus("accept")
REJECT = _corpus("reject")


# ----------------------------------------------------------------- grammar files


def test_every_grammar_file_has_options() -> None:
    on_disk = {p.stem for p in GRAMMAR_DIR.glob("*.lark")}
    assert on_disk == set(GRAMMAR_OPTIONS)


@pytest.mark.parametrize("name", sorted(GRAMMAR_OPTIONS))
def test_header_matches_options(name: str) -> None:
    assert _header_options(name) == GRAMMAR_OPTIONS[name]


@pytest.mark.parametrize("name", sorted(GRAMMAR_OPTIONS))
def test_grammar_builds_without_lalr_conflicts(name: str) -> None:
    _, messages = _build(name)
    conflicts = [m for m in messages if "conflict" in m.lower()]
    assert not conflicts, "\n".join(conflicts)


@pytest.mark.parametrize("name", sorted(GRAMMAR_OPTIONS))
def test_corpus_size_and_format(name: str) -> None:
    accept = sorted((CORPUS_DIR / name / "accept").glob("*.txt"))
    reject = sorted((CORPUS_DIR / name / "reject").glob("*.txt"))
    assert len(accept) >= MIN_ACCEPT, f"{name}: only {len(accept)} accept documents"
    assert len(reject) >= MIN_REJECT, f"{name}: only {len(reject)} reject documents"
    for path in accept + reject:
        text = _read(path)
        assert text.endswith("\n"), f"{path} must end with a newline"


# ----------------------------------------------------------------- corpora


@pytest.mark.parametrize(("name", "path"), ACCEPT, ids=_ids(ACCEPT))
def test_accept(name: str, path: Path) -> None:
    # parse raises on a rejected document; a tree means Lark accepted it
    assert _parser(name).parse(_read(path)) is not None


@pytest.mark.parametrize(("name", "path"), REJECT, ids=_ids(REJECT))
def test_reject(name: str, path: Path) -> None:
    with pytest.raises(LarkError):
        _parser(name).parse(_read(path))


@pytest.mark.parametrize(("name", "path"), ACCEPT, ids=_ids(ACCEPT))
def test_final_newline_convention(name: str, path: Path) -> None:
    stripped = _read(path).rstrip("\r\n")
    if NEWLINE_REQUIRED[name]:
        with pytest.raises(LarkError):
            _parser(name).parse(stripped)
    else:
        _parser(name).parse(stripped)


# ------------------------------------- corpora checked with the real languages' own tools


def test_json_corpus_agrees_with_stdlib() -> None:
    for _, path in [c for c in ACCEPT if c[0] == "json"]:
        json.loads(_read(path))
    # Python's json module also accepts NaN/Infinity, which RFC 8259 does not.
    for _, path in [c for c in REJECT if c[0] == "json"]:
        if path.stem.endswith("nan"):
            continue
        with pytest.raises(ValueError):
            json.loads(_read(path))


def test_python_corpus_agrees_with_cpython() -> None:
    for _, path in [c for c in ACCEPT if c[0] == "python"]:
        ast.parse(_read(path), filename=str(path))
    for _, path in [c for c in REJECT if c[0] == "python"]:
        with pytest.raises(SyntaxError):
            ast.parse(_read(path), filename=str(path))


@pytest.mark.skipif(shutil.which("gofmt") is None, reason="gofmt is not installed")
def test_go_corpus_agrees_with_gofmt() -> None:
    def gofmt_ok(path: Path) -> bool:
        proc = subprocess.run(["gofmt", "-e", str(path)], capture_output=True, timeout=60)
        return proc.returncode == 0

    bad_accept = [p.name for n, p in ACCEPT if n == "go" and not gofmt_ok(p)]
    bad_reject = [p.name for n, p in REJECT if n == "go" and gofmt_ok(p)]
    assert not bad_accept, f"gofmt rejects accept documents: {bad_accept}"
    assert not bad_reject, f"gofmt accepts reject documents: {bad_reject}"


# -------------------------------------------- the peer benchmark's workloads (shared/)


def _shared_lines(filename: str) -> list[str]:
    path = SHARED_WORKLOADS / filename
    if not path.is_file():
        pytest.skip(f"{path} not found")
    return [line for line in _read(path).splitlines() if line.strip()]


def _parse_all(name: str, docs: list[str]) -> None:
    parser = _parser(name)
    failures = []
    for doc in docs:
        try:
            parser.parse(doc)
        except LarkError as exc:
            failures.append(f"{doc[:80]!r}: {type(exc).__name__}: {str(exc).splitlines()[0]}")
    assert not failures, "\n".join(failures)


def test_shared_sql_workload_accepted() -> None:
    # cfg_sql.docs.txt: one query per line
    docs = _shared_lines("cfg_sql.docs.txt")
    assert docs
    _parse_all("sql", docs)


def test_shared_arith_workload_accepted() -> None:
    # cfg_arith.docs.txt: one expression per line
    docs = _shared_lines("cfg_arith.docs.txt")
    assert docs
    _parse_all("arithmetic", docs)


def test_shared_json_schema_workloads_accepted() -> None:
    # schema_*.docs.json: each file is one JSON array whose items are the documents
    if not SHARED_WORKLOADS.is_dir():
        pytest.skip(f"{SHARED_WORKLOADS} not found")
    files = sorted(SHARED_WORKLOADS.glob("schema_*.docs.json"))
    if not files:
        pytest.skip("no schema_*.docs.json in shared workloads")
    docs = []
    for path in files:
        text = _read(path)
        docs.append(text)  # the file itself, as written
        items = json.loads(text)
        assert isinstance(items, list)
        for item in items:
            docs.append(json.dumps(item))
            docs.append(json.dumps(item, indent=2, ensure_ascii=False))
    _parse_all("json", docs)
