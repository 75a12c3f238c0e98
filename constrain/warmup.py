"""Compile every numba kernel once, so the first real mask pays no JIT.

numba compiles a kernel on its first call (about a second for all of constrain's) and, with
``cache=True`` (:mod:`constrain._jit`), writes the machine code next to the module, so every
later process loads it in milliseconds.  A server or a CI image calls :func:`warmup` (or runs
``constrain warmup``) once after installing; a library user pays the same cost on the first
mask instead.  Each part runs on a tiny grammar and a byte-level vocabulary, so the call does
no real work beyond compiling (or loading) the kernels.
"""

from __future__ import annotations

import time


def warmup(*, diffusion: bool = True, formats: bool = False) -> dict[str, float]:
    """Compile (or load from numba's cache) the kernels of the trie, the mask store and, with
    ``diffusion``, the infilling checker; with ``formats``, build every JSON Schema format's
    automaton and its JSON-string form into the disk cache (:func:`~constrain.grammar.dfa.cached_dfa`;
    ~15 s once per installation, then a schema using ``"format": "email"`` compiles in tens of
    milliseconds instead of ~1.1 s).  Returns seconds per part; a second call in the same
    process costs almost nothing, one in a new process is the cached-load time."""
    from constrain.engine.matcher import Matcher
    from constrain.grammar import from_lark
    from constrain.tokenizers import Vocabulary

    times: dict[str, float] = {}
    t0 = time.perf_counter()
    vocab = Vocabulary.byte_level(extra=[b"ab", b"a,", b"[a"])
    vocab.trie  # trie kernels
    times["trie"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    from constrain.jsonschema import compile_json_schema

    # both lexing policies take other kernel paths, and a JSON Schema grammar (its compiler's
    # modules, the meta-schema validator) others again
    grammars = [(from_lark(lexing + 'start: "[" item ("," item)* "]"\nitem: /a+/ | "b"\n%ignore " "\n'), b"[a, b]")
                for lexing in ("", "// lexer: basic\n")]
    # (an object with other keys allowed: the string algebra's products and complement; a
    # bounded number; the formats module, loaded but no format built: those are per schema)
    import constrain.jsonschema.formats  # noqa: F401

    grammars.append((compile_json_schema({"type": "array", "items": {"type": "string", "maxLength": 3}},
                                         whitespace="flexible"), b'["a", "b"]'))
    grammars.append((compile_json_schema({"type": "object", "properties": {"a": {"type": "integer", "maximum": 9}},
                                          "patternProperties": {"^b": {"enum": ["x", 1]}}},
                                         whitespace="flexible"), b'{"a": 1, "bc": "x", "c": null}'))
    for g, text in grammars:
        m = Matcher(g, vocab)
        for b in text:
            m.next_token_mask()
            m.accept_bytes(bytes([b]))
        m.next_token_mask()
    # kernels a large walk reaches that these tiny ones do not: the memo tables' growth, and
    # the lean walk of a position with three or more readings (called here with none)
    import numpy as np

    from constrain.engine.store_kernels import apply_many, ht_grow

    ht_grow(np.full((2, 4), -1, np.int64))
    flat = m.store.flat
    if flat is not None:
        with flat.lock:
            apply_many(np.zeros((0, 4), np.int64), 1, 0, np.zeros(m.store.n_words, np.uint32), flat.ent, flat.grp,
                       flat.wpool, flat.spool, flat.hk, flat.sig_aid)
    times["mask store"] = time.perf_counter() - t0

    if diffusion:
        t0 = time.perf_counter()
        from constrain.diffusion import InfillChecker

        g = from_lark('start: "[" item ("," item)* "]"\nitem: /a+/ | "b"\n')
        r = InfillChecker(g).check([b"[a", b"]"])
        assert r and r.witness() is not None
        times["diffusion checker"] = time.perf_counter() - t0
    if formats:
        t0 = time.perf_counter()
        from constrain.jsonschema.formats import _BUILDERS, format_dfa
        from constrain.jsonschema.strings import json_string_dfa

        for name in sorted(_BUILDERS):
            json_string_dfa(format_dfa(name))
        times["formats"] = time.perf_counter() - t0
    return times
