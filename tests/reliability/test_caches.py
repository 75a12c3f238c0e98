"""On-disk caches: concurrent writers, truncated / corrupted / foreign files (detected,
discarded, rebuilt, never used), and version changes (keyed by constrain's version)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

import constrain
from constrain import _cache
from constrain.tokenizers import Vocabulary
from constrain.tokenizers.trie import build_trie, cached_trie

EXTRA = [b"ab", b"abc", b"hello", b" world", b"\xe2\x82", b"\xac"]


@pytest.fixture()
def cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("CONSTRAIN_CACHE_DIR", str(tmp_path))
    return tmp_path


def vocab(extra=EXTRA):
    return Vocabulary.byte_level(extra)


def same(a, b):
    return all(np.array_equal(x, y) for x, y in zip(a._arrays().values(), b._arrays().values()))


def trie_files(root: Path):
    return sorted((root / "tries").glob("*.npz"))


def args(v):
    return v.fingerprint, list(v.all_token_bytes), v.text_mask


def test_written_once_then_read(cache_dir):
    v = vocab()
    t1 = cached_trie(*args(v))
    (f,) = trie_files(cache_dir)
    assert constrain.__version__ in f.name
    t2 = cached_trie(*args(v))
    assert same(t1, t2)


def test_concurrent_writers_threads(cache_dir):
    v = vocab()
    ref = build_trie(list(v.all_token_bytes), v.text_mask)
    out, errs = [], []

    def run():
        try:
            out.append(cached_trie(*args(v)))
        except Exception as e:  # noqa: BLE001
            errs.append(e)

    ths = [threading.Thread(target=run) for _ in range(16)]
    for t in ths:
        t.start()
    for t in ths:
        t.join(60)
    assert not errs and len(out) == 16 and all(same(t, ref) for t in out)
    files = trie_files(cache_dir)
    assert len(files) == 1 and not list((cache_dir / "tries").glob("*.tmp"))
    assert same(cached_trie(*args(v)), ref)


def test_concurrent_writers_processes(cache_dir):
    code = ("from constrain.tokenizers import Vocabulary; import sys;"
            f"v = Vocabulary.byte_level({EXTRA!r}); t = v.trie; print(t.n_nodes)")
    procs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              env={**os.environ, "CONSTRAIN_CACHE_DIR": str(cache_dir)}) for _ in range(4)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1][-500:] for o in outs]
    assert len({o[0] for o in outs}) == 1
    (f,) = trie_files(cache_dir)
    assert same(cached_trie(*args(vocab())), build_trie(*args(vocab())[1:]))


@pytest.mark.parametrize("damage", ["truncate", "flip", "zero", "garbage", "empty", "header"])
def test_damaged_files_are_detected_and_rebuilt(cache_dir, damage, caplog):
    v = vocab()
    ref = cached_trie(*args(v))
    (f,) = trie_files(cache_dir)
    data = bytearray(f.read_bytes())
    if damage == "truncate":
        data = data[: len(data) // 2]
    elif damage == "flip":
        data[len(data) - 200] ^= 0x55
    elif damage == "zero":
        data[len(data) // 2: len(data) // 2 + 64] = bytes(64)
    elif damage == "garbage":
        data = bytearray(os.urandom(len(data)))
    elif damage == "empty":
        data = bytearray()
    else:
        data = data.replace(b'"sha256"', b'"sha257"', 1)
    f.write_bytes(bytes(data))
    with caplog.at_level("WARNING", logger="constrain.cache"):
        t = cached_trie(*args(v))
    assert same(t, ref)
    assert "discarding cache file" in caplog.text
    # rebuilt and rewritten: the next read is a clean hit
    caplog.clear()
    with caplog.at_level("WARNING", logger="constrain.cache"):
        assert same(cached_trie(*args(v)), ref)
    assert "discarding" not in caplog.text


def test_file_for_another_vocabulary_is_never_used(cache_dir):
    a, b = vocab(), vocab([b"xyz"])
    cached_trie(*args(a))
    (fa,) = trie_files(cache_dir)
    # plant a's (valid, checksummed) file under b's name
    tb = build_trie(*args(b)[1:])
    name_b = fa.name.replace(a.fingerprint, b.fingerprint)
    (cache_dir / "tries" / name_b).write_bytes(fa.read_bytes())
    assert same(cached_trie(*args(b)), tb)


def test_version_change(cache_dir, monkeypatch):
    v = vocab()
    ref = cached_trie(*args(v))
    (old,) = trie_files(cache_dir)
    monkeypatch.setattr(constrain, "__version__", "9.9.9")
    t = cached_trie(*args(v))
    assert same(t, ref)
    names = [p.name for p in trie_files(cache_dir)]
    assert any("9.9.9" in n for n in names) and old.name in names  # keyed apart, never mixed
    # a file of another version under this version's name is discarded, not read
    cur = next(p for p in trie_files(cache_dir) if "9.9.9" in p.name)
    cur.write_bytes(old.read_bytes())
    assert _cache.read_verified(cur, v.fingerprint) is None and not cur.exists()


def test_format_change_is_discarded(cache_dir, monkeypatch):
    v = vocab()
    cached_trie(*args(v))
    (f,) = trie_files(cache_dir)
    monkeypatch.setattr(_cache, "CACHE_FORMAT", _cache.CACHE_FORMAT + 1)
    assert _cache.read_verified(f, v.fingerprint) is None


def test_cache_off(monkeypatch, tmp_path):
    monkeypatch.setenv("CONSTRAIN_CACHE_DIR", "off")
    v = vocab()
    assert same(cached_trie(*args(v)), build_trie(*args(v)[1:]))


def test_unwritable_cache_dir(monkeypatch, tmp_path):
    d = tmp_path / "ro"
    d.mkdir()
    (d / "tries").write_text("a file where a directory should be")
    monkeypatch.setenv("CONSTRAIN_CACHE_DIR", str(d))
    v = vocab()
    assert same(cached_trie(*args(v)), build_trie(*args(v)[1:]))


# ---------------------------------------------------------------- fixed automata (cached_dfa)
def _dfa_files(root: Path):
    return sorted((root / "dfa").glob("*.npz"))


def test_cached_dfa_built_once_then_read_equal(cache_dir):
    from constrain.grammar.dfa import cached_dfa
    from constrain.grammar.regex import compile_regex

    calls = []

    def build():
        calls.append(1)
        return compile_regex(r"[a-z]+@[a-z]+\.(com|org)")

    a = cached_dfa("test", "k1", build)
    (f,) = _dfa_files(cache_dir)
    b = cached_dfa("test", "k1", build)
    assert calls == [1]  # the second call read the file
    assert np.array_equal(a.trans, b.trans) and np.array_equal(a.accept, b.accept) and a == b
    assert b.matches(b"bob@mail.org") and not b.matches(b"bob@mail.net")
    # another key is another file, never the first one's automaton
    c = cached_dfa("test", "k2", lambda: compile_regex("x"))
    assert c.matches(b"x") and not c.matches(b"bob@mail.org") and len(_dfa_files(cache_dir)) == 2


@pytest.mark.parametrize("damage", ["truncate", "flip", "garbage"])
def test_cached_dfa_damaged_file_is_rebuilt(cache_dir, damage):
    from constrain.grammar.dfa import cached_dfa
    from constrain.grammar.regex import compile_regex

    ref = cached_dfa("test", "k", lambda: compile_regex("ab+c"))
    (f,) = _dfa_files(cache_dir)
    data = f.read_bytes()
    if damage == "truncate":
        f.write_bytes(data[:-7])
    elif damage == "flip":
        f.write_bytes(data[:-3] + bytes([data[-3] ^ 0xFF]) + data[-2:])
    else:
        f.write_bytes(b"not a cache file at all")
    calls = []
    got = cached_dfa("test", "k", lambda: calls.append(1) or compile_regex("ab+c"))
    assert calls == [1] and got == ref and len(_dfa_files(cache_dir)) == 1


def test_cached_dfa_payload_that_is_no_automaton_is_rebuilt(cache_dir):
    # a file whose checksum is right but whose payload does not decode (a bug elsewhere, or a
    # hand-made file) is discarded and rebuilt, never raised to the caller
    from constrain.grammar.dfa import cached_dfa
    from constrain.grammar.regex import compile_regex

    cached_dfa("test", "k", lambda: compile_regex("a"))
    (f,) = _dfa_files(cache_dir)
    _cache.write_verified(f, "test:k", b"\x00\x01 not zlib")
    assert cached_dfa("test", "k", lambda: compile_regex("a")).matches(b"a")


def test_cached_dfa_off_builds(monkeypatch):
    from constrain.grammar.dfa import cached_dfa
    from constrain.grammar.regex import compile_regex

    monkeypatch.setenv("CONSTRAIN_CACHE_DIR", "off")
    calls = []
    for _ in range(2):
        cached_dfa("test", "k", lambda: calls.append(1) or compile_regex("a"))
    assert calls == [1, 1]


def test_format_dfa_from_disk_equals_built(cache_dir):
    # the format DFAs are read from disk in later processes: the file must hold the very
    # automaton the builder makes (exactness of the formats is tested in tests/jsonschema)
    from constrain.jsonschema import formats
    from constrain.jsonschema.strings import _json_string_build, _json_string_dfa

    for name in ("date-time", "ipv6"):
        built = formats._BUILDERS[name](False)
        formats._build.cache_clear()
        first = formats._build(name, False)  # builds and writes
        formats._build.cache_clear()
        again = formats._build(name, False)  # reads
        assert np.array_equal(again.trans, built.trans) and np.array_equal(again.accept, built.accept)
        assert first == again
    big = formats._build("date-time", False)
    assert big.n_states >= 256  # (large enough for the JSON-string form to go to disk)
    _json_string_dfa.cache_clear()
    s1 = _json_string_dfa(big)
    _json_string_dfa.cache_clear()
    s2 = _json_string_dfa(big)
    ref = _json_string_build(big)
    assert np.array_equal(s2.trans, ref.trans) and s1 == s2 == ref
    assert s2.matches(b'"2024-01-02T03:04:05Z"') and not s2.matches(b'"2024-13-02T03:04:05Z"')
    assert any(p.name.startswith("jsonstr-") for p in _dfa_files(cache_dir))
    formats._build.cache_clear()
    _json_string_dfa.cache_clear()
