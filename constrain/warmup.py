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


def warmup(*, diffusion: bool = True) -> dict[str, float]:
    """Compile (or load from numba's cache) the kernels of the trie, the mask store and, with
    ``diffusion``, the infilling checker.  Returns seconds per part; a second call in the same
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
    for lexing in ("", "// lexer: basic\n"):  # both lexing policies take other kernel paths
        g = from_lark(lexing + 'start: "[" item ("," item)* "]"\nitem: /a+/ | "b"\n%ignore " "\n')
        m = Matcher(g, vocab)
        for b in b"[a, b]":
            m.next_token_mask()
            m.accept_bytes(bytes([b]))
        m.next_token_mask()
    times["mask store"] = time.perf_counter() - t0

    if diffusion:
        t0 = time.perf_counter()
        from constrain.diffusion import InfillChecker

        g = from_lark('start: "[" item ("," item)* "]"\nitem: /a+/ | "b"\n')
        r = InfillChecker(g).check([b"[a", b"]"])
        assert r and r.witness() is not None
        times["diffusion checker"] = time.perf_counter() - t0
    return times
