"""The compiled warm walk (``apply_flat`` over the store's flat index) against the Python walk.

The Python ``_MaskWalk._apply`` is the reference: a store built with ``flat = None`` takes it
for every mask (the fast store is forced to compile every walk, short ones included; in use
only root entries whose last walk was long go compiled).  Both must give the same masks at every token of real documents, with the
LRU evicting entries under the walk's feet, and with threads filling masks concurrently.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from constrain.engine.earley import CompiledParserTables
from constrain.engine.matcher import Matcher
from constrain.engine.store import TokenStore
from constrain.grammar import from_lark

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "tests" / "data" / "grammars"


def _setup(name):
    g = from_lark((ROOT / "grammars" / f"{name}.lark").read_text())
    docs = [p.read_text() for p in sorted((DOCS / name / "accept").glob("*.txt"))[:4]]
    return g, docs


def _walk(store, g, vocab, hf, text):
    m = Matcher(g, vocab, store=store)
    out = []
    for t in hf.encode(text, add_special_tokens=False).ids + [None]:
        out.append(m.next_token_mask().tobytes())
        if t is None:
            return out
        assert m.accept_token(t)


def _fast_equals_reference(g, docs, vocab, hf, max_bytes, reps):
    """Walk ``docs`` ``reps`` times (cold, then warm with the whole-mask cache cleared) on a
    store with the flat index and on one without (the Python walk, the reference); every mask
    equal.  Returns the fast store."""
    fast = TokenStore(CompiledParserTables(g), vocab, max_bytes=max_bytes)
    slow = TokenStore(CompiledParserTables(g), vocab)
    slow.flat = None
    assert fast.flat is not None
    for rep in range(reps):
        for d in docs:
            assert _walk(fast, g, vocab, hf, d) == _walk(slow, g, vocab, hf, d), rep
        fast.clear_mask_cache()
        slow.clear_mask_cache()
    return fast


@pytest.mark.parametrize("name", ["arithmetic", "json", "sql", "go", "python"])
@pytest.mark.parametrize("max_bytes", [512 << 20, 8 << 10])  # roomy, and evicting all the time
def test_flat_walk_equals_python_walk(name, max_bytes, smol_vocab, smol_hf, monkeypatch):
    import constrain.engine.store as store_mod

    monkeypatch.setattr(store_mod, "_FLAT_MIN_SPAN", 0)  # every walk compiled, however short
    g, docs = _setup(name)
    fast = _fast_equals_reference(g, docs, smol_vocab, smol_hf, max_bytes, 2)
    if max_bytes == 8 << 10:
        assert fast.stats.evictions > 0


def test_flat_walk_from_threads(smol_vocab, smol_hf, monkeypatch):
    import constrain.engine.store as store_mod

    monkeypatch.setattr(store_mod, "_FLAT_MIN_SPAN", 0)
    g, docs = _setup("arithmetic")
    ref = TokenStore(CompiledParserTables(g), smol_vocab)
    ref.flat = None
    want = {d: _walk(ref, g, smol_vocab, smol_hf, d) for d in docs}
    shared = TokenStore(CompiledParserTables(g), smol_vocab, max_bytes=2 << 20)
    got: dict = {}
    errors: list = []

    def run(d, k):
        try:
            for _ in range(2):
                got[(d, k)] = _walk(shared, g, smol_vocab, smol_hf, d)
                shared.clear_mask_cache()
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=run, args=(d, k)) for k in range(2) for d in docs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for (d, _), masks in got.items():
        assert masks == want[d]


def test_indenter_walk_carries_bracket_depth(smol_vocab, monkeypatch):
    """Under the indentation post-lexer the compiled walk carries the bracket depth: inside
    brackets a NEWLINE leaves the row unchanged and a closing bracket is allowed, outside one
    the NEWLINE goes to the parser (the indentation), and masks equal the Python walk's."""
    import constrain.engine.store as store_mod

    monkeypatch.setattr(store_mod, "_FLAT_MIN_SPAN", 0)
    g = from_lark((ROOT / "grammars" / "python.lark").read_text())
    fast = TokenStore(CompiledParserTables(g), smol_vocab)
    slow = TokenStore(CompiledParserTables(g), smol_vocab)
    slow.flat = None
    assert fast.flat is not None
    prefixes = [b"def f(x):\n    return (x +", b"x = [1,\n", b"x = ((1,\n 2", b"if x:\n    y = f(",
                b"def g():\n    return 1\n", b"x = {1: (2,", b"print(x)\n"]
    for text in prefixes:
        ms = [Matcher(g, smol_vocab, store=st) for st in (fast, slow)]
        for m in ms:
            assert m.accept_bytes(text)
        got, want = (m.next_token_mask() for m in ms)
        assert np.array_equal(got, want), text
        assert np.any(got)
    n_pl = fast.flat.grp[: fast.flat.n_groups, store_mod.G_PL]
    assert (n_pl != store_mod.PL_PLAIN).any()  # the post-lexer's classes reached the kernel


def _check_interned(store):
    """Entries with equal dense words share one array; the store counts each array once."""
    by_content = {}
    for e in store._entries.values():
        assert e.words is None or e.ids is None
        if e.ids is not None:
            assert 0 < e.ids.shape[0] <= 64 and np.all(np.diff(e.ids) > 0)
        if e.words is not None:
            by_content.setdefault(e.words.tobytes(), set()).add(id(e.words))
    assert all(len(ids) == 1 for ids in by_content.values())
    assert len(store._dense) == len(by_content)
    held = sum(h[1] for h in store._dense.values())
    assert held == sum(e.words is not None for e in store._entries.values())
    dense = sum(h[0].nbytes for h in store._dense.values())
    assert store.stats.bytes == sum(e.nbytes for e in store._entries.values()) + dense
    return len(by_content), held


@pytest.mark.parametrize("name", ["json", "python"])
def test_dense_words_are_shared_and_counted_once(name, smol_vocab, smol_hf):
    g, docs = _setup(name)
    store = TokenStore(CompiledParserTables(g), smol_vocab)
    for d in docs:
        _walk(store, g, smol_vocab, smol_hf, d)
    distinct, held = _check_interned(store)
    assert held > distinct  # (these grammars do repeat dense words across entries)
    # under a cap that evicts all the time the counts stay exact, and the masks stay right
    small = TokenStore(CompiledParserTables(g), smol_vocab, max_bytes=8 << 10)
    ref = TokenStore(CompiledParserTables(g), smol_vocab)
    ref.flat = None
    for d in docs:
        assert _walk(small, g, smol_vocab, smol_hf, d) == _walk(ref, g, smol_vocab, smol_hf, d)
        _check_interned(small)
    assert small.stats.evictions > 0


def test_apply_one_is_its_buffer_size_blind(smol_vocab, smol_hf, monkeypatch):
    """``apply_one`` / ``apply_two`` / ``apply_many`` (the lean kernels of warm short walks) on
    the rows real warm walks gave them: the same mask and count whatever buffer size they are
    handed (rounded up to a power of two, which their ``done`` table needs: a size of 17 or
    100 must not probe forever), or ``-1`` when the buffers are smaller than the walk, never
    a wrong mask; and ``apply_two`` is ``apply_many`` of its two rows."""
    import constrain.engine.store as store_mod
    from constrain.engine.store_kernels import apply_many, apply_one, apply_two
    from constrain.jsonschema import compile_json_schema

    calls = []  # (rows, budget, words, the store) of every call: replayed on the store's tables as
    stores = []  # they are then (they only grow; a call's own arrays may be stale by then)

    def spy_one(eid, sig, aid, paren, rows, budget, out, *tables):
        calls.append((np.array([[eid, sig, aid, paren]], np.int64), budget, out.shape[0], len(stores) - 1))
        return apply_one(eid, sig, aid, paren, rows, budget, out, *tables)

    def spy_two(eid, sig, aid, paren, eid2, sig2, aid2, paren2, rows, budget, out, *tables):
        calls.append((np.array([[eid, sig, aid, paren], [eid2, sig2, aid2, paren2]], np.int64), budget, out.shape[0],
                      len(stores) - 1))
        return apply_two(eid, sig, aid, paren, eid2, sig2, aid2, paren2, rows, budget, out, *tables)

    def spy_many(work, rows, budget, out, *tables):
        calls.append((work.copy(), budget, out.shape[0], len(stores) - 1))
        return apply_many(work, rows, budget, out, *tables)

    monkeypatch.setattr(store_mod, "apply_one", spy_one)
    monkeypatch.setattr(store_mod, "apply_two", spy_two)
    monkeypatch.setattr(store_mod, "apply_many", spy_many)
    g_json, docs = _setup("json")
    schema = {"type": "object", "properties": {"id": {"type": "integer"}, "tags": {"type": "array",
                                                                                 "items": {"type": "string"}}}}
    g_schema = compile_json_schema(schema, whitespace="flexible")
    docs_schema = ['{"id": 12, "tags": ["a", "bc"], "other": {"x": [1.5, null]}}', '{"id": -3, "tags": [], "zz": ""}']
    for g, ds in ((g_json, docs), (g_schema, docs_schema)):
        store = TokenStore(CompiledParserTables(g), smol_vocab)
        stores.append(store)
        for _ in range(2):
            for d in ds:
                _walk(store, g, smol_vocab, smol_hf, d)
            store.clear_mask_cache()
    assert len(calls) >= 10 and any(w.shape[0] > 1 for w, *_ in calls)
    complete = 0
    for work, budget, n_words, si in calls[:300]:
        got = {}
        flat = stores[si].flat
        for rows in (1, 5, 17, 100, 1024, 4096):
            out = np.zeros(n_words, np.uint32)
            with flat.lock:  # (as the store calls them: the tables change only under it)
                tables = (flat.ent, flat.grp, flat.wpool, flat.spool, flat.hk, flat.sig_aid)
                if work.shape[0] == 1:
                    n = apply_one(*work[0].tolist(), rows, budget, out, *tables)
                else:
                    n = apply_many(work, rows, budget, out, *tables)
                if work.shape[0] == 2:
                    out2 = np.zeros(n_words, np.uint32)
                    n2 = apply_two(*work[0].tolist(), *work[1].tolist(), rows, budget, out2, *tables)
                    assert (n2, out2.tobytes()) == (n, out.tobytes()), rows
            got[rows] = (n, out.tobytes())
        n_big, out_big = got[4096]
        if n_big < 0:
            continue
        complete += 1
        for rows, (n, out) in got.items():
            assert n in (-1, n_big), rows
            if n == n_big:
                assert out == out_big, rows
        assert got[1][0] == n_big or n_big > 8  # (16 rows hold a walk of 8 entries)
    assert complete >= 5


_SCHEMA = {"type": "object", "properties": {
    "id": {"type": "integer", "minimum": 0}, "name": {"type": "string", "maxLength": 12},
    "tags": {"type": "array", "items": {"enum": ["a", "bc", "def"]}},
    "child": {"type": "object", "properties": {"x": {"type": "number"}, "y": {"type": ["null", "boolean"]}},
              "required": ["x"]}},
    "required": ["id", "name"]}
_SCHEMA_DOCS = ['{"id": 7, "name": "ab c", "tags": ["a", "def", "bc"], "child": {"x": -1.5e3, "y": null}}',
                '{"id": 0, "name": "", "tags": [], "child": {"x": 2, "y": true}}',
                '{"id": 12345, "name": "été \\"q\\"", "tags": ["bc"]}']  # (schema order, raw non-ASCII)


@pytest.mark.parametrize("name", ["arithmetic", "json", "schema"])
@pytest.mark.parametrize("max_bytes", [512 << 20, 8 << 10])
def test_compiled_lean_fill_equals_python_walk(name, max_bytes, smol_vocab, smol_hf):
    """Exact lexing (the JSON-Schema compiler's and Lark's default Earley): a whole-mask miss
    whose walk the tables hold is one ``fill_lean`` call.  Its masks equal the Python walk's at
    every token, cold then warm (whole-mask cache cleared), with the LRU evicting entries."""
    from constrain.jsonschema import compile_json_schema

    if name == "schema":
        g, docs = compile_json_schema(_SCHEMA, whitespace="flexible"), _SCHEMA_DOCS
    else:
        _, docs = _setup(name)
        g = from_lark((ROOT / "grammars" / f"{name}.lark").read_text(), lexing="all")
    fast = _fast_equals_reference(g, docs, smol_vocab, smol_hf, max_bytes, 3)
    assert fast._plain
    if max_bytes == 512 << 20:
        assert fast.stats.compiled_fills > 0
    else:
        assert fast.stats.evictions > 0
