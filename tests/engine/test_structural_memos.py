"""The structural memos of the warm path against the direct computations they replace.

- Completeness under maximal munch (``TokenStore._complete``, memoised per (row id,
  terminals) in ``tables.sig_eos``) against ending the input on a copy of the parser.
- ``ByteParser.is_complete`` ends the lexeme on the parser itself and removes what it added:
  the chart, row positions and row counter must be as before.
- ``new_row`` (prediction closures a nonterminal at a time; row 0 too) against the
  item-by-item ``closed_row``.
- Row ids interned from a row's seeds (completions chased): rows with one id parse every
  continuation the same (the property every structural memo relies on), checked by replaying
  sampled terminal sequences with plain Earley scans.
- The flat index's open-addressing table and sparse-id pool (``_FlatIndex``) against a dict
  and against the entries they mirror, through growth, eviction and compaction.
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest

from constrain.engine.earley import ByteParser, CompiledParserTables, row_sig, scan_seeds
from constrain.engine.store import TokenStore, _Entry, _FlatIndex
from constrain.engine.store_kernels import (E_FLAGS, E_S_LEN, E_S_START, E_SLOT, FLAT_ALIVE, H_ABSENT, ht_get,
                                            ht_grow, ht_put)
from constrain.grammar import from_lark
from constrain.testing.naive import closed_row
from constrain.tokenizers import Vocabulary

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "tests" / "data" / "grammars"
GRAMMARS = ["json", "sql", "go", "arithmetic"]


def _docs(name, n=3):
    return [p.read_bytes() for p in sorted((DOCS / name / "accept").glob("*.txt"))[:n]]


def _prefixes(doc: bytes):
    """Every position of a short document, a sample of a long one (always the end)."""
    step = max(1, len(doc) // 120)
    return sorted(set(range(1, len(doc) + 1, step)) | {len(doc)})


def test_indenter_completeness_memo_equals_the_parser():
    """Under the indentation post-lexer completeness is memoised by the mask key (bracket
    depth, indentation stack, a NEWLINE's bytes: ``_end_memo``); at every position of real
    code, answered fresh or from the memo, it equals ending the input on a copy."""
    g = from_lark(ROOT / "grammars" / "python.lark")
    tables = CompiledParserTables(g)
    store = TokenStore(tables, Vocabulary.byte_level([b"a"]))
    docs = [b"\n".join(d.split(b"\n")[:40]) + b"\n" for d in _docs("python", 2)]
    checked = complete = 0
    for rep in range(2):  # fresh, then every answer from the memo
        for doc in docs:
            p = ByteParser(tables)
            for i in range(len(doc)):
                assert p.feed(doc[i:i + 1])
                if not store._eos_known(p):
                    continue
                expect = p.copy()._finish()
                assert store._complete(p) == expect, doc[:i + 1][-40:]
                checked += 1
                complete += expect
    assert store._end_memo and checked > 500 and complete > 10


@pytest.mark.parametrize("name", GRAMMARS)
def test_structural_completeness_equals_finishing_a_copy(name):
    g = from_lark(ROOT / "grammars" / f"{name}.lark")
    tables = CompiledParserTables(g)
    store = TokenStore(tables, Vocabulary.byte_level([b"a"]))
    checked = complete = 0
    for doc in _docs(name, 8):
        p = ByteParser(tables)
        for i in range(len(doc)):
            assert p.feed(doc[i:i + 1])
            if not store._eos_known(p):
                continue
            expect = p.copy()._finish()  # the reference: end the input on a private copy
            assert store._complete(p) == expect, (name, doc[:i + 1][-40:])
            assert store._complete(p) == expect  # memoised now: the same answer
            checked += 1
            complete += expect
        assert store._complete(p) if store._eos_known(p) else p.is_complete()  # whole documents are words
    assert checked > 20 and complete > 0
    assert tables.sig_eos


@pytest.mark.parametrize("name", GRAMMARS)
def test_is_complete_leaves_the_parser_as_it_was(name):
    g = from_lark(ROOT / "grammars" / f"{name}.lark")
    tables = CompiledParserTables(g)
    doc = _docs(name, 1)[0]
    p = ByteParser(tables)
    for i in _prefixes(doc):
        assert p.feed(doc[p.pos:i])
        before = (dict(p.chart), dict(p.row_pos), p.next_rid, p.threads, p.indent, p.paren, len(p._history))
        expect = p.copy()._finish() if tables.longest and p.pos else None
        got = p.is_complete()
        assert (dict(p.chart), dict(p.row_pos), p.next_rid, p.threads, p.indent, p.paren, len(p._history)) == before
        if expect is not None:
            assert got == expect
    assert p.is_complete()


def _replay(tables, chart, rid, seq):
    """Scan terminal ids ``seq`` one by one from row ``rid`` on a private copy of ``chart``
    (plain Earley: ``scan_seeds`` and ``new_row``, no structural id involved): per step the
    row's allowed terminals and completeness, ``None`` from the first step that leaves no row."""
    chart = dict(chart)
    nxt = max(chart) + 1
    out = []
    row = chart[rid]
    for t in seq:
        seeds = scan_seeds(row, 1 << t, tables.ignore_mask)
        if not seeds:
            out.append(None)
            break
        row = chart[nxt] = tables.new_row(nxt, seeds, chart)
        nxt += 1
        out.append((row.allowed, row.complete))
    return out


def _random_terms(tables, chart, rid, rng, n):
    """A random terminal sequence of length ``n`` the row takes (non-ignored terminals)."""
    chart = dict(chart)
    nxt = max(chart) + 1
    row, seq = chart[rid], []
    for _ in range(n):
        allowed = [t for t in range(tables.grammar.n_terminals) if (row.allowed & ~tables.ignore_mask) >> t & 1]
        if not allowed:
            break
        t = rng.choice(allowed)
        seq.append(t)
        row = chart[nxt] = tables.new_row(nxt, scan_seeds(row, 1 << t, tables.ignore_mask), chart)
        nxt += 1
    return seq


_CHAINS = {  # documents that nest unary prefixes and right recursion, which _chase collapses
    "arithmetic": [b"- - - - -1 + - -(2 * - - - 3) ^ - - 2", b"--(-(--1))*-2^-2^--3", b"1 - -2 - - -3"],
    "json": [b'[[[[{"a": [[{"b": {"c": [1, [2, [3]]]}}]]}]]]]'],
}


def _compare_shared_ids(tables, charts, rng) -> int:
    """For rows of ``charts`` (rids in each, origins first) that share a structural id: the
    same allowed terminals and completeness, and the same outcome of sampled continuations
    replayed by plain Earley scans; the number of rows compared."""
    first, compared = {}, 0
    for chart in charts:
        for rid in sorted(chart):  # origins first: the recursion stays shallow
            sig = row_sig(tables, chart, rid)
            if sig not in first:
                first[sig] = (chart, rid, 0)
                continue
            chart0, rid0, n = first[sig]
            if n >= 8:  # (eight comparisons an id)
                continue
            first[sig] = (chart0, rid0, n + 1)
            assert (chart0[rid0].allowed, chart0[rid0].complete) == (chart[rid].allowed, chart[rid].complete)
            for _ in range(6):
                seq = _random_terms(tables, chart0, rid0, rng, rng.randrange(1, 7))
                assert _replay(tables, chart0, rid0, seq) == _replay(tables, chart, rid, seq), (rid, seq)
            compared += 1
    return compared


def _parsed(tables, doc):
    p = ByteParser(tables)
    for i in range(len(doc)):
        assert p.feed(doc[i:i + 1])
    return p.chart


@pytest.mark.parametrize("name", ["json", "sql", "arithmetic", "python"])
def test_rows_with_one_id_parse_every_continuation_the_same(name):
    """Row ids interned from seeds (completions chased, ``_chase``): two rows of real
    documents with one id take the same terminals, complete alike and refuse alike after every
    sampled continuation, replayed by plain Earley scans on each row's own chart.  The chains
    ``_chase`` collapses (unary minus, nested brackets) share ids."""
    g = from_lark(ROOT / "grammars" / f"{name}.lark")
    tables = CompiledParserTables(g)
    docs = _docs(name, 4) + _CHAINS.get(name, [])
    if name == "python":
        docs = [b"\n".join(d.split(b"\n")[:30]) + b"\n" for d in docs]
    assert _compare_shared_ids(tables, [_parsed(tables, d) for d in docs], random.Random(11)) > 5


@pytest.mark.parametrize("name", ["json", "arithmetic"])
def test_row_ids_taken_from_the_scan_memo_parse_the_same(name, smol_vocab, smol_hf):
    """Under exact lexing a row made by one lexeme takes its id from the mask store's scan
    memo (``ByteParser._emit_one``) once masks were walked: those rows, compared with every
    other row of their id, still parse every sampled continuation the same."""
    from constrain.engine.matcher import Matcher

    g = from_lark(ROOT / "grammars" / f"{name}.lark", lexing="all")
    tables = CompiledParserTables(g)
    store = TokenStore(tables, smol_vocab)
    docs = _docs(name, 4) + _CHAINS.get(name, [])
    for d in docs:  # masks walked: the scan memo filled
        m = Matcher(g, smol_vocab, store=store)
        for t in smol_hf.encode(d.decode(), add_special_tokens=False).ids:
            m.next_token_mask()
            assert m.accept_token(t)
    charts, memo_ids = [], 0
    for d in docs:
        p = ByteParser(tables)
        for i in range(len(d)):
            before = set(p.chart)
            assert p.feed(d[i:i + 1])
            memo_ids += sum(p.chart[k].sig >= 0 for k in set(p.chart) - before)
            for th in p.threads:  # (as the mask key does at every position)
                row_sig(tables, p.chart, th[0])
        charts.append(p.chart)
    assert memo_ids > 10
    assert _compare_shared_ids(tables, charts, random.Random(3)) > 5


def test_chase_collapses_unary_chains():
    """After the first ``-`` of a run, every further ``-`` leaves a row with the same id (the
    completion chased to the run's start), so the structural memos stop growing with the run;
    the rows still differ in their items (their origins are the chain)."""
    g = from_lark(ROOT / "grammars" / "arithmetic.lark")
    tables = CompiledParserTables(g)
    p = ByteParser(tables)
    sigs = []
    for i in range(12):
        assert p.feed(b"-")
        (k, _, _, _), = p.threads
        sigs.append(row_sig(tables, p.chart, k))
    assert len(set(sigs[1:])) == 1, sigs
    assert p.feed(b"1") and p.is_complete()


def test_chase_stops_at_items_with_symbols_left():
    """A completion that leaves its waiting item short of its end (``s: "a" x "b"``) is not
    chased further: ``a -`` and ``c -`` wait for the same ``x`` but then need ``b`` and ``d``,
    so their rows keep two ids."""
    g = from_lark('''
        start: s
        s: "a" x "b" | "c" x "d"
        x: "-" x | "1"
    ''')
    tables = CompiledParserTables(g)
    sigs = {}
    for head in b"ac":
        p = ByteParser(tables)
        assert p.feed(bytes([head]) + b"---")
        k = max(th[0] for th in p.threads)  # (the row after the last "-")
        sigs[head] = row_sig(tables, p.chart, k)
        tail = b"1b" if head == ord("a") else b"1d"
        assert p.copy().feed(tail) and not p.copy().feed(tail[:1] + (b"d" if head == ord("a") else b"b"))
    assert sigs[ord("a")] != sigs[ord("c")]


def test_chase_stops_at_unit_rule_cycles():
    """A cycle of unit rules (``a: b``, ``b: a``) within one row ends the chase where it
    closes; the rows are still told apart by what they parse."""
    g = from_lark('''
        start: a
        a: b | "x" a | "y"
        b: a | "z" b | "w"
    ''')
    tables = CompiledParserTables(g)
    for doc in [b"xxzxzy", b"zzxw", b"xzxzxzxzw"]:
        p = ByteParser(tables)
        for i in range(len(doc)):
            assert p.feed(doc[i:i + 1])
            for th in p.threads:
                row_sig(tables, p.chart, th[0])
        assert p.is_complete()
    rng = random.Random(5)
    first = {}
    p = ByteParser(tables)
    for c in b"xzxzxzxzxzx":
        assert p.feed(bytes([c]))
    for rid in sorted(p.chart):
        sig = row_sig(tables, p.chart, rid)
        if sig in first:
            for _ in range(5):
                seq = _random_terms(tables, p.chart, first[sig], rng, 5)
                assert _replay(tables, p.chart, first[sig], seq) == _replay(tables, p.chart, rid, seq)
        else:
            first[sig] = rid


def test_flat_hash_table_against_a_dict():
    rng = random.Random(7)
    hk, n = np.full((8, 4), -1, np.int64), 0
    ref = {}
    for _ in range(5000):
        k = (rng.randrange(3), rng.randrange(400), rng.randrange(1 << 40))
        v = rng.randrange(-1, 1 << 30)
        if 2 * (n + 1) > hk.shape[0]:
            hk = ht_grow(hk)
        n += ht_put(hk, *k, v)
        ref[k] = v
        if rng.random() < 0.3:  # overwrite an existing key
            k2 = rng.choice(list(ref))
            n += ht_put(hk, *k2, v + 1)
            ref[k2] = v + 1
    assert n == len(ref)
    for k, v in ref.items():
        assert ht_get(hk, *k) == v
    assert ht_get(hk, 5, 1, 1) == H_ABSENT
    assert hk.shape[0] >= 2 * n


def test_flat_index_pools_survive_eviction_and_compaction():
    vocab = Vocabulary.byte_level([bytes([b]) for b in range(256)] + [b"ab" * k for k in range(1, 200)])
    g = from_lark('start: "a"+')
    store = TokenStore(CompiledParserTables(g), vocab)
    flat = _FlatIndex(store)
    rng = random.Random(3)
    live = {}
    shared = []
    for k in range(2):
        w = np.zeros(store.n_words, np.uint32)
        for t in rng.sample(range(vocab.n_vocab), 100 + k):
            w[t >> 5] |= np.uint32(1) << np.uint32(t & 31)
        shared.append(w)
    serial = 1000
    for step in range(600):
        serial += 1
        words = np.zeros(store.n_words, np.uint32)
        n_ids = rng.choice([1, 3, 30, 64, 65, 200, "shared"])  # sparse (<= 64), dense, and
        if n_ids == "shared":  # dense words another entry has (they share one pool row)
            words = shared[rng.randrange(2)].copy()
        for t in rng.sample(range(vocab.n_vocab), 0 if n_ids == "shared" else n_ids):
            words[t >> 5] |= np.uint32(1) << np.uint32(t & 31)
        e = _Entry(serial, words, [], np.zeros(0, np.int32))
        store._hold(e)  # dense words interned by content, as the store's _get does
        flat.register(e)
        live[serial] = e
        if live and rng.random() < 0.6:
            victim = rng.choice(list(live))
            flat.evict(live[victim])
            store._release(live.pop(victim))
            assert flat.ent[victim, E_FLAGS] == 0
    assert flat.sp_dead < flat.sp_used or flat.sp_used == 0
    for eid, e in live.items():
        row = flat.ent[eid]
        assert row[E_FLAGS] & FLAT_ALIVE
        got = np.zeros(store.n_words, np.uint32)
        if row[E_SLOT] >= 0:
            got |= flat.wpool[row[E_SLOT]]
        for t in flat.spool[row[E_S_START]:row[E_S_START] + row[E_S_LEN]]:
            got[t >> 5] |= np.uint32(1) << np.uint32(t & 31)
        assert np.array_equal(got, e.inside_words(store.n_words)), eid
        assert (e.ids is None) == (int(np.unpackbits(got.view(np.uint8)).sum()) > 64)
    # a pool row is shared exactly by the live entries with equal words, and by no other
    by_slot = {}
    for eid, e in live.items():
        if flat.ent[eid, E_SLOT] >= 0:
            by_slot.setdefault(int(flat.ent[eid, E_SLOT]), set()).add(e.words.tobytes())
    assert all(len(v) == 1 for v in by_slot.values())
    assert len(by_slot) == len({v for vs in by_slot.values() for v in vs})
    assert sum(h[1] for h in store._dense.values()) == sum(e.words is not None for e in live.values())


def _doc_masks(store, g, docs, vocab, hf) -> list[bytes]:
    """The mask at every token of ``docs`` (and after the last), walked on ``store``."""
    from constrain.engine.matcher import Matcher

    out = []
    for d in docs:
        m = Matcher(g, vocab, store=store)
        for t in hf.encode(d, add_special_tokens=False).ids + [None]:
            out.append(m.next_token_mask().tobytes())
            if t is not None:
                assert m.accept_token(t)
    return out


@pytest.mark.parametrize("name", ["go", "sql", "json"])
def test_feed_precheck_only_drops_feeds_the_parser_refuses(name, smol_vocab, smol_hf, monkeypatch):
    """Masks with the structural pre-check of munch-fallback feeds equal masks with every feed
    run by the reference parser, and the check does drop feeds (go: ``return /=`` and the like)."""
    import constrain.engine.store as store_mod

    g = from_lark(ROOT / "grammars" / f"{name}.lark")
    docs = [p.read_text() for p in sorted((DOCS / name / "accept").glob("*.txt"))[:3]]
    real = store_mod._MaskWalk._feed_fails
    verdicts = []

    def counting(self, meta, sig, A):
        v = real(self, meta, sig, A)
        verdicts.append(v)
        return v

    def masks(fails):
        monkeypatch.setattr(store_mod._MaskWalk, "_feed_fails", fails)
        return _doc_masks(TokenStore(CompiledParserTables(g), smol_vocab), g, docs, smol_vocab, smol_hf)

    assert masks(counting) == masks(lambda self, meta, sig, A: False)
    if name != "json":  # json's fallbacks (``1.`` + letter) die in the walk's own relex check
        assert any(verdicts), "the pre-check never dropped a feed"


@pytest.mark.parametrize("name", ["go", "sql", "json", "python"])
def test_feed_memo_masks_equal_real_feeds(name, smol_vocab, smol_hf, monkeypatch):
    """Masks whose reference-parser feeds come from the feed memo (walked in virtual frames,
    the parser not moved) equal masks that run every feed; on go the memo answers every feed
    of a repeated walk and the parser is replayed (``_materialize``) only where needed.
    python: the indentation post-lexer's NEWLINE feeds (bracket depth, indentation stack and
    the NEWLINE's bytes come from the key)."""
    import constrain.engine.store as store_mod

    g = from_lark(ROOT / "grammars" / f"{name}.lark")
    docs = [p.read_text() for p in sorted((DOCS / name / "accept").glob("*.txt"))[:3]]
    if name == "python":  # (its cold walk is ~20 ms a token: one document, its first 60 lines)
        docs = ["\n".join(docs[0].split("\n")[:60]) + "\n"]

    def masks(store, walks):
        for _ in range(walks):
            store.clear_mask_cache()  # (whole masks off: the walks run, feeds included)
            out = _doc_masks(store, g, docs, smol_vocab, smol_hf)
        return out

    memo_store = TokenStore(CompiledParserTables(g), smol_vocab)
    masks(memo_store, 1)
    feeds1, hits1 = memo_store.stats.feeds, memo_store.stats.feed_hits
    with_memo = masks(memo_store, 1)  # the second walk's feeds are memo hits
    plain_store = TokenStore(CompiledParserTables(g), smol_vocab)
    real_put = store_mod._memo_put
    # this store without the walk's memos: every feed run, every feed node tried (the
    # pre-check's verdicts, or under the indenter the memo of nodes the parser takes)
    monkeypatch.setattr(store_mod, "_memo_put", lambda memo, key, value: None
                        if memo is plain_store._feed_memo or memo is plain_store._live_feeds
                        else real_put(memo, key, value))
    assert with_memo == masks(plain_store, 1)
    assert not plain_store._feed_memo and not plain_store._live_feeds and plain_store.stats.feed_hits == 0
    if name in ("go", "python"):
        st = memo_store.stats
        assert st.feeds - feeds1 == st.feed_hits - hits1 > 0  # every feed of the second walk
    if name == "python":  # the nodes the parser refuses are not tried again
        assert st.feeds - feeds1 < feeds1 // 2


def _row_view(row):
    return (frozenset(row.items), {s: frozenset(w) for s, w in row.waiting.items()}, row.allowed, row.complete)


def _rows_equal_reference(tables, data: bytes) -> int:
    """Feed ``data`` byte by byte; every row the parser made must equal the item-by-item
    closure of its own seeds on the same chart.  Returns the rows checked."""
    p = ByteParser(tables)
    for i in range(len(data)):
        if not p.feed(data[i:i + 1]):
            break
    n = 0
    for rid, row in p.chart.items():
        ref = closed_row(tables, rid, row.seeds, p.chart)
        assert _row_view(row) == _row_view(ref), rid
        n += 1
    return n


@pytest.mark.parametrize("name", ["json", "sql", "go", "python", "arithmetic"])
def test_rows_closed_by_predicted_sets_equal_the_reference_closure(name):
    g = from_lark(ROOT / "grammars" / f"{name}.lark")
    tables = CompiledParserTables(g)
    assert sum(_rows_equal_reference(tables, d) for d in _docs(name, 8)) > 8


def test_rows_closed_by_predicted_sets_on_random_grammars():
    """Nullable chains, left recursion and empty alternatives (the cases the prediction sets
    must get right), on the random grammars of test_random_grammars."""
    from hypothesis import HealthCheck, assume, given, settings, strategies as st

    from constrain.errors import GrammarError
    from tests.engine.test_random_grammars import ALPHABET, grammars

    @given(grammars(), st.binary(max_size=8).map(lambda b: bytes(ALPHABET[x % 3] for x in b)))
    @settings(deadline=None, max_examples=150,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
    def check(src, data):
        try:
            g = from_lark(src, lexing="all")
        except GrammarError:
            assume(False)
        _rows_equal_reference(CompiledParserTables(g), data)

    check()
