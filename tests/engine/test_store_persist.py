"""Mask stores that outlive their process: snapshots, the disk cache, and ``precompute()``.

A store is only useful across processes if a loaded one gives exactly the masks a fresh one
gives; the oracle here is :func:`constrain.testing.naive.trie_mask` (itself checked against the
brute-force feed of every token), at cut points of real corpus documents.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from constrain.engine import matcher as matcher_mod
from constrain.engine.earley import ByteParser, CompiledParserTables
from constrain.engine.matcher import Matcher, get_store
from constrain.engine.store import TokenStore
from constrain.errors import CacheVersionError
from constrain.grammar import from_lark
from constrain.testing.naive import trie_mask
from constrain.tokenizers import Vocabulary

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "tests" / "data" / "grammars"


def _grammar(name):
    return from_lark((ROOT / "grammars" / f"{name}.lark").read_text())


def _docs(name, n=3):
    return [p.read_bytes() for p in sorted((DOCS / name / "accept").iterdir())[:n]]


def _masks_along(store, grammar, hf, vocab, text: bytes, every: int = 1):
    """(prefix bytes, mask) at every ``every``-th token of ``text``'s tokenization, and at the end."""
    ids = hf.encode(text.decode(), add_special_tokens=False).ids
    m = Matcher(grammar, vocab, store=store)
    out = []
    for i, t in enumerate(ids + [None]):
        if i % every == 0 or t is None:
            out.append((m.output, m.next_token_mask()))
        if t is None:
            break
        assert m.accept_token(t)
    return out


def _check_against_oracle(store, grammar, hf, vocab, text, every):
    tables = CompiledParserTables(grammar)
    for prefix, mask in _masks_along(store, grammar, hf, vocab, text, every):
        p = ByteParser(tables)
        assert p.feed(prefix)
        want = trie_mask(p, vocab)
        if p.is_complete():
            want[list(vocab.eos_ids)] = True
        assert np.array_equal(mask, want), prefix


@pytest.mark.parametrize("name", ["json", "sql"])  # exact lexing and maximal munch
def test_snapshot_round_trip_is_exact_and_warm(name, smol_hf, smol_vocab):
    g = _grammar(name)
    a = TokenStore(CompiledParserTables(g), smol_vocab)
    docs = _docs(name)
    for d in docs:
        _masks_along(a, g, smol_hf, smol_vocab, d)
    b = TokenStore.from_snapshot(a.snapshot(), smol_vocab, g)
    assert b.n_entries == a.n_entries and b.tables is not a.tables
    b.clear_mask_cache()
    built = b.stats.entries_built
    for d in docs:  # same documents: nothing to build, same masks
        assert [m.tobytes() for _, m in _masks_along(b, g, smol_hf, smol_vocab, d)] == \
            [m.tobytes() for _, m in _masks_along(a, g, smol_hf, smol_vocab, d)]
    assert b.stats.entries_built == built
    # a document the snapshot has not seen: the loaded tables keep growing, exactly
    other = sorted((DOCS / name / "accept").iterdir())[-1].read_bytes()
    _check_against_oracle(b, g, smol_hf, smol_vocab, other, every=7)


def test_snapshot_refuses_another_vocabulary_or_grammar(smol_vocab):
    g = _grammar("json")
    s = TokenStore(CompiledParserTables(g), smol_vocab)
    data = s.snapshot()
    with pytest.raises(CacheVersionError, match="vocabulary"):
        TokenStore.from_snapshot(data, Vocabulary.byte_level(), g)
    with pytest.raises(CacheVersionError, match="grammar"):
        TokenStore.from_snapshot(data, smol_vocab, _grammar("arithmetic"))


def test_snapshot_while_other_threads_fill(smol_hf, smol_vocab):
    g = _grammar("json")
    s = TokenStore(CompiledParserTables(g), smol_vocab)
    docs = _docs("json", 4)
    errors: list = []

    def run(d):
        try:
            _masks_along(s, g, smol_hf, smol_vocab, d)
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=run, args=(d,)) for d in docs]
    for t in threads:
        t.start()
    snaps = [s.snapshot() for _ in range(3)]
    for t in threads:
        t.join()
    assert not errors
    for data in snaps:  # each snapshot, taken mid-walk, is a consistent store
        b = TokenStore.from_snapshot(data, smol_vocab, g)
        _check_against_oracle(b, g, smol_hf, smol_vocab, docs[1], every=5)


@pytest.mark.parametrize("name", ["json", "sql", "arithmetic"])
def test_precompute_is_exact(name, smol_hf, smol_vocab):
    g = _grammar(name)
    s = TokenStore(CompiledParserTables(g), smol_vocab)
    r = s.precompute(max_rows=60, samples=3, max_seconds=20, max_entry_bytes=48 << 20)
    assert r.entries_built == s.n_entries > 0
    assert r.masks > 0 and r.mask_bytes <= s.max_mask_bytes and r.documents <= 3
    for d in _docs(name, 2):  # precomputed entries and whole masks, against the oracle
        _check_against_oracle(s, g, smol_hf, smol_vocab, d, every=3)


def test_precompute_budgets_and_completeness(smol_vocab):
    g = from_lark('start: "a" | "b" "c"\n')
    s = TokenStore(CompiledParserTables(g), smol_vocab)
    r = s.precompute()
    assert r.complete  # a finite language: every configuration reached
    m = Matcher(g, smol_vocab, store=s)
    built = s.stats.entries_built
    for text in (b"a", b"bc"):
        m.reset()
        assert m.accept_bytes(text) and m.is_complete()
        m.next_token_mask()
    assert s.stats.entries_built == built  # nothing left to build
    big = TokenStore(CompiledParserTables(_grammar("json")), smol_vocab)
    r2 = big.precompute(max_rows=3, samples=0)
    assert r2.rows == 3 and r2.documents == 0 and not r2.complete  # recursion: cut by the budget


def test_precompute_documents_reach_deep_rows(smol_hf, smol_vocab):
    """Breadth first never reaches row 12 of a nested document; the document pass does, and
    then a walk of that document builds nothing."""
    g = _grammar("json")
    doc = b'{"a": {"b": {"c": [[{"d": [1, {"e": "deep"}]}]]}}}'
    s = TokenStore(CompiledParserTables(g), smol_vocab)
    s.precompute(documents=[doc], samples=0, max_rows=5)
    built = s.stats.entries_built
    s.clear_mask_cache()
    _check_against_oracle(s, g, smol_hf, smol_vocab, doc, every=1)
    assert s.stats.entries_built == built


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("CONSTRAIN_CACHE_DIR", str(tmp_path))
    # a fresh "process": no in-memory tables or stores
    monkeypatch.setattr(matcher_mod, "_tables_cache", {})
    monkeypatch.setattr(matcher_mod, "_store_cache", {})
    return tmp_path


def test_disk_cache_between_processes(cache_dir, smol_hf, smol_vocab):
    g = _grammar("json")
    s = get_store(g, smol_vocab, persist=True)
    assert s.n_entries == 0
    doc = _docs("json", 1)[0]
    first = _masks_along(s, g, smol_hf, smol_vocab, doc)
    path = s.save()
    assert path is not None and path.exists() and path.parent == cache_dir / "stores"
    matcher_mod._store_cache.clear()
    matcher_mod._tables_cache.clear()
    t = get_store(g, smol_vocab, persist=True)
    assert t is not s and t.n_entries == s.n_entries
    assert matcher_mod._tables_cache[g.fingerprint] is t.tables  # store and tables travel together
    assert Matcher(g, smol_vocab).store is t
    built = t.stats.entries_built
    t.clear_mask_cache()
    again = _masks_along(t, g, smol_hf, smol_vocab, doc)
    assert t.stats.entries_built == built
    assert [m.tobytes() for _, m in again] == [m.tobytes() for _, m in first]
    # without persist a fresh process starts empty
    matcher_mod._store_cache.clear()
    matcher_mod._tables_cache.clear()
    assert get_store(g, smol_vocab).n_entries == 0


def test_corrupt_store_file_is_discarded(cache_dir, smol_vocab):
    g = _grammar("json")
    s = get_store(g, smol_vocab, persist=True)
    Matcher(g, smol_vocab, store=s).next_token_mask()
    path = s.save()
    data = bytearray(path.read_bytes())
    data[-10] ^= 0xFF
    path.write_bytes(bytes(data))
    assert TokenStore.load(g, smol_vocab) is None and not path.exists()


def test_maybe_save_and_request_finished(cache_dir, smol_vocab):
    from constrain.integrations._common import request_finished

    g = _grammar("json")
    s = get_store(g, smol_vocab, persist=True)
    assert not s.save_due()  # nothing built yet
    m = Matcher(g, smol_vocab, store=s)
    m.next_token_mask()
    assert s.save_due() and s.maybe_save()
    assert not s.save_due()  # nothing new since
    m.accept_bytes(b'{"a": [1')
    m.next_token_mask()
    assert not s.save_due(min_interval_s=3600) and s.save_due(min_interval_s=0)
    request_finished(s)  # due only after the interval (30 s by default): no save thread
    assert not [t for t in threading.enumerate() if t.name == "constrain-store-save"]
    n = s.n_entries
    assert s.maybe_save(min_interval_s=0)
    assert TokenStore.load(g, smol_vocab).n_entries == n


def test_oversized_snapshot_is_not_saved(cache_dir, smol_vocab):
    g = _grammar("json")
    s = get_store(g, smol_vocab, persist=True)
    Matcher(g, smol_vocab, store=s).next_token_mask()
    assert s.save(max_file_bytes=1000) is None and not s.disk_path().exists()
    assert s.save() is not None


def test_caching_off_means_no_files(monkeypatch, smol_vocab):
    monkeypatch.setenv("CONSTRAIN_CACHE_DIR", "off")
    s = TokenStore(CompiledParserTables(_grammar("json")), smol_vocab)
    assert s.disk_path() is None and s.save() is None
    assert TokenStore.load(s.tables.grammar, smol_vocab) is None
