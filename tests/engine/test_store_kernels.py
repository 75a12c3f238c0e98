"""The numba trie walk's INSIDE set (tokens that stay inside the current lexeme) against the
slow oracle."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from constrain.engine.bitmask import allocate_token_bitmask, bitmask_to_bool
from constrain.engine.earley import ByteParser, CompiledParserTables
from constrain.engine.store import _NO_MEMO
from constrain.engine.store_kernels import _walk, sparse_ids
from constrain.grammar import from_lark
from constrain.testing.naive import naive_inside, naive_mask

GRAMMARS = Path(__file__).resolve().parents[2] / "grammars"


def _inside(lexer, sid, vocab):
    lexer.expand(sid)
    t = vocab.trie
    out = allocate_token_bitmask(1, vocab.n_vocab)[0]
    n = lexer.n_states
    ok = np.ones(n, np.bool_)  # every live state: the INSIDE set is "the lexer stays alive"
    acc = np.zeros(n, np.bool_)  # no boundaries: nothing but INSIDE is recorded
    exits = np.empty(t.n_nodes, np.int32)
    n_exit, _ = _walk(lexer.table, ok, acc, t.byte, t.depth, t.subtree_end, t.tok_start, t.tok_ids, t.max_depth,
                      sid, np.zeros(1, np.int32), np.full(1, -1, np.int32), False, True, False, -1, -3,
                      out.view(np.uint32), exits, np.empty(t.n_nodes, np.int8), exits.copy(), -1, 64, *_NO_MEMO)
    assert n_exit == 0
    return bitmask_to_bool(out, vocab.n_vocab)


@pytest.mark.parametrize("grammar,prefix", [("json", b'{"name": "Zo'), ("json", b"[1"), ("json", b""),
                                            ("json:all", b'{"name": "Zo'), ("json:all", b"[1, 2"),
                                            ("sql", b"SELECT a FROM t WHERE x = 'ab"), ("python", b"def f(x):\n")])
def test_inside_walk_matches_oracle(grammar, prefix, smol_vocab):
    name, _, lexing = grammar.partition(":")
    tables = CompiledParserTables(from_lark(GRAMMARS / f"{name}.lark", lexing=lexing or None))
    p = ByteParser(tables)
    assert p.feed(prefix)
    allowed = naive_mask(p, smol_vocab)
    checked = []
    for th in p.threads:
        sid = th[1]
        fast = _inside(tables.lexer, sid, smol_vocab)
        slow = naive_inside(tables.lexer, sid, smol_vocab)
        assert np.array_equal(fast, slow)
        if not tables.basic:
            checked.append(sid)
            # inside the lexeme the parser is frozen: every such token is allowed
            assert not (fast & ~allowed).any()
    assert checked or tables.basic
    if prefix == b'{"name": "Zo':
        sid = p.threads[0][1]
        ids = np.flatnonzero(_inside(tables.lexer, sid, smol_vocab))
        assert len(ids) > 40000  # almost every token can sit inside a JSON string


@pytest.mark.parametrize("name", ["json", "python", "sql", "go", "arithmetic"])
def test_lexer_rows_filled_at_once_equal_byte_by_byte_steps(name):
    """``LexerAutomaton.expand`` fills each state's row in one go (one key per distinct
    column of its terminals' DFA rows); a second automaton of the same grammar stepped byte
    by byte over the same states gives the same successors, state for state (ids may differ,
    keys may not), and reaches the same number of states."""
    assert _assert_rows_equal_steps(from_lark(Path(__file__).resolve().parents[2] / "grammars" / f"{name}.lark")) > 5


def test_one_terminal_closures_equal_byte_by_byte_steps():
    """Inside a JSON string of a format the lexer has one terminal left, and ``expand``
    writes that terminal's whole reachable closure at once (``_close_single``: email's
    ~3,400 states); its rows are the byte-by-byte steps' too, from the grammar's start and
    from each terminal's own start."""
    from constrain.jsonschema import compile_json_schema

    g = compile_json_schema({"type": "object", "properties": {"e": {"type": "string", "format": "email"},
                                                              "d": {"type": "string", "format": "date"},
                                                              "n": {"type": "integer", "maximum": 70}}})
    assert _assert_rows_equal_steps(g) > 5
    sizes = [_assert_rows_equal_steps(g, 1 << i) for i in range(len(g.terminals))]
    assert max(sizes) > 3000  # (the email string's closure)


def _assert_rows_equal_steps(g, candidates=None):
    from constrain.grammar.lexer import NOT_COMPUTED, LexerAutomaton

    fast, slow = LexerAutomaton(g), LexerAutomaton(g)
    everything = (1 << len(g.terminals)) - 1 if candidates is None else candidates
    n = fast.expand(fast.start(everything))
    seen, todo = {slow.start(everything)}, [slow.start(everything)]
    while todo:
        s = todo.pop()
        for b in range(256):
            t = slow.step(s, b)
            if t >= 0 and t not in seen:
                seen.add(t)
                todo.append(t)
    assert n == len(seen)
    checked = 0
    for sid in range(fast.n_states):
        if (fast.table[sid] == NOT_COMPUTED).any():
            continue
        other = slow._key_to_id[fast.keys[sid]]
        assert [fast.keys[x] if x >= 0 else None for x in fast.table[sid].tolist()] == \
            [slow.keys[x] if x >= 0 else None for x in slow.table[other].tolist()]
        checked += 1
    assert checked == n
    return n


@pytest.mark.parametrize("name", ["json", "sql"])
def test_expand_stops_at_closed_states_and_leaves_nothing_uncomputed(name):
    """A second ``expand`` from any state it reached has nothing to do (the states are
    closed), and every state reachable from a closed one has its whole row computed, also
    when a later expand starts elsewhere and meets closed states half-way."""
    from constrain.grammar.lexer import NOT_COMPUTED, LexerAutomaton

    g = from_lark(GRAMMARS / f"{name}.lark")
    lex = LexerAutomaton(g)
    first = lex.start(1)  # one terminal's states, then everything: the second meets closed ones
    assert lex.expand(first) >= 1
    everything = lex.start((1 << len(g.terminals)) - 1)
    lex.expand(everything)
    for sid in sorted(lex._closed):
        assert lex.expand(sid) == 0
    seen, todo = {everything, first}, [everything, first]
    while todo:
        row = lex.table[todo.pop()]
        assert not (row == NOT_COMPUTED).any()
        for nxt in set(row.tolist()):
            if nxt >= 0 and nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    assert seen <= lex._closed


def test_state_flags_extended_equal_rebuilt(smol_vocab):
    """The store's per-allowed-set state flags, extended as lexer states are added, equal
    flags computed from scratch over all states."""
    from constrain.engine.store import TokenStore

    tables = CompiledParserTables(from_lark(GRAMMARS / "json.lark"))
    store = TokenStore(tables, smol_vocab)
    lex = tables.lexer
    A = (1 << len(tables.grammar.terminals)) - 1
    store._state_flags(A)
    n0 = lex.n_states
    for i in range(len(tables.grammar.terminals)):  # new states: each terminal lexed alone
        lex.expand(lex.start(1 << i))
    assert lex.n_states > n0
    ok, acc = store._state_flags(A)
    n = lex.n_states
    assert ok.shape == acc.shape == (n,)
    assert ok.tolist() == [(lex.live[s] & A) != 0 for s in range(n)]
    want = [lex.accept[s] != 0 for s in range(n)] if store.longest else [(lex.accept[s] & A) != 0 for s in range(n)]
    assert acc.tolist() == want


_ORDER = {"type": "object", "properties": {  # additional properties allowed: every key position
    "order_id": {"type": "string", "pattern": "^ORD-[0-9]{3}$"},  # walks almost the whole trie
    "customer": {"type": "object", "properties": {"name": {"type": "string"}, "tier": {"enum": ["gold", "silver"]}},
                 "required": ["name"]},
    "items": {"type": "array", "items": {"type": "object", "properties": {"sku": {"type": "string"},
                                                                          "quantity": {"type": "integer"}}}}},
    "required": ["order_id"]}
_ORDER_DOCS = ['{"order_id": "ORD-123", "customer": {"name": "Ann Lee", "tier": "gold", "vip": true}, '
               '"items": [{"sku": "BK-1", "quantity": 2, "gift": "yes"}], "note": "leave at the door"}',
               '{"notes": [1, {"a": "b"}], "order_id": "ORD-999", "customer": {"name": "Ünïcødé 名前"}}']


@pytest.mark.parametrize("source,pools", [("schema", "grown"), ("json", "grown"), ("schema", "tiny")])
def test_subtree_memo_gives_the_walks_without_it(source, pools, smol_vocab, smol_hf):
    """The trie walk's subtree memo replays recorded subtrees; every entry it builds (INSIDE
    tokens, split groups as node sets per terminal set, feeds) and every mask equal those of
    a store whose walks all run from scratch, over documents that revisit key positions.
    ``tiny``: pools of a few rows that never grow, so recordings are abandoned half-way
    (runs or exits full) and the slot table fills."""
    from constrain.engine.matcher import Matcher
    from constrain.engine.store import TokenStore, _SubtreeMemo
    from constrain.jsonschema import compile_json_schema

    if source == "schema":
        g, docs = compile_json_schema(_ORDER, whitespace="flexible"), _ORDER_DOCS
    else:
        g = from_lark(GRAMMARS / "json.lark", lexing="all")  # (the memo is for the exact policy only)
        docs = _ORDER_DOCS + ['[{"a": 1, "ab": 2, "abc": [true, null]}, "x\\u00e9y", -1.5e3]']
    tables = CompiledParserTables(g)
    fast, slow = TokenStore(tables, smol_vocab), TokenStore(tables, smol_vocab)
    slow._subtrees = None
    assert fast._subtrees is not None
    if pools == "tiny":
        m = fast._subtrees = _SubtreeMemo(0, smol_vocab.trie)
        m.slots, m.runs, m.ex = np.empty((6, 4), np.int64), np.empty((40, 2), np.int32), np.empty((5, 3), np.int32)
    for d in docs:
        mf, ms = Matcher(g, smol_vocab, store=fast), Matcher(g, smol_vocab, store=slow)
        for t in smol_hf.encode(d, add_special_tokens=False).ids:
            assert np.array_equal(mf.next_token_mask(), ms.next_token_mask())
            assert mf.accept_token(t) and ms.accept_token(t)
        assert mf.is_finished() or mf.parser.is_complete()
    assert fast._subtrees.count[0] > 0  # (slots were recorded, and replayed below)

    def shape(e):
        return (e.inside_words(slow.n_words).tobytes(), e.feeds.tolist(),
                sorted((T, sorted(r.tolist()), sorted(f.tolist())) for T, r, f in e.groups))

    common = set(fast._entries) & set(slow._entries)
    assert len(common) == len(slow._entries) > 20
    for k in common:
        assert shape(fast._entries[k]) == shape(slow._entries[k]), k
    assert fast.stats.nodes_visited < slow.stats.nodes_visited


@given(st.lists(st.integers(0, 2 ** 32 - 1) | st.just(0), min_size=0, max_size=40), st.integers(0, 80))
@settings(max_examples=300, deadline=None)
def test_sparse_ids_equal_numpy(words, cap):
    """``sparse_ids`` (an entry's INSIDE tokens as ids) against numpy's bit unpacking, at and
    around the cap."""
    w = np.array(words, np.uint32)
    ref = np.flatnonzero(np.unpackbits(w.view(np.uint8), bitorder="little")).astype(np.int32)
    ids, n = sparse_ids(w, cap)
    if ref.shape[0] > cap:
        assert n == -1 and ids.shape[0] == 0
    else:
        assert n == ref.shape[0] and ids.dtype == np.int32 and ids.tolist() == ref.tolist()
